package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config is one campaign: a seed's schedule run against a fresh cluster.
type Config struct {
	Binary   string        // the aetcd binary
	Seed     uint64        // the schedule's seed
	Members  int           // 3 or 5 (default 3)
	Duration time.Duration // the safety phase, at least (default 30 s)
	Faults   []FaultKind   // kinds to inject (nil: all)
	Clients  int           // key-value clients (default 6)
	Watchers int           // watchers (default 3)
	Leases   int           // leases kept alive at once (default 3)
	// OutDir receives the member data dirs while the campaign runs and,
	// when it fails, the member logs and porcupine's HTML (under
	// OutDir/seed-N). Default: a new temporary directory.
	OutDir string
	// KeepOutput keeps the logs and data of a campaign that passed too.
	KeepOutput bool
	// LinearizableTimeout bounds the linearizability check (default 1 min).
	LinearizableTimeout time.Duration
	// Progress receives one line per step and fault (nil: none).
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if len(c.Faults) == 0 {
		c.Faults = slices.Clone(AllFaultKinds)
	}
	if c.Clients == 0 {
		c.Clients = 6
	}
	if c.Watchers == 0 {
		c.Watchers = 3
	}
	if c.Leases == 0 {
		c.Leases = 3
	}
	if c.LinearizableTimeout == 0 {
		c.LinearizableTimeout = time.Minute
	}
	return c
}

// ReplayCommand is the command line that runs this campaign again.
func (c Config) ReplayCommand() string {
	c = c.withDefaults()
	s := fmt.Sprintf("go run ./cmd/aetcd-chaos --seed %d --members %d --duration %v --clients %d", c.Seed, c.Members, c.Duration, c.Clients)
	if !slices.Equal(c.Faults, AllFaultKinds) {
		s += " --faults " + JoinKinds(c.Faults)
	}
	return s
}

// Violation checks the campaign itself adds to the checkers'.
const (
	CheckConvergence  = "convergence"   // members differ after healing
	CheckFaultOutcome = "fault-outcome" // a fault did not end as it must
	CheckLiveness     = "liveness"      // no progress after healing
)

// campaign is the state of one Run.
type campaign struct {
	cfg   Config
	c     *Cluster
	rep   *Report
	ctx   context.Context // the whole run
	start time.Time       // of the safety phase
	rng   *rand.Rand      // disk damage (disk.go takes math/rand); used under mu

	mu         sync.Mutex
	busy       map[*Member]bool
	kills      map[*Member][]time.Time // kill-actor times, for the restart limit
	recovering map[*Member]bool        // restarting after an actor kill
	violations []Violation
}

// Run runs one campaign: it starts a cluster, runs the load, injects the
// seed's schedule during the safety phase, heals, checks liveness, reads the
// full history, checks convergence and runs the checkers. The error is for
// a campaign that could not run (the cluster did not start); what went
// wrong with the cluster under test is in the report's violations. Every
// member process is killed before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Members < 1 {
		return nil, fmt.Errorf("chaos: %d members", cfg.Members)
	}
	t0 := time.Now()
	if cfg.OutDir == "" {
		d, err := os.MkdirTemp("", "aetcd-chaos-")
		if err != nil {
			return nil, err
		}
		cfg.OutDir = d
	}
	dir := filepath.Join(cfg.OutDir, fmt.Sprintf("seed-%d", cfg.Seed))
	sched := NewSchedule(cfg.Seed, cfg.Members, cfg.Duration, cfg.Faults)
	rep := &Report{
		Seed: cfg.Seed, Members: cfg.Members, Schedule: sched, Command: cfg.ReplayCommand(),
		Injected: map[FaultKind]int{}, Kills: map[string]int{},
	}
	r := &campaign{
		cfg: cfg, rep: rep, ctx: ctx,
		rng:  rand.New(rand.NewSource(int64(cfg.Seed))),
		busy: map[*Member]bool{}, kills: map[*Member][]time.Time{}, recovering: map[*Member]bool{},
	}
	c, err := NewCluster(cfg.Binary, cfg.Members, filepath.Join(dir, "data"), r.logf)
	if err != nil {
		return nil, err
	}
	r.c = c
	defer c.Close()
	defer func() {
		if p := recover(); p != nil {
			// A bug of the runner: keep what the members logged.
			c.Close()
			r.keepOutput(dir)
			fmt.Fprintf(os.Stderr, "chaos: panic; member logs in %s\n", dir)
			panic(p)
		}
	}()
	r.logf("seed %d: starting %d members", cfg.Seed, cfg.Members)
	if err := c.Start(ctx); err != nil {
		r.keepOutput(dir)
		return rep, fmt.Errorf("chaos: cluster did not start: %w (logs in %s)", err, rep.OutDir)
	}
	rep.Startup = time.Since(t0)

	rec := &recorder{}
	ld, err := r.startLoad(rec)
	if err != nil {
		return rep, err
	}
	defer ld.close()

	// Safety phase: the schedule's faults, lane by lane. It lasts
	// cfg.Duration or until every fault was injected and undone, whichever
	// is later: a fault that takes longer than planned (a slow recovery)
	// delays the next ones but drops none, so a seed injects its whole
	// schedule.
	r.start = time.Now()
	r.logf("safety phase: %v, %d faults", cfg.Duration, len(sched.Faults))
	safety, cancel := context.WithTimeout(ctx, cfg.Duration)
	var lanes sync.WaitGroup
	var lanePanic atomic.Pointer[panicked]
	for lane := 0; lane < 2; lane++ {
		var fs []Fault
		for _, f := range sched.Faults {
			if f.Lane == lane {
				fs = append(fs, f)
			}
		}
		lanes.Add(1)
		go func() {
			defer lanes.Done()
			defer func() {
				if p := recover(); p != nil {
					lanePanic.CompareAndSwap(nil, &panicked{p, debug.Stack()})
				}
			}()
			r.lane(ctx, fs)
		}()
	}
	<-safety.Done()
	lanes.Wait()
	cancel()
	if p := lanePanic.Load(); p != nil {
		panic(fmt.Sprintf("%v\n%s", p.value, p.stack)) // in this goroutine, to keep the logs
	}
	rep.Safety = time.Since(r.start)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	// Liveness phase: heal, then every client, watcher and member must
	// make progress.
	t1 := time.Now()
	r.heal()
	r.liveness(ld)
	finalRev := r.settle(ld)
	full := r.fullHistory(finalRev)
	r.convergence(finalRev)
	ld.close()
	rep.Liveness = time.Since(t1)
	rep.FinalRev = finalRev

	// The checkers.
	t2 := time.Now()
	ops, watches, leases := rec.history()
	rep.Ops, rep.WatchEvents, rep.WatchLogs = len(ops), len(full), len(watches)
	for _, op := range ops {
		if op.Unknown {
			rep.UnknownOps++
		}
	}
	for _, w := range watches {
		rep.WatchedEvents += len(w.Events)
	}
	rep.Leases = len(leases)
	visPath := filepath.Join(dir, "porcupine.html")
	lin := CheckLinearizable(ops, cfg.LinearizableTimeout, visPath)
	rep.LinearizableOps, rep.LinearizableTimedOut = lin.Operations, lin.TimedOut
	r.violate(lin.Violations...)
	if full != nil {
		r.violate(CheckWatches(full, watches, finalRev)...)
		r.violate(CheckDurability(ops, full)...)
		lv, ls := CheckLeases(full, leases)
		r.violate(lv...)
		rep.LeasesChecked, rep.LeasesSkipped = ls.Checked, ls.Skipped
	}
	for _, u := range c.Unexpected() {
		r.violate(Violation{Check: CheckFaultOutcome, Detail: u})
	}
	rep.Check = time.Since(t2)
	rep.Total = time.Since(t0)
	r.mu.Lock()
	rep.Violations = append(rep.Violations, r.violations...)
	r.mu.Unlock()
	if len(rep.Violations) > 0 || cfg.KeepOutput {
		if _, err := os.Stat(visPath); err == nil {
			rep.VisPath = visPath
		}
		c.Close()
		r.keepOutput(dir)
	} else {
		c.Close()
		os.RemoveAll(dir)
	}
	return rep, nil
}

// panicked is a panic of a lane goroutine, re-raised by Run.
type panicked struct {
	value any
	stack []byte
}

// keepOutput dumps the member logs into dir/logs and records dir in the
// report.
func (r *campaign) keepOutput(dir string) {
	r.rep.OutDir = dir
	if _, err := r.c.DumpLogs(filepath.Join(dir, "logs")); err != nil {
		r.logf("dumping member logs: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "timeline.txt"), []byte(strings.Join(r.rep.Timeline, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "schedule.txt"), []byte(r.rep.Schedule.String()), 0o644)
}

func (r *campaign) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if !r.start.IsZero() {
		line = fmt.Sprintf("[%6.2fs] %s", time.Since(r.start).Seconds(), line)
	}
	r.mu.Lock()
	if r.rep != nil {
		r.rep.Timeline = append(r.rep.Timeline, line)
	}
	r.mu.Unlock()
	if r.cfg.Progress != nil {
		fmt.Fprintln(r.cfg.Progress, line)
	}
}

func (r *campaign) violate(vs ...Violation) {
	if len(vs) == 0 {
		return
	}
	r.mu.Lock()
	r.violations = append(r.violations, vs...)
	r.mu.Unlock()
	for _, v := range vs {
		r.logf("VIOLATION %s", v)
	}
}

func (r *campaign) outcome(format string, args ...any) {
	r.violate(Violation{Check: CheckFaultOutcome, Detail: fmt.Sprintf(format, args...)})
}

func (r *campaign) injected(kind FaultKind) {
	r.mu.Lock()
	r.rep.Injected[kind]++
	r.mu.Unlock()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// load is the running load of a campaign.
type load struct {
	clients  []*kvClient
	watchers []*watcher
	keepers  []*leaseKeeper

	stopClients, stopWatchers, stopGrants, stopLeases context.CancelFunc
	clientsDone, watchersDone, keepersDone            sync.WaitGroup
	closeOnce                                         sync.Once
}

// startLoad starts the clients, watchers and lease keepers, spread over the
// members.
func (r *campaign) startLoad(rec *recorder) (*load, error) {
	ld := &load{}
	n := len(r.c.Members)
	cctx, stopClients := context.WithCancel(r.ctx)
	wctx, stopWatchers := context.WithCancel(r.ctx)
	gctx, stopGrants := context.WithCancel(r.ctx)
	lctx, stopLeases := context.WithCancel(r.ctx)
	ld.stopClients, ld.stopWatchers, ld.stopGrants, ld.stopLeases = stopClients, stopWatchers, stopGrants, stopLeases
	for i := 0; i < r.cfg.Clients; i++ {
		cl, err := newKVClient(i, r.c.Members[i%n], r.cfg.Seed, rec)
		if err != nil {
			ld.close()
			return nil, err
		}
		ld.clients = append(ld.clients, cl)
		ld.clientsDone.Add(1)
		go func() { defer ld.clientsDone.Done(); cl.run(cctx) }()
	}
	for i := 0; i < r.cfg.Watchers; i++ {
		w, err := newWatcher(i+1, r.c.Members[(i+1)%n], rec)
		if err != nil {
			ld.close()
			return nil, err
		}
		ld.watchers = append(ld.watchers, w)
		ld.watchersDone.Add(1)
		go func() { defer ld.watchersDone.Done(); w.run(wctx) }()
	}
	for i := 0; i < r.cfg.Leases; i++ {
		k, err := newLeaseKeeper(lctx, i+1, r.c.Members[(i+2)%n], rec)
		if err != nil {
			ld.close()
			return nil, err
		}
		ld.keepers = append(ld.keepers, k)
		ld.keepersDone.Add(1)
		go func() { defer ld.keepersDone.Done(); k.run(gctx) }()
	}
	// Let the watchers be created before the first fault.
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range ld.watchers {
		for w.progress.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ld, nil
}

// stop ends the clients and waits for them.
func (ld *load) stopKV() {
	ld.stopClients()
	ld.clientsDone.Wait()
}

// close ends everything and closes the clients; it may be called more than
// once.
func (ld *load) close() {
	ld.closeOnce.Do(func() {
		ld.stopClients()
		ld.stopWatchers()
		ld.stopGrants()
		ld.stopLeases()
		ld.clientsDone.Wait()
		ld.watchersDone.Wait()
		ld.keepersDone.Wait()
		for _, c := range ld.clients {
			c.cli.Close()
		}
		for _, w := range ld.watchers {
			w.cli.Close()
		}
		for _, k := range ld.keepers {
			k.cli.Close()
		}
	})
}

// heal ends every fault: SIGCONT, net rules cleared, exited members
// restarted (and repaired if their restart is refused), and waits for a
// leader.
func (r *campaign) heal() {
	r.logf("healing")
	for _, m := range r.c.Members {
		if err := r.c.Resume(m); err != nil {
			r.logf("heal: %v", err)
		}
	}
	for _, m := range r.c.Members {
		if !m.Running() {
			r.restartOrRepair(m, "healing")
		}
	}
	for _, m := range r.c.Members {
		if m.Running() && r.c.FaultAPI {
			if err := retry(r.ctx, 5*time.Second, func(ctx context.Context) error { return r.c.ClearNet(ctx, m) }); err != nil {
				r.logf("heal: clearing net rules: %v", err)
			}
		}
	}
	leader, err := r.c.WaitLeader(r.ctx, 20*time.Second)
	if err != nil {
		r.violate(Violation{Check: CheckLiveness, Detail: fmt.Sprintf("after healing: %v", err)})
		return
	}
	r.logf("healed: leader %s", leader.Name)
}

// restartOrRepair restarts m, which has no process; a refused restart is a
// violation (why tells what the runner was doing) and m is repaired.
func (r *campaign) restartOrRepair(m *Member, why string) {
	if err := r.c.spawn(m, false); err != nil {
		r.logf("%s: restarting %s: %v", why, m.Name, err)
		return
	}
	served, code, err := r.c.WaitStartOutcome(r.ctx, m, startTimeout)
	switch {
	case err != nil:
		r.outcome("%s: restart of %s: %v", why, m.Name, err)
		r.c.Kill(m)
	case served:
		return
	default:
		r.outcome("%s: restart of %s refused (exit status %d); last log lines:\n%s", why, m.Name, code, tailLines(m.current().log.String(), 8))
	}
	if err := r.c.Repair(r.ctx, m); err != nil {
		r.outcome("%s: repair of %s: %v", why, m.Name, err)
	}
}

// liveness waits until every client completes a few operations after
// healing, then revokes half of the leases.
func (r *campaign) liveness(ld *load) {
	const want = 3
	base := make([]int64, len(ld.clients))
	for i, cl := range ld.clients {
		base[i] = cl.completed.Load()
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, cl := range ld.clients {
		for cl.completed.Load() < base[i]+want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := cl.completed.Load() - base[i]; got < want {
			r.violate(Violation{Check: CheckLiveness, Detail: fmt.Sprintf("client %d (member %s) completed %d operations in 20 s after healing, want %d", cl.id, cl.member.Name, got, want)})
		}
	}
	for i, k := range ld.keepers {
		if i%2 == 0 {
			if err := k.revoke(); err != nil {
				r.logf("revoke of lease keeper %d's lease: %v", k.id, err)
			}
		}
	}
	r.logf("liveness: every client made progress")
}

// settle stops the writers, waits until every member serves the same
// revision, and returns it; then waits until each watcher has caught up
// with it.
func (r *campaign) settle(ld *load) int64 {
	ld.stopGrants()
	ld.stopKV()
	var finalRev int64
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		revs := make([]int64, len(r.c.Members))
		var desc []string
		same := true
		for i, m := range r.c.Members {
			st, err := r.c.status(r.ctx, m)
			if err != nil {
				desc = append(desc, fmt.Sprintf("%s: %v", m.Name, err))
				same = false
				continue
			}
			revs[i] = st.Header.Revision
			desc = append(desc, fmt.Sprintf("%s at %d", m.Name, revs[i]))
			if revs[i] != revs[0] {
				same = false
			}
		}
		last = strings.Join(desc, ", ")
		if same && revs[0] == finalRev {
			break // the same twice in a row
		}
		if same {
			finalRev = revs[0]
		} else {
			finalRev = 0
		}
		if time.Now().After(deadline) {
			r.violate(Violation{Check: CheckConvergence, Detail: "members did not reach the same revision within 20 s: " + last})
			finalRev = slices.Max(revs)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.logf("final revision %d (%s)", finalRev, last)
	// Every watcher must catch up.
	deadline = time.Now().Add(15 * time.Second)
	for _, w := range ld.watchers {
		for w.progress.Load() < finalRev && time.Now().Before(deadline) {
			w.requestProgress()
			time.Sleep(100 * time.Millisecond)
		}
		if got := w.progress.Load(); got < finalRev {
			r.violate(Violation{Check: CheckLiveness, Detail: fmt.Sprintf("watcher %d (member %s) reached revision %d, not the final %d, 15 s after healing", w.id, w.member.Name, got, finalRev)})
		}
	}
	// The watchers alive now lived to the end (End ""): stop them.
	ld.stopWatchers()
	ld.watchersDone.Wait()
	for _, w := range ld.watchers {
		caughtUp := w.progress.Load() >= finalRev
		w.rec.mu.Lock()
		for _, wl := range w.rec.watches {
			if wl.ID/1000 == w.id && wl.End == "stopped by the runner" && caughtUp {
				wl.End = ""
			}
		}
		w.rec.mu.Unlock()
	}
	return finalRev
}

// fullHistory reads every event from revision 1 through finalRev with a
// fresh watch of the whole key space through each member. Histories that
// differ are a convergence violation naming the first difference; the
// checkers get the history most members agree on (the leader's if none).
func (r *campaign) fullHistory(finalRev int64) []WatchEvent {
	if finalRev <= 1 {
		return []WatchEvent{}
	}
	hs := make([][]WatchEvent, len(r.c.Members))
	for i, m := range r.c.Members {
		h, err := readHistory(r.ctx, m, finalRev)
		if err != nil {
			r.violate(Violation{Check: CheckLiveness, Detail: fmt.Sprintf("full history through %s: %v", m.Name, err)})
			continue
		}
		hs[i] = h
	}
	best, votes := -1, 0
	for i, h := range hs {
		if h == nil {
			continue
		}
		n := 0
		for _, o := range hs {
			if o != nil && slices.Equal(h, o) {
				n++
			}
		}
		if n > votes {
			best, votes = i, n
		}
	}
	if best < 0 {
		return nil
	}
	if votes <= len(hs)/2 {
		if l, err := r.c.Leader(r.ctx); err == nil && hs[l.Index] != nil {
			best = l.Index
		}
	}
	ref := r.c.Members[best]
	for i, h := range hs {
		if h != nil && !slices.Equal(h, hs[best]) {
			r.violate(Violation{Check: CheckConvergence, Detail: fmt.Sprintf("the full history through %s differs from %s's: %s",
				r.c.Members[i].Name, ref.Name, firstDifference(h, hs[best]))})
		}
	}
	return hs[best]
}

// readHistory reads the events of revisions 1 through finalRev through m.
func readHistory(ctx context.Context, m *Member, finalRev int64) ([]WatchEvent, error) {
	cli, err := newClient(m.ClientURL)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	full := []WatchEvent{}
	last := int64(0)
	for resp := range cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return nil, err
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision <= finalRev {
				full = append(full, watchEvent(ev))
			}
			last = max(last, ev.Kv.ModRevision)
		}
		if last >= finalRev {
			return full, nil
		}
	}
	return nil, fmt.Errorf("the watch ended at revision %d, before the final %d", last, finalRev)
}

// firstDifference describes where a and b first differ.
func firstDifference(a, b []WatchEvent) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("event %d is %s, not %s", i, describeEvent(a[i]), describeEvent(b[i]))
		}
	}
	return fmt.Sprintf("%d events, not %d", len(a), len(b))
}

func describeEvent(e WatchEvent) string {
	if !e.Put {
		return fmt.Sprintf("DELETE %q at revision %d", e.Key, e.ModRev)
	}
	return fmt.Sprintf("PUT %q=%q at revision %d (created %d, version %d)", e.Key, e.Value, e.ModRev, e.CreateRev, e.Version)
}

// convergence compares HashKV at finalRev on every member.
func (r *campaign) convergence(finalRev int64) {
	type answer struct {
		m    *Member
		h    *clientv3.HashKVResponse
		err  error
		desc string
	}
	var as []answer
	for _, m := range r.c.Members {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		h, err := r.c.admin.HashKV(ctx, strings.TrimPrefix(m.ClientURL, "http://"), finalRev)
		cancel()
		a := answer{m: m, h: h, err: err}
		if err == nil {
			a.desc = fmt.Sprintf("%s: hash %d (hash_revision %d, compact_revision %d)", m.Name, h.Hash, h.HashRevision, h.CompactRevision)
		} else {
			a.desc = fmt.Sprintf("%s: %v", m.Name, err)
		}
		as = append(as, a)
	}
	var desc []string
	ok := true
	for _, a := range as {
		desc = append(desc, a.desc)
		if a.err != nil || as[0].err != nil || a.h.Hash != as[0].h.Hash || a.h.HashRevision != as[0].h.HashRevision || a.h.CompactRevision != as[0].h.CompactRevision {
			ok = false
		}
	}
	if !ok {
		r.violate(Violation{Check: CheckConvergence, Detail: fmt.Sprintf("HashKV(%d) differs: %s", finalRev, strings.Join(desc, "; "))})
		return
	}
	r.logf("converged: HashKV(%d) = %d on every member", finalRev, as[0].h.Hash)
}

// lane injects faults one after another, each no earlier than its At and
// after the previous one was undone, until ctx ends.
func (r *campaign) lane(ctx context.Context, faults []Fault) {
	for _, f := range faults {
		wait := time.Until(r.start.Add(f.At))
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		r.inject(ctx, f)
	}
}

// acquire resolves a fault's target index (or LeaderTarget) to a member
// that no other lane is faulting, marks it busy and returns it with a note
// on how it was chosen; nil if none is free.
func (r *campaign) acquire(ctx context.Context, idx int, ok func(*Member) bool) (*Member, string) {
	var m *Member
	note := ""
	if idx == LeaderTarget {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		l, err := r.c.WaitLeader(lctx, 3*time.Second)
		cancel()
		if err == nil {
			m, note = l, " (the leader)"
		} else {
			note = " (no leader agreed; a follower instead)"
		}
	} else {
		m = r.c.Members[idx]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	free := func(x *Member) bool { return x != nil && !r.busy[x] && (ok == nil || ok(x)) }
	if !free(m) {
		start := 0
		if m != nil {
			start = m.Index
			note += fmt.Sprintf(" (%s busy, moved on)", m.Name)
		}
		m = nil
		for i := 1; i <= len(r.c.Members); i++ {
			if x := r.c.Members[(start+i)%len(r.c.Members)]; free(x) {
				m = x
				break
			}
		}
	}
	if m != nil {
		r.busy[m] = true
	}
	return m, note
}

func (r *campaign) release(m *Member) {
	r.mu.Lock()
	delete(r.busy, m)
	r.mu.Unlock()
}

// running is the acquire filter of faults that need the member's process.
func running(m *Member) bool { return m.Running() && !m.Paused() }

// inject injects f and, for a fault with a duration, undoes it afterwards,
// checking the outcome each fault kind must have.
func (r *campaign) inject(ctx context.Context, f Fault) {
	switch f.Kind {
	case FaultLossy:
		r.injectLossy(ctx, f)
		return
	case FaultPartition, FaultIsolateLeader:
		r.injectPartition(ctx, f)
		return
	case FaultOneWay:
		r.injectOneWay(ctx, f)
		return
	}
	ok := running
	if f.Kind == FaultKillActor {
		// The process gives up after more than 5 restarts in a minute:
		// stay below. (acquire calls ok under r.mu.)
		ok = func(m *Member) bool { return running(m) && r.killsLastMinuteLocked(m)+len(f.Kills) <= 4 }
	}
	m, note := r.acquire(ctx, f.Target, ok)
	if m == nil {
		r.logf("%s: skipped: no member to fault%s", f.Kind, note)
		return
	}
	defer r.release(m)
	switch f.Kind {
	case FaultKillActor:
		r.injectKillActor(m, f, note)
	case FaultSigkill:
		r.logf("sigkill %s%s, down %v", m.Name, note, f.Duration)
		r.c.Kill(m)
		r.injected(f.Kind)
		sleep(ctx, f.Duration)
		r.restartOrRepair(m, "restart after SIGKILL")
	case FaultPause:
		r.logf("pause %s%s for %v", m.Name, note, f.Duration)
		if err := r.c.Pause(m); err != nil {
			r.logf("pause %s: %v", m.Name, err)
		} else {
			r.injected(f.Kind)
		}
		sleep(ctx, f.Duration)
		if err := r.c.Resume(m); err != nil {
			r.logf("resume %s: %v", m.Name, err)
		}
	case FaultFsyncError:
		r.injectFsync(ctx, m, f, note)
	case FaultTornWAL, FaultWALBitflip, FaultBackendBitflip:
		r.injectDisk(ctx, m, f, note)
	}
}

// killsLastMinuteLocked counts the actor kills of m in the last minute;
// r.mu is held.
func (r *campaign) killsLastMinuteLocked(m *Member) int {
	n := 0
	for _, t := range r.kills[m] {
		if time.Since(t) < time.Minute {
			n++
		}
	}
	return n
}

// Bounds of a kill-actor's recovery: the member must serve again, in the
// same process, within killRecoveryTimeout, plus, when members run the
// initial corruption check (which asks every peer for its HashKV before
// serving), corruptCheckPeerTimeout for each peer that was down, paused or
// itself restarting after a kill meanwhile and so could not answer.
const (
	killRecoveryTimeout     = 10 * time.Second
	corruptCheckPeerTimeout = 6 * time.Second // aetcd's initial check logs "timeout":6000
)

// injectKillActor kills f's actors on m one after another; after each the
// member must serve again, in the same process (see killRecoveryTimeout).
// How long each took goes into the report.
func (r *campaign) injectKillActor(m *Member, f Fault, note string) {
	for i, k := range f.Kills {
		p := m.current()
		if p == nil {
			return
		}
		before := p.log.Count(readyMsg)
		err := r.c.KillActor(r.ctx, m, k.Actor, k.How)
		if err != nil {
			r.logf("kill-actor %s %s%s: %v", m.Name, k, note, err)
			return
		}
		killed := time.Now()
		r.logf("kill-actor %s %s%s", m.Name, k, note)
		r.mu.Lock()
		r.kills[m] = append(r.kills[m], killed)
		r.rep.Kills[k.String()]++
		r.mu.Unlock()
		if i == 0 {
			r.injected(f.Kind)
		}
		r.setRecovering(m, true)
		err = r.waitRecovered(m, p, before+1, killed)
		r.setRecovering(m, false)
		if err != nil {
			r.outcome("kill-actor %s on %s: the member did not serve again in the same process: %v", k, m.Name, err)
			if !m.Running() {
				r.restartOrRepair(m, "restart after kill-actor")
			}
			return
		}
		took := time.Since(killed)
		r.mu.Lock()
		r.rep.KillRecoveries = append(r.rep.KillRecoveries, took)
		r.mu.Unlock()
		if took > 3*time.Second {
			r.logf("%s served again %v after the kill", m.Name, took.Round(time.Millisecond))
		}
	}
}

// setRecovering marks m as restarting after an actor kill (alive, but not
// serving its peers).
func (r *campaign) setRecovering(m *Member, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.recovering[m] = true
	} else {
		delete(r.recovering, m)
	}
}

func (r *campaign) isRecovering(m *Member) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recovering[m]
}

// waitRecovered waits until p's log holds n ready lines, within the bound
// described at killRecoveryTimeout.
func (r *campaign) waitRecovered(m *Member, p *process, n int, killed time.Time) error {
	deadline := killed.Add(killRecoveryTimeout)
	down := map[*Member]bool{}
	for p.log.Count(readyMsg) < n {
		if r.c.CorruptCheck {
			for _, o := range r.c.Members {
				if o != m && !down[o] && (!o.Running() || o.Paused() || r.isRecovering(o)) {
					down[o] = true
					deadline = deadline.Add(corruptCheckPeerTimeout)
				}
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("the process exited (%v); last log lines:\n%s", p.exitErr, tailLines(p.log.String(), 10))
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving %v after the kill (%d peers down meanwhile)", time.Since(killed).Round(time.Millisecond), len(down))
		}
	}
	return nil
}

// injectFsync makes m's next WAL fdatasync fail: the process must exit
// non-zero within 10 s, and restart from its data dir afterwards.
func (r *campaign) injectFsync(ctx context.Context, m *Member, f Fault, note string) {
	m.ExpectExit()
	if err := r.c.FailFsync(r.ctx, m); err != nil {
		r.logf("fsync-error %s%s: %v", m.Name, note, err)
		return
	}
	r.logf("fsync-error %s%s", m.Name, note)
	r.injected(f.Kind)
	code, err := r.c.WaitExit(r.ctx, m, 10*time.Second)
	switch {
	case err != nil:
		r.outcome("fsync-error on %s: %v after its WAL fdatasync failed", m.Name, err)
		r.c.Kill(m)
	case code == 0:
		r.outcome("fsync-error on %s: the process exited with status 0 after its WAL fdatasync failed", m.Name)
	default:
		r.logf("%s exited with status %d after the failed fdatasync", m.Name, code)
	}
	sleep(ctx, f.Duration)
	r.restartOrRepair(m, "restart after fsync-error")
}

// injectDisk SIGKILLs m, damages its data dir and restarts it: after a torn
// WAL tail it must serve; after a bit flip it must refuse to start (exit
// non-zero), and is then repaired.
func (r *campaign) injectDisk(ctx context.Context, m *Member, f Fault, note string) {
	r.c.Kill(m)
	r.mu.Lock()
	var desc string
	var err error
	switch f.Kind {
	case FaultTornWAL:
		desc, err = TearWALTail(m.Dir, r.rng)
	case FaultWALBitflip:
		desc, err = FlipWALBit(m.Dir, r.rng)
	case FaultBackendBitflip:
		desc, err = FlipBackendBit(m.Dir, r.rng)
	}
	r.mu.Unlock()
	if err != nil {
		r.logf("%s %s%s: %v; restarting it undamaged", f.Kind, m.Name, note, err)
		r.restartOrRepair(m, "restart after a failed disk fault")
		return
	}
	r.logf("%s %s%s: %s", f.Kind, m.Name, note, desc)
	r.injected(f.Kind)
	sleep(ctx, f.Duration)
	wantServe := f.Kind == FaultTornWAL
	// bbolt checksums its two meta pages and uses the newer valid one: a
	// flip in the older is ignored, one in the newer falls back to the
	// older commit (the WAL replays the rest). Either way it may serve.
	mayServe := f.Kind == FaultBackendBitflip && strings.Contains(desc, "meta page")
	// Every restart after damage may exit; one that serves is checked
	// below and then expected to live on.
	if err := r.c.spawn(m, true); err != nil {
		r.logf("%s: %v", m.Name, err)
		return
	}
	served, code, err := r.c.WaitStartOutcome(r.ctx, m, startTimeout)
	switch {
	case err != nil:
		r.outcome("%s on %s (%s): restart: %v", f.Kind, m.Name, desc, err)
		r.c.Kill(m)
	case served && mayServe:
		if _, err := r.waitRejoined(m, 20*time.Second); err != nil {
			r.outcome("%s on %s (%s): the member restarted but did not rejoin: %v", f.Kind, m.Name, desc, err)
			r.c.Kill(m)
			r.restartOrRepair(m, "restart after "+string(f.Kind))
			return
		}
		r.note("%s on %s (%s) hit a meta page, which bbolt's own checksum covers: the member serves", f.Kind, m.Name, desc)
		m.SetExpectExit(false)
		return
	case served && wantServe:
		// It must also rejoin. A tear can only take what the member had
		// not acknowledged if it happened in the middle of a write; the
		// tool tears the last record, which the member may have
		// acknowledged (fsynced). Raft cannot tolerate a lost
		// acknowledged entry: the member must then fail-stop, and is
		// repaired (a note, not a violation).
		fatal, err := r.waitRejoined(m, 20*time.Second)
		if err == nil {
			m.SetExpectExit(false)
			return
		}
		if fatal == "" {
			r.outcome("%s on %s (%s): the member restarted but did not rejoin: %v", f.Kind, m.Name, desc, err)
			r.c.Kill(m)
			r.restartOrRepair(m, "restart after torn-wal")
			return
		}
		r.note("%s on %s (%s) took an acknowledged record: the member fail-stopped (%s) and was repaired", f.Kind, m.Name, desc, fatal)
		r.c.Kill(m)
	case served:
		r.outcome("%s on %s (%s): the restart was not refused: the member serves", f.Kind, m.Name, desc)
		return
	case wantServe && strings.Contains(m.current().log.String(), "durable entries were lost"):
		r.note("%s on %s (%s) took an acknowledged record: the restart was refused (%s) and the member repaired", f.Kind, m.Name, desc, lastLine(m.current().log.String()))
	case wantServe:
		r.outcome("%s on %s (%s): restart refused (exit status %d); last log lines:\n%s", f.Kind, m.Name, desc, code, tailLines(m.current().log.String(), 8))
	case code == 0:
		r.outcome("%s on %s (%s): the restart exited with status 0", f.Kind, m.Name, desc)
	default:
		r.logf("%s refused to start (exit status %d): %s", m.Name, code, lastLine(m.current().log.String()))
	}
	if err := r.c.Repair(r.ctx, m); err != nil {
		r.outcome("%s on %s: repair: %v", f.Kind, m.Name, err)
	}
}

// fatalMsg is what a member logs when it fail-stops.
const fatalMsg = "member stopping on a fatal error"

// waitRejoined waits until m's current process serves a linearizable read
// through its own endpoint. If the process fail-stops first (it logs
// fatalMsg or exits), fatal holds the error it logged.
func (r *campaign) waitRejoined(m *Member, timeout time.Duration) (fatal string, err error) {
	p := m.current()
	if p == nil {
		return "", ErrNotRunning
	}
	cli, err := newClient(m.ClientURL)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		if line := lineWith(p.log.String(), fatalMsg); line != "" {
			return line, errors.New("the member fail-stopped")
		}
		select {
		case <-p.exited:
			return lastLine(p.log.String()), fmt.Errorf("the process exited: %v", p.exitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(r.ctx, opTimeout)
		_, err := cli.Get(ctx, "/chaos/rejoined")
		cancel()
		if err == nil {
			return "", nil
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			return "", fmt.Errorf("no linearizable read within %v: %w", timeout, err)
		}
		sleep(r.ctx, 100*time.Millisecond)
	}
}

// lineWith returns the first line of s containing sub, or "".
func lineWith(s, sub string) string {
	i := strings.Index(s, sub)
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}

func (r *campaign) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.rep.Notes = append(r.rep.Notes, n)
	r.mu.Unlock()
	r.logf("NOTE %s", n)
}

// lastLine returns the last line of s that is not a runner comment.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "# ") {
			return lines[i]
		}
	}
	return ""
}

// setNet sets rules (at, from) on running members, skipping members that
// are down or do not answer (a member restarting loses its rules anyway),
// and reports whether any rule was set: the fault counts as injected.
func (r *campaign) setNet(rules [][2]*Member, rule NetRule) bool {
	set := false
	for _, p := range rules {
		at, from := p[0], p[1]
		if !at.Running() || at.Paused() {
			continue
		}
		if err := r.c.SetNet(r.ctx, at, from, rule); err != nil {
			r.logf("net rule at %s from %s: %v", at.Name, from.Name, err)
			continue
		}
		set = true
	}
	return set
}

func (r *campaign) clearNet() {
	for _, m := range r.c.Members {
		if m.Running() && !m.Paused() {
			if err := r.c.ClearNet(r.ctx, m); err != nil {
				r.logf("clearing net rules at %s: %v", m.Name, err)
			}
		}
	}
}

func (r *campaign) injectPartition(ctx context.Context, f Fault) {
	m, note := r.acquire(ctx, f.Target, nil)
	if m == nil {
		r.logf("%s: skipped: no member to isolate%s", f.Kind, note)
		return
	}
	defer r.release(m)
	var rules [][2]*Member
	for _, o := range r.c.Members {
		if o != m {
			rules = append(rules, [2]*Member{o, m}, [2]*Member{m, o})
		}
	}
	r.logf("%s: %s%s isolated for %v", f.Kind, m.Name, note, f.Duration)
	if r.setNet(rules, NetRule{Blackhole: true}) {
		r.injected(f.Kind)
	}
	sleep(ctx, f.Duration)
	r.clearNet()
}

func (r *campaign) injectOneWay(ctx context.Context, f Fault) {
	from, note := r.acquire(ctx, f.Target, nil)
	if from == nil {
		r.logf("%s: skipped: no member%s", f.Kind, note)
		return
	}
	defer r.release(from)
	to := r.c.Members[f.Peer]
	if to == from {
		to = r.c.Members[(f.Peer+1)%len(r.c.Members)]
	}
	r.logf("one-way: %s%s -> %s dropped for %v", from.Name, note, to.Name, f.Duration)
	if r.setNet([][2]*Member{{to, from}}, NetRule{Blackhole: true}) {
		r.injected(f.Kind)
	}
	sleep(ctx, f.Duration)
	r.clearNet()
}

func (r *campaign) injectLossy(ctx context.Context, f Fault) {
	var rules [][2]*Member
	for _, a := range r.c.Members {
		for _, b := range r.c.Members {
			if a != b {
				rules = append(rules, [2]*Member{a, b})
			}
		}
	}
	r.logf("lossy: all links %s for %v", f.Net, f.Duration)
	if r.setNet(rules, f.Net) {
		r.injected(f.Kind)
	}
	sleep(ctx, f.Duration)
	r.clearNet()
}
