package remoting_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/cluster/remoting"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// One protoactor remote per process: remote.Start rewrites grpc's global
// logger without synchronisation, which the race detector reports against
// the gRPC goroutines of any other remote started in the process. So each
// test that starts remoting runs alone in a child process (remotingtest.Isolate), the
// member under test is the only remote in it, bad batches are sent over
// plain gRPC streams, and the "normal remoting client" is a child process
// of its own (runClient).

const (
	clientModeEnv = "AETCD_REMOTING_TEST_CLIENT" // the member address
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(clientModeEnv); addr != "" {
		os.Exit(runClient(addr))
	}
	os.Exit(m.Run())
}

func newSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// runClient is the normal remoting client: for each line on stdin it asks
// the gateway at addr for its status and prints "ok <version>" or the
// error.
func runClient(addr string) int {
	system := newSystem()
	r, err := remoting.Start(system, remoting.Config{Address: "127.0.0.1:0"})
	if err != nil {
		fmt.Println("start:", err)
		return 2
	}
	defer r.Shutdown(false)
	gateway := actor.NewPID(addr, "gateway")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		req := &messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: &messages.StatusRequest{}}}
		res, err := system.Root.RequestFuture(gateway, req, 5*time.Second).Result()
		switch res := res.(type) {
		case *messages.ClientResponse:
			fmt.Println("ok", res.GetStatus().GetVersion())
		default:
			fmt.Printf("error %T %v\n", res, err)
		}
	}
	return 0
}

// normalClient is the parent's handle on a runClient child.
type normalClient struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startNormalClient(t *testing.T, addr string) *normalClient {
	t.Helper()
	c := &normalClient{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), clientModeEnv+"="+addr)
	c.cmd.Stderr = os.Stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewReader(stdout)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stdin.Close()
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("normal client: %v", err)
		}
	})
	return c
}

// ask has the client ask the gateway once and returns its answer line.
func (c *normalClient) ask(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "ask\n"); err != nil {
		t.Fatalf("normal client: %v", err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("normal client: %v", err)
	}
	return strings.TrimSpace(line)
}

// member is the remoting under test with a gateway that records what it
// receives and answers a ClientRequest with a status.
type member struct {
	system   *actor.ActorSystem
	remote   *remote.Remote
	addr     string
	gateway  *actor.PID
	received chan any
}

func startMember(t *testing.T) *member {
	t.Helper()
	return startMemberWith(t, nil)
}

func startMemberWith(t *testing.T, allowTarget func(target, typeName string) bool) *member {
	t.Helper()
	m := &member{system: newSystem(), received: make(chan any, 100)}
	r, err := remoting.Start(m.system, remoting.Config{Address: "127.0.0.1:0", AllowTarget: allowTarget})
	if err != nil {
		t.Fatalf("remoting.Start: %v", err)
	}
	m.remote, m.addr = r, m.system.Address()
	// Shutdown(true) would panic here: protoactor keeps the channel of an
	// endpoint reader that ended with an error, and sends on it.
	t.Cleanup(func() { r.Shutdown(false) })
	gateway := func(ctx actor.Context) {
		switch msg := ctx.Message().(type) {
		case *messages.ClientRequest:
			m.received <- msg
			if ctx.Sender() != nil {
				ctx.Respond(&messages.ClientResponse{Response: &messages.ClientResponse_Status{Status: &messages.StatusResponse{Version: "guarded"}}})
			}
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		default:
			m.received <- msg
		}
	}
	if m.gateway, err = m.system.Root.SpawnNamed(actor.PropsFromFunc(gateway), "gateway"); err != nil {
		t.Fatal(err)
	}
	return m
}

// rawStream is a gRPC stream to the member's remoting endpoint, opened with
// protoactor's generated client and past the connect handshake.
func rawStream(t *testing.T, addr string) remote.Remoting_ReceiveClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connect := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
		ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "raw", Address: "127.0.0.1:1"}},
	}}}
	if err := stream.Send(connect); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetConnectResponse() == nil {
		t.Fatalf("connect: %v, %v", resp, err)
	}
	return stream
}

func sendBatch(t *testing.T, stream remote.Remoting_ReceiveClient, b *remote.MessageBatch) {
	t.Helper()
	if err := stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const requestType = "aetcd.ClientRequest"

func TestGuard(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := startMember(t)
	normal := startNormalClient(t, m.addr)
	if got := normal.ask(t); got != "ok guarded" {
		t.Fatalf("before any bad batch the gateway answered %q", got)
	}
	<-m.received

	request := marshal(t, &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{Key: []byte("k"), Value: []byte("v")}}})
	gatewayTarget := []*actor.PID{{Address: "anywhere", Id: "gateway"}}
	good := &remote.MessageEnvelope{TypeId: 0, MessageData: request, Target: 0}

	bad := []struct {
		name  string
		batch *remote.MessageBatch
	}{
		{"unknown type name", &remote.MessageBatch{
			TypeNames: []string{"aetcd.NoSuchMessage"}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{good}}},
		{"type outside the aetcd package", &remote.MessageBatch{
			TypeNames: []string{"google.protobuf.Empty"}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: nil}}}},
		{"type_id out of range", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{TypeId: 1, MessageData: request}}}},
		{"negative type_id", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{TypeId: -1, MessageData: request}}}},
		{"target out of range", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: request, Target: 1}}}},
		{"no targets", &remote.MessageBatch{
			TypeNames: []string{requestType},
			Envelopes: []*remote.MessageEnvelope{{MessageData: request}}}},
		{"empty target", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: []*actor.PID{{Address: "x"}},
			Envelopes: []*remote.MessageEnvelope{{MessageData: request}}}},
		{"sender out of range", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: request, Sender: 1}}}},
		{"negative sender", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget, Senders: []*actor.PID{{Address: "127.0.0.1:1", Id: "s"}},
			Envelopes: []*remote.MessageEnvelope{{MessageData: request, Sender: -1}}}},
		{"serializer 1 (JSON)", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: []byte(`{}`), SerializerId: 1}}}},
		{"system message PoisonPill", &remote.MessageBatch{
			TypeNames: []string{"actor.PoisonPill"}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: marshal(t, &actor.PoisonPill{})}}}},
		{"system message Stop", &remote.MessageBatch{
			TypeNames: []string{"actor.Stop"}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: marshal(t, &actor.Stop{})}}}},
		{"truncated message_data", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: request[:len(request)-2]}}}},
		{"garbage message_data", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{{MessageData: []byte{0xff, 0xff, 0xff, 0xff}}}}},
		{"good envelope before a bad one", &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{good, {MessageData: request, Target: 7}}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			stream := rawStream(t, m.addr)
			sendBatch(t, stream, tt.batch)
			_, err := stream.Recv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), remoting.ErrBadBatch.Error()) {
				t.Fatalf("stream ended with %v, want InvalidArgument: %v", err, remoting.ErrBadBatch)
			}
			// The gateway is alive and answers a normal client; nothing
			// of the rejected batch reached it.
			if got := normal.ask(t); got != "ok guarded" {
				t.Fatalf("after the batch the gateway answered %q", got)
			}
			select {
			case msg := <-m.received:
				if _, ok := msg.(*messages.ClientRequest); !ok || len(m.received) > 0 {
					t.Fatalf("gateway received %T %v from a rejected batch", msg, msg)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("gateway did not receive the normal client's request")
			}
		})
	}

	t.Run("well-formed batch is delivered", func(t *testing.T) {
		stream := rawStream(t, m.addr)
		sendBatch(t, stream, &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{good, good},
		})
		for range 2 {
			select {
			case msg := <-m.received:
				want := &messages.ClientRequest{}
				if err := proto.Unmarshal(request, want); err != nil {
					t.Fatal(err)
				}
				if got, ok := msg.(*messages.ClientRequest); !ok || !proto.Equal(got, want) {
					t.Fatalf("gateway received %v, want %v", msg, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a well-formed batch was not delivered")
			}
		}
		// The stream stays open: a second batch on it is delivered too.
		sendBatch(t, stream, &remote.MessageBatch{
			TypeNames: []string{requestType}, Targets: gatewayTarget,
			Envelopes: []*remote.MessageEnvelope{good},
		})
		select {
		case <-m.received:
		case <-time.After(5 * time.Second):
			t.Fatal("a second batch on the same stream was not delivered")
		}
	})
}

// TestAllowTarget: with AllowTarget a sender reaches only the targets and
// types it admits; an allowed type aimed at another actor, or another
// aetcd type aimed at the allowed actor, closes the stream undelivered.
func TestAllowTarget(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := startMemberWith(t, func(target, typeName string) bool {
		return target == "gateway" && typeName == requestType
	})
	raftGot := make(chan any, 10)
	if _, err := m.system.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*messages.Persisted); ok {
			raftGot <- ctx.Message()
		}
	}), "raft"); err != nil {
		t.Fatal(err)
	}
	request := marshal(t, &messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: &messages.StatusRequest{}}})
	persisted := marshal(t, &messages.Persisted{Index: 99, Batches: 7})
	for _, tt := range []struct {
		name, typeName, target string
		data                   []byte
	}{
		{"internal message to the raft node", "aetcd.Persisted", "raft", persisted},
		{"client request to the raft node", requestType, "raft", request},
		{"internal message to the gateway", "aetcd.Persisted", "gateway", persisted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stream := rawStream(t, m.addr)
			sendBatch(t, stream, &remote.MessageBatch{
				TypeNames: []string{tt.typeName}, Targets: []*actor.PID{{Address: "x", Id: tt.target}},
				Envelopes: []*remote.MessageEnvelope{{MessageData: tt.data}},
			})
			if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("stream ended with %v, want InvalidArgument", err)
			}
		})
	}
	stream := rawStream(t, m.addr)
	sendBatch(t, stream, &remote.MessageBatch{
		TypeNames: []string{requestType}, Targets: []*actor.PID{{Address: "x", Id: "gateway"}},
		Envelopes: []*remote.MessageEnvelope{{MessageData: request}},
	})
	select {
	case msg := <-m.received:
		if _, ok := msg.(*messages.ClientRequest); !ok {
			t.Fatalf("gateway received %T", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an allowed request was not delivered")
	}
	select {
	case msg := <-raftGot:
		t.Fatalf("raft node received %v from a remote sender", msg)
	case msg := <-m.received:
		t.Fatalf("gateway received %v from a rejected batch", msg)
	default:
	}
}

func TestUnaryRPCsAreRefused(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := startMember(t)
	conn, err := grpc.NewClient(m.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc := remote.NewRemotingClient(conn)
	if _, err := rc.ListProcesses(ctx, &remote.ListProcessesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("ListProcesses: %v, want Unimplemented", err)
	}
	if _, err := rc.GetProcessDiagnostics(ctx, &remote.GetProcessDiagnosticsRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetProcessDiagnostics: %v, want Unimplemented", err)
	}
	// The member still serves streams.
	rawStream(t, m.addr)
}

func TestStartErrors(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct{ addr, want string }{
		{l.Addr().String(), "address already in use"},
		{"no-port", "missing port"},
		{"127.0.0.1:99999", "invalid port"},
		{"127.0.0.1:http", "invalid port"},
	}
	for _, tt := range tests {
		var (
			r   *remote.Remote
			err error
		)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Start(%s) panicked: %v", tt.addr, p)
				}
			}()
			r, err = remoting.Start(newSystem(), remoting.Config{Address: tt.addr})
		}()
		if err == nil || r != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%s) = %v, %v; want an error containing %q", tt.addr, r, err, tt.want)
		}
	}
}
