package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// RecordType is the type byte of a WAL record.
type RecordType uint8

// Record types. Zero is not a type: a header of zeros marks the end of the
// data in a segment (the preallocated tail).
const (
	RecordEntry     RecordType = 1 // payload: messages.Entry
	RecordHardState RecordType = 2 // payload: messages.HardState
	RecordMetadata  RecordType = 3 // payload: opaque bytes from SaveMetadata
	RecordSnapshot  RecordType = 4 // payload: messages.SnapshotMeta
)

func (t RecordType) String() string {
	switch t {
	case RecordEntry:
		return "entry"
	case RecordHardState:
		return "hard state"
	case RecordMetadata:
		return "metadata"
	case RecordSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

func (t RecordType) valid() bool { return t >= RecordEntry && t <= RecordSnapshot }

const (
	// HeaderSize is the size of a record header:
	// [length uint32 LE][type uint8][crc32c uint32 LE].
	HeaderSize = 9
	// MaxRecordBytes bounds a record's payload. It is far above any Raft
	// entry aetcd produces and keeps a corrupted length field from being
	// mistaken for a large record.
	MaxRecordBytes = 64 << 20
)

// castagnoli is read-only after initialisation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func recordCRC(typ RecordType, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, []byte{byte(typ)}), castagnoli, payload)
}

// AppendRecord appends one framed record to dst and returns the extended
// slice. It panics if payload is longer than MaxRecordBytes.
func AppendRecord(dst []byte, typ RecordType, payload []byte) []byte {
	if len(payload) > MaxRecordBytes {
		panic(fmt.Sprintf("wal: AppendRecord payload of %d bytes exceeds MaxRecordBytes", len(payload)))
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	dst = append(dst, payload...)
	putHeader(dst[start:], typ)
	return dst
}

// putHeader fills in the header of the record that starts at rec[0] and whose
// payload is rec[HeaderSize:].
func putHeader(rec []byte, typ RecordType) {
	payload := rec[HeaderSize:]
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(payload)))
	rec[4] = byte(typ)
	binary.LittleEndian.PutUint32(rec[5:9], recordCRC(typ, payload))
}

// DecodeRecord decodes the record at the start of buf. On success it returns
// the record's type, its payload (aliasing buf) and n, the number of bytes the
// record occupies (HeaderSize + len(payload)).
//
// Errors, all with n == 0:
//   - io.EOF: buf is empty, shorter than a header and all zeros, or starts
//     with a header whose length and type are zero (end of data; whether the
//     rest of buf is zeros is the caller's business).
//   - ErrTruncatedRecord: buf ends inside the header or the payload.
//   - ErrRecordTooLarge: the length field exceeds MaxRecordBytes.
//   - ErrChecksum: the CRC-32C over type byte and payload does not match.
//   - ErrUnknownRecordType: the checksum matches but the type is not 1–4.
//
// DecodeRecord never panics, whatever buf holds.
func DecodeRecord(buf []byte) (typ RecordType, payload []byte, n int, err error) {
	if len(buf) < HeaderSize {
		if allZero(buf) {
			return 0, nil, 0, io.EOF
		}
		return 0, nil, 0, fmt.Errorf("%w: %d bytes left, header needs %d", ErrTruncatedRecord, len(buf), HeaderSize)
	}
	length := binary.LittleEndian.Uint32(buf[0:4])
	typ = RecordType(buf[4])
	if length == 0 && typ == 0 {
		return 0, nil, 0, io.EOF
	}
	if length > MaxRecordBytes {
		return 0, nil, 0, fmt.Errorf("%w: length %d exceeds %d", ErrRecordTooLarge, length, MaxRecordBytes)
	}
	if uint64(length) > uint64(len(buf)-HeaderSize) {
		return 0, nil, 0, fmt.Errorf("%w: length %d, %d bytes left", ErrTruncatedRecord, length, len(buf)-HeaderSize)
	}
	n = HeaderSize + int(length)
	payload = buf[HeaderSize:n]
	if want, got := binary.LittleEndian.Uint32(buf[5:9]), recordCRC(typ, payload); want != got {
		return 0, nil, 0, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, want, got)
	}
	if !typ.valid() {
		return 0, nil, 0, fmt.Errorf("%w: %d", ErrUnknownRecordType, uint8(typ))
	}
	return typ, payload, n, nil
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
