package actors

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aetcd/aetcd/cluster"
	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// ErrRemoved stops a member that learned it was removed from the cluster.
var ErrRemoved = errors.New("the member has been permanently removed from the cluster")

// Membership errors etcd sends for member changes.
var (
	errMemberExist      = &messages.Error{Code: 9, Message: "etcdserver: member ID already exist"}
	errPeerURLExist     = &messages.Error{Code: 9, Message: "etcdserver: Peer URLs already exists"}
	errNotEnoughStarted = &messages.Error{Code: 9, Message: "etcdserver: re-configuration failed due to not enough started members"}
	errMemberNotLearner = &messages.Error{Code: 9, Message: "etcdserver: can only promote a learner member"}
	errLearnerNotReady  = &messages.Error{Code: 9, Message: "etcdserver: can only promote a learner member which is in sync with leader"}
	errTooManyLearners  = &messages.Error{Code: 9, Message: "etcdserver: too many learner members in cluster"}
	errUnhealthy        = &messages.Error{Code: 14, Message: "etcdserver: unhealthy cluster"}
)

// learnerReadyPercent is how far a learner's log must have caught up with
// the leader's (match index ratio) before it may be promoted (etcd's).
const learnerReadyPercent = 0.9

// healthInterval is how recently a peer must have been heard from to
// count as connected for membership checks (etcd's HealthInterval).
const healthInterval = 5 * time.Second

// memberRegistry is the membership as of the entries the raft node has
// handed out for applying: it changes with each conf change entry, in log
// order, so a leader checking a change against it sees exactly the state
// the change will apply to (changes are one at a time).
type memberRegistry struct {
	members map[uint64]*messages.Member
	removed map[uint64]bool
}

func newMemberRegistry(members []*messages.Member, removed map[uint64]bool) memberRegistry {
	r := memberRegistry{members: map[uint64]*messages.Member{}, removed: map[uint64]bool{}}
	for _, m := range members {
		r.members[m.ID] = proto.Clone(m).(*messages.Member)
	}
	for id := range removed {
		r.removed[id] = true
	}
	return r
}

// ConfStateOf returns the Raft configuration the members make up.
func ConfStateOf(members []*messages.Member) *messages.ConfState {
	cs := &messages.ConfState{}
	for _, m := range members {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
	}
	slices.Sort(cs.Voters)
	slices.Sort(cs.Learners)
	return cs
}

func (r *memberRegistry) list() []*messages.Member {
	out := make([]*messages.Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *messages.Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// apply records a conf change entry's effect, as the applier does with
// the backend's member records. Changes that do not apply are ignored (as
// by the Raft core).
func (r *memberRegistry) apply(cc *messages.ConfChange, cctx *messages.ConfChangeContext) {
	if raft.ValidConfChange(ConfStateOf(r.list()), cc) != nil {
		return
	}
	id := cc.NodeId
	switch cc.Type {
	case messages.ConfChangeType_CONF_ADD_NODE, messages.ConfChangeType_CONF_ADD_LEARNER_NODE:
		if m := r.members[id]; m != nil {
			m.IsLearner = false
			return
		}
		m := &messages.Member{ID: id}
		if cm := cctx.GetMember(); cm != nil {
			m = proto.Clone(cm).(*messages.Member)
			m.ID = id
		}
		m.IsLearner = cc.Type == messages.ConfChangeType_CONF_ADD_LEARNER_NODE
		r.members[id] = m
	case messages.ConfChangeType_CONF_REMOVE_NODE:
		delete(r.members, id)
		r.removed[id] = true
	case messages.ConfChangeType_CONF_UPDATE_NODE:
		if m := r.members[id]; m != nil && cctx.GetMember() != nil {
			m.PeerURLs = slices.Clone(cctx.Member.PeerURLs)
		}
	}
}

// DecodeConfChangeEntry returns the change and context an
// ENTRY_CONF_CHANGE entry carries.
func DecodeConfChangeEntry(e *messages.Entry) (*messages.ConfChange, *messages.ConfChangeContext, error) {
	cc, err := raft.DecodeConfChange(e)
	if err != nil {
		return nil, nil, err
	}
	cctx := &messages.ConfChangeContext{}
	if err := proto.Unmarshal(cc.Context, cctx); err != nil {
		return nil, nil, fmt.Errorf("conf change entry %d: context does not decode: %w", e.Index, err)
	}
	return cc, cctx, nil
}

// onConfChangeHandedOut updates the registry and the peer routes for a
// conf change entry just handed out for applying.
func (n *raftNode) onConfChangeHandedOut(ctx actor.Context, e *messages.Entry) {
	cc, cctx, err := DecodeConfChangeEntry(e)
	if err != nil {
		n.failed = true
		n.env.Fatal(fmt.Errorf("raft node: %w", err))
		return
	}
	if cc.Type == messages.ConfChangeType_CONF_REMOVE_NODE {
		if m := n.registry.members[cc.NodeId]; m != nil && len(m.PeerURLs) > 0 {
			if addr, err := cluster.HostPort(m.PeerURLs[0]); err == nil {
				n.removedAddrs[cc.NodeId] = addr
			}
		}
	}
	n.registry.apply(cc, cctx)
	n.env.Logger.Info().Str("change", cc.Type.String()).Str("member", fmt.Sprintf("%x", cc.NodeId)).
		Uint64("index", e.Index).Msg("membership change applied to the raft configuration")
	n.routePeers()
}

// routePeers rebuilds the raft node and snapshot receiver PIDs of every
// other member from the registry, and publishes their addresses.
func (n *raftNode) routePeers() {
	peers := map[uint64]*actor.PID{}
	receivers := map[uint64]*actor.PID{}
	addrs := map[uint64]string{}
	for id, m := range n.registry.members {
		if len(m.PeerURLs) == 0 {
			continue
		}
		addr, err := cluster.HostPort(m.PeerURLs[0])
		if err != nil {
			n.env.Logger.Warn().Err(err).Str("member", fmt.Sprintf("%x", id)).Msg("member has an unusable peer URL")
			continue
		}
		addrs[id] = addr
		if id == n.cfg.Core.ID {
			continue
		}
		peers[id] = n.peerPID(addr, RaftName)
		receivers[id] = n.peerPID(addr, SnapshotReceiverName)
	}
	n.peers, n.receivers = peers, receivers
	n.env.State.PeerAddrs.Store(&addrs)
	if n.cfg.OnPeers != nil {
		var list []string
		for id, a := range addrs {
			if id != n.cfg.Core.ID {
				list = append(list, a)
			}
		}
		slices.Sort(list)
		n.cfg.OnPeers(list)
	}
}

func (n *raftNode) peerPID(addr, name string) *actor.PID {
	if n.cfg.PeerPID != nil {
		return n.cfg.PeerPID(addr, name)
	}
	return actor.NewPID(addr, name)
}

// onRemovedPeer answers Raft traffic from a member removed from the
// cluster: it must stop (etcd's peers answer it 410 Gone).
func (n *raftNode) onRemovedPeer(ctx actor.Context, from uint64) {
	if addr, ok := n.removedAddrs[from]; ok {
		ctx.Send(n.peerPID(addr, RaftName), &messages.MemberRemoved{Id: from})
	}
}

// onMemberChange checks a membership change on the leader as etcd does
// (strict reconfiguration checks) and proposes it; the applier answers the
// sender once it is applied.
func (n *raftNode) onMemberChange(ctx actor.Context, msg *messages.MemberChange) {
	if n.failed {
		ctx.Respond(rpcerr.Response(rpcerr.Stopped))
		return
	}
	cc, e := n.checkMemberChange(msg)
	if e != nil {
		ctx.Respond(rpcerr.Response(e))
		return
	}
	if err := n.core.ProposeConfChange(cc); err != nil {
		n.env.Logger.Info().Err(err).Str("change", cc.Type.String()).Msg("membership change not proposed")
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			ctx.Respond(rpcerr.Response(rpcerr.LeaderChanged))
		case errors.Is(err, raft.ErrInvalidConfChange):
			ctx.Respond(rpcerr.Response(rpcerr.MemberNotFound))
		default:
			// etcd's raft turns a change proposed while another is pending
			// into an empty entry and its client times out.
			ctx.Respond(rpcerr.Response(rpcerr.Timeout))
		}
		return
	}
	ctx.Send(n.applier, &messages.Apply{Waiters: []*messages.Waiter{{RequestId: msg.Id, ReplyTo: ctx.Sender()}}})
	n.schedule(ctx)
}

func (n *raftNode) checkMemberChange(msg *messages.MemberChange) (*messages.ConfChange, *messages.Error) {
	reg := &n.registry
	cctx := &messages.ConfChangeContext{Origin: n.cfg.Core.ID, Id: msg.Id}
	cc := &messages.ConfChange{}
	switch r := msg.Request.GetRequest().(type) {
	case *messages.ClientRequest_MemberAdd:
		id := msg.NewMemberId
		switch {
		case reg.removed[id]:
			return nil, rpcerr.MemberNotFound
		case reg.members[id] != nil:
			return nil, errMemberExist
		case n.peerURLTaken(r.MemberAdd.PeerURLs, 0):
			return nil, errPeerURLExist
		}
		if r.MemberAdd.IsLearner {
			if n.learners()+1 > max(n.cfg.MaxLearners, 1) {
				return nil, errTooManyLearners
			}
			cc.Type = messages.ConfChangeType_CONF_ADD_LEARNER_NODE
		} else {
			if !n.readyToAddVoter(1, 0) {
				return nil, errNotEnoughStarted
			}
			if !n.connectedToAllVoters() {
				return nil, errUnhealthy
			}
			cc.Type = messages.ConfChangeType_CONF_ADD_NODE
		}
		cc.NodeId = id
		cctx.Member = &messages.Member{ID: id, PeerURLs: r.MemberAdd.PeerURLs, IsLearner: r.MemberAdd.IsLearner}
	case *messages.ClientRequest_MemberRemove:
		id := r.MemberRemove.ID
		m := reg.members[id]
		if m == nil || reg.removed[id] {
			return nil, rpcerr.MemberNotFound
		}
		if !m.IsLearner {
			if !n.readyToRemoveVoter(id) {
				return nil, errNotEnoughStarted
			}
			if id == n.cfg.Core.ID || n.heardRecently(id) {
				voters := n.core.ConfState().Voters
				active := 0
				for _, v := range voters {
					if v == n.cfg.Core.ID || n.heardRecently(v) {
						active++
					}
				}
				if active-1 < 1+(len(voters)-1)/2 {
					return nil, errUnhealthy
				}
			}
		}
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_REMOVE_NODE, id
	case *messages.ClientRequest_MemberUpdate:
		id := r.MemberUpdate.ID
		m := reg.members[id]
		switch {
		case m == nil || reg.removed[id]:
			return nil, rpcerr.MemberNotFound
		case n.peerURLTaken(r.MemberUpdate.PeerURLs, id):
			return nil, errPeerURLExist
		}
		updated := proto.Clone(m).(*messages.Member)
		updated.PeerURLs = slices.Clone(r.MemberUpdate.PeerURLs)
		cc.Type, cc.NodeId, cctx.Member = messages.ConfChangeType_CONF_UPDATE_NODE, id, updated
	case *messages.ClientRequest_MemberPromote:
		id := r.MemberPromote.ID
		m := reg.members[id]
		if m == nil || reg.removed[id] {
			return nil, rpcerr.MemberNotFound
		}
		st := n.core.Status()
		p, ok := st.Progress[id]
		if !ok {
			return nil, rpcerr.MemberNotFound
		}
		if lead := st.Progress[n.cfg.Core.ID].Match; lead > 0 && float64(p.Match)/float64(lead) < learnerReadyPercent {
			return nil, errLearnerNotReady
		}
		if !n.readyToAddVoter(1, 1) {
			return nil, errNotEnoughStarted
		}
		if !m.IsLearner {
			return nil, errMemberNotLearner
		}
		promoted := proto.Clone(m).(*messages.Member)
		promoted.IsLearner = false
		cc.Type, cc.NodeId, cctx.Member = messages.ConfChangeType_CONF_ADD_NODE, id, promoted
	default:
		return nil, &messages.Error{Code: 3, Message: "aetcd: not a membership change"}
	}
	b, err := proto.Marshal(cctx)
	if err != nil {
		return nil, &messages.Error{Code: 13, Message: "aetcd: membership change does not encode: " + err.Error()}
	}
	cc.Context = b
	return cc, nil
}

// peerURLTaken reports whether a member other than except uses one of urls.
func (n *raftNode) peerURLTaken(urls []string, except uint64) bool {
	for id, m := range n.registry.members {
		if id == except {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return true
			}
		}
	}
	return false
}

func (n *raftNode) learners() int {
	k := 0
	for _, m := range n.registry.members {
		if m.IsLearner {
			k++
		}
	}
	return k
}

// started reports whether member id has published its attributes (etcd's
// IsStarted: it has a name).
func (n *raftNode) started(id uint64) bool {
	if p := n.env.State.Members.Load(); p != nil {
		for _, m := range *p {
			if m.ID == id {
				return m.Name != ""
			}
		}
	}
	return false
}

// readyToAddVoter is etcd's IsReadyToAddVotingMember (extraStarted 0) and
// IsReadyToPromoteMember (extraStarted 1): with the new voter counted, the
// started voters still form a quorum.
func (n *raftNode) readyToAddVoter(extraMembers, extraStarted int) bool {
	members, started := extraMembers, extraStarted
	for _, m := range n.registry.members {
		if m.IsLearner {
			continue
		}
		members++
		if n.started(m.ID) {
			started++
		}
	}
	if extraStarted == 0 && started == 1 && members == 2 {
		return true
	}
	return started >= members/2+1
}

// readyToRemoveVoter is etcd's IsReadyToRemoveVotingMember.
func (n *raftNode) readyToRemoveVoter(id uint64) bool {
	members, started := 0, 0
	for _, m := range n.registry.members {
		if m.IsLearner || m.ID == id {
			continue
		}
		members++
		if n.started(m.ID) {
			started++
		}
	}
	return started >= members/2+1
}

func (n *raftNode) healthTicks() uint64 {
	return uint64(healthInterval / max(n.cfg.HeartbeatInterval, time.Millisecond))
}

// heardRecently reports whether Raft traffic from id arrived within the
// health interval.
func (n *raftNode) heardRecently(id uint64) bool {
	at, ok := n.lastHeard[id]
	return ok && n.ticks-at <= n.healthTicks()
}

// connectedToAllVoters is etcd's isConnectedFullySince for the voters.
func (n *raftNode) connectedToAllVoters() bool {
	for _, v := range n.core.ConfState().Voters {
		if v != n.cfg.Core.ID && !n.heardRecently(v) {
			return false
		}
	}
	return true
}
