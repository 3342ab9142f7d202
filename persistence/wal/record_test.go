package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/aetcd/aetcd/persistence/wal"
)

func TestDecodeRecord(t *testing.T) {
	valid := wal.AppendRecord(nil, wal.RecordEntry, []byte("payload"))
	emptyPayload := wal.AppendRecord(nil, wal.RecordHardState, nil)
	withFlipped := func(i int) []byte {
		b := bytes.Clone(valid)
		b[i] ^= 1
		return b
	}
	withLength := func(n uint32) []byte {
		b := bytes.Clone(valid)
		binary.LittleEndian.PutUint32(b, n)
		return b
	}
	cases := []struct {
		name    string
		buf     []byte
		typ     wal.RecordType
		payload string
		n       int
		err     error
	}{
		{"valid", valid, wal.RecordEntry, "payload", len(valid), nil},
		{"valid followed by more", append(bytes.Clone(valid), 1, 2, 3), wal.RecordEntry, "payload", len(valid), nil},
		{"empty payload", emptyPayload, wal.RecordHardState, "", wal.HeaderSize, nil},
		{"empty buffer", nil, 0, "", 0, io.EOF},
		{"short zeros", make([]byte, 5), 0, "", 0, io.EOF},
		{"zero header", make([]byte, 100), 0, "", 0, io.EOF},
		{"short non-zero", []byte{1, 0, 0}, 0, "", 0, wal.ErrTruncatedRecord},
		{"header only", valid[:wal.HeaderSize], 0, "", 0, wal.ErrTruncatedRecord},
		{"payload cut", valid[:len(valid)-1], 0, "", 0, wal.ErrTruncatedRecord},
		{"length beyond buffer", withLength(1000), 0, "", 0, wal.ErrTruncatedRecord},
		{"length beyond max", withLength(wal.MaxRecordBytes + 1), 0, "", 0, wal.ErrRecordTooLarge},
		{"length max uint32", withLength(1<<32 - 1), 0, "", 0, wal.ErrRecordTooLarge},
		{"payload flipped", withFlipped(wal.HeaderSize + 1), 0, "", 0, wal.ErrChecksum},
		{"type flipped", withFlipped(4), 0, "", 0, wal.ErrChecksum},
		{"crc flipped", withFlipped(7), 0, "", 0, wal.ErrChecksum},
		{"unknown type", wal.AppendRecord(nil, 5, []byte("x")), 0, "", 0, wal.ErrUnknownRecordType},
		{"type zero with payload", wal.AppendRecord(nil, 0, []byte("x")), 0, "", 0, wal.ErrUnknownRecordType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ, payload, n, err := wal.DecodeRecord(c.buf)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if typ != c.typ || string(payload) != c.payload || n != c.n {
				t.Fatalf("got (%v, %q, %d), want (%v, %q, %d)", typ, payload, n, c.typ, c.payload, c.n)
			}
		})
	}
}
