package persistence_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence"
	"github.com/aetcd/aetcd/persistence/wal"
)

var (
	_ persistence.Log = (*wal.WAL)(nil)
	_ persistence.Log = (*persistence.MemLog)(nil)
)

// twin is the full method set *wal.WAL and MemLog share.
type twin interface {
	persistence.Log
	SaveMetadata([]byte) error
	SaveSnapshot(*messages.SnapshotMeta) error
	Release() (int, error)
}

// TestWALMatchesMemLog drives the WAL and its in-memory twin with the same
// random operations (appends, truncations, snapshots, metadata, releases,
// reopens, tiny segments) and checks that the WAL replays exactly the
// MemLog's state, that both accept and reject the same saves, and that
// Release changes neither.
func TestWALMatchesMemLog(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv("WAL_PROPERTY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with WAL_PROPERTY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	dir := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 512}
	w, _, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	model := persistence.NewMemLog()
	var last, term uint64 = 0, 1

	for step := range 600 {
		var errW, errM error
		apply := func(fn func(l twin) error) {
			errW, errM = fn(w), fn(model)
		}
		switch op := rng.IntN(20); {
		case op < 10: // append, sometimes after truncating
			from := last + 1
			if rng.IntN(4) == 0 && last > 0 {
				from = 1 + rng.Uint64N(last)
				term++
			}
			if rng.IntN(30) == 0 {
				from = last + 2 // a gap: both must refuse
			}
			batch := ents(from, from+rng.Uint64N(4), term)
			var hs *messages.HardState
			if rng.IntN(2) == 0 {
				hs = &messages.HardState{Term: term, Vote: rng.Uint64N(3), Commit: rng.Uint64N(from)}
			}
			apply(func(l twin) error { return l.Save(hs, batch) })
			if errW == nil {
				last = batch[len(batch)-1].Index
			}
		case op < 12:
			snap := &messages.SnapshotMeta{Index: rng.Uint64N(last + 3), Term: term}
			apply(func(l twin) error { return l.SaveSnapshot(snap) })
			if errW == nil {
				last = max(last, snap.Index)
			}
		case op < 13:
			meta := []byte(strconv.Itoa(step))
			apply(func(l twin) error { return l.SaveMetadata(meta) })
		case op < 15:
			apply(func(l twin) error { return l.Sync() })
		case op < 17: // release what replay no longer needs; the state must not change
			before := model.Saved()
			apply(func(l twin) error { _, err := l.Release(); return err })
			if errW == nil && errM == nil {
				compare(t, seed, step, asReplay(model.Saved()), before)
				compare(t, seed, step, asReplay(model.Durable()), before)
			}
		default: // reopen the WAL
			if err := w.Close(); err != nil {
				t.Fatalf("step %d: Close: %v", step, err)
			}
			var r *wal.Replay
			if w, r, err = wal.Open(dir, opts); err != nil {
				t.Fatalf("seed %d step %d: reopen: %v", seed, step, err)
			}
			compare(t, seed, step, r, model.Saved())
		}
		if (errW == nil) != (errM == nil) {
			t.Fatalf("seed %d step %d: WAL error %v, MemLog error %v", seed, step, errW, errM)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, r, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	compare(t, seed, -1, r, model.Saved())
}

func asReplay(s persistence.LogState) *wal.Replay {
	return &wal.Replay{Metadata: s.Metadata, HardState: s.HardState, Snapshot: s.Snapshot, Entries: s.Entries}
}

func compare(t *testing.T, seed uint64, step int, r *wal.Replay, want persistence.LogState) {
	t.Helper()
	next := r.Snapshot.GetIndex() + 1
	for _, e := range r.Entries {
		if e.Index != next {
			t.Fatalf("seed %d step %d: replayed entries %v after snapshot %v have a gap", seed, step, indexes(r.Entries), r.Snapshot)
		}
		next++
	}
	if string(r.Metadata) != string(want.Metadata) || (r.Metadata == nil) != (want.Metadata == nil) ||
		!proto.Equal(r.HardState, want.HardState) || !proto.Equal(r.Snapshot, want.Snapshot) ||
		!equalEntries(r.Entries, want.Entries) {
		t.Fatalf("seed %d step %d: WAL replay (meta %q hs %v snap %v entries %v) differs from MemLog (meta %q hs %v snap %v entries %v)",
			seed, step, r.Metadata, r.HardState, r.Snapshot, indexes(r.Entries),
			want.Metadata, want.HardState, want.Snapshot, indexes(want.Entries))
	}
}
