package raft

import (
	"encoding/binary"

	"github.com/aetcd/aetcd/messages"
)

// ReadState answers a ReadIndex call: reads are linearizable once the
// host's applied index reaches Index. Context is the ctx given to ReadIndex.
type ReadState struct {
	Index   uint64
	Context []byte
}

type readRequest struct {
	from  uint64 // member to answer (the leader itself for local requests)
	ctx   []byte
	index uint64 // commit index when the request was accepted
}

// readRound is one heartbeat round confirming leadership for a batch.
type readRound struct {
	id   uint64
	reqs []readRequest
}

// readOnly is the leader's linearizable-read pipeline (Raft thesis §6.4):
//
//  1. until an entry of the leader's term commits, requests wait
//     (waitingCommit), since the commit index may lag the previous leader's;
//  2. an accepted request records the commit index and joins the newest
//     round if that round's heartbeats have not left yet (not handed out in
//     a Ready), else the open batch;
//  3. the open batch becomes a heartbeat round carrying the round id in
//     Context when no round is in flight (or at the next heartbeat tick);
//  4. a round is confirmed once a quorum (the leader included) answered a
//     heartbeat carrying that round's id or a later one: every heartbeat of
//     round r left after every request of rounds <= r arrived, so the
//     leader was still the leader after each of them arrived.
type readOnly struct {
	waitingCommit []readRequest
	open          []readRequest
	rounds        []readRound
	lastRound     uint64 // id of the newest round sent in this term
	// sealed: the newest round's heartbeats were handed out in a Ready;
	// until then, new requests join that round.
	sealed bool
}

func (r *readOnly) reset() { *r = readOnly{} }

func encodeRound(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func (c *Core) handleReadRequest(from uint64, ctx []byte) {
	if !c.committedInTerm() {
		c.reads.waitingCommit = append(c.reads.waitingCommit, readRequest{from: from, ctx: ctx})
		return
	}
	req := readRequest{from: from, ctx: ctx, index: c.log.committed}
	if len(c.trk.voters) == 1 && c.trk.voters[0] == c.id {
		c.answerRead(req)
		return
	}
	if n := len(c.reads.rounds); n > 0 && !c.reads.sealed {
		// The newest round's heartbeats have not left yet (they leave with
		// the next Ready), so its answers will postdate this request too.
		c.reads.rounds[n-1].reqs = append(c.reads.rounds[n-1].reqs, req)
		return
	}
	c.reads.open = append(c.reads.open, req)
	if len(c.reads.rounds) == 0 {
		c.startReadRound()
	}
}

func (c *Core) releaseWaitingReads() {
	waiting := c.reads.waitingCommit
	c.reads.waitingCommit = nil
	for _, r := range waiting {
		c.handleReadRequest(r.from, r.ctx)
	}
}

func (c *Core) startReadRound() {
	if len(c.reads.open) == 0 {
		return
	}
	c.reads.lastRound++
	c.reads.rounds = append(c.reads.rounds, readRound{id: c.reads.lastRound, reqs: c.reads.open})
	c.reads.open = nil
	c.reads.sealed = false
	c.trk.progress[c.id].readAcked = c.reads.lastRound
	c.bcastHeartbeat(encodeRound(c.reads.lastRound))
}

// heartbeatRound runs on every heartbeat tick: it sends the open read batch
// as a new round, or repeats the newest round's id so a round whose
// heartbeats or answers were lost still completes.
func (c *Core) heartbeatRound() {
	if len(c.reads.open) > 0 {
		c.startReadRound()
		return
	}
	var ctx []byte
	if len(c.reads.rounds) > 0 {
		ctx = encodeRound(c.reads.lastRound)
	}
	c.bcastHeartbeat(ctx)
}

func (c *Core) handleReadAck(from uint64, p *progress, ctx []byte) {
	if len(ctx) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(ctx)
	if id > c.reads.lastRound || id <= p.readAcked {
		return
	}
	p.readAcked = id
	confirmed := c.trk.quorumIndex(func(_ uint64, p *progress) uint64 { return p.readAcked })
	n := 0
	for n < len(c.reads.rounds) && c.reads.rounds[n].id <= confirmed {
		for _, req := range c.reads.rounds[n].reqs {
			c.answerRead(req)
		}
		n++
	}
	if n == 0 {
		return
	}
	clear(c.reads.rounds[:n])
	c.reads.rounds = c.reads.rounds[n:]
	if len(c.reads.rounds) == 0 {
		c.startReadRound()
	}
}

func (c *Core) answerRead(req readRequest) {
	if req.from == c.id {
		c.readStates = append(c.readStates, ReadState{Index: req.index, Context: req.ctx})
		return
	}
	c.send(&messages.RaftMessage{To: req.from, Type: msgReadIndexRsp, Index: req.index, Context: req.ctx})
}
