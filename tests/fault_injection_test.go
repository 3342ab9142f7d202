package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tests of the member's fault-injection endpoints (--fault-injection) and of
// what the member does under each fault: the supervisor restarts it after
// an actor kill; an fdatasync error stops the process; link faults cut or
// degrade peer traffic until cleared.

// faultPost POSTs to m's fault endpoint path?query and returns the status
// code and body.
func faultPost(t *testing.T, m *clusterMember, path string, query url.Values) (int, string) {
	t.Helper()
	u := m.clientURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := http.Post(u, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// mustFault POSTs a fault and fails the test unless it is accepted.
func mustFault(t *testing.T, m *clusterMember, path string, query url.Values) {
	t.Helper()
	if code, body := faultPost(t, m, path, query); code != http.StatusOK || body != "ok" {
		t.Fatalf("%s %s %v: %d %q", m.name, path, query, code, body)
	}
}

// peerAddr is m's peer (remoting) host:port, the source a link fault names.
func peerAddr(m *clusterMember) string { return strings.TrimPrefix(m.peerURL, "http://") }

// memberLog returns the log of m's current incarnation.
func memberLog(m *clusterMember) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs[len(m.logs)-1].String()
}

// waitLogCount waits until m's current log holds at least n occurrences of
// s.
func waitLogCount(t *testing.T, m *clusterMember, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(memberLog(m), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d x %q not logged within %v (%d so far)", m.name, n, s, timeout, strings.Count(memberLog(m), s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putKeys puts n keys prefix/i through cli and returns their values.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, from, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := from; i < from+n; i++ {
		k, v := fmt.Sprintf("%s/%04d", prefix, i), fmt.Sprintf("v%d", i)
		ctx, cancel := reqCtx()
		_, err := cli.Put(ctx, k, v)
		cancel()
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		want[k] = v
	}
	return want
}

// checkKeys reads prefix linearizably through cli (retrying for up to 10 s
// while the member is not serving) and fails unless it holds exactly want.
func checkKeys(t *testing.T, cli *clientv3.Client, prefix string, want map[string]string) {
	t.Helper()
	checkKeysMaybe(t, cli, prefix, want, nil)
}

// checkKeysMaybe is checkKeys where the keys of maybe (writes whose
// outcome the client does not know) may be present too.
func checkKeysMaybe(t *testing.T, cli *clientv3.Client, prefix string, want, maybe map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := reqCtx()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			got := map[string]string{}
			for _, kv := range resp.Kvs {
				got[string(kv.Key)] = string(kv.Value)
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("key %s = %q, want %q (acknowledged)", k, got[k], v)
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok && (maybe == nil || maybe[k] != v) {
					t.Fatalf("key %s = %q was never written (or its write failed definitely)", k, v)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("get %s: %v", prefix, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFaultEndpointsNeedTheFlag(t *testing.T) {
	c := startCluster(t, 1)
	code, _ := faultPost(t, c.members[0], "/debug/fault/kill", url.Values{"actor": {"raft"}, "how": {"panic"}})
	if code != http.StatusNotFound {
		t.Fatalf("fault endpoint without --fault-injection: status %d, want 404", code)
	}
	code, _ = faultPost(t, c.members[0], "/debug/fault/fsync", nil)
	if code != http.StatusNotFound {
		t.Fatalf("fsync fault without --fault-injection: status %d, want 404", code)
	}
}

func TestFaultEndpointsRefuseBadParameters(t *testing.T) {
	c := startCluster(t, 1, "--fault-injection")
	m := c.members[0]
	for _, tc := range []struct {
		path  string
		query url.Values
		want  string
	}{
		{"/debug/fault/kill", url.Values{"actor": {"nope"}, "how": {"panic"}}, `no actor "nope"`},
		{"/debug/fault/kill", url.Values{"actor": {"raft"}, "how": {"restart"}}, "how must be stop, poison, panic or loglost"},
		{"/debug/fault/net", url.Values{"drop": {"0.5"}}, "from=HOST:PORT is required"},
		{"/debug/fault/net", url.Values{"from": {"127.0.0.1:1"}, "drop": {"1.5"}}, "probabilities must be within 0..1"},
		{"/debug/fault/net", url.Values{"from": {"127.0.0.1:1"}, "duplicate": {"x"}}, `duplicate="x": not a number`},
		{"/debug/fault/net", url.Values{"from": {"127.0.0.1:1"}, "delay": {"-1s"}}, "negative delay"},
		{"/debug/fault/net", url.Values{"from": {"127.0.0.1:1"}, "delay": {"soon"}}, `delay="soon"`},
		{"/debug/fault/net", url.Values{"from": {"127.0.0.1:1"}, "blackhole": {"maybe"}}, "not a boolean"},
	} {
		code, body := faultPost(t, m, tc.path, tc.query)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s %v: %d %q, want 400 with %q", tc.path, tc.query, code, body, tc.want)
		}
	}
	// Nothing was injected: the member serves and no rule is listed.
	resp, err := http.Get(m.clientURL + "/debug/fault/net")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "" {
		t.Errorf("rules after refused requests: %q", b)
	}
	cli := c.client(m)
	checkKeys(t, cli, "/k", putKeys(t, cli, "/k", 0, 3))
	if strings.Contains(memberLog(m), "fault injected") {
		t.Errorf("a refused request was logged as injected")
	}
}

// TestSupervisorRestartsKilledActors kills every actor of the members of a
// 3-member cluster in turn, each way (stop, poison, panic): each kill
// fail-stops the member's actors and its supervisor restarts it in the
// same process from its data dir; it then serves every acknowledged write
// and new ones, and the cluster converges.
func TestSupervisorRestartsKilledActors(t *testing.T) {
	c := startCluster(t, 3, "--fault-injection")
	cli := c.client(c.members...)
	want := putKeys(t, cli, "/sv", 0, 50)
	actorNames := []string{"raft", "wal", "applier", "gateway", "snap", "lessor", "watchhub-0", "watchhub-1", "watchhub-2", "watchhub-3"}
	hows := []string{"stop", "poison", "panic"}
	restarts := map[*clusterMember]int{}
	for i, name := range actorNames {
		m := c.members[i%len(c.members)]
		how := hows[i%len(hows)]
		mustFault(t, m, "/debug/fault/kill", url.Values{"actor": {name}, "how": {how}})
		restarts[m]++
		waitLogCount(t, m, "supervisor: restarting the member from its data dir", restarts[m], 10*time.Second)
		waitLogCount(t, m, clusterReadyMsg, restarts[m]+1, 10*time.Second)
		select {
		case <-m.exited:
			t.Fatalf("%s exited after %s %s", m.name, how, name)
		default:
		}
		mcli := c.client(m)
		for k, v := range putKeys(t, mcli, fmt.Sprintf("/sv-after-%s-%s", name, how), 0, 2) {
			want[k] = v
		}
		checkKeys(t, mcli, "/sv", want)
		mcli.Close()
	}
	rev, _ := c.waitConverged(15*time.Second, "/sv", c.members...)
	c.checkHashKV(rev, c.members...)
}

// TestSupervisorGivesUp: a member whose actors keep failing is restarted
// MaxRestarts times within a minute, then its process exits non-zero.
func TestSupervisorGivesUp(t *testing.T) {
	c := startCluster(t, 1, "--fault-injection")
	m := c.members[0]
	for i := 1; i <= 5; i++ {
		mustFault(t, m, "/debug/fault/kill", url.Values{"actor": {"raft"}, "how": {"panic"}})
		waitLogCount(t, m, clusterReadyMsg, i+1, 10*time.Second)
	}
	mustFault(t, m, "/debug/fault/kill", url.Values{"actor": {"raft"}, "how": {"panic"}})
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("member still running after a 6th failure within a minute")
	}
	if m.cmd.ProcessState.ExitCode() == 0 {
		t.Fatal("member exited 0 after giving up")
	}
	if !strings.Contains(memberLog(m), "member keeps failing; not restarting it again") {
		t.Fatal("giving up was not logged")
	}
}

// TestFsyncFaultStopsMember: a failed WAL fdatasync stops the member's
// process (non-zero exit, no supervisor restart: after a failed fdatasync
// the member cannot know what reached the disk); restarted by the
// operator, it recovers from disk and catches up, and no acknowledged write
// is lost.
func TestFsyncFaultStopsMember(t *testing.T) {
	c := startCluster(t, 3, "--fault-injection")
	cli := c.client(c.members...)
	want := putKeys(t, cli, "/fs", 0, 20)
	maybe := map[string]string{}
	leader := c.waitLeader(10*time.Second, c.members...)
	for _, victim := range []*clusterMember{c.others(leader)[0], leader} {
		mustFault(t, victim, "/debug/fault/fsync", nil)
		// Writes make every member sync its WAL; the victim's sync fails.
		// Puts may fail while the victim is the leader.
		for i := 0; i < 20; i++ {
			k, v := fmt.Sprintf("/fs/%s-%02d", victim.name, i), "x"
			ctx, cancel := reqCtx()
			if _, err := cli.Put(ctx, k, v); err == nil {
				want[k] = v
			} else {
				maybe[k] = v
			}
			cancel()
		}
		select {
		case <-victim.exited:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s still running 15 s after its fdatasync failed", victim.name)
		}
		log := memberLog(victim)
		if victim.cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("%s exited 0 after a failed fdatasync", victim.name)
		}
		if !strings.Contains(log, "fdatasync") || !strings.Contains(log, "injected fault") {
			t.Fatalf("%s: the failed fdatasync is not in its log:\n%s", victim.name, tailLines(log, 30))
		}
		if strings.Contains(log, "supervisor: restarting") {
			t.Fatalf("%s: the supervisor restarted the member after a failed fdatasync", victim.name)
		}
		victim.mu.Lock()
		victim.cmd = nil
		victim.mu.Unlock()
		c.restart(victim)
		c.waitLeader(15*time.Second, c.members...)
		checkKeysMaybe(t, c.client(victim), "/fs", want, maybe)
	}
	rev, _ := c.waitConverged(15*time.Second, "/fs", c.members...)
	c.checkHashKV(rev, c.members...)
}

// TestLinkFaults: blackholing every link of the leader (both ways) isolates
// it: the others elect a new leader and accept writes, the isolated one
// cannot answer a linearizable read; a one-way fault (the followers do not
// hear the leader) forces an election too; lossy links (drops, delays,
// duplicated Raft messages) slow the cluster but lose nothing; once cleared
// the cluster converges.
func TestLinkFaults(t *testing.T) {
	c := startCluster(t, 3, "--fault-injection")
	cli := c.client(c.members...)
	want := putKeys(t, cli, "/lf", 0, 10)

	isolate := func(x *clusterMember, oneWay bool) {
		for _, o := range c.others(x) {
			mustFault(t, o, "/debug/fault/net", url.Values{"from": {peerAddr(x)}, "blackhole": {"true"}})
			if !oneWay {
				mustFault(t, x, "/debug/fault/net", url.Values{"from": {peerAddr(o)}, "blackhole": {"true"}})
			}
		}
	}
	healAll := func() {
		for _, m := range c.members {
			mustFault(t, m, "/debug/fault/net/clear", nil)
		}
	}

	old := c.waitLeader(10*time.Second, c.members...)
	isolate(old, false)
	rest := c.others(old)
	next := c.waitNewLeader(15*time.Second, old, rest...)
	for k, v := range putKeys(t, c.client(rest...), "/lf", 100, 10) {
		want[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.client(old).Get(ctx, "/lf", clientv3.WithPrefix())
	cancel()
	if err == nil {
		t.Fatalf("isolated old leader %s answered a linearizable read", old.name)
	}
	healAll()
	c.waitLeader(15*time.Second, c.members...)
	checkKeys(t, c.client(old), "/lf", want)

	// One way: the followers stop hearing the leader (its heartbeats), the
	// leader still hears them.
	lead := c.waitLeader(10*time.Second, c.members...)
	isolate(lead, true)
	c.waitNewLeader(15*time.Second, lead, c.others(lead)...)
	healAll()
	c.waitLeader(15*time.Second, c.members...)

	// Lossy, slow, duplicating links between every pair.
	for _, m := range c.members {
		for _, o := range c.others(m) {
			mustFault(t, m, "/debug/fault/net", url.Values{"from": {peerAddr(o)}, "drop": {"0.2"}, "delay": {"5ms"}, "duplicate": {"0.3"}})
		}
	}
	maybe := map[string]string{}
	for i := 0; i < 30; i++ {
		k, v := fmt.Sprintf("/lf/lossy-%02d", i), fmt.Sprint(i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, k, v)
		cancel()
		if err == nil {
			want[k] = v
		} else {
			maybe[k] = v
		}
	}
	healAll()
	c.waitLeader(15*time.Second, c.members...)
	checkKeysMaybe(t, cli, "/lf", want, maybe)
	rev, _ := c.waitConverged(15*time.Second, "/lf", c.members...)
	c.checkHashKV(rev, c.members...)
	_ = next
}
