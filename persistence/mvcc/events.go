package mvcc

import (
	"fmt"
	"slices"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"google.golang.org/protobuf/proto"
)

// TakeEvents returns the events of every change recorded since the last
// call (or since Open or Restore), ascending by revision and sub-revision,
// and forgets them. Writer goroutine only; the writer should call it after
// every Apply, as pending events are kept until taken.
//
// A PUT event's Kv is the stored record, a DELETE event's Kv carries only
// the key and, as mod_revision, the revision of the deletion; PrevKv is
// never set. The events and their KeyValues are shared with the store and
// its views: callers must not modify them (copy one before setting
// PrevKv). Compaction produces no events.
func (s *Store) TakeEvents() []*messages.Event {
	evs := s.events
	s.events = nil
	return evs
}

// appendEvents appends the events of records to dst.
func appendEvents(dst []*messages.Event, records []record) []*messages.Event {
	for i := range records {
		dst = append(dst, recordEvent(&records[i]))
	}
	return dst
}

// recordEvent is the event of one record; TakeEvents and View.Events both
// build events here, so the live and historical events of one change are
// equal.
func recordEvent(r *record) *messages.Event {
	if r.tombstone {
		return &messages.Event{Type: messages.Event_DELETE, Kv: &messages.KeyValue{Key: r.kv.Key, ModRevision: r.rev.main}}
	}
	return &messages.Event{Type: messages.Event_PUT, Kv: r.kv}
}

// EventsResult is the answer of View.Events.
type EventsResult struct {
	// Events ascending by revision and sub-revision, built as TakeEvents
	// builds them (their KeyValues must not be modified either).
	Events []*messages.Event
	// Last is the last revision whose events are all included: toRev (as
	// clamped) when the answer is complete, the revision of the last event
	// when limit cut it short, fromRev-1 when nothing was read (fromRev >
	// toRev, or an error).
	Last int64
	// CompactRev is the compaction revision when the error is
	// rpcerr.Compacted (0 otherwise): the lowest fromRev that can be read.
	CompactRev int64
}

// Events returns the events of every key at main revisions fromRev through
// toRev (clamped to the view's revision), ascending. With limit > 0 it
// stops after the first revision at which the number of events reached
// limit: a revision's events are never split, so a result may exceed limit.
//
// Events at the compaction revision itself remain readable (a deletion at
// exactly the compaction revision included, etcd #18089, #19179); a
// compaction at R2 later removes them.
//
// Errors: rpcerr.Compacted if fromRev is below the compaction revision (the
// view's, or one that finished in the file since the view was published;
// the latter is checked only when the file is read), with
// EventsResult.CompactRev set to it; rpcerr.Stopped if the store was closed
// or restored and the answer needs the file. Safe on any goroutine.
func (v *View) Events(fromRev, toRev int64, limit int) (EventsResult, *messages.Error) {
	res := EventsResult{Last: fromRev - 1}
	if fromRev < v.compactRev {
		res.CompactRev = v.compactRev
		return res, rpcerr.Compacted
	}
	toRev = min(toRev, v.rev)
	if fromRev > toRev {
		return res, nil
	}
	// The overlay holds whole revisions from its first record on; the file
	// holds everything before it (and, after a later Commit, possibly the
	// overlay's records too: those are taken from the overlay only).
	overlayFrom := toRev + 1
	if len(v.overlay) > 0 {
		overlayFrom = min(overlayFrom, v.overlay[0].rev.main)
	}
	b := eventBatch{limit: limit}
	if fromRev < overlayFrom {
		if err := v.fileEvents(&b, fromRev, overlayFrom-1); err != nil {
			if rpcerr.Is(err, rpcerr.Compacted) {
				res.CompactRev = b.finished
			}
			return res, err
		}
	}
	if !b.cut {
		start, _ := slices.BinarySearchFunc(v.overlay, fromRev, func(r record, main int64) int {
			return cmpInt64(r.rev.main, main)
		})
		for i := start; i < len(v.overlay) && v.overlay[i].rev.main <= toRev; i++ {
			if !b.add(&v.overlay[i]) {
				break
			}
		}
	}
	res.Events, res.Last = b.events, toRev
	if b.cut {
		res.Last = b.lastRev
	}
	return res, nil
}

// eventBatch collects events up to a limit without splitting a revision.
type eventBatch struct {
	events   []*messages.Event
	limit    int
	lastRev  int64 // main revision of the last event added
	cut      bool  // the limit stopped the batch before a revision
	finished int64 // the file's finished compaction revision, if read
}

// add appends the event of r, or reports false (and sets cut) if the batch
// is full and r begins a new revision.
func (b *eventBatch) add(r *record) bool {
	if b.limit > 0 && len(b.events) >= b.limit && r.rev.main != b.lastRev {
		b.cut = true
		return false
	}
	b.events = append(b.events, recordEvent(r))
	b.lastRev = r.rev.main
	return true
}

// fileEvents adds to b the events recorded in the file at main revisions
// fromRev through toRev, in one read transaction that also checks the
// file's finished compaction revision.
func (v *View) fileEvents(b *eventBatch, fromRev, toRev int64) *messages.Error {
	tx, err := v.db.Begin(false)
	if err != nil {
		return rpcerr.Stopped
	}
	defer func() { _ = tx.Rollback() }()
	finished, _, ferr := metaRev(tx.Bucket(metaBucketName), finishedCompactKey)
	if ferr != nil {
		panic(fmt.Sprintf("mvcc: %v", ferr))
	}
	if fromRev < finished {
		b.finished = finished
		return rpcerr.Compacted
	}
	var seek [markedRevKeyLen]byte
	c := tx.Bucket(keyBucketName).Cursor()
	for k, val := c.Seek(appendRevKey(seek[:0], revision{main: max(fromRev, 1)}, false)); k != nil; k, val = c.Next() {
		rev, tomb, err := parseRevKey(k)
		if err != nil {
			panic(fmt.Sprintf("mvcc: bucket key: %v", err))
		}
		if rev.main > toRev {
			break
		}
		kv := new(messages.KeyValue)
		if err := proto.Unmarshal(mustUnseal(k, val), kv); err != nil {
			panic(fmt.Sprintf("mvcc: record %s does not decode: %v", revString(rev), err))
		}
		if !b.add(&record{rev: rev, kv: kv, tombstone: tomb}) {
			break
		}
	}
	return nil
}

// PrevKV returns the record of key as of revision rev-1: what a watcher
// asking for prev_kv gets with an event at rev (etcd reads it with a Range
// at rev-1). It returns nil if the key did not exist then, or if that
// revision is compacted, above the view's, or not readable (store closed).
// The record shares byte slices with the store: do not modify them. Safe on
// any goroutine.
func (v *View) PrevKV(key []byte, rev int64) *messages.KeyValue {
	if rev <= 1 { // a Range at revision 0 would read the latest
		return nil
	}
	resp, err := v.Range(&messages.RangeRequest{Key: key, Revision: rev - 1})
	if err != nil || len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}
