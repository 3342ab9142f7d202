package tests

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/rs/zerolog"
)

// runMembers runs bootstrap.Run (what cmd/aetcd runs) on cfg in this
// process. next returns each member once it serves (failing the test if Run
// returns or nothing starts within 15 s); stop cancels Run and returns its
// error.
func runMembers(t *testing.T, cfg bootstrap.Config, log zerolog.Logger) (next func() *bootstrap.Member, runErr <-chan error, stop func() error) {
	members := make(chan *bootstrap.Member, 10)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- bootstrap.Run(ctx, cfg, log, func(m *bootstrap.Member) { members <- m }) }()
	next = func() *bootstrap.Member {
		t.Helper()
		select {
		case m := <-members:
			return m
		case err := <-errc:
			t.Fatalf("Run returned: %v", err)
		case <-time.After(15 * time.Second):
			t.Fatal("no member (re)started within 15 s")
		}
		return nil
	}
	stop = func() error {
		t.Helper()
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		return nil
	}
	t.Cleanup(cancel)
	return next, errc, stop
}

// TestRunRestartsInProcessWithoutLeaks drives bootstrap.Run in this
// process on a data dir that holds data, with
// --experimental-initial-corrupt-check: each actor kill restarts the member
// on its data dir, the data survives every restart, only the process start
// runs the corruption check (a restart reopens what the process wrote a
// moment ago), and once Run returns no goroutine of any incarnation is
// left.
func TestRunRestartsInProcessWithoutLeaks(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	writeAndStop(t, cfg)
	cfg.FaultInjection = true
	cfg.InitialCorruptCheck = true
	logs := &syncBuffer{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	next, _, stop := runMembers(t, cfg, bootstrap.NewLogger(out, "info"))
	checks := func() int { return strings.Count(logs.String(), "starting initial corruption check") }
	m := next()
	if n := checks(); n != 1 {
		t.Fatalf("the process start ran the initial corruption check %d times, want 1", n)
	}
	for i, kill := range []struct{ actor, how string }{{"raft", "panic"}, {"applier", "stop"}, {"wal", "poison"}} {
		cli := newClient(t, m.ClientAddrs()...)
		ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, "k", kill.actor)
		c()
		if err != nil {
			t.Fatalf("put before kill %d: %v", i, err)
		}
		cli.Close()
		if err := m.KillActor(kill.actor, kill.how); err != nil {
			t.Fatal(err)
		}
		<-m.Done()
		if !errors.Is(m.Err(), bootstrap.ErrActorFailed) && !errors.Is(m.Err(), bootstrap.ErrActorStopped) {
			t.Fatalf("member stopped with %v, want an actor failure", m.Err())
		}
		m = next()
		if n := checks(); n != 1 {
			t.Fatalf("after supervisor restart %d the corruption check has run %d times, want 1 (the process start only)", i+1, n)
		}
		cli = newClient(t, m.ClientAddrs()...)
		ctx, c = context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.Get(ctx, "k")
		c()
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != kill.actor {
			t.Fatalf("after restart %d: get k = %v, %v; want %q", i+1, resp, err, kill.actor)
		}
		cli.Close()
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// TestRunDoesNotRestartLostLog: a raft node whose log lost entries it had
// made durable (raft.ErrLogLost) stops the member, and Run returns that
// error without a supervisor restart: no restart can bring the entries
// back, and the member must not answer from a log that lacks them.
func TestRunDoesNotRestartLostLog(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	checkNoGoroutineLeak(t)
	cfg := memberConfig(t, t.TempDir())
	cfg.FaultInjection = true
	next, runErr, _ := runMembers(t, cfg, zerolog.Nop())
	m := next()
	if err := m.KillActor("raft", "loglost"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, raft.ErrLogLost) || errors.Is(err, bootstrap.ErrActorFailed) {
			t.Fatalf("Run returned %v, want raft.ErrLogLost and not an actor failure", err)
		}
		if !errors.Is(m.Err(), raft.ErrLogLost) {
			t.Fatalf("member Err = %v, want raft.ErrLogLost", m.Err())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15 s of a lost log")
	}
}
