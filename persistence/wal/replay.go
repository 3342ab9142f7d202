package wal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
)

// Replay is the log state Open read back from the segments.
type Replay struct {
	// Metadata is the payload of the last metadata record, nil if none.
	Metadata []byte
	// HardState is the last hard state record, nil if none.
	HardState *messages.HardState
	// Snapshot is the last snapshot marker, nil if none.
	Snapshot *messages.SnapshotMeta
	// Entries are the log entries from Snapshot.Index+1 (from 1 without a
	// snapshot) on, in gap-free index order. An entry at
	// index i written later replaces every earlier entry with index >= i (a
	// new leader truncating the log).
	Entries []*messages.Entry
	// TornTailRepaired reports that the last segment ended in a partial or
	// damaged record followed only by zeros or end of file, and that Open cut
	// it off. Nothing after the last complete record was ever reported
	// durable by Sync, so nothing acknowledged was lost.
	TornTailRepaired bool
}

// logIndex is the index bookkeeping Save and Open share, so that Open accepts
// exactly the sequences Save writes.
type logIndex struct {
	lastEntry uint64 // index of the last entry written (truncation may lower it)
	snapshot  uint64 // index of the last snapshot marker
}

// last is the log's last index: a new entry may have any index from 1 to
// last()+1.
func (l logIndex) last() uint64 { return max(l.lastEntry, l.snapshot) }

func (l *logIndex) setSnapshot(index uint64) error {
	if index < l.snapshot {
		return fmt.Errorf("%w: snapshot index %d below the previous snapshot %d", ErrNotContiguous, index, l.snapshot)
	}
	l.snapshot = index
	return nil
}

func (l *logIndex) appendEntry(index uint64) error {
	if index == 0 || index > l.last()+1 {
		return fmt.Errorf("%w: entry index %d after last index %d", ErrNotContiguous, index, l.last())
	}
	l.lastEntry = index
	return nil
}

// replayState accumulates records in log order.
type replayState struct {
	index   logIndex
	entries []*messages.Entry // strictly increasing; may include entries <= the snapshot index
	meta    *messages.SnapshotMeta
	hs      *messages.HardState

	// released is the highest index that may hold an entry from a segment
	// before the first one (deleted by Release): the first segment's
	// firstIndex-1, lowered by every entry that replaces the log from a lower
	// index. Replay is complete only if a snapshot marker reaches it.
	released uint64

	// Latest payloads of each state record, nil if none, rewritten at the
	// head of every new segment so that each segment carries the state that
	// precedes it.
	metaPayload, hsPayload, snapPayload []byte
}

// apply decodes one valid record into the state. The error is a reason for a
// *CorruptError: the record passed its checksum but makes no sense.
func (st *replayState) apply(typ RecordType, payload []byte) error {
	switch typ {
	case RecordEntry:
		e := new(messages.Entry)
		if err := proto.Unmarshal(payload, e); err != nil {
			return fmt.Errorf("undecodable entry: %w", err)
		}
		if err := st.index.appendEntry(e.Index); err != nil {
			return err
		}
		st.released = min(st.released, e.Index-1)
		// entries is strictly increasing but may skip indexes covered by a
		// snapshot marker; drop those at or above e.Index.
		keep, _ := slices.BinarySearchFunc(st.entries, e.Index, func(x *messages.Entry, i uint64) int {
			return cmp.Compare(x.Index, i)
		})
		clear(st.entries[keep:])
		st.entries = append(st.entries[:keep], e)
	case RecordHardState:
		hs := new(messages.HardState)
		if err := proto.Unmarshal(payload, hs); err != nil {
			return fmt.Errorf("undecodable hard state: %w", err)
		}
		st.hs = hs
		st.hsPayload = bytes.Clone(payload)
	case RecordMetadata:
		st.metaPayload = bytes.Clone(payload)
	case RecordSnapshot:
		m := new(messages.SnapshotMeta)
		if err := proto.Unmarshal(payload, m); err != nil {
			return fmt.Errorf("undecodable snapshot marker: %w", err)
		}
		if err := st.index.setSnapshot(m.Index); err != nil {
			return err
		}
		st.meta = m
		st.snapPayload = bytes.Clone(payload)
	default:
		panic(fmt.Sprintf("wal: apply called with invalid record type %d", typ))
	}
	return nil
}

func (st *replayState) replay() *Replay {
	r := &Replay{HardState: st.hs, Snapshot: st.meta}
	if st.metaPayload != nil {
		r.Metadata = bytes.Clone(st.metaPayload)
	}
	var after uint64
	if st.meta != nil {
		after = st.meta.Index
	}
	// Copy the kept suffix so the caller does not pin the discarded prefix.
	i, _ := slices.BinarySearchFunc(st.entries, after+1, func(x *messages.Entry, i uint64) int {
		return cmp.Compare(x.Index, i)
	})
	if i < len(st.entries) {
		r.Entries = append([]*messages.Entry(nil), st.entries[i:]...)
	}
	return r
}

// scanSegment applies every record of one segment's contents to st and
// returns the offset just past the last valid record. A damaged record is a
// torn tail (reported with torn == true and end at its offset) only if last is
// set and nothing but zeros follows it; otherwise scanSegment returns a
// *CorruptError.
func scanSegment(path string, data []byte, last bool, st *replayState) (end int64, torn bool, err error) {
	off := 0
	for {
		rest := data[off:]
		typ, payload, n, err := DecodeRecord(rest)
		if err == nil {
			if err := st.apply(typ, payload); err != nil {
				return 0, false, &CorruptError{File: path, Offset: int64(off), Reason: reasonOf(err), Err: err}
			}
			off += n
			continue
		}
		if err == io.EOF {
			if allZero(rest) {
				return int64(off), false, nil
			}
			err = errors.New("non-zero data after an end-of-data header")
		}
		// A record with a valid checksum was written whole: never torn.
		if last && !errors.Is(err, ErrUnknownRecordType) && tornTail(rest) {
			return int64(off), true, nil
		}
		reason := reasonOf(err)
		switch {
		case !last:
			reason += " (not in the last segment)"
		case errors.Is(err, ErrUnknownRecordType), errors.Is(err, ErrRecordTooLarge):
		default:
			reason += " (followed by non-zero data)"
		}
		return 0, false, &CorruptError{File: path, Offset: int64(off), Reason: reason, Err: err}
	}
}

// tornTail reports whether a damaged record at rest[0] can be the partial
// last write of a crashed process: a prefix of the record reached the disk
// and everything after it is zeros (preallocated space) or end of file.
// A length field above MaxRecordBytes cannot come from a partial write of a
// valid header, so it is never a torn tail.
func tornTail(rest []byte) bool {
	if len(rest) < HeaderSize {
		return true
	}
	length := binary.LittleEndian.Uint32(rest[0:4])
	if length > MaxRecordBytes {
		return false
	}
	end := uint64(HeaderSize) + uint64(length)
	if end >= uint64(len(rest)) {
		return true
	}
	return allZero(rest[end:])
}

// reasonOf turns an error into a CorruptError.Reason, without the package
// prefix that CorruptError.Error already carries.
func reasonOf(err error) string { return strings.TrimPrefix(err.Error(), "wal: ") }
