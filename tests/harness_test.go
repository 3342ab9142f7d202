// Package tests holds end-to-end tests: members started in-process or as
// child processes, driven with etcd's own client (go.etcd.io/etcd/client/v3)
// and with aetcd's remoting client.
package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// aetcdBin is the path of the aetcd binary built by TestMain for
// multi-process tests.
var aetcdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aetcd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	aetcdBin = filepath.Join(dir, "aetcd")
	build := exec.Command("go", "build", "-o", aetcdBin, "../cmd/aetcd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building aetcd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// memberConfig returns the configuration of a single member listening on
// free loopback ports with its data in dir.
func memberConfig(t testing.TB, dir string) bootstrap.Config {
	t.Helper()
	cfg, _, err := bootstrap.ParseFlags([]string{
		"--name", "m1", "--data-dir", dir,
		"--listen-client-urls", "http://127.0.0.1:0",
		"--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-remoting-addr", "127.0.0.1:0",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.HeartbeatInterval = 50 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startMember starts an in-process member with its data in dir and stops it
// when the test ends.
func startMember(t testing.TB, dir string) *bootstrap.Member {
	t.Helper()
	return startMemberCfg(t, memberConfig(t, dir))
}

func startMemberCfg(t testing.TB, cfg bootstrap.Config) *bootstrap.Member {
	t.Helper()
	log := zerolog.Nop()
	if testing.Verbose() {
		log = bootstrap.NewLogger(os.Stderr, "warn")
	}
	m, err := bootstrap.Start(cfg, log)
	if err != nil {
		t.Fatalf("start member: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	return m
}

// newClient returns an etcd client of addrs, closed when the test ends.
func newClient(t testing.TB, addrs ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: addrs, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a loopback port that was free a moment ago and that
// this test binary has not handed out before (the kernel may offer a port
// again once its probe socket is closed, and two members given the same
// port collide when both start).
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[p] {
			portsGiven[p] = true
			return p
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// checkNoGoroutineLeak fails the test if, after cleanups, more goroutines
// run than before it started (allowing the runtime a moment to settle).
func checkNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// proc is a member running as a child process.
type proc struct {
	cmd        *exec.Cmd
	clientAddr string
	remoteAddr string
	log        *syncBuffer
	exited     chan struct{}
}

// startProc starts aetcd as a child process with data in dir, waits until
// it serves, and kills it when the test ends.
func startProc(t testing.TB, dir string, clientPort, remotePort int, extra ...string) *proc {
	t.Helper()
	p := &proc{
		clientAddr: fmt.Sprintf("127.0.0.1:%d", clientPort),
		remoteAddr: fmt.Sprintf("127.0.0.1:%d", remotePort),
		log:        &syncBuffer{},
		exited:     make(chan struct{}),
	}
	args := append([]string{"--name", "m1", "--data-dir", dir,
		"--listen-client-urls", "http://" + p.clientAddr,
		"--advertise-client-urls", "http://" + p.clientAddr,
		"--listen-remoting-addr", p.remoteAddr}, extra...)
	p.cmd = exec.Command(aetcdBin, args...)
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Stdout = pw
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 64*1024)
		signalled := false
		for {
			n, err := pr.Read(buf)
			p.log.Write(buf[:n])
			if !signalled && strings.Contains(p.log.String(), "ready to serve client requests") {
				close(ready)
				signalled = true
			}
			if err != nil {
				return
			}
		}
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); pw.Close(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("aetcd exited before serving:\n%s", p.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("aetcd did not serve within 30s:\n%s", p.log.String())
	}
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// syncBuffer is a strings.Builder safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
