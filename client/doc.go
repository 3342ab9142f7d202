// Package client is a Go client for aetcd that speaks aetcd's protobuf
// messages to a member's gateway actor over protoactor remoting, instead of
// etcd's gRPC API.
//
// A Client runs a small actor system of its own with a remoting listener:
// protoactor has no client-only mode, so a member dials replies back to the
// client's listen address. Requests are sent to the actor named "gateway" at
// an endpoint; every answer is a *messages.ClientResponse. An error answer
// is returned as *Error, carrying etcd's gRPC code and exact message, so
// status.Code(err) and string comparisons with etcd's errors both work.
//
// protoactor does not fail a request to a member that is down: it is only
// noticed by a timeout. When a member does not answer within the request
// timeout, the Client tries the next endpoint. A write that timed out may
// still have been applied by the member that did not answer.
//
// A Client is safe for concurrent use.
package client
