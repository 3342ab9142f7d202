package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/aetcd/aetcd/cluster"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// In-process cluster tests run every member in this test process, in one
// protoactor actor system without remoting (bootstrap.InProcess): members
// address each other's actors as local PIDs under per-member prefixes.
// Each member has its own data dir, WAL, backend and client listener; tests
// drive them with clientv3 and kill single actors with Member.KillActor.

// ipMember is one member of an in-process cluster: its fixed identity and
// its current incarnation (nil while stopped).
type ipMember struct {
	name   string
	prefix string
	id     uint64
	cfg    bootstrap.Config
	m      *bootstrap.Member
	logs   []*syncBuffer // one per incarnation, oldest first
}

// addr is the client address of the current incarnation.
func (im *ipMember) addr() string { return im.m.ClientAddrs()[0] }

// ipCluster is an in-process cluster; members stop and the shared actor
// system shuts down when the test ends.
type ipCluster struct {
	t       *testing.T
	system  *actor.ActorSystem
	members []*ipMember
}

// startInProcessCluster starts n members sharing one actor system and waits
// until they agree on a leader. Each tweak changes every member's validated
// configuration.
func startInProcessCluster(t *testing.T, n int, tweaks ...func(*bootstrap.Config)) *ipCluster {
	t.Helper()
	c := &ipCluster{t: t}
	sysLog := zerolog.Nop()
	if testing.Verbose() {
		sysLog = bootstrap.NewLogger(os.Stderr, "warn")
	}
	c.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(bootstrap.SlogHandler(sysLog, slog.LevelWarn))
	}))
	// The peer URLs name members and derive their IDs; nothing listens
	// on them.
	var parts []string
	peers := map[string]string{}
	for i := 1; i <= n; i++ {
		hp := fmt.Sprintf("127.0.0.1:%d", 2380+i)
		im := &ipMember{name: fmt.Sprintf("m%d", i), prefix: fmt.Sprintf("m%d", i)}
		parts = append(parts, im.name+"=http://"+hp)
		peers[hp] = im.prefix
		c.members = append(c.members, im)
	}
	for i, im := range c.members {
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", 2381+i)
		cfg, _, err := bootstrap.ParseFlags([]string{
			"--name", im.name, "--data-dir", t.TempDir(),
			"--listen-client-urls", "http://127.0.0.1:0", "--advertise-client-urls", "http://127.0.0.1:0",
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", strings.Join(parts, ","), "--initial-cluster-token", clusterToken,
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		others := map[string]string{}
		for hp, prefix := range peers {
			if prefix != im.prefix {
				others[hp] = prefix
			}
		}
		for _, tweak := range tweaks {
			tweak(&cfg)
		}
		cfg.InProcess = &bootstrap.InProcess{System: c.system, Prefix: im.prefix, Peers: others}
		im.cfg, im.id = cfg, cluster.MemberID(cfg.InitialAdvertisePeerURLs, clusterToken)
	}
	// Cleanups run last-in first-out: members stop, the system shuts
	// down, then logs are printed if the test failed.
	t.Cleanup(c.dumpLogsIfFailed)
	t.Cleanup(c.system.Shutdown)
	t.Cleanup(c.stopAll)
	for _, im := range c.members {
		c.start(im)
	}
	c.waitLeader(10*time.Second, nil, c.members...)
	return c
}

// start starts a new incarnation of im on its data dir.
func (c *ipCluster) start(im *ipMember) {
	c.t.Helper()
	if im.m != nil {
		c.t.Fatalf("%s: started while running", im.name)
	}
	log := &syncBuffer{}
	im.logs = append(im.logs, log)
	m, err := bootstrap.Start(im.cfg, bootstrap.NewLogger(log, "info"))
	if err != nil {
		c.t.Fatalf("%s: start: %v", im.name, err)
	}
	im.m = m
}

func (c *ipCluster) stopAll() {
	for _, im := range c.members {
		if im.m == nil {
			continue
		}
		failed := im.m.Err() != nil // a fatal error stopped it already
		if err := im.m.Stop(); err != nil && !failed {
			c.t.Errorf("%s: stop: %v", im.name, err)
		}
	}
}

func (c *ipCluster) dumpLogsIfFailed() {
	if !c.t.Failed() {
		return
	}
	for _, im := range c.members {
		for i, l := range im.logs {
			c.t.Logf("---- %s (id %x, prefix %s) log, incarnation %d ----\n%s", im.name, im.id, im.prefix, i+1, tailLines(l.String(), 200))
		}
	}
}

// byID returns the member with ID id, or nil.
func (c *ipCluster) byID(id uint64) *ipMember {
	for _, im := range c.members {
		if im.id == id {
			return im
		}
	}
	return nil
}

// others returns the members other than except.
func (c *ipCluster) others(except *ipMember) []*ipMember {
	var out []*ipMember
	for _, im := range c.members {
		if im != except {
			out = append(out, im)
		}
	}
	return out
}

// client returns a client of the current incarnations of ms, closed when
// the test ends.
func (c *ipCluster) client(ms ...*ipMember) *clientv3.Client {
	c.t.Helper()
	var addrs []string
	for _, im := range ms {
		addrs = append(addrs, im.addr())
	}
	return newClient(c.t, addrs...)
}

// waitLeader waits until every member in ms reports the same non-zero
// leader other than old, and returns it.
func (c *ipCluster) waitLeader(timeout time.Duration, old *ipMember, ms ...*ipMember) *ipMember {
	c.t.Helper()
	cli := c.client(ms...)
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		var views []string
		var lead uint64
		agree := true
		for i, im := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			st, err := cli.Status(ctx, im.addr())
			cancel()
			if err != nil {
				views = append(views, fmt.Sprintf("%s: %v", im.name, err))
				agree = false
				continue
			}
			views = append(views, fmt.Sprintf("%s: leader %x term %d", im.name, st.Leader, st.RaftTerm))
			if st.Leader == 0 || (i > 0 && st.Leader != lead) {
				agree = false
			}
			lead = st.Leader
		}
		if leader := c.byID(lead); agree && leader != nil && leader != old {
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no agreed new leader within %v: %s", timeout, strings.Join(views, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ipEndpoints is how the convergence checks address ms.
func ipEndpoints(ms []*ipMember) []endpoint {
	out := make([]endpoint, len(ms))
	for i, im := range ms {
		out[i] = endpoint{name: im.name, addr: im.addr(), id: im.id}
	}
	return out
}

// waitConverged waits until every member in ms serves the same revision and
// keys, values and mod_revisions under prefix, and returns the revision.
func (c *ipCluster) waitConverged(timeout time.Duration, prefix string, ms ...*ipMember) int64 {
	c.t.Helper()
	rev, _ := waitConvergedAt(c.t, timeout, prefix, ipEndpoints(ms))
	return rev
}

// checkHashKV compares HashKV at revision rev on every member in ms.
func (c *ipCluster) checkHashKV(rev int64, ms ...*ipMember) {
	c.t.Helper()
	checkHashKVAt(c.t, rev, ipEndpoints(ms))
}
