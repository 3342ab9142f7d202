package actors

import (
	"container/heap"
	"math"
	"sort"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
)

// LessorName is the name of a member's lease ticker.
const LessorName = "lessor"

// lessor is the lease ticker: it keeps the clock of every lease. Which
// leases exist (and their TTLs, checkpointed remaining TTLs and keys) is
// the store's replicated state, applied through Raft; the applier reports
// every change (LeasesApplied). Only the leader's ticker is primary: it
// answers keep-alives and time-to-live queries (other members forward them
// to it) and expires leases, by proposing revokes through Raft in batches,
// never by deleting keys itself. Before it renews or revokes it confirms
// through a ReadIndex that it still leads and has applied everything
// committed (as etcd's ensureLeadership and waitAppliedIndex), so a deposed
// or stalled leader neither keeps a lease alive nor revokes one. On
// becoming primary every lease gets its remaining TTL (the checkpointed
// one, else its full TTL) plus an election timeout, spread out so that no
// more than 3/4 of the revoke rate expire in any second (etcd #15247); the
// primary checkpoints remaining TTLs through Raft every CheckpointInterval
// so a leader change does not reset them (etcd #9888). A stall of the
// ticker itself (a paused process) extends every lease by the stall.
type lessor struct {
	env   *Env
	cfg   LessorConfig
	store *mvcc.Store
	raft  *actor.PID

	clocks      map[int64]*leaseClock
	expiries    expiryHeap
	checkpoints checkpointHeap
	primary     bool
	lastTick    time.Time
	cancelTick  scheduler.CancelFunc

	// renewals wait for the leadership confirmation of round confirming
	// (0: none in flight) or, queued, for the next round.
	inFlight   []pendingRenewal
	queued     []pendingRenewal
	confirming uint64
	round      uint64
	confirmAt  time.Time
	// revokeWanted: expired leases wait for a confirmation.
	revokeWanted bool
	// unknown: keep-alives of leases not found while the member had not
	// applied everything committed; retried until Deadline.
	unknown []pendingRenewal
	// forwards are the queries this (not primary) ticker sent on to the
	// leader's and not yet answered, by forward ID.
	forwards map[uint64]*forwarded
	nextFwd  uint64
}

// forwarded is a query waiting for the leader's ticker.
type forwarded struct {
	req      *messages.ClientRequest
	replyTo  *actor.PID
	local    *messages.ResponseHeader // this member's header on arrival
	leader   uint64                   // where it was sent (0: not yet)
	sentAt   time.Time
	deadline time.Time
	last     *messages.Error
}

type leaseClock struct {
	id        int64
	ttl       int64 // seconds
	remaining int64 // checkpointed remaining TTL, seconds; 0 if none
	expiry    time.Time
	index     int // in expiries; -1 if absent
	// revoking: expired, its revoke proposed; keep-alives find it gone.
	revoking bool
}

type pendingRenewal struct {
	req     *messages.ClientRequest
	replyTo *actor.PID
	// fwdFrom and fwdID: a query another member's ticker forwarded; the
	// answer goes back to it as LeaseForwardAnswer fwdID.
	fwdFrom  *actor.PID
	fwdID    uint64
	deadline time.Time
	// applied is the commit index a query for an unknown lease waits to
	// be applied; math.MaxUint64 once it waited (it is not deferred again).
	applied uint64
}

// LessorConfig tunes the lease ticker.
type LessorConfig struct {
	// TickInterval is how often expiries and checkpoints are checked.
	// Default 500 ms.
	TickInterval time.Duration
	// ElectionTimeout extends every lease when this member becomes primary.
	ElectionTimeout time.Duration
	// CheckpointInterval is how often a primary checkpoints remaining TTLs
	// (etcd's lease checkpoint interval). Default 5 min.
	CheckpointInterval time.Duration
	// RevokeRate bounds revokes per second (etcd's leaseRevokeRate). Default 1000.
	RevokeRate int
	// RequestTimeout bounds a keep-alive's wait for a leadership check.
	RequestTimeout time.Duration
	// PeerPID returns the PID of actor name on the member whose peer
	// address is addr.
	PeerPID func(addr, name string) *actor.PID
}

// maxCheckpointBatch bounds the checkpoints in one proposal.
const maxCheckpointBatch = 1000

// expiredRetry is how long a lease whose revoke was proposed waits before
// it is proposed again (the proposal may be lost in a leader change).
const expiredRetry = 3 * time.Second

// NewLessorProps returns the props of a lease ticker over store; raft is
// the member's raft node (revokes and checkpoints are proposed to it).
func NewLessorProps(env *Env, cfg LessorConfig, store *mvcc.Store, raft *actor.PID) *actor.Props {
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 500 * time.Millisecond
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 5 * time.Minute
	}
	if cfg.RevokeRate <= 0 {
		cfg.RevokeRate = 1000
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &lessor{env: env, cfg: cfg, store: store, raft: raft, clocks: map[int64]*leaseClock{}}
	})
}

func (l *lessor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		l.onStarted(ctx)
	case *messages.LeaseTick:
		l.onTick(ctx)
	case *messages.LeasesApplied:
		l.onLeasesApplied(ctx, msg)
	case *messages.ClientRequest:
		l.onClientRequest(ctx, msg)
	case *messages.LeaderConfirmed:
		l.onLeaderConfirmed(ctx, msg)
	case *messages.LeaseForward:
		l.onLeaseForward(ctx, msg)
	case *messages.LeaseForwardAnswer:
		l.onLeaseForwardAnswer(ctx, msg)
	case *messages.ClientResponse:
		l.onProposalAnswer(msg)
	case *actor.Stopping:
		if l.cancelTick != nil {
			l.cancelTick()
		}
	}
}

func (l *lessor) onStarted(ctx actor.Context) {
	l.reload()
	l.lastTick = time.Now()
	l.cancelTick = sendRepeatedly(ctx, l.cfg.TickInterval, &messages.LeaseTick{})
}

// reload rebuilds the clocks from the store (not primary: no expiries).
func (l *lessor) reload() {
	l.clocks = map[int64]*leaseClock{}
	l.expiries = l.expiries[:0]
	l.checkpoints = l.checkpoints[:0]
	l.primary = false
	for _, info := range l.store.Leases() {
		l.clocks[info.ID] = &leaseClock{id: info.ID, ttl: info.TTL, remaining: info.RemainingTTL, index: -1}
	}
}

func (l *lessor) onTick(ctx actor.Context) {
	now := time.Now()
	stall := now.Sub(l.lastTick) - l.cfg.TickInterval
	l.lastTick = now
	l.followLeadership(now)
	l.retryForwards(ctx, now)
	if !l.primary {
		return
	}
	if stall > l.cfg.TickInterval+l.cfg.ElectionTimeout {
		l.env.Logger.Warn().Dur("stall", stall).Msg("lease ticker stalled; extending every lease by the stall")
		for _, c := range l.clocks {
			if c.index >= 0 {
				c.expiry = c.expiry.Add(stall)
			}
		}
		heap.Init(&l.expiries)
	}
	if len(l.expiries) > 0 && !l.expiries[0].expiry.After(now) {
		l.revokeWanted = true
	}
	l.proposeCheckpoints(ctx, now)
	l.expireConfirmation(ctx, now)
	l.retryUnknown(ctx, now)
	l.confirm(ctx)
}

// followLeadership becomes primary when this member leads, and stops being
// primary when it does not.
func (l *lessor) followLeadership(now time.Time) {
	leads := l.env.State.Leader.Load() == l.env.State.MemberID
	switch {
	case leads && !l.primary:
		l.promote(now)
	case !leads && l.primary:
		l.demote()
	}
}

// promote starts every lease's clock: its remaining TTL (checkpointed, or
// the full TTL) plus an election timeout; expiries are then spread so that
// at most 3/4 of the revoke rate fall in any second.
func (l *lessor) promote(now time.Time) {
	l.primary = true
	l.expiries = l.expiries[:0]
	l.checkpoints = l.checkpoints[:0]
	clocks := make([]*leaseClock, 0, len(l.clocks))
	for _, c := range l.clocks {
		left := c.ttl
		if c.remaining > 0 {
			left = c.remaining
		}
		c.expiry = now.Add(l.cfg.ElectionTimeout + time.Duration(left)*time.Second)
		// A revoke proposed in an earlier term may have been lost: the
		// lease exists, so it lives again until it expires again.
		c.revoking = false
		clocks = append(clocks, c)
	}
	sort.Slice(clocks, func(i, j int) bool { return clocks[i].expiry.Before(clocks[j].expiry) })
	perSecond := max(3*l.cfg.RevokeRate/4, 1)
	if len(clocks) > perSecond {
		windowStart, inWindow := time.Time{}, 0
		for _, c := range clocks {
			if c.expiry.Sub(windowStart) > time.Second {
				windowStart, inWindow = c.expiry, 1
				continue
			}
			inWindow++
			if inWindow > perSecond {
				delay := time.Duration(float64(time.Second) * float64(inWindow) / float64(perSecond))
				c.expiry = windowStart.Add(delay)
			}
		}
	}
	for _, c := range clocks {
		heap.Push(&l.expiries, c)
		l.scheduleCheckpoint(c, now)
	}
	l.env.Logger.Info().Int("leases", len(clocks)).Msg("lease ticker: primary")
}

func (l *lessor) demote() {
	l.primary = false
	for _, c := range l.clocks {
		c.index = -1
		c.expiry = time.Time{}
	}
	l.expiries = l.expiries[:0]
	l.checkpoints = l.checkpoints[:0]
	l.revokeWanted = false
	l.env.Logger.Info().Msg("lease ticker: no longer primary")
}

func (l *lessor) onLeasesApplied(ctx actor.Context, msg *messages.LeasesApplied) {
	now := time.Now()
	if msg.Reload {
		l.reload()
		l.followLeadership(now)
	}
	for _, g := range msg.Granted {
		c := &leaseClock{id: g.ID, ttl: g.TTL, remaining: g.RemainingTTL, index: -1}
		l.forget(g.ID)
		l.clocks[g.ID] = c
		if l.primary {
			c.expiry = now.Add(time.Duration(c.ttl) * time.Second)
			heap.Push(&l.expiries, c)
			l.scheduleCheckpoint(c, now)
		}
	}
	for _, id := range msg.Revoked {
		l.forget(id)
	}
	for _, cp := range msg.Checkpoints {
		if c := l.clocks[cp.ID]; c != nil {
			c.remaining = cp.Remaining_TTL
			if l.primary {
				l.scheduleCheckpoint(c, now)
			}
		}
	}
	l.retryUnknown(ctx, now)
}

func (l *lessor) forget(id int64) {
	if c := l.clocks[id]; c != nil {
		if c.index >= 0 {
			heap.Remove(&l.expiries, c.index)
		}
		delete(l.clocks, id)
	}
}

// onClientRequest serves keep-alives and time-to-live queries: on the
// primary after a leadership confirmation; elsewhere by forwarding them to
// the leader's ticker and relaying its answer.
func (l *lessor) onClientRequest(ctx actor.Context, req *messages.ClientRequest) {
	if ctx.Sender() == nil {
		return
	}
	now := time.Now()
	l.followLeadership(now)
	if !l.primary {
		l.forward(ctx, req)
		return
	}
	l.queued = append(l.queued, pendingRenewal{req: req, replyTo: ctx.Sender(), deadline: now.Add(l.cfg.RequestTimeout)})
	l.confirm(ctx)
}

// forward sends req on to the leader's ticker (LeaseForward) and relays
// its answer to the client under this member's header, as etcd's
// LeaseRenew forwards a renewal. No goroutine or future per request: the
// answer comes back as a message. While there is no leader the request
// waits; one sent to a leader that is replaced (killed, paused, cut off),
// or that answered with an error, is sent again to the next leader on the
// next tick; at the request timeout the client gets the last error.
// Without this a keep-alive sent to a dead leader held the client's
// keep-alive stream for the whole request timeout, longer than short TTLs,
// so clients gave their leases up in a failover.
func (l *lessor) forward(ctx actor.Context, req *messages.ClientRequest) {
	if l.cfg.PeerPID == nil {
		ctx.Respond(rpcerr.Response(rpcerr.NotLeader))
		return
	}
	now := time.Now()
	l.nextFwd++
	f := &forwarded{req: req, replyTo: ctx.Sender(), local: l.header(), deadline: now.Add(l.cfg.RequestTimeout), last: rpcerr.Timeout}
	if l.forwards == nil {
		l.forwards = map[uint64]*forwarded{}
	}
	l.forwards[l.nextFwd] = f
	l.sendForward(ctx, l.nextFwd, f, now)
}

// sendForward sends (or resends) forward id to the current leader's
// ticker; without a leader it waits for the next tick.
func (l *lessor) sendForward(ctx actor.Context, id uint64, f *forwarded, now time.Time) {
	state := l.env.State
	leader, addrs := state.Leader.Load(), state.PeerAddrs.Load()
	switch {
	case leader == state.MemberID:
		// Elected meanwhile: serve it here.
		delete(l.forwards, id)
		l.followLeadership(now)
		l.queued = append(l.queued, pendingRenewal{req: f.req, replyTo: f.replyTo, deadline: f.deadline})
		l.confirm(ctx)
	case leader == 0 || addrs == nil || (*addrs)[leader] == "":
		f.leader, f.last = 0, rpcerr.NoLeader
	default:
		f.leader, f.sentAt = leader, now
		ctx.Request(l.cfg.PeerPID((*addrs)[leader], LessorName), &messages.LeaseForward{Id: id,
			Request: f.req})
	}
}

// onLeaseForwardAnswer relays the leader's answer to a forwarded query. An
// error answer (the leader stepped down) is retried on the next tick.
func (l *lessor) onLeaseForwardAnswer(ctx actor.Context, msg *messages.LeaseForwardAnswer) {
	f := l.forwards[msg.Id]
	if f == nil {
		return
	}
	resp := msg.Response
	if e := resp.GetError(); e != nil && !rpcerr.Is(e, rpcerr.LeaseNotFound) {
		f.leader, f.last = 0, e
		return
	}
	delete(l.forwards, msg.Id)
	ctx.Send(f.replyTo, relayed(resp, f.local, l.env.State.Term.Load()))
}

// retryForwards answers forwards past their deadline with their last error
// and resends those whose leader is gone (replaced, or unanswered for an
// election timeout with another leader known) to the current leader.
func (l *lessor) retryForwards(ctx actor.Context, now time.Time) {
	leader := l.env.State.Leader.Load()
	for id, f := range l.forwards {
		switch {
		case !now.Before(f.deadline):
			delete(l.forwards, id)
			ctx.Send(f.replyTo, rpcerr.Response(f.last))
		case f.leader == 0 || (leader != 0 && leader != f.leader):
			l.sendForward(ctx, id, f, now)
		}
	}
}

// onLeaseForward serves a query another member's ticker forwarded; the
// answer goes back to that ticker.
func (l *lessor) onLeaseForward(ctx actor.Context, msg *messages.LeaseForward) {
	if ctx.Sender() == nil || msg.Request == nil {
		return
	}
	now := time.Now()
	l.followLeadership(now)
	p := pendingRenewal{req: msg.Request, fwdFrom: ctx.Sender(), fwdID: msg.Id, deadline: now.Add(l.cfg.RequestTimeout)}
	if !l.primary {
		l.reply(ctx, p, rpcerr.Response(rpcerr.NotLeader))
		return
	}
	l.queued = append(l.queued, p)
	l.confirm(ctx)
}

// reply answers a served query: to its client, or, forwarded, to the
// ticker that forwarded it.
func (l *lessor) reply(ctx actor.Context, p pendingRenewal, resp *messages.ClientResponse) {
	if p.fwdFrom != nil {
		ctx.Send(p.fwdFrom, &messages.LeaseForwardAnswer{Id: p.fwdID, Response: resp})
		return
	}
	ctx.Send(p.replyTo, resp)
}

// confirm starts a leadership confirmation round for what waits, if none
// is in flight.
func (l *lessor) confirm(ctx actor.Context) {
	if l.confirming != 0 || (len(l.queued) == 0 && !l.revokeWanted) {
		return
	}
	l.round++
	l.confirming = l.round
	l.confirmAt = time.Now()
	l.inFlight, l.queued = l.queued, l.inFlight[:0]
	root, self, raftPID, round, timeout := ctx.ActorSystem().Root, ctx.Self(), l.raft, l.round, l.cfg.RequestTimeout
	go func() {
		res, err := root.RequestFuture(raftPID, &messages.ReadIndex{}, timeout).Result()
		out := &messages.LeaderConfirmed{Round: round, Error: rpcerr.Timeout}
		if ready, ok := res.(*messages.ReadReady); err == nil && ok {
			out.Error = ready.Error
		}
		root.Send(self, out)
	}()
}

// expireConfirmation fails a round whose answer is overdue (the future
// answers by its own timeout; this is the backstop).
func (l *lessor) expireConfirmation(ctx actor.Context, now time.Time) {
	if l.confirming != 0 && now.Sub(l.confirmAt) > 2*l.cfg.RequestTimeout {
		l.onLeaderConfirmed(ctx, &messages.LeaderConfirmed{Round: l.confirming, Error: rpcerr.Timeout})
	}
}

func (l *lessor) onLeaderConfirmed(ctx actor.Context, msg *messages.LeaderConfirmed) {
	if msg.Round != l.confirming {
		return
	}
	l.confirming = 0
	batch := l.inFlight
	l.inFlight = nil
	now := time.Now()
	l.followLeadership(now)
	if msg.Error != nil || !l.primary {
		e := msg.Error
		if e == nil {
			e = rpcerr.NotLeader
		}
		for _, p := range batch {
			l.reply(ctx, p, rpcerr.Response(e))
		}
		l.confirm(ctx)
		return
	}
	for _, p := range batch {
		if now.After(p.deadline) {
			// Its client gave up (the request timed out): renewing now
			// would answer no one and extend a lease nobody confirmed.
			continue
		}
		l.serve(ctx, p, now)
	}
	if l.revokeWanted {
		l.revokeWanted = false
		l.revokeExpired(ctx, now)
	}
	l.confirm(ctx)
}

// serve answers a keep-alive or time-to-live query on the confirmed
// primary.
func (l *lessor) serve(ctx actor.Context, p pendingRenewal, now time.Time) {
	hdr := l.header()
	var id int64
	switch r := p.req.Request.(type) {
	case *messages.ClientRequest_LeaseKeepAlive:
		id = r.LeaseKeepAlive.GetID()
	case *messages.ClientRequest_LeaseTimeToLive:
		id = r.LeaseTimeToLive.GetID()
	default:
		l.reply(ctx, p, rpcerr.Response(&messages.Error{Code: 12, Message: "aetcd: the lease ticker serves only keep-alives and time-to-live"}))
		return
	}
	c := l.clockOf(id, now)
	// The header's revision was read before the store's lease table: a
	// revoke applied by then is seen, so no answer keeps alive a lease
	// at a revision where it is already gone (as etcd's keep-alive header).
	if c == nil || c.revoking || (c.index >= 0 && !c.expiry.After(now)) || !l.store.HasLease(id) {
		if c == nil && l.env.State.AppliedIndex.Load() < l.env.State.CommitIndex.Load() && p.applied == 0 {
			p.applied = l.env.State.CommitIndex.Load()
			l.unknown = append(l.unknown, p)
			return
		}
		l.answerUnknown(ctx, p, hdr, id)
		return
	}
	switch r := p.req.Request.(type) {
	case *messages.ClientRequest_LeaseKeepAlive:
		if c.remaining > 0 {
			// A renewed lease forgets its checkpoint, so a later leader
			// starts it from its full TTL (as etcd's Renew).
			c.remaining = 0
			l.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseCheckpoint{
				LeaseCheckpoint: &messages.LeaseCheckpointRequest{Checkpoints: []*messages.LeaseCheckpoint{{ID: id}}}}})
		}
		c.expiry = now.Add(time.Duration(c.ttl) * time.Second)
		l.fixExpiry(c)
		l.reply(ctx, p, &messages.ClientResponse{Response: &messages.ClientResponse_LeaseKeepAlive{
			LeaseKeepAlive: &messages.LeaseKeepAliveResponse{Header: hdr, ID: id, TTL: c.ttl}}})
	case *messages.ClientRequest_LeaseTimeToLive:
		resp := &messages.LeaseTimeToLiveResponse{Header: hdr, ID: id,
			TTL: int64(c.expiry.Sub(now).Seconds()), GrantedTTL: c.ttl}
		if r.LeaseTimeToLive.GetKeys() {
			if info, ok := l.store.Lease(id); ok {
				resp.Keys = info.Keys
			}
		}
		l.reply(ctx, p, &messages.ClientResponse{Response: &messages.ClientResponse_LeaseTimeToLive{LeaseTimeToLive: resp}})
	}
}

// header is this member's response header now.
func (l *lessor) header() *messages.ResponseHeader {
	return &messages.ResponseHeader{ClusterId: l.env.State.ClusterID, MemberId: l.env.State.MemberID,
		Revision: l.store.View().Rev(), RaftTerm: l.env.State.Term.Load()}
}

// relayed is the leader's answer to a forwarded request with this
// member's header, as etcd's lease server fills it: a keep-alive's is the
// one taken when the request arrived (its revision predates the renewal),
// a time-to-live's keeps the leader's revision.
func relayed(resp *messages.ClientResponse, local *messages.ResponseHeader, term uint64) *messages.ClientResponse {
	out := proto.Clone(resp).(*messages.ClientResponse)
	switch r := out.Response.(type) {
	case *messages.ClientResponse_LeaseKeepAlive:
		r.LeaseKeepAlive.Header = local
	case *messages.ClientResponse_LeaseTimeToLive:
		h := &messages.ResponseHeader{ClusterId: local.ClusterId, MemberId: local.MemberId,
			Revision: r.LeaseTimeToLive.GetHeader().GetRevision(), RaftTerm: term}
		if h.Revision == 0 {
			h.Revision = local.Revision
		}
		r.LeaseTimeToLive.Header = h
	}
	return out
}

// answerUnknown answers for a lease that does not exist (or expired):
// keep-alive TTL 0, time-to-live TTL -1, as etcd's lease server.
func (l *lessor) answerUnknown(ctx actor.Context, p pendingRenewal, hdr *messages.ResponseHeader, id int64) {
	if p.req.GetLeaseKeepAlive() != nil {
		l.reply(ctx, p, &messages.ClientResponse{Response: &messages.ClientResponse_LeaseKeepAlive{
			LeaseKeepAlive: &messages.LeaseKeepAliveResponse{Header: hdr, ID: id}}})
		return
	}
	l.reply(ctx, p, &messages.ClientResponse{Response: &messages.ClientResponse_LeaseTimeToLive{
		LeaseTimeToLive: &messages.LeaseTimeToLiveResponse{Header: hdr, ID: id, TTL: -1}}})
}

// retryUnknown serves again the queries for leases not found while the
// member was applying: once it has applied what was committed then, or at
// their deadline.
func (l *lessor) retryUnknown(ctx actor.Context, now time.Time) {
	if len(l.unknown) == 0 {
		return
	}
	applied := l.env.State.AppliedIndex.Load()
	kept := l.unknown[:0]
	for _, p := range l.unknown {
		if applied >= p.applied || !now.Before(p.deadline) {
			p.applied = math.MaxUint64
			l.queued = append(l.queued, p)
			continue
		}
		kept = append(kept, p)
	}
	l.unknown = kept
	l.confirm(ctx)
}

// clockOf returns a lease's clock, creating it from the store when the
// applier's report has not arrived yet.
func (l *lessor) clockOf(id int64, now time.Time) *leaseClock {
	if c := l.clocks[id]; c != nil {
		return c
	}
	info, ok := l.store.Lease(id)
	if !ok {
		return nil
	}
	c := &leaseClock{id: id, ttl: info.TTL, remaining: info.RemainingTTL, index: -1}
	l.clocks[id] = c
	if l.primary {
		c.expiry = now.Add(time.Duration(c.ttl) * time.Second)
		heap.Push(&l.expiries, c)
		l.scheduleCheckpoint(c, now)
	}
	return c
}

func (l *lessor) fixExpiry(c *leaseClock) {
	if c.index >= 0 {
		heap.Fix(&l.expiries, c.index)
	} else {
		heap.Push(&l.expiries, c)
	}
}

// revokeExpired proposes revokes for expired leases, at most half the
// revoke rate per tick; each waits expiredRetry before it is proposed again.
func (l *lessor) revokeExpired(ctx actor.Context, now time.Time) {
	limit := max(l.cfg.RevokeRate*int(l.cfg.TickInterval/time.Millisecond)/1000, 1)
	var ids []int64
	for len(l.expiries) > 0 && len(ids) < limit && !l.expiries[0].expiry.After(now) {
		c := l.expiries[0]
		ids = append(ids, c.id)
		c.revoking = true
		c.expiry = now.Add(expiredRetry)
		heap.Fix(&l.expiries, 0)
	}
	for _, id := range ids {
		l.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseRevoke{
			LeaseRevoke: &messages.LeaseRevokeRequest{ID: id}}})
	}
	if len(ids) > 0 {
		l.env.Logger.Info().Int("leases", len(ids)).Msg("lease ticker: revoking expired leases")
	}
}

func (l *lessor) scheduleCheckpoint(c *leaseClock, now time.Time) {
	left := c.ttl
	if c.remaining > 0 {
		left = c.remaining
	}
	if time.Duration(left)*time.Second > l.cfg.CheckpointInterval {
		heap.Push(&l.checkpoints, checkpointAt{id: c.id, at: now.Add(l.cfg.CheckpointInterval)})
	}
}

// proposeCheckpoints proposes the remaining TTLs of leases whose
// checkpoint is due (etcd's checkpointScheduledLeases).
func (l *lessor) proposeCheckpoints(ctx actor.Context, now time.Time) {
	var cps []*messages.LeaseCheckpoint
	for len(l.checkpoints) > 0 && !l.checkpoints[0].at.After(now) {
		due := heap.Pop(&l.checkpoints).(checkpointAt)
		c := l.clocks[due.id]
		if c == nil || c.index < 0 || !now.Before(c.expiry) {
			continue
		}
		left := int64(math.Ceil(c.expiry.Sub(now).Seconds()))
		if left >= c.ttl {
			continue
		}
		cps = append(cps, &messages.LeaseCheckpoint{ID: c.id, Remaining_TTL: left})
		if len(cps) == maxCheckpointBatch {
			l.proposeCheckpointBatch(ctx, cps)
			cps = nil
		}
	}
	if len(cps) > 0 {
		l.proposeCheckpointBatch(ctx, cps)
	}
}

func (l *lessor) proposeCheckpointBatch(ctx actor.Context, cps []*messages.LeaseCheckpoint) {
	l.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseCheckpoint{
		LeaseCheckpoint: &messages.LeaseCheckpointRequest{Checkpoints: cps}}})
}

// propose sends a lease proposal to the raft node; its answer comes back
// to onProposalAnswer.
func (l *lessor) propose(ctx actor.Context, ir *messages.InternalRequest) {
	ir.Id = l.env.State.NextRequestID()
	ir.Origin = l.env.State.MemberID
	ctx.Request(l.raft, &messages.Propose{Request: ir})
}

func (l *lessor) onProposalAnswer(msg *messages.ClientResponse) {
	if e := msg.GetError(); e != nil && !rpcerr.Is(e, rpcerr.LeaseNotFound) {
		l.env.Logger.Debug().Str("error", e.Message).Msg("lease ticker: proposal failed")
	}
}

// expiryHeap orders lease clocks by expiry; each clock knows its index.
type expiryHeap []*leaseClock

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	c := x.(*leaseClock)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *expiryHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*h = old[:len(old)-1]
	return c
}

type checkpointAt struct {
	id int64
	at time.Time
}

// checkpointHeap orders due checkpoints by time (entries of leases gone
// are skipped when popped).
type checkpointHeap []checkpointAt

func (h checkpointHeap) Len() int           { return len(h) }
func (h checkpointHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h checkpointHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *checkpointHeap) Push(x any)        { *h = append(*h, x.(checkpointAt)) }
func (h *checkpointHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
