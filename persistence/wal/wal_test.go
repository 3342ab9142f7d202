package wal_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

func TestOpenEmptyCreatesDirAndSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "wal")
	w, r := mustOpen(t, dir, wal.Options{SegmentSizeBytes: 4096})
	defer mustClose(t, w)
	if r.Metadata != nil || r.HardState != nil || r.Snapshot != nil || len(r.Entries) != 0 || r.TornTailRepaired {
		t.Fatalf("replay of a new WAL: %+v", r)
	}
	paths := segmentPaths(t, dir)
	if len(paths) != 1 || filepath.Base(paths[0]) != "0000000000000000-0000000000000001.wal" {
		t.Fatalf("segments %v", paths)
	}
	fi, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 4096 {
		t.Logf("segment size %d: fallocate unsupported here?", fi.Size())
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, wal.Options{})
	hs1 := &messages.HardState{Term: 1, Vote: 1, Commit: 3}
	hs2 := &messages.HardState{Term: 2, Vote: 3, Commit: 11}
	snap := &messages.SnapshotMeta{Index: 3, Term: 1, ConfState: &messages.ConfState{Voters: []uint64{1, 2, 3}}}
	steps := []func() error{
		func() error { return w.SaveMetadata([]byte("member 1 of cluster 42")) },
		func() error { return w.Save(hs1, entries(1, 10, 1)) },
		func() error { return w.SaveSnapshot(snap) },
		func() error { return w.Save(nil, entries(11, 11, 2)) },
		func() error { return w.Save(hs2, entries(12, 12, 2)) },
		func() error { return w.Save(nil, nil) },
		w.Sync,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	mustClose(t, w)

	w, r := mustOpen(t, dir, wal.Options{})
	defer mustClose(t, w)
	if string(r.Metadata) != "member 1 of cluster 42" {
		t.Errorf("metadata %q", r.Metadata)
	}
	if !proto.Equal(r.HardState, hs2) {
		t.Errorf("hard state %v, want %v", r.HardState, hs2)
	}
	if !proto.Equal(r.Snapshot, snap) {
		t.Errorf("snapshot %v, want %v", r.Snapshot, snap)
	}
	if r.TornTailRepaired {
		t.Error("TornTailRepaired on a clean log")
	}
	checkEntries(t, r.Entries, append(entries(4, 10, 1), entries(11, 12, 2)...))
}

func TestEmptyPayloads(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, wal.Options{})
	if err := w.SaveMetadata(nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(&messages.HardState{}, nil); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	w, r := mustOpen(t, dir, wal.Options{})
	defer mustClose(t, w)
	if r.Metadata == nil || len(r.Metadata) != 0 {
		t.Errorf("metadata %#v, want empty non-nil", r.Metadata)
	}
	if r.HardState == nil || !proto.Equal(r.HardState, &messages.HardState{}) {
		t.Errorf("hard state %v, want empty", r.HardState)
	}
}

func TestAppendAfterReopen(t *testing.T) {
	dir := t.TempDir()
	var want []*messages.Entry
	for round := uint64(0); round < 4; round++ {
		w, r := mustOpen(t, dir, wal.Options{SegmentSizeBytes: 1 << 10})
		checkEntries(t, r.Entries, want)
		batch := entries(round*10+1, round*10+10, round+1)
		if err := w.Save(&messages.HardState{Term: round + 1, Commit: round * 10}, batch); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
		mustClose(t, w)
	}
}

func TestTruncation(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _ := mustOpen(t, dir, opts)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Save(nil, entries(1, 20, 1)))
	// A new leader in term 2 overwrites from index 15, across a rotation.
	must(w.Save(nil, entries(15, 16, 2)))
	must(w.Save(nil, entries(17, 17, 2)))
	// And in term 3 from index 5.
	must(w.Save(nil, entries(5, 6, 3)))
	mustClose(t, w)
	if n := len(segmentPaths(t, dir)); n < 2 {
		t.Fatalf("%d segments; want the truncation to span a rotation", n)
	}

	w, r := mustOpen(t, dir, opts)
	want := append(entries(1, 4, 1), entries(5, 6, 3)...)
	checkEntries(t, r.Entries, want)
	// Truncate again after reopening, then extend.
	must(w.Save(nil, entries(6, 8, 4)))
	mustClose(t, w)
	w, r = mustOpen(t, dir, opts)
	defer mustClose(t, w)
	want = append(append(entries(1, 4, 1), entries(5, 5, 3)...), entries(6, 8, 4)...)
	checkEntries(t, r.Entries, want)
}

func TestSaveRejectsNonContiguous(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, wal.Options{})
	cases := []struct {
		name string
		ents []*messages.Entry
	}{
		{"index 0", entries(0, 0, 1)},
		{"first entry not 1", entries(2, 3, 1)},
		{"gap inside batch", append(entries(1, 2, 1), entries(4, 4, 1)...)},
	}
	for _, c := range cases {
		if err := w.Save(&messages.HardState{Term: 9}, c.ents); !errors.Is(err, wal.ErrNotContiguous) {
			t.Errorf("%s: Save = %v, want ErrNotContiguous", c.name, err)
		}
	}
	if err := w.Save(nil, entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, entries(5, 5, 1)); !errors.Is(err, wal.ErrNotContiguous) {
		t.Errorf("gap after 3: Save = %v, want ErrNotContiguous", err)
	}
	// A snapshot beyond the log moves the last index.
	if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: 10, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, entries(11, 12, 2)); err != nil {
		t.Fatalf("entry after snapshot: %v", err)
	}
	if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: 9, Term: 2}); !errors.Is(err, wal.ErrNotContiguous) {
		t.Errorf("snapshot moving backwards: SaveSnapshot = %v, want ErrNotContiguous", err)
	}
	mustClose(t, w)
	w, r := mustOpen(t, dir, wal.Options{})
	if r.HardState != nil {
		t.Errorf("a rejected Save wrote its hard state: %v", r.HardState)
	}
	checkEntries(t, r.Entries, entries(11, 12, 2))
	mustClose(t, w)
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 300}
	w, _ := mustOpen(t, dir, opts)
	var want []*messages.Entry
	for i := uint64(1); i <= 100; i += 3 {
		batch := entries(i, i+2, 1)
		if err := w.Save(&messages.HardState{Term: 1, Commit: i}, batch); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	mustClose(t, w)

	paths := segmentPaths(t, dir)
	if len(paths) < 5 {
		t.Fatalf("%d segments, want many", len(paths))
	}
	var prevFirst uint64
	for i, p := range paths[:len(paths)-1] {
		_, end := recordOffsets(t, p)
		if end < opts.SegmentSizeBytes {
			t.Errorf("segment %d rotated with only %d bytes of data", i, end)
		}
		var seq, first uint64
		if _, err := fmtSscan(filepath.Base(p), &seq, &first); err != nil || seq != uint64(i) || first < prevFirst {
			t.Errorf("segment %d named %s (%v)", i, filepath.Base(p), err)
		}
		prevFirst = first
	}
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkEntries(t, r.Entries, want)
	if r.HardState.GetCommit() != 100 {
		t.Errorf("hard state %v", r.HardState)
	}
}

// Every new segment starts with the latest metadata, snapshot marker and hard
// state, so segments wholly below a snapshot can be deleted.
func TestSegmentHeadCarriesState(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 400}
	w, _ := mustOpen(t, dir, opts)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.SaveMetadata([]byte("meta")))
	must(w.Save(&messages.HardState{Term: 1, Commit: 40}, entries(1, 40, 1)))
	snap := &messages.SnapshotMeta{Index: 40, Term: 1}
	must(w.SaveSnapshot(snap))
	for i := uint64(41); i <= 60; i++ {
		must(w.Save(&messages.HardState{Term: 1, Commit: i}, entries(i, i, 1)))
	}
	mustClose(t, w)

	// Delete the segments wholly at or below the snapshot: those followed by
	// a segment whose first possible index is at most snapshot+1.
	paths := segmentPaths(t, dir)
	deleted := 0
	for i := 0; i+1 < len(paths); i++ {
		var seq, first uint64
		if _, err := fmtSscan(filepath.Base(paths[i+1]), &seq, &first); err != nil {
			t.Fatal(err)
		}
		if first > snap.Index+1 {
			break
		}
		must(os.Remove(paths[i]))
		deleted++
	}
	if deleted == 0 {
		t.Fatalf("no segment below the snapshot among %v", paths)
	}
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	if string(r.Metadata) != "meta" || !proto.Equal(r.Snapshot, snap) || r.HardState.GetCommit() != 60 {
		t.Fatalf("state after deleting old segments: meta %q snap %v hs %v", r.Metadata, r.Snapshot, r.HardState)
	}
	checkEntries(t, r.Entries, entries(41, 60, 1))
}

// Deleting segments that still hold needed entries leaves a gap, which Open
// refuses.
func TestOpenRefusesIndexGap(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 300}
	w, _ := mustOpen(t, dir, opts)
	if err := w.Save(nil, entries(1, 30, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, entries(31, 40, 1)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	if len(paths) < 2 {
		t.Fatalf("%d segments, want at least 2", len(paths))
	}
	if err := os.Remove(paths[0]); err != nil {
		t.Fatal(err)
	}
	_, _, err := wal.Open(dir, opts)
	ce := checkCorrupt(t, err, paths[1], 0)
	if !errors.Is(ce, wal.ErrNotContiguous) {
		t.Fatalf("%v does not wrap ErrNotContiguous", err)
	}
}

func TestOpenRefusesBadSegmentNames(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		want  error
	}{
		{"garbage name", []string{"0000000000000000-0000000000000001.wal", "garbage.wal"}, wal.ErrBadSegmentName},
		{"upper-case hex", []string{"000000000000000A-0000000000000001.wal"}, wal.ErrBadSegmentName},
		{"short", []string{"0-1.wal"}, wal.ErrBadSegmentName},
		{"sequence gap", []string{"0000000000000000-0000000000000001.wal", "0000000000000002-0000000000000001.wal"}, wal.ErrSegmentGap},
		{"duplicate sequence", []string{"0000000000000000-0000000000000001.wal", "0000000000000000-0000000000000005.wal"}, wal.ErrSegmentGap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range c.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := wal.Open(dir, wal.Options{}); !errors.Is(err, c.want) {
				t.Fatalf("Open = %v, want %v", err, c.want)
			}
		})
	}
	t.Run("other files ignored", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		w, _ := mustOpen(t, dir, wal.Options{})
		mustClose(t, w)
	})
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	w, _ := mustOpen(t, dir, wal.Options{})
	if _, _, err := wal.Open(dir, wal.Options{}); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	mustClose(t, w)
	w, _ = mustOpen(t, dir, wal.Options{})
	mustClose(t, w)
}

func TestClosed(t *testing.T) {
	w, _ := mustOpen(t, t.TempDir(), wal.Options{})
	mustClose(t, w)
	for name, err := range map[string]error{
		"Save":         w.Save(&messages.HardState{}, nil),
		"SaveMetadata": w.SaveMetadata(nil),
		"SaveSnapshot": w.SaveSnapshot(&messages.SnapshotMeta{}),
		"Sync":         w.Sync(),
		"Close":        w.Close(),
	} {
		if !errors.Is(err, wal.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// One goroutine saves (in index order, as the WAL writer actor does) while
// others call Sync concurrently, across many rotations. Run with -race.
func TestConcurrentSaveAndSync(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 2048}
	w, _ := mustOpen(t, dir, opts)
	const n = 2000
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := w.Sync(); err != nil {
					t.Errorf("Sync: %v", err)
					return
				}
			}
		})
	}
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(&messages.HardState{Term: 1, Commit: i - 1}, entries(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkEntries(t, r.Entries, entries(1, n, 1))
}
