package bootstrap

import (
	"context"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// etcdAPI serves etcd's v3 gRPC services by handing each request to the
// member's gateway actor. The services are registered with hand-written
// service descriptors over aetcd's own message types, which are
// wire-compatible with etcd's (same field numbers), so requests decode
// straight into what the actors exchange.
type etcdAPI struct {
	root      *actor.RootContext
	gateway   *actor.PID
	timeout   time.Duration
	hasLeader func() bool
	isLearner func() bool
	watches   *watchFront
	// election is the election timeout (how often streams that require a
	// leader check for one).
	election time.Duration
}

// ask sends req to the gateway and waits for its answer. A unary call
// with etcd's "hasleader" metadata is refused when the member has no
// leader.
func (a *etcdAPI) ask(ctx context.Context, req *messages.ClientRequest) (*messages.ClientResponse, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("hasleader"); len(v) > 0 && v[0] == "true" && !a.hasLeader() {
			return nil, rpcerr.Status(rpcerr.NoLeader)
		}
	}
	return a.askGateway(ctx, req)
}

// askGateway is ask without the leader check: for requests on a stream,
// whose "hasleader" metadata requireLeader applies to the whole stream
// (as etcd checks it when the stream opens, not per message).
func (a *etcdAPI) askGateway(ctx context.Context, req *messages.ClientRequest) (*messages.ClientResponse, error) {
	timeout := a.timeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return nil, status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	res, err := a.root.RequestFuture(a.gateway, req, timeout).Result()
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, rpcerr.Status(rpcerr.Timeout)
	}
	resp, ok := res.(*messages.ClientResponse)
	if !ok {
		return nil, rpcerr.Status(rpcerr.Timeout)
	}
	if e := resp.GetError(); e != nil {
		return nil, rpcerr.Status(e)
	}
	return resp, nil
}

// unary builds a gRPC method handler that decodes a Req, wraps it in a
// ClientRequest with wrap, asks the gateway and unwraps the answer.
func unary[Req any, PReq interface {
	*Req
	proto.Message
}](a *etcdAPI, method string, wrap func(PReq) *messages.ClientRequest, unwrap func(*messages.ClientResponse) proto.Message) grpc.MethodDesc {
	call := func(ctx context.Context, in PReq) (any, error) {
		resp, err := a.ask(ctx, wrap(in))
		if err != nil {
			return nil, err
		}
		out := unwrap(resp)
		if out == nil {
			return nil, status.Error(codes.Internal, "aetcd: gateway answered with the wrong response type")
		}
		return out, nil
	}
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := PReq(new(Req))
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return call(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return call(ctx, req.(PReq))
			})
		},
	}
}

func unimplemented(method string) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
			return nil, status.Errorf(codes.Unimplemented, "aetcd: %s is not implemented yet", method)
		},
	}
}

// nonNil returns m, or nil (as an untyped proto.Message) when m is a nil
// pointer, so callers can detect the wrong response type.
func nonNil[M interface {
	comparable
	proto.Message
}](m M) proto.Message {
	var zero M
	if m == zero {
		return nil
	}
	return m
}

// register registers the KV, Maintenance, Cluster, Lease and Watch
// services on s.
func (a *etcdAPI) register(s *grpc.Server) {
	var anyImpl any
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "etcdserverpb.KV",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary(a, "Range", func(r *messages.RangeRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetRange()) }),
			unary(a, "Put", func(r *messages.PutRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetPut()) }),
			unary(a, "DeleteRange", func(r *messages.DeleteRangeRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_DeleteRange{DeleteRange: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetDeleteRange()) }),
			unary(a, "Txn", func(r *messages.TxnRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetTxn()) }),
			unary(a, "Compact", func(r *messages.CompactionRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Compaction{Compaction: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetCompaction()) }),
		},
		Metadata: "rpc.proto",
	}, anyImpl)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "etcdserverpb.Maintenance",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary(a, "Alarm", func(r *messages.AlarmRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Alarm{Alarm: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetAlarm()) }),
			unary(a, "Status", func(r *messages.StatusRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetStatus()) }),
			unary(a, "HashKV", func(r *messages.HashKVRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_HashKv{HashKv: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetHashKv()) }),
			unimplemented("Defragment"),
			unimplemented("Hash"),
			unary(a, "MoveLeader", func(r *messages.MoveLeaderRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MoveLeader{MoveLeader: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMoveLeader()) }),
			unimplemented("Downgrade"),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Snapshot",
			ServerStreams: true,
			Handler: func(any, grpc.ServerStream) error {
				return status.Error(codes.Unimplemented, "aetcd: Snapshot is not implemented yet")
			},
		}},
		Metadata: "rpc.proto",
	}, anyImpl)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "etcdserverpb.Cluster",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary(a, "MemberList", func(r *messages.MemberListRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MemberList{MemberList: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMemberList()) }),
			unary(a, "MemberAdd", func(r *messages.MemberAddRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MemberAdd{MemberAdd: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMemberAdd()) }),
			unary(a, "MemberRemove", func(r *messages.MemberRemoveRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MemberRemove{MemberRemove: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMemberRemove()) }),
			unary(a, "MemberUpdate", func(r *messages.MemberUpdateRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MemberUpdate{MemberUpdate: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMemberUpdate()) }),
			unary(a, "MemberPromote", func(r *messages.MemberPromoteRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_MemberPromote{MemberPromote: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetMemberPromote()) }),
		},
		Metadata: "rpc.proto",
	}, anyImpl)
	a.registerStreams(s)
}
