package raft

import (
	"fmt"

	"github.com/aetcd/aetcd/messages"
)

// SoftState is volatile state the host reacts to (swapping its role
// behaviour, routing proposals to the leader). It is never persisted.
type SoftState struct {
	Lead uint64
	Role Role
}

// Ready is the core's output since the previous Advance. See the package
// documentation for the host's obligations; in short:
//
//   - SoftState: non-nil when the leader or role changed.
//   - HardState: non-nil when term, vote or commit changed: persist it.
//   - Snapshot: non-nil when a snapshot from the leader replaced the log:
//     persist it (making the WAL's older entries obsolete); once it is
//     durable, install it in the state machine (never before: the state
//     machine must not get ahead of the WAL) and report
//     Persisted(Index, Term) and Applied(Index).
//   - Entries: persist them after every entry handed out before. If
//     Entries[0].Index is at or below an index handed out before, the log
//     was truncated there: discard the WAL's entries from Entries[0].Index on.
//   - Messages: send now, in order, before or while persisting this Ready;
//     the core itself withholds messages whose correctness depends on local
//     durability (append acknowledgments, vote grants, a candidate's vote
//     requests) until Persisted / PersistedHardState report it. No message
//     is addressed to this member itself.
//   - CommittedEntries: committed and durable locally; apply in order (empty
//     Data entries are the leader's no-ops), then report Applied.
//   - ReadStates: answered ReadIndex calls.
type Ready struct {
	SoftState        *SoftState
	HardState        *messages.HardState
	Snapshot         *messages.SnapshotMeta
	Entries          []*messages.Entry
	Messages         []*messages.RaftMessage
	CommittedEntries []*messages.Entry
	ReadStates       []ReadState
}

// readyMarks records what a Ready handed out, applied by Advance.
type readyMarks struct {
	soft          SoftState
	hard          hardState
	lastEntry     uint64 // 0: no entries
	lastCommitted uint64 // 0: no committed entries
	snapshot      bool
	msgs          int
	readStates    int
}

// HasReady reports whether Ready would return anything.
func (c *Core) HasReady() bool {
	return c.softState() != c.prevSoft ||
		c.hardState() != c.prevHard ||
		c.pendingSnapshot != nil ||
		c.log.handedOut < c.log.lastIndex() ||
		len(c.msgs) > 0 ||
		len(c.readStates) > 0 ||
		min(c.log.committed, c.log.persisted) > c.log.applying
}

// Ready returns the pending output. The host must hand it off (start the
// WAL write, send Messages, queue CommittedEntries for applying) and call
// Advance(rd) before calling any other method of the core; the core panics
// otherwise. Calling Ready when HasReady is false returns an empty Ready.
func (c *Core) Ready() Ready {
	c.mustNotBeInReady("Ready")
	marks := &readyMarks{soft: c.softState(), hard: c.hardState(), msgs: len(c.msgs), readStates: len(c.readStates)}
	var rd Ready
	if marks.soft != c.prevSoft {
		s := marks.soft
		rd.SoftState = &s
	}
	if h := marks.hard; h != c.prevHard {
		rd.HardState = &messages.HardState{Term: h.term, Vote: h.vote, Commit: h.commit}
	}
	if s := c.pendingSnapshot; s != nil {
		rd.Snapshot = s
		marks.snapshot = true
	}
	if ents := c.log.unstable(); len(ents) > 0 {
		rd.Entries = ents
		marks.lastEntry = ents[len(ents)-1].Index
	}
	if len(c.msgs) > 0 {
		rd.Messages = c.msgs
	}
	if ents := c.log.applicable(c.cfg.MaxCommittedSizePerReady); len(ents) > 0 {
		rd.CommittedEntries = ents
		marks.lastCommitted = ents[len(ents)-1].Index
	}
	if len(c.readStates) > 0 {
		rd.ReadStates = c.readStates
	}
	c.inReady = marks
	return rd
}

// Advance acknowledges that rd, the Ready just returned, was handed off:
// its Entries and HardState are on their way to the WAL, its Messages sent,
// its CommittedEntries on their way to the state machine.
//
// Panics if no Ready is outstanding or rd is not it.
func (c *Core) Advance(rd Ready) {
	m := c.inReady
	if m == nil {
		panic("raft: Advance without a Ready")
	}
	if len(rd.Messages) != m.msgs || len(rd.ReadStates) != m.readStates {
		panic(fmt.Sprintf("raft: Advance with a Ready other than the one returned (%d messages, want %d)",
			len(rd.Messages), m.msgs))
	}
	c.inReady = nil
	c.prevSoft = m.soft
	c.prevHard = m.hard
	var snapConf *messages.ConfState
	if m.snapshot {
		snapConf = c.pendingSnapshot.ConfState
		c.pendingSnapshot = nil
	}
	if m.lastEntry > 0 {
		c.log.handedOut = m.lastEntry
	}
	prevApplying := c.log.applying
	if m.lastCommitted > 0 {
		c.log.applying = m.lastCommitted
	}
	c.msgs = nil // rd.Messages now belongs to the host
	c.reads.sealed = true
	c.readStates = nil
	// Conf changes take effect as they are handed out for applying (their
	// messages go into the next Ready).
	if snapConf != nil {
		c.snapConf = cloneConf(snapConf)
		c.applyConf(c.snapConf)
	}
	if m.lastCommitted > 0 {
		for _, e := range c.log.slice(prevApplying+1, m.lastCommitted+1, 0) {
			if e.Type == messages.EntryType_ENTRY_CONF_CHANGE {
				c.applyConf(confAfter(c.trk.confState(), []*messages.Entry{e}))
			}
		}
	}
	c.log.checkInvariants()
}
