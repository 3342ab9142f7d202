package actors

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
)

// applier applies committed entries, in log order, to the MVCC store. All
// Apply messages queued before a self-sent Flush are applied as one batch,
// then published as one read view, and only then are their clients
// answered, so a client that saw its write acknowledged reads it from any
// later view. The backend is committed (bbolt fsync) every CommitInterval
// or once MaxPending writes wait, whichever comes first; until then applied
// writes live in the published views and in the WAL, which replays every
// entry after the backend's consistent index on restart (exactly once,
// because the consistent index commits in the same bbolt transaction).
type applier struct {
	env   *Env
	store *mvcc.Store
	raft  *actor.PID
	cfg   ApplierConfig

	pending   []*messages.Apply
	queued    bool
	waiters   map[uint64]waiter
	readWaits []*messages.WaitApplied
	applied   uint64
	// appliedTerm is the term of the entry at applied (0 until one is
	// applied by this instance).
	appliedTerm uint64
	failed      bool
	cancelTick  scheduler.CancelFunc
	transfers   uint64 // snapshot transfers started
	// removedSelf: a conf change removing this member was applied; the
	// member stops once the batch is answered.
	removedSelf bool
	// leases collects what the batch being applied did to leases.
	leases *messages.LeasesApplied
}

// waiter is a client awaiting the answer to a write this member proposed.
type waiter struct {
	replyTo *actor.PID
	since   time.Time
}

// ApplierConfig tunes the applier.
type ApplierConfig struct {
	CommitInterval time.Duration // default 100 ms
	MaxPending     int           // default 10000 writes
	// WaiterTimeout is how long a registered waiter is kept: a proposal lost
	// with a leader change never applies, and its client has given up.
	WaiterTimeout time.Duration // default 1 min
	// SnapshotDir holds snapshots received from the leader
	// (db.snap-<index>), next to the backend file.
	SnapshotDir string
	// SnapshotTimeout is how long a snapshot transfer waits for any
	// acknowledgement before it gives up.
	SnapshotTimeout time.Duration // default 10 s
	// Lessor (the lease ticker) is told what each batch did to leases;
	// WatchHubs get each batch's events. Either may be absent (nil).
	Lessor    *actor.PID
	WatchHubs []*actor.PID
}

// stopFailedChildren stops a snapshot sender that panicked instead of
// restarting it (a fresh instance could not resume the stream); its
// transfer then ends by the raft node's deadline.
var stopFailedChildren = actor.NewOneForOneStrategy(0, 0, actor.DefaultDecider)

// NewApplierProps returns the props of an applier over store. raft receives
// Applied reports. The store stays owned by the caller.
func NewApplierProps(env *Env, store *mvcc.Store, raft *actor.PID, cfg ApplierConfig) *actor.Props {
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10000
	}
	if cfg.WaiterTimeout <= 0 {
		cfg.WaiterTimeout = time.Minute
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = 10 * time.Second
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &applier{env: env, store: store, raft: raft, cfg: cfg, waiters: map[uint64]waiter{}}
	}, actor.WithSupervisor(stopFailedChildren))
}

func (a *applier) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case *messages.Apply:
		a.onApply(ctx, msg)
	case *messages.WaitApplied:
		a.onWaitApplied(ctx, msg)
	case *messages.Flush:
		a.onFlush(ctx)
	case *messages.CommitBackend:
		a.onCommitBackend(ctx)
	case *messages.ClientRequest:
		a.onClientRequest(ctx, msg)
	case *messages.SendSnapshot:
		a.onSendSnapshot(ctx, msg)
	case *messages.InstallSnapshot:
		a.onInstallSnapshot(ctx, msg)
	case *actor.Stopping:
		a.onStopping(ctx)
	}
}

func (a *applier) onStarted(ctx actor.Context) {
	a.applied = a.store.ConsistentIndex()
	a.env.State.AppliedIndex.Store(a.applied)
	if err := a.refreshMembers(); err != nil {
		a.fail(err)
		return
	}
	a.cancelTick = sendRepeatedly(ctx, a.cfg.CommitInterval, &messages.CommitBackend{})
}

func (a *applier) onApply(ctx actor.Context, msg *messages.Apply) {
	if len(msg.Waiters) > 0 {
		now := time.Now()
		for _, w := range msg.Waiters {
			a.waiters[w.RequestId] = waiter{replyTo: w.ReplyTo, since: now}
		}
	}
	if len(msg.Entries) == 0 {
		return
	}
	a.pending = append(a.pending, msg)
	if !a.queued {
		a.queued = true
		ctx.Send(ctx.Self(), &messages.Flush{})
	}
}

func (a *applier) onWaitApplied(ctx actor.Context, msg *messages.WaitApplied) {
	if msg.Index <= a.applied {
		a.release(ctx, msg)
		return
	}
	a.readWaits = append(a.readWaits, msg)
}

type answer struct {
	to   *actor.PID
	resp *messages.ClientResponse
}

func (a *applier) onFlush(ctx actor.Context) {
	a.queued = false
	if a.failed {
		return
	}
	var answers []answer
	for _, msg := range a.pending {
		for _, ent := range msg.Entries {
			if ent.Index <= a.applied {
				continue
			}
			if ent.Index != a.applied+1 {
				a.fail(fmt.Errorf("applier: entry %d arrived after %d: committed entries must be contiguous", ent.Index, a.applied))
				return
			}
			resp, origin, id, err := a.applyEntry(ent)
			if err != nil {
				a.fail(err)
				return
			}
			a.applied, a.appliedTerm = ent.Index, ent.Term
			if origin == a.env.State.MemberID {
				if w, ok := a.waiters[id]; ok {
					delete(a.waiters, id)
					a.fillHeader(resp, ent.Term)
					answers = append(answers, answer{w.replyTo, resp})
				}
			}
		}
	}
	a.pending = a.pending[:0]
	a.store.Publish()
	a.env.State.AppliedIndex.Store(a.applied)
	a.publishChanges(ctx)
	for _, ans := range answers {
		ctx.Send(ans.to, ans.resp)
	}
	a.releaseReads(ctx)
	ctx.Send(a.raft, &messages.Applied{Index: a.applied})
	if a.store.Pending() >= a.cfg.MaxPending || a.removedSelf {
		a.commit(ctx)
	}
	if a.removedSelf && !a.failed {
		a.failed = true
		a.env.Logger.Warn().Msg("this member was removed from the cluster; stopping")
		a.env.Fatal(ErrRemoved)
	}
}

// applyEntry applies one committed entry. A normal entry with data that
// does not decode is corruption: the member must stop.
func (a *applier) applyEntry(ent *messages.Entry) (resp *messages.ClientResponse, origin, id uint64, err error) {
	if ent.Type == messages.EntryType_ENTRY_CONF_CHANGE {
		return a.applyConfChange(ent)
	}
	if ent.Type != messages.EntryType_ENTRY_NORMAL || len(ent.Data) == 0 {
		a.store.SetConsistentIndex(ent.Index)
		return nil, 0, 0, nil
	}
	var req messages.InternalRequest
	if err := proto.Unmarshal(ent.Data, &req); err != nil {
		return nil, 0, 0, fmt.Errorf("applier: entry %d (term %d) does not decode: %w", ent.Index, ent.Term, err)
	}
	resp = a.store.Apply(ent.Index, &req)
	a.noteLeases(&req, resp)
	if req.GetMemberAttributes() != nil {
		if err := a.refreshMembers(); err != nil {
			return nil, 0, 0, err
		}
	}
	return resp, req.Origin, req.Id, nil
}

// noteLeases records what an applied request did to leases, for the lease
// ticker.
func (a *applier) noteLeases(req *messages.InternalRequest, resp *messages.ClientResponse) {
	if resp.GetError() != nil {
		return
	}
	if a.leases == nil {
		a.leases = &messages.LeasesApplied{}
	}
	switch r := req.Request.(type) {
	case *messages.InternalRequest_LeaseGrant:
		g := resp.GetLeaseGrant()
		a.leases.Granted = append(a.leases.Granted, &messages.LeaseRecord{ID: g.GetID(), TTL: g.GetTTL()})
	case *messages.InternalRequest_LeaseRevoke:
		a.leases.Revoked = append(a.leases.Revoked, r.LeaseRevoke.GetID())
	case *messages.InternalRequest_LeaseCheckpoint:
		a.leases.Checkpoints = append(a.leases.Checkpoints, r.LeaseCheckpoint.GetCheckpoints()...)
	}
}

// publishChanges hands the applied batch's events to the watch hubs and its
// lease changes to the lease ticker, once the view holding them is
// published.
func (a *applier) publishChanges(ctx actor.Context) {
	if evs := a.store.TakeEvents(); len(evs) > 0 {
		msg := &messages.WatchEvents{Events: evs, Revision: a.store.Rev(), CompactRevision: a.store.CompactRev()}
		for _, hub := range a.cfg.WatchHubs {
			ctx.Send(hub, msg)
		}
	}
	if l := a.leases; l != nil && (len(l.Granted) > 0 || len(l.Revoked) > 0 || len(l.Checkpoints) > 0) {
		if a.cfg.Lessor != nil {
			ctx.Send(a.cfg.Lessor, l)
		}
		a.leases = nil
	}
}

// applyConfChange records a membership change in the backend's member
// records, in the same batch as the consistent index. A change that does
// not apply to the members (the Raft core ignores it too) changes nothing
// and is answered with etcd's error.
func (a *applier) applyConfChange(ent *messages.Entry) (*messages.ClientResponse, uint64, uint64, error) {
	cc, cctx, err := DecodeConfChangeEntry(ent)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("applier: %w", err)
	}
	members, err := a.store.Members()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("applier: %w", err)
	}
	var old *messages.Member
	for _, m := range members {
		if m.ID == cc.NodeId {
			old = m
		}
	}
	a.store.SetConsistentIndex(ent.Index)
	if verr := raft.ValidConfChange(ConfStateOf(members), cc); verr != nil {
		a.env.Logger.Warn().Err(verr).Uint64("index", ent.Index).Msg("membership change ignored")
		e := rpcerr.MemberNotFound
		switch {
		case cc.Type == messages.ConfChangeType_CONF_ADD_NODE && old != nil:
			e = errMemberNotLearner
		case old != nil:
			e = errMemberExist
		}
		return rpcerr.Response(e), cctx.Origin, cctx.Id, nil
	}
	var added *messages.Member
	switch cc.Type {
	case messages.ConfChangeType_CONF_ADD_NODE, messages.ConfChangeType_CONF_ADD_LEARNER_NODE:
		if old != nil {
			old.IsLearner = false
			a.store.SaveMember(old)
			break
		}
		added = &messages.Member{}
		if m := cctx.GetMember(); m != nil {
			added = proto.Clone(m).(*messages.Member)
		}
		added.ID = cc.NodeId
		added.IsLearner = cc.Type == messages.ConfChangeType_CONF_ADD_LEARNER_NODE
		a.store.SaveMember(added)
	case messages.ConfChangeType_CONF_REMOVE_NODE:
		a.store.RemoveMember(cc.NodeId)
		if cc.NodeId == a.env.State.MemberID {
			a.removedSelf = true
		}
	case messages.ConfChangeType_CONF_UPDATE_NODE:
		old.PeerURLs = cctx.GetMember().GetPeerURLs()
		a.store.SaveMember(old)
	}
	if err := a.refreshMembers(); err != nil {
		return nil, 0, 0, err
	}
	a.env.Logger.Info().Str("change", cc.Type.String()).Str("member", fmt.Sprintf("%x", cc.NodeId)).
		Uint64("index", ent.Index).Msg("membership change applied")
	list := *a.env.State.Members.Load()
	h := &messages.ResponseHeader{}
	var resp *messages.ClientResponse
	switch {
	case added != nil:
		resp = &messages.ClientResponse{Response: &messages.ClientResponse_MemberAdd{MemberAdd: &messages.MemberAddResponse{
			Header: h, Members: list,
			Member: &messages.Member{ID: added.ID, PeerURLs: added.PeerURLs, IsLearner: added.IsLearner},
		}}}
	case cc.Type == messages.ConfChangeType_CONF_ADD_NODE:
		resp = &messages.ClientResponse{Response: &messages.ClientResponse_MemberPromote{MemberPromote: &messages.MemberPromoteResponse{Header: h, Members: list}}}
	case cc.Type == messages.ConfChangeType_CONF_REMOVE_NODE:
		resp = &messages.ClientResponse{Response: &messages.ClientResponse_MemberRemove{MemberRemove: &messages.MemberRemoveResponse{Header: h, Members: list}}}
	default:
		resp = &messages.ClientResponse{Response: &messages.ClientResponse_MemberUpdate{MemberUpdate: &messages.MemberUpdateResponse{Header: h, Members: list}}}
	}
	return resp, cctx.Origin, cctx.Id, nil
}

// refreshMembers publishes the backend's member records to MemberState.
func (a *applier) refreshMembers() error {
	ms, err := a.store.Members()
	if err != nil {
		return fmt.Errorf("applier: %w", err)
	}
	a.env.State.Members.Store(&ms)
	// Without a record of its own (a joining member that has not applied
	// its addition yet) the member keeps what it was told at start.
	for _, m := range ms {
		if m.ID == a.env.State.MemberID {
			a.env.State.IsLearner.Store(m.IsLearner)
		}
	}
	return nil
}

// confState is the Raft configuration as of the applied index.
func (a *applier) confState() *messages.ConfState {
	if p := a.env.State.Members.Load(); p != nil {
		return ConfStateOf(*p)
	}
	return &messages.ConfState{}
}

func (a *applier) fillHeader(resp *messages.ClientResponse, term uint64) {
	if h := writeResponseHeader(resp); h != nil {
		h.ClusterId = a.env.State.ClusterID
		h.MemberId = a.env.State.MemberID
		h.RaftTerm = term
	}
}

// writeResponseHeader returns the header of the answer to a write (a
// request that goes through the Raft log), or nil for any other response.
func writeResponseHeader(resp *messages.ClientResponse) *messages.ResponseHeader {
	switch r := resp.Response.(type) {
	case *messages.ClientResponse_Put:
		return r.Put.GetHeader()
	case *messages.ClientResponse_DeleteRange:
		return r.DeleteRange.GetHeader()
	case *messages.ClientResponse_Txn:
		return r.Txn.GetHeader()
	case *messages.ClientResponse_Compaction:
		return r.Compaction.GetHeader()
	case *messages.ClientResponse_MemberAdd:
		return r.MemberAdd.GetHeader()
	case *messages.ClientResponse_MemberRemove:
		return r.MemberRemove.GetHeader()
	case *messages.ClientResponse_MemberUpdate:
		return r.MemberUpdate.GetHeader()
	case *messages.ClientResponse_MemberPromote:
		return r.MemberPromote.GetHeader()
	case *messages.ClientResponse_LeaseGrant:
		return r.LeaseGrant.GetHeader()
	case *messages.ClientResponse_LeaseRevoke:
		return r.LeaseRevoke.GetHeader()
	}
	return nil
}

func (a *applier) releaseReads(ctx actor.Context) {
	if len(a.readWaits) == 0 {
		return
	}
	sort.Slice(a.readWaits, func(i, j int) bool { return a.readWaits[i].Index < a.readWaits[j].Index })
	n := 0
	for n < len(a.readWaits) && a.readWaits[n].Index <= a.applied {
		a.release(ctx, a.readWaits[n])
		n++
	}
	a.readWaits = append(a.readWaits[:0], a.readWaits[n:]...)
}

func (a *applier) release(ctx actor.Context, w *messages.WaitApplied) {
	ready := &messages.ReadReady{Index: w.Index}
	for _, pid := range w.Waiters {
		ctx.Send(pid, ready)
	}
}

func (a *applier) onCommitBackend(ctx actor.Context) {
	if !a.failed && a.store.Pending() > 0 {
		a.commit(ctx)
	}
	a.sweepWaiters()
}

// sweepWaiters forgets waiters older than WaiterTimeout.
func (a *applier) sweepWaiters() {
	if len(a.waiters) == 0 {
		return
	}
	cutoff := time.Now().Add(-a.cfg.WaiterTimeout)
	for id, w := range a.waiters {
		if w.since.Before(cutoff) {
			delete(a.waiters, id)
		}
	}
}

// commit commits the backend and tells the raft node how far it is durable
// (which lets it snapshot and release the WAL behind that index).
func (a *applier) commit(ctx actor.Context) {
	if a.failed {
		return
	}
	if err := a.store.Commit(); err != nil {
		a.fail(fmt.Errorf("applier: backend commit: %w", err))
		return
	}
	if a.appliedTerm != 0 {
		ctx.Send(a.raft, &messages.BackendCommitted{Index: a.applied, Term: a.appliedTerm, ConfState: a.confState()})
	}
}

// onClientRequest serves requests that must see the applier's own state
// (HashKV hashes the backend as of the applied index, committed or not).
func (a *applier) onClientRequest(ctx actor.Context, msg *messages.ClientRequest) {
	switch r := msg.Request.(type) {
	case *messages.ClientRequest_HashKv:
		hash, compactRev, hashRev, e := a.store.HashKV(r.HashKv.Revision)
		if e != nil {
			ctx.Respond(&messages.ClientResponse{Response: &messages.ClientResponse_Error{Error: e}})
			return
		}
		ctx.Respond(&messages.ClientResponse{Response: &messages.ClientResponse_HashKv{HashKv: &messages.HashKVResponse{
			Header: &messages.ResponseHeader{ClusterId: a.env.State.ClusterID, MemberId: a.env.State.MemberID,
				Revision: a.store.Rev(), RaftTerm: a.env.State.Term.Load()},
			Hash: hash, CompactRevision: compactRev, HashRevision: hashRev,
		}}})
	}
}

// onSendSnapshot starts streaming the backend, as of the applied index
// (committed first), to a follower; a child actor does the streaming, so
// the applier goes on applying. The raft node gets SnapshotStatus.
func (a *applier) onSendSnapshot(ctx actor.Context, msg *messages.SendSnapshot) {
	failed := func(reason string) {
		a.env.Logger.Warn().Uint64("to", msg.To).Str("reason", reason).Msg("snapshot not sent")
		ctx.Send(a.raft, &messages.SnapshotStatus{To: msg.To, Failed: true})
	}
	if len(a.pending) > 0 {
		a.onFlush(ctx) // the snapshot includes everything handed over before
	}
	if a.failed || a.appliedTerm == 0 {
		failed("nothing applied by this applier yet")
		return
	}
	a.commit(ctx)
	if a.failed {
		return
	}
	removed, err := a.store.RemovedMembers()
	if err != nil {
		failed(err.Error())
		return
	}
	snap, err := a.store.OpenSnapshot()
	if err != nil {
		failed(err.Error())
		return
	}
	a.transfers++
	id := uint64(time.Now().UnixNano())<<8 | a.transfers&0xff
	tmpl := &messages.SnapshotChunk{
		Meta:   &messages.SnapshotMeta{Index: a.applied, Term: a.appliedTerm, ConfState: a.confState()},
		Leader: a.env.State.MemberID, Term: msg.Term, TransferId: id,
		Members: *a.env.State.Members.Load(),
	}
	for rid := range removed {
		tmpl.Removed = append(tmpl.Removed, rid)
	}
	name := fmt.Sprintf("snapsend-%x", id)
	if _, err := ctx.SpawnNamed(newSnapshotSenderProps(a.env, snap, tmpl, msg.To, msg.Receiver, a.raft, a.cfg.SnapshotTimeout), name); err != nil {
		_ = snap.Close()
		failed(err.Error())
	}
}

// onInstallSnapshot replaces the backend with the snapshot the raft node
// made durable in the WAL, then reports it applied. Entries queued before it
// are at or below its index and are skipped. Waiters stay until their
// timeout: the entries a snapshot covers are never applied one by one, so
// their clients get no answer (as with etcd).
func (a *applier) onInstallSnapshot(ctx actor.Context, msg *messages.InstallSnapshot) {
	meta := msg.Meta
	if a.failed || meta == nil || meta.Index <= a.applied {
		return
	}
	path := filepath.Join(a.cfg.SnapshotDir, SnapshotFileName(meta.Index))
	if err := a.store.Restore(path); err != nil {
		a.fail(fmt.Errorf("applier: install snapshot %d: %w", meta.Index, err))
		return
	}
	if ci := a.store.ConsistentIndex(); ci != meta.Index {
		a.fail(fmt.Errorf("applier: installed snapshot %s has consistent index %d, want %d", path, ci, meta.Index))
		return
	}
	a.applied, a.appliedTerm = meta.Index, meta.Term
	a.env.State.AppliedIndex.Store(a.applied)
	if err := a.refreshMembers(); err != nil {
		a.fail(err)
		return
	}
	a.env.Logger.Info().Uint64("index", meta.Index).Uint64("term", meta.Term).Int64("revision", a.store.Rev()).Msg("snapshot installed: backend replaced")
	a.store.TakeEvents()
	for _, hub := range a.cfg.WatchHubs {
		ctx.Send(hub, &messages.WatchRestore{Revision: a.store.Rev(), CompactRevision: a.store.CompactRev()})
	}
	if a.cfg.Lessor != nil {
		ctx.Send(a.cfg.Lessor, &messages.LeasesApplied{Reload: true})
	}
	a.releaseReads(ctx)
	ctx.Send(a.raft, &messages.Applied{Index: a.applied})
}

// SnapshotFileName is the name, in the snapshot directory, of a verified
// backend snapshot at index.
func SnapshotFileName(index uint64) string { return fmt.Sprintf("db.snap-%016x", index) }

func (a *applier) onStopping(ctx actor.Context) {
	if a.cancelTick != nil {
		a.cancelTick()
	}
	if !a.failed && a.store.Pending() > 0 {
		a.commit(ctx)
	}
}

func (a *applier) fail(err error) {
	a.failed = true
	a.env.Logger.Error().Err(err).Msg("applier failed; stopping the member")
	a.env.Fatal(err)
}
