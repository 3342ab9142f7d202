package tests

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aetcd/aetcd/cluster"
	"github.com/aetcd/aetcd/tests/chaos"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cluster tests run three aetcd child processes on loopback with etcd's own
// flags, peers and aetcdctl on each member's peer URL (no
// --listen-remoting-addr), and drive them with clientv3.

const (
	clusterToken    = "tok"
	clusterReadyMsg = "ready to serve client requests"
	// clusterStartTimeout bounds how long a member may take to serve.
	clusterStartTimeout = 15 * time.Second
	// reqTimeout bounds every single client request of the cluster tests.
	reqTimeout = 3 * time.Second
)

// clusterMember is one member of a test cluster: its fixed identity (name,
// data dir, ports) and its current process, if any.
type clusterMember struct {
	name      string
	dir       string
	clientURL string
	peerURL   string
	id        uint64 // derived from the peer URL and token, as etcd does
	// joinCluster, if set, is the --initial-cluster of a member added to
	// the running cluster (started with --initial-cluster-state existing);
	// its id is the one member add assigned.
	joinCluster string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   []*syncBuffer // one per incarnation, oldest first
}

// testCluster is a cluster of child processes, killed when the test ends.
type testCluster struct {
	t       *testing.T
	members []*clusterMember
	initial string // --initial-cluster
	cid     uint64 // expected cluster ID
	extra   []string
}

// startCluster starts n members at once (they must find each other), waits
// until each serves and until they agree on a leader.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, extra: extra}
	var parts []string
	var ids []uint64
	for i := 1; i <= n; i++ {
		cp, pp := freePort(t), freePort(t)
		m := &clusterMember{
			name:      fmt.Sprintf("m%d", i),
			dir:       t.TempDir(),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
		}
		m.id = cluster.MemberID([]string{m.peerURL}, clusterToken)
		ids = append(ids, m.id)
		parts = append(parts, m.name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	c.initial = strings.Join(parts, ",")
	c.cid = cluster.ClusterID(ids)
	// Cleanups run last-in first-out: processes are killed first, then,
	// if the test failed, their complete logs are printed.
	t.Cleanup(c.dumpLogsIfFailed)
	t.Cleanup(c.killAll)
	for _, m := range c.members {
		c.spawn(m)
	}
	for _, m := range c.members {
		c.waitReady(m)
	}
	c.waitLeader(10*time.Second, c.members...)
	return c
}

func (c *testCluster) args(m *clusterMember) []string {
	initial, state := c.initial, "new"
	if m.joinCluster != "" {
		initial, state = m.joinCluster, "existing"
	}
	return append([]string{
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initial, "--initial-cluster-token", clusterToken,
		"--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500",
	}, c.extra...)
}

// newJoiner returns a member (not yet added, not started) on fresh ports
// that joins the members in ms: its --initial-cluster names them and itself.
func (c *testCluster) newJoiner(name string, ms ...*clusterMember) *clusterMember {
	m := &clusterMember{
		name:      name,
		dir:       c.t.TempDir(),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(c.t)),
	}
	parts := []string{m.name + "=" + m.peerURL}
	for _, o := range ms {
		parts = append(parts, o.name+"="+o.peerURL)
	}
	m.joinCluster = strings.Join(parts, ",")
	return m
}

// spawn starts m's process (a new incarnation) without waiting for it.
func (c *testCluster) spawn(m *clusterMember) {
	c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		c.t.Fatalf("%s: started while running", m.name)
	}
	log := &syncBuffer{}
	cmd := exec.Command(aetcdBin, c.args(m)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("%s: %v", m.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.cmd, m.exited = cmd, exited
	m.logs = append(m.logs, log)
}

// waitReady waits until m's current incarnation logs that it serves.
func (c *testCluster) waitReady(m *clusterMember) {
	c.t.Helper()
	m.mu.Lock()
	log, exited := m.logs[len(m.logs)-1], m.exited
	m.mu.Unlock()
	deadline := time.After(clusterStartTimeout)
	for !strings.Contains(log.String(), clusterReadyMsg) {
		select {
		case <-exited:
			c.t.Fatalf("%s exited before serving:\n%s", m.name, log.String())
		case <-deadline:
			c.t.Fatalf("%s did not serve within %v", m.name, clusterStartTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restart starts m again on its data dir with the same flags and waits
// until it serves.
func (c *testCluster) restart(m *clusterMember) {
	c.t.Helper()
	c.spawn(m)
	c.waitReady(m)
}

// kill9 SIGKILLs m and waits for the process to be gone.
func (c *testCluster) kill9(m *clusterMember) {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// signal sends sig (SIGSTOP, SIGCONT) to m's process.
func (c *testCluster) signal(m *clusterMember, sig syscall.Signal) {
	c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		c.t.Fatalf("%s: %v to a member that is not running", m.name, sig)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("%s: %v: %v", m.name, sig, err)
	}
	if sig == syscall.SIGSTOP {
		// kill(2) returns before the process stops: the stop begins when
		// one thread takes the signal, and until then (milliseconds on a
		// busy machine) the other threads keep serving.
		if err := chaos.WaitStopped(m.cmd.Process.Pid, 2*time.Second); err != nil {
			c.t.Fatalf("%s: %v", m.name, err)
		}
	}
}

func (c *testCluster) killAll() {
	for _, m := range c.members {
		c.kill9(m) // SIGKILL also ends a SIGSTOPped process
	}
}

// dumpLogsIfFailed prints every incarnation's log of every member when the
// test failed.
func (c *testCluster) dumpLogsIfFailed() {
	if !c.t.Failed() {
		return
	}
	for _, m := range c.members {
		m.mu.Lock()
		logs := append([]*syncBuffer(nil), m.logs...)
		m.mu.Unlock()
		for i, l := range logs {
			c.t.Logf("---- %s (id %x, client %s, peer %s) log, incarnation %d ----\n%s", m.name, m.id, m.clientURL, m.peerURL, i+1, tailLines(l.String(), 200))
		}
	}
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[... %d earlier lines ...]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

// byID returns the member with ID id, or nil.
func (c *testCluster) byID(id uint64) *clusterMember {
	for _, m := range c.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

// others returns the members other than except.
func (c *testCluster) others(except ...*clusterMember) []*clusterMember {
	var out []*clusterMember
next:
	for _, m := range c.members {
		for _, e := range except {
			if m == e {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func clientURLs(ms []*clusterMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.clientURL)
	}
	return out
}

// client returns a clientv3 client of members ms (in that order), closed when
// the test ends.
func (c *testCluster) client(ms ...*clusterMember) *clientv3.Client {
	c.t.Helper()
	return newClient(c.t, clientURLs(ms)...)
}

// leaderOf asks each member in ms for its Status and returns the leader they
// all agree on (with the term), or an error describing the disagreement.
func (c *testCluster) leaderOf(cli *clientv3.Client, ms []*clusterMember, timeout time.Duration) (leader *clusterMember, term uint64, err error) {
	var views []string
	var lead uint64
	agree := true
	for i, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, e := cli.Status(ctx, m.clientURL)
		cancel()
		if e != nil {
			views = append(views, fmt.Sprintf("%s: %v", m.name, e))
			agree = false
			continue
		}
		views = append(views, fmt.Sprintf("%s: leader %x term %d", m.name, st.Leader, st.RaftTerm))
		if st.Leader == 0 || (i > 0 && st.Leader != lead) {
			agree = false
		}
		lead = st.Leader
		if st.RaftTerm > term {
			term = st.RaftTerm
		}
	}
	if !agree {
		return nil, 0, fmt.Errorf("no agreed leader: %s", strings.Join(views, "; "))
	}
	if leader = c.byID(lead); leader == nil {
		return nil, 0, fmt.Errorf("leader %x is not a member: %s", lead, strings.Join(views, "; "))
	}
	return leader, term, nil
}

// waitLeader waits until every member in ms reports the same, non-zero
// leader, and returns it.
func (c *testCluster) waitLeader(timeout time.Duration, ms ...*clusterMember) *clusterMember {
	c.t.Helper()
	return c.waitNewLeader(timeout, nil, ms...)
}

// waitNewLeader waits until every member in ms reports the same, non-zero
// leader other than old, and returns it.
func (c *testCluster) waitNewLeader(timeout time.Duration, old *clusterMember, ms ...*clusterMember) *clusterMember {
	c.t.Helper()
	cli := c.client(ms...)
	deadline := time.Now().Add(timeout)
	for {
		leader, _, err := c.leaderOf(cli, ms, 500*time.Millisecond)
		if err == nil && leader == old {
			err = fmt.Errorf("they still follow %s", old.name)
		}
		if err == nil {
			cli.Close()
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members %s did not agree on a leader within %v: %v", names(ms), timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func names(ms []*clusterMember) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return strings.Join(out, ",")
}

// reqCtx is a context for one client request.
func reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), reqTimeout)
}

// endpoints is how the convergence checks address ms.
func endpoints(ms []*clusterMember) []endpoint {
	out := make([]endpoint, len(ms))
	for i, m := range ms {
		out[i] = endpoint{name: m.name, addr: m.clientURL, id: m.id}
	}
	return out
}

// waitConverged waits until every member in ms serves the same revision and
// keys under prefix (waitConvergedAt), and returns them.
func (c *testCluster) waitConverged(timeout time.Duration, prefix string, ms ...*clusterMember) (int64, map[string]int64) {
	c.t.Helper()
	return waitConvergedAt(c.t, timeout, prefix, endpoints(ms))
}

// checkHashKV compares HashKV at revision rev on every member in ms.
func (c *testCluster) checkHashKV(rev int64, ms ...*clusterMember) {
	c.t.Helper()
	checkHashKVAt(c.t, rev, endpoints(ms))
}
