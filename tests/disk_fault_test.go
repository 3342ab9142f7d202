package tests

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/aetcd/aetcd/tests/chaos"
)

// Disk faults: what a member does with a data dir damaged the way disks
// fail (tests/chaos/disk.go), and how the cluster repairs it.

// fixtureCompactRev is the revision backendFixture compacts at.
const fixtureCompactRev = 50

// backendFixture writes a small backend at dir/member/snap/db the way the
// applier does (consecutive indexes, two commits) and returns the store's
// observable state after the first commit and after the second.
func backendFixture(t *testing.T, dir string) (prev, cur string) {
	t.Helper()
	path := filepath.Join(dir, "member", "snap", "db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.Open(path, mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(0)
	apply := func(r *messages.InternalRequest) {
		t.Helper()
		idx++
		if e := s.Apply(idx, r).GetError(); e != nil {
			t.Fatal(e.Message)
		}
	}
	put := func(key, value string, lease int64) {
		apply(&messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{Key: []byte(key), Value: []byte(value), Lease: lease}}})
	}
	s.SaveMember(&messages.Member{ID: 0xa1, Name: "m1", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"}})
	s.SaveMember(&messages.Member{ID: 0xa2, Name: "m2", PeerURLs: []string{"http://127.0.0.1:2480"}, ClientURLs: []string{"http://127.0.0.1:2479"}})
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_LeaseGrant{LeaseGrant: &messages.LeaseGrantRequest{ID: 0x1234, TTL: 60}}})
	for i := range 300 {
		put(fmt.Sprintf("disk/%03d", i%200), fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%40)), int64(0x1234*(i%3/2)))
	}
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: &messages.DeleteRangeRequest{Key: []byte("disk/007")}}})
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: fixtureCompactRev}}})
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	prev = storeState(t, s)
	for i := range 20 {
		put(fmt.Sprintf("disk/late/%02d", i), "late", 0)
	}
	s.SaveMember(&messages.Member{ID: 0xa3, Name: "m3", PeerURLs: []string{"http://127.0.0.1:2580"}})
	s.RemoveMember(0xa2)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	cur = storeState(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return prev, cur
}

// storeState describes everything a member reads from its backend: the
// consistent index, revisions, HashKV, every live key, the leases and the
// membership. The first line is HashKV at the current revision.
func storeState(t *testing.T, s *mvcc.Store) string {
	t.Helper()
	s.Publish()
	var b strings.Builder
	hash, compactRev, hashRev, herr := s.HashKV(0)
	fmt.Fprintf(&b, "hashkv %d %d %d %v\n", hash, compactRev, hashRev, herr)
	fmt.Fprintf(&b, "ci %d rev %d compact %d\n", s.ConsistentIndex(), s.Rev(), s.CompactRev())
	r, rerr := s.View().Range(&messages.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if rerr != nil {
		fmt.Fprintf(&b, "range: %v\n", rerr)
	}
	for _, kv := range r.GetKvs() {
		fmt.Fprintf(&b, "%q=%q c%d m%d v%d l%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	// History: every key as of the compaction revision, then every event
	// since (what reads and watches at older revisions see).
	r, rerr = s.View().Range(&messages.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: max(s.CompactRev(), 1)})
	if rerr != nil {
		fmt.Fprintf(&b, "range at %d: %v\n", s.CompactRev(), rerr)
	}
	for _, kv := range r.GetKvs() {
		fmt.Fprintf(&b, "at %d: %q=%q c%d m%d v%d l%d\n", s.CompactRev(), kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	ev, everr := s.View().Events(s.CompactRev()+1, s.Rev(), 0)
	if everr != nil {
		fmt.Fprintf(&b, "events: %v\n", everr)
	}
	for _, e := range ev.Events {
		fmt.Fprintf(&b, "event %v %q=%q c%d m%d v%d l%d\n", e.Type, e.Kv.Key, e.Kv.Value, e.Kv.CreateRevision, e.Kv.ModRevision, e.Kv.Version, e.Kv.Lease)
	}
	for _, l := range s.Leases() {
		info, _ := s.Lease(l.ID)
		fmt.Fprintf(&b, "lease %x ttl %d rem %d keys %q\n", l.ID, l.TTL, l.RemainingTTL, info.Keys)
	}
	members, merr := s.Members()
	for _, m := range members {
		fmt.Fprintf(&b, "member %x %s %v %v %v\n", m.ID, m.Name, m.PeerURLs, m.ClientURLs, m.IsLearner)
	}
	removed, rmerr := s.RemovedMembers()
	var ids []string
	for id := range removed {
		ids = append(ids, fmt.Sprintf("%x", id))
	}
	sort.Strings(ids)
	fmt.Fprintf(&b, "removed %v %v %v\n", ids, merr, rmerr)
	return b.String()
}

// Outcomes of one backend bit flip, as the member meets it on restart.
const (
	flipDetected   = "detected: Open, the member list or Start's consistent index check refuses the file"
	flipHarmless   = "undetected, harmless: the member reads exactly what was committed"
	flipRolledBack = "undetected, previous commit: bbolt fell back to the older meta page (the WAL replays the lost commit, or Start refuses if it was released)"
	flipHashKV     = "undetected at Open, wrong data, HashKV differs: an initial corruption check against peers refuses it"
	flipWrong      = "undetected and wrong: HashKV is the same, nothing notices"
)

// classifyBackendFlip opens a damaged backend as Start does and compares
// what the member would read with what was committed. For flipDetected it
// returns the error.
func classifyBackendFlip(t *testing.T, dir, prev, cur string) (string, string, error) {
	s, err := mvcc.Open(filepath.Join(dir, "member", "snap", "db"), mvcc.Options{})
	if err != nil {
		return flipDetected, err.Error(), err
	}
	defer s.Close()
	if _, err := s.Members(); err != nil {
		return flipDetected, err.Error(), err
	}
	if _, err := s.RemovedMembers(); err != nil {
		return flipDetected, err.Error(), err
	}
	got := storeState(t, s)
	var gotCI, wantCI uint64
	fmt.Sscanf(strings.Split(got, "\n")[1], "ci %d", &gotCI)
	fmt.Sscanf(strings.Split(cur, "\n")[1], "ci %d", &wantCI)
	switch {
	case gotCI > wantCI:
		// The WAL ends at wantCI: Start refuses a backend ahead of it.
		err := fmt.Errorf("Start: backend has applied through index %d but the WAL ends at %d", gotCI, wantCI)
		return flipDetected, err.Error(), err
	case got == cur:
		return flipHarmless, "", nil
	case got == prev:
		return flipRolledBack, "", nil
	case strings.SplitN(got, "\n", 2)[0] != strings.SplitN(cur, "\n", 2)[0]:
		return flipHashKV, diffLines(cur, got), nil
	}
	return flipWrong, diffLines(cur, got), nil
}

// diffLines names the first line of want that got lacks and vice versa.
func diffLines(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			out = append(out, "-"+l)
			break
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			out = append(out, "+"+l)
			break
		}
	}
	return strings.Join(out, " ")
}

// TestBackendBitFlipDetection flips one bit of a small backend with 200
// seeds (chaos.FlipBackendBit; AETCD_FLIP_SEEDS=n for n) and counts what a
// restarting member would do with each: refuse (the error must wrap
// mvcc.ErrCorrupt), read exactly what was committed, or read the previous
// commit. Reading wrong data is a failure, whether HashKV changed (only an
// initial corruption check against peers would catch it) or not: every
// record is checksummed. Replay one seed with AETCD_FLIP_SEED=n; -v lists
// every flip.
func TestBackendBitFlipDetection(t *testing.T) {
	fixture := t.TempDir()
	prev, cur := backendFixture(t, fixture)
	original, err := os.ReadFile(filepath.Join(fixture, "member", "snap", "db"))
	if err != nil {
		t.Fatal(err)
	}
	first, last := int64(0), int64(200)
	if s := os.Getenv("AETCD_FLIP_SEEDS"); s != "" {
		if _, err := fmt.Sscan(s, &last); err != nil {
			t.Fatal(err)
		}
	}
	if s := os.Getenv("AETCD_FLIP_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &first); err != nil {
			t.Fatal(err)
		}
		last = first + 1
	}
	counts := map[string]int{}
	examples := map[string][]string{}
	for seed := first; seed < last; seed++ {
		dir := t.TempDir()
		db := filepath.Join(dir, "member", "snap", "db")
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(db, original, 0o600); err != nil {
			t.Fatal(err)
		}
		desc, err := chaos.FlipBackendBit(dir, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		outcome, detail, err := classifyBackendFlip(t, dir, prev, cur)
		counts[outcome]++
		switch {
		case outcome == flipDetected && !errors.Is(err, mvcc.ErrCorrupt) && !strings.HasPrefix(err.Error(), "Start:"):
			t.Errorf("seed %d (%s): refused without naming corruption: %v", seed, desc, err)
		case outcome == flipWrong || outcome == flipHashKV:
			t.Errorf("seed %d (%s): %s: %s", seed, desc, outcome, detail)
		}
		examples[outcome] = append(examples[outcome], fmt.Sprintf("seed %d: %s\n        %s", seed, desc, detail))
	}
	for _, o := range []string{flipDetected, flipHarmless, flipRolledBack, flipHashKV, flipWrong} {
		t.Logf("%3d  %s", counts[o], o)
		for i, e := range examples[o] {
			if i == 8 && !testing.Verbose() {
				t.Logf("        ... %d more", len(examples[o])-i)
				break
			}
			t.Logf("      %s", e)
		}
	}
}

// diskSeed returns the seed of a test's fault choices: AETCD_DISK_SEED if
// set (to replay a failure), otherwise the clock. It logs it.
func diskSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("AETCD_DISK_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with AETCD_DISK_SEED=%d)", seed, seed)
	return seed
}

// waitStartFailure waits until m's current incarnation exits and fails the
// test unless it exited with a non-zero status, without ever serving, and
// logged every string in want. It returns the log.
func (c *testCluster) waitStartFailure(m *clusterMember, timeout time.Duration, want ...string) string {
	c.t.Helper()
	m.mu.Lock()
	cmd, exited, log := m.cmd, m.exited, m.logs[len(m.logs)-1]
	m.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		c.t.Fatalf("%s still running %v after a start on a damaged data dir:\n%s", m.name, timeout, tailLines(log.String(), 20))
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
	out := log.String()
	if code := cmd.ProcessState.ExitCode(); code == 0 || strings.Contains(out, clusterReadyMsg) {
		c.t.Fatalf("%s exited with status %d after serving=%v, want a refusal to start:\n%s", m.name, code, strings.Contains(out, clusterReadyMsg), tailLines(out, 20))
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			c.t.Fatalf("%s refused to start without logging %q:\n%s", m.name, w, tailLines(out, 20))
		}
	}
	return out
}

// replaceMember is the operator's repair of member m, whose data dir
// cannot be trusted (m is stopped): member remove through via, wipe the
// data dir, member add with the same peer URL, start m with
// --initial-cluster-state existing, and wait until it serves.
func (c *testCluster) replaceMember(m, via *clusterMember) {
	c.t.Helper()
	cli := c.client(via)
	defer cli.Close()
	var err error
	waitFor(c.t, 15*time.Second, "member remove "+m.name, func() bool {
		ctx, cancel := reqCtx()
		defer cancel()
		_, err = cli.MemberRemove(ctx, m.id)
		return err == nil
	})
	if err := os.RemoveAll(m.dir); err != nil {
		c.t.Fatal(err)
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	var added *clientv3.MemberAddResponse
	waitFor(c.t, 15*time.Second, "member add "+m.peerURL, func() bool {
		ctx, cancel := reqCtx()
		defer cancel()
		added, err = cli.MemberAdd(ctx, []string{m.peerURL})
		if err != nil {
			c.t.Logf("member add %s: %v", m.peerURL, err)
		}
		return err == nil
	})
	c.t.Logf("%s: removed member %x, added it back as %x with an empty data dir", m.name, m.id, added.Member.ID)
	m.id, m.joinCluster = added.Member.ID, c.initial
	c.restart(m)
}

// caughtUpBy says how a replaced member got the cluster's data.
func caughtUpBy(m *clusterMember) string {
	if len(m.logLines(snapInstalledMsg)) > 0 {
		return "a snapshot from the leader"
	}
	return "the leader's log"
}

// finishRepair stops the load, waits until every member converges and
// checks that every acknowledged put is on every member and HashKV agrees.
func (c *testCluster) finishRepair(prefix string, stopLoad func() *putLoad) {
	c.t.Helper()
	load := stopLoad()
	load.mu.Lock()
	acked := maps.Clone(load.acked)
	load.mu.Unlock()
	if len(acked) < 300 {
		c.t.Fatalf("only %d puts acknowledged; want a few hundred", len(acked))
	}
	rev, _ := c.waitConverged(30*time.Second, prefix, c.members...)
	c.checkAcked(prefix, acked, c.members...)
	c.checkHashKV(rev, c.members...)
	c.t.Logf("%d acknowledged puts on all members at revision %d (client errors: %s)", len(acked), rev, load.errSummary())
}

// waitAcked waits until the load has at least n acknowledged puts.
func waitAcked(t *testing.T, load func() int, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d acknowledged puts", n), func() bool { return load() >= n })
}

// TestDiskFaultWALBitFlip: under put load, a follower is killed with
// SIGKILL and one bit of a WAL record that is not the log's last is
// flipped (chaos.FlipWALBit). Its restart must fail with a non-zero status
// and an error naming the segment and the record's offset. The operator's
// repair (member remove, wipe, member add, start with
// --initial-cluster-state existing) brings it back, from a snapshot (the
// leader has released the start of its log): all three members converge,
// every acknowledged put present, HashKV equal.
func TestDiskFaultWALBitFlip(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	rng := rand.New(rand.NewSource(diskSeed(t)))
	// The leader keeps 5000 entries behind its last snapshot: past them
	// the replaced member catches up from a snapshot, not the log.
	c := startCluster(t, 3, "--snapshot-count", "500")
	const prefix = "walflip/"
	stopLoad, acked := runCountedLoad(c, prefix)
	waitAcked(t, acked, 6000)
	leader := c.waitLeader(10*time.Second, c.members...)
	victim := c.others(leader)[rng.Intn(2)]
	c.kill9(victim)
	desc, err := chaos.FlipWALBit(victim.dir, rng)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", victim.name, desc)
	var file string
	var recOff int64
	m := regexp.MustCompile(` of (member/wal/\S+\.wal): .* bytes at offset (\d+)\)$`).FindStringSubmatch(desc)
	if m == nil {
		t.Fatalf("cannot parse the fault description %q", desc)
	}
	file = m[1]
	fmt.Sscan(m[2], &recOff)
	c.spawn(victim)
	out := c.waitStartFailure(victim, clusterStartTimeout, "member failed to start",
		fmt.Sprintf("wal: corrupt record in %s at offset %d", filepath.Join(victim.dir, file), recOff))
	t.Logf("%s refused to start: %s", victim.name, lastLine(out, "member failed to start"))

	c.replaceMember(victim, leader)
	waitAcked(t, acked, 6300)
	c.finishRepair(prefix, stopLoad)
	if by := caughtUpBy(victim); by != "a snapshot from the leader" {
		t.Errorf("%s caught up from %s, want a snapshot (the leader released the start of its log)", victim.name, by)
	}
}

// TestDiskFaultBackendBitFlip runs the cluster with
// --experimental-initial-corrupt-check and, for each way aetcd detects a
// damaged backend, kills a follower under load and damages its
// member/snap/db: "open", one flipped bit (chaos.FlipBackendBit) that
// mvcc.Open refuses (a damaged page, or a record failing its checksum; the
// seed is the first from the test's random source whose flip Open
// refuses, judged on a copy of the stopped member's file; harmless flips
// are skipped and logged); "peers", a well-formed record with a different
// value and a valid checksum (chaos.RewriteBackendValue: divergence a bug
// would leave, not a disk fault), which only the initial corruption check
// against the peers sees. The restart must fail with a non-zero status and
// the clear error; the operator's repair brings the member back, as in
// TestDiskFaultWALBitFlip.
func TestDiskFaultBackendBitFlip(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	rng := rand.New(rand.NewSource(diskSeed(t)))
	c := startCluster(t, 3, "--experimental-initial-corrupt-check")
	const prefix = "dbflip/"
	stopLoad, acked := runCountedLoad(c, prefix)
	var repaired *clusterMember
	for i, kind := range []string{"open", "peers"} {
		waitAcked(t, acked, 300*(i+1))
		leader := c.waitLeader(10*time.Second, c.members...)
		victims := c.others(leader, repaired)
		victim := victims[rng.Intn(len(victims))]
		repaired = victim
		c.kill9(victim)
		var desc string
		if kind == "open" {
			desc = flipBackendRefused(t, victim.dir, rng)
		} else {
			var err error
			if desc, err = chaos.RewriteBackendValue(victim.dir, rng); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s (%s): %s", victim.name, kind, desc)
		c.spawn(victim)
		want := []string{"member failed to start", "mvcc: corrupt database", filepath.Join(victim.dir, "member", "snap", "db")}
		if kind == "peers" {
			want = []string{"member failed to start", "found different hash values from remote peer",
				fmt.Sprintf("%x found data inconsistency with peers", victim.id)}
		}
		out := c.waitStartFailure(victim, 30*time.Second, want...)
		t.Logf("%s refused to start: %s", victim.name, lastLine(out, "member failed to start"))
		c.replaceMember(victim, leader)
		t.Logf("%s caught up from %s", victim.name, caughtUpBy(victim))
	}
	waitAcked(t, acked, 900)
	c.finishRepair(prefix, stopLoad)
}

// flipBackendRefused flips one bit of dir's backend with the first seed
// drawn from rng whose flip mvcc.Open refuses, judged on a copy; it
// returns the description.
func flipBackendRefused(t *testing.T, dir string, rng *rand.Rand) string {
	t.Helper()
	db := filepath.Join(dir, "member", "snap", "db")
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	opens := func(d string) bool {
		s, err := mvcc.Open(filepath.Join(d, "member", "snap", "db"), mvcc.Options{NoSync: true})
		if err != nil {
			return false
		}
		s.Close()
		return true
	}
	copyOf := func() string {
		d := t.TempDir()
		p := filepath.Join(d, "member", "snap", "db")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if !opens(copyOf()) {
		t.Fatal("the killed member's backend does not open before any flip")
	}
	for range 100 {
		seed := rng.Int63()
		d := copyOf()
		desc, err := chaos.FlipBackendBit(d, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		if opens(d) {
			t.Logf("skipping flip seed %d (Open accepts it): %s", seed, desc)
			continue
		}
		if again, err := chaos.FlipBackendBit(dir, rand.New(rand.NewSource(seed))); err != nil || again != desc {
			t.Fatalf("flip seed %d on the member: %q, %v; on the copy: %q", seed, again, err, desc)
		}
		return fmt.Sprintf("flip seed %d: %s", seed, desc)
	}
	t.Fatal("Open accepted 100 flips in a row")
	return ""
}

// TestDiskFaultTornWALTail: under put load, the leader is killed with
// SIGKILL and the last record of its newest WAL segment is torn
// (chaos.TearWALTail), as a crash in the middle of the write leaves it.
// It restarts, logs that it truncated the torn record, passes the initial
// corruption check (its backend agrees with its peers'), rejoins, and all
// three members converge with every acknowledged put present and HashKV
// equal.
func TestDiskFaultTornWALTail(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	rng := rand.New(rand.NewSource(diskSeed(t)))
	c := startCluster(t, 3, "--experimental-initial-corrupt-check")
	const prefix = "torn/"
	stopLoad, acked := runCountedLoad(c, prefix)
	waitAcked(t, acked, 300)
	victim := c.waitLeader(10*time.Second, c.members...)
	c.kill9(victim)
	desc, err := chaos.TearWALTail(victim.dir, rng)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (the leader): %s", victim.name, desc)
	c.restart(victim)
	for _, want := range []string{"WAL had a torn last record", "initial corruption checking passed"} {
		if len(victim.logLines(want)) == 0 {
			t.Fatalf("%s started without logging %q:\n%s", victim.name, want, tailLines(victim.logOf(), 20))
		}
	}
	waitAcked(t, acked, 600)
	c.finishRepair(prefix, stopLoad)
}

// runCountedLoad puts unique keys under prefix through every member (as
// runLoad: two workers per member, value = key) until stop is called, and
// also returns a function counting the puts acknowledged so far.
func runCountedLoad(c *testCluster, prefix string) (stop func() *putLoad, acked func() int) {
	load := newPutLoad()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range c.members {
		cli := c.client(m)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ctx.Err() == nil; k++ {
					if err := load.put(ctx, cli, fmt.Sprintf("%s%s-w%d/%06d", prefix, m.name, w, k), 3*time.Second); err != nil {
						select {
						case <-ctx.Done():
						case <-time.After(20 * time.Millisecond):
						}
					}
				}
			}()
		}
	}
	stop = func() *putLoad {
		cancel()
		wg.Wait()
		return load
	}
	return stop, func() int {
		load.mu.Lock()
		defer load.mu.Unlock()
		return len(load.acked)
	}
}

// lastLine returns the last line of log containing substr.
func lastLine(log, substr string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}
