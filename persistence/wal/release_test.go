package wal_test

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence"
	"github.com/aetcd/aetcd/persistence/wal"
)

// copySegments copies the segment files of dir (as the page cache holds
// them, so unsynced writes included) into a new directory, leaving out the
// oldest skip of them, and returns it.
func copySegments(t testing.TB, dir string, skip int) string {
	t.Helper()
	dst := t.TempDir()
	for _, p := range segmentPaths(t, dir)[skip:] {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// replayOf opens dir, closes it again and returns what Open replayed.
func replayOf(t testing.TB, dir string, opts wal.Options) (*wal.Replay, error) {
	t.Helper()
	w, r, err := wal.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	mustClose(t, w)
	return r, nil
}

// sameReplay describes how got differs from want, or returns "".
func sameReplay(got, want *wal.Replay) string {
	switch {
	case string(got.Metadata) != string(want.Metadata) || (got.Metadata == nil) != (want.Metadata == nil):
		return "metadata " + strconv.Quote(string(got.Metadata)) + ", want " + strconv.Quote(string(want.Metadata))
	case !proto.Equal(got.HardState, want.HardState):
		return "hard state " + got.HardState.String() + ", want " + want.HardState.String()
	case !proto.Equal(got.Snapshot, want.Snapshot):
		return "snapshot " + got.Snapshot.String() + ", want " + want.Snapshot.String()
	case got.TornTailRepaired != want.TornTailRepaired:
		return "TornTailRepaired differs"
	case len(got.Entries) != len(want.Entries):
		return "entries " + describe(got.Entries) + ", want " + describe(want.Entries)
	}
	for i := range want.Entries {
		if !proto.Equal(got.Entries[i], want.Entries[i]) {
			return "entry " + got.Entries[i].String() + ", want " + want.Entries[i].String()
		}
	}
	return ""
}

// asReplay turns the in-memory twin's state into the Replay Open must give.
func asReplay(s persistence.LogState) *wal.Replay {
	return &wal.Replay{Metadata: s.Metadata, HardState: s.HardState, Snapshot: s.Snapshot, Entries: s.Entries}
}

func propertySeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("WAL_PROPERTY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WAL_PROPERTY_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with WAL_PROPERTY_SEED=%d)", seed, seed)
	return seed
}

// TestReleaseReplayEquivalenceProperty runs random Saves (appending and
// truncating, across many rotations), snapshot markers at indexes up to the
// last synced one, metadata, Syncs, Releases and reopens. At every Release it
// checks that Open gives the same Replay after it as before, that the same
// holds for every crash in its middle (only the oldest j of the deleted
// segments gone), and that the Replay is the in-memory twin's state.
func TestReleaseReplayEquivalenceProperty(t *testing.T) {
	seed := propertySeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _ := mustOpen(t, dir, opts)
	defer func() { w.Close() }()
	model := persistence.NewMemLog()
	var last, lastSynced, snap, term uint64 = 0, 0, 0, 1
	must := func(step int, what string, errW error, errM error) {
		t.Helper()
		if errW != nil || errM != nil {
			t.Fatalf("seed %d step %d: %s: WAL %v, MemLog %v", seed, step, what, errW, errM)
		}
	}
	steps := 1500
	if testing.Short() {
		steps = 300
	}
	released, deleting, most := 0, 0, 0
	for step := range steps {
		switch op := rng.IntN(20); {
		case op < 9: // append, sometimes truncating first
			from := last + 1
			if rng.IntN(5) == 0 && last > 0 {
				from = 1 + rng.Uint64N(last)
				term++
			}
			batch := entries(from, from+rng.Uint64N(5), term)
			var hs *messages.HardState
			if rng.IntN(2) == 0 {
				hs = &messages.HardState{Term: term, Commit: rng.Uint64N(from)}
			}
			must(step, "Save", w.Save(hs, batch), model.Save(hs, batch))
			last = batch[len(batch)-1].Index
		case op < 11: // snapshot marker between the previous one and the last synced index
			if lastSynced < snap {
				continue
			}
			meta := &messages.SnapshotMeta{Index: snap + rng.Uint64N(lastSynced-snap+1), Term: term}
			// Often right at a segment boundary, where an off-by-one in
			// Release would delete a needed entry.
			var near []uint64
			for _, p := range segmentPaths(t, dir) {
				var seq, first uint64
				if _, err := fmtSscan(filepath.Base(p), &seq, &first); err != nil {
					t.Fatal(err)
				}
				for _, i := range []uint64{first - 2, first - 1, first} {
					if i >= snap && i <= lastSynced && first >= 2 {
						near = append(near, i)
					}
				}
			}
			if len(near) > 0 && rng.IntN(2) == 0 {
				meta.Index = near[rng.IntN(len(near))]
			}
			must(step, "SaveSnapshot", w.SaveSnapshot(meta), model.SaveSnapshot(meta))
			snap = meta.Index
			last = max(last, snap)
		case op < 12:
			meta := []byte("meta " + strconv.Itoa(step))
			must(step, "SaveMetadata", w.SaveMetadata(meta), model.SaveMetadata(meta))
		case op < 15:
			must(step, "Sync", w.Sync(), model.Sync())
			lastSynced = last
		case op < 19: // Release, sometimes without a Sync first
			before := copySegments(t, dir, 0)
			want, err := replayOf(t, before, opts)
			if err != nil {
				t.Fatalf("seed %d step %d: Open before Release: %v", seed, step, err)
			}
			if d := sameReplay(want, asReplay(model.Saved())); d != "" {
				t.Fatalf("seed %d step %d: replay differs from the twin: %s", seed, step, d)
			}
			nBefore := len(segmentPaths(t, dir))
			n, err := w.Release()
			_, errM := model.Release()
			must(step, "Release", err, errM)
			lastSynced = last
			if got := len(segmentPaths(t, dir)); got != nBefore-n {
				t.Fatalf("seed %d step %d: Release reported %d deleted, but %d segments became %d", seed, step, n, nBefore, got)
			}
			got, err := replayOf(t, copySegments(t, dir, 0), opts)
			if err != nil {
				t.Fatalf("seed %d step %d: Open after Release of %d segments: %v", seed, step, n, err)
			}
			if d := sameReplay(got, want); d != "" {
				t.Fatalf("seed %d step %d: Release of %d segments changed the replay: %s", seed, step, n, d)
			}
			// A crash after deleting only the oldest j of them.
			for j := 1; j < n; j++ {
				got, err := replayOf(t, copySegments(t, before, j), opts)
				if err != nil {
					t.Fatalf("seed %d step %d: Open after a crash that deleted %d of %d segments: %v", seed, step, j, n, err)
				}
				if d := sameReplay(got, want); d != "" {
					t.Fatalf("seed %d step %d: crash after deleting %d of %d segments changed the replay: %s", seed, step, j, n, d)
				}
			}
			released += n
			most = max(most, n)
			if n > 0 {
				deleting++
			}
		default: // reopen
			mustClose(t, w)
			var r *wal.Replay
			w, r = mustOpen(t, dir, opts)
			if d := sameReplay(r, asReplay(model.Saved())); d != "" {
				t.Fatalf("seed %d step %d: reopened replay differs from the twin: %s", seed, step, d)
			}
		}
	}
	t.Logf("%d segments released by %d Releases (at most %d at once); %d segments left", released, deleting, most, len(segmentPaths(t, dir)))
	if released == 0 {
		t.Fatalf("seed %d: no Release deleted anything; the test exercised nothing", seed)
	}
}

// TestReleaseBoundsSegmentCount writes a steady stream of Save+Sync with a
// snapshot every 50 entries at 100 behind the last index, releasing after
// each, and checks that the segment count stays bounded while everything
// above the snapshot survives.
func TestReleaseBoundsSegmentCount(t *testing.T) {
	dir := t.TempDir()
	// About 20 entries of this test's size fit a segment, so the 150 entries
	// kept at most (100 behind the snapshot, 50 until the next) take 8
	// segments, plus the partly released first one and the current one.
	opts := wal.Options{SegmentSizeBytes: 1024}
	const total, every, behind, bound = 5000, 50, 100, 12
	w, _ := mustOpen(t, dir, opts)
	maxSegments, releasedTotal := 0, 0
	var snap uint64
	for i := uint64(1); i <= total; i++ {
		if err := w.Save(&messages.HardState{Term: 1, Commit: i - 1}, entries(i, i, 1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if i%every == 0 && i > behind {
			snap = i - behind
			if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: snap, Term: 1}); err != nil {
				t.Fatal(err)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			n, err := w.Release()
			if err != nil {
				t.Fatal(err)
			}
			releasedTotal += n
		}
		maxSegments = max(maxSegments, len(segmentPaths(t, dir)))
	}
	mustClose(t, w)
	t.Logf("at most %d segments; %d released", maxSegments, releasedTotal)
	if maxSegments > bound {
		t.Fatalf("%d segments at once, want at most %d", maxSegments, bound)
	}
	if releasedTotal < total/25 {
		t.Fatalf("only %d segments released", releasedTotal)
	}
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	if r.Snapshot.GetIndex() != snap || r.HardState.GetCommit() != total-1 {
		t.Fatalf("snapshot %v hard state %v", r.Snapshot, r.HardState)
	}
	checkEntries(t, r.Entries, entries(snap+1, total, 1))
}

// writeReleasable writes entries 1..200 across many segments, a snapshot
// marker at 100 and then entries 201..210, and syncs. Entries 101..200 live
// in segments created before the marker.
func writeReleasable(t *testing.T, dir string, opts wal.Options) *wal.WAL {
	t.Helper()
	w, _ := mustOpen(t, dir, opts)
	if err := w.SaveMetadata([]byte("member 7")); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 200; i += 5 {
		if err := w.Save(&messages.HardState{Term: 1, Vote: 7, Commit: i}, entries(i, i+4, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: 100, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(&messages.HardState{Term: 1, Vote: 7, Commit: 205}, entries(201, 210, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	return w
}

func checkReleasableReplay(t *testing.T, r *wal.Replay) {
	t.Helper()
	if string(r.Metadata) != "member 7" || r.Snapshot.GetIndex() != 100 || r.HardState.GetCommit() != 205 || r.HardState.GetVote() != 7 {
		t.Fatalf("metadata %q snapshot %v hard state %v", r.Metadata, r.Snapshot, r.HardState)
	}
	checkEntries(t, r.Entries, entries(101, 210, 1))
}

// Entries between the snapshot index and the last index that live in old
// segments are kept, and so is everything Open needs to replay them.
func TestReleaseKeepsEntriesAboveSnapshot(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w := writeReleasable(t, dir, opts)
	before := len(segmentPaths(t, dir))
	n, err := w.Release()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n >= before {
		t.Fatalf("released %d of %d segments", n, before)
	}
	// Nothing more to release until the next snapshot marker.
	if n, err := w.Release(); n != 0 || err != nil {
		t.Fatalf("second Release = %d, %v", n, err)
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	var seq, first uint64
	if _, err := fmtSscan(filepath.Base(paths[0]), &seq, &first); err != nil {
		t.Fatal(err)
	}
	if seq != uint64(n) || first > 101 {
		t.Fatalf("first segment left is %s", filepath.Base(paths[0]))
	}
	if len(paths) > 1 {
		if _, err := fmtSscan(filepath.Base(paths[1]), &seq, &first); err != nil {
			t.Fatal(err)
		}
		if first <= 101 {
			t.Fatalf("kept %s although %s starts at or below the snapshot", filepath.Base(paths[0]), filepath.Base(paths[1]))
		}
	}
	w, r := mustOpen(t, dir, opts)
	checkReleasableReplay(t, r)
	// Appending, rotating and reopening continue from the released log.
	for i := uint64(211); i <= 300; i++ {
		if err := w.Save(nil, entries(i, i, 2)); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	w, r = mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkEntries(t, r.Entries, append(entries(101, 210, 1), entries(211, 300, 2)...))
}

func TestReleaseNothingToRelease(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _ := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	if n, err := w.Release(); n != 0 || err != nil {
		t.Fatalf("Release of an empty log = %d, %v", n, err)
	}
	if err := w.Save(nil, entries(1, 100, 1)); err != nil {
		t.Fatal(err)
	}
	// Without a snapshot marker every entry is needed.
	if n, err := w.Release(); n != 0 || err != nil {
		t.Fatalf("Release without a snapshot = %d, %v", n, err)
	}
	// A marker in the current segment's range releases the earlier ones
	// only; the current segment is never deleted.
	if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: 100, Term: 1}); err != nil {
		t.Fatal(err)
	}
	paths := segmentPaths(t, dir)
	n, err := w.Release()
	if err != nil || n != len(paths)-1 {
		t.Fatalf("Release = %d, %v; want %d", n, err, len(paths)-1)
	}
	if got := segmentPaths(t, dir); len(got) != 1 || got[0] != paths[len(paths)-1] {
		t.Fatalf("segments left %v", got)
	}
}

// A crash in the middle of Release, after it deleted only the oldest of the
// releasable segments, leaves a log that opens to the same replay, and the
// next Release finishes the job.
func TestReleaseCrashInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w := writeReleasable(t, dir, opts)
	mustClose(t, w)

	// Find how many segments Release deletes, on a copy.
	probe := copySegments(t, dir, 0)
	w, _ = mustOpen(t, probe, opts)
	n, err := w.Release()
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	if n < 3 {
		t.Fatalf("only %d releasable segments; the test needs 3", n)
	}
	for j := 1; j < n; j++ {
		crashed := copySegments(t, dir, j)
		w, r := mustOpen(t, crashed, opts)
		checkReleasableReplay(t, r)
		m, err := w.Release()
		if err != nil || m != n-j {
			t.Fatalf("crash after %d of %d: Release = %d, %v; want %d", j, n, m, err, n-j)
		}
		mustClose(t, w)
		_, r = mustOpen(t, crashed, opts)
		checkReleasableReplay(t, r)
	}
}

// Release deletes only a prefix; a missing segment in the middle is still
// refused, before and after a Release.
func TestReleaseMissingMiddleSegmentRefused(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w := writeReleasable(t, dir, opts)
	if _, err := w.Release(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(211); i <= 300; i++ {
		if err := w.Save(nil, entries(i, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	if len(paths) < 3 {
		t.Fatalf("%d segments", len(paths))
	}
	for _, victim := range []int{1, len(paths) / 2, len(paths) - 2} {
		crashed := copySegments(t, dir, 0)
		if err := os.Remove(filepath.Join(crashed, filepath.Base(paths[victim]))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := wal.Open(crashed, opts); !errors.Is(err, wal.ErrSegmentGap) {
			t.Fatalf("segment %d of %d missing: Open = %v, want ErrSegmentGap", victim, len(paths), err)
		}
	}
}

// Deleting leading segments whose entries are still needed is refused even
// when the first segment left holds no entry that would reveal the gap.
func TestOpenRefusesUncoveredMissingPrefix(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _ := mustOpen(t, dir, opts)
	if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: 5, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, entries(6, 30, 1)); err != nil {
		t.Fatal(err)
	}
	// Fill the next segment with hard state only, so it holds no entry.
	for len(segmentPaths(t, dir)) < 3 {
		if err := w.Save(&messages.HardState{Term: 1, Commit: 30}, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	if err := os.Remove(paths[0]); err != nil {
		t.Fatal(err)
	}
	_, _, err := wal.Open(dir, opts)
	ce := checkCorrupt(t, err, paths[1], 0)
	if !errors.Is(ce, wal.ErrMissingRecords) || !errors.Is(ce, wal.ErrNotContiguous) {
		t.Fatalf("%v does not wrap ErrMissingRecords and ErrNotContiguous", err)
	}
}

// A missing prefix whose entries were all replaced by a later truncation is
// exactly as harmless as a Release: Open accepts it.
func TestOpenAcceptsMissingPrefixReplacedByTruncation(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _ := mustOpen(t, dir, opts)
	if err := w.Save(nil, entries(1, 30, 1)); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentPaths(t, dir)); n < 2 {
		t.Fatalf("%d segments", n)
	}
	if err := w.Save(nil, entries(1, 3, 2)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	// Every segment but the one holding the truncation is gone.
	for _, p := range paths[:len(paths)-1] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkEntries(t, r.Entries, entries(1, 3, 2))
}

// A failed deletion fails the WAL, like any other I/O error.
func TestReleaseFailureIsPermanent(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w := writeReleasable(t, dir, opts)
	// Remove the oldest segment behind the WAL's back: deleting it fails.
	if err := os.Remove(segmentPaths(t, dir)[0]); err != nil {
		t.Fatal(err)
	}
	n, err := w.Release()
	if n != 0 || !errors.Is(err, wal.ErrFailed) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Release = %d, %v; want 0 and ErrFailed wrapping ErrNotExist", n, err)
	}
	if err := w.Save(nil, entries(211, 211, 1)); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Save after failed Release = %v", err)
	}
	if _, err := w.Release(); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Release after failed Release = %v", err)
	}
	if err := w.Close(); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Close = %v", err)
	}
	if _, err := w.Release(); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Release after Close = %v", err)
	}
	// What is left still opens: the gap is a prefix the snapshot covers.
	_, r := mustOpen(t, dir, opts)
	checkReleasableReplay(t, r)
}

func TestReleaseClosed(t *testing.T) {
	w, _ := mustOpen(t, t.TempDir(), wal.Options{})
	mustClose(t, w)
	if n, err := w.Release(); n != 0 || !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Release after Close = %d, %v", n, err)
	}
}

// One goroutine saves and records snapshot markers (as the WAL writer
// does) while others Sync and Release concurrently. Run with -race.
func TestConcurrentRelease(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 1024}
	w, _ := mustOpen(t, dir, opts)
	const n = 3000
	done := make(chan struct{})
	var wg sync.WaitGroup
	var released int
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
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			k, err := w.Release()
			if err != nil {
				t.Errorf("Release: %v", err)
				return
			}
			released += k
		}
	})
	// The other goroutines must stop before the test ends, so no t.Fatal here.
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(&messages.HardState{Term: 1, Commit: i - 1}, entries(i, i, 1)); err != nil {
			t.Error(err)
			break
		}
		if i%40 == 0 && i > 60 {
			if err := w.SaveSnapshot(&messages.SnapshotMeta{Index: i - 60, Term: 1}); err != nil {
				t.Error(err)
				break
			}
		}
	}
	close(done)
	wg.Wait()
	if t.Failed() {
		w.Close()
		return
	}
	mustClose(t, w)
	t.Logf("%d segments released concurrently; %d left", released, len(segmentPaths(t, dir)))
	w, r := mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkEntries(t, r.Entries, entries(n-60+1, n, 1))
}
