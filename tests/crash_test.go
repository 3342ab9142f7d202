package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestCrashKill9NoAcknowledgedWriteLost runs aetcd as a child process under
// concurrent put load, kills it with SIGKILL, restarts it on the same data
// dir and checks that every acknowledged put is present with the revision
// it was acknowledged at, and that revisions 2..current each belong to
// exactly one put (no gap, no repeat). Three kill/restart rounds, with
// snapshots (WAL released behind the backend) happening under the load.
var snapshotFlags = []string{"--snapshot-count", "2000", "--wal-segment-size", "262144"}

func TestCrashKill9NoAcknowledgedWriteLost(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process crash test")
	}
	dir := t.TempDir()
	clientPort, remotePort := freePort(t), freePort(t)
	acked := map[string]int64{}
	snapshots := 0
	var mu sync.Mutex
	for round := 0; round < 3; round++ {
		p := startProc(t, dir, clientPort, remotePort, snapshotFlags...)
		c := newClient(t, p.clientAddr)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Sprintf("r%d-w%02d-%06d", round, w, i)
					resp, err := c.Put(ctx, key, key)
					if err != nil {
						return
					}
					mu.Lock()
					acked[key] = resp.Header.Revision
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(time.Duration(700+300*round) * time.Millisecond)
		p.kill()
		snapshots += strings.Count(p.log.String(), "snapshot: WAL released")
		cancel()
		wg.Wait()
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d puts acknowledged; the load did not run", len(acked))
	}
	p := startProc(t, dir, clientPort, remotePort, snapshotFlags...)
	c := newClient(t, p.clientAddr)
	resp, err := c.Get(ctxT(t), "r", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var revs []int64
	for _, kv := range resp.Kvs {
		if string(kv.Key) != string(kv.Value) || kv.Version != 1 || kv.CreateRevision != kv.ModRevision {
			t.Fatalf("key %s: value %q version %d create %d mod %d", kv.Key, kv.Value, kv.Version, kv.CreateRevision, kv.ModRevision)
		}
		got[string(kv.Key)] = kv.ModRevision
		revs = append(revs, kv.ModRevision)
	}
	for key, rev := range acked {
		if g, ok := got[key]; !ok {
			t.Errorf("acknowledged put %s (rev %d) lost", key, rev)
		} else if g != rev {
			t.Errorf("acknowledged put %s at rev %d, now at rev %d", key, rev, g)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	for i, r := range revs {
		if r != int64(i+2) {
			t.Fatalf("revision sequence broken at position %d: %d (want %d)", i, r, i+2)
		}
	}
	if resp.Header.Revision != int64(len(revs)+1) {
		t.Fatalf("store revision %d, but %d puts survive", resp.Header.Revision, len(revs))
	}
	t.Logf("%d acknowledged, %d present after 3 SIGKILLs, revision %d", len(acked), len(revs), resp.Header.Revision)
	if snapshots == 0 {
		t.Errorf("no snapshot was taken under load: the test did not exercise WAL release")
	}
}
