package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/aetcd/aetcd/messages"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultElectionTicks   = 10
	DefaultHeartbeatTicks  = 1
	DefaultMaxInflightMsgs = 256
	DefaultMaxSizePerMsg   = 1 << 20
)

// Config configures one member's core. The zero value of every field but
// ID, Voters and Rand selects a default.
type Config struct {
	// ID identifies this member; non-zero.
	ID uint64
	// Voters is the configuration before the first entry, used when the
	// restored state has no snapshot: IDs non-zero and distinct, in any
	// order. Empty for a member joining an existing cluster (it learns the
	// configuration from the leader's log or snapshot) and for a cluster
	// bootstrapped through conf change entries in its log.
	Voters []uint64
	// ElectionTicks is the election timeout in Ticks. A follower campaigns
	// after a randomized timeout in [ElectionTicks, 2*ElectionTicks) without
	// hearing from a leader. Default 10; must exceed HeartbeatTicks.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in Ticks. Default 1.
	HeartbeatTicks int
	// Rand is the only source of randomness (election timeouts). Required;
	// a seeded source makes the core deterministic. Not safe to share with
	// another goroutine.
	Rand *rand.Rand
	// PreVote runs a pre-election (MSG_PRE_VOTE) before raising the term, so
	// a member that cannot win (partitioned, stale log) does not disrupt the
	// cluster by raising terms.
	PreVote bool
	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum within an election timeout, and makes members that heard from
	// a leader within the election timeout ignore vote requests (leases).
	CheckQuorum bool
	// MaxInflightMsgs bounds the MSG_APP messages in flight to one follower
	// in replicate state. Default 256.
	MaxInflightMsgs int
	// MaxSizePerMsg bounds the bytes of entries in one MSG_APP (entry data
	// plus a fixed per-entry overhead; at least one entry is always sent).
	// Default 1 MiB.
	MaxSizePerMsg uint64
	// MaxCommittedSizePerReady bounds the bytes of Ready.CommittedEntries
	// (counted like MaxSizePerMsg; at least one entry). 0 means no limit.
	MaxCommittedSizePerReady uint64
}

// RestoreState is what the host recovered from its WAL at start: exactly
// what it had reported durable, nothing more. The zero value is a fresh
// member with an empty log.
type RestoreState struct {
	// HardState is the last durable hard state; nil means the zero state.
	HardState *messages.HardState
	// Snapshot, if non-nil, is the durable snapshot the log starts after.
	Snapshot *messages.SnapshotMeta
	// Entries are the durable entries after the snapshot, contiguous and in
	// index order. Entries at or below Snapshot.Index are skipped.
	Entries []*messages.Entry
	// Applied is the last index the state machine has applied (e.g. its
	// consistent index); CommittedEntries resume after it. It must not
	// exceed the last restored entry; 0 means the snapshot index.
	Applied uint64
}

func (c Config) withDefaults() (Config, error) {
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	switch {
	case c.ID == 0:
		return c, fmt.Errorf("%w: ID must be non-zero", ErrInvalidConfig)
	case c.Rand == nil:
		return c, fmt.Errorf("%w: Rand is required", ErrInvalidConfig)
	case c.HeartbeatTicks < 0 || c.ElectionTicks <= c.HeartbeatTicks:
		return c, fmt.Errorf("%w: ElectionTicks (%d) must exceed HeartbeatTicks (%d) > 0",
			ErrInvalidConfig, c.ElectionTicks, c.HeartbeatTicks)
	case c.MaxInflightMsgs < 0:
		return c, fmt.Errorf("%w: MaxInflightMsgs must be positive", ErrInvalidConfig)
	}
	voters := slices.Clone(c.Voters)
	slices.Sort(voters)
	for i, id := range voters {
		if id == 0 {
			return c, fmt.Errorf("%w: voter ID 0", ErrInvalidConfig)
		}
		if i > 0 && voters[i-1] == id {
			return c, fmt.Errorf("%w: duplicate voter %d", ErrInvalidConfig, id)
		}
	}
	c.Voters = voters
	return c, nil
}
