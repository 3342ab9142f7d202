package tests

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// grantedID matches the lease ID lease grant prints in its simple and
// JSON formats.
var grantedID = regexp.MustCompile(`(?:^lease ([0-9a-f]{16}) granted)|(?:"ID":([0-9]+))`)

// grantLease grants a lease of ttl seconds with etcdctl and returns its ID.
func grantLease(t *testing.T, etcdctl, clientAddr string, ttl int) int64 {
	t.Helper()
	res := runCtl(t, etcdctl, clientAddr, "", "lease", "grant", strconv.Itoa(ttl))
	m := grantedID.FindStringSubmatch(res.stdout)
	if m == nil || res.code != 0 {
		t.Fatalf("lease grant: %v", res)
	}
	id, _ := strconv.ParseInt(m[1], 16, 64)
	return id
}

// normalizeLease replaces the lease IDs in r (as %016x, %x and decimal)
// with LEASE.
func normalizeLease(r ctlResult, ids ...int64) ctlResult {
	for _, id := range ids {
		for _, form := range []string{fmt.Sprintf("%016x", id), fmt.Sprintf("%x", id), fmt.Sprint(id)} {
			r.stdout = strings.ReplaceAll(r.stdout, form, "LEASE")
			r.stderr = strings.ReplaceAll(r.stderr, form, "LEASE")
		}
	}
	return r
}

// TestAetcdctlLeaseMatchesEtcdctl runs the lease commands of aetcdctl
// (over remoting) and etcdctl 3.6 (over gRPC) against the same member and
// requires the same bytes and exit codes. A command that changes a lease
// gets a lease of its own for each tool, and the IDs are normalized; the
// others run on the same lease, and are retried when the remaining TTL
// ticked between the two runs.
func TestAetcdctlLeaseMatchesEtcdctl(t *testing.T) {
	etcdctl := etcdctlBin(t)
	aetcdctl := aetcdctlBin(t)
	a := startProc(t, t.TempDir(), freePort(t), freePort(t))
	tools := []ctlRun{{aetcdctl, a.remoteAddr}, {etcdctl, a.clientAddr}}

	// Grants: each tool grants its own lease.
	for _, args := range [][]string{
		{"lease", "grant", "100"},
		{"lease", "grant", "100", "-w", "json"},
		{"lease", "grant", "100", "-w", "fields", "--hex"},
		{"lease", "grant", "100", "-w", "protobuf"},
		{"lease", "grant", "100", "-w", "table"},
		{"lease", "grant", "0"},
		{"lease", "grant", "9999999999"},
		{"lease", "grant"},
		{"lease", "grant", "x"},
		{"lease", "grant", "5", "-w", "bogus"},
	} {
		var res [2]ctlResult
		for i, tool := range tools {
			res[i] = stripClientLogs(runCtl(t, tool.bin, tool.endpoint, "", args...))
			var ids []int64
			if m := grantedID.FindStringSubmatch(res[i].stdout); m != nil {
				id, _ := strconv.ParseInt(m[1], 16, 64)
				if m[2] != "" {
					id, _ = strconv.ParseInt(m[2], 10, 64)
				}
				ids = append(ids, id)
			}
			res[i] = normalizeLease(res[i], ids...)
		}
		if strings.Contains(strings.Join(args, " "), "fields") || strings.Contains(strings.Join(args, " "), "protobuf") {
			// The ID is not printed in a form grantedID finds; compare all
			// but the ID line (fields) or only the exit code (protobuf: the
			// header alone, whose revision is the same).
			for i := range res {
				res[i].stdout = regexp.MustCompile(`"ID" : [0-9a-f]+\n`).ReplaceAllString(res[i].stdout, "")
			}
		}
		if res[0] != res[1] {
			t.Errorf("%q:\naetcdctl: %v\netcdctl:  %v", args, res[0], res[1])
		}
	}

	// Reads of one lease with two keys attached.
	id := grantLease(t, etcdctl, a.clientAddr, 100)
	hexID := fmt.Sprintf("%x", id)
	for _, k := range []string{"k1", "k2"} {
		if r := runCtl(t, etcdctl, a.clientAddr, "", "put", k, "v", "--lease", hexID); r.code != 0 {
			t.Fatal(r)
		}
	}
	for _, args := range [][]string{
		{"lease", "timetolive", hexID},
		{"lease", "timetolive", hexID, "--keys"},
		{"lease", "timetolive", hexID, "--keys", "-w", "json"},
		{"lease", "timetolive", hexID, "--keys", "-w", "fields"},
		{"lease", "timetolive", hexID, "--keys", "-w", "fields", "--hex"},
		{"lease", "timetolive", hexID, "-w", "protobuf"},
		{"lease", "timetolive", hexID, "-w", "table"},
		{"lease", "timetolive", "123", "--keys"},
		{"lease", "timetolive", "123", "-w", "json"},
		{"lease", "timetolive"},
		{"lease", "timetolive", "zz"},
		{"lease", "list"},
		{"lease", "list", "-w", "json"},
		{"lease", "list", "-w", "fields", "--hex"},
		{"lease", "list", "-w", "protobuf"},
		{"lease", "list", "-w", "table"},
		{"lease", "keep-alive", "--once", hexID},
		{"lease", "keep-alive", "--once", hexID, "-w", "json"},
		{"lease", "keep-alive", "--once", hexID, "-w", "fields"},
		{"lease", "keep-alive", "--once", "123"},
		{"lease", "keep-alive", "123"},
		{"lease", "keep-alive", "123", "-w", "json"},
		{"lease", "keep-alive"},
		{"lease", "keep-alive", "--once", "zz"},
	} {
		var got, want ctlResult
		for range 5 {
			res := runCtls(t, "", args, tools...)
			got, want = res[0], stripClientLogs(res[1])
			if got == want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%q:\naetcdctl: %v\netcdctl:  %v", args, got, want)
		}
	}

	// Revokes: each tool revokes a lease of its own.
	for _, args := range [][]string{
		{"lease", "revoke", "{lease}"},
		{"lease", "revoke", "{lease}", "-w", "json"},
		{"lease", "revoke", "{lease}", "-w", "fields"},
		{"lease", "revoke", "{lease}", "-w", "protobuf"},
		{"lease", "revoke", "{lease}", "-w", "table"},
		{"lease", "revoke", "123"},
		{"lease", "revoke"},
		{"lease", "revoke", "zz"},
	} {
		var res [2]ctlResult
		for i, tool := range tools {
			id := grantLease(t, etcdctl, a.clientAddr, 100)
			toolArgs := make([]string, len(args))
			for j, arg := range args {
				toolArgs[j] = strings.ReplaceAll(arg, "{lease}", fmt.Sprintf("%x", id))
			}
			res[i] = normalizeLease(stripClientLogs(runCtl(t, tool.bin, tool.endpoint, "", toolArgs...)), id)
		}
		if res[0] != res[1] {
			t.Errorf("%q:\naetcdctl: %v\netcdctl:  %v", args, res[0], res[1])
		}
	}

	// keep-alive until the lease is revoked. How many keep-alives a tool
	// sends before the revoke depends on how fast it started (one every
	// TTL/3), so repeats of the same line are compared as one; the revoke
	// waits for the first.
	var res [2]ctlResult
	for i, tool := range tools {
		id := grantLease(t, etcdctl, a.clientAddr, 3)
		cmd := exec.Command(tool.bin, "--endpoints="+tool.endpoint, "lease", "keep-alive", fmt.Sprintf("%x", id))
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the first keep-alive", func() bool { return strings.Contains(stdout.String(), "keepalived") })
		if r := runCtl(t, etcdctl, a.clientAddr, "", "lease", "revoke", fmt.Sprintf("%x", id)); r.code != 0 {
			t.Fatal(r)
		}
		err := cmd.Wait()
		res[i] = normalizeLease(stripClientLogs(ctlResult{stdout: collapseRepeats(stdout.String()), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}), id)
		if err != nil && res[i].code == 0 {
			t.Fatal(err)
		}
	}
	if res[0] != res[1] {
		t.Errorf("keep-alive until revoked:\naetcdctl: %v\netcdctl:  %v", res[0], res[1])
	}
}

// watcher is a watch command running in the background.
type watcher struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
}

func startWatch(t *testing.T, bin, endpoint string, args ...string) *watcher {
	t.Helper()
	w := &watcher{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	w.cmd = exec.Command(bin, append([]string{"--endpoints=" + endpoint}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "AETCDCTL_") {
			w.cmd.Env = append(w.cmd.Env, kv)
		}
	}
	w.cmd.Stdout, w.cmd.Stderr = w.stdout, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	return w
}

// stop interrupts the watch when its output stopped growing, and returns
// its output (the exit code of an interrupted watch is not compared).
func (w *watcher) stop(t *testing.T) ctlResult {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		out := w.stdout.String()
		if out == last {
			break
		}
		last = out
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	w.cmd.Wait()
	return stripClientLogs(ctlResult{stdout: w.stdout.String(), stderr: w.stderr.String()})
}

// wait waits for the watch to exit by itself and returns its output.
func (w *watcher) wait(t *testing.T) ctlResult {
	t.Helper()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("watch %q did not exit", w.cmd.Args)
	}
	return stripClientLogs(ctlResult{stdout: w.stdout.String(), stderr: w.stderr.String(), code: w.cmd.ProcessState.ExitCode()})
}

// TestAetcdctlWatchMatchesEtcdctl starts aetcdctl watch and etcdctl watch
// on the same member, makes writes, and requires them to print the same
// events; watches that the member cancels must also exit alike.
func TestAetcdctlWatchMatchesEtcdctl(t *testing.T) {
	etcdctl := etcdctlBin(t)
	aetcdctl := aetcdctlBin(t)
	a := startProc(t, t.TempDir(), freePort(t), freePort(t))
	put := func(args ...string) {
		t.Helper()
		if r := runCtl(t, etcdctl, a.clientAddr, "", args...); r.code != 0 {
			t.Fatal(r)
		}
	}

	live := [][]string{
		{"watch", "w", "--prefix", "--prev-kv"},
		{"watch", "w", "--prefix", "-w", "json"},
		{"watch", "w/", "w/b", "--prev-kv", "-w", "fields"},
		{"watch", "w/a", "--hex"},
		{"watch", "w", "--prefix", "-w", "protobuf"},
	}
	var watches [][2]*watcher
	for _, args := range live {
		watches = append(watches, [2]*watcher{startWatch(t, aetcdctl, a.remoteAddr, args...), startWatch(t, etcdctl, a.clientAddr, args...)})
	}
	time.Sleep(2 * time.Second) // both created
	lease := grantLease(t, etcdctl, a.clientAddr, 100)
	put("put", "w/a", "1")
	put("put", "w/a", "2")
	put("put", "x", "no")
	put("put", "w/b", "3", "--lease", fmt.Sprintf("%x", lease))
	put("del", "w/a")
	runCtl(t, etcdctl, a.clientAddr, "\nput w/c x\nput w/d y\ndel w/b\n\n\n", "txn")
	put("lease", "revoke", fmt.Sprintf("%x", lease))
	for i, args := range live {
		got, want := watches[i][0].stop(t), watches[i][1].stop(t)
		if got.stdout == "" || got != want {
			t.Errorf("%q:\naetcdctl: %v\netcdctl:  %v", args, got, want)
		}
	}

	// Replays from a past revision, canceled watches and errors: the
	// watch exits by itself.
	put("compaction", "3")
	for _, args := range [][]string{
		{"watch", "w", "--prefix", "--rev", "4", "--prev-kv"},
		{"watch", "w", "--prefix", "--rev", "4", "-w", "json"},
		{"watch", "w", "--prefix", "--rev", "2"},
		{"watch", "w", "--prefix", "--rev", "2", "-w", "json"},
		{"watch", "w", "--rev", "-3"},
		{"watch", "b", "a"},
		{"watch"},
		{"watch", "--prefix"},
		{"watch", "a", "b", "--prefix"},
		{"watch", "a", "-w", "bogus"},
	} {
		wa, we := startWatch(t, aetcdctl, a.remoteAddr, args...), startWatch(t, etcdctl, a.clientAddr, args...)
		var got, want ctlResult
		if strings.Contains(strings.Join(args, " "), "--rev 4") {
			got, want = wa.stop(t), we.stop(t)
		} else {
			got, want = wa.wait(t), we.wait(t)
		}
		if got != want {
			t.Errorf("%q:\naetcdctl: %v\netcdctl:  %v", args, got, want)
		}
	}
}

// collapseRepeats replaces each run of identical consecutive lines with one.
func collapseRepeats(s string) string {
	lines := strings.SplitAfter(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
