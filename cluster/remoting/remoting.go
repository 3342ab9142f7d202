// Package remoting starts protoactor-go's remote transport for a member or a
// remoting client, hardened against bad input.
//
// protoactor-go's endpoint reader trusts its peers: an unknown type name, an
// out-of-range type, target or sender index, or a system message (Stop,
// Poison, Watch) from the wire makes it panic or lets the sender stop our
// actors. Start therefore installs a gRPC stream interceptor that checks
// every MessageBatch before the library decodes it and closes the stream of
// a peer that sends a batch that is not well formed or carries a type that
// is not allowed. The library's unimplemented unary RPCs (which panic) are
// refused with Unimplemented.
package remoting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// DefaultMaxMessageBytes bounds one gRPC message (a whole MessageBatch of up
// to 1000 queued messages) in both directions.
const DefaultMaxMessageBytes = 64 << 20

// ErrBadBatch is returned (and the stream closed) for a batch that fails
// validation.
var ErrBadBatch = errors.New("remoting: rejected message batch")

// Config says where to listen and what may arrive.
type Config struct {
	// Address is host:port to listen on; port 0 picks a free port.
	Address string
	// Allow reports whether a message of the named protobuf type may be
	// delivered. Nil allows only the aetcd package's messages.
	Allow func(fullName string) bool
	// AllowTarget, when set, reports whether a message of the named type
	// may be delivered to the local actor (or future) with the given ID; a
	// member uses it so remote senders reach only its gateway, never the
	// raft node, WAL writer or applier.
	AllowTarget func(targetID, fullName string) bool
	// MaxMessageBytes bounds one gRPC message; 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Faults, when set, is applied to every validated batch arriving from
	// another member (fault-injection tests).
	Faults *NetFaults
}

// AllowAetcd allows only messages of the aetcd protobuf package.
func AllowAetcd(fullName string) bool { return strings.HasPrefix(fullName, "aetcd.") }

// Start starts remoting for system at cfg.Address and returns it with the
// address it listens on. It returns an error (it does not panic) when the
// address is invalid or cannot be listened on.
func Start(system *actor.ActorSystem, cfg Config) (r *remote.Remote, err error) {
	host, portStr, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("remoting: address %q: %w", cfg.Address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("remoting: address %q: invalid port", cfg.Address)
	}
	allow := cfg.Allow
	if allow == nil {
		allow = AllowAetcd
	}
	maxBytes := cfg.MaxMessageBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	g := &guard{system: system, allow: allow, allowTarget: cfg.AllowTarget, faults: cfg.Faults}
	rc := remote.Configure(host, port,
		remote.WithServerOptions(
			grpc.MaxRecvMsgSize(maxBytes),
			grpc.MaxSendMsgSize(maxBytes),
			grpc.StreamInterceptor(g.stream),
			grpc.UnaryInterceptor(refuseUnary),
		),
		remote.WithDialOptions(
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxBytes), grpc.MaxCallSendMsgSize(maxBytes)),
		),
	)
	r = remote.NewRemote(system, rc)
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("remoting: start on %s: %v", cfg.Address, p)
		}
	}()
	r.Start()
	return r, nil
}

func refuseUnary(_ context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
	return nil, status.Errorf(codes.Unimplemented, "remoting: %s is not served", info.FullMethod)
}

type guard struct {
	system      *actor.ActorSystem
	allow       func(string) bool
	allowTarget func(string, string) bool
	faults      *NetFaults
}

func (g *guard) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &checkedStream{ServerStream: ss, g: g})
}

type checkedStream struct {
	grpc.ServerStream
	g *guard
	// peer is the remoting address a member's stream named in its connect
	// request; "" for a client's stream or before the request.
	peer string
}

// RecvMsg receives one message and rejects it, ending the stream, unless it
// is safe for the library's endpoint reader.
func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	rm, ok := m.(*remote.RemoteMessage)
	if !ok {
		return status.Errorf(codes.InvalidArgument, "remoting: unexpected message %T", m)
	}
	if sc := rm.GetConnectRequest().GetServerConnection(); sc != nil {
		s.peer = sc.GetAddress()
	}
	if b := rm.GetMessageBatch(); b != nil {
		if err := s.g.checkBatch(b); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if s.g.faults != nil && s.peer != "" {
			if d := s.g.faults.apply(s.peer, b); d > 0 {
				select {
				case <-time.After(d):
				case <-s.Context().Done():
					return s.Context().Err()
				}
			}
		}
	}
	return nil
}

// checkBatch validates b in place; it rewrites every target's address to
// the local address, since whatever reached this listener is meant for it.
func (g *guard) checkBatch(b *remote.MessageBatch) error {
	types := make([]protoreflect.MessageType, len(b.TypeNames))
	for i, name := range b.TypeNames {
		if !g.allow(name) {
			return fmt.Errorf("%w: type %q not allowed", ErrBadBatch, name)
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
		if err != nil {
			return fmt.Errorf("%w: type %q unknown", ErrBadBatch, name)
		}
		types[i] = mt
	}
	for i, t := range b.Targets {
		if t == nil || t.Id == "" {
			return fmt.Errorf("%w: target %d empty", ErrBadBatch, i)
		}
		t.Address = g.system.Address()
	}
	for i, s := range b.Senders {
		if s == nil {
			return fmt.Errorf("%w: sender %d empty", ErrBadBatch, i)
		}
	}
	for i, env := range b.Envelopes {
		if env == nil {
			return fmt.Errorf("%w: envelope %d empty", ErrBadBatch, i)
		}
		if env.TypeId < 0 || int(env.TypeId) >= len(types) {
			return fmt.Errorf("%w: envelope %d: type index %d out of range", ErrBadBatch, i, env.TypeId)
		}
		if env.SerializerId != 0 {
			return fmt.Errorf("%w: envelope %d: serializer %d not allowed", ErrBadBatch, i, env.SerializerId)
		}
		if env.Target < 0 || int(env.Target) >= len(b.Targets) {
			return fmt.Errorf("%w: envelope %d: target index %d out of range", ErrBadBatch, i, env.Target)
		}
		if env.Sender < 0 || int(env.Sender) > len(b.Senders) {
			return fmt.Errorf("%w: envelope %d: sender index %d out of range", ErrBadBatch, i, env.Sender)
		}
		if g.allowTarget != nil && !g.allowTarget(b.Targets[env.Target].Id, b.TypeNames[env.TypeId]) {
			return fmt.Errorf("%w: envelope %d: %s may not be sent to %q", ErrBadBatch, i, b.TypeNames[env.TypeId], b.Targets[env.Target].Id)
		}
		if err := proto.Unmarshal(env.MessageData, types[env.TypeId].New().Interface()); err != nil {
			return fmt.Errorf("%w: envelope %d: %v", ErrBadBatch, i, err)
		}
	}
	return nil
}
