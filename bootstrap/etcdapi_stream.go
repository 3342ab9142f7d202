package bootstrap

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// watchFront is what the etcd Watch service needs of the member.
type watchFront struct {
	registry *actors.WatchRegistry
	hubs     []*actor.PID
	store    *mvcc.Store
	// maxBytes is the fragment size (etcd's MaxRequestBytesWithOverhead).
	maxBytes int
	// sinkEvents bounds the event responses queued per stream.
	sinkEvents int
}

// errWatchCanceled is etcd's ErrGRPCWatchCanceled: a watch stream whose
// client went away ends with it.
var errWatchCanceled = status.Error(codes.Canceled, "etcdserver: watch canceled")

// registerStreams registers the Lease and Watch services on s.
func (a *etcdAPI) registerStreams(s *grpc.Server) {
	var anyImpl any
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "etcdserverpb.Lease",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary(a, "LeaseGrant", func(r *messages.LeaseGrantRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_LeaseGrant{LeaseGrant: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetLeaseGrant()) }),
			unary(a, "LeaseRevoke", func(r *messages.LeaseRevokeRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_LeaseRevoke{LeaseRevoke: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetLeaseRevoke()) }),
			unary(a, "LeaseTimeToLive", func(r *messages.LeaseTimeToLiveRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_LeaseTimeToLive{LeaseTimeToLive: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetLeaseTimeToLive()) }),
			unary(a, "LeaseLeases", func(r *messages.LeaseLeasesRequest) *messages.ClientRequest {
				return &messages.ClientRequest{Request: &messages.ClientRequest_LeaseLeases{LeaseLeases: r}}
			}, func(r *messages.ClientResponse) proto.Message { return nonNil(r.GetLeaseLeases()) }),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "LeaseKeepAlive",
			ServerStreams: true,
			ClientStreams: true,
			Handler:       func(_ any, stream grpc.ServerStream) error { return a.leaseKeepAlive(stream) },
		}},
		Metadata: "rpc.proto",
	}, anyImpl)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "etcdserverpb.Watch",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Watch",
			ServerStreams: true,
			ClientStreams: true,
			Handler:       func(_ any, stream grpc.ServerStream) error { return a.watch(stream) },
		}},
		Metadata: "rpc.proto",
	}, anyImpl)
}

// keepAliveInFlight bounds the keep-alives of one stream waiting for their
// answers (each holds a goroutine and a future): with clientv3 re-sending
// unanswered keep-alives every 500 ms, an unbounded or large window lets
// an overloaded member's memory grow without limit (1024 per stream × 1000
// streams took 6–10 GiB per member in the 100 000-lease benchmark).
const keepAliveInFlight = 16

// leaseKeepAlive serves one keep-alive stream. Requests are pipelined:
// each goes to the lease ticker as soon as it is read, so a stream's
// keep-alives (up to keepAliveInFlight) join the ticker's next leadership
// confirmation together, and answers go out as they come (clients match
// them by lease ID). etcd answers one request at a time, which caps a
// stream carrying many leases at one confirmation round trip per lease. An unknown lease answers TTL 0; any
// other error ends the stream with etcd's status; after the client closes
// its side, the answers still due are sent first.
func (a *etcdAPI) leaseKeepAlive(stream grpc.ServerStream) error {
	ctx, cancel, err := a.requireLeader(stream.Context())
	if err != nil {
		return err
	}
	defer cancel()
	answers := make(chan *messages.LeaseKeepAliveResponse, keepAliveInFlight)
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	var pending sync.WaitGroup
	closed := make(chan struct{}) // the client closed its side; all asked
	go func() {
		slots := make(chan struct{}, keepAliveInFlight)
		for {
			req := new(messages.LeaseKeepAliveRequest)
			if err := stream.RecvMsg(req); err != nil {
				if errors.Is(err, io.EOF) {
					pending.Wait()
					close(closed)
					return
				}
				fail(err)
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			pending.Add(1)
			go func() {
				defer func() { <-slots; pending.Done() }()
				resp, err := a.askGateway(ctx, &messages.ClientRequest{Request: &messages.ClientRequest_LeaseKeepAlive{LeaseKeepAlive: req}})
				if err != nil {
					fail(err)
					return
				}
				out := resp.GetLeaseKeepAlive()
				if out == nil {
					fail(status.Error(codes.Internal, "aetcd: gateway answered with the wrong response type"))
					return
				}
				select {
				case answers <- out:
				case <-ctx.Done(): // the stream ended (gRPC cancels its context)
				}
			}()
		}
	}()
	for {
		select {
		case out := <-answers:
			if err := stream.SendMsg(out); err != nil {
				return err
			}
		case err := <-failed:
			return err
		case <-closed:
			for {
				select {
				case out := <-answers:
					if err := stream.SendMsg(out); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-ctx.Done():
			return streamEnded(ctx)
		}
	}
}

// watch serves one Watch stream: a goroutine reads requests and hands them
// to the stream's hub; this goroutine sends what the hub queues in the
// stream's sink (prev_kv filled and fragments split here, off the hub).
func (a *etcdAPI) watch(stream grpc.ServerStream) error {
	wf := a.watches
	ctx, cancel, err := a.requireLeader(stream.Context())
	if err != nil {
		return err
	}
	defer cancel()
	if a.isLearner() {
		return rpcerr.Status(rpcerr.LearnerNotSupported)
	}
	id, sink := wf.registry.Open(wf.sinkEvents)
	hub := wf.hubs[wf.registry.Shard(id)]
	defer func() {
		a.root.Send(hub, &messages.WatchControl{Stream: id, Close: true})
		wf.registry.Close(id)
	}()
	recvErr := make(chan error, 1)
	go func() {
		for {
			req := new(messages.WatchRequest)
			if err := stream.RecvMsg(req); err != nil {
				if !errors.Is(err, io.EOF) {
					recvErr <- err
				}
				// On EOF (the client closed its side) events keep
				// flowing until the stream ends, as etcd's.
				return
			}
			a.root.Send(hub, &messages.WatchControl{Stream: id, Request: req})
		}
	}()
	var buf []actors.WatchOut
	for {
		select {
		case err := <-recvErr:
			if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
				return errWatchCanceled
			}
			return err
		case <-ctx.Done():
			err := streamEnded(ctx)
			if errors.Is(err, context.Canceled) {
				return errWatchCanceled
			}
			return err
		case <-sink.Done():
			return rpcerr.Status(rpcerr.Stopped)
		case <-sink.Ready():
			buf = sink.Take(buf)
			view := wf.store.View()
			for _, out := range buf {
				for _, resp := range actors.ExpandWatchOut(out, view, wf.maxBytes) {
					if err := stream.SendMsg(resp); err != nil {
						return err
					}
				}
			}
		}
	}
}
