package persistence_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence"
)

func ents(from, to, term uint64) []*messages.Entry {
	var es []*messages.Entry
	for i := from; i <= to; i++ {
		es = append(es, &messages.Entry{Term: term, Index: i, Data: []byte{byte(i), byte(term)}})
	}
	return es
}

func indexes(es []*messages.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index*100+e.Term)
	}
	return out
}

func equalEntries(a, b []*messages.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestMemLogSavedAndDurable(t *testing.T) {
	m := persistence.NewMemLog()
	if err := m.Save(&messages.HardState{Term: 1, Commit: 2}, ents(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if got := m.Durable(); len(got.Entries) != 0 || got.HardState != nil {
		t.Fatalf("durable before Sync: %+v", got)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	// Truncate from 4 in term 2, unsynced.
	if err := m.Save(&messages.HardState{Term: 2, Commit: 3}, ents(4, 6, 2)); err != nil {
		t.Fatal(err)
	}
	want := append(ents(1, 3, 1), ents(4, 6, 2)...)
	if got := m.Saved(); !equalEntries(got.Entries, want) || got.HardState.GetTerm() != 2 {
		t.Fatalf("saved %v hs %v, want %v", indexes(got.Entries), got.HardState, indexes(want))
	}
	if got := m.Durable(); !equalEntries(got.Entries, ents(1, 5, 1)) || got.HardState.GetTerm() != 1 {
		t.Fatalf("durable %v hs %v", indexes(got.Entries), got.HardState)
	}
	if m.Syncs() != 1 {
		t.Fatalf("Syncs() = %d", m.Syncs())
	}
	// A snapshot hides the entries at or below it.
	if err := m.SaveSnapshot(&messages.SnapshotMeta{Index: 4, Term: 2}); err != nil {
		t.Fatal(err)
	}
	if got := m.Saved(); !equalEntries(got.Entries, ents(5, 6, 2)) || got.Snapshot.GetIndex() != 4 {
		t.Fatalf("after snapshot: %v %v", indexes(got.Entries), got.Snapshot)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := m.Durable(); !equalEntries(got.Entries, ents(5, 6, 2)) {
		t.Fatalf("durable after Close: %v", indexes(got.Entries))
	}
}

func TestMemLogReturnsCopies(t *testing.T) {
	m := persistence.NewMemLog()
	e := ents(1, 1, 1)
	if err := m.Save(nil, e); err != nil {
		t.Fatal(err)
	}
	e[0].Term = 99
	got := m.Saved()
	got.Entries[0].Term = 98
	if m.Saved().Entries[0].Term != 1 {
		t.Fatal("MemLog shares messages with its callers")
	}
}

func TestMemLogRejectsNonContiguous(t *testing.T) {
	m := persistence.NewMemLog()
	for _, bad := range [][]*messages.Entry{ents(0, 0, 1), ents(2, 2, 1), append(ents(1, 1, 1), ents(3, 3, 1)...)} {
		if err := m.Save(&messages.HardState{Term: 5}, bad); !errors.Is(err, persistence.ErrLogNotContiguous) {
			t.Fatalf("Save(%v) = %v", indexes(bad), err)
		}
	}
	if got := m.Saved(); got.HardState != nil || len(got.Entries) != 0 {
		t.Fatalf("rejected Save stored %+v", got)
	}
	if err := m.SaveSnapshot(&messages.SnapshotMeta{Index: 10}); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(nil, ents(11, 11, 1)); err != nil {
		t.Fatalf("entry after snapshot: %v", err)
	}
}

func TestMemLogSyncErrorIsPermanent(t *testing.T) {
	m := persistence.NewMemLog()
	injected := errors.New("injected EIO")
	if err := m.Save(nil, ents(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	m.SetSyncError(injected)
	if err := m.Sync(); !errors.Is(err, injected) {
		t.Fatalf("Sync = %v", err)
	}
	if err := m.Save(nil, ents(3, 3, 1)); !errors.Is(err, injected) {
		t.Fatalf("Save after failed Sync = %v", err)
	}
	if err := m.Sync(); !errors.Is(err, injected) {
		t.Fatalf("second Sync = %v", err)
	}
	if len(m.Durable().Entries) != 0 {
		t.Fatal("entries durable despite failed Sync")
	}
	if m.Syncs() != 2 {
		t.Fatalf("Syncs() = %d, want 2", m.Syncs())
	}
	if err := m.Close(); !errors.Is(err, injected) {
		t.Fatalf("Close = %v", err)
	}
	if err := m.Save(nil, nil); !errors.Is(err, persistence.ErrLogClosed) {
		t.Fatalf("Save after Close = %v", err)
	}
}

func TestMemLogRelease(t *testing.T) {
	m := persistence.NewMemLog()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.SaveMetadata([]byte("m1")))
	must(m.Save(&messages.HardState{Term: 1, Commit: 1}, ents(1, 10, 1)))
	must(m.SaveMetadata([]byte("m2")))
	must(m.SaveSnapshot(&messages.SnapshotMeta{Index: 6, Term: 1}))
	must(m.Save(&messages.HardState{Term: 2, Commit: 7}, ents(9, 12, 2)))
	want := m.Saved()
	n, err := m.Release()
	if err != nil {
		t.Fatal(err)
	}
	// 2 metadata, 14 entries, 2 hard states and a marker become one of each
	// state record and the 6 entries above the marker.
	if n != 19-9 {
		t.Fatalf("Release dropped %d records, want 10", n)
	}
	for name, got := range map[string]persistence.LogState{"saved": m.Saved(), "durable": m.Durable()} {
		if string(got.Metadata) != string(want.Metadata) || !proto.Equal(got.HardState, want.HardState) ||
			!proto.Equal(got.Snapshot, want.Snapshot) || !equalEntries(got.Entries, want.Entries) {
			t.Fatalf("%s after Release: %+v, want %+v", name, got, want)
		}
	}
	if m.Syncs() != 0 {
		t.Fatalf("Release counted as %d Syncs", m.Syncs())
	}
	// Index bookkeeping is unchanged: truncating below the marker still works.
	must(m.Save(nil, ents(5, 7, 3)))
	if got := m.Saved(); !equalEntries(got.Entries, ents(7, 7, 3)) {
		t.Fatalf("after truncation: %v", indexes(got.Entries))
	}
	// The 6 entries above the marker and the 3 truncating ones become 1.
	if n, err := m.Release(); err != nil || n != 8 {
		t.Fatalf("second Release = %d, %v; want 8", n, err)
	}

	injected := errors.New("injected EIO")
	must(m.Save(nil, ents(8, 8, 3)))
	m.SetSyncError(injected)
	if _, err := m.Release(); !errors.Is(err, injected) {
		t.Fatalf("Release with a failing sync = %v", err)
	}
	if got := m.Durable(); !equalEntries(got.Entries, ents(7, 7, 3)) {
		t.Fatalf("durable after failed Release: %v", indexes(got.Entries))
	}
	if err := m.Sync(); !errors.Is(err, injected) {
		t.Fatalf("Sync after failed Release = %v", err)
	}
	m.Close()
	if _, err := m.Release(); !errors.Is(err, persistence.ErrLogClosed) {
		t.Fatalf("Release after Close = %v", err)
	}
}
