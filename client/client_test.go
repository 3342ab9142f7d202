package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func kvMember(t *testing.T) *fakeMember     { return startFakeMember(t, "kv") }
func silentMember(t *testing.T) *fakeMember { return startFakeMember(t, "silent") }

func TestPutRangeRoundTrip(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	ctx := context.Background()

	put, err := c.Put(ctx, &messages.PutRequest{Key: []byte("foo"), Value: []byte("bar")})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := put.GetHeader().GetRevision(); got != 2 {
		t.Fatalf("Put revision = %d, want 2", got)
	}
	put, err = c.Put(ctx, &messages.PutRequest{Key: []byte("foo"), Value: []byte("baz"), PrevKv: true})
	if err != nil {
		t.Fatalf("Put with prev_kv: %v", err)
	}
	if got := string(put.GetPrevKv().GetValue()); got != "bar" {
		t.Fatalf("prev_kv value = %q, want bar", got)
	}

	rng, err := c.Range(ctx, &messages.RangeRequest{Key: []byte("foo")})
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	want := &messages.RangeResponse{
		Header: header(3),
		Kvs:    []*messages.KeyValue{{Key: []byte("foo"), Value: []byte("baz"), CreateRevision: 2, ModRevision: 3, Version: 2}},
		Count:  1,
	}
	if !proto.Equal(rng, want) {
		t.Fatalf("Range = %v, want %v", rng, want)
	}

	st, err := c.Status(ctx)
	if err != nil || st.GetVersion() != "3.6.6" {
		t.Fatalf("Status = %v, %v", st, err)
	}
	st, err = c.StatusAt(ctx, m.addr)
	if err != nil || st.GetVersion() != "3.6.6" {
		t.Fatalf("StatusAt = %v, %v", st, err)
	}

	// Do returns the whole answer.
	resp, err := c.Do(ctx, &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte("nope")}}})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if !proto.Equal(resp, &messages.ClientResponse{Response: &messages.ClientResponse_Range{Range: &messages.RangeResponse{Header: header(3)}}}) {
		t.Fatalf("Do = %v, want an empty range response", resp)
	}
	if _, err := c.Do(ctx, &messages.ClientRequest{}); err == nil {
		t.Fatal("Do with an empty request did not fail")
	}
	m.expectRequests(t, 6)
}

func TestConcurrentRequests(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			key := []byte{'k', byte(i)}
			if _, err := c.Put(context.Background(), &messages.PutRequest{Key: key, Value: key}); err != nil {
				errs <- err
				return
			}
			r, err := c.Range(context.Background(), &messages.RangeRequest{Key: key})
			if err != nil {
				errs <- err
				return
			}
			if len(r.Kvs) != 1 || !bytes.Equal(r.Kvs[0].Value, key) {
				errs <- fmt.Errorf("key %q: read back %v", key, r.Kvs)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorMapping(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)

	_, err := c.Put(context.Background(), &messages.PutRequest{Value: []byte("v")})
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("Put with empty key: err = %T %v, want *client.Error", err, err)
	}
	if e.Code != codes.InvalidArgument || e.Message != "etcdserver: key is not provided" {
		t.Fatalf("error = %+v", e)
	}
	if err.Error() != "etcdserver: key is not provided" {
		t.Fatalf("Error() = %q", err.Error())
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("status.Code = %v", status.Code(err))
	}
	if s, _ := status.FromError(err); s.Message() != "etcdserver: key is not provided" {
		t.Fatalf("status message = %q", s.Message())
	}
	if !errors.Is(err, &client.Error{Code: codes.InvalidArgument, Message: "etcdserver: key is not provided"}) {
		t.Fatal("errors.Is with an equal *Error is false")
	}

	_, err = c.Compact(context.Background(), &messages.CompactionRequest{Revision: 1})
	if status.Code(err) != codes.Unimplemented || err.Error() != "fake: not implemented" {
		t.Fatalf("Compact on the fake: %v", err)
	}
}

func TestUnexpectedResponse(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := startFakeMember(t, "wrongtype")
	c := newClient(t, 5*time.Second, m.addr)
	_, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("a")})
	var ue *client.UnexpectedResponseError
	if !errors.As(err, &ue) || ue.Endpoint != m.addr || ue.Want != "range" || ue.Got != "Put" {
		t.Fatalf("err = %v, want UnexpectedResponseError{%s, range, Put}", err, m.addr)
	}
}

func TestTimeout(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := silentMember(t)
	c := newClient(t, 300*time.Millisecond, m.addr)

	start := time.Now()
	_, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("a")})
	if !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Fatalf("timed out after %v, before the request timeout", elapsed)
	}
	if want := "client: member " + m.addr + " did not answer within 300ms"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("a request timeout reported as the context's deadline")
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status.Code = %v", status.Code(err))
	}
	m.expectRequests(t, 1)

	// A context deadline shorter than the request timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Range(ctx, &messages.RangeRequest{Key: []byte("a")})
	if !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout caused by the context deadline", err)
	}
	if time.Since(start) >= 300*time.Millisecond {
		t.Fatal("the context deadline was not respected")
	}

	// A canceled context returns promptly with its error.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Range(ctx, &messages.RangeRequest{Key: []byte("a")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFailoverToNextEndpoint(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	silent := silentMember(t)
	live := kvMember(t)
	c := newClient(t, 300*time.Millisecond, silent.addr, live.addr)

	if _, err := c.Put(context.Background(), &messages.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("Put with a silent first endpoint: %v", err)
	}
	// The endpoint that answered is tried first from now on.
	start := time.Now()
	if _, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatalf("Range: %v", err)
	}
	if time.Since(start) >= 300*time.Millisecond {
		t.Fatal("second request waited for the silent member again")
	}
	silent.expectRequests(t, 1)
	live.expectRequests(t, 2)
}

func TestNoMemberAnswers(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	a, b := silentMember(t), silentMember(t)
	c := newClient(t, 200*time.Millisecond, a.addr, b.addr)
	_, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("k")})
	var te *client.TimeoutError
	if !errors.As(err, &te) || len(te.Endpoints) != 2 {
		t.Fatalf("err = %v, want a timeout naming both members", err)
	}
	if want := "client: members " + a.addr + ", " + b.addr + " did not answer within 200ms"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	a.expectRequests(t, 1)
	b.expectRequests(t, 1)
}

func TestNoGateway(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := startFakeMember(t, "nogateway")
	live := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr, live.addr)

	start := time.Now()
	_, err := c.DoAt(context.Background(), m.addr, &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte("a")}}})
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, client.ErrNoGateway) || ue.Endpoint != m.addr {
		t.Fatalf("err = %v, want unreachable: no gateway", err)
	}
	if want := "client: member " + m.addr + " is unreachable: no gateway actor"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v; a missing gateway should be reported without waiting for the timeout", time.Since(start))
	}

	// The request was not executed, so the next member is tried at once.
	if _, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("a")}); err != nil {
		t.Fatalf("Range with a gatewayless first endpoint: %v", err)
	}
}

func TestDeadEndpoint(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := silentMember(t)
	dead := m.addr
	if err := m.stop(); err != nil {
		t.Fatal(err)
	}
	live := kvMember(t)
	c := newClient(t, 5*time.Second, dead, live.addr)
	rangeReq := &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte("a")}}}

	start := time.Now()
	_, err := c.DoAt(context.Background(), dead, rangeReq)
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || ue.Endpoint != dead || status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want unreachable %s", err, dead)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %q does not say why", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a refused connection was not reported at once")
	}

	if _, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("a")}); err != nil {
		t.Fatalf("Range with a dead first endpoint: %v", err)
	}

	// A member that dies after answering is noticed by its connection
	// closing; the next request does not wait for a timeout.
	if err := live.stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	_, err = c.DoAt(context.Background(), live.addr, rangeReq)
	if !errors.As(err, &ue) {
		t.Fatalf("after the member died: %v, want unreachable", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("a dead member was not reported at once")
	}
}

func TestClosed(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := silentMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Range(context.Background(), &messages.RangeRequest{Key: []byte("a")})
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("in-flight request: %v, want ErrClosed", err)
	}
	if _, err := c.Range(context.Background(), &messages.RangeRequest{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("request after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	if _, err := client.New(client.Config{}); !errors.Is(err, client.ErrNoEndpoints) {
		t.Fatalf("no endpoints: %v", err)
	}
	if _, err := client.New(client.Config{Endpoints: []string{"no-port"}}); err == nil {
		t.Fatal("endpoint without port accepted")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:2380"}, ListenAddr: l.Addr().String()})
	if err == nil {
		c.Close()
		t.Fatal("listening on an address in use did not fail")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %q does not say why", err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	dead := silentMember(t)
	deadAddr := dead.addr
	if err := dead.stop(); err != nil {
		t.Fatal(err)
	}
	before := settledGoroutines(t, -1)

	c, err := client.New(client.Config{Endpoints: []string{deadAddr, m.addr}})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := c.Put(context.Background(), &messages.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	settledGoroutines(t, before)
}

// settledGoroutines waits for the goroutine count to stop falling (or to
// reach want, when want ≥ 0) and returns it; it fails the test with the
// stacks when want is not reached within 15 s.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last, stable := runtime.NumGoroutine(), 0
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if want >= 0 && n <= want {
			return n
		}
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		if want < 0 && stable >= 20 {
			return n
		}
	}
	if want < 0 {
		return last
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines after Close, want ≤ %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
	return 0
}

func TestCloseDuringRequests(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			for {
				_, err := c.Put(context.Background(), &messages.PutRequest{Key: []byte{'k', byte(i)}, Value: []byte("v")})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	c.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, client.ErrClosed) {
			t.Errorf("request racing Close: %v, want ErrClosed", err)
		}
	}
}
