package tests

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/rs/zerolog"
)

// TestRunRestartsInProcessWithoutLeaks drives bootstrap.Run (what cmd/aetcd
// runs) in this process: each actor kill restarts the member on its data
// dir, the data survives every restart, and once Run returns no goroutine
// of any incarnation is left.
func TestRunRestartsInProcessWithoutLeaks(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	checkNoGoroutineLeak(t)
	cfg := memberConfig(t, t.TempDir())
	cfg.FaultInjection = true
	log := zerolog.Nop()
	if testing.Verbose() {
		log = bootstrap.NewLogger(os.Stderr, "warn")
	}
	members := make(chan *bootstrap.Member, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- bootstrap.Run(ctx, cfg, log, func(m *bootstrap.Member) { members <- m }) }()

	next := func() *bootstrap.Member {
		t.Helper()
		select {
		case m := <-members:
			return m
		case err := <-runErr:
			t.Fatalf("Run returned: %v", err)
		case <-time.After(15 * time.Second):
			t.Fatal("no member (re)started within 15 s")
		}
		return nil
	}
	m := next()
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
		cli = newClient(t, m.ClientAddrs()...)
		ctx, c = context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.Get(ctx, "k")
		c()
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != kill.actor {
			t.Fatalf("after restart %d: get k = %v, %v; want %q", i+1, resp, err, kill.actor)
		}
		cli.Close()
	}
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
