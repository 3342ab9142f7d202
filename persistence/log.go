// Package persistence defines the small storage interfaces the actors depend
// on, each with an in-memory twin beside the real implementation, so layers
// above can be tested without disks.
package persistence

import "github.com/aetcd/aetcd/messages"

// Log is the durable Raft log: the WAL writer appends hard state and entries
// and reports them durable once Sync returns. *wal.WAL (package
// persistence/wal) implements it; MemLog is its in-memory twin.
//
// Contract shared by both implementations:
//   - Save appends ents in order, then hs if it is not nil, without syncing.
//     An entry's index must be between 1 and one above the log's last index;
//     an entry at or below the last index replaces the log from that index
//     on (a new leader truncating a follower's log).
//   - Sync makes every Save that returned before it durable when it returns
//     nil. A failed Sync is permanent: every later call returns an error,
//     because after a failed fdatasync the kernel may have dropped the data.
//   - Close syncs and releases the log; calls after Close fail.
type Log interface {
	Save(hs *messages.HardState, ents []*messages.Entry) error
	Sync() error
	Close() error
}
