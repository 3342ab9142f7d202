package persistence

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
)

// Errors returned by MemLog. They mirror wal.ErrClosed and
// wal.ErrNotContiguous (this package cannot import wal).
var (
	ErrLogClosed        = errors.New("persistence: log closed")
	ErrLogNotContiguous = errors.New("persistence: entry index not contiguous")
)

// LogState is the content of a log as the WAL's Open would replay it.
type LogState struct {
	Metadata  []byte                 // last metadata, nil if none
	HardState *messages.HardState    // last hard state, nil if none
	Snapshot  *messages.SnapshotMeta // last snapshot marker, nil if none
	Entries   []*messages.Entry      // entries above Snapshot.Index, truncations applied
}

// MemLog is the in-memory twin of *wal.WAL for tests of the layers above. It
// keeps every record in memory (until Release compacts them) and follows the
// same rules: entry indexes must be between 1 and one above the last index
// (ErrLogNotContiguous, nothing saved), a lower index replaces the tail, and
// a failed Sync is permanent. Durable reports what a crash would leave: the
// records saved before the last successful Sync.
//
// All methods are safe for concurrent use.
type MemLog struct {
	mu        sync.Mutex
	records   []memRecord
	durable   int    // records[:durable] were covered by a successful Sync or Close
	lastEntry uint64 // index bookkeeping, as in the WAL
	snapshot  uint64
	syncs     int
	syncErr   error // injected: the next Sync fails with it
	err       error // permanent failure
	closed    bool
}

// memRecord is one saved record; exactly one field is set.
type memRecord struct {
	entry    *messages.Entry
	hs       *messages.HardState
	snap     *messages.SnapshotMeta
	metadata []byte // non-nil for a metadata record
}

var _ Log = (*MemLog)(nil)

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog { return &MemLog{} }

// Save records ents, then hs if not nil; see Log. The messages are cloned.
// Errors: ErrLogNotContiguous, ErrLogClosed, or the permanent Sync failure.
func (m *MemLog) Save(hs *messages.HardState, ents []*messages.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	last := m.lastEntry
	for _, e := range ents {
		if i := e.GetIndex(); i == 0 || i > max(last, m.snapshot)+1 {
			return fmt.Errorf("%w: entry index %d after last index %d", ErrLogNotContiguous, i, max(last, m.snapshot))
		}
		last = e.GetIndex()
	}
	for _, e := range ents {
		m.records = append(m.records, memRecord{entry: proto.CloneOf(e)})
	}
	if hs != nil {
		m.records = append(m.records, memRecord{hs: proto.CloneOf(hs)})
	}
	m.lastEntry = last
	return nil
}

// SaveMetadata records b, like wal.WAL.SaveMetadata.
func (m *MemLog) SaveMetadata(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	m.records = append(m.records, memRecord{metadata: append([]byte{}, b...)})
	return nil
}

// SaveSnapshot records a snapshot marker, like wal.WAL.SaveSnapshot: a
// marker below the previous one is refused with ErrLogNotContiguous. It
// panics if meta is nil.
func (m *MemLog) SaveSnapshot(meta *messages.SnapshotMeta) error {
	if meta == nil {
		panic("persistence: MemLog.SaveSnapshot(nil)")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	if meta.Index < m.snapshot {
		return fmt.Errorf("%w: snapshot index %d below the previous snapshot %d", ErrLogNotContiguous, meta.Index, m.snapshot)
	}
	m.records = append(m.records, memRecord{snap: proto.CloneOf(meta)})
	m.snapshot = meta.Index
	return nil
}

// Sync marks every record saved so far durable and counts the call. If an
// error was injected with SetSyncError, Sync returns it instead, nothing
// more becomes durable, and every later call returns the same error.
func (m *MemLog) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrLogClosed
	}
	m.syncs++
	if m.err != nil {
		return m.err
	}
	if m.syncErr != nil {
		m.err = m.syncErr
		return m.err
	}
	m.durable = len(m.records)
	return nil
}

// Close makes every saved record durable (unless the log failed) and closes
// the log; it does not count as a Sync. Errors: ErrLogClosed if already
// closed, the permanent failure if the log failed.
func (m *MemLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrLogClosed
	}
	m.closed = true
	if m.err != nil {
		return m.err
	}
	m.durable = len(m.records)
	return nil
}

// Release is the twin of wal.WAL.Release: it drops the records that replay
// no longer needs, so that Saved and Durable return what they did before.
// Like the WAL it first makes every saved record durable, as Sync does (an
// error injected with SetSyncError fails it and the log, as it would fail
// Sync), without counting as a Sync. It then keeps only the last metadata,
// snapshot marker and hard state, and the entries above the snapshot. It
// returns the number of records dropped; MemLog has no segments, so the
// count is not comparable with the WAL's.
//
// Errors: ErrLogClosed, or the permanent Sync failure.
func (m *MemLog) Release() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return 0, err
	}
	if m.syncErr != nil {
		m.err = m.syncErr
		return 0, m.err
	}
	st := replayRecords(m.records)
	var kept []memRecord
	if st.Metadata != nil {
		kept = append(kept, memRecord{metadata: st.Metadata})
	}
	if st.Snapshot != nil {
		kept = append(kept, memRecord{snap: st.Snapshot})
	}
	if st.HardState != nil {
		kept = append(kept, memRecord{hs: st.HardState})
	}
	for _, e := range st.Entries {
		kept = append(kept, memRecord{entry: e})
	}
	dropped := len(m.records) - len(kept)
	m.records, m.durable = kept, len(kept)
	return dropped, nil
}

// SetSyncError makes the next Sync fail with err (nil cancels a pending
// injection). As with a real failed fdatasync, the log stays failed.
func (m *MemLog) SetSyncError(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncErr = err
}

// Syncs returns how many times Sync was called, failed calls included.
func (m *MemLog) Syncs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

// Saved returns everything saved, durable or not. The result is a copy.
func (m *MemLog) Saved() LogState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return replayRecords(m.records)
}

// Durable returns what a crash would leave: the records saved before the
// last successful Sync (or Close). The result is a copy.
func (m *MemLog) Durable() LogState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return replayRecords(m.records[:m.durable])
}

func (m *MemLog) usable() error {
	if m.closed {
		return ErrLogClosed
	}
	return m.err
}

// replayRecords applies records as wal.Open does and returns copies.
func replayRecords(records []memRecord) LogState {
	var st LogState
	var ents []*messages.Entry
	for _, r := range records {
		switch {
		case r.entry != nil:
			// Indexes are contiguous, so the entries at or above the new
			// one are a suffix.
			for len(ents) > 0 && ents[len(ents)-1].Index >= r.entry.Index {
				ents = ents[:len(ents)-1]
			}
			ents = append(ents, r.entry)
		case r.hs != nil:
			st.HardState = r.hs
		case r.snap != nil:
			st.Snapshot = r.snap
		case r.metadata != nil:
			st.Metadata = r.metadata
		}
	}
	var after uint64
	if st.Snapshot != nil {
		after = st.Snapshot.Index
		st.Snapshot = proto.CloneOf(st.Snapshot)
	}
	if st.HardState != nil {
		st.HardState = proto.CloneOf(st.HardState)
	}
	if st.Metadata != nil {
		st.Metadata = append([]byte{}, st.Metadata...)
	}
	for _, e := range ents {
		if e.Index > after {
			st.Entries = append(st.Entries, proto.CloneOf(e))
		}
	}
	return st
}
