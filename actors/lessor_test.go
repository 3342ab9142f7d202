package actors_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// fakeRaft stands in for the raft node: it answers ReadIndex with
// ReadReady (or the error set in readErr) and records proposals.
type fakeRaft struct {
	mu        sync.Mutex
	proposals []*messages.InternalRequest
	readErr   *messages.Error
	reads     int
}

func (f *fakeRaft) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.ReadIndex:
		f.mu.Lock()
		f.reads++
		e := f.readErr
		f.mu.Unlock()
		ctx.Respond(&messages.ReadReady{Error: e})
	case *messages.Propose:
		f.mu.Lock()
		f.proposals = append(f.proposals, msg.Request)
		f.mu.Unlock()
	}
}

func (f *fakeRaft) revoked() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	for _, p := range f.proposals {
		if r := p.GetLeaseRevoke(); r != nil {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func (f *fakeRaft) checkpoints() []*messages.LeaseCheckpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cps []*messages.LeaseCheckpoint
	for _, p := range f.proposals {
		cps = append(cps, p.GetLeaseCheckpoint().GetCheckpoints()...)
	}
	return cps
}

type lessorRig struct {
	root   *actor.RootContext
	lessor *actor.PID
	raft   *fakeRaft
	store  *mvcc.Store
	state  *actors.MemberState
	index  uint64
}

// startLessor starts a lease ticker over a store holding leases ttls (ID
// i+1 with TTL ttls[i] seconds) and a fake raft node; leader says whether
// this member leads.
func startLessor(t *testing.T, cfg actors.LessorConfig, leader bool, ttls ...int64) *lessorRig {
	t.Helper()
	store, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &lessorRig{store: store, raft: &fakeRaft{}, state: &actors.MemberState{MemberID: 1}}
	for i, ttl := range ttls {
		r.index++
		resp := store.Apply(r.index, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseGrant{
			LeaseGrant: &messages.LeaseGrantRequest{ID: int64(i + 1), TTL: ttl}}})
		if e := resp.GetError(); e != nil {
			t.Fatal(e)
		}
	}
	store.Publish()
	if leader {
		r.state.Leader.Store(1)
	} else {
		r.state.Leader.Store(2)
	}
	system := actor.NewActorSystem()
	r.root = system.Root
	env := &actors.Env{Logger: zerolog.Nop(), State: r.state, Fatal: func(err error) { t.Errorf("fatal: %v", err) }}
	raftPID := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r.raft }))
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 20 * time.Millisecond
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = time.Second
	}
	r.lessor = system.Root.Spawn(actors.NewLessorProps(env, cfg, store, raftPID))
	t.Cleanup(func() {
		_ = system.Root.PoisonFuture(r.lessor).Wait()
		system.Shutdown()
		_ = store.Close()
	})
	return r
}

func (r *lessorRig) keepAlive(t *testing.T, id int64) *messages.ClientResponse {
	t.Helper()
	res, err := r.root.RequestFuture(r.lessor, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseKeepAlive{
		LeaseKeepAlive: &messages.LeaseKeepAliveRequest{ID: id}}}, 2*time.Second).Result()
	if err != nil {
		t.Fatalf("keep-alive %d: %v", id, err)
	}
	return res.(*messages.ClientResponse)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLessorExpiresOnlyAsLeader: the primary proposes a revoke for a lease
// not kept alive once its TTL passed (never before); a kept-alive lease is
// not revoked; a member that does not lead proposes nothing.
func TestLessorExpiresOnlyAsLeader(t *testing.T) {
	t.Run("leader", func(t *testing.T) {
		r := startLessor(t, actors.LessorConfig{}, true, 1, 1)
		start := time.Now()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // keep lease 2 alive every 200 ms
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if ka := r.keepAlive(t, 2).GetLeaseKeepAlive(); ka.GetTTL() != 1 {
						t.Errorf("keep-alive of lease 2 answered %v, want TTL 1", ka)
					}
				}
			}
		}()
		waitFor(t, "the revoke of lease 1", 5*time.Second, func() bool { return len(r.raft.revoked()) > 0 })
		if d := time.Since(start); d < time.Second {
			t.Errorf("lease 1 (TTL 1 s) was revoked after %v", d)
		}
		time.Sleep(1500 * time.Millisecond)
		close(stop)
		<-done
		for _, id := range r.raft.revoked() {
			if id != 1 {
				t.Errorf("lease %d was revoked while kept alive", id)
			}
		}
	})
	t.Run("follower", func(t *testing.T) {
		r := startLessor(t, actors.LessorConfig{}, false, 1)
		time.Sleep(2 * time.Second)
		if ids := r.raft.revoked(); len(ids) > 0 {
			t.Errorf("a member that does not lead proposed revokes %v", ids)
		}
	})
}

// TestLessorLeadershipConfirmed: when the ReadIndex check fails (a deposed
// leader that does not know it yet) keep-alives are refused and expired
// leases are not revoked.
func TestLessorLeadershipConfirmed(t *testing.T) {
	r := startLessor(t, actors.LessorConfig{}, true, 1)
	r.raft.mu.Lock()
	r.raft.readErr = rpcerr.NoLeader
	r.raft.mu.Unlock()
	if e := r.keepAlive(t, 1).GetError(); !rpcerr.Is(e, rpcerr.NoLeader) {
		t.Errorf("keep-alive with leadership unconfirmed answered %v, want %v", e, rpcerr.NoLeader)
	}
	time.Sleep(2 * time.Second)
	if ids := r.raft.revoked(); len(ids) > 0 {
		t.Errorf("revokes %v proposed without confirmed leadership", ids)
	}
	r.raft.mu.Lock()
	r.raft.readErr = nil
	r.raft.mu.Unlock()
	waitFor(t, "the revoke once leadership is confirmed", 5*time.Second, func() bool { return len(r.raft.revoked()) > 0 })
}

// TestLessorUnknownLease: a keep-alive of a lease that does not exist
// answers TTL 0 and a time-to-live answers TTL -1, as etcd's lease server.
func TestLessorUnknownLease(t *testing.T) {
	r := startLessor(t, actors.LessorConfig{}, true)
	if ka := r.keepAlive(t, 42).GetLeaseKeepAlive(); ka == nil || ka.ID != 42 || ka.TTL != 0 {
		t.Errorf("keep-alive of an unknown lease: %v, want ID 42 TTL 0", ka)
	}
	res, err := r.root.RequestFuture(r.lessor, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseTimeToLive{
		LeaseTimeToLive: &messages.LeaseTimeToLiveRequest{ID: 42}}}, 2*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl := res.(*messages.ClientResponse).GetLeaseTimeToLive(); ttl == nil || ttl.TTL != -1 {
		t.Errorf("time-to-live of an unknown lease: %v, want TTL -1", ttl)
	}
}

// TestLessorCheckpointsAndPromotion: the primary checkpoints the remaining
// TTL of a lease longer than the checkpoint interval; a member promoted
// later starts a checkpointed lease from its remaining TTL (not the full
// TTL), and a keep-alive clears the checkpoint.
func TestLessorCheckpointsAndPromotion(t *testing.T) {
	r := startLessor(t, actors.LessorConfig{CheckpointInterval: time.Second}, true, 30)
	waitFor(t, "a checkpoint", 5*time.Second, func() bool { return len(r.raft.checkpoints()) > 0 })
	cp := r.raft.checkpoints()[0]
	if cp.ID != 1 || cp.Remaining_TTL < 28 || cp.Remaining_TTL > 29 {
		t.Errorf("checkpoint %v, want lease 1 with about 29 s remaining", cp)
	}

	// A member becoming leader with a lease checkpointed at 5 s of 30.
	f := startLessor(t, actors.LessorConfig{}, false, 30)
	f.index++
	f.store.Apply(f.index, &messages.InternalRequest{Request: &messages.InternalRequest_LeaseCheckpoint{
		LeaseCheckpoint: &messages.LeaseCheckpointRequest{Checkpoints: []*messages.LeaseCheckpoint{{ID: 1, Remaining_TTL: 5}}}}})
	f.store.Publish()
	f.root.Send(f.lessor, &messages.LeasesApplied{Checkpoints: []*messages.LeaseCheckpoint{{ID: 1, Remaining_TTL: 5}}})
	f.state.Leader.Store(1)
	res, err := f.root.RequestFuture(f.lessor, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseTimeToLive{
		LeaseTimeToLive: &messages.LeaseTimeToLiveRequest{ID: 1}}}, 2*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl := res.(*messages.ClientResponse).GetLeaseTimeToLive(); ttl.GetTTL() < 4 || ttl.GetTTL() > 5 || ttl.GetGrantedTTL() != 30 {
		t.Errorf("after promotion a lease checkpointed at 5 s has TTL %d (granted %d), want 4-5 of 30", ttl.GetTTL(), ttl.GetGrantedTTL())
	}
	if ka := f.keepAlive(t, 1).GetLeaseKeepAlive(); ka.GetTTL() != 30 {
		t.Errorf("keep-alive answered %v, want TTL 30", ka)
	}
	waitFor(t, "the checkpoint that clears the remaining TTL", 2*time.Second, func() bool {
		for _, cp := range f.raft.checkpoints() {
			if cp.ID == 1 && cp.Remaining_TTL == 0 {
				return true
			}
		}
		return false
	})
}

// TestLessorPromotionSpreadsExpiries: leases that would all expire at once
// after a leader change are spread so at most 3/4 of the revoke rate expire
// in any second (etcd #15247's revoke storm): their remaining TTLs differ.
func TestLessorPromotionSpreadsExpiries(t *testing.T) {
	ttls := make([]int64, 40)
	for i := range ttls {
		ttls[i] = 1
	}
	r := startLessor(t, actors.LessorConfig{RevokeRate: 20, ElectionTimeout: 10 * time.Second}, true, ttls...)
	perSecond := map[int64]int{}
	for id := int64(1); id <= int64(len(ttls)); id++ {
		res, err := r.root.RequestFuture(r.lessor, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseTimeToLive{
			LeaseTimeToLive: &messages.LeaseTimeToLiveRequest{ID: id}}}, 2*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		perSecond[res.(*messages.ClientResponse).GetLeaseTimeToLive().GetTTL()]++
	}
	// 40 leases at 15 per second: 15, 15 and 10 in three seconds.
	for sec, n := range perSecond {
		if n > 15 {
			t.Errorf("%d leases have %d s left, want at most 15 per second (revoke rate 20/s): %v", n, sec, perSecond)
		}
	}
	if len(perSecond) < 3 {
		t.Errorf("remaining TTLs after promotion: %v, want 40 leases spread over at least 3 seconds", perSecond)
	}
}

// TestLessorRevokeLostInLeaderChange: a leader proposes the revoke of an
// expired lease, loses leadership before it commits (the proposal is
// lost), and leads again: the lease still exists, so its clock starts
// again and keep-alives renew it instead of answering TTL 0.
func TestLessorRevokeLostInLeaderChange(t *testing.T) {
	r := startLessor(t, actors.LessorConfig{ElectionTimeout: 50 * time.Millisecond}, true, 1)
	waitFor(t, "the revoke of the expired lease", 3*time.Second, func() bool { return len(r.raft.revoked()) > 0 })
	// Deposed before the revoke commits, then elected again.
	r.state.Leader.Store(2)
	time.Sleep(100 * time.Millisecond)
	r.state.Leader.Store(1)
	time.Sleep(100 * time.Millisecond)
	if ka := r.keepAlive(t, 1).GetLeaseKeepAlive(); ka.GetTTL() != 1 {
		t.Fatalf("keep-alive of the lease after leading again: %v, want TTL 1", ka)
	}
}
