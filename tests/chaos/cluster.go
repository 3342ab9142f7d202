package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aetcd/aetcd/cluster"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A Cluster is a cluster of aetcd child processes on loopback, each started
// with etcd's cluster flags and --fault-injection. Every method may be called
// from any goroutine. Close kills every process; the processes also die
// with the runner (SIGKILL on parent death, on Linux).

const (
	clusterToken = "aetcd-chaos"
	readyMsg     = "ready to serve client requests"
	// startTimeout bounds how long a member may take to serve or refuse.
	startTimeout = 20 * time.Second
	// adminTimeout bounds one administrative request (Status, member
	// add/remove, a fault endpoint).
	adminTimeout = 2 * time.Second
)

// ErrNotRunning is returned for an operation on a member with no process.
var ErrNotRunning = errors.New("chaos: member is not running")

// Member is one member of a Cluster: a fixed name, data dir, client and
// peer URLs, and a current process (an incarnation), if any. Its member
// ID changes when the runner repairs it (member remove + add).
type Member struct {
	Name      string
	Index     int
	Dir       string
	ClientURL string
	PeerURL   string

	mu          sync.Mutex
	id          uint64
	joinCluster string // after a repair: --initial-cluster with state existing
	proc        *process
	procs       []*process // every incarnation, oldest first
	paused      bool
}

// process is one incarnation of a member.
type process struct {
	n      int // 1-based incarnation number
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	// Set before exited is closed.
	exitCode int // -1: killed by a signal
	exitErr  error
	// expectExit is set (under the member's mu) before the runner does
	// something that ends or may end the process: a later exit without it
	// is unexpected.
	expectExit bool
	unexpected bool // exited without expectExit
	started    time.Time
	ended      time.Time
}

// ID returns the member's current member ID.
func (m *Member) ID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Running reports whether the member has a process that has not exited.
func (m *Member) Running() bool {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Paused reports whether the member's process is SIGSTOPped.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

func (m *Member) current() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Host returns the member's peer host:port (what the net fault endpoint's
// from= names).
func (m *Member) peerHost() string { return strings.TrimPrefix(m.PeerURL, "http://") }

// Cluster is a cluster of member processes.
type Cluster struct {
	Binary  string
	Members []*Member
	initial string // --initial-cluster of the original members
	extra   []string
	logf    func(format string, args ...any)

	admin *clientv3.Client // all client URLs; used for Status and maintenance
	http  *http.Client
	// FaultAPI is whether the binary has --fault-injection (it is passed
	// only then; without it the fault endpoints' faults fail).
	FaultAPI bool
	// CorruptCheck is whether the binary has
	// --experimental-initial-corrupt-check, passed then: a restarting
	// member compares its HashKV with its peers' and refuses to serve on
	// a mismatch, which is what catches a flipped backend bit in a value.
	CorruptCheck bool

	mu         sync.Mutex
	closed     bool
	unexpected []string // descriptions of unexpected exits
}

// NewCluster prepares (does not start) a cluster of n members of binary with
// data dirs under dir, on free loopback ports. extra flags are appended to
// every member's command line. logf receives progress lines (may be nil).
func NewCluster(binary string, n int, dir string, logf func(string, ...any), extra ...string) (*Cluster, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Binary: binary, extra: extra, logf: logf, http: &http.Client{Timeout: adminTimeout}}
	help, _ := exec.Command(binary, "--help").CombinedOutput()
	c.FaultAPI = bytes.Contains(help, []byte("fault-injection"))
	c.CorruptCheck = bytes.Contains(help, []byte("experimental-initial-corrupt-check"))
	if !c.FaultAPI {
		logf("%s has no --fault-injection: faults through the member's fault endpoints will fail", binary)
	}
	var parts, clientURLs []string
	for i := 0; i < n; i++ {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i+1),
			Index:     i,
			Dir:       filepath.Join(dir, fmt.Sprintf("m%d.data", i+1)),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.id = cluster.MemberID([]string{m.PeerURL}, clusterToken)
		if err := os.MkdirAll(m.Dir, 0o700); err != nil {
			return nil, err
		}
		parts = append(parts, m.Name+"="+m.PeerURL)
		clientURLs = append(clientURLs, m.ClientURL)
		c.Members = append(c.Members, m)
	}
	c.initial = strings.Join(parts, ",")
	c.admin, err = newClient(clientURLs...)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// newClient returns a clientv3 client of endpoints with short timeouts and
// no logging.
func newClient(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          adminTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start starts every member at once, waits until each serves and until they
// agree on a leader.
func (c *Cluster) Start(ctx context.Context) error {
	for _, m := range c.Members {
		if err := c.spawn(m, false); err != nil {
			return err
		}
	}
	for _, m := range c.Members {
		if err := c.WaitReady(ctx, m); err != nil {
			return err
		}
	}
	_, err := c.WaitLeader(ctx, 15*time.Second)
	return err
}

func (c *Cluster) args(m *Member) []string {
	m.mu.Lock()
	initial, state := c.initial, "new"
	if m.joinCluster != "" {
		initial, state = m.joinCluster, "existing"
	}
	m.mu.Unlock()
	args := []string{
		"--name", m.Name, "--data-dir", m.Dir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial, "--initial-cluster-token", clusterToken,
		"--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500",
	}
	if c.FaultAPI {
		args = append(args, "--fault-injection")
	}
	if c.CorruptCheck {
		args = append(args, "--experimental-initial-corrupt-check")
	}
	return append(args, c.extra...)
}

// spawn starts a new incarnation of m without waiting for it to serve;
// expectExit marks it as one that may exit (a restart that must be
// refused).
func (c *Cluster) spawn(m *Member, expectExit bool) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("chaos: cluster closed")
	}
	args := c.args(m)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.exited:
		default:
			return fmt.Errorf("chaos: %s started while running", m.Name)
		}
	}
	p := &process{n: len(m.procs) + 1, log: &logBuffer{}, exited: make(chan struct{}), started: time.Now(), expectExit: expectExit}
	fmt.Fprintf(p.log, "# %s incarnation %d: %s %s\n", m.Name, p.n, c.Binary, strings.Join(args, " "))
	cmd := exec.Command(c.Binary, args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", m.Name, err)
	}
	p.cmd = cmd
	m.proc, m.paused = p, false
	m.procs = append(m.procs, p)
	go c.reap(m, p)
	return nil
}

// reap waits for p to exit and records how.
func (c *Cluster) reap(m *Member, p *process) {
	err := p.cmd.Wait()
	m.mu.Lock()
	p.exitErr = err
	p.exitCode = p.cmd.ProcessState.ExitCode()
	p.ended = time.Now()
	// A process that exits before it serves is reported by whoever waits
	// for it to serve.
	p.unexpected = !p.expectExit && p.log.Count(readyMsg) > 0
	if m.proc == p {
		m.paused = false
	}
	m.mu.Unlock()
	fmt.Fprintf(p.log, "# %s incarnation %d exited: %v\n", m.Name, p.n, err)
	close(p.exited)
	c.mu.Lock()
	closed := c.closed
	if p.unexpected && !closed {
		c.unexpected = append(c.unexpected, fmt.Sprintf("%s (incarnation %d) exited unexpectedly at %s: %v; last log lines:\n%s",
			m.Name, p.n, p.ended.Format("15:04:05.000"), err, tailLines(p.log.String(), 15)))
	}
	c.mu.Unlock()
	if p.unexpected && !closed {
		c.logf("%s exited unexpectedly: %v", m.Name, err)
	}
}

// Unexpected returns the descriptions of member exits the runner did not
// cause or expect.
func (c *Cluster) Unexpected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.unexpected...)
}

// ExpectExit marks m's current process as possibly ending because of
// what the runner does next (a fault whose outcome is an exit).
func (m *Member) ExpectExit() {
	m.mu.Lock()
	if m.proc != nil {
		m.proc.expectExit = true
	}
	m.mu.Unlock()
}

// SetExpectExit sets whether an exit of m's current process is expected.
func (m *Member) SetExpectExit(on bool) {
	m.mu.Lock()
	if m.proc != nil {
		m.proc.expectExit = on
	}
	m.mu.Unlock()
}

// WaitReady waits until m's current incarnation logs that it serves. It
// returns an error if the process exits first or does not serve within
// startTimeout.
func (c *Cluster) WaitReady(ctx context.Context, m *Member) error {
	p := m.current()
	if p == nil {
		return fmt.Errorf("%s: %w", m.Name, ErrNotRunning)
	}
	return c.waitReadyCount(ctx, m, p, 1, startTimeout)
}

// waitReadyCount waits until p's log holds at least n ready lines.
func (c *Cluster) waitReadyCount(ctx context.Context, m *Member, p *process, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for p.log.Count(readyMsg) < n {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before serving (%v); last log lines:\n%s", m.Name, p.exitErr, tailLines(p.log.String(), 10))
		case <-deadline.C:
			return fmt.Errorf("%s did not serve within %v", m.Name, timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// WaitStartOutcome waits until m's current incarnation either serves
// (served true) or exits (served false, with its exit code).
func (c *Cluster) WaitStartOutcome(ctx context.Context, m *Member, timeout time.Duration) (served bool, exitCode int, err error) {
	p := m.current()
	if p == nil {
		return false, 0, ErrNotRunning
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if p.log.Count(readyMsg) > 0 {
			return true, 0, nil
		}
		select {
		case <-p.exited:
			return false, p.exitCode, nil
		case <-deadline.C:
			return false, 0, fmt.Errorf("%s neither served nor exited within %v", m.Name, timeout)
		case <-ctx.Done():
			return false, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitExit waits until m's current process exits and returns its exit
// code (-1 for a signal).
func (c *Cluster) WaitExit(ctx context.Context, m *Member, timeout time.Duration) (int, error) {
	p := m.current()
	if p == nil {
		return 0, ErrNotRunning
	}
	select {
	case <-p.exited:
		return p.exitCode, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s did not exit within %v", m.Name, timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Restart starts a new incarnation of m (which must not be running) and
// waits until it serves.
func (c *Cluster) Restart(ctx context.Context, m *Member) error {
	if err := c.spawn(m, false); err != nil {
		return err
	}
	return c.WaitReady(ctx, m)
}

// Kill SIGKILLs m's process (also a stopped one) and waits until it is gone.
func (c *Cluster) Kill(m *Member) {
	m.mu.Lock()
	p := m.proc
	if p != nil {
		p.expectExit = true
	}
	m.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Pause SIGSTOPs m's process and waits until every thread is stopped.
func (c *Cluster) Pause(m *Member) error {
	m.mu.Lock()
	p := m.proc
	if p == nil {
		m.mu.Unlock()
		return fmt.Errorf("%s: %w", m.Name, ErrNotRunning)
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("%s: SIGSTOP: %w", m.Name, err)
	}
	m.paused = true
	m.mu.Unlock()
	return WaitStopped(p.cmd.Process.Pid, 2*time.Second)
}

// Resume SIGCONTs m's process if it is paused.
func (c *Cluster) Resume(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil || !m.paused {
		return nil
	}
	m.paused = false
	if err := m.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: SIGCONT: %w", m.Name, err)
	}
	return nil
}

// WaitStopped waits until every thread of process pid is stopped (state T
// in /proc/PID/task/TID/stat): kill(2) returns before the process stops.
// Without /proc it waits 100 ms.
func WaitStopped(pid int, timeout time.Duration) error {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	if _, err := os.Stat(dir); err != nil {
		time.Sleep(100 * time.Millisecond)
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		running, err := runningThreads(dir)
		if err == nil && running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped %v after SIGSTOP (%d threads running, %v)", pid, timeout, running, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func runningThreads(dir string) (int, error) {
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	running := 0
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread exited
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return 0, fmt.Errorf("%s: unexpected stat %q", task.Name(), b)
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			running++
		}
	}
	return running, nil
}

// Close kills every member's process. The cluster cannot be used after.
func (c *Cluster) Close() {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	for _, m := range c.Members {
		c.Kill(m)
	}
	if !was {
		c.admin.Close()
	}
}

// status asks m for its Status.
func (c *Cluster) status(ctx context.Context, m *Member) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return c.admin.Status(ctx, strings.TrimPrefix(m.ClientURL, "http://"))
}

// Leader asks every member in ms (all members if none) for its Status, in
// parallel, and returns the leader they all agree on, or an error that
// describes each view.
func (c *Cluster) Leader(ctx context.Context, ms ...*Member) (*Member, error) {
	if len(ms) == 0 {
		ms = c.Members
	}
	type view struct {
		st  *clientv3.StatusResponse
		err error
	}
	views := make([]view, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.status(ctx, m)
			views[i] = view{st, err}
		}()
	}
	wg.Wait()
	var desc []string
	var lead uint64
	agree := true
	for i, v := range views {
		if v.err != nil {
			desc = append(desc, fmt.Sprintf("%s: %v", ms[i].Name, v.err))
			agree = false
			continue
		}
		desc = append(desc, fmt.Sprintf("%s: leader %x term %d", ms[i].Name, v.st.Leader, v.st.RaftTerm))
		if v.st.Leader == 0 || (lead != 0 && v.st.Leader != lead) {
			agree = false
		}
		lead = v.st.Leader
	}
	if !agree {
		return nil, fmt.Errorf("no agreed leader: %s", strings.Join(desc, "; "))
	}
	for _, m := range c.Members {
		if m.ID() == lead {
			return m, nil
		}
	}
	return nil, fmt.Errorf("leader %x is not a member: %s", lead, strings.Join(desc, "; "))
}

// WaitLeader waits until every member agrees on a leader.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration) (*Member, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := c.Leader(ctx)
		if err == nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader within %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Repair is the operator's repair of m, whose data is corrupt and whose
// process is not running: member remove through the healthy members, wipe
// its data dir, member add with the same peer URL (a new member ID), start
// it with --initial-cluster-state existing and wait until it serves.
func (c *Cluster) Repair(ctx context.Context, m *Member) error {
	if m.Running() {
		return fmt.Errorf("chaos: repair of %s while it runs", m.Name)
	}
	var eps []string
	for _, o := range c.Members {
		if o != m && o.Running() && !o.Paused() {
			eps = append(eps, o.ClientURL)
		}
	}
	if len(eps) == 0 {
		return fmt.Errorf("chaos: repair of %s: no healthy member", m.Name)
	}
	cli, err := newClient(eps...)
	if err != nil {
		return err
	}
	defer cli.Close()
	old := m.ID()
	err = retry(ctx, 20*time.Second, func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, old)
		if errors.Is(err, rpctypes.ErrMemberNotFound) || (err != nil && strings.Contains(err.Error(), rpctypes.ErrMemberNotFound.Error())) {
			return nil // an earlier attempt applied
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("chaos: repair of %s: member remove %x: %w", m.Name, old, err)
	}
	if err := os.RemoveAll(m.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return err
	}
	var add *clientv3.MemberAddResponse
	err = retry(ctx, 20*time.Second, func(ctx context.Context) error {
		var err error
		add, err = cli.MemberAdd(ctx, []string{m.PeerURL})
		if err != nil && strings.Contains(err.Error(), rpctypes.ErrPeerURLExist.Error()) {
			// An earlier attempt applied: find the new ID in the list.
			list, lerr := cli.MemberList(ctx)
			if lerr != nil {
				return lerr
			}
			for _, mm := range list.Members {
				if len(mm.PeerURLs) == 1 && mm.PeerURLs[0] == m.PeerURL {
					add = &clientv3.MemberAddResponse{Member: mm, Members: list.Members}
					return nil
				}
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("chaos: repair of %s: member add %s: %w", m.Name, m.PeerURL, err)
	}
	var parts []string
	for _, mm := range add.Members {
		name := mm.Name
		for _, o := range c.Members {
			if len(mm.PeerURLs) > 0 && o.PeerURL == mm.PeerURLs[0] {
				name = o.Name
			}
		}
		for _, u := range mm.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	m.mu.Lock()
	m.id = add.Member.ID
	m.joinCluster = strings.Join(parts, ",")
	m.mu.Unlock()
	c.logf("repair: %s removed (id %x) and added again (id %x)", m.Name, old, add.Member.ID)
	return c.Restart(ctx, m)
}

// retry calls f with a per-attempt timeout until it succeeds or timeout
// passes.
func retry(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		actx, cancel := context.WithTimeout(ctx, adminTimeout)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The member fault-injection API (--fault-injection), on the client URL.

// faultPost POSTs to m's fault endpoint path with query q and checks the
// answer is 200 "ok".
func (c *Cluster) faultPost(ctx context.Context, m *Member, path string, q url.Values) error {
	if !c.FaultAPI {
		return fmt.Errorf("%s: POST %s: %s has no --fault-injection", m.Name, path, c.Binary)
	}
	u := m.ClientURL + "/debug/fault/" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: POST %s: %w", m.Name, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: POST %s: %s: %s", m.Name, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// KillActor makes m's actor fail-stop (how: stop, poison or panic).
func (c *Cluster) KillActor(ctx context.Context, m *Member, actor, how string) error {
	return c.faultPost(ctx, m, "kill", url.Values{"actor": {actor}, "how": {how}})
}

// NetRule is the fault rule for peer messages arriving from one member.
type NetRule struct {
	Drop      float64       // probability each message is dropped
	Delay     time.Duration // how long each arriving batch is held
	Duplicate float64       // probability a Raft message is delivered twice
	Blackhole bool          // drop everything
}

func (r NetRule) String() string {
	if r.Blackhole {
		return "blackhole"
	}
	return fmt.Sprintf("drop %.2f delay %v duplicate %.2f", r.Drop, r.Delay, r.Duplicate)
}

// SetNet sets, at member at, the rule for peer messages arriving from from
// (replacing the previous rule for that source).
func (c *Cluster) SetNet(ctx context.Context, at, from *Member, r NetRule) error {
	q := url.Values{"from": {from.peerHost()}}
	if r.Blackhole {
		q.Set("blackhole", "true")
	} else {
		q.Set("drop", fmt.Sprintf("%g", r.Drop))
		q.Set("delay", r.Delay.String())
		q.Set("duplicate", fmt.Sprintf("%g", r.Duplicate))
	}
	return c.faultPost(ctx, at, "net", q)
}

// ClearNet clears every net rule at m.
func (c *Cluster) ClearNet(ctx context.Context, m *Member) error {
	return c.faultPost(ctx, m, "net/clear", nil)
}

// FailFsync makes m's next WAL fdatasync fail.
func (c *Cluster) FailFsync(ctx context.Context, m *Member) error {
	return c.faultPost(ctx, m, "fsync", nil)
}

// DumpLogs writes every incarnation's log of every member into dir as
// NAME.INCARNATION.log and returns the paths.
func (c *Cluster) DumpLogs(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, m := range c.Members {
		m.mu.Lock()
		procs := append([]*process(nil), m.procs...)
		m.mu.Unlock()
		for _, p := range procs {
			path := filepath.Join(dir, fmt.Sprintf("%s.%d.log", m.Name, p.n))
			if err := os.WriteFile(path, []byte(p.log.String()), 0o644); err != nil {
				return paths, err
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}

// logBuffer is a goroutine-safe log of one process.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many times s occurs in the log.
func (b *logBuffer) Count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf.Bytes(), []byte(s))
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[... %d earlier lines ...]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}
