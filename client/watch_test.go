package client_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// next returns the watch's next value, failing the test after 5 s.
func next(t *testing.T, ch <-chan client.WatchResponse) (client.WatchResponse, bool) {
	t.Helper()
	select {
	case r, ok := <-ch:
		return r, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no watch response within 5 s")
	}
	return client.WatchResponse{}, false
}

// expectClosed fails the test unless ch is closed within 5 s.
func expectClosed(t *testing.T, ch <-chan client.WatchResponse) {
	t.Helper()
	if r, ok := next(t, ch); ok {
		t.Fatalf("watch channel not closed: %+v", r)
	}
}

// heartbeatClient is newClient with a short watch heartbeat.
func heartbeatClient(t *testing.T, timeout, heartbeat time.Duration, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, RequestTimeout: timeout, WatchHeartbeat: heartbeat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWatchEvents(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := heartbeatClient(t, 5*time.Second, 100*time.Millisecond, m.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ch, err := c.Watch(ctx, &messages.WatchCreateRequest{Key: []byte("w/"), RangeEnd: []byte("w0"), PrevKv: true})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if r, _ := next(t, ch); r.Err != nil || !r.Response.GetCreated() || r.Response.GetCanceled() {
		t.Fatalf("first value %+v, want the created response", r)
	}
	for _, kv := range [][2]string{{"w/a", "1"}, {"x", "no"}, {"w/a", "2"}} {
		if _, err := c.Put(ctx, &messages.PutRequest{Key: []byte(kv[0]), Value: []byte(kv[1])}); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := next(t, ch)
	if ev := r.Response.GetEvents(); r.Err != nil || len(ev) != 1 || string(ev[0].Kv.Value) != "1" || ev[0].PrevKv != nil {
		t.Fatalf("first event %+v", r)
	}
	r, _ = next(t, ch)
	if ev := r.Response.GetEvents(); r.Err != nil || len(ev) != 1 || string(ev[0].Kv.Value) != "2" || string(ev[0].PrevKv.GetValue()) != "1" {
		t.Fatalf("second event %+v", r)
	}

	// The stream sends heartbeats while it lives, and is closed on cancel.
	time.Sleep(500 * time.Millisecond)
	cancel()
	expectClosed(t, ch)
	waitLog(t, m, "watch close")
	if n := strings.Count(m.log.String(), "watch heartbeat"); n < 2 {
		t.Fatalf("%d heartbeats in 500 ms, want several every 100 ms", n)
	}
	if n := strings.Count(m.log.String(), "request *messages.ClientRequest_Status"); n < 2 {
		t.Fatalf("%d liveness checks, want several", n)
	}
}

// waitLog waits up to 5 s for the member to log text.
func waitLog(t *testing.T, m *fakeMember, text string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(m.log.String(), text) {
			return
		}
	}
	t.Fatalf("member did not log %q:\n%s", text, m.log.String())
}

func TestWatchCanceledByMember(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	ctx := context.Background()

	// A refused create is the only value.
	ch, err := c.Watch(ctx, &messages.WatchCreateRequest{Key: []byte("refused")})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := next(t, ch); !r.Response.GetCanceled() || r.Response.GetCancelReason() != "mvcc: watcher range is empty" {
		t.Fatalf("refused create: %+v", r)
	}
	expectClosed(t, ch)

	// A watcher canceled after its creation: created, canceled, closed.
	ch, err = c.Watch(ctx, &messages.WatchCreateRequest{Key: []byte("compacted"), StartRevision: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := next(t, ch); !r.Response.GetCreated() {
		t.Fatalf("first value %+v", r)
	}
	if r, _ := next(t, ch); !r.Response.GetCanceled() || r.Response.GetCompactRevision() != 5 {
		t.Fatalf("second value %+v", r)
	}
	expectClosed(t, ch)

	// A member's error answer is Watch's error.
	_, err = c.Watch(ctx, &messages.WatchCreateRequest{Key: []byte("error")})
	if status.Code(err) != codes.FailedPrecondition || err.Error() != "etcdserver: rpc not supported for learner" {
		t.Fatalf("Watch answered with an error: %v", err)
	}
}

func TestWatchMemberLost(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := heartbeatClient(t, 5*time.Second, 100*time.Millisecond, m.addr)
	ch, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch) // created
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	r, _ := next(t, ch)
	var lost *client.WatchLostError
	if !errors.As(r.Err, &lost) || lost.Endpoint != m.addr {
		t.Fatalf("after the member stopped: %+v, want a WatchLostError", r)
	}
	expectClosed(t, ch)
}

func TestWatchSilentMember(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	silent := silentMember(t)
	live := kvMember(t)
	c := newClient(t, 300*time.Millisecond, silent.addr, live.addr)

	// A member that does not answer the create is skipped.
	ch, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")})
	if err != nil {
		t.Fatalf("Watch with a silent first member: %v", err)
	}
	if r, _ := next(t, ch); !r.Response.GetCreated() {
		t.Fatalf("first value %+v", r)
	}
	waitLog(t, live, "watch create")
}

func TestWatchTimeout(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	silent := silentMember(t)
	c := newClient(t, 300*time.Millisecond, silent.addr)
	_, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")})
	var te *client.TimeoutError
	if !errors.As(err, &te) || te.Endpoints[0] != silent.addr {
		t.Fatalf("Watch on a silent member: %v, want a timeout", err)
	}
}

func TestWatchUnansweredHeartbeat(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := heartbeatClient(t, 300*time.Millisecond, 100*time.Millisecond, m.addr)
	ch, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch)
	// Freeze the member: its connection stays open, but nothing answers.
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer m.cmd.Process.Signal(syscall.SIGCONT)
	r, _ := next(t, ch)
	var lost *client.WatchLostError
	if !errors.As(r.Err, &lost) || !errors.Is(r.Err, client.ErrTimeout) {
		t.Fatalf("after the member froze: %+v, want a WatchLostError with a timeout", r)
	}
	expectClosed(t, ch)
}

func TestWatchClose(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	before := settledGoroutines(t, -1)
	c, err := client.New(client.Config{Endpoints: []string{m.addr}, WatchHeartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var chans []<-chan client.WatchResponse
	for range 5 {
		ch, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch)
		chans = append(chans, ch)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, &messages.WatchCreateRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch)
	cancel()
	expectClosed(t, ch)
	kctx, kcancel := context.WithCancel(context.Background())
	defer kcancel()
	g, err := c.Grant(context.Background(), 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-ka
	time.Sleep(200 * time.Millisecond)

	c.Close()
	for _, ch := range chans {
		if r, _ := next(t, ch); !errors.Is(r.Err, client.ErrClosed) {
			t.Fatalf("after Close: %+v, want ErrClosed", r)
		}
		expectClosed(t, ch)
	}
	if _, err := c.Watch(context.Background(), &messages.WatchCreateRequest{Key: []byte("k")}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
	for range ka {
	}
	settledGoroutines(t, before)
}
