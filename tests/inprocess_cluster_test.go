package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/bootstrap"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestInProcessClusterBasic: a write through any member is readable,
// linearizably, from every member, and the members' stores hash alike.
func TestInProcessClusterBasic(t *testing.T) {
	checkNoGoroutineLeak(t)
	c := startInProcessCluster(t, 3)
	for i, w := range c.members {
		ctx, cancel := reqCtx()
		_, err := c.client(w).Put(ctx, fmt.Sprintf("basic/%d", i), w.name)
		cancel()
		if err != nil {
			t.Fatalf("put through %s: %v", w.name, err)
		}
		for _, r := range c.members {
			ctx, cancel := reqCtx()
			resp, err := c.client(r).Get(ctx, fmt.Sprintf("basic/%d", i))
			cancel()
			if err != nil {
				t.Fatalf("get from %s: %v", r.name, err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != w.name {
				t.Fatalf("get basic/%d from %s after a put through %s: %v", i, r.name, w.name, resp.Kvs)
			}
		}
	}
	rev := c.waitConverged(10*time.Second, "basic/", c.members...)
	c.checkHashKV(rev, c.members...)

	// A clean stop stops the actors on purpose: it is not a fatal error.
	for _, im := range c.members {
		if err := im.m.Stop(); err != nil {
			t.Errorf("%s: stop: %v", im.name, err)
		}
		if log := im.logs[0].String(); strings.Contains(log, "fatal error") {
			t.Errorf("%s logged a fatal error on a clean stop:\n%s", im.name, log)
		}
		im.m = nil
	}
}

// TestInProcessKillOtherActors: stopping, poisoning or panicking the
// gateway, the applier, the snapshot receiver, the lease ticker or a watch
// hub fail-stops the member too,
// and the member restarted on its data dir catches up.
func TestInProcessKillOtherActors(t *testing.T) {
	checkNoGoroutineLeak(t)
	c := startInProcessCluster(t, 3)
	for i, tc := range []struct{ actor, how string }{
		{actors.GatewayName, "stop"},
		{actors.ApplierName, "poison"},
		{actors.SnapshotReceiverName, "panic"},
		{actors.LessorName, "panic"},
		{actors.WatchHubPrefix + "1", "stop"},
	} {
		victim := c.members[i%len(c.members)]
		ctx, cancel := reqCtx()
		_, err := c.client(c.others(victim)...).Put(ctx, "other/"+tc.actor, tc.how)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := victim.m.KillActor(tc.actor, tc.how); err != nil {
			t.Fatal(err)
		}
		select {
		case <-victim.m.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop within 20s after its %s actor was killed (%s)", victim.name, tc.actor, tc.how)
		}
		if err := victim.m.Err(); err == nil || !strings.Contains(err.Error(), victim.prefix+"/"+tc.actor) {
			t.Fatalf("%s stopped with error %v, want one naming %s/%s", victim.name, err, victim.prefix, tc.actor)
		}
		victim.m = nil
		c.start(victim)
		rev := c.waitConverged(20*time.Second, "", c.members...)
		c.checkHashKV(rev, c.members...)
	}
	if err := c.members[0].m.KillActor("lease", "stop"); err == nil {
		t.Error("KillActor of an unknown actor succeeded")
	}
	if err := c.members[0].m.KillActor(actors.RaftName, "restart"); err == nil {
		t.Error("KillActor with an unknown how succeeded")
	}
}

// TestInProcessKillUnderLoad kills the raft node or the WAL writer of the
// leader or of a follower while clients write through every member. The
// member fail-stops naming the actor; the other two keep accepting writes;
// no acknowledged write is lost; the member restarted on its data dir
// catches up to the same store.
func TestInProcessKillUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		actor  string
		leader bool
		how    string
	}{
		{actors.RaftName, true, "stop"},
		{actors.RaftName, false, "panic"},
		{actors.WALName, true, "poison"},
		{actors.WALName, false, "panic"},
		{actors.WALName, false, "stop"},
		{actors.RaftName, false, "poison"},
	} {
		role := "follower"
		if tc.leader {
			role = "leader"
		}
		t.Run(fmt.Sprintf("%s/%s/%s", tc.actor, role, tc.how), func(t *testing.T) {
			checkNoGoroutineLeak(t)
			c := startInProcessCluster(t, 3)
			load := startWriteLoad(c, 4)
			load.waitAcks(t, 50, 20*time.Second)
			leader := c.waitLeader(10*time.Second, nil, c.members...)
			victim := leader
			if !tc.leader {
				victim = c.others(leader)[0]
			}
			survivors := c.others(victim)
			if err := victim.m.KillActor(tc.actor, tc.how); err != nil {
				t.Fatal(err)
			}
			select {
			case <-victim.m.Done():
			case <-time.After(20 * time.Second):
				t.Fatalf("%s did not stop within 20s after its %s actor was killed (%s)", victim.name, tc.actor, tc.how)
			}
			err := victim.m.Err()
			if err == nil || !strings.Contains(err.Error(), victim.prefix+"/"+tc.actor) {
				t.Fatalf("%s stopped with error %v, want one naming %s/%s", victim.name, err, victim.prefix, tc.actor)
			}
			if tc.how != "panic" && !errors.Is(err, bootstrap.ErrActorStopped) {
				t.Errorf("%s stopped with error %v, want one wrapping ErrActorStopped", victim.name, err)
			}
			t.Logf("%s (%s) stopped: %v", victim.name, role, err)

			// The survivors elect a leader among themselves if needed and
			// acknowledge writes issued after the victim stopped.
			c.waitLeader(10*time.Second, victim, survivors...)
			load.waitAcks(t, load.acked()+50, 20*time.Second)
			for _, s := range survivors {
				ctx, cancel := reqCtx()
				_, err := c.client(s).Put(ctx, "after/"+s.name, s.name)
				cancel()
				if err != nil {
					t.Fatalf("put through %s after %s stopped: %v", s.name, victim.name, err)
				}
			}
			acked := load.stop()
			for _, s := range survivors {
				checkAcked(t, c, s, acked)
			}

			victim.m = nil
			c.start(victim)
			rev := c.waitConverged(20*time.Second, "", c.members...)
			c.checkHashKV(rev, c.members...)
			checkAcked(t, c, victim, acked)
			t.Logf("%d acknowledged writes; converged at revision %d", len(acked), rev)
		})
	}
}

// writeLoad is clients putting distinct keys through every member; it
// records the value of each acknowledged put.
type writeLoad struct {
	stopc chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	acks map[string]string
	cond chan struct{} // closed and replaced on every ack
}

// startWriteLoad starts n writers over the running members; writer i
// prefers the i-th (mod their number) and fails over to the others.
func startWriteLoad(c *ipCluster, n int) *writeLoad {
	l := &writeLoad{stopc: make(chan struct{}), acks: map[string]string{}, cond: make(chan struct{})}
	var running []*ipMember
	for _, im := range c.members {
		if im.m != nil {
			running = append(running, im)
		}
	}
	for i := 0; i < n; i++ {
		var ms []*ipMember
		for j := range running {
			ms = append(ms, running[(i+j)%len(running)])
		}
		cli := c.client(ms...)
		l.wg.Add(1)
		go l.write(cli, i)
	}
	c.t.Cleanup(func() { l.stop() })
	return l
}

func (l *writeLoad) write(cli *clientv3.Client, w int) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		select {
		case <-l.stopc:
			return
		default:
		}
		key, val := fmt.Sprintf("load/w%d/%06d", w, seq), fmt.Sprintf("v%d-%d", w, seq)
		ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
		_, err := cli.Put(ctx, key, val)
		cancel()
		if err != nil {
			// The outcome is unknown: the key is never written again and
			// is not checked.
			select {
			case <-l.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		l.mu.Lock()
		l.acks[key] = val
		close(l.cond)
		l.cond = make(chan struct{})
		l.mu.Unlock()
	}
}

func (l *writeLoad) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// waitAcks waits until at least n puts are acknowledged.
func (l *writeLoad) waitAcks(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		got, cond := len(l.acks), l.cond
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("%d puts acknowledged within %v, want %d", got, timeout, n)
		}
	}
}

// stop stops the writers and returns every acknowledged put.
func (l *writeLoad) stop() map[string]string {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks
}

// checkAcked reads the load's keys linearizably from im and fails for any
// acknowledged put missing or with another value.
func checkAcked(t *testing.T, c *ipCluster, im *ipMember, acked map[string]string) {
	t.Helper()
	ctx, cancel := reqCtx()
	resp, err := c.client(im).Get(ctx, "load/", clientv3.WithPrefix())
	cancel()
	if err != nil {
		t.Fatalf("%s: get load/: %v", im.name, err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	lost := 0
	for k, v := range acked {
		if got[k] != v {
			if lost < 10 {
				t.Errorf("%s: acknowledged put %s=%s reads %q", im.name, k, v, got[k])
			}
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%s: %d of %d acknowledged puts lost", im.name, lost, len(acked))
	}
}

// TestInProcessSnapshotCatchUp: a follower whose raft node was stopped
// falls behind the leader's log; restarted, it catches up through a backend
// snapshot streamed between the members' actors in process.
func TestInProcessSnapshotCatchUp(t *testing.T) {
	checkNoGoroutineLeak(t)
	c := startInProcessCluster(t, 3, func(cfg *bootstrap.Config) {
		cfg.SnapshotCount = 50
		cfg.CatchUpEntries = 10
		cfg.WALSegmentBytes = 64 << 10
	})
	leader := c.waitLeader(10*time.Second, nil, c.members...)
	f := c.others(leader)[0]
	if err := f.m.KillActor(actors.RaftName, "stop"); err != nil {
		t.Fatal(err)
	}
	<-f.m.Done()
	f.m = nil

	load := startWriteLoad(c, 4)
	load.waitAcks(t, 300, 60*time.Second)
	acked := load.stop()
	c.start(f)
	rev := c.waitConverged(30*time.Second, "", c.members...)
	c.checkHashKV(rev, c.members...)
	checkAcked(t, c, f, acked)
	if log := f.logs[len(f.logs)-1].String(); !strings.Contains(log, snapInstalledMsg) {
		t.Errorf("%s caught up without installing a snapshot (log lacks %q)", f.name, snapInstalledMsg)
	}
}
