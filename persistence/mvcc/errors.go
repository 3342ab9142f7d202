package mvcc

import (
	"errors"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
)

// Sentinel errors returned (wrapped) by Open, Commit and Close.
var (
	// ErrCorrupt: the file is not a bbolt database or holds records this
	// package cannot decode or that contradict each other.
	ErrCorrupt = errors.New("mvcc: corrupt database")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("mvcc: store closed")
	// ErrFailed: an earlier commit failed; the store must be closed and
	// reopened (the caller replays the lost entries from its log).
	ErrFailed = errors.New("mvcc: store failed")
)

// errUnknownRequest answers an InternalRequest that carries no known write.
// The gateway never proposes one; the value is shared: never modify it.
var errUnknownRequest = &messages.Error{Code: uint32(codes.InvalidArgument), Message: "etcdserver: unknown request"}

// ErrTxnNotReadOnly answers View.Txn for a txn that writes (such a txn goes
// through Raft and Apply). The value is shared: never modify it.
var ErrTxnNotReadOnly = &messages.Error{Code: uint32(codes.InvalidArgument), Message: "mvcc: txn is not read-only"}
