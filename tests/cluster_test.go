package tests

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// headerChecker checks that response headers carry one cluster ID shared by
// every member (etcd's derivation of it from the member IDs) and the ID of
// the member that answered.
type headerChecker struct {
	t    *testing.T
	c    *testCluster
	seen map[uint64]string // cluster ID -> first response that carried it
}

func (h *headerChecker) check(what string, m *clusterMember, hdr *pb.ResponseHeader) {
	h.t.Helper()
	if hdr == nil {
		h.t.Errorf("%s on %s: nil response header", what, m.name)
		return
	}
	if hdr.MemberId != m.id {
		h.t.Errorf("%s on %s: header member_id %x, want the answering member's %x", what, m.name, hdr.MemberId, m.id)
	}
	if hdr.ClusterId == 0 {
		h.t.Errorf("%s on %s: header cluster_id 0", what, m.name)
	}
	if h.seen == nil {
		h.seen = map[uint64]string{}
	}
	if _, ok := h.seen[hdr.ClusterId]; !ok {
		h.seen[hdr.ClusterId] = fmt.Sprintf("%s on %s", what, m.name)
		if len(h.seen) > 1 {
			h.t.Errorf("members disagree on the cluster ID: %v", h.seen)
		}
		if hdr.ClusterId != h.c.cid {
			h.t.Errorf("%s on %s: cluster_id %x, want %x (etcd's derivation from the member IDs)", what, m.name, hdr.ClusterId, h.c.cid)
		}
	}
}

// TestClusterReplicates: a put through any member is visible through every
// other member by linearizable and (eventually) serializable reads at the
// same revisions; Status, MemberList and response headers agree.
func TestClusterReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	start := time.Now()
	c := startCluster(t, 3)
	t.Logf("cluster up with a leader in %v", time.Since(start).Round(time.Millisecond))
	h := &headerChecker{t: t, c: c}
	clis := map[*clusterMember]*clientv3.Client{}
	for _, m := range c.members {
		clis[m] = c.client(m)
	}

	// A put through each member, read linearizably through the others.
	want := map[string]int64{}
	for i, w := range c.members {
		key, val := fmt.Sprintf("k%d", i+1), fmt.Sprintf("v%d-via-%s", i+1, w.name)
		ctx, cancel := reqCtx()
		put, err := clis[w].Put(ctx, key, val)
		cancel()
		if err != nil {
			t.Fatalf("put %s via %s: %v", key, w.name, err)
		}
		h.check("put", w, put.Header)
		rev := put.Header.Revision
		if wantRev := int64(i + 2); rev != wantRev {
			t.Errorf("put %s via %s: revision %d, want %d (the cluster's write number %d)", key, w.name, rev, wantRev, i+1)
		}
		want[key] = rev
		for _, r := range c.others(w) {
			ctx, cancel := reqCtx()
			get, err := clis[r].Get(ctx, key)
			cancel()
			if err != nil {
				t.Errorf("linearizable get %s via %s after put via %s: %v", key, r.name, w.name, err)
				continue
			}
			h.check("linearizable get", r, get.Header)
			if len(get.Kvs) != 1 {
				t.Errorf("linearizable get %s via %s after put via %s at revision %d: %d kvs (header revision %d)", key, r.name, w.name, rev, len(get.Kvs), get.Header.Revision)
				continue
			}
			kv := get.Kvs[0]
			if string(kv.Value) != val || kv.ModRevision != rev || kv.CreateRevision != rev || kv.Version != 1 {
				t.Errorf("linearizable get %s via %s: value %q mod %d create %d version %d; want %q at revision %d version 1",
					key, r.name, kv.Value, kv.ModRevision, kv.CreateRevision, kv.Version, val, rev)
			}
			if get.Header.Revision < rev {
				t.Errorf("linearizable get %s via %s: header revision %d is behind the put's %d", key, r.name, get.Header.Revision, rev)
			}
		}
	}

	// Serializable reads agree once the followers have applied.
	rev, keys := c.waitConverged(5*time.Second, "k", c.members...)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("serializable gets agree on %v, want %v", keys, want)
	}
	if rev != int64(len(want)+1) {
		t.Errorf("serializable gets agree on revision %d, want %d", rev, len(want)+1)
	}
	for _, m := range c.members {
		ctx, cancel := reqCtx()
		get, err := clis[m].Get(ctx, "k1", clientv3.WithSerializable())
		cancel()
		if err != nil {
			t.Errorf("serializable get via %s: %v", m.name, err)
			continue
		}
		h.check("serializable get", m, get.Header)
	}

	// Status: one leader, one term.
	var leader, term uint64
	for i, m := range c.members {
		ctx, cancel := reqCtx()
		st, err := clis[m].Status(ctx, m.clientURL)
		cancel()
		if err != nil {
			t.Errorf("status of %s: %v", m.name, err)
			continue
		}
		h.check("status", m, st.Header)
		t.Logf("status of %s: leader %x term %d raft index %d applied %d", m.name, st.Leader, st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex)
		if c.byID(st.Leader) == nil {
			t.Errorf("status of %s: leader %x is not a member", m.name, st.Leader)
		}
		if st.RaftTerm == 0 {
			t.Errorf("status of %s: raft term 0", m.name)
		}
		if i == 0 {
			leader, term = st.Leader, st.RaftTerm
			continue
		}
		if st.Leader != leader || st.RaftTerm != term {
			t.Errorf("status of %s: leader %x term %d; %s said leader %x term %d", m.name, st.Leader, st.RaftTerm, c.members[0].name, leader, term)
		}
	}

	// MemberList through each member: the three members as configured.
	for _, m := range c.members {
		ctx, cancel := reqCtx()
		ml, err := clis[m].MemberList(ctx)
		cancel()
		if err != nil {
			t.Errorf("member list via %s: %v", m.name, err)
			continue
		}
		h.check("member list", m, ml.Header)
		if len(ml.Members) != len(c.members) {
			t.Errorf("member list via %s: %d members, want %d: %v", m.name, len(ml.Members), len(c.members), ml.Members)
		}
		for _, e := range c.members {
			var got *pb.Member
			for _, g := range ml.Members {
				if g.Name == e.name {
					got = g
				}
			}
			switch {
			case got == nil:
				t.Errorf("member list via %s has no member %s: %v", m.name, e.name, ml.Members)
			case got.ID != e.id || !reflect.DeepEqual(got.PeerURLs, []string{e.peerURL}) || got.IsLearner:
				t.Errorf("member list via %s: %s is id %x peer URLs %v learner %v; want id %x peer URLs [%s], voter",
					m.name, e.name, got.ID, got.PeerURLs, got.IsLearner, e.id, e.peerURL)
			case !reflect.DeepEqual(got.ClientURLs, []string{e.clientURL}):
				// etcd publishes every member's client URLs through Raft;
				// etcdctl member list and clientv3 Sync/AutoSync use them.
				t.Errorf("member list via %s: %s has client URLs %v, want [%s] (its --advertise-client-urls, as etcd publishes them)", m.name, e.name, got.ClientURLs, e.clientURL)
			}
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// putLoad writes unique keys prefix/wNN/NNNNNN from workers spread over
// clients and records every acknowledged put with its revision and the
// times the put was sent and acknowledged.
type putLoad struct {
	mu     sync.Mutex
	acked  map[string]int64
	sentAt map[string]time.Time
	ackAt  map[string]time.Time
	errs   map[string]int
	nErrs  int
}

func newPutLoad() *putLoad {
	return &putLoad{acked: map[string]int64{}, sentAt: map[string]time.Time{}, ackAt: map[string]time.Time{}, errs: map[string]int{}}
}

// put sends one put of key=key with timeout and records the outcome.
func (l *putLoad) put(ctx context.Context, cli *clientv3.Client, key string, timeout time.Duration) error {
	sent := time.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := cli.Put(pctx, key, key)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil { // not the end of the load
			l.nErrs++
			l.errs[errClass(err)]++
		}
		return err
	}
	l.acked[key] = resp.Header.Revision
	l.sentAt[key] = sent
	l.ackAt[key] = time.Now()
	return nil
}

// firstAckSentAfter returns how long after t the first put that was sent
// after t was acknowledged, or false if none was.
func (l *putLoad) firstAckSentAfter(t time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best time.Duration
	found := false
	for k, s := range l.sentAt {
		if s.After(t) {
			if d := l.ackAt[k].Sub(t); !found || d < best {
				best, found = d, true
			}
		}
	}
	return best, found
}

func (l *putLoad) errSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for e, n := range l.errs {
		out = append(out, fmt.Sprintf("%dx %s", n, e))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// errClass shortens a client error to a string worth counting.
func errClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "context deadline exceeded"
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// checkAcked reads prefix linearizably through every member in ms and
// checks that every acknowledged put is present with its acknowledged
// revision, that every key was written once (value = key, version 1), and
// that revisions 2..store revision each belong to exactly one key (the
// prefix holds every write of the test).
func (c *testCluster) checkAcked(prefix string, acked map[string]int64, ms ...*clusterMember) {
	t := c.t
	t.Helper()
	for _, m := range ms {
		cli := c.client(m)
		ctx, cancel := reqCtx()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		cli.Close()
		if err != nil {
			t.Errorf("%s: linearizable get %s*: %v", m.name, prefix, err)
			continue
		}
		got := map[string]int64{}
		var revs []int64
		bad := 0
		for _, kv := range resp.Kvs {
			if (string(kv.Key) != string(kv.Value) || kv.Version != 1 || kv.CreateRevision != kv.ModRevision) && bad < 10 {
				bad++
				t.Errorf("%s: key %s: value %q version %d create %d mod %d; each key is put once with value = key",
					m.name, kv.Key, kv.Value, kv.Version, kv.CreateRevision, kv.ModRevision)
			}
			got[string(kv.Key)] = kv.ModRevision
			revs = append(revs, kv.ModRevision)
		}
		lost, moved := 0, 0
		for key, rev := range acked {
			g, ok := got[key]
			switch {
			case !ok:
				if lost++; lost <= 10 {
					t.Errorf("%s: acknowledged put %s (revision %d) is missing", m.name, key, rev)
				}
			case g != rev:
				if moved++; moved <= 10 {
					t.Errorf("%s: acknowledged put %s at revision %d, now at revision %d", m.name, key, rev, g)
				}
			}
		}
		if lost+moved > 0 {
			t.Errorf("%s: %d of %d acknowledged puts missing, %d at another revision", m.name, lost, len(acked), moved)
		}
		sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
		for i, r := range revs {
			if r != int64(i+2) {
				t.Errorf("%s: revision sequence broken at position %d: %d (want %d)", m.name, i, r, i+2)
				break
			}
		}
		if resp.Header.Revision != int64(len(revs)+1) {
			t.Errorf("%s: store revision %d, but %d puts are present", m.name, resp.Header.Revision, len(revs))
		}
		t.Logf("%s: %d keys present (%d acknowledged), store revision %d", m.name, len(revs), len(acked), resp.Header.Revision)
	}
}

// TestClusterLeaderKill9: under put load through all members, SIGKILL the
// leader; a new leader is elected and writes resume within a few election
// timeouts; the killed member restarts on its data dir and catches up;
// every acknowledged put is on every member at its acknowledged revision
// and HashKV agrees.
func TestClusterLeaderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	const (
		prefix      = "lk/"
		workers     = 12
		electBound  = 3 * time.Second
		resumeBound = 3 * time.Second
	)
	start := time.Now()
	c := startCluster(t, 3)
	// Three clients of all members, each listing them in another order.
	var clis []*clientv3.Client
	for i := range c.members {
		var ms []*clusterMember
		for j := range c.members {
			ms = append(ms, c.members[(i+j)%len(c.members)])
		}
		clis = append(clis, c.client(ms...))
	}
	load := newPutLoad()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := clis[w%len(clis)]
			for i := 0; loadCtx.Err() == nil; i++ {
				if err := load.put(loadCtx, cli, fmt.Sprintf("%sw%02d/%06d", prefix, w, i), 2*time.Second); err != nil {
					select {
					case <-loadCtx.Done():
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}(w)
	}
	time.Sleep(time.Second)
	load.mu.Lock()
	before := len(load.acked)
	load.mu.Unlock()
	if before == 0 {
		stopLoad()
		wg.Wait()
		t.Fatalf("no put acknowledged in 1s of load: %s", load.errSummary())
	}

	old := c.waitLeader(2*time.Second, c.members...)
	survivors := c.others(old)
	killAt := time.Now()
	c.kill9(old)
	t.Logf("%d puts acknowledged before SIGKILL of leader %s (%x)", before, old.name, old.id)

	// Probes: a put every 50 ms from the kill on, so that the first put sent
	// after the kill and acknowledged times when writes resume.
	probeCtx, stopProbes := context.WithCancel(loadCtx)
	var probes sync.WaitGroup
	probes.Add(1)
	go func() {
		defer probes.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-probeCtx.Done():
				return
			case <-tick.C:
			}
			probes.Add(1)
			go func(i int) {
				defer probes.Done()
				_ = load.put(probeCtx, clis[i%len(clis)], fmt.Sprintf("%sprobe/%06d", prefix, i), 3*time.Second)
			}(i)
		}
	}()

	// Election: the survivors agree on a new leader.
	sv := c.client(survivors...)
	var elected time.Duration
	var newLeader *clusterMember
	var lastErr error
	for time.Since(killAt) < 10*time.Second {
		l, _, err := c.leaderOf(sv, survivors, 300*time.Millisecond)
		if err == nil && l != old {
			elected, newLeader = time.Since(killAt), l
			break
		}
		if err == nil {
			err = fmt.Errorf("survivors still follow the killed leader %s", old.name)
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	sv.Close()
	if newLeader == nil {
		stopProbes()
		stopLoad()
		probes.Wait()
		wg.Wait()
		t.Fatalf("no new leader within 10s of killing %s: %v; put errors: %s", old.name, lastErr, load.errSummary())
	}
	t.Logf("new leader %s elected %v after the kill", newLeader.name, elected.Round(time.Millisecond))
	if elected > electBound {
		t.Errorf("new leader elected %v after the kill; want within %v (election timeout 500ms)", elected.Round(time.Millisecond), electBound)
	}

	// Writes resume.
	var resumed time.Duration
	ok := false
	for time.Since(killAt) < 10*time.Second {
		if resumed, ok = load.firstAckSentAfter(killAt); ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopProbes()
	if !ok {
		stopLoad()
		probes.Wait()
		wg.Wait()
		t.Fatalf("no put sent after the kill was acknowledged within 10s; put errors: %s", load.errSummary())
	}
	t.Logf("writes resumed %v after the kill (first put sent after it acknowledged)", resumed.Round(time.Millisecond))
	if resumed > resumeBound {
		t.Errorf("writes resumed %v after the kill; want within %v", resumed.Round(time.Millisecond), resumeBound)
	}

	// The killed member restarts under load and catches up.
	time.Sleep(500 * time.Millisecond)
	restartAt := time.Now()
	c.restart(old)
	t.Logf("%s restarted and serving in %v", old.name, time.Since(restartAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	stopLoad()
	probes.Wait()
	wg.Wait()
	stoppedAt := time.Now()

	c.waitLeader(5*time.Second, c.members...)
	rev, keys := c.waitConverged(15*time.Second, prefix, c.members...)
	t.Logf("all members at revision %d with %d keys %v after the load stopped (%v after the restart)",
		rev, len(keys), time.Since(stoppedAt).Round(time.Millisecond), time.Since(restartAt).Round(time.Millisecond))
	load.mu.Lock()
	acked := load.acked
	nErrs := load.nErrs
	load.mu.Unlock()
	t.Logf("%d puts acknowledged, %d failed: %s", len(acked), nErrs, load.errSummary())
	c.checkAcked(prefix, acked, c.members...)
	c.checkHashKV(rev, c.members...)
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// TestClusterFollowerRestart: a follower killed with SIGKILL misses 500
// writes, restarts on its data dir and catches up.
func TestClusterFollowerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	const (
		prefix = "fr/"
		n      = 500
	)
	start := time.Now()
	c := startCluster(t, 3)
	leader := c.waitLeader(2*time.Second, c.members...)
	f := c.others(leader)[0]
	c.kill9(f)
	t.Logf("killed follower %s; leader is %s", f.name, leader.name)

	cli := c.client(c.others(f)...)
	load := newPutLoad()
	writeAt := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	keyc := make(chan string, n)
	for i := 0; i < n; i++ {
		keyc <- fmt.Sprintf("%s%04d", prefix, i)
	}
	close(keyc)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keyc {
				if err := load.put(context.Background(), cli, key, reqTimeout); err != nil {
					errc <- fmt.Errorf("put %s: %w", key, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("writing with %s down: %v (and %d more)", f.name, err, len(errc))
	}
	t.Logf("%d puts with %s down in %v", n, f.name, time.Since(writeAt).Round(time.Millisecond))

	restartAt := time.Now()
	c.restart(f)
	t.Logf("%s restarted and serving in %v", f.name, time.Since(restartAt).Round(time.Millisecond))
	fc := c.client(f)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := reqCtx()
		resp, err := fc.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		cancel()
		if err == nil && len(resp.Kvs) == n {
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d of %d keys at revision %d", len(resp.Kvs), n, resp.Header.Revision)
			}
			t.Fatalf("%s did not catch up within 10s of serving: serializable get: %v", f.name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s caught up %v after the restart", f.name, time.Since(restartAt).Round(time.Millisecond))
	rev, _ := c.waitConverged(5*time.Second, prefix, c.members...)
	c.checkAcked(prefix, load.acked, c.members...)
	c.checkHashKV(rev, c.members...)
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// TestClusterMinorityNoStaleLinearizableRead: with the leader and one
// follower SIGSTOPped, the remaining member has no quorum: a linearizable
// read there fails (it must never answer), a serializable read answers
// locally. After SIGCONT the cluster serves writes again.
func TestClusterMinorityNoStaleLinearizableRead(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	start := time.Now()
	c := startCluster(t, 3)
	leader := c.waitLeader(2*time.Second, c.members...)
	rest := c.others(leader)
	f, r := rest[0], rest[1]
	all := c.client(c.members...)
	ctx, cancel := reqCtx()
	put, err := all.Put(ctx, "mk", "before")
	cancel()
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	before := put.Header.Revision
	c.waitConverged(5*time.Second, "mk", c.members...)
	rc := c.client(r)
	// Warm r's connection so requests reach it at once.
	ctx, cancel = reqCtx()
	if _, err := rc.Get(ctx, "mk"); err != nil {
		t.Fatalf("linearizable get via %s with all members up: %v", r.name, err)
	}
	cancel()

	c.signal(leader, syscall.SIGSTOP)
	c.signal(f, syscall.SIGSTOP)
	stoppedAt := time.Now()
	t.Logf("SIGSTOP leader %s and follower %s; %s is alone", leader.name, f.name, r.name)

	// At once (r still believes in the leader) and after r's election
	// timeout has passed (r has no leader).
	for _, at := range []time.Duration{0, 1500 * time.Millisecond} {
		if d := at - time.Since(stoppedAt); d > 0 {
			time.Sleep(d)
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := rc.Get(ctx, "mk")
		cancel()
		if err == nil {
			t.Errorf("linearizable get via %s without quorum (%v after SIGSTOP) answered: %d kvs at header revision %d %v; it must fail",
				r.name, sent.Sub(stoppedAt).Round(time.Millisecond), len(resp.Kvs), resp.Header.Revision, resp.Kvs)
		} else {
			t.Logf("linearizable get via %s %v after SIGSTOP failed after %v: %v", r.name, sent.Sub(stoppedAt).Round(time.Millisecond), time.Since(sent).Round(time.Millisecond), err)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	resp, err := rc.Get(ctx, "mk", clientv3.WithSerializable())
	cancel()
	switch {
	case err != nil:
		t.Errorf("serializable get via %s without quorum: %v (etcd answers serializable reads from the local store)", r.name, err)
	case len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" || resp.Kvs[0].ModRevision != before:
		t.Errorf("serializable get via %s without quorum: %v; want mk=before at revision %d", r.name, resp.Kvs, before)
	default:
		t.Logf("serializable get via %s without quorum: mk=%s at revision %d", r.name, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	_, err = rc.Put(ctx, "mk-minority", "x")
	cancel()
	if err == nil {
		t.Errorf("put via %s without quorum was acknowledged", r.name)
	} else {
		t.Logf("put via %s without quorum failed: %v", r.name, err)
	}

	c.signal(leader, syscall.SIGCONT)
	c.signal(f, syscall.SIGCONT)
	contAt := time.Now()
	l := c.waitLeader(10*time.Second, c.members...)
	t.Logf("SIGCONT after %v; leader %s agreed on %v later", contAt.Sub(stoppedAt).Round(time.Millisecond), l.name, time.Since(contAt).Round(time.Millisecond))

	// Writes through every member, read linearizably through every member.
	for i, w := range c.members {
		wc := c.client(w)
		val := fmt.Sprintf("after-%d", i)
		var put *clientv3.PutResponse
		deadline := time.Now().Add(5 * time.Second)
		for {
			ctx, cancel := reqCtx()
			put, err = wc.Put(ctx, "mk", val)
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("put via %s after SIGCONT: %v", w.name, err)
		}
		for _, m := range c.members {
			mc := c.client(m)
			ctx, cancel := reqCtx()
			get, err := mc.Get(ctx, "mk")
			cancel()
			switch {
			case err != nil:
				t.Errorf("linearizable get via %s after put via %s: %v", m.name, w.name, err)
			case len(get.Kvs) != 1 || string(get.Kvs[0].Value) != val || get.Kvs[0].ModRevision != put.Header.Revision:
				t.Errorf("linearizable get via %s after put via %s at revision %d: %v", m.name, w.name, put.Header.Revision, get.Kvs)
			}
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// TestClusterPausedLeaderNoStaleRead (etcd #20418): the leader is paused
// with SIGSTOP, the others elect a new leader and write; reads sent to the
// old leader while it is paused and right after it resumes must not return
// the overwritten value.
func TestClusterPausedLeaderNoStaleRead(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	start := time.Now()
	c := startCluster(t, 3)
	old := c.waitLeader(2*time.Second, c.members...)
	rest := c.others(old)
	oc := c.client(old)
	ctx, cancel := reqCtx()
	put, err := oc.Put(ctx, "sk", "v1")
	cancel()
	if err != nil {
		t.Fatalf("put via %s: %v", old.name, err)
	}
	c.waitConverged(5*time.Second, "sk", c.members...)

	c.signal(old, syscall.SIGSTOP)
	stoppedAt := time.Now()
	newLeader := c.waitNewLeader(5*time.Second, old, rest...)
	t.Logf("SIGSTOP leader %s; %s elected %v later", old.name, newLeader.name, time.Since(stoppedAt).Round(time.Millisecond))
	rc := c.client(rest...)
	var put2 *clientv3.PutResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := reqCtx()
		put2, err = rc.Put(ctx, "sk", "v2")
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("put via the new majority: %v", err)
	}

	// Reads queued on the paused old leader, then more as it resumes.
	type result struct {
		sent time.Time
		resp *clientv3.GetResponse
		err  error
	}
	results := make(chan result, 64)
	var wg sync.WaitGroup
	read := func() {
		defer wg.Done()
		sent := time.Now()
		ctx, cancel := reqCtx()
		resp, err := oc.Get(ctx, "sk")
		cancel()
		results <- result{sent, resp, err}
	}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go read()
	}
	time.Sleep(100 * time.Millisecond)
	c.signal(old, syscall.SIGCONT)
	contAt := time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go read()
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	close(results)
	answered, failed := 0, 0
	errs := map[string]int{}
	for r := range results {
		if r.err != nil {
			failed++
			errs[errClass(r.err)]++
			continue
		}
		answered++
		if len(r.resp.Kvs) != 1 || string(r.resp.Kvs[0].Value) != "v2" || r.resp.Kvs[0].ModRevision != put2.Header.Revision {
			t.Errorf("stale linearizable read via resumed old leader %s (sent %v after SIGCONT): %v at header revision %d; the majority wrote sk=v2 at revision %d (sk=v1 was revision %d)",
				old.name, r.sent.Sub(contAt).Round(time.Millisecond), r.resp.Kvs, r.resp.Header.Revision, put2.Header.Revision, put.Header.Revision)
		}
	}
	t.Logf("reads via the resumed old leader: %d answered, %d failed %v", answered, failed, errs)
	c.waitLeader(10*time.Second, c.members...)
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}
