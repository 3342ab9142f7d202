package tests

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// These tests talk to a member's actor remoting endpoint with raw gRPC
// (protoactor's generated Remoting client and server), never with a second
// protoactor remote: remote.Start rewrites gRPC's global logger without
// synchronisation, which the race detector reports against any other gRPC
// goroutine in the process. The member under test is a child process.

// replySink is a raw gRPC Remoting service standing in for a remoting
// client's listener: batches sent to the member name a sender at the
// sink's address, and the member delivers its answers there.
type replySink struct {
	remote.UnimplementedRemotingServer
	addr    string
	replies chan sinkReply
	dropped atomic.Int64
}

// sinkReply is one message a member delivered to the sink.
type sinkReply struct {
	target string // the ID of the PID it was sent to
	msg    proto.Message
	err    error // the message did not decode
}

func startReplySink(t *testing.T) *replySink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &replySink{addr: l.Addr().String(), replies: make(chan sinkReply, 1000)}
	srv := grpc.NewServer(grpc.WaitForHandlers(true))
	remote.RegisterRemotingServer(srv, s)
	served := make(chan struct{})
	go func() { _ = srv.Serve(l); close(served) }()
	t.Cleanup(func() { srv.Stop(); <-served })
	return s
}

// Receive answers the member's connect request and decodes its batches.
func (s *replySink) Receive(stream remote.Remoting_ReceiveServer) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		switch m := msg.MessageType.(type) {
		case *remote.RemoteMessage_ConnectRequest:
			connected := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectResponse{ConnectResponse: &remote.ConnectResponse{MemberId: "sink"}}}
			if err := stream.Send(connected); err != nil {
				return err
			}
		case *remote.RemoteMessage_MessageBatch:
			b := m.MessageBatch
			for _, env := range b.Envelopes {
				s.deliver(decodeEnvelope(b, env))
			}
		}
	}
}

func (s *replySink) deliver(r sinkReply) {
	select {
	case s.replies <- r:
	default:
		s.dropped.Add(1)
	}
}

func decodeEnvelope(b *remote.MessageBatch, env *remote.MessageEnvelope) sinkReply {
	if env.TypeId < 0 || int(env.TypeId) >= len(b.TypeNames) || env.Target < 0 || int(env.Target) >= len(b.Targets) {
		return sinkReply{err: fmt.Errorf("malformed envelope %v in batch %v", env, b)}
	}
	r := sinkReply{target: b.Targets[env.Target].GetId()}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(b.TypeNames[env.TypeId]))
	if err != nil {
		r.err = err
		return r
	}
	r.msg = mt.New().Interface()
	r.err = proto.Unmarshal(env.MessageData, r.msg)
	return r
}

// wait returns the next message delivered to the sink's actor id.
func (s *replySink) wait(t *testing.T, id string) proto.Message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-s.replies:
			if r.err != nil {
				t.Fatalf("the member sent the sink an undecodable message: %v", r.err)
			}
			if r.target == id {
				return r.msg
			}
		case <-timeout:
			t.Fatalf("no answer for %s within 10s (%d replies dropped)", id, s.dropped.Load())
			return nil
		}
	}
}

// remotingConn opens a gRPC connection to a remoting endpoint, closed when
// the test ends.
func remotingConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// openStream opens a Receive stream on conn; with handshake it first does
// protoactor's connect exchange, as a remote does.
func openStream(t *testing.T, conn *grpc.ClientConn, handshake bool) remote.Remoting_ReceiveClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !handshake {
		return stream
	}
	connect := &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
		ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "raw-test", Address: "127.0.0.1:1"}},
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

func batchMessage(b *remote.MessageBatch) *remote.RemoteMessage {
	return &remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// remotingProbe checks that a member still serves after something was done
// to its remoting endpoint.
type remotingProbe struct {
	p    *proc
	cli  *clientv3.Client
	conn *grpc.ClientConn
	sink *replySink
	n    int
}

// ask sends req to the member's gateway in a well-formed batch on a new
// stream, with a sender at the sink, and returns the gateway's answer.
func (pr *remotingProbe) ask(t *testing.T, req *messages.ClientRequest) *messages.ClientResponse {
	t.Helper()
	pr.n++
	id := fmt.Sprintf("probe-%d", pr.n)
	stream := openStream(t, pr.conn, true)
	err := stream.Send(batchMessage(&remote.MessageBatch{
		TypeNames: []string{"aetcd.ClientRequest"},
		Targets:   []*actor.PID{{Address: pr.p.remoteAddr, Id: "gateway"}},
		Senders:   []*actor.PID{{Address: pr.sink.addr, Id: id}},
		Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, Sender: 1, MessageData: mustMarshal(t, req)}},
	}))
	if err != nil {
		t.Fatalf("send to the gateway: %v", err)
	}
	resp, ok := pr.sink.wait(t, id).(*messages.ClientResponse)
	if !ok {
		t.Fatalf("the gateway answered %T, want *messages.ClientResponse", resp)
	}
	return resp
}

// check requires the member to be running, to serve a clientv3 Put and Get
// over its etcd gRPC API, and its gateway to answer a remoting status
// request.
func (pr *remotingProbe) check(t *testing.T, after string) {
	t.Helper()
	select {
	case <-pr.p.exited:
		t.Fatalf("after %s the member exited:\n%s", after, pr.p.log.String())
	default:
	}
	pr.n++
	key, val := fmt.Sprintf("alive/%d", pr.n), after
	ctx := ctxT(t)
	if _, err := pr.cli.Put(ctx, key, val); err != nil {
		t.Fatalf("after %s: put: %v", after, err)
	}
	got, err := pr.cli.Get(ctx, key)
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != val {
		t.Fatalf("after %s: get %s: %v, %v", after, key, got, err)
	}
	resp := pr.ask(t, &messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: &messages.StatusRequest{}}})
	if st := resp.GetStatus(); st == nil || st.GetHeader().GetRevision() < got.Header.Revision || st.GetLeader() == 0 {
		t.Fatalf("after %s: the gateway's status is %v; want revision ≥ %d and a leader", after, resp, got.Header.Revision)
	}
}

// TestRemotingRejectsBadBatches sends a member malformed and disallowed
// message batches over raw gRPC streams: each is refused (the stream ends
// with InvalidArgument), nothing of it reaches an actor, and the member
// keeps serving etcd clients and remoting clients. It ends with a SIGTERM,
// which must still stop the member cleanly.
func TestRemotingRejectsBadBatches(t *testing.T) {
	checkNoGoroutineLeak(t)
	p := startProc(t, t.TempDir(), freePort(t), freePort(t))
	pr := &remotingProbe{p: p, cli: newClient(t, p.clientAddr), conn: remotingConn(t, p.remoteAddr), sink: startReplySink(t)}
	pr.check(t, "start")

	put := mustMarshal(t, &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{Key: []byte("injected"), Value: []byte("v")}}})
	const request = "aetcd.ClientRequest"
	gateway := []*actor.PID{{Address: p.remoteAddr, Id: "gateway"}}
	sender := []*actor.PID{{Address: pr.sink.addr, Id: "bad-batch"}}
	good := &remote.MessageEnvelope{TypeId: 0, Target: 0, Sender: 1, MessageData: put}
	to := func(id string) []*actor.PID { return []*actor.PID{{Address: p.remoteAddr, Id: id}} }

	bad := []struct {
		name  string
		batch *remote.MessageBatch
	}{
		{"unknown type name", &remote.MessageBatch{
			TypeNames: []string{"aetcd.NoSuchMessage"}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{good}}},
		{"PoisonPill to the gateway", &remote.MessageBatch{
			TypeNames: []string{"actor.PoisonPill"}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &actor.PoisonPill{})}}}},
		{"Stop to the gateway", &remote.MessageBatch{
			TypeNames: []string{"actor.Stop"}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &actor.Stop{})}}}},
		{"Stop to the raft node", &remote.MessageBatch{
			TypeNames: []string{"actor.Stop"}, Targets: to("raft"),
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &actor.Stop{})}}}},
		{"Terminated to the gateway", &remote.MessageBatch{
			TypeNames: []string{"actor.Terminated"}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &actor.Terminated{Who: gateway[0]})}}}},
		{"type outside the aetcd package", &remote.MessageBatch{
			TypeNames: []string{"google.protobuf.Empty"}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{}}}},
		{"type index out of range", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{TypeId: 1, Sender: 1, MessageData: put}}}},
		{"negative type index", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{TypeId: -1, Sender: 1, MessageData: put}}}},
		{"no type names", &remote.MessageBatch{
			Targets: gateway, Envelopes: []*remote.MessageEnvelope{{MessageData: put}}}},
		{"target index out of range", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Target: 1, Sender: 1, MessageData: put}}}},
		{"negative target index", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Target: -1, Sender: 1, MessageData: put}}}},
		{"no targets", &remote.MessageBatch{
			TypeNames: []string{request}, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: put}}}},
		{"empty target id", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: []*actor.PID{{Address: p.remoteAddr}}, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: put}}}},
		{"sender index out of range", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 2, MessageData: put}}}},
		{"sender index without senders", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: put}}}},
		{"negative sender index", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: -1, MessageData: put}}}},
		{"serializer 1 (JSON)", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, SerializerId: 1, MessageData: []byte(`{"put":{"key":"aW5qZWN0ZWQ="}}`)}}}},
		{"serializer 7", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, SerializerId: 7, MessageData: put}}}},
		{"garbage message_data", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}}}}},
		{"truncated message_data", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: put[:len(put)-3]}}}},
		{"good envelope before a bad one", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: gateway, Senders: sender,
			Envelopes: []*remote.MessageEnvelope{good, {Target: 5, Sender: 1, MessageData: put}}}},
		{"ClientRequest to the raft node", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: to("raft"), Senders: sender,
			Envelopes: []*remote.MessageEnvelope{good}}},
		{"ClientRequest to the applier", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: to("applier"), Senders: sender,
			Envelopes: []*remote.MessageEnvelope{good}}},
		{"ClientRequest to an unknown actor", &remote.MessageBatch{
			TypeNames: []string{request}, Targets: to("nosuch"), Senders: sender,
			Envelopes: []*remote.MessageEnvelope{good}}},
		{"Propose to the raft node", &remote.MessageBatch{
			TypeNames: []string{"aetcd.Propose"}, Targets: to("raft"), Senders: sender,
			Envelopes: []*remote.MessageEnvelope{{Sender: 1, MessageData: mustMarshal(t, &messages.Propose{Request: &messages.InternalRequest{
				Id: 1, Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{Key: []byte("injected")}}}})}}}},
		{"Apply to the applier", &remote.MessageBatch{
			TypeNames: []string{"aetcd.Apply"}, Targets: to("applier"),
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &messages.Apply{Entries: []*messages.Entry{{Index: 1000, Term: 1}}})}}}},
		{"Persisted to the raft node", &remote.MessageBatch{
			TypeNames: []string{"aetcd.Persisted"}, Targets: to("raft"),
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &messages.Persisted{Index: 1000, Term: 9, Batches: 5})}}}},
		{"WALFailed to the raft node", &remote.MessageBatch{
			TypeNames: []string{"aetcd.WALFailed"}, Targets: to("raft"),
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &messages.WALFailed{})}}}},
		{"Persist to the WAL writer", &remote.MessageBatch{
			TypeNames: []string{"aetcd.Persist"}, Targets: to("wal"),
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &messages.Persist{Entries: []*messages.Entry{{Index: 1000, Term: 9}}})}}}},
		{"ClientResponse to the gateway", &remote.MessageBatch{
			TypeNames: []string{"aetcd.ClientResponse"}, Targets: gateway,
			Envelopes: []*remote.MessageEnvelope{{MessageData: mustMarshal(t, &messages.ClientResponse{})}}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			stream := openStream(t, pr.conn, true)
			if err := stream.Send(batchMessage(tt.batch)); err != nil {
				t.Fatalf("send: %v", err)
			}
			if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
				t.Errorf("the stream ended with %v, want InvalidArgument", err)
			}
			pr.check(t, tt.name)
		})
	}

	// Not batches: messages protoactor's endpoint reader ignores. The
	// stream may stay open; the member must not mind.
	odd := []struct {
		name string
		msg  *remote.RemoteMessage
	}{
		{"empty RemoteMessage", &remote.RemoteMessage{}},
		{"client connection request", &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
			ConnectionType: &remote.ConnectRequest_ClientConnection{ClientConnection: &remote.ClientConnection{SystemId: "raw-test"}}}}}},
		{"connect request without a type", &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{}}}},
		{"disconnect request", &remote.RemoteMessage{MessageType: &remote.RemoteMessage_DisconnectRequest{DisconnectRequest: &remote.DisconnectRequest{}}}},
		{"connect response", &remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectResponse{ConnectResponse: &remote.ConnectResponse{Blocked: true}}}},
		{"empty batch", batchMessage(&remote.MessageBatch{})},
	}
	for _, tt := range odd {
		t.Run(tt.name, func(t *testing.T) {
			stream := openStream(t, pr.conn, false)
			if err := stream.Send(tt.msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("close send: %v", err)
			}
			pr.check(t, tt.name)
		})
	}

	// Nothing of the rejected batches was applied.
	resp, err := pr.cli.Get(ctxT(t), "injected")
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("get injected: %v, %v; want no key", resp, err)
	}

	// A remoting client (aetcdctl) still gets answers.
	got := runCtl(t, aetcdctlBin(t), p.remoteAddr, "", "get", "alive/", "--prefix", "--count-only", "-w", "fields")
	if got.code != 0 || !strings.Contains(got.stdout, `"Count" : `) {
		t.Fatalf("aetcdctl get after the bad batches: %v", got)
	}

	// And the member still stops cleanly.
	if code := stopWithSIGTERM(t, p); code != 0 || !strings.Contains(p.log.String(), "member stopped") {
		t.Fatalf("after SIGTERM the member exited %d:\n%s", code, p.log.String())
	}
}

// TestRemotingOddRequests sends the gateway well-formed batches whose
// requests are empty or malformed in ways only the gateway can tell: each
// gets an error answer, and the member keeps serving.
func TestRemotingOddRequests(t *testing.T) {
	checkNoGoroutineLeak(t)
	p := startProc(t, t.TempDir(), freePort(t), freePort(t))
	pr := &remotingProbe{p: p, cli: newClient(t, p.clientAddr), conn: remotingConn(t, p.remoteAddr), sink: startReplySink(t)}
	pr.check(t, "start")

	put := func(k string) *messages.RequestOp {
		return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte(k), Value: []byte("v")}}}
	}
	tests := []struct {
		name string
		req  *messages.ClientRequest
		want string // the error message the gateway answers with
	}{
		{"empty oneof", &messages.ClientRequest{}, ""},
		{"empty range", &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{}}}, "etcdserver: key is not provided"},
		{"empty put", &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{}}}, "etcdserver: key is not provided"},
		{"empty delete", &messages.ClientRequest{Request: &messages.ClientRequest_DeleteRange{DeleteRange: &messages.DeleteRangeRequest{}}}, "etcdserver: key is not provided"},
		{"bad sort order", &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte("k"), SortOrder: 99}}}, "etcdserver: invalid sort option"},
		{"bad sort target", &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: &messages.RangeRequest{Key: []byte("k"), SortTarget: -1}}}, "etcdserver: invalid sort option"},
		{"txn op with empty oneof", &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: &messages.TxnRequest{
			Success: []*messages.RequestOp{{}}}}}, "etcdserver: key not found"},
		{"txn with too many ops", &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: &messages.TxnRequest{
			Failure: func() []*messages.RequestOp {
				var ops []*messages.RequestOp
				for i := range 129 {
					ops = append(ops, put(fmt.Sprintf("k%d", i)))
				}
				return ops
			}()}}}, "etcdserver: too many operations in txn request"},
		{"txn with a duplicate put", &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: &messages.TxnRequest{
			Success: []*messages.RequestOp{put("d"), put("d")}}}}, "etcdserver: duplicate key given in txn request"},
		{"compaction of a future revision", &messages.ClientRequest{Request: &messages.ClientRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: 1 << 40}}},
			"etcdserver: mvcc: required revision is a future revision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := pr.ask(t, tt.req)
			e := resp.GetError()
			if e == nil {
				t.Fatalf("the gateway answered %v, want an error", resp)
			}
			if tt.want != "" && e.GetMessage() != tt.want {
				t.Errorf("the gateway answered %q, want %q", e.GetMessage(), tt.want)
			}
			pr.check(t, tt.name)
		})
	}

	// Compares the gateway lets through: a compare without its value, or
	// with targets and results outside the enums, is evaluated (false or
	// true) as etcd does, without harm to the member.
	odd := []*messages.Compare{
		{Key: []byte("alive/1"), Target: messages.Compare_VALUE},
		{Key: []byte("alive/1"), Target: messages.Compare_MOD},
		{Key: []byte("alive/1"), Target: messages.Compare_LEASE, Result: messages.Compare_GREATER},
		{Key: []byte("alive/1"), Target: 42, Result: 42},
		{Key: []byte("alive/"), RangeEnd: []byte{0}, Target: messages.Compare_VALUE, Result: messages.Compare_NOT_EQUAL},
		{Key: []byte("alive/1"), Target: messages.Compare_VERSION, TargetUnion: &messages.Compare_Value{Value: []byte("x")}},
	}
	for i, c := range odd {
		t.Run(fmt.Sprintf("compare %d", i), func(t *testing.T) {
			resp := pr.ask(t, &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: &messages.TxnRequest{
				Compare: []*messages.Compare{c}, Success: []*messages.RequestOp{put("cmp/then")}, Failure: []*messages.RequestOp{put("cmp/else")},
			}}})
			if resp.GetTxn() == nil {
				t.Fatalf("the gateway answered %v, want a txn response", resp)
			}
			pr.check(t, fmt.Sprintf("compare %v", c))
		})
	}

	// A request without a sender gets no answer and does no harm; one whose
	// sender is the member's own raft node is answered there, harmlessly.
	for _, s := range []struct {
		name    string
		senders []*actor.PID
		index   int32
	}{
		{"no sender", nil, 0},
		{"sender is the member's raft node", []*actor.PID{{Address: p.remoteAddr, Id: "raft"}}, 1},
		{"sender is the member's gateway", []*actor.PID{{Address: p.remoteAddr, Id: "gateway"}}, 1},
		{"sender at an unreachable address", []*actor.PID{{Address: "127.0.0.1:1", Id: "x"}}, 1},
	} {
		t.Run(s.name, func(t *testing.T) {
			stream := openStream(t, pr.conn, true)
			req := &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{Key: []byte("sent/" + s.name), Value: []byte("v")}}}
			err := stream.Send(batchMessage(&remote.MessageBatch{
				TypeNames: []string{"aetcd.ClientRequest"},
				Targets:   []*actor.PID{{Address: p.remoteAddr, Id: "gateway"}},
				Senders:   s.senders,
				Envelopes: []*remote.MessageEnvelope{{Sender: s.index, MessageData: mustMarshal(t, req)}},
			}))
			if err != nil {
				t.Fatal(err)
			}
			pr.check(t, s.name)
		})
	}

	// An answer still on its way to an unreachable sender does not hold
	// up a clean stop.
	if code := stopWithSIGTERM(t, p); code != 0 || !strings.Contains(p.log.String(), "member stopped") {
		t.Fatalf("after SIGTERM the member exited %d:\n%s", code, p.log.String())
	}
}
