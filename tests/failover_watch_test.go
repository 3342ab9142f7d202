package tests

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchedEvent is one event as a watcher saw it.
type watchedEvent struct {
	rev     int64
	key     string
	deleted bool
}

// watchRecorder records every event of a prefix watch.
type watchRecorder struct {
	mu   sync.Mutex
	got  []watchedEvent
	done chan struct{}
}

// recordWatch watches prefix from rev on cli until ctx ends. clientv3
// resumes a broken stream on another endpoint from the last revision it
// delivered + 1; a watch that ends with an error (no leader for a while)
// is reopened here the same way. Either way the server's resume guarantee
// is what keeps the record gap-free.
func recordWatch(ctx context.Context, cli *clientv3.Client, prefix string, rev int64) *watchRecorder {
	r := &watchRecorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for next := rev; ctx.Err() == nil; next = r.lastRev(rev-1) + 1 {
			wctx, cancel := context.WithCancel(ctx)
			for resp := range cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(next)) {
				if resp.Err() != nil {
					break
				}
				r.mu.Lock()
				for _, ev := range resp.Events {
					r.got = append(r.got, watchedEvent{rev: ev.Kv.ModRevision, key: string(ev.Kv.Key), deleted: ev.Type == mvccpb.DELETE})
				}
				r.mu.Unlock()
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return r
}

// lastRev is the revision of the last event recorded, or def if none.
func (r *watchRecorder) lastRev(def int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return def
	}
	return r.got[len(r.got)-1].rev
}

// wait waits for the recorder to stop and returns what it recorded.
func (r *watchRecorder) wait() []watchedEvent {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// TestClusterWatchLeaderFailover: watchers stream a prefix from every
// member while clients write through every member; the leader is killed
// (SIGKILL) and later restarted. Each watcher's events are exactly the
// cluster's history for the prefix from its start revision: none lost,
// duplicated or reordered across the failover and the resumes, and every
// acknowledged put is among them at its acknowledged revision.
func TestClusterWatchLeaderFailover(t *testing.T) {
	c := startCluster(t, 3)
	const prefix = "wfail/"
	leader := c.waitLeader(10*time.Second, c.members...)
	start := int64(0)
	{
		ctx, cancel := reqCtx()
		resp, err := c.client(leader).Put(ctx, prefix+"start", "x")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		start = resp.Header.Revision
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var recs []*watchRecorder
	for _, m := range c.members {
		// Each watcher prefers a different member; all endpoints are
		// there to resume on.
		order := append([]*clusterMember{m}, c.others(m)...)
		cli := c.client(order...)
		defer cli.Close()
		recs = append(recs, recordWatch(ctx, cli, prefix, start))
	}
	stopLoad := runLoad(c, prefix, c.members...)
	time.Sleep(time.Second)
	c.kill9(leader)
	t.Logf("killed leader %s", leader.name)
	c.waitNewLeader(10*time.Second, leader, c.others(leader)...)
	time.Sleep(time.Second)
	c.restart(leader)
	time.Sleep(time.Second)
	load := stopLoad()
	rev, _ := c.waitConverged(20*time.Second, prefix, c.members...)

	// The history: one watch from start on a member, after the fact.
	hctx, hcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer hcancel()
	var history []watchedEvent
	hw := c.client(c.members[0]).Watch(hctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(start))
	for len(history) == 0 || history[len(history)-1].rev < rev {
		resp, ok := <-hw
		if !ok || resp.Err() != nil {
			t.Fatalf("history watch ended at %d of %d: %v", len(history), rev, resp.Err())
		}
		for _, ev := range resp.Events {
			history = append(history, watchedEvent{rev: ev.Kv.ModRevision, key: string(ev.Kv.Key), deleted: ev.Type == mvccpb.DELETE})
		}
	}
	// Let the watchers see everything, then stop them.
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range recs {
		for r.lastRev(0) < rev && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	cancel()
	for i, r := range recs {
		got := r.wait()
		if len(got) != len(history) {
			t.Errorf("watcher %d saw %d events, the history has %d", i, len(got), len(history))
		}
		for j := range min(len(got), len(history)) {
			if got[j] != history[j] {
				t.Errorf("watcher %d: event %d is %+v, history has %+v", i, j, got[j], history[j])
				break
			}
		}
	}
	seen := map[string]int64{}
	for _, ev := range history {
		if !ev.deleted {
			seen[ev.key] = ev.rev
		}
	}
	load.mu.Lock()
	acked := load.acked
	load.mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no put was acknowledged")
	}
	for k, r := range acked {
		if seen[k] != r {
			t.Errorf("acknowledged put %s at revision %d: the watch history has it at %d", k, r, seen[k])
		}
	}
	t.Logf("%d events through revision %d; %d acknowledged puts", len(history), rev, len(acked))
}

// TestClusterWatchRequireLeader: a watch opened with WithRequireLeader on a
// member that loses its leader (the other two members killed) ends with
// etcd's "no leader" error after a few election timeouts (etcd's
// monitorLeader), so the client can go elsewhere; and a new one is refused.
func TestClusterWatchRequireLeader(t *testing.T) {
	c := startCluster(t, 3)
	c.waitLeader(10*time.Second, c.members...)
	survivor := c.members[0]
	cli := c.client(survivor)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), "rl/", clientv3.WithPrefix())
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := cli.KeepAlive(clientv3.WithRequireLeader(kctx), mustGrant(t, cli, 60))
	if err != nil {
		t.Fatal(err)
	}
	<-ka
	for _, m := range c.others(survivor) {
		c.kill9(m)
	}
	start := time.Now()
	var werr error
	for resp := range wch {
		if werr = resp.Err(); werr != nil {
			break
		}
	}
	if !errors.Is(werr, rpctypes.ErrNoLeader) {
		t.Fatalf("watch ended with %v, want %v", werr, rpctypes.ErrNoLeader)
	}
	t.Logf("watch ended with %q %v after the leader was lost", werr, time.Since(start).Round(time.Millisecond))
	wch = cli.Watch(clientv3.WithRequireLeader(ctx), "rl/", clientv3.WithPrefix())
	if resp := <-wch; !errors.Is(resp.Err(), rpctypes.ErrNoLeader) {
		t.Fatalf("a new watch without a leader: %v, want %v", resp.Err(), rpctypes.ErrNoLeader)
	}
}

func mustGrant(t *testing.T, cli *clientv3.Client, ttl int64) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := reqCtx()
	defer cancel()
	resp, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}
