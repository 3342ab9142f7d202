package raft

import (
	"fmt"
	"slices"

	"github.com/aetcd/aetcd/messages"
)

// ProgressState is how the leader currently replicates to one follower.
type ProgressState uint8

const (
	// ProgressProbe: the leader does not know where the follower's log
	// matches; it sends one MSG_APP at a time and waits for the answer (or a
	// heartbeat response) before sending the next.
	ProgressProbe ProgressState = iota
	// ProgressReplicate: the follower's log matches through Match; the
	// leader streams MSG_APPs optimistically, up to MaxInflightMsgs.
	ProgressReplicate
	// ProgressSnapshot: the follower needs entries the leader compacted; a
	// MSG_SNAP was sent and replication waits for it (ReportSnapshot, or an
	// acknowledgment at or above the snapshot index).
	ProgressSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case ProgressProbe:
		return "probe"
	case ProgressReplicate:
		return "replicate"
	case ProgressSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("ProgressState(%d)", uint8(s))
}

// progress is the leader's view of one member (including itself: its Match
// is the leader's own durable index).
type progress struct {
	match uint64 // highest index known durable and matching on the member
	next  uint64 // next index to send
	state ProgressState
	// probeSent pauses a probe until a response (or heartbeat response).
	probeSent       bool
	pendingSnapshot uint64
	// recentActive: heard from the member since the last check-quorum round.
	recentActive bool
	// readAcked: highest read-index round the member acknowledged this term.
	readAcked uint64
	inflights inflights
}

func (p *progress) resetState(state ProgressState) {
	p.state = state
	p.probeSent = false
	p.pendingSnapshot = 0
	p.inflights.reset()
}

func (p *progress) becomeProbe() {
	// From a snapshot, resume right after it; otherwise after the match.
	if p.state == ProgressSnapshot {
		snap := p.pendingSnapshot
		p.resetState(ProgressProbe)
		p.next = max(p.match, snap) + 1
		return
	}
	p.resetState(ProgressProbe)
	p.next = p.match + 1
}

func (p *progress) becomeReplicate() {
	p.resetState(ProgressReplicate)
	p.next = p.match + 1
}

func (p *progress) becomeSnapshot(index uint64) {
	p.resetState(ProgressSnapshot)
	p.pendingSnapshot = index
}

// maybeUpdate records an acknowledgment through n; false if it is stale.
func (p *progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.match < n {
		p.match = n
		updated = true
		p.probeSent = false
	}
	p.next = max(p.next, n+1)
	return updated
}

// maybeDecrTo handles a rejection of the MSG_APP whose previous index was
// rejected; matchHint is the leader's guess (from the follower's hint) of the
// highest index that may match. It returns false for stale rejections.
func (p *progress) maybeDecrTo(rejected, matchHint uint64) bool {
	if p.state == ProgressReplicate {
		if rejected <= p.match {
			return false
		}
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejected {
		return false
	}
	p.next = max(min(rejected, matchHint+1), p.match+1)
	p.probeSent = false
	return true
}

func (p *progress) isPaused() bool {
	switch p.state {
	case ProgressProbe:
		return p.probeSent
	case ProgressReplicate:
		return p.inflights.full()
	default:
		return true
	}
}

// inflights is a bounded FIFO of the last index of each MSG_APP in flight.
type inflights struct {
	buf   []uint64
	start int
	count int
	size  int
}

func (in *inflights) init(size int) { in.size = size; in.buf = nil; in.start, in.count = 0, 0 }
func (in *inflights) full() bool    { return in.count >= in.size }
func (in *inflights) reset()        { in.start, in.count = 0, 0 }

func (in *inflights) add(last uint64) {
	if in.full() {
		panic("raft: adding to full inflights")
	}
	if in.buf == nil {
		in.buf = make([]uint64, in.size)
	}
	in.buf[(in.start+in.count)%in.size] = last
	in.count++
}

// freeLE frees every message whose last index is <= to.
func (in *inflights) freeLE(to uint64) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % in.size
		in.count--
	}
}

func (in *inflights) freeFirstOne() {
	if in.count > 0 {
		in.start = (in.start + 1) % in.size
		in.count--
	}
}

// tracker holds the configuration (voters and learners) and, on a leader
// or candidate, the per-member progress and votes. Learners receive the log
// but neither vote nor count toward any quorum. Iteration is always in
// ascending ID order so the core stays deterministic.
type tracker struct {
	voters   []uint64 // sorted
	learners []uint64 // sorted, disjoint from voters
	// progress has an entry for every member and for self, even when self
	// is not (or no longer) a member: a removed leader keeps its own.
	progress    map[uint64]*progress
	votes       map[uint64]bool
	maxInflight int
	self        uint64
}

func newTracker(self uint64, cs *messages.ConfState, maxInflight int) tracker {
	t := tracker{progress: map[uint64]*progress{}, votes: map[uint64]bool{}, maxInflight: maxInflight, self: self}
	t.setConf(cs, 0)
	return t
}

// setConf replaces the configuration with cs. Members that were already
// tracked keep their progress; new ones start probing at next.
func (t *tracker) setConf(cs *messages.ConfState, next uint64) {
	t.voters = sortedIDs(cs.GetVoters())
	t.learners = sortedIDs(cs.GetLearners())
	keep := make(map[uint64]*progress, len(t.voters)+len(t.learners)+1)
	for _, id := range append(t.members(), t.self) {
		p, ok := t.progress[id]
		if !ok {
			p = t.newProgress(next)
		}
		keep[id] = p
	}
	t.progress = keep
}

func (t *tracker) newProgress(next uint64) *progress {
	p := &progress{next: max(next, 1), recentActive: true}
	p.inflights.init(t.maxInflight)
	return p
}

func sortedIDs(ids []uint64) []uint64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// confState returns a copy of the configuration.
func (t *tracker) confState() *messages.ConfState {
	return &messages.ConfState{Voters: slices.Clone(t.voters), Learners: slices.Clone(t.learners)}
}

// members returns voters and learners in ascending ID order.
func (t *tracker) members() []uint64 {
	out := make([]uint64, 0, len(t.voters)+len(t.learners))
	out = append(out, t.voters...)
	out = append(out, t.learners...)
	slices.Sort(out)
	return out
}

func (t *tracker) isVoter(id uint64) bool {
	_, ok := slices.BinarySearch(t.voters, id)
	return ok
}

func (t *tracker) isLearner(id uint64) bool {
	_, ok := slices.BinarySearch(t.learners, id)
	return ok
}

func (t *tracker) quorum() int { return len(t.voters)/2 + 1 }

// quorumIndex returns the largest value that at least a quorum of voters
// have reached, given each voter's value.
func (t *tracker) quorumIndex(value func(id uint64, p *progress) uint64) uint64 {
	if len(t.voters) == 0 {
		return 0
	}
	vals := make([]uint64, 0, len(t.voters))
	for _, id := range t.voters {
		vals = append(vals, value(id, t.progress[id]))
	}
	slices.Sort(vals)
	return vals[len(vals)-t.quorum()]
}

type voteResult uint8

const (
	votePending voteResult = iota
	voteWon
	voteLost
)

func (t *tracker) resetVotes() { clear(t.votes) }

// recordVote records id's first answer in this election; repeats are ignored.
func (t *tracker) recordVote(id uint64, granted bool) {
	if _, ok := t.votes[id]; !ok {
		t.votes[id] = granted
	}
}

func (t *tracker) tally() voteResult {
	granted, rejected := 0, 0
	for _, id := range t.voters {
		if v, ok := t.votes[id]; ok {
			if v {
				granted++
			} else {
				rejected++
			}
		}
	}
	switch q := t.quorum(); {
	case granted >= q:
		return voteWon
	case rejected > len(t.voters)-q:
		return voteLost
	}
	return votePending
}
