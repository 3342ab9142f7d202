package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/aetcd/aetcd/messages"
)

// Role is a member's Raft role. The host swaps its behaviour when the role
// changes (reported in Ready.SoftState).
type Role uint8

const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
)

func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RolePreCandidate:
		return "pre-candidate"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// campaignTransfer is the Context of a MSG_VOTE sent because the leader
// asked for a transfer (MSG_TIMEOUT_NOW); voters grant it despite a lease.
const campaignTransfer = "CampaignTransfer"

// hardState mirrors messages.HardState as a comparable value.
type hardState struct{ term, vote, commit uint64 }

// heldVote is a granted MSG_VOTE_RESP waiting until the vote it reports
// (term, vote) is durable.
type heldVote struct {
	msg        *messages.RaftMessage
	term, vote uint64
}

// pendingAck is an append acknowledgment waiting for local durability: the
// log matches leader `to`'s log through index (verified in term), but
// entries above `persisted` are not durable yet. sent is the highest index
// acknowledged from Persisted.
type pendingAck struct {
	term, to, index, sent uint64
}

type stepFunc func(c *Core, m *messages.RaftMessage)

// Core is one member's Raft state machine. It is not safe for concurrent
// use: the host calls it from one goroutine (the raft node actor).
type Core struct {
	id   uint64
	cfg  Config
	rand *rand.Rand

	term uint64
	vote uint64
	lead uint64
	role Role
	step stepFunc

	log raftLog
	trk tracker
	// snapConf is the configuration as of log.snapIndex.
	snapConf *messages.ConfState
	// pendingConfIndex: on the leader, the index of the last entry that may
	// be a conf change; a new one waits until it is handed out.
	pendingConfIndex uint64

	electionElapsed           int
	heartbeatElapsed          int
	randomizedElectionTimeout int

	leadTransferee uint64
	// transferCampaign: this candidacy was asked for by the leader
	// (MSG_TIMEOUT_NOW); its vote requests override leases.
	transferCampaign bool
	reads            readOnly
	readStates       []ReadState

	msgs []*messages.RaftMessage

	// durableTerm/durableVote: the newest hard state the host reported durable.
	durableTerm, durableVote uint64
	heldVotes                []heldVote
	ack                      pendingAck

	// pendingSnapshot was received (MSG_SNAP) and not yet handed out.
	pendingSnapshot *messages.SnapshotMeta

	prevHard hardState
	prevSoft SoftState
	inReady  *readyMarks
}

// New builds a core from a config and the state the host recovered from
// its WAL. It starts as a follower with no known leader.
//
// Errors: ErrInvalidConfig, ErrInvalidRestoreState (both wrapped with the
// reason).
func New(cfg Config, rs RestoreState) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Core{
		id:   cfg.ID,
		cfg:  cfg,
		rand: cfg.Rand,
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRestoreState, fmt.Sprintf(format, args...))
	}
	c.snapConf = &messages.ConfState{Voters: slices.Clone(cfg.Voters)}
	if s := rs.Snapshot; s != nil {
		c.log.snapIndex, c.log.snapTerm = s.Index, s.Term
		if s.ConfState != nil {
			c.snapConf = cloneConf(s.ConfState)
		}
	}
	prevTerm := c.log.snapTerm
	for _, e := range rs.Entries {
		switch {
		case e == nil:
			return nil, bad("nil entry")
		case e.Index <= c.log.snapIndex:
			continue
		case e.Index != c.log.lastIndex()+1:
			return nil, bad("entry %d follows index %d", e.Index, c.log.lastIndex())
		case e.Term < prevTerm:
			return nil, bad("entry %d has term %d below the previous term %d", e.Index, e.Term, prevTerm)
		}
		c.log.entries = append(c.log.entries, e)
		prevTerm = e.Term
	}
	last := c.log.lastIndex()
	c.log.persisted, c.log.handedOut = last, last

	hs := rs.HardState
	if hs == nil {
		hs = &messages.HardState{}
	}
	applied := rs.Applied
	if applied == 0 {
		applied = c.log.snapIndex
	}
	switch {
	case hs.Commit > last:
		return nil, bad("commit %d beyond last index %d", hs.Commit, last)
	case applied < c.log.snapIndex:
		return nil, bad("applied %d below snapshot %d", applied, c.log.snapIndex)
	case applied > last:
		return nil, bad("applied %d beyond last index %d", applied, last)
	}
	// Applied entries were committed even if the commit index that said so
	// was not durable yet.
	c.log.committed = max(hs.Commit, applied, c.log.snapIndex)
	c.log.applied, c.log.applying = applied, applied
	// Conf changes through applied took effect before the restart; later
	// ones take effect when handed out again.
	c.trk = newTracker(cfg.ID, c.snapConf, cfg.MaxInflightMsgs)
	if applied > c.log.snapIndex {
		c.trk.setConf(confAfter(c.snapConf, c.log.slice(c.log.firstIndex(), applied+1, 0)), last+1)
	}

	// A durable entry of term T means the member reached term T even if the
	// hard state saying so was torn off the WAL's tail; its vote in T was
	// then never durable, hence never sent.
	c.term = max(hs.Term, c.log.lastTerm())
	if hs.Term == c.term {
		c.vote = hs.Vote
	}
	c.durableTerm, c.durableVote = hs.Term, hs.Vote
	c.prevHard = hardState{hs.Term, hs.Vote, hs.Commit}
	c.becomeFollower(c.term, 0)
	c.prevSoft = c.softState()
	return c, nil
}

// ID returns this member's ID.
func (c *Core) ID() uint64 { return c.id }

// Role returns the current role.
func (c *Core) Role() Role { return c.role }

// Leader returns the leader of the current term as far as this member
// knows, or 0.
func (c *Core) Leader() uint64 { return c.lead }

// Term returns the current term.
func (c *Core) Term() uint64 { return c.term }

// LastIndex returns the index of the last entry in the log (durable or
// not). Right after a successful Propose of n entries they occupy
// [LastIndex()-n+1, LastIndex()].
func (c *Core) LastIndex() uint64 { return c.log.lastIndex() }

// PeerStatus is the leader's view of one member's replication.
type PeerStatus struct {
	Match, Next  uint64
	State        ProgressState
	RecentActive bool
}

// Status is a copy of the core's state for debugging and metrics.
type Status struct {
	ID, Term, Vote, Lead uint64
	Role                 Role
	Commit, Applied      uint64
	LastIndex, Persisted uint64
	LeadTransferee       uint64
	Voters, Learners     []uint64              // configuration in effect
	Progress             map[uint64]PeerStatus // leader only, voters and learners
}

// Status returns a snapshot of the core's state.
func (c *Core) Status() Status {
	s := Status{
		ID: c.id, Term: c.term, Vote: c.vote, Lead: c.lead, Role: c.role,
		Commit: c.log.committed, Applied: c.log.applied,
		LastIndex: c.log.lastIndex(), Persisted: c.log.persisted,
		LeadTransferee: c.leadTransferee,
		Voters:         slices.Clone(c.trk.voters), Learners: slices.Clone(c.trk.learners),
	}
	if c.role == RoleLeader {
		s.Progress = make(map[uint64]PeerStatus, len(c.trk.progress))
		for _, id := range c.trk.members() {
			p := c.trk.progress[id]
			s.Progress[id] = PeerStatus{Match: p.match, Next: p.next, State: p.state, RecentActive: p.recentActive}
		}
	}
	return s
}

// Tick advances the logical clock by one tick: followers and candidates
// count toward an election timeout, the leader toward heartbeats and
// check-quorum.
func (c *Core) Tick() {
	c.mustNotBeInReady("Tick")
	if c.role == RoleLeader {
		c.tickHeartbeat()
	} else {
		c.tickElection()
	}
}

// Campaign starts an election now (a pre-election first if PreVote is on),
// as an election timeout would. A no-op on the leader.
func (c *Core) Campaign() {
	c.mustNotBeInReady("Campaign")
	c.hup(false)
}

// Propose appends one entry per data item, in order, in one batch, and
// starts replicating them. The entries commit later (CommittedEntries) or
// are lost if leadership is lost first; the host matches applied entries to
// waiters by their content.
//
// Errors: ErrNotLeader on a non-leader (forward to Leader()),
// ErrProposalDropped while a leadership transfer is in progress.
func (c *Core) Propose(data ...[]byte) error {
	c.mustNotBeInReady("Propose")
	if c.role != RoleLeader {
		return ErrNotLeader
	}
	if c.leadTransferee != 0 {
		return ErrProposalDropped
	}
	if len(data) == 0 {
		return nil
	}
	ents := make([]*messages.Entry, len(data))
	for i, d := range data {
		ents[i] = &messages.Entry{Type: messages.EntryType_ENTRY_NORMAL, Data: d}
	}
	c.appendEntries(ents)
	c.bcastAppend(false)
	return nil
}

// ReadIndex requests a linearizable read point. The answer arrives as a
// ReadState{Index, Context: ctx} in a later Ready: once the host's applied
// index reaches Index, a read reflects every write acknowledged before
// ReadIndex was called.
//
// On the leader the request waits until an entry of the leader's term is
// committed, then its Index is the commit index and leadership is confirmed
// by a heartbeat round that every request arriving before the round starts
// shares (a single voter needs no round). On a follower the request is
// forwarded to the leader (MSG_READ_INDEX) and answered by it.
//
// An accepted request can still be lost (leadership change, lost message):
// no ReadState ever arrives, so the host must time out and retry.
//
// Errors: ErrNoLeader if this member is not the leader and knows none.
func (c *Core) ReadIndex(ctx []byte) error {
	c.mustNotBeInReady("ReadIndex")
	switch {
	case c.role == RoleLeader:
		c.handleReadRequest(c.id, ctx)
	case c.lead != 0:
		c.send(&messages.RaftMessage{To: c.lead, Type: messages.RaftMessageType_MSG_READ_INDEX, Context: ctx})
	default:
		return ErrNoLeader
	}
	return nil
}

// TransferLeader asks the leader to hand leadership to member `to`: it
// brings `to` up to date, then sends it MSG_TIMEOUT_NOW so it campaigns at
// once. Proposals fail with ErrProposalDropped until the transfer ends: the
// leader steps down, or an election timeout passes (abort). A new transfer
// replaces one in progress; to == ID() is a no-op.
//
// Errors: ErrNotLeader, ErrUnknownPeer.
func (c *Core) TransferLeader(to uint64) error {
	c.mustNotBeInReady("TransferLeader")
	if c.role != RoleLeader {
		return ErrNotLeader
	}
	if !c.trk.isVoter(to) {
		return ErrUnknownPeer
	}
	if to == c.id || to == c.leadTransferee {
		return nil
	}
	c.leadTransferee = to
	c.electionElapsed = 0
	if c.trk.progress[to].match == c.log.lastIndex() {
		c.sendTimeoutNow(to)
	} else {
		c.sendAppends(to, true)
	}
	return nil
}

// Persisted reports that the host's WAL made durable every entry through
// index, whose term is term (the last entry of what was written). Reports
// may cover several Readies at once and may be stale: a report for entries
// the log has since replaced (term mismatch) is ignored.
//
// It lets the leader count itself toward the commit quorum, releases the
// follower's held append acknowledgments, and makes committed entries
// through index eligible for CommittedEntries. For a received snapshot
// (Ready.Snapshot) report (snapshot index, snapshot term) once it is durable.
//
// Panics if index was never handed out in Ready.Entries (a host bug).
func (c *Core) Persisted(index, term uint64) {
	c.mustNotBeInReady("Persisted")
	if index <= c.log.persisted || !c.log.matchTerm(index, term) {
		return
	}
	if index > c.log.handedOut {
		panic(fmt.Sprintf("raft: Persisted(%d, %d) beyond the entries handed out (%d)", index, term, c.log.handedOut))
	}
	c.log.persisted = index
	if c.role == RoleLeader {
		if c.trk.progress[c.id].maybeUpdate(index) && c.maybeCommit() {
			c.bcastAppend(true)
		}
		return
	}
	c.releaseAck()
}

// PersistedHardState reports that hs (a Ready.HardState, or a newer one) is
// durable. Vote grants and the candidate's own vote count only from then on.
//
// Panics if hs is from a term this member has not reached (a host bug).
func (c *Core) PersistedHardState(hs *messages.HardState) {
	c.mustNotBeInReady("PersistedHardState")
	if hs == nil {
		return
	}
	if hs.Term > c.term {
		panic(fmt.Sprintf("raft: persisted hard state of term %d beyond current term %d", hs.Term, c.term))
	}
	if hs.Term < c.durableTerm || (hs.Term == c.durableTerm && hs.Vote == 0) {
		return
	}
	c.durableTerm, c.durableVote = hs.Term, hs.Vote
	kept := c.heldVotes[:0]
	for _, h := range c.heldVotes {
		if c.voteDurable(h.term, h.vote) {
			c.send(h.msg)
		} else {
			kept = append(kept, h)
		}
	}
	clear(c.heldVotes[len(kept):])
	c.heldVotes = kept
	c.maybeCountSelfVote()
}

// Applied reports that the state machine applied everything through index
// (entries handed out in CommittedEntries, or a Ready.Snapshot).
//
// Panics if index was never handed out for applying.
func (c *Core) Applied(index uint64) {
	c.mustNotBeInReady("Applied")
	if index > c.log.applying {
		panic(fmt.Sprintf("raft: Applied(%d) beyond the entries handed out for applying (%d)", index, c.log.applying))
	}
	c.log.applied = max(c.log.applied, index)
}

// Compact drops entries through index from memory once the host holds a
// state-machine snapshot covering them; followers that need them get a
// MSG_SNAP carrying only the SnapshotMeta (the host attaches the data).
//
// Errors: ErrCompacted if index is at or below the current log start,
// ErrUnavailable if index is beyond the applied or persisted index.
func (c *Core) Compact(index uint64) error {
	c.mustNotBeInReady("Compact")
	switch {
	case index <= c.log.snapIndex:
		return ErrCompacted
	case index > c.log.applied || index > c.log.persisted:
		return ErrUnavailable
	}
	c.snapConf = confAfter(c.snapConf, c.log.slice(c.log.firstIndex(), index+1, 0))
	c.log.compact(index)
	return nil
}

// ReportUnreachable tells the leader that a message to id could not be
// delivered; replication to id falls back to probing.
func (c *Core) ReportUnreachable(id uint64) {
	c.mustNotBeInReady("ReportUnreachable")
	if c.role != RoleLeader {
		return
	}
	if p, ok := c.trk.progress[id]; ok && id != c.id && p.state == ProgressReplicate {
		p.becomeProbe()
	}
}

// ReportSnapshot tells the leader how sending a MSG_SNAP to id ended.
// Replication then resumes by probing (after the snapshot if it succeeded).
func (c *Core) ReportSnapshot(id uint64, failed bool) {
	c.mustNotBeInReady("ReportSnapshot")
	if c.role != RoleLeader {
		return
	}
	p, ok := c.trk.progress[id]
	if !ok || id == c.id || p.state != ProgressSnapshot {
		return
	}
	if failed {
		p.pendingSnapshot = 0
	}
	p.becomeProbe()
	// Wait for a heartbeat response or an acknowledgment before probing.
	p.probeSent = true
}

func (c *Core) mustNotBeInReady(op string) {
	if c.inReady != nil {
		panic("raft: " + op + " called between Ready and Advance")
	}
}

// send queues a message. Vote messages carry an explicit term (a pre-vote's
// is the next term); every other message carries the current term.
func (c *Core) send(m *messages.RaftMessage) {
	m.From = c.id
	switch m.Type {
	case messages.RaftMessageType_MSG_VOTE, messages.RaftMessageType_MSG_VOTE_RESP,
		messages.RaftMessageType_MSG_PRE_VOTE, messages.RaftMessageType_MSG_PRE_VOTE_RESP:
		if m.Term == 0 {
			panic(fmt.Sprintf("raft: %s sent without a term", m.Type))
		}
	default:
		if m.Term != 0 {
			panic(fmt.Sprintf("raft: %s sent with an explicit term", m.Type))
		}
		m.Term = c.term
	}
	c.msgs = append(c.msgs, m)
}

func (c *Core) softState() SoftState { return SoftState{Lead: c.lead, Role: c.role} }

func (c *Core) hardState() hardState { return hardState{c.term, c.vote, c.log.committed} }

func (c *Core) voteDurable(term, vote uint64) bool {
	return c.durableTerm > term || (c.durableTerm == term && c.durableVote == vote)
}

// Committed returns the commit index.
func (c *Core) Committed() uint64 { return c.log.committed }
