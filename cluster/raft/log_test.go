package raft

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/messages"
)

func testLog(terms ...uint64) *raftLog {
	l := &raftLog{entries: ents(terms...)}
	l.persisted, l.handedOut = l.lastIndex(), l.lastIndex()
	return l
}

func TestLogTerm(t *testing.T) {
	l := &raftLog{snapIndex: 3, snapTerm: 2, entries: []*messages.Entry{{Index: 4, Term: 2}, {Index: 5, Term: 3}}}
	tests := []struct {
		i    uint64
		term uint64
		ok   bool
	}{{2, 0, false}, {3, 2, true}, {4, 2, true}, {5, 3, true}, {6, 0, false}}
	for _, tt := range tests {
		term, ok := l.term(tt.i)
		if term != tt.term || ok != tt.ok {
			t.Errorf("term(%d) = %d, %v; want %d, %v", tt.i, term, ok, tt.term, tt.ok)
		}
	}
	if l.firstIndex() != 4 || l.lastIndex() != 5 || l.lastTerm() != 3 {
		t.Fatalf("first %d last %d lastTerm %d", l.firstIndex(), l.lastIndex(), l.lastTerm())
	}
}

func TestFindConflict(t *testing.T) {
	l := testLog(1, 2, 3)
	tests := []struct {
		ents []*messages.Entry
		want uint64
	}{
		{nil, 0},
		{[]*messages.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}}, 0},
		{[]*messages.Entry{{Index: 2, Term: 2}, {Index: 3, Term: 3}, {Index: 4, Term: 4}}, 4},
		{[]*messages.Entry{{Index: 2, Term: 1}, {Index: 3, Term: 4}}, 2},
		{[]*messages.Entry{{Index: 3, Term: 4}}, 3},
	}
	for i, tt := range tests {
		if got := l.findConflict(tt.ents); got != tt.want {
			t.Errorf("#%d: findConflict = %d, want %d", i, got, tt.want)
		}
	}
}

func TestFindConflictByTerm(t *testing.T) {
	tests := []struct {
		snapIndex, snapTerm uint64
		terms               []uint64 // after the snapshot
		index, term         uint64
		want                uint64
	}{
		{0, 0, []uint64{2, 2, 5, 5, 5}, 5, 6, 5},
		{0, 0, []uint64{2, 2, 5, 5, 5}, 5, 5, 5},
		{0, 0, []uint64{2, 2, 5, 5, 5}, 5, 4, 2},
		{0, 0, []uint64{2, 2, 5, 5, 5}, 5, 1, 0},
		{0, 0, []uint64{2, 2, 5, 5, 5}, 9, 2, 2}, // index beyond the log
		{10, 3, []uint64{3, 4, 4}, 13, 3, 11},
		{10, 3, []uint64{4, 4}, 12, 2, 10}, // stops at the snapshot
	}
	for i, tt := range tests {
		l := &raftLog{snapIndex: tt.snapIndex, snapTerm: tt.snapTerm}
		for j, term := range tt.terms {
			l.entries = append(l.entries, &messages.Entry{Index: tt.snapIndex + 1 + uint64(j), Term: term})
		}
		if got := l.findConflictByTerm(tt.index, tt.term); got != tt.want {
			t.Errorf("#%d: findConflictByTerm(%d, %d) = %d, want %d", i, tt.index, tt.term, got, tt.want)
		}
	}
}

func TestIsUpToDate(t *testing.T) {
	l := testLog(1, 2, 3)
	tests := []struct {
		index, term uint64
		want        bool
	}{
		{2, 2, false}, {4, 2, false}, {2, 3, false}, {3, 3, true}, {4, 3, true}, {1, 4, true},
	}
	for _, tt := range tests {
		if got := l.isUpToDate(tt.index, tt.term); got != tt.want {
			t.Errorf("isUpToDate(%d, %d) = %v, want %v", tt.index, tt.term, got, tt.want)
		}
	}
}

func TestLogSliceSizeLimit(t *testing.T) {
	l := testLog(1, 1, 1, 1)
	for i, e := range l.entries {
		e.Data = make([]byte, 10*(i+1)) // sizes 34, 44, 54, 64 with overhead
	}
	tests := []struct {
		lo, hi, max uint64
		want        []uint64
	}{
		{1, 5, 0, []uint64{1, 2, 3, 4}},
		{1, 5, 1, []uint64{1}}, // never empty
		{1, 5, 78, []uint64{1, 2}},
		{1, 5, 77, []uint64{1}},
		{2, 4, 1000, []uint64{2, 3}},
		{3, 3, 1000, nil},
	}
	for i, tt := range tests {
		var got []uint64
		for _, e := range l.slice(tt.lo, tt.hi, tt.max) {
			got = append(got, e.Index)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("#%d: slice(%d, %d, %d) = %v, want %v", i, tt.lo, tt.hi, tt.max, got, tt.want)
		}
	}
	// A handed-out slice keeps its contents when the log is truncated and
	// appended to.
	out := l.slice(2, 5, 0)
	l.truncateAndAppend([]*messages.Entry{{Index: 3, Term: 2}})
	l.append(&messages.Entry{Index: 4, Term: 2})
	if out[1].Term != 1 || out[2].Term != 1 {
		t.Fatalf("handed-out slice changed: %v", out)
	}
}

func TestMaybeAppend(t *testing.T) {
	tests := []struct {
		index, logTerm, commit uint64
		ents                   []uint64
		ok                     bool
		lastNew, wantCommit    uint64
		want                   []uint64
	}{
		{3, 3, 3, nil, true, 3, 3, []uint64{1, 2, 3}},
		{3, 3, 9, []uint64{4}, true, 4, 4, []uint64{1, 2, 3, 4}},
		{2, 2, 3, []uint64{3}, true, 3, 3, []uint64{1, 2, 3}}, // duplicate: no change
		{2, 2, 1, []uint64{4, 4}, true, 4, 1, []uint64{1, 2, 4, 4}},
		{3, 2, 3, nil, false, 0, 1, []uint64{1, 2, 3}},
		{4, 3, 3, nil, false, 0, 1, []uint64{1, 2, 3}},
	}
	for i, tt := range tests {
		l := testLog(1, 2, 3)
		l.committed = 1
		var es []*messages.Entry
		for j, term := range tt.ents {
			es = append(es, &messages.Entry{Index: tt.index + 1 + uint64(j), Term: term})
		}
		lastNew, ok := l.maybeAppend(tt.index, tt.logTerm, tt.commit, es)
		if ok != tt.ok || lastNew != tt.lastNew || l.committed != tt.wantCommit || !slices.Equal(termsOf(l.entries), tt.want) {
			t.Errorf("#%d: (%d, %v) commit %d log %v; want (%d, %v) commit %d log %v",
				i, lastNew, ok, l.committed, termsOf(l.entries), tt.lastNew, tt.ok, tt.wantCommit, tt.want)
		}
	}
	// Truncation pulls back the durable and handed-out cursors.
	l := testLog(1, 2, 3)
	l.maybeAppend(1, 1, 0, []*messages.Entry{{Index: 2, Term: 4}})
	if l.persisted != 1 || l.handedOut != 1 {
		t.Fatalf("after truncation persisted %d handedOut %d, want 1 1", l.persisted, l.handedOut)
	}
}

func TestTruncateCommittedPanics(t *testing.T) {
	l := testLog(1, 2, 3)
	l.committed = 2
	defer func() {
		if recover() == nil {
			t.Fatal("truncating a committed entry did not panic")
		}
	}()
	l.maybeAppend(1, 1, 0, []*messages.Entry{{Index: 2, Term: 4}})
}

// TestCommitPastLogIsErrLogLost: a leader that commits an index past the
// follower's last entry means the follower lost entries it had made
// durable (and acknowledged): the panic carries ErrLogLost, which the
// member turns into a stop no supervisor restart can mend.
func TestCommitPastLogIsErrLogLost(t *testing.T) {
	l := testLog(1, 1, 1)
	l.commitTo(2)
	defer func() {
		err, ok := recover().(error)
		if !ok || !errors.Is(err, ErrLogLost) || !strings.Contains(err.Error(), "commit index 5 beyond last index 3") {
			t.Fatalf("commit past the log: recovered %v, want ErrLogLost naming both indexes", err)
		}
		if l.committed != 2 {
			t.Fatalf("committed %d after the refused commit, want 2", l.committed)
		}
	}()
	l.commitTo(5)
}

func TestInflights(t *testing.T) {
	var in inflights
	in.init(3)
	for _, i := range []uint64{5, 7, 9} {
		in.add(i)
	}
	if !in.full() {
		t.Fatal("not full after 3 adds")
	}
	in.freeLE(6)
	if in.full() || in.count != 2 {
		t.Fatalf("count %d after freeing through 6, want 2", in.count)
	}
	in.add(11) // wraps around
	in.freeLE(10)
	if in.count != 1 || in.buf[in.start] != 11 {
		t.Fatalf("count %d first %d, want 1 and 11", in.count, in.buf[in.start])
	}
	in.freeFirstOne()
	if in.count != 0 {
		t.Fatalf("count %d, want 0", in.count)
	}
}

func TestQuorumIndexAndTally(t *testing.T) {
	tests := []struct {
		matches []uint64
		want    uint64
	}{
		{[]uint64{5}, 5},
		{[]uint64{5, 3}, 3},
		{[]uint64{5, 3, 1}, 3},
		{[]uint64{1, 5, 3, 4}, 3},
		{[]uint64{9, 8, 1, 2, 7}, 7},
	}
	for _, tt := range tests {
		trk := newTracker(1, &messages.ConfState{Voters: ids(len(tt.matches))}, 1)
		for i, m := range tt.matches {
			trk.progress[uint64(i+1)].match = m
		}
		if got := trk.quorumIndex(func(_ uint64, p *progress) uint64 { return p.match }); got != tt.want {
			t.Errorf("quorumIndex(%v) = %d, want %d", tt.matches, got, tt.want)
		}
	}
	trk := newTracker(1, &messages.ConfState{Voters: ids(4)}, 1)
	trk.recordVote(1, true)
	trk.recordVote(2, false)
	trk.recordVote(2, true) // repeat ignored
	if trk.tally() != votePending {
		t.Fatal("1 of 4 granted, 1 rejected: not pending")
	}
	trk.recordVote(3, false)
	if trk.tally() != voteLost {
		t.Fatal("2 of 4 rejected: not lost")
	}
}
