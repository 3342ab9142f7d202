package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// seedRecords returns valid frames of every type, back to back.
func seedRecords(tb testing.TB) []byte {
	var b []byte
	for _, m := range []struct {
		typ wal.RecordType
		msg proto.Message
	}{
		{wal.RecordEntry, &messages.Entry{Term: 1, Index: 1, Data: []byte("hello")}},
		{wal.RecordHardState, &messages.HardState{Term: 1, Vote: 1, Commit: 1}},
		{wal.RecordSnapshot, &messages.SnapshotMeta{Index: 1, Term: 1, ConfState: &messages.ConfState{Voters: []uint64{1}}}},
		{wal.RecordEntry, &messages.Entry{Term: 1, Index: 2}},
	} {
		p, err := proto.Marshal(m.msg)
		if err != nil {
			tb.Fatal(err)
		}
		b = wal.AppendRecord(b, m.typ, p)
	}
	return wal.AppendRecord(b, wal.RecordMetadata, []byte("meta"))
}

func FuzzDecodeRecord(f *testing.F) {
	valid := seedRecords(f)
	one := wal.AppendRecord(nil, wal.RecordMetadata, []byte("m"))
	f.Add(valid)
	f.Add(one)
	f.Add(one[:wal.HeaderSize])
	f.Add(one[:3])
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	bad := bytes.Clone(one)
	bad[len(bad)-1] ^= 1
	f.Add(bad)
	huge := bytes.Clone(one)
	binary.LittleEndian.PutUint32(huge, 1<<31)
	f.Add(huge)
	f.Add(wal.AppendRecord(nil, 200, []byte("unknown")))

	f.Fuzz(func(t *testing.T, buf []byte) {
		typ, payload, n, err := wal.DecodeRecord(buf)
		if err != nil {
			if n != 0 || payload != nil {
				t.Fatalf("error %v with n=%d payload=%q", err, n, payload)
			}
			for _, want := range []error{io.EOF, wal.ErrTruncatedRecord, wal.ErrRecordTooLarge, wal.ErrChecksum, wal.ErrUnknownRecordType} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if n < wal.HeaderSize || n > len(buf) || len(payload) != n-wal.HeaderSize || len(payload) > wal.MaxRecordBytes {
			t.Fatalf("n=%d len(buf)=%d len(payload)=%d", n, len(buf), len(payload))
		}
		if !bytes.Equal(wal.AppendRecord(nil, typ, payload), buf[:n]) {
			t.Fatalf("re-encoding differs from input")
		}
	})
}

// FuzzOpen writes arbitrary bytes as one or two segment files and opens them.
// Open must not panic and must either refuse with a *CorruptError or succeed;
// a successful Open must leave a log that reopens cleanly to the same replay
// and accepts the next entry.
func FuzzOpen(f *testing.F) {
	valid := seedRecords(f)
	f.Add(valid, uint16(0))
	f.Add(valid, uint16(20))
	f.Add(valid[:len(valid)-3], uint16(0))
	f.Add(append(bytes.Clone(valid), make([]byte, 64)...), uint16(0))
	flipped := bytes.Clone(valid)
	flipped[12] ^= 0x40
	f.Add(flipped, uint16(0))
	f.Add([]byte{}, uint16(0))
	f.Add(make([]byte, 100), uint16(50))
	// A first segment without entries, so the second may start at index 1.
	hs, err := proto.Marshal(&messages.HardState{Term: 3})
	if err != nil {
		f.Fatal(err)
	}
	stateOnly := wal.AppendRecord(wal.AppendRecord(nil, wal.RecordMetadata, []byte("m")), wal.RecordHardState, hs)
	f.Add(append(bytes.Clone(stateOnly), valid...), uint16(len(stateOnly)))

	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		dir := t.TempDir()
		segs := [][]byte{data}
		if s := int(split); s > 0 && s < len(data) {
			segs = [][]byte{data[:s], data[s:]}
		}
		for i, b := range segs {
			name := filepath.Join(dir, segName(uint64(i), 1))
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		opts := wal.Options{SegmentSizeBytes: 4096}
		w, r, err := wal.Open(dir, opts)
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) {
				t.Fatalf("Open refused with a non-corruption error: %v", err)
			}
			return
		}
		mustClose(t, w)

		w, r2 := mustOpen(t, dir, opts)
		if r2.TornTailRepaired {
			t.Fatal("second Open repaired again")
		}
		checkSameReplay(t, r2, r)
		next := uint64(1)
		if n := len(r.Entries); n > 0 {
			next = r.Entries[n-1].Index + 1
		} else if r.Snapshot != nil {
			next = r.Snapshot.Index + 1
		}
		e := &messages.Entry{Term: 7, Index: next, Data: []byte("next")}
		if err := w.Save(nil, []*messages.Entry{e}); err != nil {
			t.Fatalf("Save(%d) after Open: %v", next, err)
		}
		mustClose(t, w)
		w, r3 := mustOpen(t, dir, opts)
		defer mustClose(t, w)
		checkEntries(t, r3.Entries, append(r.Entries, e))
	})
}

func segName(seq, first uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, first) }

func checkSameReplay(t testing.TB, got, want *wal.Replay) {
	t.Helper()
	if !bytes.Equal(got.Metadata, want.Metadata) || (got.Metadata == nil) != (want.Metadata == nil) {
		t.Fatalf("metadata %q, want %q", got.Metadata, want.Metadata)
	}
	if !proto.Equal(got.HardState, want.HardState) || (got.HardState == nil) != (want.HardState == nil) {
		t.Fatalf("hard state %v, want %v", got.HardState, want.HardState)
	}
	if !proto.Equal(got.Snapshot, want.Snapshot) || (got.Snapshot == nil) != (want.Snapshot == nil) {
		t.Fatalf("snapshot %v, want %v", got.Snapshot, want.Snapshot)
	}
	checkEntries(t, got.Entries, want.Entries)
}
