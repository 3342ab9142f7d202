package actors_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// fakeRaft confirms every leadership check and records the revokes the
// lease ticker proposes, applying none.
type fakeRaft struct {
	mu      sync.Mutex
	revokes []int64
}

func (f *fakeRaft) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.ReadIndex:
		ctx.Respond(&messages.ReadReady{})
	case *messages.Propose:
		if r := m.Request.GetLeaseRevoke(); r != nil {
			f.mu.Lock()
			f.revokes = append(f.revokes, r.ID)
			f.mu.Unlock()
		}
	}
}

func (f *fakeRaft) revoked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.revokes)
}

// TestLessorRevokeLostInLeaderChange: a leader proposes the revoke of an
// expired lease, loses leadership before it commits (the proposal is
// lost), and leads again: the lease still exists, so its clock starts
// again and keep-alives renew it instead of answering TTL 0.
func TestLessorRevokeLostInLeaderChange(t *testing.T) {
	store, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	defer system.Shutdown()
	state := &actors.MemberState{MemberID: 1, ClusterID: 7}
	state.Leader.Store(1)
	env := &actors.Env{Logger: zerolog.Nop(), State: state, Fatal: func(error) {}}
	raft := &fakeRaft{}
	raftPID := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return raft }))
	lessor := system.Root.Spawn(actors.NewLessorProps(env, actors.LessorConfig{
		TickInterval: 20 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		RequestTimeout: time.Second}, store, raftPID))
	system.Root.Send(lessor, &messages.LeasesApplied{Granted: []*messages.LeaseRecord{{ID: 5, TTL: 1}}})

	deadline := time.Now().Add(3 * time.Second)
	for raft.revoked() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired lease was not revoked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Deposed before the revoke commits, then elected again.
	state.Leader.Store(2)
	time.Sleep(100 * time.Millisecond)
	state.Leader.Store(1)
	time.Sleep(100 * time.Millisecond)

	res, err := system.Root.RequestFuture(lessor, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseKeepAlive{
		LeaseKeepAlive: &messages.LeaseKeepAliveRequest{ID: 5}}}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ka := res.(*messages.ClientResponse).GetLeaseKeepAlive(); ka.GetTTL() != 1 {
		t.Fatalf("keep-alive of the lease after leading again: %v, want TTL 1", res)
	}
}
