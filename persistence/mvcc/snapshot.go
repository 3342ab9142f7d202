package mvcc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent copy of the database file as of the Commit
// before OpenSnapshot, held by a bbolt read transaction. It may be read on
// any goroutine (one at a time) and must be closed: an open snapshot keeps
// bbolt from growing its memory map and Close of the store waits for it.
type Snapshot struct {
	tx *bolt.Tx
}

// OpenSnapshot commits the open batch and returns a snapshot of the file,
// whose consistent index is CommittedIndex. Writer goroutine only.
//
// Errors: those of Commit, or a wrapped bbolt error beginning the read
// transaction.
func (s *Store) OpenSnapshot() (*Snapshot, error) {
	if err := s.Commit(); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("mvcc: snapshot %s: %w", s.path, err)
	}
	return &Snapshot{tx: tx}, nil
}

// Size returns the size in bytes that WriteTo writes.
func (sn *Snapshot) Size() int64 { return sn.tx.Size() }

// WriteTo writes the whole database file, as of the snapshot, to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Close ends the read transaction. Closing twice is harmless.
func (sn *Snapshot) Close() error {
	if err := sn.tx.Rollback(); err != nil && !errors.Is(err, bolt.ErrTxClosed) {
		return err
	}
	return nil
}

// Verify opens the database file at path read-only, checks every record as
// Open does, and returns its consistent index. Safe on any goroutine for a
// file no store has open.
//
// Errors: an error wrapping ErrCorrupt for a file that is not a sound
// database, otherwise the I/O error.
func Verify(path string) (consistentIndex uint64, err error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("mvcc: verify %s: %w", path, err)
	}
	if info.Size() == 0 {
		return 0, fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	}
	probe := &Store{path: path, index: newIndex(), rev: 1, compactRev: -1, scheduledCompact: -1}
	if err := probe.load(Options{}); err != nil {
		return 0, err
	}
	return probe.applied, nil
}

// Restore replaces the store's contents with the database file at path (a
// snapshot received from the leader): it verifies that file, commits and
// closes the current one, renames path over it, fsyncs the directory,
// reopens it, rebuilds the index and the lease table, and publishes a view
// of it. Views published before keep answering from their overlays; reads of theirs
// that need the file answer rpcerr.Stopped. Writer goroutine only.
//
// Errors: an error from Verify (nothing changed: the store stays usable);
// otherwise an error after which the store is failed (Commit returns
// ErrFailed): the caller must stop, and a restart finds either the old file
// and path (rename not done) or the new file.
func (s *Store) Restore(path string) error {
	s.mustBeUsable()
	if _, err := Verify(path); err != nil {
		return fmt.Errorf("mvcc: restore: %w", err)
	}
	if err := s.Commit(); err != nil {
		return err
	}
	fail := func(err error) error {
		s.failed = fmt.Errorf("restore %s from %s: %w", s.path, path, err)
		return fmt.Errorf("mvcc: %w", s.failed)
	}
	if err := s.db.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(path, s.path); err != nil {
		return fail(err)
	}
	if err := SyncDir(filepath.Dir(s.path)); err != nil {
		return fail(err)
	}
	ns, err := Open(s.path, s.opts)
	if err != nil {
		return fail(err)
	}
	s.db = ns.db
	s.tx, s.keys, s.meta, s.leaseRecords = nil, nil, nil, nil
	s.index = ns.index
	s.leases.replace(&ns.leases)
	s.rev, s.compactRev, s.scheduledCompact = ns.rev, ns.compactRev, ns.scheduledCompact
	s.applied, s.committed = ns.applied, ns.committed
	s.overlay, s.pending = nil, 0
	s.events = nil
	s.dirty = true
	s.Publish()
	return nil
}

// SyncDir fsyncs the directory dir, making renames and removals in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
