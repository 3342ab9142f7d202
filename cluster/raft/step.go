package raft

import (
	"fmt"

	"github.com/aetcd/aetcd/messages"
)

const (
	msgApp          = messages.RaftMessageType_MSG_APP
	msgAppResp      = messages.RaftMessageType_MSG_APP_RESP
	msgVote         = messages.RaftMessageType_MSG_VOTE
	msgVoteResp     = messages.RaftMessageType_MSG_VOTE_RESP
	msgPreVote      = messages.RaftMessageType_MSG_PRE_VOTE
	msgPreVoteResp  = messages.RaftMessageType_MSG_PRE_VOTE_RESP
	msgSnap         = messages.RaftMessageType_MSG_SNAP
	msgHeartbeat    = messages.RaftMessageType_MSG_HEARTBEAT
	msgHeartbeatRsp = messages.RaftMessageType_MSG_HEARTBEAT_RESP
	msgTimeoutNow   = messages.RaftMessageType_MSG_TIMEOUT_NOW
	msgReadIndex    = messages.RaftMessageType_MSG_READ_INDEX
	msgReadIndexRsp = messages.RaftMessageType_MSG_READ_INDEX_RESP
)

// Step processes a message from another member. Term handling happens here
// once, for every role (Raft §5.1): a higher term turns this member into a
// follower of that term (except for pre-vote traffic and, under
// CheckQuorum, vote requests inside a leader lease); a lower term is
// ignored (or answered so a stale leader or pre-candidate learns the term).
// The rest goes to the role's step function.
//
// Errors: ErrStepLocalMsg, ErrWrongRecipient, ErrUnknownPeer,
// ErrInvalidMessage; the message is then ignored.
func (c *Core) Step(m *messages.RaftMessage) error {
	c.mustNotBeInReady("Step")
	if err := c.checkMessage(m); err != nil {
		return err
	}
	switch {
	case m.Term > c.term:
		if m.Type == msgVote || m.Type == msgPreVote {
			force := string(m.Context) == campaignTransfer
			inLease := c.cfg.CheckQuorum && c.lead != 0 && c.electionElapsed < c.cfg.ElectionTicks
			if inLease && !force {
				// Heard from a leader within the election timeout: do not
				// let a possibly partitioned member depose it (§6 of the
				// Raft thesis, "disruptive servers").
				return nil
			}
		}
		switch {
		case m.Type == msgPreVote:
			// A pre-vote does not change our term.
		case m.Type == msgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term we would campaign in.
		case m.Type == msgApp || m.Type == msgHeartbeat || m.Type == msgSnap:
			c.becomeFollower(m.Term, m.From)
		default:
			c.becomeFollower(m.Term, 0)
		}
	case m.Term < c.term:
		switch {
		case (c.cfg.CheckQuorum || c.cfg.PreVote) && (m.Type == msgApp || m.Type == msgHeartbeat):
			// A stale leader (e.g. back from a partition during which we
			// moved on without it) learns our term from this and steps
			// down; otherwise, with pre-vote or leases, nothing else would
			// tell it.
			c.send(&messages.RaftMessage{To: m.From, Type: msgAppResp})
		case m.Type == msgPreVote:
			c.send(&messages.RaftMessage{To: m.From, Type: msgPreVoteResp, Term: c.term, Reject: true})
		}
		return nil
	}
	if m.Type == msgVote || m.Type == msgPreVote {
		c.handleVoteRequest(m)
		return nil
	}
	c.step(c, m)
	return nil
}

func (c *Core) checkMessage(m *messages.RaftMessage) error {
	switch m.Type {
	case msgApp, msgAppResp, msgVote, msgVoteResp, msgPreVote, msgPreVoteResp, msgSnap,
		msgHeartbeat, msgHeartbeatRsp, msgTimeoutNow, msgReadIndex, msgReadIndexRsp:
	default:
		return fmt.Errorf("%w: %s", ErrStepLocalMsg, m.Type)
	}
	if m.To != c.id {
		return fmt.Errorf("%w: %s to %d stepped on %d", ErrWrongRecipient, m.Type, m.To, c.id)
	}
	// Senders outside the configuration are heard: a member that has not
	// applied a change yet must still follow a leader, or vote for a
	// candidate, that it does not know. Only tallies and quorums are
	// restricted to the configuration. Keeping removed members out is the
	// host's job.
	if m.From == c.id || m.From == 0 {
		return fmt.Errorf("%w: %s from %d", ErrUnknownPeer, m.Type, m.From)
	}
	switch m.Type {
	case msgApp:
		prev := m.LogTerm
		for i, e := range m.Entries {
			if e == nil || e.Index != m.Index+1+uint64(i) || e.Term < prev || e.Term > m.Term {
				return fmt.Errorf("%w: MSG_APP entries not contiguous after (%d, %d) in term %d",
					ErrInvalidMessage, m.Index, m.LogTerm, m.Term)
			}
			prev = e.Term
		}
	case msgSnap:
		if m.Snapshot == nil {
			return fmt.Errorf("%w: MSG_SNAP without snapshot", ErrInvalidMessage)
		}
	}
	return nil
}

// handleVoteRequest answers MSG_VOTE and MSG_PRE_VOTE (Raft §5.2, §5.4.1):
// grant if we have not voted for someone else in this term (a pre-vote for
// a later term is always allowed) and the candidate's log is at least as up
// to date as ours. A granted real vote is sent only once it is durable.
func (c *Core) handleVoteRequest(m *messages.RaftMessage) {
	respType := msgVoteResp
	if m.Type == msgPreVote {
		respType = msgPreVoteResp
	}
	canVote := c.vote == m.From ||
		(c.vote == 0 && c.lead == 0) ||
		(m.Type == msgPreVote && m.Term > c.term)
	if !canVote || !c.log.isUpToDate(m.Index, m.LogTerm) {
		c.send(&messages.RaftMessage{To: m.From, Type: respType, Term: c.term, Reject: true})
		return
	}
	resp := &messages.RaftMessage{To: m.From, Type: respType, Term: m.Term}
	if m.Type == msgPreVote {
		c.send(resp)
		return
	}
	c.electionElapsed = 0
	c.vote = m.From
	if c.voteDurable(c.term, c.vote) {
		c.send(resp)
	} else {
		c.heldVotes = append(c.heldVotes, heldVote{msg: resp, term: c.term, vote: c.vote})
	}
}

func stepFollower(c *Core, m *messages.RaftMessage) {
	switch m.Type {
	case msgApp:
		c.electionElapsed = 0
		c.lead = m.From
		c.handleAppend(m)
	case msgHeartbeat:
		c.electionElapsed = 0
		c.lead = m.From
		c.handleHeartbeat(m)
	case msgSnap:
		c.electionElapsed = 0
		c.lead = m.From
		c.handleSnapshot(m)
	case msgTimeoutNow:
		// The leader hands over leadership: campaign now, skipping the
		// pre-vote and any lease (the leader itself asked).
		c.hup(true)
	case msgReadIndexRsp:
		c.readStates = append(c.readStates, ReadState{Index: m.Index, Context: m.Context})
	}
}

// stepCandidate serves both the pre-candidate and the candidate.
func stepCandidate(c *Core, m *messages.RaftMessage) {
	respType := msgVoteResp
	if c.role == RolePreCandidate {
		respType = msgPreVoteResp
	}
	switch m.Type {
	case msgApp:
		// A leader exists in this term (§5.2).
		c.becomeFollower(m.Term, m.From)
		c.handleAppend(m)
	case msgHeartbeat:
		c.becomeFollower(m.Term, m.From)
		c.handleHeartbeat(m)
	case msgSnap:
		c.becomeFollower(m.Term, m.From)
		c.handleSnapshot(m)
	case respType:
		c.trk.recordVote(m.From, !m.Reject)
		c.checkElection()
	}
}

func stepLeader(c *Core, m *messages.RaftMessage) {
	p := c.trk.progress[m.From]
	if p == nil {
		// Not (or no longer) in the configuration.
		return
	}
	switch m.Type {
	case msgAppResp:
		p.recentActive = true
		c.handleAppendResp(m, p)
	case msgHeartbeatRsp:
		p.recentActive = true
		c.handleHeartbeatResp(m, p)
	case msgReadIndex:
		c.handleReadRequest(m.From, m.Context)
	case msgApp, msgHeartbeat, msgSnap:
		panic(fmt.Sprintf("raft: leader %d got %s from %d in its own term %d: two leaders in one term",
			c.id, m.Type, m.From, c.term))
	}
}

// --- role transitions ---

func (c *Core) reset(term uint64) {
	if c.term != term {
		c.term = term
		c.vote = 0
	}
	c.lead = 0
	c.electionElapsed = 0
	c.heartbeatElapsed = 0
	c.resetRandomizedElectionTimeout()
	c.leadTransferee = 0
	c.transferCampaign = false
	c.trk.resetVotes()
	last := c.log.lastIndex()
	for id, p := range c.trk.progress {
		p.resetState(ProgressProbe)
		p.match, p.next = 0, last+1
		p.recentActive = id == c.id
		p.readAcked = 0
	}
	c.reads.reset()
}

// resetRandomizedElectionTimeout picks a timeout in
// [ElectionTicks, 2*ElectionTicks) so that members rarely time out together
// and split the vote (§5.2).
func (c *Core) resetRandomizedElectionTimeout() {
	c.randomizedElectionTimeout = c.cfg.ElectionTicks + c.rand.IntN(c.cfg.ElectionTicks)
}

func (c *Core) becomeFollower(term, lead uint64) {
	c.step = stepFollower
	c.reset(term)
	c.lead = lead
	c.role = RoleFollower
}

func (c *Core) becomePreCandidate() {
	if c.role == RoleLeader {
		panic("raft: leader cannot become pre-candidate")
	}
	// A pre-candidate keeps its term and vote.
	c.step = stepCandidate
	c.trk.resetVotes()
	c.lead = 0
	c.electionElapsed = 0
	c.resetRandomizedElectionTimeout()
	c.role = RolePreCandidate
}

func (c *Core) becomeCandidate() {
	if c.role == RoleLeader {
		panic("raft: leader cannot become candidate")
	}
	c.step = stepCandidate
	c.reset(c.term + 1)
	c.vote = c.id
	c.role = RoleCandidate
}

func (c *Core) becomeLeader() {
	if c.role == RoleFollower {
		panic("raft: follower cannot become leader")
	}
	c.step = stepLeader
	c.reset(c.term)
	c.lead = c.id
	c.role = RoleLeader
	self := c.trk.progress[c.id]
	self.becomeReplicate()
	self.match, self.next = c.log.persisted, c.log.lastIndex()+1
	// Conf changes an earlier leader left in the log may still be
	// uncommitted: no new one until all of them are handed out.
	c.pendingConfIndex = c.log.lastIndex()
	// An empty entry of the new term: committing it commits every earlier
	// entry (§5.4.2) and tells the leader its commit index is current (§8).
	c.appendEntries([]*messages.Entry{{Type: messages.EntryType_ENTRY_NORMAL}})
	c.bcastAppend(false)
}

// --- elections ---

// tickElection counts toward an election timeout. Only a voter restarts
// the count when it campaigns: a learner's or removed member's count keeps
// growing, so its lease (CheckQuorum) on a leader it no longer hears from
// expires and it answers other members' vote requests.
func (c *Core) tickElection() {
	c.electionElapsed++
	if c.electionElapsed >= c.randomizedElectionTimeout && c.trk.isVoter(c.id) {
		c.electionElapsed = 0
		c.hup(false)
	}
}

// hup starts an election: a pre-election first if PreVote is on, unless
// the leader asked us to take over (transfer).
func (c *Core) hup(transfer bool) {
	if c.role == RoleLeader || !c.trk.isVoter(c.id) {
		return
	}
	if c.cfg.PreVote && !transfer {
		c.campaignPre()
	} else {
		c.campaign(transfer)
	}
}

func (c *Core) campaignPre() {
	c.becomePreCandidate()
	c.trk.recordVote(c.id, true)
	if c.trk.tally() == voteWon {
		c.campaign(false)
		return
	}
	c.requestVotes(msgPreVote, c.term+1, nil)
}

func (c *Core) campaign(transfer bool) {
	c.becomeCandidate()
	c.transferCampaign = transfer
	c.maybeCountSelfVote()
}

func (c *Core) requestVotes(t messages.RaftMessageType, term uint64, ctx []byte) {
	last := c.log.lastIndex()
	lastTerm := c.log.lastTerm()
	for _, id := range c.trk.voters {
		if id != c.id {
			c.send(&messages.RaftMessage{To: id, Type: t, Term: term, Index: last, LogTerm: lastTerm, Context: ctx})
		}
	}
}

// maybeCountSelfVote starts the candidate's election once the hard state
// recording its term and its vote for itself is durable: it counts its own
// vote and asks for the others'. Either earlier would be unsafe: after a
// crash that lost the hard state, the member restarts in the previous term
// and may run the same term again, with a shorter log (its undurable tail
// lost), and
//   - an early vote for itself could be followed by a vote for another
//     candidate in the same term;
//   - grants answering its first vote requests (which claimed the longer
//     log) would elect the second incarnation, whose log may lack entries
//     those voters only let through because of the claim.
//
// Durability of the hard state also makes the log it claims durable (the
// WAL writes in Ready order).
func (c *Core) maybeCountSelfVote() {
	if c.role != RoleCandidate || c.vote != c.id || !c.voteDurable(c.term, c.id) {
		return
	}
	if _, counted := c.trk.votes[c.id]; counted {
		return
	}
	c.trk.recordVote(c.id, true)
	var ctx []byte
	if c.transferCampaign {
		ctx = []byte(campaignTransfer)
	}
	c.requestVotes(msgVote, c.term, ctx)
	c.checkElection()
}

func (c *Core) checkElection() {
	switch c.trk.tally() {
	case voteWon:
		if c.role == RolePreCandidate {
			c.campaign(false)
			return
		}
		// Lead only once our own vote (hence our term) is durable, even if
		// others' votes already form a quorum: a leader that crashed before
		// that would restart in the previous term, could win the same term
		// again (its voters grant the same candidate twice) and send a
		// second, different entry under an (index, term) it already used.
		if _, self := c.trk.votes[c.id]; self {
			c.becomeLeader()
		}
	case voteLost:
		c.becomeFollower(c.term, 0)
	}
}

// --- log replication, follower side ---

// handleAppend is the follower side of MSG_APP (§5.3).
func (c *Core) handleAppend(m *messages.RaftMessage) {
	if m.Index < c.log.committed {
		// Committed entries match every leader's; acknowledge through them.
		c.ackAppend(m.From, c.log.committed)
		return
	}
	if last, ok := c.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		c.ackAppend(m.From, last)
		return
	}
	// Reject with a hint: the largest index at or below m.Index whose term
	// is at most m.LogTerm. Entries above it cannot match the leader's, so
	// the leader skips them all in one round trip.
	hint := c.log.findConflictByTerm(min(m.Index, c.log.lastIndex()), m.LogTerm)
	c.send(&messages.RaftMessage{
		To: m.From, Type: msgAppResp, Index: m.Index, Reject: true,
		RejectHint: hint, LogTerm: c.log.mustTerm(hint),
	})
}

// ackAppend acknowledges that our log matches leader `to`'s through index.
// Entries above the durable prefix are acknowledged only once Persisted
// reports them (the leader counts acknowledgments toward commitment).
func (c *Core) ackAppend(to, index uint64) {
	if index <= c.log.persisted {
		c.send(&messages.RaftMessage{To: to, Type: msgAppResp, Index: index})
		return
	}
	if c.ack.term != c.term || c.ack.to != to {
		c.ack = pendingAck{term: c.term, to: to}
	}
	c.ack.index = max(c.ack.index, index)
}

func (c *Core) releaseAck() {
	a := &c.ack
	if a.term != c.term || a.index <= a.sent {
		return
	}
	if i := min(a.index, c.log.persisted); i > a.sent {
		c.send(&messages.RaftMessage{To: a.to, Type: msgAppResp, Index: i})
		a.sent = i
	}
}

func (c *Core) handleHeartbeat(m *messages.RaftMessage) {
	// The leader sends min(our match, its commit): we hold those entries.
	c.log.commitTo(m.Commit)
	c.send(&messages.RaftMessage{To: m.From, Type: msgHeartbeatRsp, Context: m.Context})
}

func (c *Core) handleSnapshot(m *messages.RaftMessage) {
	s := m.Snapshot
	switch {
	case s.Index <= c.log.committed:
		c.ackAppend(m.From, c.log.committed)
	case c.log.matchTerm(s.Index, s.Term):
		// We already hold the snapshot's last entry: just commit through it.
		c.log.commitTo(s.Index)
		c.ackAppend(m.From, s.Index)
	default:
		c.log.restore(s.Index, s.Term)
		c.pendingSnapshot = &messages.SnapshotMeta{Index: s.Index, Term: s.Term, ConfState: s.ConfState}
		c.ackAppend(m.From, s.Index)
	}
}

// --- log replication, leader side ---

func (c *Core) appendEntries(ents []*messages.Entry) {
	last := c.log.lastIndex()
	for i, e := range ents {
		e.Term = c.term
		e.Index = last + 1 + uint64(i)
	}
	c.log.append(ents...)
	c.trk.progress[c.id].next = c.log.lastIndex() + 1
}

// maybeCommit advances the commit index to the largest index durable on a
// quorum, but only if that entry is from the current term (§5.4.2: counting
// replicas commits only current-term entries; earlier ones commit with it).
func (c *Core) maybeCommit() bool {
	mci := c.trk.quorumIndex(func(_ uint64, p *progress) uint64 { return p.match })
	if mci <= c.log.committed || c.log.mustTerm(mci) != c.term {
		return false
	}
	c.log.commitTo(mci)
	if len(c.reads.waitingCommit) > 0 {
		c.releaseWaitingReads()
	}
	return true
}

func (c *Core) committedInTerm() bool { return c.log.mustTerm(c.log.committed) == c.term }

func (c *Core) bcastAppend(sendIfEmpty bool) {
	for _, id := range c.trk.members() {
		if id != c.id {
			c.sendAppends(id, sendIfEmpty)
		}
	}
}

// sendAppends sends one MSG_APP to id and, in replicate state, keeps
// pipelining until the follower is caught up or the inflight window is full.
func (c *Core) sendAppends(id uint64, sendIfEmpty bool) {
	if !c.sendAppend(id, sendIfEmpty) {
		return
	}
	p := c.trk.progress[id]
	for p.state == ProgressReplicate && p.next <= c.log.lastIndex() && c.sendAppend(id, false) {
	}
}

// sendAppend sends one MSG_APP (or a MSG_SNAP if the entries it needs are
// compacted) unless replication to id is paused. It returns whether a
// MSG_APP was sent.
func (c *Core) sendAppend(id uint64, sendIfEmpty bool) bool {
	p := c.trk.progress[id]
	if p.isPaused() {
		return false
	}
	prevIndex := p.next - 1
	prevTerm, ok := c.log.term(prevIndex)
	if !ok {
		c.sendSnapshot(id, p)
		return false
	}
	var ents []*messages.Entry
	if p.next <= c.log.lastIndex() {
		ents = c.log.slice(p.next, c.log.lastIndex()+1, c.cfg.MaxSizePerMsg)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	c.send(&messages.RaftMessage{
		To: id, Type: msgApp, Index: prevIndex, LogTerm: prevTerm,
		Entries: ents, Commit: c.log.committed,
	})
	switch p.state {
	case ProgressReplicate:
		if n := len(ents); n > 0 {
			last := ents[n-1].Index
			p.next = last + 1
			p.inflights.add(last)
		}
	case ProgressProbe:
		p.probeSent = true
	}
	return true
}

func (c *Core) sendSnapshot(id uint64, p *progress) {
	c.send(&messages.RaftMessage{To: id, Type: msgSnap, Snapshot: &messages.SnapshotMeta{
		Index: c.log.snapIndex, Term: c.log.snapTerm,
		ConfState: cloneConf(c.snapConf),
	}})
	p.becomeSnapshot(c.log.snapIndex)
}

func (c *Core) handleAppendResp(m *messages.RaftMessage, p *progress) {
	if m.Reject {
		hint := m.RejectHint
		if m.LogTerm > 0 {
			// Skip every entry of ours whose term exceeds the follower's
			// term at the hint: none of them can match.
			hint = c.log.findConflictByTerm(min(m.RejectHint, c.log.lastIndex()), m.LogTerm)
		}
		if p.maybeDecrTo(m.Index, hint) {
			if p.state == ProgressReplicate {
				p.becomeProbe()
			}
			c.sendAppends(m.From, true)
		}
		return
	}
	if !p.maybeUpdate(m.Index) {
		return
	}
	switch {
	case p.state == ProgressProbe:
		p.becomeReplicate()
	case p.state == ProgressSnapshot && p.match >= p.pendingSnapshot:
		p.becomeProbe()
		p.becomeReplicate()
	case p.state == ProgressReplicate:
		p.inflights.freeLE(m.Index)
	}
	if c.maybeCommit() {
		// Followers learn the new commit index without waiting for a
		// heartbeat.
		c.bcastAppend(true)
	} else {
		c.sendAppends(m.From, false)
	}
	if m.From == c.leadTransferee && p.match == c.log.lastIndex() {
		c.sendTimeoutNow(m.From)
	}
}

func (c *Core) handleHeartbeatResp(m *messages.RaftMessage, p *progress) {
	p.probeSent = false
	if p.state == ProgressReplicate && p.inflights.full() {
		// A lost MSG_APP would otherwise hold the window shut forever.
		p.inflights.freeFirstOne()
	}
	if p.match < c.log.lastIndex() {
		// An empty MSG_APP at next-1 exposes a gap left by lost messages
		// (the follower rejects it and we fall back to probing).
		c.sendAppends(m.From, true)
	}
	c.handleReadAck(m.From, p, m.Context)
}

func (c *Core) sendTimeoutNow(to uint64) {
	c.send(&messages.RaftMessage{To: to, Type: msgTimeoutNow})
}

func (c *Core) tickHeartbeat() {
	c.heartbeatElapsed++
	c.electionElapsed++
	if c.electionElapsed >= c.cfg.ElectionTicks {
		c.electionElapsed = 0
		if c.cfg.CheckQuorum {
			if !c.quorumActive() {
				// Cannot reach a quorum: another leader may already exist.
				c.becomeFollower(c.term, 0)
				return
			}
			for _, id := range c.trk.members() {
				if id != c.id {
					c.trk.progress[id].recentActive = false
				}
			}
		}
		// A transfer not done within an election timeout is abandoned.
		c.leadTransferee = 0
	}
	if c.heartbeatElapsed >= c.cfg.HeartbeatTicks {
		c.heartbeatElapsed = 0
		c.heartbeatRound()
	}
}

func (c *Core) quorumActive() bool {
	active := 0
	for _, id := range c.trk.voters {
		if c.trk.progress[id].recentActive {
			active++
		}
	}
	return active >= c.trk.quorum()
}

func (c *Core) bcastHeartbeat(ctx []byte) {
	for _, id := range c.trk.members() {
		if id == c.id {
			continue
		}
		p := c.trk.progress[id]
		c.send(&messages.RaftMessage{
			To: id, Type: msgHeartbeat, Context: ctx,
			Commit: min(p.match, c.log.committed),
		})
	}
}
