package actors

import (
	"slices"
	"strconv"
	"time"

	"github.com/aetcd/aetcd/cluster"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

var errMemberBadURLs = &messages.Error{Code: 3, Message: "etcdserver: given member URLs are invalid"}

// memberChange runs a membership change on the leader: the leader's raft
// node checks it against the membership its log has reached and proposes
// it. A member that is not the leader sends the request on to the leader's
// gateway (once: a forwarded request is not forwarded again) and relays the
// answer with its own header, as etcd forwards member changes to the
// leader.
func (g *gateway) memberChange(ctx actor.Context, req *messages.ClientRequest) {
	switch r := req.Request.(type) {
	case *messages.ClientRequest_MemberAdd:
		urls, ok := normalizePeerURLs(r.MemberAdd.PeerURLs)
		if !ok {
			ctx.Respond(rpcerr.Response(errMemberBadURLs))
			return
		}
		r.MemberAdd.PeerURLs = urls
	case *messages.ClientRequest_MemberUpdate:
		urls, ok := normalizePeerURLs(r.MemberUpdate.PeerURLs)
		if !ok {
			ctx.Respond(rpcerr.Response(errMemberBadURLs))
			return
		}
		r.MemberUpdate.PeerURLs = urls
	}
	lead := g.env.State.Leader.Load()
	switch {
	case lead == g.env.State.MemberID:
		g.proposeMemberChange(ctx, req)
	case req.Forwarded && lead != 0:
		ctx.Respond(rpcerr.Response(rpcerr.LeaderChanged))
	default:
		g.forwardMemberChange(ctx, req)
	}
}

func (g *gateway) proposeMemberChange(ctx actor.Context, req *messages.ClientRequest) {
	mc := &messages.MemberChange{Id: g.env.State.NextRequestID(), Request: req}
	if add := req.GetMemberAdd(); add != nil {
		// etcd's member ID for an added member: its peer URLs and the time.
		mc.NewMemberId = cluster.MemberID(add.PeerURLs, strconv.FormatInt(time.Now().Unix(), 10))
	}
	ctx.RequestWithCustomSender(g.raft, mc, ctx.Sender())
}

// forwardMemberChange waits (up to the request timeout) for a leader, then
// asks the leader's gateway on a goroutine of its own.
func (g *gateway) forwardMemberChange(ctx actor.Context, req *messages.ClientRequest) {
	root := ctx.ActorSystem().Root
	sender := ctx.Sender()
	self := ctx.Self()
	fwd := proto.Clone(req).(*messages.ClientRequest)
	fwd.Forwarded = true
	go func() {
		deadline := time.Now().Add(g.cfg.RequestTimeout)
		lead := g.env.State.Leader.Load()
		for lead == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			lead = g.env.State.Leader.Load()
		}
		if lead == 0 {
			root.Send(sender, rpcerr.Response(rpcerr.Timeout))
			return
		}
		if lead == g.env.State.MemberID {
			// This member leads now: run it here.
			root.RequestWithCustomSender(self, fwd, sender)
			return
		}
		var addr string
		if p := g.env.State.PeerAddrs.Load(); p != nil {
			addr = (*p)[lead]
		}
		if addr == "" {
			root.Send(sender, rpcerr.Response(rpcerr.Timeout))
			return
		}
		res, err := root.RequestFuture(g.peerPID(addr, GatewayName), fwd, time.Until(deadline)).Result()
		resp, ok := res.(*messages.ClientResponse)
		if err != nil || !ok {
			root.Send(sender, rpcerr.Response(rpcerr.Timeout))
			return
		}
		g.fill(writeResponseHeader(resp))
		root.Send(sender, resp)
	}()
}

func (g *gateway) peerPID(addr, name string) *actor.PID {
	if g.cfg.PeerPID != nil {
		return g.cfg.PeerPID(addr, name)
	}
	return actor.NewPID(addr, name)
}

// normalizePeerURLs checks peer URLs as etcd's types.NewURLs does (at
// least one; scheme://host:port, no path) and sorts them.
func normalizePeerURLs(urls []string) ([]string, bool) {
	if len(urls) == 0 {
		return nil, false
	}
	for _, u := range urls {
		if cluster.CheckURL(u) != nil {
			return nil, false
		}
	}
	out := slices.Clone(urls)
	slices.Sort(out)
	return out, true
}
