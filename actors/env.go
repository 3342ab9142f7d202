// Package actors holds one member's actors: the raft node, the WAL writer,
// the applier (with a child per outgoing snapshot transfer), the snapshot
// receiver and the gateway. They exchange the protobuf messages of
// package messages; errors between them are *messages.Error values.
package actors

import (
	"sync/atomic"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/rs/zerolog"
)

// Names under which a member registers its actors in its actor system.
const (
	GatewayName = "gateway"
	RaftName    = "raft"
	WALName     = "wal"
	ApplierName = "applier"
	// SnapshotReceiverName is the actor that receives backend snapshots
	// from the leader.
	SnapshotReceiverName = "snap"
	// SnapshotSenderPrefix begins the ID of the applier's child that
	// streams one snapshot (it receives the follower's acknowledgements).
	SnapshotSenderPrefix = ApplierName + "/snapsend-"
)

// MemberState is what other goroutines may read about a member without a
// message round trip. Each field has exactly one writer, named beside it.
type MemberState struct {
	MemberID  uint64
	ClusterID uint64

	Term         atomic.Uint64 // raft node
	Leader       atomic.Uint64 // raft node
	CommitIndex  atomic.Uint64 // raft node
	AppliedIndex atomic.Uint64 // applier

	// Members holds the backend's member records (membership changes and
	// published attributes), ordered by ID.
	Members atomic.Pointer[[]*messages.Member] // applier
	// IsLearner: this member is a learner (serves only Status and
	// serializable Range).
	IsLearner atomic.Bool // applier
	// PeerAddrs maps member IDs to their peer (remoting) addresses, as of
	// the conf changes handed out for applying.
	PeerAddrs atomic.Pointer[map[uint64]string] // raft node

	// requestIDs numbers the requests this member proposes (NextRequestID).
	requestIDs atomic.Uint64

	WALSyncs   atomic.Uint64 // WAL writer: fdatasyncs done
	WALEntries atomic.Uint64 // WAL writer: entries made durable
	WALRecords atomic.Uint64 // WAL writer: Persist messages made durable
}

// Env is what every actor of a member is given.
type Env struct {
	Logger zerolog.Logger
	State  *MemberState
	// Fatal stops the member: called when it can no longer be sure of its
	// data (a failed fdatasync, a corrupt entry). It must not block.
	Fatal func(err error)
}

// NextRequestID returns an ID for a request this member proposes, unique
// among its proposals (the applier matches answers by it). Safe on any
// goroutine.
func (s *MemberState) NextRequestID() uint64 {
	if s.requestIDs.Load() == 0 {
		s.requestIDs.CompareAndSwap(0, uint64(time.Now().UnixNano()))
	}
	return s.requestIDs.Add(1)
}
