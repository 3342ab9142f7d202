// Package rpcerr is etcd v3.6's table of client-visible errors: each is a
// gRPC status code with etcd's exact message. clientv3 maps errors back to
// typed errors by the message string, so these must match byte for byte.
// Errors travel between actors as *messages.Error values (data, not Go
// errors); New and Is convert at the edges.
package rpcerr

import (
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func e(code codes.Code, msg string) *messages.Error {
	return &messages.Error{Code: uint32(code), Message: msg}
}

// The etcd errors. They are shared values: never modify one.
var (
	EmptyKey            = e(codes.InvalidArgument, "etcdserver: key is not provided")
	KeyNotFound         = e(codes.InvalidArgument, "etcdserver: key not found")
	ValueProvided       = e(codes.InvalidArgument, "etcdserver: value is provided")
	LeaseProvided       = e(codes.InvalidArgument, "etcdserver: lease is provided")
	TooManyOps          = e(codes.InvalidArgument, "etcdserver: too many operations in txn request")
	DuplicateKey        = e(codes.InvalidArgument, "etcdserver: duplicate key given in txn request")
	InvalidSortOption   = e(codes.InvalidArgument, "etcdserver: invalid sort option")
	RequestTooLarge     = e(codes.InvalidArgument, "etcdserver: request is too large")
	Compacted           = e(codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")
	FutureRev           = e(codes.OutOfRange, "etcdserver: mvcc: required revision is a future revision")
	LeaseTTLTooLarge    = e(codes.OutOfRange, "etcdserver: too large lease TTL")
	NoSpace             = e(codes.ResourceExhausted, "etcdserver: mvcc: database space exceeded")
	TooManyRequests     = e(codes.ResourceExhausted, "etcdserver: too many requests")
	LeaseNotFound       = e(codes.NotFound, "etcdserver: requested lease not found")
	MemberNotFound      = e(codes.NotFound, "etcdserver: member not found")
	LeaseExist          = e(codes.FailedPrecondition, "etcdserver: lease already exists")
	NotLeader           = e(codes.FailedPrecondition, "etcdserver: not leader")
	LearnerNotSupported = e(codes.FailedPrecondition, "etcdserver: rpc not supported for learner")
	NoLeader            = e(codes.Unavailable, "etcdserver: no leader")
	LeaderChanged       = e(codes.Unavailable, "etcdserver: leader changed")
	Stopped             = e(codes.Unavailable, "etcdserver: server stopped")
	Timeout             = e(codes.Unavailable, "etcdserver: request timed out")
	Corrupt             = e(codes.DataLoss, "etcdserver: corrupt cluster")
	BadLeaderTransferee = e(codes.FailedPrecondition, "etcdserver: bad leader transferee")
	// LeaderTransferTimeout is etcd's ErrTimeoutLeaderTransfer; clientv3
	// has no typed error for it, so its code is Unknown, as etcd sends it.
	LeaderTransferTimeout = e(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")
)

// Status converts an error value into the gRPC status error etcd would send.
func Status(err *messages.Error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Code(err.Code), err.Message)
}

// Is reports whether a and b are the same etcd error (same code and message).
func Is(a, b *messages.Error) bool {
	return a != nil && b != nil && a.Code == b.Code && a.Message == b.Message
}

// Response wraps an error value as a ClientResponse.
func Response(err *messages.Error) *messages.ClientResponse {
	return &messages.ClientResponse{Response: &messages.ClientResponse_Error{Error: err}}
}
