package wal_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

func mustOpen(t testing.TB, dir string, opts wal.Options) (*wal.WAL, *wal.Replay) {
	t.Helper()
	w, r, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return w, r
}

func mustClose(t testing.TB, w *wal.WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// entries returns entries from..to inclusive in term, with data that names them.
func entries(from, to, term uint64) []*messages.Entry {
	var es []*messages.Entry
	for i := from; i <= to; i++ {
		es = append(es, &messages.Entry{Term: term, Index: i, Data: fmt.Appendf(nil, "entry %d term %d", i, term)})
	}
	return es
}

func checkEntries(t testing.TB, got, want []*messages.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries %s, want %d %s", len(got), describe(got), len(want), describe(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func describe(es []*messages.Entry) string {
	if len(es) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d/%d .. %d/%d]", es[0].Index, es[0].Term, es[len(es)-1].Index, es[len(es)-1].Term)
}

// segmentPaths lists the segment files of dir in name (= sequence) order.
func segmentPaths(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

// recordOffsets decodes path and returns the offset of each record and the
// end of the data.
func recordOffsets(t testing.TB, path string) (offsets []int64, end int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for {
		_, _, n, err := wal.DecodeRecord(data[off:])
		if errors.Is(err, io.EOF) {
			return offsets, int64(off)
		}
		if err != nil {
			t.Fatalf("%s at %d: %v", path, off, err)
		}
		offsets = append(offsets, int64(off))
		off += n
	}
}

// patchFile applies fn to the contents of path and writes them back.
func patchFile(t testing.TB, path string, fn func(b []byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkCorrupt(t testing.TB, err error, file string, offset int64) *wal.CorruptError {
	t.Helper()
	var ce *wal.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open: got %v, want *CorruptError", err)
	}
	if !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("errors.Is(%v, ErrCorrupt) = false", err)
	}
	t.Logf("refused: %v", err)
	if ce.File != file || ce.Offset != offset {
		t.Fatalf("CorruptError at %s:%d, want %s:%d (%v)", ce.File, ce.Offset, file, offset, err)
	}
	if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, fmt.Sprint(offset)) {
		t.Fatalf("error %q does not name file and offset", msg)
	}
	return ce
}

// fmtSscan parses a segment file name.
func fmtSscan(name string, seq, first *uint64) (int, error) {
	return fmt.Sscanf(name, "%016x-%016x.wal", seq, first)
}

func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
