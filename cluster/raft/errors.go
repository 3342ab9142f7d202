package raft

import "errors"

// Sentinel errors returned by the core. Callers compare with errors.Is;
// config and restore errors wrap ErrInvalidConfig / ErrInvalidRestoreState
// with the reason.
var (
	// ErrInvalidConfig: New was given a Config it cannot run with.
	ErrInvalidConfig = errors.New("raft: invalid config")
	// ErrInvalidRestoreState: New was given a RestoreState that is not a
	// consistent persisted state (gap in entries, commit beyond the log...).
	ErrInvalidRestoreState = errors.New("raft: invalid restore state")
	// ErrNotLeader: Propose or TransferLeader on a member that is not the
	// leader. The host forwards to Leader() itself.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrNoLeader: ReadIndex on a non-leader that knows no leader to forward to.
	ErrNoLeader = errors.New("raft: no known leader")
	// ErrProposalDropped: Propose while a leadership transfer is in progress.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrStepLocalMsg: Step was given a message type that is never sent
	// between members (MSG_HUP, MSG_BEAT, MSG_PROP, ...); use the
	// corresponding Core method instead.
	ErrStepLocalMsg = errors.New("raft: local message type cannot be stepped")
	// ErrUnknownPeer: a message from, or an operation naming, a member that
	// is not in the configuration.
	ErrUnknownPeer = errors.New("raft: unknown member")
	// ErrWrongRecipient: Step was given a message addressed to another member.
	ErrWrongRecipient = errors.New("raft: message addressed to another member")
	// ErrInvalidMessage: a message that no correct member sends (entries not
	// contiguous, entry term above the message term, missing snapshot).
	ErrInvalidMessage = errors.New("raft: invalid message")
	// ErrPendingConfChange: ProposeConfChange while an earlier change is
	// not yet applied.
	ErrPendingConfChange = errors.New("raft: a membership change is already in progress")
	// ErrInvalidConfChange: a ConfChange that does not apply to the current
	// configuration.
	ErrInvalidConfChange = errors.New("raft: invalid membership change")
	// ErrLogLost: the log lacks entries this member made durable and
	// acknowledged (a leader names a commit index beyond its last index).
	// The core panics with an error wrapping it: the member must not go on.
	ErrLogLost = errors.New("raft: log lost or corrupted")
	// ErrCompacted: Compact at or below the current log start.
	ErrCompacted = errors.New("raft: index already compacted")
	// ErrUnavailable: Compact beyond what is applied and persisted.
	ErrUnavailable = errors.New("raft: index not yet applied and persisted")
)
