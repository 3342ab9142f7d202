package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// aetcdctl is built once per test binary, next to aetcdBin (TestMain removes
// that directory when the tests end).
var aetcdctlBuild struct {
	once sync.Once
	path string
	err  error
}

// aetcdctlBin returns the path of the aetcdctl binary, building it on first
// use.
func aetcdctlBin(t testing.TB) string {
	t.Helper()
	aetcdctlBuild.once.Do(func() {
		path := filepath.Join(filepath.Dir(aetcdBin), "aetcdctl")
		out, err := exec.Command("go", "build", "-o", path, "../cmd/aetcdctl").CombinedOutput()
		if err != nil {
			aetcdctlBuild.err = fmt.Errorf("building aetcdctl: %v\n%s", err, out)
			return
		}
		aetcdctlBuild.path = path
	})
	if aetcdctlBuild.err != nil {
		t.Fatal(aetcdctlBuild.err)
	}
	return aetcdctlBuild.path
}

// etcdctlBin returns $ETCDCTL, or skips the test when it is not set.
func etcdctlBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ETCDCTL")
	if bin == "" {
		t.Skip("ETCDCTL is not set: build etcdctl 3.6.6 with shared/tools/etcd-reference.sh and point ETCDCTL at it")
	}
	return bin
}

// ctlResult is what one run of a command line client produced.
type ctlResult struct {
	stdout, stderr string
	code           int
}

func (r ctlResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// runCtl runs bin (aetcdctl or etcdctl) with --endpoints=endpoint, args and
// stdin, and returns its output and exit code. It never inherits the
// ETCDCTL_*/AETCDCTL_* environment.
func runCtl(t testing.TB, bin, endpoint, stdin string, args ...string) ctlResult {
	t.Helper()
	res, err := execCtl(bin, endpoint, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// execCtl is runCtl for any goroutine: it returns an error when the
// program could not be run or did not exit by itself.
func execCtl(bin, endpoint, stdin string, args ...string) (ctlResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + endpoint, "--command-timeout=10s"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "AETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ctlResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.code = exit.ExitCode()
	default:
		return res, fmt.Errorf("%s %q: %v (stderr %q)", filepath.Base(bin), args, err, res.stderr)
	}
	return res, nil
}

// ctlRun is one program run of runCtls.
type ctlRun struct {
	bin, endpoint string
}

// runCtls runs the same command line with each of runs at the same time
// and returns their results in order.
func runCtls(t testing.TB, stdin string, args []string, runs ...ctlRun) []ctlResult {
	t.Helper()
	results := make([]ctlResult, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Go(func() { results[i], errs[i] = execCtl(run.bin, run.endpoint, stdin, args...) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return results
}

// zapLine matches the log lines etcd's client library writes to stderr
// (retries of failed requests); they are not etcdctl's output proper.
var zapLine = regexp.MustCompile(`(?m)^\{"level":.*\n`)

func stripClientLogs(r ctlResult) ctlResult {
	r.stderr = zapLine.ReplaceAllString(r.stderr, "")
	return r
}

// ctlStep is one command of TestAetcdctlMatchesEtcdctl.
type ctlStep struct {
	kind  stepKind
	args  []string
	stdin string
	code  int    // the exit code both tools must give
	want  string // text aetcdctl's stdout+stderr must contain (optional)
}

type stepKind int

const (
	// stepWrite: aetcdctl against member A, etcdctl against its twin B (the
	// two members see the same operations, so they answer alike).
	stepWrite stepKind = iota
	// stepRead: aetcdctl and etcdctl both against A, and etcdctl against B.
	stepRead
	// stepStatus: `endpoint status`, aetcdctl and etcdctl against A, with the
	// endpoint column translated from A's remoting to its client address.
	stepStatus
)

func ctlWrite(args ...string) ctlStep { return ctlStep{kind: stepWrite, args: args} }
func ctlRead(args ...string) ctlStep  { return ctlStep{kind: stepRead, args: args} }

func (s ctlStep) exits(code int, want string) ctlStep { s.code, s.want = code, want; return s }
func (s ctlStep) input(stdin string) ctlStep          { s.stdin = stdin; return s }
func (s ctlStep) wants(want string) ctlStep           { s.want = want; return s }

// manyPuts is a txn whose success branch has n puts.
func manyPuts(n int) string {
	var b strings.Builder
	b.WriteString("\n")
	for i := range n {
		fmt.Fprintf(&b, "put many%d v\n", i)
	}
	b.WriteString("\n\n")
	return b.String()
}

// TestAetcdctlMatchesEtcdctl drives member A with aetcdctl over actor
// remoting and its twin B (same name, so the same member and cluster IDs)
// with etcdctl 3.6 over gRPC through the same commands, and requires the two
// tools to print the same bytes and exit with the same code. Reads are also
// run with etcdctl against A itself, so aetcdctl's output is compared with
// etcdctl's for the very same member state.
func TestAetcdctlMatchesEtcdctl(t *testing.T) {
	etcdctl := etcdctlBin(t)
	aetcdctl := aetcdctlBin(t)
	// Both members are child processes: a remoting client's stream leaves
	// gRPC goroutines behind in the member, which would race with the next
	// in-process member's remote.Start (it rewrites gRPC's global logger).
	a := startProc(t, t.TempDir(), freePort(t), freePort(t))
	b := startProc(t, t.TempDir(), freePort(t), freePort(t))
	aRemote, aClient := a.remoteAddr, a.clientAddr

	const (
		txnSuccess = "value(\"foo\") = \"bar4\"\n\nput t1 v1\nget foo\ndel foo2 --prev-kv\n\nput t2 v2\n\n"
		txnFailure = "value(\"foo\") = \"nope\"\nmod(\"a\") > \"0\"\n\nput t1 v1\n\nput t3 v3\nget t --prefix\n\n"
		txnTargets = "ver(\"t1\") > \"0\"\ncreate(\"t1\") < \"1000\"\n\nput t1 v11 --prev-kv\ndel t2\n\nget t1\n\n"
	)
	steps := []ctlStep{
		// Puts, in every output format that prints them. Revision 1 is
		// the empty store; each write below makes the next.
		ctlWrite("put", "foo", "bar").wants("OK\n"),
		ctlWrite("put", "foo2", "baz"),
		ctlWrite("put", "foo", "bar2", "--prev-kv").wants("OK\nfoo\nbar\n"),
		ctlWrite("put", "key with space", "värde ü \"q\""),
		ctlWrite("put", "a", "1", "-w", "json").wants(`"revision":6`),
		ctlWrite("put", "foo", "bar3", "--prev-kv", "-w", "fields"),
		ctlWrite("put", "b", "2", "-w", "protobuf"),
		ctlWrite("put", "foo", "bar4", "--prev-kv", "-w", "json"),
		ctlWrite("put", "foo3", "--", "-dash-value").wants("OK\n"),
		ctlWrite("put", "c", "3", "--write-out=simple"),
		ctlWrite("put", "", "x").exits(1, "Error: etcdserver: key is not provided"), // no revision
		ctlWrite("put", "k").exits(128, "Error: put command needs 1 argument and input from stdin or 2 arguments"),
		ctlWrite("put", "k", "v", "--lease", "zz").exits(128, "bad lease ID"),
		ctlWrite("put", "k", "v", "--lease", "5").exits(1, "Error: etcdserver: requested lease not found"),
		ctlWrite("put", "k", "--ignore-value").exits(1, "Error: etcdserver: key not found"),
		ctlWrite("put", "k", "v", "--ignore-value").exits(128, "needs only 1 argument when 'ignore-value' is set"),

		// Gets.
		ctlRead("get", "foo").wants("foo\nbar4\n"),
		ctlRead("get", "foo", "--prefix"),
		ctlRead("get", "foo", "--prefix", "-w", "json"),
		ctlRead("get", "foo", "--prefix", "-w", "fields"),
		ctlRead("get", "foo", "--prefix", "-w", "protobuf"),
		ctlRead("get", "foo", "--prefix", "-w", "simple", "--hex"),
		ctlRead("get", "foo", "-w", "json", "--hex"),
		ctlRead("get", "", "--prefix"),
		ctlRead("get", "", "--from-key", "-w", "json"),
		ctlRead("get", "b", "--from-key"),
		ctlRead("get", "a", "--from-key", "--limit", "2"),
		ctlRead("get", "a", "--from-key", "--limit", "2", "-w", "json").wants(`"more":true,"count":`),
		ctlRead("get", "a", "--from-key", "--limit", "2", "-w", "fields").wants(`"More" : true`),
		ctlRead("get", "a", "foo2"),
		ctlRead("get", "foo", "--rev", "2").wants("foo\nbar\n"),
		ctlRead("get", "foo", "--rev", "4", "-w", "json"),
		ctlRead("get", "foo", "--prefix", "--rev", "3", "-w", "fields"),
		ctlRead("get", "foo", "--prefix", "--keys-only"),
		ctlRead("get", "foo", "--prefix", "--keys-only", "-w", "json"),
		ctlRead("get", "foo", "--prefix", "--count-only", "-w", "fields").wants(`"Count" : 3`),
		ctlRead("get", "", "--from-key", "--count-only", "-w", "fields"),
		ctlRead("get", "foo", "--prefix", "--print-value-only").wants("bar4\nbaz\n-dash-value\n"),
		ctlRead("get", "a", "zz", "--sort-by=VALUE", "--order=DESCEND"),
		ctlRead("get", "a", "zz", "--sort-by=CREATE", "--order=DESCEND", "-w", "json"),
		ctlRead("get", "a", "zz", "--sort-by=MODIFY"),
		ctlRead("get", "a", "zz", "--sort-by=MODIFY", "--order=DESCEND", "--limit", "3"),
		ctlRead("get", "a", "zz", "--sort-by", "VERSION", "--order", "DESCEND"),
		ctlRead("get", "a", "zz", "--order=DESCEND"),
		ctlRead("get", "a", "zz", "--sort-by=KEY", "--order=ASCEND", "-w", "fields"),
		ctlRead("get", "a", "zz", "--order=descend", "--sort-by=value"),
		ctlRead("get", "a", "zz", "--min-mod-rev", "4", "--max-mod-rev", "8"),
		ctlRead("get", "a", "zz", "--min-create-rev", "5", "-w", "json"),
		ctlRead("get", "key with space"),
		ctlRead("get", "key with space", "--hex"),
		ctlRead("get", "key with space", "-w", "fields"),
		ctlRead("get", "key with space", "-w", "fields", "--hex"),
		ctlRead("get", "key with space", "-w", "json"),
		ctlRead("get", "foo", "--consistency=s"),
		ctlRead("get", "nothing"),
		ctlRead("get", "nothing", "-w", "json"),
		ctlRead("get", "nothing", "-w", "fields"),
		ctlRead("get", "foo", "--rev", "1000").exits(1, "Error: etcdserver: mvcc: required revision is a future revision"),
		ctlRead("get", "").exits(1, "Error: etcdserver: key is not provided"),
		ctlRead("get").exits(128, "get command needs one argument as key and an optional argument as range_end"),
		ctlRead("get", "foo", "--prefix", "--count-only").exits(128, "--count-only is only for `--write-out=fields`"),
		ctlRead("get", "foo", "--print-value-only", "-w", "json").exits(128, "print-value-only is only for `--write-out=simple`"),
		ctlRead("get", "foo", "--prefix", "--from-key").exits(128, "cannot be set at the same time"),
		ctlRead("get", "foo", "--keys-only", "--count-only").exits(128, "cannot be set at the same time"),
		ctlRead("get", "foo", "x", "--prefix").exits(128, "too many arguments"),
		ctlRead("get", "a", "zz", "--sort-by=bogus").exits(4, "bad sort target"),
		ctlRead("get", "a", "zz", "--order=bogus").exits(4, "bad sort order"),
		ctlRead("get", "foo", "--consistency=x").exits(4, "unknown consistency flag"),
		ctlRead("get", "a", "--min-create-rev", "5", "--max-create-rev", "3").exits(4, "getMinCreateRev(=5) > getMaxCreateRev(=3)"),
		ctlRead("get", "foo", "-w", "table").exits(4, "Error: table not supported as output format"),
		ctlRead("get", "foo", "-w", "bogus").exits(4, "unsupported output format"),

		// Deletes.
		ctlWrite("put", "p/1", "a"),
		ctlWrite("put", "p/2", "b"),
		ctlWrite("put", "p/3", "c"),
		ctlWrite("del", "p/1", "--prev-kv").wants("1\np/1\na\n"),
		ctlWrite("del", "p/", "--prefix", "--prev-kv", "-w", "json"),
		ctlWrite("put", "p/1", "a"),
		ctlWrite("put", "p/2", "b"),
		ctlWrite("del", "p/", "--prefix", "-w", "fields", "--prev-kv"),
		ctlWrite("put", "p/1", "a"),
		ctlWrite("del", "p/", "--prefix").wants("1\n"),
		ctlWrite("del", "nothing").wants("0\n"),  // no revision
		ctlWrite("del", "nothing", "-w", "json"), // no revision
		ctlWrite("put", "q1", "x"),
		ctlWrite("put", "q2", "y"),
		ctlWrite("del", "q1", "q2", "--prev-kv").wants("Warning: Keys between \"q1\" and \"q2\" will be deleted."),
		ctlWrite("del", "q", "--from-key", "--prev-kv", "-w", "fields"),
		ctlWrite("del", "").exits(1, "Error: etcdserver: key is not provided"),
		ctlWrite("del").exits(128, "del command needs one argument as key"),
		ctlWrite("del", "a", "b", "c").exits(128, "del command needs one argument as key"),
		ctlWrite("del", "p", "--prefix", "--from-key").exits(128, "cannot be set at the same time"),
		ctlRead("get", "", "--from-key", "-w", "json"),

		// Transactions from standard input.
		ctlWrite("txn").input(txnSuccess).wants("SUCCESS\n\nOK\n\nfoo\nbar4\n\n1\n"),
		ctlWrite("txn", "-w", "json").input(txnFailure).wants(`"response_put"`),
		ctlWrite("txn", "-w", "fields").input(txnTargets).wants(`"Succeeded" : true`),
		ctlWrite("txn", "-w", "protobuf").input(txnFailure),
		ctlWrite("txn", "--interactive").input(txnFailure).wants("compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n"),
		ctlWrite("txn").input("\nput t4 x\nput t5 y\n\n\n").wants("SUCCESS\n\nOK\n\nOK\n"),
		ctlWrite("txn").input("\n\n\n").wants("SUCCESS\n"), // read-only: no revision
		ctlWrite("txn").input("val(\"t1\") = \"v11\"\n\nget t --prefix --keys-only\n\n\n").wants("SUCCESS\n"),
		ctlWrite("txn").input(manyPuts(129)).exits(1, "Error: etcdserver: too many operations in txn request"),
		ctlWrite("txn").input("\nput d x\nput d y\n\n\n").exits(1, "Error: etcdserver: duplicate key given in txn request"),
		ctlWrite("txn").input("\nput d x\ndel c e --range\n\n\n").exits(1, "Error: etcdserver: duplicate key given in txn request"),
		ctlWrite("txn").input("\nput \"\" v\n\n\n").exits(1, "Error: etcdserver: key is not provided"),
		ctlWrite("txn").input("ver(\"\") = \"1\"\n\n\n\n").exits(1, "Error: etcdserver: key is not provided"),
		ctlWrite("txn").input("bogus\n\n\n\n").exits(3, "malformed comparison"),
		ctlWrite("txn").input("ver(\"a\") = \"x\"\n\n\n\n").exits(3, "invalid txn compare request"),
		ctlWrite("txn").input("\n\nfrobnicate k\n\n\n").exits(3, "invalid txn request"),
		ctlWrite("txn").input("value(\"foo\") = \"bar4\"\n\nput t1 v1\n").exits(3, "EOF"),
		ctlWrite("txn", "extra").exits(128, "txn command does not accept argument"),
		ctlRead("get", "t", "--prefix", "-w", "json"),

		// Compaction: compacted and future revisions, then reads below
		// the compacted revision.
		ctlWrite("compaction", "3").wants("compacted revision 3\n"),
		ctlRead("get", "foo", "--rev", "2").exits(1, "Error: etcdserver: mvcc: required revision has been compacted"),
		ctlRead("get", "foo", "--rev", "3", "-w", "json"),
		ctlWrite("compaction", "3").exits(1, "Error: etcdserver: mvcc: required revision has been compacted"),
		ctlWrite("compaction", "2").exits(1, "Error: etcdserver: mvcc: required revision has been compacted"),
		ctlWrite("compaction", "100000").exits(1, "Error: etcdserver: mvcc: required revision is a future revision"),
		ctlWrite("compaction", "x").exits(1, `Error: strconv.ParseInt: parsing "x": invalid syntax`),
		ctlWrite("compaction").exits(128, "compaction command needs 1 argument"),
		ctlWrite("compaction", "5", "--physical").wants("compacted revision 5\n"),
		ctlWrite("compaction", "8", "-w", "json").wants("compacted revision 8\n"),
		ctlRead("get", "", "--from-key", "--rev", "7").exits(1, "required revision has been compacted"),
		ctlRead("get", "", "--from-key", "--rev", "8", "-w", "fields"),

		// Endpoint status in every format that prints it.
		{kind: stepStatus, args: []string{"endpoint", "status"}},
		{kind: stepStatus, args: []string{"endpoint", "status", "-w", "simple"}},
		{kind: stepStatus, args: []string{"endpoint", "status", "-w", "json"}, want: `"Status":{"header":{"cluster_id":`},
		{kind: stepStatus, args: []string{"endpoint", "status", "-w", "table"}, want: "| IS LEADER |"},
		{kind: stepStatus, args: []string{"endpoint", "status", "-w", "fields"}},
		{kind: stepStatus, args: []string{"endpoint", "status", "-w", "protobuf"}, code: 4, want: "Error: protobuf not supported as output format"},

		// An unknown command: the same message, naming the program.
		ctlRead("bogus").exits(1, "Error: unknown command \"bogus\" for \"aetcdctl\""),

		// The whole store, last: the twins agree.
		ctlRead("get", "", "--from-key", "-w", "json"),
	}

	for i, s := range steps {
		name := fmt.Sprintf("%d %s", i, strings.Join(s.args, " "))
		switch s.kind {
		case stepWrite:
			res := runCtls(t, s.stdin, s.args, ctlRun{aetcdctl, aRemote}, ctlRun{etcdctl, b.clientAddr})
			checkStep(t, name, s, res[0], stripClientLogs(res[1]), "etcdctl against the twin")
		case stepRead:
			res := runCtls(t, s.stdin, s.args, ctlRun{aetcdctl, aRemote}, ctlRun{etcdctl, aClient}, ctlRun{etcdctl, b.clientAddr})
			got, want, twin := res[0], stripClientLogs(res[1]), stripClientLogs(res[2])
			if twin != want {
				t.Errorf("step %s: the twins differ (a write step diverged them):\nA: %v\nB: %v", name, want, twin)
			}
			if s.args[0] == "bogus" {
				// The messages name the program.
				want.stderr = strings.ReplaceAll(want.stderr, "etcdctl", "aetcdctl")
			}
			checkStep(t, name, s, got, want, "etcdctl against the same member")
		case stepStatus:
			checkStatusStep(t, name, s, aetcdctl, etcdctl, aRemote, aClient)
		}
		if t.Failed() {
			t.FailNow() // later steps depend on this one's effects
		}
	}
}

// checkStep requires got (aetcdctl's result) to equal want (etcdctl's) and
// to have the step's exit code and text.
func checkStep(t *testing.T, name string, s ctlStep, got, want ctlResult, wantWhat string) {
	t.Helper()
	if got != want {
		t.Errorf("step %s: aetcdctl and %s differ\naetcdctl: %v\netcdctl:  %v", name, wantWhat, got, want)
		return
	}
	if got.code != s.code {
		t.Errorf("step %s: both exited %d, want %d\n%v", name, got.code, s.code, got)
	}
	if !strings.Contains(got.stdout+got.stderr, s.want) {
		t.Errorf("step %s: output does not contain %q\n%v", name, s.want, got)
	}
}

// checkStatusStep compares `endpoint status` of aetcdctl (endpoint: A's
// remoting address) and etcdctl (A's client address) after putting the
// client address in aetcdctl's endpoint column. The database size may move
// between the two runs while the backend commits, so a mismatch is retried.
func checkStatusStep(t *testing.T, name string, s ctlStep, aetcdctl, etcdctl, remoteAddr, clientAddr string) {
	t.Helper()
	var got, want ctlResult
	for range 10 {
		res := runCtls(t, "", s.args, ctlRun{aetcdctl, remoteAddr}, ctlRun{etcdctl, clientAddr})
		got, want = res[0], stripClientLogs(res[1])
		got.stdout = strings.ReplaceAll(got.stdout, remoteAddr, clientAddr)
		if len(remoteAddr) != len(clientAddr) && strings.Contains(strings.Join(s.args, " "), "table") {
			// Column widths follow the endpoint's length; compare cells.
			got.stdout, want.stdout = collapseTable(got.stdout), collapseTable(want.stdout)
		}
		if got == want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkStep(t, name, s, got, want, "etcdctl against the same member")
}

var tableFill = regexp.MustCompile(`[ -]+`)

func collapseTable(s string) string { return tableFill.ReplaceAllString(s, " ") }

// TestAetcdctlTxnRangeDeleteWarning: a `del key end` request inside a txn
// makes etcdctl print its range-delete warning (and wait 2 s) just as the
// del command does; aetcdctl must print the same.
func TestAetcdctlTxnRangeDeleteWarning(t *testing.T) {
	etcdctl := etcdctlBin(t)
	aetcdctl := aetcdctlBin(t)
	m := startProc(t, t.TempDir(), freePort(t), freePort(t))
	const txn = "\ndel a c\n\n\n"
	res := runCtls(t, txn, []string{"txn"}, ctlRun{aetcdctl, m.remoteAddr}, ctlRun{etcdctl, m.clientAddr})
	got, want := res[0], stripClientLogs(res[1])
	if got != want {
		t.Errorf("txn %q:\naetcdctl: %v\netcdctl:  %v", txn, got, want)
	}
}

// memberStep is one command of TestAetcdctlMemberMatchesEtcdctl. In args,
// "{learner}" stands for the hex ID of the learner the twin holds and
// "{m1}" for the first member's.
type memberStep struct {
	change bool // a change: aetcdctl against A, etcdctl against its twin B
	args   []string
	code   int
	want   string
}

func memberList(args ...string) memberStep {
	return memberStep{args: append([]string{"member", "list"}, args...)}
}
func memberChange(args ...string) memberStep {
	return memberStep{change: true, args: append([]string{"member"}, args...)}
}

func (s memberStep) exits(code int, want string) memberStep { s.code, s.want = code, want; return s }
func (s memberStep) wants(want string) memberStep           { s.want = want; return s }

// memberTwin is one of the twins of TestAetcdctlMemberMatchesEtcdctl.
type memberTwin struct {
	endpoint   string // where the step's tool is pointed
	clientAddr string
	learner    uint64 // the learner it holds, 0 for none
}

// TestAetcdctlMemberMatchesEtcdctl drives the member commands of aetcdctl
// against member A and of etcdctl 3.6 against its twin B, and requires the
// same bytes and exit codes. The twins have the same member and cluster
// IDs, but the learners they add get different (time-based) IDs, which may
// sort before or after the first member's: a change's output is compared
// with the learner's ID, the twin's client address and the order of
// members normalized. Member lists are compared exactly, with etcdctl
// against A itself.
func TestAetcdctlMemberMatchesEtcdctl(t *testing.T) {
	etcdctl := etcdctlBin(t)
	aetcdctl := aetcdctlBin(t)
	a := startProc(t, t.TempDir(), freePort(t), freePort(t))
	b := startProc(t, t.TempDir(), freePort(t), freePort(t))
	twinA := &memberTwin{endpoint: a.remoteAddr, clientAddr: a.clientAddr}
	twinB := &memberTwin{endpoint: b.clientAddr, clientAddr: b.clientAddr}
	m1 := listMemberIDs(t, etcdctl, a.clientAddr)
	if len(m1) != 1 || listMemberIDs(t, etcdctl, b.clientAddr)[0] != m1[0] {
		t.Fatalf("the twins' members differ or are not one: %x", m1)
	}

	const notInSync = "Error: etcdserver: can only promote a learner member which is in sync with leader"
	steps := []memberStep{
		memberList().wants(fmt.Sprintf("%x, started, m1, http://localhost:2380, http://%s, false\n", m1[0], a.clientAddr)),
		memberList("-w", "json"),
		memberList("-w", "json", "--hex"),
		memberList("-w", "fields"),
		memberList("-w", "table"),
		memberList("-w", "protobuf"),
		memberList("--consistency=s"),

		// A learner that never starts: listed unstarted, not promotable.
		memberChange("add", "l1", "--peer-urls=http://127.0.0.1:1", "--learner").wants("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"),
		memberList().wants(", unstarted, , http://127.0.0.1:1, , true\n"),
		memberList("-w", "json"),
		memberList("-w", "json", "--hex").wants(`"name":"","peerURLs":["http://127.0.0.1:1"],"clientURLs":null}`),
		memberList("-w", "fields", "--hex"),
		memberList("-w", "table"),
		memberList("-w", "protobuf"),
		memberChange("promote", "{learner}").exits(1, notInSync),
		memberChange("promote", "{learner}", "-w", "json").exits(1, notInSync),
		memberChange("update", "{learner}", "--peer-urls=http://127.0.0.1:2").wants(" updated in cluster "),
		memberList("-w", "table").wants("http://127.0.0.1:2"),
		memberChange("update", "{learner}", "--peer-urls=http://127.0.0.1:3", "-w", "json"),
		memberChange("add", "l2", "--peer-urls=http://127.0.0.1:4", "--learner").exits(1, "Error: etcdserver: too many learner members in cluster"),
		memberChange("remove", "{learner}").wants(" removed from cluster "),
		memberList().wants("m1"),

		// Changes in the other formats; fields and table print only
		// member list, so they fail after the change is made.
		memberChange("add", "l3", "--peer-urls=http://127.0.0.1:5,http://127.0.0.1:6", "--learner", "-w", "json").wants(`"isLearner":true`),
		memberChange("update", "{learner}", "--peer-urls=http://127.0.0.1:7", "-w", "fields").exits(4, "Error: fields not supported as output format"),
		memberList("-w", "fields").wants(`"PeerURL" : "http://127.0.0.1:7"`),
		memberChange("promote", "{learner}", "-w", "protobuf").exits(1, notInSync),
		memberChange("remove", "{learner}", "-w", "table").exits(4, "Error: table not supported as output format"),
		memberList("-w", "json"),
		memberChange("add", "l4", "--peer-urls=http://127.0.0.1:8", "--learner", "-w", "fields").exits(4, "Error: fields not supported as output format"),
		memberList("-w", "simple"),
		memberChange("remove", "{learner}", "-w", "json"),
		memberChange("add", "l5", "--peer-urls=http://127.0.0.1:9", "--learner", "-w", "table").exits(4, "Error: table not supported as output format"),
		memberChange("remove", "{learner}", "-w", "fields").exits(4, "Error: fields not supported as output format"),
		memberList("-w", "table"),

		// Errors of the command line, of clientv3's URL checks and of the
		// cluster.
		memberChange("add").exits(128, "Error: member name not provided"),
		memberChange("add", "x", "y", "http://127.0.0.1:1").exits(128, "Error: too many arguments, did you mean --peer-urls=http://127.0.0.1:1"),
		memberChange("add", "x").exits(128, "Error: member peer urls not provided"),
		memberChange("add", "x", "--peer-urls=foo").exits(1, "Error: URL scheme must be http, https, unix, or unixs: foo"),
		memberChange("add", "x", "--peer-urls=http://127.0.0.1").exits(1, `Error: URL address does not have the form "host:port": http://127.0.0.1`),
		memberChange("add", "x", "--peer-urls=http://127.0.0.1:1/p").exits(1, "Error: URL must not contain a path: http://127.0.0.1:1/p"),
		memberChange("add", "x", "--peer-urls=http://localhost:2380", "--learner").exits(1, "Error: etcdserver: Peer URLs already exists"),
		memberChange("add", "x", "--peer-urls=http://127.0.0.1:1", "-w", "bogus").exits(4, "Error: unsupported output format"),
		memberChange("remove").exits(128, "Error: member ID is not provided"),
		memberChange("remove", "zz").exits(128, `Error: bad member ID arg (strconv.ParseUint: parsing "zz": invalid syntax), expecting ID in Hex`),
		memberChange("remove", "1234").exits(1, "Error: etcdserver: member not found"),
		memberChange("update", "1234").exits(128, "Error: member peer urls not provided"),
		memberChange("update", "1234", "--peer-urls=http://127.0.0.1:1").exits(1, "Error: etcdserver: member not found"),
		memberChange("promote", "1", "2").exits(128, "Error: member ID is not provided"),
		memberChange("promote", "{m1}").exits(1, "Error: etcdserver: can only promote a learner member\n"),
		memberList("--consistency=x").exits(4, `Error: unknown consistency flag "l"`),
		memberList("-w", "json", "--hex"),
	}

	for i, s := range steps {
		name := fmt.Sprintf("%d %s", i, strings.Join(s.args, " "))
		if !s.change {
			res := runCtls(t, "", s.args, ctlRun{aetcdctl, a.remoteAddr}, ctlRun{etcdctl, a.clientAddr})
			checkStep(t, name, ctlStep{code: s.code, want: s.want}, res[0], stripClientLogs(res[1]), "etcdctl against the same member")
		} else {
			runs := make([]ctlRun, 2)
			argsOf := make([][]string, 2)
			for j, tw := range []*memberTwin{twinA, twinB} {
				runs[j] = ctlRun{[]string{aetcdctl, etcdctl}[j], tw.endpoint}
				argsOf[j] = tw.args(s.args, m1[0])
			}
			res := make([]ctlResult, 2)
			var wg sync.WaitGroup
			for j := range runs {
				wg.Go(func() {
					var err error
					if res[j], err = execCtl(runs[j].bin, runs[j].endpoint, "", argsOf[j]...); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got, want := twinA.normalize(res[0]), twinB.normalize(stripClientLogs(res[1]))
			want.stdout = strings.ReplaceAll(want.stdout, twinB.clientAddr, twinA.clientAddr)
			checkStep(t, name, ctlStep{code: s.code, want: s.want}, got, want, "etcdctl against the twin")
			for _, tw := range []*memberTwin{twinA, twinB} {
				tw.learner = 0
				for _, id := range listMemberIDs(t, etcdctl, tw.clientAddr) {
					if id != m1[0] {
						tw.learner = id
					}
				}
			}
			if (twinA.learner == 0) != (twinB.learner == 0) {
				t.Errorf("step %s: one twin holds a learner, the other not", name)
			}
		}
		if t.Failed() {
			t.FailNow() // later steps depend on this one's effects
		}
	}
}

// listMemberIDs returns the IDs etcdctl's member list prints for the member
// at clientAddr.
func listMemberIDs(t *testing.T, etcdctl, clientAddr string) []uint64 {
	t.Helper()
	res := runCtl(t, etcdctl, clientAddr, "", "member", "list", "-w", "json")
	var list struct {
		Members []struct {
			ID uint64 `json:"ID"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil || res.code != 0 {
		t.Fatalf("member list: %v\n%v", err, res)
	}
	var ids []uint64
	for _, m := range list.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

// args puts the twin's IDs into a step's arguments.
func (tw *memberTwin) args(args []string, m1 uint64) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "{m1}", fmt.Sprintf("%x", m1))
		out[i] = strings.ReplaceAll(a, "{learner}", fmt.Sprintf("%x", tw.learner))
	}
	return out
}

// membersArray matches the members list that ends a member response in
// JSON.
var membersArray = regexp.MustCompile(`"members":\[(.*)\]\}$`)

// normalize replaces the learner's ID (in the forms etcdctl prints it: %16x,
// %x, decimal) with LEARNER and sorts what follows the order of member IDs:
// the ETCD_INITIAL_CLUSTER list of member add and JSON members lists. The
// learner is the one the twin holds before the step or, for member add,
// the one it holds after it; the ID printed by member add is also replaced.
func (tw *memberTwin) normalize(r ctlResult) ctlResult {
	ids := []uint64{tw.learner}
	if m := addedID.FindStringSubmatch(r.stdout); m != nil {
		id, _ := strconv.ParseUint(strings.TrimSpace(m[1]), 16, 64)
		if m[2] != "" {
			id, _ = strconv.ParseUint(m[2], 10, 64)
		}
		ids = append(ids, id)
	}
	var lines []string
	for line := range strings.Lines(r.stdout) {
		for _, id := range ids {
			if id == 0 {
				continue
			}
			for _, form := range []string{fmt.Sprintf("%16x", id), fmt.Sprintf("%x", id), fmt.Sprint(id)} {
				line = strings.ReplaceAll(line, form, "LEARNER")
			}
		}
		if v, ok := strings.CutPrefix(line, "ETCD_INITIAL_CLUSTER=\""); ok {
			entries := strings.Split(strings.TrimSuffix(v, "\"\n"), ",")
			sort.Strings(entries)
			line = "ETCD_INITIAL_CLUSTER=\"" + strings.Join(entries, ",") + "\"\n"
		}
		if m := membersArray.FindStringSubmatchIndex(strings.TrimSuffix(line, "\n")); m != nil {
			members := strings.Split(line[m[2]:m[3]], "},{")
			for i := range members {
				members[i] = strings.Trim(members[i], "{}")
			}
			sort.Strings(members)
			line = line[:m[2]] + "{" + strings.Join(members, "},{") + "}" + line[m[3]:]
		}
		lines = append(lines, line)
	}
	r.stdout = strings.Join(lines, "")
	return r
}

// addedID matches member add's simple output, or its JSON's added member.
var addedID = regexp.MustCompile(`(?:^Member ([ 0-9a-f]{16}) added)|(?:"member":\{"ID":([0-9]+))`)
