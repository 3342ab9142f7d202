package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
)

// runLoad puts unique keys under prefix through every member in ms from
// two workers per member until stop is called, which returns the load.
func runLoad(c *testCluster, prefix string, ms ...*clusterMember) (stop func() *putLoad) {
	load := newPutLoad()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, m := range ms {
		cli := c.client(m)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ctx.Err() == nil; k++ {
					if err := load.put(ctx, cli, fmt.Sprintf("%s%s-w%d/%06d", prefix, ms[i].name, w, k), 3*time.Second); err != nil {
						select {
						case <-ctx.Done():
						case <-time.After(20 * time.Millisecond):
						}
					}
				}
			}()
		}
	}
	return func() *putLoad {
		cancel()
		wg.Wait()
		return load
	}
}

// wantRPCError fails unless err is etcd's gRPC error want (a
// rpctypes.ErrGRPC* value): same code and message.
func wantRPCError(t *testing.T, what string, err error, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", what, want)
	}
	ws := status.Convert(want)
	code, msg := status.Convert(err).Code(), status.Convert(err).Message()
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code, msg = ee.Code(), ee.Error()
	}
	if code != ws.Code() || msg != ws.Message() {
		t.Fatalf("%s: %q (code %v), want %q (code %v)", what, msg, code, ws.Message(), ws.Code())
	}
}

// memberListOf returns the member list as member m serves it.
func memberListOf(t *testing.T, c *testCluster, m *clusterMember) *clientv3.MemberListResponse {
	t.Helper()
	cli := c.client(m)
	defer cli.Close()
	ctx, cancel := reqCtx()
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("%s: member list: %v", m.name, err)
	}
	return resp
}

// TestClusterMembership: under put load, add a learner (through a
// follower), start it with --initial-cluster-state existing, check what a
// learner serves, promote it once caught up, then remove an original
// follower and the leader; after each step every member agrees on the
// membership, no acknowledged put is lost and HashKV agrees.
func TestClusterMembership(t *testing.T) {
	c := startCluster(t, 3)
	const prefix = "membership/"
	stopLoad := runLoad(c, prefix, c.members...)
	leader := c.waitLeader(10*time.Second, c.members...)
	follower := c.others(leader)[0]
	cli := c.client(follower)

	// Errors first: they change nothing.
	// (clientv3 checks URLs itself: ask through the raw gRPC API.)
	ctx, cancel := reqCtx()
	_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"not a url"}})
	cancel()
	wantRPCError(t, "member add with a bad URL", err, rpctypes.ErrGRPCMemberBadURLs)
	ctx, cancel = reqCtx()
	_, err = cli.MemberAdd(ctx, []string{c.members[2].peerURL})
	cancel()
	wantRPCError(t, "member add with a member's peer URL", err, rpctypes.ErrGRPCPeerURLExist)
	ctx, cancel = reqCtx()
	_, err = cli.MemberRemove(ctx, 0x1234)
	cancel()
	wantRPCError(t, "member remove of an unknown ID", err, rpctypes.ErrGRPCMemberNotFound)
	if got := len(memberListOf(t, c, leader).Members); got != 3 {
		t.Fatalf("%d members after refused changes, want 3", got)
	}

	// Add a learner through a follower.
	m4 := c.newJoiner("m4", c.members...)
	ctx, cancel = reqCtx()
	add, err := cli.MemberAddAsLearner(ctx, []string{m4.peerURL})
	cancel()
	if err != nil {
		t.Fatalf("member add --learner: %v", err)
	}
	if !add.Member.IsLearner || add.Member.Name != "" || len(add.Members) != 4 || add.Header.MemberId != follower.id {
		t.Fatalf("member add answered %+v (header member %x, want %x)", add, add.Header.MemberId, follower.id)
	}
	m4.id = add.Member.ID
	ctx, cancel = reqCtx()
	_, err = cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"})
	cancel()
	wantRPCError(t, "a second learner", err, rpctypes.ErrGRPCTooManyLearners)
	ctx, cancel = reqCtx()
	_, err = cli.MemberPromote(ctx, m4.id)
	cancel()
	wantRPCError(t, "promote of a learner that has not started", err, rpctypes.ErrGRPCLearnerNotReady)

	c.members = append(c.members, m4)
	c.spawn(m4)
	c.waitReady(m4)
	l4 := c.client(m4)
	// A learner serves Status and serializable reads only.
	ctx, cancel = reqCtx()
	_, err = l4.Put(ctx, "x", "y")
	cancel()
	wantRPCError(t, "put on a learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	ctx, cancel = reqCtx()
	_, err = l4.Get(ctx, "x")
	cancel()
	wantRPCError(t, "linearizable get on a learner", err, rpctypes.ErrGRPCNotSupportedForLearner)
	ctx, cancel = reqCtx()
	st, err := l4.Status(ctx, m4.clientURL)
	cancel()
	if err != nil || !st.IsLearner || st.Header.MemberId != m4.id {
		t.Fatalf("learner status: %+v %v", st, err)
	}

	// Promote once caught up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel = reqCtx()
		_, err = cli.MemberPromote(ctx, m4.id)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) && !strings.Contains(err.Error(), "in sync with leader") || time.Now().After(deadline) {
			t.Fatalf("member promote: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel = reqCtx()
	_, err = cli.MemberPromote(ctx, m4.id)
	cancel()
	wantRPCError(t, "promote of a member already promoted", err, rpctypes.ErrGRPCMemberNotLearner)
	for _, m := range c.members {
		list := memberListOf(t, c, m)
		if len(list.Members) != 4 {
			t.Fatalf("%s lists %d members after the promotion, want 4", m.name, len(list.Members))
		}
		for _, mm := range list.Members {
			if mm.IsLearner {
				t.Fatalf("%s still lists %x as a learner", m.name, mm.ID)
			}
		}
	}
	// Within a few heartbeats the new voter publishes its name and serves.
	waitFor(t, 10*time.Second, "m4 to publish its name", func() bool {
		for _, mm := range memberListOf(t, c, leader).Members {
			if mm.ID == m4.id {
				return mm.Name == "m4" && len(mm.ClientURLs) == 1 && mm.ClientURLs[0] == m4.clientURL
			}
		}
		return false
	})
	ctx, cancel = reqCtx()
	_, err = l4.Put(ctx, prefix+"via-m4", prefix+"via-m4")
	cancel()
	if err != nil {
		t.Fatalf("put through the promoted member: %v", err)
	}

	// Remove an original follower under load: it stops.
	leader = c.waitLeader(10*time.Second, c.members...)
	victim := c.others(leader)[0]
	if victim == m4 {
		victim = c.others(leader)[1]
	}
	via := c.others(leader, victim)[0]
	vcli := c.client(via)
	ctx, cancel = reqCtx()
	rm, err := vcli.MemberRemove(ctx, victim.id)
	cancel()
	if err != nil {
		t.Fatalf("member remove %s: %v", victim.name, err)
	}
	if len(rm.Members) != 3 {
		t.Fatalf("member remove answered %d members, want 3", len(rm.Members))
	}
	c.waitExit(victim, 10*time.Second, "permanently removed")
	c.members = c.others(victim)

	// Remove the leader: it hands leadership over and stops.
	leader = c.waitLeader(10*time.Second, c.members...)
	via = c.others(leader)[0]
	vcli = c.client(via)
	ctx, cancel = reqCtx()
	_, err = vcli.MemberRemove(ctx, leader.id)
	cancel()
	if err != nil {
		t.Fatalf("member remove of the leader %s: %v", leader.name, err)
	}
	c.waitExit(leader, 10*time.Second, "permanently removed")
	c.members = c.others(leader)
	c.waitNewLeader(10*time.Second, leader, c.members...)

	time.Sleep(300 * time.Millisecond)
	load := stopLoad()
	rev, _ := c.waitConverged(15*time.Second, prefix, c.members...)
	for _, m := range c.members {
		if got := len(memberListOf(t, c, m).Members); got != 2 {
			t.Errorf("%s lists %d members at the end, want 2", m.name, got)
		}
	}
	load.mu.Lock()
	acked := load.acked
	load.mu.Unlock()
	acked[prefix+"via-m4"] = 0
	delete(acked, prefix+"via-m4")
	t.Logf("%d puts acknowledged during the membership changes; errors: %s", len(acked), load.errSummary())
	if len(acked) == 0 {
		t.Fatal("no put was acknowledged")
	}
	c.checkAckedSubset(prefix, acked, c.members...)
	c.checkHashKV(rev, c.members...)
}

// waitExit waits until m's process exits with a log line containing want.
func (c *testCluster) waitExit(m *clusterMember, timeout time.Duration, want string) {
	c.t.Helper()
	m.mu.Lock()
	exited, log := m.exited, m.logs[len(m.logs)-1]
	m.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		c.t.Fatalf("%s did not exit within %v", m.name, timeout)
	}
	if !strings.Contains(log.String(), want) {
		c.t.Fatalf("%s exited without logging %q:\n%s", m.name, want, tailLines(log.String(), 20))
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
}

// checkAckedSubset checks that every acknowledged put is present at its
// acknowledged revision on every member in ms.
func (c *testCluster) checkAckedSubset(prefix string, acked map[string]int64, ms ...*clusterMember) {
	c.t.Helper()
	for _, m := range ms {
		cli := c.client(m)
		ctx, cancel := reqCtx()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		cli.Close()
		if err != nil {
			c.t.Errorf("%s: get %s*: %v", m.name, prefix, err)
			continue
		}
		got := map[string]int64{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = kv.ModRevision
		}
		missing := 0
		for k, rev := range acked {
			if got[k] != rev {
				if missing++; missing <= 5 {
					c.t.Errorf("%s: acknowledged put %s at revision %d: found at %d", m.name, k, rev, got[k])
				}
			}
		}
		if missing > 0 {
			c.t.Errorf("%s: %d of %d acknowledged puts missing or moved", m.name, missing, len(acked))
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
