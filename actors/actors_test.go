package actors_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"log/slog"
)

// spine is one member's actors over an in-memory log twin and a real MVCC
// store, without gRPC or remoting.
type spine struct {
	system  *actor.ActorSystem
	gateway *actor.PID
	raft    *actor.PID
	store   *mvcc.Store
	state   *actors.MemberState
	fatal   chan error
	// peerMsgs receives what the raft node sends to members 2 and 3 (fake
	// peers) when the spine was started with peers.
	peerMsgs chan *messages.RaftMessage
	forwards chan *messages.ForwardProposals
}

// slowLog delays every Sync, as a disk would, so batching can be observed.
type slowLog struct {
	*persistence.MemLog
	delay time.Duration
	mu    sync.Mutex
	syncs int
}

func (l *slowLog) Sync() error {
	time.Sleep(l.delay)
	l.mu.Lock()
	l.syncs++
	l.mu.Unlock()
	return l.MemLog.Sync()
}

func startSpine(t *testing.T, log persistence.Log) *spine {
	t.Helper()
	return startSpineWith(t, log, false)
}

// startSpineWith starts member 1; with peers it is one of three voters
// whose peers 2 and 3 are fake actors that only record what they get, and
// its clock ticks too slowly to start an election during a test.
func startSpineWith(t *testing.T, log persistence.Log, withPeers bool, tweaks ...func(*actors.RaftNodeConfig)) *spine {
	t.Helper()
	store, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &spine{store: store, fatal: make(chan error, 4), state: &actors.MemberState{MemberID: 1, ClusterID: 7}}
	s.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	env := &actors.Env{Logger: zerolog.Nop(), State: s.state, Fatal: func(err error) { s.fatal <- err }}
	root := s.system.Root
	voters, heartbeat := []uint64{1}, 10*time.Millisecond
	// Peers are routed by peer address: member i is at 127.0.0.1:i.
	peers := map[string]*actor.PID{}
	members := []*messages.Member{{ID: 1, PeerURLs: []string{"http://127.0.0.1:1"}}}
	if withPeers {
		voters, heartbeat = []uint64{1, 2, 3}, time.Hour
		s.peerMsgs = make(chan *messages.RaftMessage, 100)
		s.forwards = make(chan *messages.ForwardProposals, 100)
		for _, id := range []uint64{2, 3} {
			members = append(members, &messages.Member{ID: id, PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", id)}})
			peers[fmt.Sprintf("127.0.0.1:%d", id)] = root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *messages.RaftMessage:
					s.peerMsgs <- m
				case *messages.ForwardProposals:
					s.forwards <- m
				}
			}))
		}
	}
	walPID, _ := root.SpawnNamed(actors.NewWALWriterProps(env, log), actors.WALName)
	raftPID := actor.NewPID(s.system.Address(), actors.RaftName)
	applierPID, _ := root.SpawnNamed(actors.NewApplierProps(env, store, raftPID, actors.ApplierConfig{}), actors.ApplierName)
	rcfg := actors.RaftNodeConfig{
		Core:              raft.Config{ID: 1, Voters: voters, Rand: rand.New(rand.NewPCG(1, 2)), PreVote: true, CheckQuorum: true},
		HeartbeatInterval: heartbeat,
		Members:           members,
		PeerPID: func(addr, name string) *actor.PID {
			if name == actors.RaftName {
				return peers[addr]
			}
			return nil
		},
		WAL: walPID, Applier: applierPID,
	}
	for _, tw := range tweaks {
		tw(&rcfg)
	}
	if _, err := root.SpawnNamed(actors.NewRaftNodeProps(env, rcfg), actors.RaftName); err != nil {
		t.Fatal(err)
	}
	s.raft = raftPID
	s.gateway, _ = root.SpawnNamed(actors.NewGatewayProps(env, actors.GatewayConfig{
		MaxTxnOps: 128, MaxRequestBytes: 1 << 20, RequestTimeout: 3 * time.Second,
	}, store, raftPID, applierPID, nil), actors.GatewayName)
	t.Cleanup(func() {
		for _, pid := range []*actor.PID{s.gateway, raftPID, walPID, applierPID} {
			_ = root.PoisonFuture(pid).Wait()
		}
		s.system.Shutdown()
		store.Close()
	})
	return s
}

func (s *spine) ask(req *messages.ClientRequest, timeout time.Duration) (*messages.ClientResponse, error) {
	res, err := s.system.Root.RequestFuture(s.gateway, req, timeout).Result()
	if err != nil {
		return nil, err
	}
	return res.(*messages.ClientResponse), nil
}

func put(k, v string) *messages.ClientRequest {
	return &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func get(k string, serializable bool) *messages.ClientRequest {
	return &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte(k), Serializable: serializable}}}
}

// TestWriteIsDurableBeforeAcknowledged: a put goes propose → WAL → commit →
// apply; when the client gets its answer the entry is already durable in
// the log, and both read paths see it.
func TestWriteIsDurableBeforeAcknowledged(t *testing.T) {
	log := persistence.NewMemLog()
	s := startSpine(t, log)
	resp, err := s.ask(put("k", "v"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPut().GetHeader().GetRevision() != 2 {
		t.Fatalf("put answered %v", resp)
	}
	found := false
	for _, e := range log.Durable().Entries {
		var ir messages.InternalRequest
		if len(e.Data) > 0 && proto.Unmarshal(e.Data, &ir) == nil && string(ir.GetPut().GetKey()) == "k" {
			found = true
		}
	}
	if !found {
		t.Fatal("put acknowledged before its entry was durable")
	}
	for _, serializable := range []bool{false, true} {
		r, err := s.ask(get("k", serializable), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if kvs := r.GetRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "v" {
			t.Fatalf("serializable=%v read %v", serializable, r)
		}
	}
	bad, err := s.ask(put("", "v"), 5*time.Second)
	if err != nil || bad.GetError().GetMessage() != "etcdserver: key is not provided" {
		t.Fatalf("empty key: %v %v", bad, err)
	}
}

// TestGroupCommit: puts that arrive while a sync is in flight share the
// next fdatasync.
func TestGroupCommit(t *testing.T) {
	log := &slowLog{MemLog: persistence.NewMemLog(), delay: 3 * time.Millisecond}
	s := startSpine(t, log)
	if _, err := s.ask(put("warm", "up"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	before := log.syncs
	log.mu.Unlock()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := s.ask(put(fmt.Sprintf("k%d", i), "v"), 10*time.Second)
			if err == nil && r.GetPut() == nil {
				err = errors.New(r.String())
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	log.mu.Lock()
	syncs := log.syncs - before
	log.mu.Unlock()
	if syncs > n/4 {
		t.Fatalf("%d puts took %d fdatasyncs: no group commit", n, syncs)
	}
	t.Logf("%d concurrent puts, %d fdatasyncs", n, syncs)
}

// TestSyncFailureStopsMember: a failed fdatasync is fatal; the write it
// carried is never acknowledged as a success.
func TestSyncFailureStopsMember(t *testing.T) {
	log := persistence.NewMemLog()
	s := startSpine(t, log)
	if _, err := s.ask(put("before", "v"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	log.SetSyncError(errors.New("injected EIO"))
	resp, err := s.ask(put("after", "v"), time.Second)
	if err == nil && resp.GetPut() != nil {
		t.Fatalf("write acknowledged after a failed fdatasync: %v", resp)
	}
	select {
	case ferr := <-s.fatal:
		t.Logf("member stopped: %v", ferr)
	case <-time.After(5 * time.Second):
		t.Fatal("a failed fdatasync did not stop the member")
	}
	resp, err = s.ask(put("later", "v"), 500*time.Millisecond)
	if err == nil && resp.GetPut() != nil {
		t.Fatalf("write acknowledged after the WAL failed: %v", resp)
	}
}

// TestReadFailsWhenLeaderChanges: a linearizable read whose ReadIndex round
// is in flight when the leader changes is answered "leader changed" at
// once (as etcd does; clientv3 retries it), not left to time out.
func TestReadFailsWhenLeaderChanges(t *testing.T) {
	s := startSpineWith(t, persistence.NewMemLog(), true)
	s.system.Root.Send(s.raft, &messages.RaftMessage{Type: messages.RaftMessageType_MSG_HEARTBEAT, From: 2, To: 1, Term: 1})
	deadline := time.Now().Add(5 * time.Second)
	for s.state.Leader.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("member 1 did not follow member 2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	type result struct {
		resp *messages.ClientResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := s.ask(get("k", false), 10*time.Second)
		done <- result{resp, err}
	}()
	for m := range s.peerMsgs {
		if m.Type == messages.RaftMessageType_MSG_READ_INDEX && m.To == 2 {
			break
		}
	}
	s.system.Root.Send(s.raft, &messages.RaftMessage{Type: messages.RaftMessageType_MSG_HEARTBEAT, From: 3, To: 1, Term: 2})
	r := <-done
	if r.err != nil || r.resp.GetError().GetMessage() != "etcdserver: leader changed" {
		t.Fatalf("read in flight across a leader change answered %v, %v; want etcdserver: leader changed", r.resp, r.err)
	}
}

// TestProposalWithoutLeaderTimesOut: a write held while no leader is known
// is answered "request timed out" once ProposalTimeout passes, and is not
// proposed when a leader appears later (its client was told it timed out).
func TestProposalWithoutLeaderTimesOut(t *testing.T) {
	s := startSpineWith(t, persistence.NewMemLog(), true, func(c *actors.RaftNodeConfig) {
		c.HeartbeatInterval = 10 * time.Millisecond
		c.ProposalTimeout = 100 * time.Millisecond
	})
	start := time.Now()
	resp, err := s.ask(put("held", "v"), 3*time.Second)
	if err != nil {
		t.Fatalf("no answer from the raft node: %v", err)
	}
	if got := resp.GetError().GetMessage(); got != "etcdserver: request timed out" {
		t.Fatalf("held put answered %v, want request timed out", resp)
	}
	t.Logf("answered after %v", time.Since(start))
	// A leader appears: nothing is forwarded to it.
	s.system.Root.Send(s.raft, &messages.RaftMessage{Type: messages.RaftMessageType_MSG_HEARTBEAT, From: 2, To: 1, Term: 5})
	deadline := time.Now().Add(5 * time.Second)
	for s.state.Leader.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("member 1 did not follow member 2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case f := <-s.forwards:
		t.Fatalf("a timed-out proposal was forwarded to the new leader: %d entries", len(f.Data))
	case <-time.After(300 * time.Millisecond):
	}
}
