package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrClosed is returned by requests on a closed Client.
	ErrClosed = errors.New("client: closed")
	// ErrNoEndpoints is returned by New when Config.Endpoints is empty.
	ErrNoEndpoints = errors.New("client: no endpoints")
	// ErrTimeout matches (errors.Is) every *TimeoutError.
	ErrTimeout = errors.New("client: request timed out")
	// ErrNoGateway is the reason of an *UnreachableError from a member that
	// has no gateway actor.
	ErrNoGateway = errors.New("no gateway actor")
)

// Error is an error answered by a member: a gRPC status code and etcd's
// exact message (e.g. codes.InvalidArgument, "etcdserver: key is not provided").
type Error struct {
	Code    codes.Code
	Message string
}

func errorFrom(e *messages.Error) *Error {
	return &Error{Code: codes.Code(e.GetCode()), Message: e.GetMessage()}
}

// Error returns the member's message unchanged.
func (e *Error) Error() string { return e.Message }

// GRPCStatus lets status.Code and status.Convert see the member's code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Is reports whether target is an *Error with the same code and message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message
}

// TimeoutError says that members did not answer a request in time. It
// matches ErrTimeout, and also context.DeadlineExceeded when the caller's
// deadline was what cut the wait short.
type TimeoutError struct {
	// Endpoints are the members that did not answer, in the order tried.
	Endpoints []string
	// Timeout is the longest a member was waited for.
	Timeout time.Duration
	// Cause is the context's error when its deadline ended the wait, else nil.
	Cause error
}

func (e *TimeoutError) Error() string {
	who := "member " + strings.Join(e.Endpoints, ", ")
	if len(e.Endpoints) > 1 {
		who = "members " + strings.Join(e.Endpoints, ", ")
	}
	return fmt.Sprintf("client: %s did not answer within %s", who, e.Timeout)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the context's error when its deadline ended the wait.
func (e *TimeoutError) Unwrap() error { return e.Cause }

// GRPCStatus maps a timeout to codes.DeadlineExceeded.
func (e *TimeoutError) GRPCStatus() *status.Status {
	return status.New(codes.DeadlineExceeded, e.Error())
}

// UnreachableError says a request could not be delivered to a member: its
// address refused the connection, or it has no gateway actor (Reason is
// ErrNoGateway). The request was not executed.
type UnreachableError struct {
	Endpoint string
	Reason   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("client: member %s is unreachable: %v", e.Endpoint, e.Reason)
}

// Unwrap returns the reason.
func (e *UnreachableError) Unwrap() error { return e.Reason }

// GRPCStatus maps an unreachable member to codes.Unavailable.
func (e *UnreachableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// UnexpectedResponseError says the member answered with a response of
// another kind than the request asked for.
type UnexpectedResponseError struct {
	Endpoint string
	Want     string
	Got      string
}

func (e *UnexpectedResponseError) Error() string {
	return fmt.Sprintf("client: member %s answered %s to a %s request", e.Endpoint, e.Got, e.Want)
}
