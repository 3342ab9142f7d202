package client_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/cluster/remoting"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc/codes"
)

// One protoactor remote per process. remote.Start rewrites grpc's global
// logger (grpclog.SetLoggerV2) without synchronisation, and the race
// detector rightly reports it against the gRPC goroutines of any remote
// started earlier in the process, even a stopped one. So every test that
// starts a Client runs alone in a child process (remotingtest.Isolate) and
// starts one Client there, and every fake member is a child process of its
// own.

const (
	memberModeEnv = "AETCD_CLIENT_TEST_MEMBER"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(memberModeEnv); mode != "" {
		os.Exit(runFakeMember(mode))
	}
	os.Exit(m.Run())
}

// runFakeMember is a member child: an actor system with remoting and a
// gateway that answers as mode says. It prints its address, logs one line
// per request to stderr, and exits when stdin closes.
func runFakeMember(mode string) int {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	r, err := remoting.Start(system, remoting.Config{Address: "127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var answer func(*messages.ClientRequest) *messages.ClientResponse
	var store *fakeStore
	switch mode {
	case "kv":
		store = newFakeStore()
		answer = store.answer
	case "silent":
		answer = func(*messages.ClientRequest) *messages.ClientResponse { return nil }
	case "wrongtype":
		answer = func(*messages.ClientRequest) *messages.ClientResponse {
			return &messages.ClientResponse{Response: &messages.ClientResponse_Put{Put: &messages.PutResponse{}}}
		}
	case "nogateway":
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		return 2
	}
	if answer != nil {
		gateway := func(ctx actor.Context) {
			req, ok := ctx.Message().(*messages.ClientRequest)
			if !ok {
				return
			}
			if w := req.GetWatch(); w != nil && store != nil {
				store.watch(ctx, w)
				return
			}
			fmt.Fprintf(os.Stderr, "request %T\n", req.Request)
			if resp := answer(req); resp != nil {
				ctx.Respond(resp)
			}
		}
		if _, err := system.Root.SpawnNamed(actor.PropsFromFunc(gateway), client.GatewayName); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	fmt.Println(system.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	r.Shutdown(false)
	return 0
}

// fakeStore answers put and range like a tiny store (one goroutine at a
// time: the gateway actor), and etcd's error for an empty key. Leases and
// watches are in store_test.go.
type fakeStore struct {
	kvs     map[string]*messages.KeyValue
	rev     int64
	leases  map[int64]int64 // ID → granted TTL
	streams map[string]*fakeStream
	send    func(*actor.PID, *messages.WatchResponse) // set by the first watch request
}

func newFakeStore() *fakeStore {
	return &fakeStore{kvs: map[string]*messages.KeyValue{}, rev: 1, leases: map[int64]int64{}, streams: map[string]*fakeStream{}}
}

func (f *fakeStore) answer(req *messages.ClientRequest) *messages.ClientResponse {
	switch r := req.Request.(type) {
	case *messages.ClientRequest_Put:
		if len(r.Put.Key) == 0 {
			return rpcerr.Response(rpcerr.EmptyKey)
		}
		if r.Put.Lease != 0 && f.leases[r.Put.Lease] == 0 {
			return rpcerr.Response(rpcerr.LeaseNotFound)
		}
		f.rev++
		prev := f.kvs[string(r.Put.Key)]
		kv := &messages.KeyValue{Key: r.Put.Key, Value: r.Put.Value, CreateRevision: f.rev, ModRevision: f.rev, Version: 1, Lease: r.Put.Lease}
		if prev != nil {
			kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
		}
		f.kvs[string(r.Put.Key)] = kv
		f.notify(&messages.Event{Kv: kv, PrevKv: prev})
		resp := &messages.PutResponse{Header: header(f.rev)}
		if r.Put.PrevKv {
			resp.PrevKv = prev
		}
		return &messages.ClientResponse{Response: &messages.ClientResponse_Put{Put: resp}}
	case *messages.ClientRequest_Range:
		resp := &messages.RangeResponse{Header: header(f.rev)}
		if kv := f.kvs[string(r.Range.Key)]; kv != nil {
			resp.Kvs, resp.Count = []*messages.KeyValue{kv}, 1
		}
		return &messages.ClientResponse{Response: &messages.ClientResponse_Range{Range: resp}}
	case *messages.ClientRequest_Status:
		return &messages.ClientResponse{Response: &messages.ClientResponse_Status{Status: &messages.StatusResponse{Header: header(f.rev), Version: "3.6.6"}}}
	}
	if resp := f.lease(req); resp != nil {
		return resp
	}
	return rpcerr.Response(&messages.Error{Code: uint32(codes.Unimplemented), Message: "fake: not implemented"})
}

func header(rev int64) *messages.ResponseHeader {
	return &messages.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: rev, RaftTerm: 3}
}

// fakeMember is a handle on a member child process.
type fakeMember struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *lockedBuffer

	stopOnce sync.Once
	exitErr  error
}

func startFakeMember(t *testing.T, mode string) *fakeMember {
	t.Helper()
	m := &fakeMember{log: &lockedBuffer{}}
	m.cmd = exec.Command(os.Args[0], "-test.run=^$")
	m.cmd.Env = append(os.Environ(), memberModeEnv+"="+mode)
	m.cmd.Stderr = m.log
	var err error
	if m.stdin, err = m.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start fake member: %v", err)
	}
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("fake member %s (%s): %v; stderr:\n%s", m.addr, mode, err, m.log.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("fake member did not print its address: %v; stderr:\n%s", err, m.log.String())
	}
	m.addr = strings.TrimSpace(line)
	return m
}

// stop closes the child's stdin and waits for it to exit; it returns the
// child's exit error (a crash) if any.
func (m *fakeMember) stop() error {
	m.stopOnce.Do(func() {
		m.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- m.cmd.Wait() }()
		select {
		case m.exitErr = <-done:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			m.exitErr = fmt.Errorf("did not exit: %v", <-done)
		}
	})
	return m.exitErr
}

// expectRequests fails the test unless the member's gateway received want
// requests. The child's log arrives through a pipe, so it waits a little
// for the count to reach want.
func (m *fakeMember) expectRequests(t *testing.T, want int) {
	t.Helper()
	count := func() int { return strings.Count(m.log.String(), "request ") }
	for deadline := time.Now().Add(2 * time.Second); count() < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := count(); got != want {
		t.Fatalf("member %s received %d requests, want %d", m.addr, got, want)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newClient returns a client closed when the test ends. A process holds
// one Client at most (see above).
func newClient(t *testing.T, timeout time.Duration, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, RequestTimeout: timeout})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
