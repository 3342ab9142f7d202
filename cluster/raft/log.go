package raft

import (
	"fmt"

	"github.com/aetcd/aetcd/messages"
)

// entryOverhead is the per-entry byte count added to len(Data) when sizing
// messages and Readies (index, term, type and framing).
const entryOverhead = 24

func entrySize(e *messages.Entry) uint64 { return uint64(len(e.Data)) + entryOverhead }

// raftLog is the member's whole log after its snapshot, held in memory, plus
// the host-facing cursors over it. Entries are immutable once appended: the
// core never writes through an *Entry it holds, and slices it hands out are
// capacity-limited so later appends never overwrite them.
//
// Cursor invariants (checked by checkInvariants):
//
//	applied <= applying <= committed <= lastIndex
//	snapIndex <= applying, persisted <= handedOut <= lastIndex
//
// persisted may be below snapIndex only while a received snapshot is not yet
// durable, and applied only until the host reports the snapshot applied.
type raftLog struct {
	snapIndex uint64 // index of the last entry folded into the snapshot
	snapTerm  uint64 // its term
	entries   []*messages.Entry

	committed uint64 // highest index known committed
	persisted uint64 // durable prefix of this log, as reported by Persisted
	handedOut uint64 // entries up to here were handed out in Ready.Entries
	applying  uint64 // entries up to here were handed out in Ready.CommittedEntries
	applied   uint64 // entries up to here were reported applied
}

func (l *raftLog) firstIndex() uint64 { return l.snapIndex + 1 }
func (l *raftLog) lastIndex() uint64  { return l.snapIndex + uint64(len(l.entries)) }

// term returns the term of the entry at i, or false if i is compacted or
// beyond the log. The snapshot's own index has a known term.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snapIndex:
		return l.snapTerm, true
	case i < l.snapIndex || i > l.lastIndex():
		return 0, false
	}
	return l.entries[i-l.snapIndex-1].Term, true
}

// mustTerm is term for indexes the caller knows are present.
func (l *raftLog) mustTerm(i uint64) uint64 {
	t, ok := l.term(i)
	if !ok {
		panic(fmt.Sprintf("raft: term of index %d requested outside the log [%d, %d]",
			i, l.snapIndex, l.lastIndex()))
	}
	return t
}

func (l *raftLog) lastTerm() uint64 { return l.mustTerm(l.lastIndex()) }

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// isUpToDate reports whether a log ending at (lastIndex, lastTerm) is at
// least as up to date as this one (Raft §5.4.1).
func (l *raftLog) isUpToDate(lastIndex, lastTerm uint64) bool {
	mine := l.lastTerm()
	return lastTerm > mine || (lastTerm == mine && lastIndex >= l.lastIndex())
}

// slice returns entries [lo, hi) limited to maxSize bytes (0: no limit) but
// never empty when lo < hi. lo must be above the snapshot index.
func (l *raftLog) slice(lo, hi, maxSize uint64) []*messages.Entry {
	if lo >= hi {
		return nil
	}
	if lo <= l.snapIndex || hi > l.lastIndex()+1 {
		panic(fmt.Sprintf("raft: slice [%d, %d) outside the log [%d, %d]", lo, hi, l.firstIndex(), l.lastIndex()))
	}
	a, b := lo-l.snapIndex-1, hi-l.snapIndex-1
	if maxSize > 0 {
		size := entrySize(l.entries[a])
		end := a + 1
		for end < b {
			size += entrySize(l.entries[end])
			if size > maxSize {
				break
			}
			end++
		}
		b = end
	}
	return l.entries[a:b:b]
}

// findConflict returns the index of the first entry of ents that is not
// already in the log with the same term, or 0 if all are.
func (l *raftLog) findConflict(ents []*messages.Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <= term,
// or the snapshot index if no entry in the log qualifies. Used on both sides
// of a rejected MSG_APP to skip a whole term of mismatches per round trip.
func (l *raftLog) findConflictByTerm(index, term uint64) uint64 {
	index = min(index, l.lastIndex())
	for index > l.snapIndex {
		if l.mustTerm(index) <= term {
			break
		}
		index--
	}
	return index
}

// append adds entries that the leader created (already indexed and termed).
func (l *raftLog) append(ents ...*messages.Entry) {
	if len(ents) == 0 {
		return
	}
	if ents[0].Index != l.lastIndex()+1 {
		panic(fmt.Sprintf("raft: appending entry %d after last index %d", ents[0].Index, l.lastIndex()))
	}
	l.entries = append(l.entries, ents...)
}

// truncateAndAppend replaces the suffix starting at ents[0].Index with ents.
// Committed entries are never replaced.
func (l *raftLog) truncateAndAppend(ents []*messages.Entry) {
	first := ents[0].Index
	if first <= l.committed {
		panic(fmt.Sprintf("raft: truncating committed entry %d (committed %d)", first, l.committed))
	}
	if first > l.lastIndex()+1 || first <= l.snapIndex {
		panic(fmt.Sprintf("raft: appending entry %d outside the log [%d, %d]", first, l.firstIndex(), l.lastIndex()))
	}
	keep := first - l.snapIndex - 1
	// The three-index slice forces a fresh array when truncating, so slices
	// already handed out (messages, Readies) keep their contents.
	l.entries = append(l.entries[:keep:keep], ents...)
	l.handedOut = min(l.handedOut, first-1)
	l.persisted = min(l.persisted, first-1)
}

// maybeAppend is the follower side of MSG_APP: if the log holds (index,
// logTerm), it makes ents part of the log, truncating a conflicting suffix,
// raises the commit index to min(committed, last new index) and returns the
// last index known to match the leader.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []*messages.Entry) (uint64, bool) {
	if !l.matchTerm(index, logTerm) {
		return 0, false
	}
	lastNew := index + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		l.truncateAndAppend(ents[ci-index-1:])
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true
}

func (l *raftLog) commitTo(i uint64) {
	if i <= l.committed {
		return
	}
	if i > l.lastIndex() {
		panic(fmt.Errorf("%w: commit index %d beyond last index %d", ErrLogLost, i, l.lastIndex()))
	}
	l.committed = i
}

// unstable returns the entries not yet handed out in Ready.Entries.
func (l *raftLog) unstable() []*messages.Entry {
	if l.handedOut >= l.lastIndex() {
		return nil
	}
	return l.slice(max(l.handedOut, l.snapIndex)+1, l.lastIndex()+1, 0)
}

// applicable returns the next committed entries to hand out for applying:
// only entries that are committed and durable locally.
func (l *raftLog) applicable(maxSize uint64) []*messages.Entry {
	lo := max(l.applying, l.snapIndex) + 1
	hi := min(l.committed, l.persisted)
	if hi < lo {
		return nil
	}
	return l.slice(lo, hi+1, maxSize)
}

// restore replaces the whole log with a snapshot ending at (s.Index, s.Term).
// Nothing is durable until the host persists the snapshot.
func (l *raftLog) restore(index, term uint64) {
	l.snapIndex, l.snapTerm = index, term
	l.entries = nil
	l.committed = index
	l.persisted = 0
	l.handedOut = index
	l.applying = index
}

// compact drops entries up to and including i from memory.
func (l *raftLog) compact(i uint64) {
	t := l.mustTerm(i)
	rest := l.entries[i-l.snapIndex:]
	l.entries = append([]*messages.Entry(nil), rest...)
	l.snapIndex, l.snapTerm = i, t
}

func (l *raftLog) checkInvariants() {
	ok := l.snapIndex <= l.applying && l.applied <= l.applying && l.applying <= l.committed &&
		l.committed <= l.lastIndex() && l.persisted <= l.handedOut && l.handedOut <= l.lastIndex()
	if !ok {
		panic(fmt.Sprintf("raft: log cursors out of order: snapshot %d applied %d applying %d committed %d last %d persisted %d handedOut %d",
			l.snapIndex, l.applied, l.applying, l.committed, l.lastIndex(), l.persisted, l.handedOut))
	}
}
