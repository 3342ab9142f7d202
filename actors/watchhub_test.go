package actors_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// hubRig is one watch hub over a real store; the test plays the applier.
type hubRig struct {
	root     *actor.RootContext
	hub      *actor.PID
	store    *mvcc.Store
	registry *actors.WatchRegistry
	index    uint64
}

func startHub(t *testing.T) *hubRig {
	t.Helper()
	store, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	system := actor.NewActorSystem()
	r := &hubRig{root: system.Root, store: store, registry: actors.NewWatchRegistry(1)}
	env := &actors.Env{Logger: zerolog.Nop(), State: &actors.MemberState{MemberID: 1}, Fatal: func(err error) { t.Errorf("fatal: %v", err) }}
	r.hub = system.Root.Spawn(actors.NewWatchHubProps(env, actors.WatchHubConfig{SyncInterval: 10 * time.Millisecond}, store, r.registry))
	t.Cleanup(func() {
		_ = system.Root.PoisonFuture(r.hub).Wait()
		system.Shutdown()
		_ = store.Close()
	})
	return r
}

// put applies puts of keys as one batch and hands its events to the hub,
// as the applier does.
func (r *hubRig) put(keys ...string) {
	for _, k := range keys {
		r.index++
		r.store.Apply(r.index, &messages.InternalRequest{Request: &messages.InternalRequest_Put{
			Put: &messages.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprint(r.index))}}})
	}
	r.store.Publish()
	r.root.Send(r.hub, &messages.WatchEvents{Events: r.store.TakeEvents(), Revision: r.store.Rev(), CompactRevision: r.store.CompactRev()})
}

func (r *hubRig) watch(stream uint64, req *messages.WatchCreateRequest) {
	r.root.Send(r.hub, &messages.WatchControl{Stream: stream, Request: &messages.WatchRequest{
		RequestUnion: &messages.WatchRequest_CreateRequest{CreateRequest: req}}})
}

// drain collects the stream's responses until cond holds.
func drain(t *testing.T, sink *actors.WatchSink, cond func([]*messages.WatchResponse) bool) []*messages.WatchResponse {
	t.Helper()
	var got []*messages.WatchResponse
	deadline := time.After(10 * time.Second)
	for !cond(got) {
		select {
		case <-sink.Ready():
			for _, out := range sink.Take(nil) {
				got = append(got, out.Resp)
			}
		case <-deadline:
			t.Fatalf("timed out; %d responses so far", len(got))
		}
	}
	return got
}

func eventRevs(resps []*messages.WatchResponse, id int64) []int64 {
	var revs []int64
	for _, r := range resps {
		if r.WatchId != id {
			continue
		}
		for _, ev := range r.Events {
			revs = append(revs, ev.Kv.ModRevision)
		}
	}
	return revs
}

// TestWatchHubVictimCatchesUp: a watcher whose stream's sink is full leaves
// the synced group and catches up from the backend; it gets every revision
// exactly once and in order, while a watcher on another stream is not held
// up (etcd #17529, #17247).
func TestWatchHubVictimCatchesUp(t *testing.T) {
	r := startHub(t)
	slowID, slow := r.registry.Open(2)
	fastID, fast := r.registry.Open(1 << 20)
	r.watch(slowID, &messages.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	r.watch(fastID, &messages.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
	drain(t, fast, func(g []*messages.WatchResponse) bool { return len(g) == 1 })
	const n = 200
	for i := range n {
		r.put(fmt.Sprintf("k%d", i%7))
	}
	// The fast stream has everything while the slow one is still unread.
	fastGot := drain(t, fast, func(g []*messages.WatchResponse) bool { return len(eventRevs(g, 0)) == n })
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i + 2)
	}
	if got := eventRevs(fastGot, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fast watcher got %v", got)
	}
	// Reading the slow stream a little at a time, it catches up.
	var slowGot []*messages.WatchResponse
	deadline := time.After(10 * time.Second)
	for len(eventRevs(slowGot, 0)) < n {
		select {
		case <-slow.Ready():
			for _, out := range slow.Take(nil) {
				slowGot = append(slowGot, out.Resp)
			}
			time.Sleep(5 * time.Millisecond)
		case <-deadline:
			t.Fatalf("slow watcher caught up to %d of %d events", len(eventRevs(slowGot, 0)), n)
		}
	}
	if got := eventRevs(slowGot, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("slow watcher got %v, want every revision once in order", got)
	}
	// Catch-up reads many revisions into one response: fewer responses
	// than revisions show the watcher was a victim, not merely slow.
	if len(slowGot) > n/2 {
		t.Errorf("slow watcher got %d responses for %d revisions: it never fell back to catch-up", len(slowGot), n)
	}
}

// TestWatchHubHistoryThenLive: a watcher from a past revision gets the
// history, then live events, with no gap or duplicate, while writes go on.
func TestWatchHubHistoryThenLive(t *testing.T) {
	r := startHub(t)
	for i := range 50 {
		r.put(fmt.Sprintf("a%d", i))
	}
	id, sink := r.registry.Open(1 << 20)
	r.watch(id, &messages.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("b"), StartRevision: 10})
	for i := 50; i < 100; i++ {
		r.put(fmt.Sprintf("a%d", i))
	}
	got := drain(t, sink, func(g []*messages.WatchResponse) bool { return len(eventRevs(g, 0)) >= 92 })
	var want []int64
	for rev := int64(10); rev <= 101; rev++ {
		want = append(want, rev)
	}
	if revs := eventRevs(got, 0); fmt.Sprint(revs) != fmt.Sprint(want) {
		t.Fatalf("got revisions %v, want 10..101 once each", revs)
	}
	if !got[0].Created || got[0].WatchId != 0 {
		t.Errorf("first response %v, want created watch 0", got[0])
	}
}

// TestWatchHubCompactedStart: a watcher from a compacted revision is
// created, then canceled with the compaction revision.
func TestWatchHubCompactedStart(t *testing.T) {
	r := startHub(t)
	for i := range 10 {
		r.put(fmt.Sprintf("c%d", i))
	}
	r.index++
	r.store.Apply(r.index, &messages.InternalRequest{Request: &messages.InternalRequest_Compaction{
		Compaction: &messages.CompactionRequest{Revision: 8}}})
	r.store.Publish()
	id, sink := r.registry.Open(16)
	r.watch(id, &messages.WatchCreateRequest{Key: []byte("c0"), StartRevision: 3})
	got := drain(t, sink, func(g []*messages.WatchResponse) bool { return len(g) == 2 })
	if !got[0].Created || got[0].Canceled {
		t.Errorf("first response %v, want created", got[0])
	}
	if !got[1].Canceled || got[1].CompactRevision != 8 {
		t.Errorf("second response %v, want canceled with compact_revision 8", got[1])
	}
}
