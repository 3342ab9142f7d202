package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aetcd/aetcd/messages"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket and meta key names (as etcd's schema).
var (
	keyBucketName       = []byte("key")
	metaBucketName      = []byte("meta")
	consistentIndexKey  = []byte("consistent_index")
	scheduledCompactKey = []byte("scheduledCompactRev")
	finishedCompactKey  = []byte("finishedCompactRev")
)

const (
	// lockTimeout bounds how long Open waits for another process's lock on
	// the file.
	lockTimeout = 10 * time.Second
	// keyFillPercent packs the key bucket's pages: its keys are appended in
	// ascending order.
	keyFillPercent = 0.9
)

// Options configure Open.
type Options struct {
	// NoSync skips fsync on commit. Tests only: a crash may lose or corrupt
	// committed data.
	NoSync bool
	// InitialMmapSize is the initial size in bytes of bbolt's memory map
	// (0: bbolt's default). Growing the map waits for every open read
	// transaction, so a map as large as the expected database avoids stalls.
	InitialMmapSize int
	// MinLeaseTTL is the smallest lease TTL in seconds: a grant with a
	// smaller TTL, and a lease read from the file with one, gets this TTL
	// (0: no minimum).
	MinLeaseTTL int64
}

// Store is the MVCC key-value store over one bbolt file. See the package
// documentation for which methods are safe on which goroutines.
type Store struct {
	path string
	opts Options
	db   *bolt.DB

	tx           *bolt.Tx // the open batch; nil between Commit and the next write
	keys         *bolt.Bucket
	meta         *bolt.Bucket
	leaseRecords *bolt.Bucket

	index      *index
	rev        int64 // revision of the last write
	compactRev int64 // revision of the last compaction; -1 if none (as etcd)
	// scheduledCompact is the scheduled compaction found by Open.
	scheduledCompact int64

	applied   uint64 // Raft index of the last applied entry
	committed uint64 // applied as of the last Commit
	pending   int    // entries applied since the last Commit

	// overlay holds the records written since the last Commit, ascending by
	// revision. It is only appended to; Commit starts a new slice, so a
	// prefix handed to a View never changes.
	overlay []record
	dirty   bool // changed since the last Publish
	// events are the events of the records written since the last
	// TakeEvents.
	events []*messages.Event

	failed error // a failed commit: the store is unusable
	closed bool

	view atomic.Pointer[View]

	// leases is the lease table (see leaseTable for its locking).
	leases leaseTable
}

// record is one change as stored in bucket "key".
type record struct {
	rev       revision
	kv        *messages.KeyValue // immutable; a tombstone carries only its key
	tombstone bool
}

// Open opens or creates the database file at path and rebuilds the key index
// from it. It fails with an error wrapping ErrCorrupt if the file is not a
// bbolt database, has damaged pages, or holds buckets or records this
// package does not write or that contradict each other (see Integrity in
// the package documentation); with a wrapped bbolt timeout error if another
// process holds the file; otherwise with the I/O error.
func Open(path string, opts Options) (*Store, error) {
	s := &Store{path: path, opts: opts, index: newIndex(), rev: 1, compactRev: -1, scheduledCompact: -1}
	// Restore from a read-only open first: it walks every page in this
	// goroutine, where damage becomes an error. (A read-write open rebuilds
	// bbolt's freelist in a goroutine of its own, where a damaged page would
	// crash the process.)
	switch info, err := os.Stat(path); {
	case err == nil && info.Size() > 0:
		if err := s.load(opts); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("mvcc: open %s: %w", path, err)
	}
	db, err := openBolt(path, opts, false)
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := createBuckets(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("mvcc: open %s: create buckets: %w", path, err)
	}
	if s.scheduledCompact > s.compactRev {
		// A compaction recorded as scheduled but not finished (not written
		// by this package, whose compactions are atomic): finish it.
		s.compact(s.scheduledCompact)
		if err := s.Commit(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	s.dirty = true
	s.Publish()
	return s, nil
}

// createBuckets creates buckets "key", "meta" and "lease" and the record
// format (in one transaction) if they do not exist.
func createBuckets(db *bolt.DB) error {
	names := [][]byte{keyBucketName, metaBucketName, leaseBucketName}
	exist := false
	_ = db.View(func(tx *bolt.Tx) error {
		exist = true
		for _, name := range names {
			exist = exist && tx.Bucket(name) != nil
		}
		return nil
	})
	if exist {
		return nil
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range names {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(metaBucketName)
		if meta.Get(recordFormatKey) != nil {
			return nil
		}
		return putSealed(meta, recordFormatKey, formatSealed)
	})
}

func openBolt(path string, opts Options, readOnly bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: open %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         lockTimeout,
		NoSync:          opts.NoSync,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
		ReadOnly:        readOnly,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), strings.Contains(err.Error(), "file size too small"):
		return nil, fmt.Errorf("%w: open %s: %w", ErrCorrupt, path, err)
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("mvcc: open %s: file locked by another process: %w", path, err)
	default:
		return nil, fmt.Errorf("mvcc: open %s: %w", path, err)
	}
}

// load checks the file (checkFile, checkBuckets, restore) and restores the
// index, revisions and consistent index from a read-only open of it,
// walking every page of every bucket. A panic or memory fault inside bbolt
// (a damaged page checkFile did not catch) becomes ErrCorrupt.
func (s *Store) load(opts Options) (err error) {
	if err := checkFile(s.path); err != nil {
		return err
	}
	db, err := openBolt(s.path, opts, true)
	if err != nil {
		return err
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if err := checkBuckets(tx); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		return s.restore(tx)
	})
}

// metaRev reads a revision stored in bucket meta.
func metaRev(meta *bolt.Bucket, name []byte) (int64, bool, error) {
	v, err := getSealed(meta, name)
	if err != nil {
		return 0, false, fmt.Errorf("meta %s: %w", name, err)
	}
	if v == nil {
		return 0, false, nil
	}
	rev, tomb, err := parseRevKey(v)
	if err != nil || tomb || rev.sub != 0 {
		return 0, false, fmt.Errorf("meta %s = %x is not a revision", name, v)
	}
	return rev.main, true, nil
}

// restore rebuilds the index, revisions, consistent index and lease table
// from the buckets in tx (all may be missing: a file not yet initialised;
// otherwise all must exist, with the record format).
func (s *Store) restore(tx *bolt.Tx) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, s.path, fmt.Sprintf(format, args...))
	}
	meta, keys := tx.Bucket(metaBucketName), tx.Bucket(keyBucketName)
	switch {
	case meta == nil && keys == nil:
		return nil
	case meta == nil || keys == nil: // both are created in one transaction
		return corrupt("bucket %q is missing", map[bool]string{true: "meta", false: "key"}[meta == nil])
	}
	if format := meta.Get(recordFormatKey); format == nil {
		return corrupt("no record format in bucket meta: written by an aetcd without record checksums, which this one does not read")
	} else if v, err := unseal(recordFormatKey, format); err != nil || !bytes.Equal(v, formatSealed) {
		return corrupt("meta recordFormat = %x (%v), want sealed %x", format, err, formatSealed)
	}
	if tx.Bucket(leaseBucketName) == nil { // created with the others
		return corrupt("bucket \"lease\" is missing")
	}
	if v, err := getSealed(meta, consistentIndexKey); err != nil {
		return corrupt("meta %s: %v", consistentIndexKey, err)
	} else if v != nil {
		if len(v) != 8 {
			return corrupt("meta consistent_index has %d bytes, want 8", len(v))
		}
		s.applied = binary.BigEndian.Uint64(v)
		s.committed = s.applied
	}
	finished, found, err := metaRev(meta, finishedCompactKey)
	if err != nil {
		return corrupt("%v", err)
	}
	if found {
		s.compactRev = finished
	}
	scheduled, found, err := metaRev(meta, scheduledCompactKey)
	if err != nil {
		return corrupt("%v", err)
	}
	if found {
		s.scheduledCompact = scheduled
	}

	// leaseOf maps each key whose latest record so far is a put with a
	// lease to that lease.
	leaseOf := make(map[string]int64)
	var last revision
	c := keys.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		rev, tomb, err := parseRevKey(k)
		if err == nil && rev.main < 2 {
			err = fmt.Errorf("record at revision %s: the first write is revision 2", revString(rev))
		}
		if err != nil {
			return corrupt("bucket key: %v", err)
		}
		if !rev.greater(last) {
			return corrupt("bucket key: revision %s recorded twice", revString(rev))
		}
		last = rev
		v, err := unseal(k, v)
		if err != nil {
			return corrupt("record %s: %v", revString(rev), err)
		}
		kv := new(messages.KeyValue)
		if err := decodeExact(v, kv); err != nil {
			return corrupt("record %s does not decode: %v", revString(rev), err)
		}
		if len(kv.Key) == 0 {
			return corrupt("record %s has an empty key", revString(rev))
		}
		if kv.Lease != 0 && !tomb {
			leaseOf[string(kv.Key)] = kv.Lease
		} else {
			delete(leaseOf, string(kv.Key))
		}
		ki := s.index.lookup(kv.Key)
		if tomb && (kv.CreateRevision != 0 || kv.ModRevision != 0 || kv.Version != 0 || kv.Lease != 0 || kv.Value != nil) {
			return corrupt("tombstone %s of key %q holds more than the key", revString(rev), kv.Key)
		}
		if tomb {
			if ki == nil {
				ki = &keyIndex{key: kv.Key}
				ki.restoreTombstone(rev)
				s.index.tree.ReplaceOrInsert(ki)
			} else if !ki.tombstone(rev) {
				return corrupt("record %s deletes key %q, which does not exist then", revString(rev), kv.Key)
			}
			continue
		}
		if kv.ModRevision != rev.main || kv.Version < 1 || kv.CreateRevision < 1 || kv.CreateRevision > rev.main {
			return corrupt("record %s of key %q has mod_revision %d, create_revision %d, version %d",
				revString(rev), kv.Key, kv.ModRevision, kv.CreateRevision, kv.Version)
		}
		if ki == nil {
			ki = &keyIndex{key: kv.Key}
			ki.restore(revision{main: kv.CreateRevision}, rev, kv.Version)
			s.index.tree.ReplaceOrInsert(ki)
			continue
		}
		wantVer, wantCreate := int64(1), rev.main
		if g := &ki.generations[len(ki.generations)-1]; !g.isEmpty() {
			wantVer, wantCreate = g.ver+1, g.created.main
		}
		if kv.Version != wantVer || (wantCreate != 0 && kv.CreateRevision != wantCreate) {
			return corrupt("record %s of key %q has version %d and create_revision %d, want %d and %d",
				revString(rev), kv.Key, kv.Version, kv.CreateRevision, wantVer, wantCreate)
		}
		ki.put(rev)
	}
	if last.main != 0 && s.applied == 0 {
		return corrupt("bucket key holds records but meta has no consistent_index")
	}
	s.rev = max(1, last.main, s.compactRev, s.scheduledCompact)
	if err := s.restoreLeases(tx.Bucket(leaseBucketName), leaseOf); err != nil {
		return corrupt("bucket lease: %v", err)
	}
	return nil
}

// ConsistentIndex returns the Raft index of the last entry applied (by Apply
// or SetConsistentIndex). It is written in the same bbolt transaction as that
// entry's changes, so after a crash the reopened store reports the last
// committed one and the caller replays the rest from its log.
func (s *Store) ConsistentIndex() uint64 { return s.applied }

// CommittedIndex returns the consistent index as of the last Commit: every
// entry up to it is durable in the database file.
func (s *Store) CommittedIndex() uint64 { return s.committed }

// Rev returns the current revision (1 in a fresh store).
func (s *Store) Rev() int64 { return s.rev }

// CompactRev returns the revision of the last compaction, or -1 if the store
// has never been compacted (etcd reports -1 too).
func (s *Store) CompactRev() int64 { return s.compactRev }

// Pending returns the number of entries applied (Apply or
// SetConsistentIndex) since the last Commit.
func (s *Store) Pending() int { return s.pending }

// SetConsistentIndex records idx as applied for a Raft entry that carries no
// write. It panics if idx <= ConsistentIndex().
func (s *Store) SetConsistentIndex(idx uint64) {
	s.advance(idx)
}

func (s *Store) advance(idx uint64) {
	s.mustBeUsable()
	if idx <= s.applied {
		panic(fmt.Sprintf("mvcc: entry %d applied again: consistent index is already %d", idx, s.applied))
	}
	s.applied = idx
	s.pending++
}

func (s *Store) mustBeUsable() {
	if s.closed {
		panic("mvcc: store used after Close")
	}
	if s.failed != nil {
		panic(fmt.Sprintf("mvcc: store used after a failed commit: %v", s.failed))
	}
}

// batch returns the open bbolt write transaction, beginning one if needed.
// Failing to begin one means the database is unusable: it panics.
func (s *Store) batch() *bolt.Tx {
	if s.tx != nil {
		return s.tx
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		panic(fmt.Sprintf("mvcc: %s: begin write transaction: %v", s.path, err))
	}
	s.tx, s.keys, s.meta = tx, tx.Bucket(keyBucketName), tx.Bucket(metaBucketName)
	s.leaseRecords = tx.Bucket(leaseBucketName)
	s.keys.FillPercent = keyFillPercent
	return tx
}

// Publish makes everything applied so far visible to View (and returns that
// view) without committing: it costs a B-tree clone, not an fsync. If
// nothing changed since the last Publish it returns the current view.
func (s *Store) Publish() *View {
	if v := s.view.Load(); v != nil && !s.dirty {
		return v
	}
	n := len(s.overlay)
	v := &View{
		tree:       s.index.snapshot(),
		rev:        s.rev,
		compactRev: s.compactRev,
		overlay:    s.overlay[:n:n],
		db:         s.db,
		latest:     &s.view,
	}
	s.view.Store(v)
	s.dirty = false
	return v
}

// View returns the newest published view. Safe on any goroutine.
func (s *Store) View() *View { return s.view.Load() }

// Commit commits the open batch, with the consistent index, to the file
// (bbolt fsyncs unless Options.NoSync). Afterwards readers find those
// records in the file. It returns ErrClosed after Close and, once a commit
// has failed, an error wrapping ErrFailed: the store must then be closed and
// reopened, and the caller must replay its log from CommittedIndex.
func (s *Store) Commit() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, s.failed)
	}
	if s.tx == nil && s.applied == s.committed {
		return nil
	}
	s.batch()
	var ci [8]byte
	binary.BigEndian.PutUint64(ci[:], s.applied)
	err := putSealed(s.meta, consistentIndexKey, ci[:])
	if err == nil {
		err = s.tx.Commit()
	} else {
		_ = s.tx.Rollback()
	}
	s.tx, s.keys, s.meta, s.leaseRecords = nil, nil, nil, nil
	if err != nil {
		s.failed = fmt.Errorf("commit %s: %w", s.path, err)
		return fmt.Errorf("mvcc: %w", s.failed)
	}
	s.committed = s.applied
	s.overlay = nil
	s.pending = 0
	return nil
}

// Close commits the open batch (unless a commit failed) and closes the file.
// Views keep answering from their overlays; reads that need the file answer
// rpcerr.Stopped. Closing twice returns ErrClosed.
func (s *Store) Close() error {
	if s.closed {
		return ErrClosed
	}
	var err error
	if s.failed == nil {
		err = s.Commit()
	}
	s.closed = true
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("mvcc: close %s: %w", s.path, cerr))
	}
	return err
}

// Size returns the size of the database file as of the last commit and the
// part of it in use (not on bbolt's freelist), in bytes. Safe on any
// goroutine; zeros after Close.
func (s *Store) Size() (dbSize, dbSizeInUse int64) {
	// The newest view's file: Restore replaces s.db on the writer goroutine.
	db := s.view.Load().db
	var pageSize int64
	if err := db.View(func(tx *bolt.Tx) error {
		dbSize = tx.Size()
		// Info reads the mmap, which a commit may remap; a read tx
		// holds that off.
		pageSize = int64(db.Info().PageSize)
		return nil
	}); err != nil {
		return 0, 0
	}
	free := int64(db.Stats().FreePageN) * pageSize
	return dbSize, max(dbSize-free, 0)
}
