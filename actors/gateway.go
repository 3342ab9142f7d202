package actors

import (
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// gateway is where every client request enters a member, from the etcd gRPC
// front or from remoting clients. It validates the request (etcd's exact
// errors), sends writes to the raft node with the client as sender (the
// applier answers the client once the write is applied), and serves reads
// from the newest read view on a goroutine of their own, so a large read
// never holds up the gateway and reads never queue behind writes.
// A txn that writes nothing is a read too (etcd's Txn does not propose
// one). Linearizable reads first wait for a ReadIndex confirmed by the raft
// node and applied by the applier; a read whose every range is serializable
// (for a txn, etcd's IsTxnSerializable) is served from the local view.
type gateway struct {
	env    *Env
	cfg    GatewayConfig
	store  *mvcc.Store
	raft   *actor.PID
	apply  *actor.PID
	lessor *actor.PID
	// remoteWatches are the watch streams of remoting clients, by the
	// client stream actor's address/id.
	remoteWatches map[string]*remoteWatch
	// leaseIDs generates lease IDs as etcd's request ID generator: the low
	// 16 bits of the member ID, then a millisecond timestamp and counter.
	leaseIDs uint64
}

// GatewayConfig is what the gateway needs to know about its member.
type GatewayConfig struct {
	MaxTxnOps       int
	MaxRequestBytes int
	RequestTimeout  time.Duration
	QuotaBytes      int64
	// PeerPID returns the PID of actor name on the member whose peer
	// address is addr; nil means actor.NewPID (remoting).
	PeerPID func(addr, name string) *actor.PID
	// Watches and WatchHubs serve remoting clients' watch streams (absent:
	// not served); WatchSinkEvents bounds each stream's queue.
	Watches         *WatchRegistry
	WatchHubs       []*actor.PID
	WatchSinkEvents int
}

// NewGatewayProps returns the props of a gateway in front of raft (the raft
// node), applier, lessor (the lease ticker) and store.
func NewGatewayProps(env *Env, cfg GatewayConfig, store *mvcc.Store, raft, applier, lessor *actor.PID) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		prefix := (env.State.MemberID & 0xffff) << 48
		suffix := (uint64(time.Now().UnixMilli()) & (1<<40 - 1)) << 8
		return &gateway{env: env, cfg: cfg, store: store, raft: raft, apply: applier, lessor: lessor,
			leaseIDs: prefix | suffix}
	})
}

func (g *gateway) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.ClientRequest:
		g.onClientRequest(ctx, msg)
	}
}

func (g *gateway) onClientRequest(ctx actor.Context, req *messages.ClientRequest) {
	if ctx.Sender() == nil {
		return
	}
	if err := CheckRequest(req, g.cfg.MaxTxnOps); err != nil {
		ctx.Respond(rpcerr.Response(err))
		return
	}
	if g.env.State.IsLearner.Load() && !learnerServes(req) {
		ctx.Respond(rpcerr.Response(rpcerr.LearnerNotSupported))
		return
	}
	switch r := req.Request.(type) {
	case *messages.ClientRequest_Range:
		g.read(ctx, r.Range.Serializable, func(v *mvcc.View) *messages.ClientResponse { return g.serveRange(v, r.Range) })
	case *messages.ClientRequest_Put:
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: r.Put}})
	case *messages.ClientRequest_DeleteRange:
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: r.DeleteRange}})
	case *messages.ClientRequest_Txn:
		if mvcc.IsTxnReadOnly(r.Txn) {
			g.read(ctx, isTxnSerializable(r.Txn), func(v *mvcc.View) *messages.ClientResponse { return g.serveTxn(v, r.Txn) })
			return
		}
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: r.Txn}})
	case *messages.ClientRequest_Compaction:
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: r.Compaction}})
	case *messages.ClientRequest_Status:
		ctx.Respond(&messages.ClientResponse{Response: &messages.ClientResponse_Status{Status: g.status()}})
	case *messages.ClientRequest_Alarm:
		g.alarm(ctx, r.Alarm)
	case *messages.ClientRequest_HashKv:
		ctx.RequestWithCustomSender(g.apply, req, ctx.Sender())
	case *messages.ClientRequest_MoveLeader:
		ctx.RequestWithCustomSender(g.raft, req, ctx.Sender())
	case *messages.ClientRequest_MemberList:
		serve := func(*mvcc.View) *messages.ClientResponse {
			return &messages.ClientResponse{Response: &messages.ClientResponse_MemberList{MemberList: &messages.MemberListResponse{
				Header: g.clusterHeader(), Members: g.members(),
			}}}
		}
		if r.MemberList.Linearizable {
			g.read(ctx, false, serve)
			return
		}
		ctx.Respond(serve(nil))
	case *messages.ClientRequest_LeaseGrant:
		grant := r.LeaseGrant
		if grant.ID == 0 {
			grant = &messages.LeaseGrantRequest{TTL: grant.TTL, ID: g.newLeaseID()}
		}
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseGrant{LeaseGrant: grant}})
	case *messages.ClientRequest_LeaseRevoke:
		g.propose(ctx, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseRevoke{LeaseRevoke: r.LeaseRevoke}})
	case *messages.ClientRequest_LeaseKeepAlive, *messages.ClientRequest_LeaseTimeToLive:
		ctx.RequestWithCustomSender(g.lessor, req, ctx.Sender())
	case *messages.ClientRequest_Watch:
		g.onWatchStream(ctx, r.Watch)
	case *messages.ClientRequest_LeaseLeases:
		ctx.Respond(g.leases())
	case *messages.ClientRequest_MemberAdd, *messages.ClientRequest_MemberRemove,
		*messages.ClientRequest_MemberUpdate, *messages.ClientRequest_MemberPromote:
		g.memberChange(ctx, req)
	default:
		ctx.Respond(rpcerr.Response(&messages.Error{Code: 12, Message: "aetcd: empty or unsupported request"}))
	}
}

// newLeaseID returns a lease ID this member has not handed out: positive,
// never 0 (etcd's reqIDGen.Next() & (1<<63 - 1)).
func (g *gateway) newLeaseID() int64 {
	for {
		g.leaseIDs++
		if id := int64(g.leaseIDs & (1<<63 - 1)); id != 0 {
			return id
		}
	}
}

// leases lists the leases the member has applied, by ID.
func (g *gateway) leases() *messages.ClientResponse {
	list := g.store.Leases()
	resp := &messages.LeaseLeasesResponse{Header: g.header(), Leases: make([]*messages.LeaseStatus, len(list))}
	for i, l := range list {
		resp.Leases[i] = &messages.LeaseStatus{ID: l.ID}
	}
	return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseLeases{LeaseLeases: resp}}
}

// propose sends a write to the raft node; the applier answers the sender.
func (g *gateway) propose(ctx actor.Context, ir *messages.InternalRequest) {
	ir.Id = g.env.State.NextRequestID()
	ir.Origin = g.env.State.MemberID
	if proto.Size(ir) > g.cfg.MaxRequestBytes {
		ctx.Respond(rpcerr.Response(rpcerr.RequestTooLarge))
		return
	}
	ctx.RequestWithCustomSender(g.raft, &messages.Propose{Request: ir}, ctx.Sender())
}

// read serves a read on a goroutine of its own: after a ReadIndex barrier
// (unless serializable), serve runs against the newest read view, and its
// answer goes to the original sender.
func (g *gateway) read(ctx actor.Context, serializable bool, serve func(*mvcc.View) *messages.ClientResponse) {
	root := ctx.ActorSystem().Root
	sender := ctx.Sender()
	go func() {
		if !serializable {
			if err := g.readIndex(root); err != nil {
				root.Send(sender, rpcerr.Response(err))
				return
			}
		}
		root.Send(sender, serve(g.store.View()))
	}()
}

func (g *gateway) serveRange(v *mvcc.View, r *messages.RangeRequest) *messages.ClientResponse {
	resp, err := v.Range(r)
	if err != nil {
		return rpcerr.Response(err)
	}
	g.fill(resp.Header)
	return &messages.ClientResponse{Response: &messages.ClientResponse_Range{Range: resp}}
}

// serveTxn answers a txn that writes nothing as a read, as etcd's Txn does
// (no Raft proposal).
func (g *gateway) serveTxn(v *mvcc.View, r *messages.TxnRequest) *messages.ClientResponse {
	resp, err := v.Txn(r)
	if err != nil {
		return rpcerr.Response(err)
	}
	g.fill(resp.Header) // only the outer header, as the applier and etcd
	return &messages.ClientResponse{Response: &messages.ClientResponse_Txn{Txn: resp}}
}

// isTxnSerializable is etcd's IsTxnSerializable: every op on both branches
// is a serializable range (a nested txn makes the txn linearizable).
func isTxnSerializable(r *messages.TxnRequest) bool {
	for _, ops := range [][]*messages.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr == nil || !rr.GetSerializable() {
				return false
			}
		}
	}
	return true
}

// readIndex blocks until the member has applied through a read index the
// raft node confirmed, or the request times out.
func (g *gateway) readIndex(root *actor.RootContext) *messages.Error {
	res, err := root.RequestFuture(g.raft, &messages.ReadIndex{}, g.cfg.RequestTimeout).Result()
	if err != nil {
		return rpcerr.Timeout
	}
	ready, ok := res.(*messages.ReadReady)
	if !ok {
		return rpcerr.Timeout
	}
	return ready.Error
}

// members lists the members as of the applied index, ordered by ID: a
// member that has not published its attributes yet has no client URLs
// (and no name if it was added by MemberAdd).
func (g *gateway) members() []*messages.Member {
	if p := g.env.State.Members.Load(); p != nil {
		return *p
	}
	return nil
}

// clusterHeader is the header of Cluster service responses (etcd fills no
// revision there).
func (g *gateway) clusterHeader() *messages.ResponseHeader {
	h := &messages.ResponseHeader{}
	g.fill(h)
	return h
}

// learnerServes is etcd's isRPCSupportedForLearner: Status and
// serializable Range only.
func learnerServes(req *messages.ClientRequest) bool {
	switch r := req.Request.(type) {
	case *messages.ClientRequest_Status:
		return true
	case *messages.ClientRequest_Range:
		return r.Range.Serializable
	}
	return false
}

func (g *gateway) header() *messages.ResponseHeader {
	h := &messages.ResponseHeader{Revision: g.store.View().Rev()}
	g.fill(h)
	return h
}

func (g *gateway) fill(h *messages.ResponseHeader) {
	if h == nil {
		return
	}
	h.ClusterId = g.env.State.ClusterID
	h.MemberId = g.env.State.MemberID
	h.RaftTerm = g.env.State.Term.Load()
}

func (g *gateway) status() *messages.StatusResponse {
	size, inUse := g.store.Size()
	return &messages.StatusResponse{
		Header:           g.header(),
		Version:          APIVersion,
		DbSize:           size,
		DbSizeInUse:      inUse,
		Leader:           g.env.State.Leader.Load(),
		RaftIndex:        g.env.State.CommitIndex.Load(),
		RaftTerm:         g.env.State.Term.Load(),
		RaftAppliedIndex: g.env.State.AppliedIndex.Load(),
		DbSizeQuota:      g.cfg.QuotaBytes,
		IsLearner:        g.env.State.IsLearner.Load(),
		StorageVersion:   "3.6.0",
	}
}

// alarm answers GET and DEACTIVATE with the member's alarms (none can be
// raised yet: the space quota is not enforced); ACTIVATE is refused.
func (g *gateway) alarm(ctx actor.Context, r *messages.AlarmRequest) {
	if r.Action == messages.AlarmRequest_ACTIVATE {
		ctx.Respond(rpcerr.Response(&messages.Error{Code: 12, Message: "aetcd: alarm activation is not implemented"}))
		return
	}
	ctx.Respond(&messages.ClientResponse{Response: &messages.ClientResponse_Alarm{Alarm: &messages.AlarmResponse{Header: g.header()}}})
}

// APIVersion is the etcd server version aetcd reports to etcd clients.
const APIVersion = "3.6.6"
