package wal_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// TestSyncFaultFailsTheWAL: an injected fdatasync error fails Sync and
// every later call with ErrFailed (the WAL never continues after a failed
// fdatasync), and a reopen replays what the last good Sync covered.
func TestSyncFaultFailsTheWAL(t *testing.T) {
	dir := t.TempDir()
	var fail bool
	w, _ := mustOpen(t, dir, wal.Options{SyncFault: func() error {
		if fail {
			return syscall.EIO
		}
		return nil
	}})
	hs := &messages.HardState{Term: 1, Commit: 3}
	if err := w.Save(hs, entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync without a fault: %v", err)
	}
	fail = true
	if err := w.Save(hs, entries(4, 5, 1)); err != nil {
		t.Fatal(err)
	}
	err := w.Sync()
	if !errors.Is(err, wal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with an injected EIO = %v, want ErrFailed wrapping EIO", err)
	}
	fail = false
	if err := w.Save(hs, entries(6, 6, 1)); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Save after a failed Sync = %v, want ErrFailed", err)
	}
	if err := w.Sync(); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Sync after a failed Sync = %v, want ErrFailed", err)
	}
	_ = w.Close()

	w2, r := mustOpen(t, dir, wal.Options{})
	defer mustClose(t, w2)
	// Entries 4 and 5 were written before the failed sync; the page cache
	// still holds them here, so they may replay. Nothing before them is lost.
	if len(r.Entries) < 3 {
		t.Fatalf("reopen replayed %s, want at least the synced entries 1..3", describe(r.Entries))
	}
	checkEntries(t, r.Entries[:3], entries(1, 3, 1))
}
