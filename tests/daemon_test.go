package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aetcd/aetcd/bootstrap"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runDaemon runs the aetcd binary with args in dir until it exits by itself
// (within 30 s) and returns its output and exit code.
func runDaemon(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, aetcdBin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		code = exit.ExitCode()
	default:
		t.Fatalf("aetcd %q: %v\nstderr:\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

func TestDaemonVersion(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runDaemon(t, dir, "--version")
	if code != 0 || stderr != "" {
		t.Fatalf("aetcd --version: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"aetcd Version: " + bootstrap.Version + "\n", "etcd API Version: " + bootstrap.APIVersion + "\n", "Go Version: go"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("aetcd --version printed %q; want it to contain %q", stdout, want)
		}
	}
	checkEmptyDir(t, dir)
}

// checkEmptyDir fails the test unless dir holds nothing: the daemon must
// not create a data dir when it does not start.
func checkEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was created in the daemon's working directory", e.Name())
	}
}

// TestDaemonBadFlags: a command line the daemon cannot serve makes it exit
// non-zero at once, saying why in one line, without touching the disk.
func TestDaemonBadFlags(t *testing.T) {
	single := []string{"--name", "m1", "--initial-advertise-peer-urls", "http://127.0.0.1:12380", "--listen-peer-urls", "http://127.0.0.1:12380",
		"--listen-client-urls", "http://127.0.0.1:12379", "--advertise-client-urls", "http://127.0.0.1:12379"}
	tests := []struct {
		name string
		args []string
		want string // the error line names this
	}{
		{"unknown flag", []string{"--no-such-flag"}, "no-such-flag"},
		{"unknown flag with data dir", []string{"--data-dir", "d", "--bogus=1"}, "bogus"},
		{"unexpected argument", []string{"--data-dir", "d", "serve"}, `unexpected argument "serve"`},
		{"bad initial cluster state", []string{"--data-dir", "d", "--initial-cluster-state", "bogus"}, "--initial-cluster-state"},
		{"zero max txn ops", []string{"--data-dir", "d", "--max-txn-ops", "0"}, "--max-txn-ops"},
		{"negative max txn ops", []string{"--max-txn-ops=-3"}, "--max-txn-ops"},
		{"two members with the same peer URL", append(append([]string{"--data-dir", "d"}, single...),
			"--initial-cluster", "m1=http://127.0.0.1:12380,m2=http://127.0.0.1:12380"), "same peer URLs"},
		{"initial cluster without this member", append(append([]string{"--data-dir", "d"}, single...),
			"--initial-cluster", "m2=http://127.0.0.1:22380"), "--initial-cluster"},
		{"existing cluster state with no member to join", append(append([]string{"--data-dir", "d"}, single...), "--initial-cluster-state", "existing"), "existing"},
		{"bad election timeout", []string{"--data-dir", "d", "--heartbeat-interval", "100", "--election-timeout", "200"}, "--election-timeout"},
		{"bad log level", []string{"--data-dir", "d", "--log-level", "loud"}, "--log-level"},
		{"non-numeric max txn ops", []string{"--data-dir", "d", "--max-txn-ops", "many"}, "max-txn-ops"},
		{"lease checkpoint interval under a second", []string{"--data-dir", "d", "--lease-checkpoint-interval", "10ms"}, "--lease-checkpoint-interval"},
		{"watch progress interval under 100ms", []string{"--data-dir", "d", "--watch-progress-notify-interval", "1ms"}, "--watch-progress-notify-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			stdout, stderr, code := runDaemon(t, dir, tt.args...)
			if code == 0 {
				t.Fatalf("aetcd %q exited 0; stderr:\n%s", tt.args, stderr)
			}
			if stdout != "" {
				t.Errorf("aetcd %q wrote to stdout: %q", tt.args, stdout)
			}
			// One line says what is wrong ("aetcd: ..."); a hint may
			// follow, but no usage dump or log lines.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			var errLines []string
			for _, l := range lines {
				if strings.HasPrefix(l, "aetcd: ") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], tt.want) {
				t.Errorf("aetcd %q: want one error line naming %q, got stderr:\n%s", tt.args, tt.want, stderr)
			}
			if len(lines) > 2 {
				t.Errorf("aetcd %q: stderr has %d lines, want the error line and at most a hint:\n%s", tt.args, len(lines), stderr)
			}
			checkEmptyDir(t, dir)
		})
	}
}

// checkJSONLogs requires every line of log to be a zerolog JSON object
// with a level and a message, and returns the messages.
func checkJSONLogs(t *testing.T, log string) []string {
	t.Helper()
	var msgs []string
	lines := strings.Split(log, "\n")
	// The last element is empty, or a line still being written.
	for i, line := range lines[:len(lines)-1] {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON (%v): %q", i+1, err, line)
			continue
		}
		level, _ := rec["level"].(string)
		msg, ok := rec["message"].(string)
		if !ok {
			msg, ok = rec["msg"].(string)
		}
		if level == "" || !ok {
			t.Errorf("log line %d lacks a level or a message: %q", i+1, line)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// stopWithSIGTERM sends the child member SIGTERM and returns its exit code
// once it has exited (failing the test if it takes more than 20 s). When it
// exits 0, it waits for "member stopped" to reach p.log, whose reader may
// lag a moment behind the exit.
func stopWithSIGTERM(t *testing.T, p *proc) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("the member did not exit within 20s of SIGTERM:\n%s", p.log.String())
	}
	code := p.cmd.ProcessState.ExitCode()
	for deadline := time.Now().Add(2 * time.Second); code == 0 && time.Now().Before(deadline); {
		if strings.Contains(p.log.String(), `"member stopped"`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return code
}

// TestDaemonSIGTERMUnderLoad stops a serving member with SIGTERM while
// clients write to it: it exits 0 after logging "member stopped", every
// line it logged is JSON, and after a restart every write it acknowledged
// is there.
func TestDaemonSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	clientPort, remotePort := freePort(t), freePort(t)
	p := startProc(t, dir, clientPort, remotePort)
	cli := newClient(t, p.clientAddr)

	const writers = 4
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key, val := fmt.Sprintf("load/%d/%06d", w, i), fmt.Sprintf("value %d %d", w, i)
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cli.Put(pctx, key, val)
				pcancel()
				if err != nil {
					return // the member is stopping
				}
				mu.Lock()
				acked[key] = val
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range writers {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatalf("the writers made no progress:\n%s", p.log.String())
		}
	}
	time.Sleep(200 * time.Millisecond)
	if code := stopWithSIGTERM(t, p); code != 0 {
		t.Fatalf("after SIGTERM the member exited %d:\n%s", code, p.log.String())
	}
	cancel()
	wg.Wait()
	msgs := checkJSONLogs(t, p.log.String())
	for _, want := range []string{"ready to serve client requests", "received signal; stopping", "member stopped"} {
		if !containsString(msgs, want) {
			t.Errorf("the member did not log %q:\n%s", want, p.log.String())
		}
	}
	if len(acked) < writers*10 {
		t.Fatalf("only %d puts were acknowledged", len(acked))
	}

	q := startProc(t, dir, clientPort, remotePort)
	cli2 := newClient(t, q.clientAddr)
	resp, err := cli2.Get(ctxT(t), "load/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	missing := 0
	for k, v := range acked {
		if got[k] != v {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged put %s=%q is %q after the restart", k, v, got[k])
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged puts are missing after the restart", missing, len(acked))
	}
	t.Logf("%d puts acknowledged before SIGTERM, %d keys after the restart", len(acked), len(got))
	checkJSONLogs(t, q.log.String())
	if code := stopWithSIGTERM(t, q); code != 0 {
		t.Fatalf("after the second SIGTERM the member exited %d:\n%s", code, q.log.String())
	}
}

// TestDaemonHTTP checks the HTTP endpoints on the client port of a member
// run by the daemon.
func TestDaemonHTTP(t *testing.T) {
	p := startProc(t, t.TempDir(), freePort(t), freePort(t))
	cli := newClient(t, p.clientAddr)
	// A write succeeds only once the member leads; /health reports the
	// leader.
	if _, err := cli.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := hc.Get("http://" + p.clientAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(body), resp.Header
	}

	code, body, hdr := get("/health")
	if code != http.StatusOK || body != `{"health":"true","reason":""}` {
		t.Errorf("GET /health: %d %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /health: Content-Type %q", ct)
	}

	code, body, _ = get("/version")
	var version map[string]string
	if err := json.Unmarshal([]byte(body), &version); code != http.StatusOK || err != nil {
		t.Fatalf("GET /version: %d %q (%v)", code, body, err)
	}
	if version["etcdserver"] != bootstrap.APIVersion || version["etcdcluster"] == "" || len(version) != 2 {
		t.Errorf("GET /version: %q; want etcdserver %s and etcdcluster", body, bootstrap.APIVersion)
	}

	code, body, _ = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, "\naetcd_wal_fsyncs_total ") {
		t.Errorf("GET /metrics: %d, no aetcd_wal_fsyncs_total sample in:\n%s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "aetcd_wal_fsyncs_total "); ok && (v == "0" || v == "") {
			t.Errorf("GET /metrics: aetcd_wal_fsyncs_total is %q after a write", v)
		}
	}

	for _, path := range []string{"/livez", "/readyz"} {
		if code, body, _ := get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d %q", path, code, body)
		}
	}
	if code, _, _ := get("/no-such-path"); code != http.StatusNotFound {
		t.Errorf("GET /no-such-path: %d, want 404", code)
	}

	// The same port still speaks gRPC.
	if resp, err := cli.Get(ctxT(t), "k"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get after the HTTP requests: %v, %v", resp, err)
	}
	if msgs := checkJSONLogs(t, p.log.String()); !containsString(msgs, "ready to serve client requests") {
		t.Errorf("the member did not log that it is ready:\n%s", p.log.String())
	}
}
