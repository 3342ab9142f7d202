package wal_test

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// writeLog writes a hard state and entries 1..n, one Save each, so that the
// last record of the last segment is entry n. It returns the last segment's
// path, its record offsets and the end of its data.
func writeLog(t *testing.T, dir string, opts wal.Options, n uint64) (path string, offsets []int64, end int64) {
	t.Helper()
	w, _ := mustOpen(t, dir, opts)
	if err := w.Save(&messages.HardState{Term: 1, Vote: 2, Commit: 1}, nil); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(nil, entries(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	path = paths[len(paths)-1]
	offsets, end = recordOffsets(t, path)
	return path, offsets, end
}

func TestTornTailRepaired(t *testing.T) {
	type span struct{ lastOff, end int64 }
	cases := []struct {
		name   string
		damage func(b []byte, s span) []byte
	}{
		{"payload cut in half", func(b []byte, s span) []byte {
			return b[:s.lastOff+wal.HeaderSize+(s.end-s.lastOff-wal.HeaderSize)/2]
		}},
		{"header only", func(b []byte, s span) []byte { return b[:s.lastOff+wal.HeaderSize] }},
		{"partial header", func(b []byte, s span) []byte { return b[:s.lastOff+4] }},
		{"second half zeroed in preallocated file", func(b []byte, s span) []byte {
			clear(b[s.lastOff+wal.HeaderSize+(s.end-s.lastOff-wal.HeaderSize)/2 : s.end])
			return b
		}},
		{"header only, rest zeroed", func(b []byte, s span) []byte {
			clear(b[s.lastOff+wal.HeaderSize : s.end])
			return b
		}},
		{"length written, rest of header zeroed", func(b []byte, s span) []byte {
			clear(b[s.lastOff+4 : s.end])
			return b
		}},
		{"bad checksum followed by zeros", func(b []byte, s span) []byte {
			b[s.end-1] ^= 0x10
			return b
		}},
		{"bad checksum at end of file", func(b []byte, s span) []byte {
			b[s.end-1] ^= 0x10
			return b[:s.end]
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := wal.Options{SegmentSizeBytes: 4096}
			path, offsets, end := writeLog(t, dir, opts, 6)
			lastOff := offsets[len(offsets)-1]
			patchFile(t, path, func(b []byte) []byte { return c.damage(b, span{lastOff, end}) })

			w, r := mustOpen(t, dir, opts)
			if !r.TornTailRepaired {
				t.Fatal("TornTailRepaired not set")
			}
			if r.HardState.GetVote() != 2 {
				t.Fatalf("hard state %v", r.HardState)
			}
			checkEntries(t, r.Entries, entries(1, 5, 1))
			// Appends continue where the last good record ended.
			if err := w.Save(nil, entries(6, 7, 2)); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			if offs, _ := recordOffsets(t, path); offs[len(offsets)-1] != lastOff {
				t.Fatalf("new record at %d, want %d", offs[len(offsets)-1], lastOff)
			}

			w, r = mustOpen(t, dir, opts)
			defer mustClose(t, w)
			if r.TornTailRepaired {
				t.Fatal("TornTailRepaired after a clean close")
			}
			checkEntries(t, r.Entries, append(entries(1, 5, 1), entries(6, 7, 2)...))
		})
	}
}

func TestMidFileCorruptionRefused(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte, off int64) []byte
		want   error
	}{
		{"payload bit flip", func(b []byte, off int64) []byte {
			b[off+wal.HeaderSize+2] ^= 0x01
			return b
		}, wal.ErrChecksum},
		{"checksum bit flip", func(b []byte, off int64) []byte {
			b[off+6] ^= 0x80
			return b
		}, wal.ErrChecksum},
		{"type changed", func(b []byte, off int64) []byte {
			b[off+4] = byte(wal.RecordHardState)
			return b
		}, wal.ErrChecksum},
		{"length shrunk", func(b []byte, off int64) []byte {
			binary.LittleEndian.PutUint32(b[off:], binary.LittleEndian.Uint32(b[off:])-1)
			return b
		}, wal.ErrChecksum},
		{"length beyond MaxRecordBytes", func(b []byte, off int64) []byte {
			binary.LittleEndian.PutUint32(b[off:], 0xfffffff0)
			return b
		}, wal.ErrRecordTooLarge},
		{"header zeroed", func(b []byte, off int64) []byte {
			clear(b[off : off+wal.HeaderSize])
			return b
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := wal.Options{SegmentSizeBytes: 4096}
			path, offsets, _ := writeLog(t, dir, opts, 10)
			bad := offsets[4]
			patchFile(t, path, func(b []byte) []byte { return c.damage(b, bad) })
			_, _, err := wal.Open(dir, opts)
			checkCorrupt(t, err, path, bad)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("%v does not wrap %v", err, c.want)
			}
			// Refusal is stable: opening again gives the same answer.
			_, _, err = wal.Open(dir, opts)
			checkCorrupt(t, err, path, bad)
		})
	}
}

// A last record that passed its checksum cannot be a torn write, so content
// errors in it are refused, not repaired.
func TestValidChecksumBadContentAtTailRefused(t *testing.T) {
	cases := []struct {
		name   string
		record []byte
		want   error
	}{
		{"unknown type", wal.AppendRecord(nil, 9, []byte("future")), wal.ErrUnknownRecordType},
		{"undecodable entry", wal.AppendRecord(nil, wal.RecordEntry, []byte{0xff, 0xff, 0xff}), nil},
		{"entry index gap", wal.AppendRecord(nil, wal.RecordEntry, mustMarshal(t, &messages.Entry{Index: 99})), wal.ErrNotContiguous},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := wal.Options{SegmentSizeBytes: 4096}
			path, offsets, end := writeLog(t, dir, opts, 3)
			lastOff := offsets[len(offsets)-1]
			patchFile(t, path, func(b []byte) []byte {
				clear(b[lastOff:end])
				copy(b[lastOff:], c.record)
				return b
			})
			_, _, err := wal.Open(dir, opts)
			checkCorrupt(t, err, path, lastOff)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("%v does not wrap %v", err, c.want)
			}
		})
	}
}

func TestCorruptionInEarlierSegmentRefused(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte, lastOff, end int64) []byte
	}{
		{"bit flip in last record", func(b []byte, lastOff, end int64) []byte {
			b[end-1] ^= 0x04
			return b
		}},
		{"last record cut", func(b []byte, lastOff, end int64) []byte { return b[:end-3] }},
		{"last record removed at a record boundary", func(b []byte, lastOff, end int64) []byte { return b[:lastOff] }},
		{"last record zeroed", func(b []byte, lastOff, end int64) []byte {
			clear(b[lastOff:end])
			return b
		}},
		{"last record header zeroed", func(b []byte, lastOff, end int64) []byte {
			clear(b[lastOff : lastOff+wal.HeaderSize])
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := wal.Options{SegmentSizeBytes: 300}
			writeLog(t, dir, opts, 30)
			paths := segmentPaths(t, dir)
			if len(paths) < 3 {
				t.Fatalf("%d segments", len(paths))
			}
			first := paths[0]
			offsets, end := recordOffsets(t, first)
			lastOff := offsets[len(offsets)-1]
			patchFile(t, first, func(b []byte) []byte { return c.damage(b, lastOff, end) })
			_, _, err := wal.Open(dir, opts)
			checkCorrupt(t, err, first, lastOff)
		})
	}
}

func mustMarshal(t *testing.T, e *messages.Entry) []byte {
	t.Helper()
	b, err := protoMarshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenFileWithoutPreallocation(t *testing.T) {
	// A segment shorter than SegmentSizeBytes (written by a filesystem
	// without fallocate, or with a smaller option) is extended on Open.
	dir := t.TempDir()
	path, _, end := writeLog(t, dir, wal.Options{SegmentSizeBytes: 4096}, 3)
	if err := os.Truncate(path, end); err != nil {
		t.Fatal(err)
	}
	w, r := mustOpen(t, dir, wal.Options{SegmentSizeBytes: 8192})
	defer mustClose(t, w)
	if r.TornTailRepaired {
		t.Fatal("clean end of file reported as torn")
	}
	checkEntries(t, r.Entries, entries(1, 3, 1))
}
