// Package raft is aetcd's Raft core: a pure, deterministic state machine in
// the shape of go.etcd.io/raft (Step/Tick/Ready/Advance, one step function
// per role, term handling once in Step). It performs no I/O, reads no
// clock and uses no global randomness: time arrives as Tick calls and
// randomness from Config.Rand, so a seed replays any run exactly. The raft
// node actor hosts it and swaps its protoactor Behavior when the role
// (Ready.SoftState) changes.
//
// # Host loop
//
// The host calls the core from one goroutine. After every input (Tick, a
// peer's message via Step, Propose, ReadIndex, a WAL or applier report) it
// drains the output:
//
//	for core.HasReady() {
//		rd := core.Ready()
//		// hand rd off (below), then at once:
//		core.Advance(rd)
//	}
//
// Handing off rd means:
//
//  1. Start persisting, in this order and after everything handed out by
//     earlier Readies: rd.Snapshot, rd.Entries, rd.HardState. A Ready's
//     entries must be durable no later than its HardState (write them first
//     or atomically). If rd.Entries[0].Index is at or below an index
//     written before, the log was truncated: the WAL discards its entries
//     from that index on before appending.
//  2. Send rd.Messages to their members, in order, now: they may leave
//     before this Ready is durable. The leader sends MSG_APP before its own
//     fsync (the core counts the leader toward the commit quorum only once
//     its entries are durable). Messages that must not leave before local
//     durability (a follower's append acknowledgment, a vote grant, a
//     candidate's vote requests) are withheld inside the core and appear in a later Ready's Messages once
//     the host reports that durability; there is no second message list to
//     sequence against the WAL.
//  3. Queue rd.CommittedEntries for the state machine, in order. They are
//     committed and durable locally. Entries with empty Data are leader
//     no-ops: apply them as nothing (but advance the applied index). After
//     applying, call Applied(index).
//  4. Keep rd.ReadStates: a read with that Context may be served once the
//     applied index reaches ReadState.Index.
//  5. React to rd.SoftState (role or leader changed).
//
// When the WAL reports a batch durable (several Readies may share one
// fdatasync), the host calls, in either order:
//
//   - Persisted(index, term) with the last entry written (or the snapshot's
//     index and term for a Ready.Snapshot), if the batch held any;
//   - PersistedHardState(hs) with the last HardState written, if any.
//
// Reports are monotonic and may be late or stale; a report for entries the
// log has since replaced is ignored.
//
// # Durability rules enforced by the core
//
//   - A follower acknowledges entries (MSG_APP_RESP) only through its
//     durable prefix; the rest of the acknowledgment is emitted from
//     Persisted.
//   - The leader counts itself toward the commit quorum only through
//     Persisted.
//   - A vote grant is sent only once PersistedHardState covers it:
//     otherwise a crash could let the member vote twice in one term.
//   - A candidate counts its own vote and sends its vote requests only once
//     PersistedHardState covers its new term and vote, and becomes leader
//     only with its own vote counted. Otherwise a candidate that crashed
//     before its term was durable restarts in the previous term and may run
//     the same term again with a shorter log: it could vote twice, collect
//     grants given to its first incarnation's longer log, or lead the same
//     term twice and reuse an (index, term) for a different entry. The cost
//     is one fsync before the vote requests leave. A single-voter member
//     becomes leader on its first election timeout as soon as that hard
//     state is durable (one Ready round trip, no further ticks).
//   - CommittedEntries holds only entries that are both committed and
//     durable locally.
//
// # Restart
//
// New takes what the WAL recovered (RestoreState): the last durable hard
// state, snapshot and entries (records written but never reported durable
// may be included if they survived; torn records must not be). The member
// restarts as a follower.
//
// # Membership
//
// ProposeConfChange appends single-member changes (add a voter or learner,
// promote a learner by adding it as a voter, remove, update), one at a
// time; each takes effect when its entry is handed out in CommittedEntries
// (see confchange.go). The configuration before the first entry is
// Config.Voters, or the restored snapshot's ConfState. Snapshot data is the
// host's: MSG_SNAP carries only SnapshotMeta (with the ConfState as of its
// index), the host must attach and install the state itself.
package raft
