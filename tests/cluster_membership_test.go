package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	// Each member lists four voters once it has applied the promotion (the
	// promoted member itself serves Cluster requests only from then on).
	for _, m := range c.members {
		waitFor(t, 10*time.Second, m.name+" to list four voters", func() bool {
			cli := c.client(m)
			defer cli.Close()
			ctx, cancel := reqCtx()
			defer cancel()
			list, err := cli.MemberList(ctx)
			if err != nil || len(list.Members) != 4 {
				return false
			}
			for _, mm := range list.Members {
				if mm.IsLearner {
					return false
				}
			}
			return true
		})
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
	viaM4, err := l4.Put(ctx, prefix+"via-m4", prefix+"via-m4")
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
	// Restarted on its data dir, a removed member stops again.
	c.spawn(victim)
	c.waitExit(victim, 10*time.Second, "permanently removed")

	// The added member restarts (same flags, IDs from its data dir) and
	// catches up.
	c.kill9(m4)
	c.restart(m4)

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
	acked[prefix+"via-m4"] = viaM4.Header.Revision
	t.Logf("%d puts acknowledged during the membership changes; errors: %s", len(acked), load.errSummary())
	if len(acked) == 0 {
		t.Fatal("no put was acknowledged")
	}
	c.checkAcked(prefix, acked, c.members...)
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

// TestEtcdctlMembership drives membership changes with etcdctl 3.6.6 and
// checks what it prints: member add --learner, starting the new member
// with the environment etcdctl printed, member list, promote, endpoint
// status --cluster, update and remove.
func TestEtcdctlMembership(t *testing.T) {
	if os.Getenv("ETCDCTL") == "" {
		t.Skip("ETCDCTL is not set: build etcdctl 3.6.6 with shared/tools/etcd-reference.sh and point ETCDCTL at it")
	}
	c := startCluster(t, 3)
	addr := strings.TrimPrefix(c.members[0].clientURL, "http://")
	run := func(args ...string) string {
		t.Helper()
		out, err := etcdctl(t, addr, "", args...)
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	m4 := c.newJoiner("m4", c.members...)
	out := run("member", "add", "m4", "--peer-urls="+m4.peerURL, "--learner")
	var id, cid uint64
	if _, err := fmt.Sscanf(out, "Member %x added as learner to cluster %x", &id, &cid); err != nil || cid != c.cid {
		t.Fatalf("member add printed:\n%s", out)
	}
	m4.id = id
	for _, want := range []string{`ETCD_NAME="m4"`, `ETCD_INITIAL_ADVERTISE_PEER_URLS="` + m4.peerURL + `"`, `ETCD_INITIAL_CLUSTER_STATE="existing"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("member add output lacks %s:\n%s", want, out)
		}
	}
	// The printed ETCD_INITIAL_CLUSTER is what the new member starts with.
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "ETCD_INITIAL_CLUSTER="); ok {
			m4.joinCluster = strings.Trim(v, `"`)
		}
	}
	c.members = append(c.members, m4)
	c.spawn(m4)
	c.waitReady(m4)

	type listed struct {
		Members []struct {
			ID         uint64   `json:"ID"`
			Name       string   `json:"name"`
			PeerURLs   []string `json:"peerURLs"`
			ClientURLs []string `json:"clientURLs"`
			IsLearner  bool     `json:"isLearner"`
		} `json:"members"`
	}
	list := func() listed {
		t.Helper()
		var l listed
		if err := json.Unmarshal([]byte(run("member", "list", "-w", "json")), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	waitFor(t, 10*time.Second, "the learner to publish its name", func() bool {
		for _, m := range list().Members {
			if m.ID == id {
				return m.Name == "m4" && m.IsLearner && len(m.ClientURLs) == 1
			}
		}
		return false
	})
	var promoted string
	waitFor(t, 20*time.Second, "member promote to succeed", func() bool {
		o, err := etcdctl(t, addr, "", "member", "promote", fmt.Sprintf("%x", id))
		promoted = o
		return err == nil
	})
	if !strings.Contains(promoted, fmt.Sprintf("Member %16x promoted in cluster %16x", id, cid)) {
		t.Fatalf("member promote printed:\n%s", promoted)
	}
	if l := list(); len(l.Members) != 4 {
		t.Fatalf("member list after promote: %+v", l)
	}

	var statuses []struct {
		Endpoint string `json:"Endpoint"`
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
				RaftTerm uint64 `json:"raft_term"`
			} `json:"header"`
			Leader    uint64 `json:"leader"`
			RaftIndex uint64 `json:"raftIndex"`
			IsLearner bool   `json:"isLearner"`
		} `json:"Status"`
	}
	waitFor(t, 10*time.Second, "endpoint status --cluster to agree on one leader", func() bool {
		o, err := etcdctl(t, addr, "", "endpoint", "status", "--cluster", "-w", "json")
		if err != nil || json.Unmarshal([]byte(o), &statuses) != nil || len(statuses) != 4 {
			return false
		}
		leaders := 0
		for _, s := range statuses {
			if s.Status.Leader != statuses[0].Status.Leader || s.Status.IsLearner {
				return false
			}
			if s.Status.Leader == s.Status.Header.MemberID {
				leaders++
			}
		}
		return leaders == 1
	})

	out = run("member", "update", fmt.Sprintf("%x", id), "--peer-urls="+m4.peerURL)
	if !strings.Contains(out, fmt.Sprintf("Member %16x updated in cluster %16x", id, cid)) {
		t.Fatalf("member update printed:\n%s", out)
	}
	out = run("member", "remove", fmt.Sprintf("%x", id))
	if !strings.Contains(out, fmt.Sprintf("Member %16x removed from cluster %16x", id, cid)) {
		t.Fatalf("member remove printed:\n%s", out)
	}
	c.waitExit(m4, 10*time.Second, "permanently removed")
	c.members = c.others(m4)
	if l := list(); len(l.Members) != 3 {
		t.Fatalf("member list after remove: %+v", l)
	}
	if o, err := etcdctl(t, addr, "", "member", "remove", fmt.Sprintf("%x", id)); err == nil || !strings.Contains(o, "member not found") {
		t.Fatalf("removing a removed member: %v\n%s", err, o)
	}
}

// TestClusterStrictReconfiguration: with a member down for longer than the
// health interval (5 s), etcd's strict reconfiguration checks refuse to add
// a voter or remove a live voter ("unhealthy cluster"), but allow removing
// the member that is down. That member, restarted without having seen its
// removal, is told so by its peers and stops.
func TestClusterStrictReconfiguration(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader(10*time.Second, c.members...)
	down, live := c.others(leader)[0], c.others(leader)[1]
	c.kill9(down)
	time.Sleep(5500 * time.Millisecond)
	cli := c.client(leader, live)

	ctx, cancel := reqCtx()
	_, err := cli.MemberAdd(ctx, []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))})
	cancel()
	wantRPCError(t, "member add of a voter with a member down", err, rpctypes.ErrGRPCUnhealthy)
	ctx, cancel = reqCtx()
	_, err = cli.MemberRemove(ctx, live.id)
	cancel()
	wantRPCError(t, "member remove of a live voter with another down", err, rpctypes.ErrGRPCUnhealthy)
	// A learner does not count toward quorum: it may be added.
	ctx, cancel = reqCtx()
	_, err = cli.MemberAddAsLearner(ctx, []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))})
	cancel()
	if err != nil {
		t.Fatalf("member add --learner with a member down: %v", err)
	}

	ctx, cancel = reqCtx()
	_, err = cli.MemberRemove(ctx, down.id)
	cancel()
	if err != nil {
		t.Fatalf("member remove of the member that is down: %v", err)
	}
	c.spawn(down)
	c.waitExit(down, 15*time.Second, "permanently removed")
	c.members = c.others(down)
	if got := len(memberListOf(t, c, leader).Members); got != 3 {
		t.Fatalf("%d members listed, want 3 (two voters and the learner)", got)
	}
}
