package actors

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
)

// raftNode hosts the pure Raft core. Its role (follower, pre-candidate,
// candidate, leader) is a protoactor Behavior: the behavior decides what a
// role does with client traffic (a leader proposes, others hold proposals
// until a leader is known), and every role feeds Raft traffic to the core.
//
// Batching: proposals and read requests are collected until a self-sent
// Flush; then they become one core.Propose and one ReadIndex round, and the
// core's Ready is handed off once: entries and hard state to the WAL writer,
// messages to peers at once (the core itself withholds messages that need
// local durability until Persisted/PersistedHardState report it),
// committed entries to the applier.
type raftNode struct {
	env      *Env
	cfg      RaftNodeConfig
	core     *raft.Core
	behavior actor.Behavior
	wal      *actor.PID
	applier  *actor.PID
	// peers and receivers route to the other members' raft nodes and
	// snapshot receivers, rebuilt from registry on every conf change.
	peers        map[uint64]*actor.PID
	receivers    map[uint64]*actor.PID
	registry     memberRegistry
	removedAddrs map[uint64]string
	// lastHeard is the tick count at which each peer's Raft traffic last
	// arrived.
	lastHeard map[uint64]uint64

	proposals []*messages.Propose
	senders   []*actor.PID
	// queuedAt is the tick count at which each queued proposal arrived.
	queuedAt  []uint64
	reads     []*actor.PID
	readBatch uint64
	readWait  map[uint64][]*actor.PID
	queued    bool

	inflight   []persistWait
	snapshotAt uint64
	// sendingSnapshot holds the peers a snapshot is being streamed to, with
	// the tick count at which each transfer started.
	sendingSnapshot map[uint64]uint64
	ticks           uint64
	// snapMembers is the membership of the last snapshot received from the
	// leader; it replaces the registry when the core restores the snapshot.
	snapMembers *messages.SnapshotReceived
	transfers   []transferWait
	role        raft.Role
	cancelTick  scheduler.CancelFunc
	failed      bool
}

// transferWait is a client awaiting a leadership transfer to target, until
// the tick count reaches deadline.
type transferWait struct {
	target, deadline uint64
	replyTo          *actor.PID
}

// persistWait is a Persist sent to the WAL writer and not yet reported
// durable: its last entry (index 0 when none) and its hard state.
type persistWait struct {
	index, term uint64
	hardState   *messages.HardState
	snapshot    *messages.SnapshotMeta
}

// RaftNodeConfig configures the raft node actor.
type RaftNodeConfig struct {
	Core              raft.Config
	Restore           raft.RestoreState
	HeartbeatInterval time.Duration
	WAL               *actor.PID
	Applier           *actor.PID
	// Members and Removed are the membership as of Restore.Applied (the
	// backend's member records); conf change entries handed out later
	// update it, and with it the routes to the peers.
	Members []*messages.Member
	Removed map[uint64]bool
	// MaxLearners bounds the learners a member add may create (default 1).
	MaxLearners int
	// PeerPID returns the PID of actor name on the member whose peer
	// address (host:port) is addr; nil means actor.NewPID (remoting).
	PeerPID func(addr, name string) *actor.PID
	// ProposalTimeout bounds how long a proposal is held while no leader is
	// known (the clients' request timeout); 0 holds them until a leader is.
	ProposalTimeout time.Duration
	// OnPeers, if set, is called with the other members' peer addresses
	// whenever they change.
	OnPeers func(addrs []string)
	// Attributes are this member's name and URLs, published through Raft
	// once a leader is known (and again until applied).
	Attributes *messages.Member
	// SnapshotCount is how many applied entries separate two snapshots:
	// points where the WAL is released behind what the backend holds.
	SnapshotCount uint64
	// CatchUpEntries is how many entries the raft log keeps in memory
	// behind a snapshot, so a follower slightly behind catches up from the
	// log; 0 means DefaultCatchUpEntries.
	CatchUpEntries uint64
}

// DefaultCatchUpEntries is RaftNodeConfig.CatchUpEntries's default (etcd's).
const DefaultCatchUpEntries = 5000

// NewRaftNodeProps returns the props of a raft node. The core is built when
// the actor starts, from cfg.Restore.
func NewRaftNodeProps(env *Env, cfg RaftNodeConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		if cfg.CatchUpEntries == 0 {
			cfg.CatchUpEntries = DefaultCatchUpEntries
		}
		n := &raftNode{env: env, cfg: cfg, wal: cfg.WAL, applier: cfg.Applier,
			registry: newMemberRegistry(cfg.Members, cfg.Removed), removedAddrs: map[uint64]string{}, lastHeard: map[uint64]uint64{},
			behavior: actor.NewBehavior(), readWait: map[uint64][]*actor.PID{}, sendingSnapshot: map[uint64]uint64{}}
		n.behavior.Become(n.follower)
		return n
	})
}

func (n *raftNode) Receive(ctx actor.Context) {
	n.behavior.Receive(ctx)
}

// common handles what every role handles the same way. It reports whether
// it handled the message.
func (n *raftNode) common(ctx actor.Context) bool {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		n.onStarted(ctx)
	case *actor.Stopping:
		n.onStopping()
	case *messages.Tick:
		n.core.Tick()
		n.ticks++
		if n.ticks%uint64(max(n.cfg.Core.ElectionTicks, 1)) == 0 {
			n.publish(ctx)
		}
		n.settleTransfers(ctx)
		n.expireProposals(ctx)
		n.expireSnapshotTransfers()
		n.schedule(ctx)
	case *messages.RaftMessage:
		// A removed member is not heard, except when, as the leader that
		// removed itself, it hands leadership over on its way out.
		if n.registry.removed[msg.From] && msg.Type != messages.RaftMessageType_MSG_TIMEOUT_NOW {
			n.onRemovedPeer(ctx, msg.From)
			return true
		}
		n.lastHeard[msg.From] = n.ticks
		if err := n.core.Step(msg); err != nil {
			n.env.Logger.Debug().Err(err).Uint64("from", msg.From).Msg("raft message dropped")
		}
		n.schedule(ctx)
	case *messages.Persisted:
		n.onPersisted(ctx, msg)
	case *messages.WALFailed:
		n.failed = true
	case *messages.Applied:
		n.core.Applied(msg.Index)
		n.schedule(ctx)
	case *messages.BackendCommitted:
		n.onBackendCommitted(ctx, msg)
	case *messages.SnapshotReceived:
		n.onSnapshotReceived(ctx, msg)
	case *messages.SnapshotStatus:
		n.onSnapshotStatus(ctx, msg)
	case *messages.Flush:
		n.onFlush(ctx)
	case *messages.MemberRemoved:
		// The member stops (Fatal runs once); until then this node goes on,
		// so a removed leader can still hand leadership over.
		if msg.Id == n.cfg.Core.ID {
			n.env.Fatal(ErrRemoved)
		}
	default:
		return false
	}
	return true
}

// follower, preCandidate and candidate hold client traffic until a leader
// is known; with one member this member soon leads. Holding is bounded by
// the clients' own request timeout.
func (n *raftNode) follower(ctx actor.Context)     { n.nonLeader(ctx) }
func (n *raftNode) preCandidate(ctx actor.Context) { n.nonLeader(ctx) }
func (n *raftNode) candidate(ctx actor.Context)    { n.nonLeader(ctx) }

func (n *raftNode) nonLeader(ctx actor.Context) {
	if n.common(ctx) {
		return
	}
	switch ctx.Message().(type) {
	case *messages.ClientRequest:
		ctx.Respond(rpcerr.Response(rpcerr.NotLeader))
	case *messages.MemberChange:
		ctx.Respond(rpcerr.Response(rpcerr.LeaderChanged))
	case *messages.TransferLeadership:
		ctx.Respond(rpcerr.Response(rpcerr.NotLeader))
	default:
		n.queueClient(ctx)
	}
}

func (n *raftNode) leader(ctx actor.Context) {
	if n.common(ctx) {
		return
	}
	switch msg := ctx.Message().(type) {
	case *messages.ForwardProposals:
		n.onForwardProposals(ctx, msg)
	case *messages.ClientRequest:
		n.onMoveLeader(ctx, msg.GetMoveLeader().GetTargetID())
	case *messages.MemberChange:
		n.onMemberChange(ctx, msg)
	case *messages.TransferLeadership:
		n.onMoveLeader(ctx, n.bestTransferee())
	default:
		n.queueClient(ctx)
	}
}

// onMoveLeader starts a leadership transfer to target; the sender is
// answered once target leads, or with etcd's timeout error.
func (n *raftNode) onMoveLeader(ctx actor.Context, target uint64) {
	if !n.isVoter(target) {
		ctx.Respond(rpcerr.Response(rpcerr.BadLeaderTransferee))
		return
	}
	if target == n.cfg.Core.ID {
		ctx.Respond(n.moveLeaderDone())
		return
	}
	if err := n.core.TransferLeader(target); err != nil {
		ctx.Respond(rpcerr.Response(rpcerr.BadLeaderTransferee))
		return
	}
	n.env.Logger.Info().Uint64("transferee", target).Msg("leadership transfer starting")
	n.transfers = append(n.transfers, transferWait{target: target, replyTo: ctx.Sender(),
		deadline: n.ticks + 3*uint64(max(n.cfg.Core.ElectionTicks, 1))})
	n.schedule(ctx)
}

func (n *raftNode) isVoter(id uint64) bool {
	return slices.Contains(n.core.ConfState().Voters, id)
}

// bestTransferee is the follower with the highest match index (this member
// itself when it has no followers).
func (n *raftNode) bestTransferee() uint64 {
	best, bestMatch := n.cfg.Core.ID, uint64(0)
	st := n.core.Status()
	for id, p := range st.Progress {
		if id != n.cfg.Core.ID && slices.Contains(st.Voters, id) && p.Match >= bestMatch {
			best, bestMatch = id, p.Match
		}
	}
	return best
}

func (n *raftNode) moveLeaderDone() *messages.ClientResponse {
	return &messages.ClientResponse{Response: &messages.ClientResponse_MoveLeader{MoveLeader: &messages.MoveLeaderResponse{
		Header: &messages.ResponseHeader{ClusterId: n.env.State.ClusterID, MemberId: n.env.State.MemberID, RaftTerm: n.core.Term()},
	}}}
}

// settleTransfers answers transfer waiters whose target now leads, and
// those whose deadline passed.
func (n *raftNode) settleTransfers(ctx actor.Context) {
	if len(n.transfers) == 0 {
		return
	}
	lead := n.core.Leader()
	kept := n.transfers[:0]
	for _, w := range n.transfers {
		switch {
		case lead == w.target:
			n.env.Logger.Info().Uint64("new-leader", lead).Msg("leadership transfer finished")
			if w.replyTo != nil {
				ctx.Send(w.replyTo, n.moveLeaderDone())
			}
		case n.ticks >= w.deadline:
			if w.replyTo != nil {
				ctx.Send(w.replyTo, rpcerr.Response(rpcerr.LeaderTransferTimeout))
			}
		default:
			kept = append(kept, w)
		}
	}
	n.transfers = kept
}

// onForwardProposals proposes writes a follower forwarded. If this member
// is no longer leader the forward is dropped; the follower's clients time
// out, as they would with a lost message.
func (n *raftNode) onForwardProposals(ctx actor.Context, msg *messages.ForwardProposals) {
	if len(msg.Data) == 0 || n.failed {
		return
	}
	if err := n.core.Propose(msg.Data...); err != nil {
		n.env.Logger.Debug().Err(err).Int("proposals", len(msg.Data)).Msg("forwarded proposals dropped")
	}
	n.schedule(ctx)
}

func (n *raftNode) queueClient(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.Propose:
		if n.failed {
			ctx.Respond(rpcerr.Response(rpcerr.Stopped))
			return
		}
		n.proposals = append(n.proposals, msg)
		n.senders = append(n.senders, ctx.Sender())
		n.queuedAt = append(n.queuedAt, n.ticks)
		n.schedule(ctx)
	case *messages.ReadIndex:
		if n.failed {
			ctx.Respond(&messages.ReadReady{Error: rpcerr.Stopped})
			return
		}
		n.reads = append(n.reads, ctx.Sender())
		n.schedule(ctx)
	}
}

func (n *raftNode) onStarted(ctx actor.Context) {
	core, err := raft.New(n.cfg.Core, n.cfg.Restore)
	if err != nil {
		n.failed = true
		n.env.Fatal(fmt.Errorf("raft node: %w", err))
		return
	}
	n.core = core
	if snap := n.cfg.Restore.Snapshot; snap != nil {
		n.snapshotAt = snap.Index
	}
	n.routePeers()
	n.cancelTick = sendRepeatedly(ctx, n.cfg.HeartbeatInterval, &messages.Tick{})
	// Hand out what the restored log has committed (on a new cluster, the
	// conf changes that make up the initial membership), then, as the only
	// voter, campaign at once rather than after an election timeout.
	n.handleReady(ctx)
	if v := n.core.ConfState().Voters; len(v) == 1 && v[0] == n.cfg.Core.ID {
		n.core.Campaign()
	}
	n.schedule(ctx)
}

func (n *raftNode) onStopping() {
	if n.cancelTick != nil {
		n.cancelTick()
	}
}

// expireProposals drops proposals held (no leader known) for longer than
// ProposalTimeout: their clients have given up, and proposing them later
// would apply writes their clients were told timed out.
func (n *raftNode) expireProposals(ctx actor.Context) {
	if n.cfg.ProposalTimeout <= 0 || len(n.queuedAt) == 0 {
		return
	}
	limit := uint64(n.cfg.ProposalTimeout / max(n.cfg.HeartbeatInterval, time.Millisecond))
	k := 0
	for k < len(n.queuedAt) && n.ticks-n.queuedAt[k] > limit {
		if n.senders[k] != nil {
			ctx.Send(n.senders[k], rpcerr.Response(rpcerr.Timeout))
		}
		k++
	}
	if k > 0 {
		n.env.Logger.Warn().Int("proposals", k).Msg("proposals held without a leader timed out")
		n.proposals = append(n.proposals[:0], n.proposals[k:]...)
		n.senders = append(n.senders[:0], n.senders[k:]...)
		n.queuedAt = append(n.queuedAt[:0], n.queuedAt[k:]...)
	}
}

// schedule makes sure a Flush follows everything now in the mailbox.
func (n *raftNode) schedule(ctx actor.Context) {
	if !n.queued {
		n.queued = true
		ctx.Send(ctx.Self(), &messages.Flush{})
	}
}

func (n *raftNode) onFlush(ctx actor.Context) {
	n.queued = false
	if n.core == nil || n.failed {
		return
	}
	switch lead := n.core.Leader(); {
	case n.core.Role() == raft.RoleLeader:
		n.flushProposals(ctx, nil)
		n.flushReads(ctx)
	case lead != 0:
		n.flushProposals(ctx, n.peers[lead])
		n.flushReads(ctx)
	}
	n.handleReady(ctx)
}

// flushProposals registers the clients awaiting the queued proposals with
// the applier, then proposes all of them as one batch, or, on a follower,
// forwards them as one message to the leader's raft node.
func (n *raftNode) flushProposals(ctx actor.Context, leader *actor.PID) {
	if len(n.proposals) == 0 {
		return
	}
	if n.core.Role() != raft.RoleLeader && leader == nil {
		return
	}
	data := make([][]byte, 0, len(n.proposals))
	waiters := make([]*messages.Waiter, 0, len(n.proposals))
	for i, p := range n.proposals {
		b, err := proto.Marshal(p.Request)
		if err != nil {
			ctx.Send(n.senders[i], rpcerr.Response(&messages.Error{Code: 3, Message: "aetcd: request does not encode: " + err.Error()}))
			continue
		}
		data = append(data, b)
		if n.senders[i] != nil {
			waiters = append(waiters, &messages.Waiter{RequestId: p.Request.Id, ReplyTo: n.senders[i]})
		}
	}
	n.proposals, n.senders, n.queuedAt = n.proposals[:0], n.senders[:0], n.queuedAt[:0]
	ctx.Send(n.applier, &messages.Apply{Waiters: waiters})
	if leader != nil {
		ctx.Send(leader, &messages.ForwardProposals{Data: data})
		return
	}
	if err := n.core.Propose(data...); err != nil {
		for _, w := range waiters {
			ctx.Send(w.ReplyTo, rpcerr.Response(rpcerr.LeaderChanged))
		}
	}
}

// flushReads starts one ReadIndex round for every read queued since the
// last round.
func (n *raftNode) flushReads(ctx actor.Context) {
	if len(n.reads) == 0 {
		return
	}
	n.readBatch++
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], n.readBatch)
	if err := n.core.ReadIndex(rctx[:]); err != nil {
		for _, pid := range n.reads {
			ctx.Send(pid, &messages.ReadReady{Error: rpcerr.NoLeader})
		}
		n.reads = nil
		return
	}
	n.readWait[n.readBatch] = n.reads
	n.reads = nil
}

func (n *raftNode) handleReady(ctx actor.Context) {
	for n.core.HasReady() {
		rd := n.core.Ready()
		n.updateState(ctx)
		n.send(ctx, rd.Messages)
		if rd.HardState != nil || len(rd.Entries) > 0 || rd.Snapshot != nil {
			w := persistWait{hardState: rd.HardState, snapshot: rd.Snapshot}
			if s := rd.Snapshot; s != nil {
				if sm := n.snapMembers; sm != nil && sm.Meta.Index == s.Index && len(sm.Members) > 0 {
					removed := map[uint64]bool{}
					for _, id := range sm.Removed {
						removed[id] = true
					}
					n.registry = newMemberRegistry(sm.Members, removed)
					n.routePeers()
				}
				w.index, w.term = s.Index, s.Term
				n.env.Logger.Info().Uint64("index", s.Index).Uint64("term", s.Term).Msg("snapshot from the leader: persisting")
			}
			if k := len(rd.Entries); k > 0 {
				w.index, w.term = rd.Entries[k-1].Index, rd.Entries[k-1].Term
			}
			n.inflight = append(n.inflight, w)
			ctx.Request(n.wal, &messages.Persist{HardState: rd.HardState, Entries: rd.Entries, Snapshot: rd.Snapshot})
		}
		if len(rd.CommittedEntries) > 0 {
			ctx.Send(n.applier, &messages.Apply{Entries: rd.CommittedEntries})
		}
		n.core.Advance(rd)
		for _, e := range rd.CommittedEntries {
			if e.Type == messages.EntryType_ENTRY_CONF_CHANGE {
				n.onConfChangeHandedOut(ctx, e)
			}
		}
		for _, rs := range rd.ReadStates {
			n.readStateReady(ctx, rs)
		}
	}
}

func (n *raftNode) readStateReady(ctx actor.Context, rs raft.ReadState) {
	if len(rs.Context) != 8 {
		return
	}
	batch := binary.BigEndian.Uint64(rs.Context)
	waiters := n.readWait[batch]
	delete(n.readWait, batch)
	if len(waiters) > 0 {
		ctx.Send(n.applier, &messages.WaitApplied{Index: rs.Index, Waiters: waiters})
	}
}

// updateState publishes term, leader and commit index, and switches the
// behavior when the role changed.
func (n *raftNode) updateState(ctx actor.Context) {
	st := n.env.State
	st.Term.Store(n.core.Term())
	lead := n.core.Leader()
	if prev := st.Leader.Load(); lead != prev {
		n.failReads(ctx, rpcerr.LeaderChanged)
		if lead != 0 {
			n.schedule(ctx)
			defer n.publish(ctx)
		}
	}
	st.Leader.Store(lead)
	st.CommitIndex.Store(n.core.Committed())
	n.settleTransfers(ctx)
	role := n.core.Role()
	if role == n.role {
		return
	}
	n.role = role
	n.env.Logger.Info().Str("role", role.String()).Uint64("term", n.core.Term()).Uint64("leader", n.core.Leader()).Msg("raft role changed")
	switch role {
	case raft.RoleLeader:
		n.behavior.Become(n.leader)
		n.schedule(ctx)
	case raft.RoleCandidate:
		n.behavior.Become(n.candidate)
	case raft.RolePreCandidate:
		n.behavior.Become(n.preCandidate)
	default:
		n.behavior.Become(n.follower)
	}
}

// failReads answers every read whose ReadIndex round is in flight: after a
// leader change the round may never complete (etcd answers "leader
// changed" too; clientv3 retries it).
func (n *raftNode) failReads(ctx actor.Context, err *messages.Error) {
	if len(n.readWait) == 0 {
		return
	}
	ready := &messages.ReadReady{Error: err}
	for batch, waiters := range n.readWait {
		for _, pid := range waiters {
			ctx.Send(pid, ready)
		}
		delete(n.readWait, batch)
	}
}

func (n *raftNode) send(ctx actor.Context, msgs []*messages.RaftMessage) {
	for _, m := range msgs {
		if m.Type == messages.RaftMessageType_MSG_SNAP {
			n.sendSnapshot(ctx, m)
			continue
		}
		if pid, ok := n.peers[m.To]; ok {
			ctx.Send(pid, m)
		}
		if m.Type == messages.RaftMessageType_MSG_TIMEOUT_NOW && n.registry.removed[n.cfg.Core.ID] {
			// A removed leader never hears who leads next: handing over is
			// all it can do.
			n.settleTransfersTo(ctx, m.To)
		}
	}
}

// settleTransfersTo answers the transfer waiters whose target is to as done.
func (n *raftNode) settleTransfersTo(ctx actor.Context, to uint64) {
	kept := n.transfers[:0]
	for _, w := range n.transfers {
		if w.target != to {
			kept = append(kept, w)
			continue
		}
		if w.replyTo != nil {
			ctx.Send(w.replyTo, n.moveLeaderDone())
		}
	}
	n.transfers = kept
}

func (n *raftNode) onPersisted(ctx actor.Context, msg *messages.Persisted) {
	k := int(msg.Batches)
	if k > len(n.inflight) {
		n.failed = true
		n.env.Fatal(fmt.Errorf("raft node: WAL reported %d batches durable, %d were sent", k, len(n.inflight)))
		return
	}
	done := n.inflight[:k]
	n.inflight = n.inflight[k:]
	var index, term uint64
	var hs *messages.HardState
	for _, w := range done {
		if w.snapshot != nil {
			// Durable in the WAL: now the backend may be replaced. The
			// applier takes it before any entry committed after it.
			n.snapshotAt = max(n.snapshotAt, w.snapshot.Index)
			ctx.Send(n.applier, &messages.InstallSnapshot{Meta: w.snapshot})
		}
		if w.index > 0 {
			index, term = w.index, w.term
		}
		if w.hardState != nil {
			hs = w.hardState
		}
	}
	if index > 0 {
		n.core.Persisted(index, term)
	}
	if hs != nil {
		n.core.PersistedHardState(hs)
	}
	n.schedule(ctx)
}

// onBackendCommitted takes a snapshot once SnapshotCount entries have been
// made durable in the backend since the last one: the WAL records the
// snapshot point and releases older segments, and the in-memory log keeps
// only catchUpEntries behind it.
func (n *raftNode) onBackendCommitted(ctx actor.Context, msg *messages.BackendCommitted) {
	if n.core == nil || n.failed || n.cfg.SnapshotCount == 0 || msg.Index < n.snapshotAt+n.cfg.SnapshotCount {
		return
	}
	n.snapshotAt = msg.Index
	ctx.Send(n.wal, &messages.SaveSnapshot{Meta: &messages.SnapshotMeta{Index: msg.Index, Term: msg.Term,
		ConfState: msg.ConfState}})
	if keep := n.cfg.CatchUpEntries; msg.Index > keep {
		if err := n.core.Compact(msg.Index - keep); err != nil {
			n.env.Logger.Debug().Err(err).Uint64("index", msg.Index-keep).Msg("raft log not compacted")
		}
	}
}

// sendSnapshot turns the core's MSG_SNAP (which carries only metadata) into
// a transfer of the backend: the applier streams it, as of its applied
// index, to the follower's snapshot receiver and reports SnapshotStatus.
func (n *raftNode) sendSnapshot(ctx actor.Context, m *messages.RaftMessage) {
	receiver := n.receivers[m.To]
	if _, busy := n.sendingSnapshot[m.To]; receiver == nil || busy {
		return
	}
	n.sendingSnapshot[m.To] = n.ticks
	n.env.Logger.Info().Uint64("to", m.To).Uint64("log-start", m.Snapshot.GetIndex()).Msg("follower is behind the compacted log: sending a snapshot")
	ctx.Send(n.applier, &messages.SendSnapshot{To: m.To, Term: n.core.Term(), Receiver: receiver})
}

// snapshotTransferLimit bounds how long the raft node waits for a
// transfer's SnapshotStatus (which the sender reports unless it died)
// before it reports the transfer failed itself, so the core may retry.
const snapshotTransferLimit = 10 * time.Minute

func (n *raftNode) expireSnapshotTransfers() {
	limit := uint64(snapshotTransferLimit / max(n.cfg.HeartbeatInterval, time.Millisecond))
	for id, at := range n.sendingSnapshot {
		if n.ticks-at > limit {
			n.env.Logger.Warn().Uint64("to", id).Msg("snapshot transfer reported nothing in time: counted as failed")
			delete(n.sendingSnapshot, id)
			n.core.ReportSnapshot(id, true)
		}
	}
}

// onSnapshotStatus ends a transfer: replication to the follower resumes by
// probing (after the snapshot if it arrived).
func (n *raftNode) onSnapshotStatus(ctx actor.Context, msg *messages.SnapshotStatus) {
	delete(n.sendingSnapshot, msg.To)
	if n.core == nil {
		return
	}
	if msg.Failed {
		n.env.Logger.Warn().Uint64("to", msg.To).Msg("snapshot transfer failed")
	} else {
		n.env.Logger.Info().Uint64("to", msg.To).Msg("snapshot transfer done")
	}
	n.core.ReportSnapshot(msg.To, msg.Failed)
	n.schedule(ctx)
}

// onSnapshotReceived steps the leader's snapshot, now verified on disk,
// into the core as a MSG_SNAP; its Ready then persists and installs it.
func (n *raftNode) onSnapshotReceived(ctx actor.Context, msg *messages.SnapshotReceived) {
	if n.core == nil || n.failed || msg.Meta == nil {
		return
	}
	n.env.Logger.Info().Uint64("index", msg.Meta.Index).Uint64("term", msg.Meta.Term).Uint64("leader", msg.Leader).Msg("snapshot received")
	n.snapMembers = msg
	if err := n.core.Step(&messages.RaftMessage{Type: messages.RaftMessageType_MSG_SNAP, From: msg.Leader,
		To: n.cfg.Core.ID, Term: msg.Term, Snapshot: msg.Meta}); err != nil {
		n.env.Logger.Warn().Err(err).Msg("received snapshot dropped")
	}
	n.schedule(ctx)
}

// attributesApplied reports whether the backend's record of this member
// holds its configured name and client URLs.
func (n *raftNode) attributesApplied() bool {
	if p := n.env.State.Members.Load(); p != nil {
		for _, m := range *p {
			if m.ID == n.cfg.Core.ID {
				return m.Name == n.cfg.Attributes.Name && slices.Equal(m.ClientURLs, n.cfg.Attributes.ClientURLs)
			}
		}
	}
	return false
}

// publish queues a proposal of this member's attributes unless they are
// already applied; a lost one is retried every election timeout.
func (n *raftNode) publish(ctx actor.Context) {
	if n.cfg.Attributes == nil || n.attributesApplied() || n.core.Leader() == 0 {
		return
	}
	n.queuedAt = append(n.queuedAt, n.ticks)
	n.proposals = append(n.proposals, &messages.Propose{Request: &messages.InternalRequest{
		Origin:  n.env.State.MemberID,
		Request: &messages.InternalRequest_MemberAttributes{MemberAttributes: n.cfg.Attributes},
	}})
	n.senders = append(n.senders, nil)
	n.schedule(ctx)
}
