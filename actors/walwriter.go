package actors

import (
	"fmt"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence"
	"github.com/asynkron/protoactor-go/actor"
)

// walWriter owns the WAL. Every Persist queued in its mailbox before a
// self-sent Flush becomes one write and one fdatasync (group commit); Persist
// messages arriving while the sync runs wait in the mailbox and form the next
// batch. Persisted goes to the sender of the batch's Persist messages (the
// raft node) only after the sync succeeded. A batch that carries no entries
// and changes neither term nor vote (only the commit index, which a restart
// recovers from the log) is written but not synced, as etcd does. A failed write or sync is fatal:
// the writer reports WALFailed, calls Env.Fatal and drops everything after.
type walWriter struct {
	env    *Env
	log    persistence.Log
	batch  []*messages.Persist
	reply  *actor.PID
	queued bool
	failed bool
	// synced is the term and vote of the last hard state made durable.
	syncedTerm, syncedVote uint64
}

// NewWALWriterProps returns the props of a WAL writer over log. The log
// stays owned by the caller, who closes it after the actor stopped.
func NewWALWriterProps(env *Env, log persistence.Log) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &walWriter{env: env, log: log}
	})
}

func (w *walWriter) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.Persist:
		w.onPersist(ctx, msg)
	case *messages.Flush:
		w.onFlush(ctx)
	case *messages.SaveSnapshot:
		w.onSaveSnapshot(ctx, msg)
	case *actor.Stopping:
		w.onFlush(ctx)
	}
}

func (w *walWriter) onPersist(ctx actor.Context, msg *messages.Persist) {
	if w.failed {
		return
	}
	w.batch = append(w.batch, msg)
	w.reply = ctx.Sender()
	if !w.queued {
		w.queued = true
		ctx.Send(ctx.Self(), &messages.Flush{})
	}
}

func (w *walWriter) onFlush(ctx actor.Context) {
	w.queued = false
	if w.failed || len(w.batch) == 0 {
		return
	}
	var hs *messages.HardState
	var ents, all []*messages.Entry
	snapshot := false
	for _, p := range w.batch {
		if p.Snapshot != nil {
			// A received snapshot's marker goes after everything handed out
			// before it and before its own entries and hard state.
			if err := w.log.Save(hs, ents); err != nil {
				w.fail(ctx, fmt.Errorf("wal write: %w", err))
				return
			}
			hs, ents = nil, nil
			sl, ok := w.log.(snapshotLog)
			if !ok {
				w.fail(ctx, fmt.Errorf("wal snapshot at %d: log cannot record snapshots", p.Snapshot.Index))
				return
			}
			if err := sl.SaveSnapshot(p.Snapshot); err != nil {
				w.fail(ctx, fmt.Errorf("wal snapshot at %d: %w", p.Snapshot.Index, err))
				return
			}
			snapshot = true
		}
		if p.HardState != nil {
			hs = p.HardState
		}
		ents = append(ents, p.Entries...)
		all = append(all, p.Entries...)
	}
	n := len(w.batch)
	w.batch = w.batch[:0]
	if err := w.log.Save(hs, ents); err != nil {
		w.fail(ctx, fmt.Errorf("wal write: %w", err))
		return
	}
	ents = all
	mustSync := snapshot || len(ents) > 0 || hs != nil && (hs.Term != w.syncedTerm || hs.Vote != w.syncedVote)
	if mustSync {
		if err := w.log.Sync(); err != nil {
			w.fail(ctx, fmt.Errorf("wal fdatasync: %w", err))
			return
		}
		w.env.State.WALSyncs.Add(1)
		if hs != nil {
			w.syncedTerm, w.syncedVote = hs.Term, hs.Vote
		}
	}
	w.env.State.WALEntries.Add(uint64(len(ents)))
	w.env.State.WALRecords.Add(uint64(n))
	done := &messages.Persisted{Batches: uint64(n)}
	if len(ents) > 0 {
		last := ents[len(ents)-1]
		done.Index, done.Term = last.Index, last.Term
	}
	if w.reply != nil {
		ctx.Send(w.reply, done)
	}
}

func (w *walWriter) fail(ctx actor.Context, err error) {
	w.failed = true
	w.batch = nil
	w.env.Logger.Error().Err(err).Msg("WAL failed; stopping the member")
	if w.reply != nil {
		ctx.Send(w.reply, &messages.WALFailed{Reason: err.Error()})
	}
	w.env.Fatal(err)
}

// snapshotLog is a log that can record snapshot points and release what
// replay no longer needs (*wal.WAL and MemLog).
type snapshotLog interface {
	SaveSnapshot(meta *messages.SnapshotMeta) error
	Release() (int, error)
}

// onSaveSnapshot records a snapshot point (everything through meta.Index is
// durable in the backend), syncs it, and releases older segments. The
// pending batch is written first so records stay in arrival order.
func (w *walWriter) onSaveSnapshot(ctx actor.Context, msg *messages.SaveSnapshot) {
	w.onFlush(ctx)
	sl, ok := w.log.(snapshotLog)
	if w.failed || !ok || msg.Meta == nil {
		return
	}
	if err := sl.SaveSnapshot(msg.Meta); err != nil {
		w.fail(ctx, fmt.Errorf("wal snapshot at %d: %w", msg.Meta.Index, err))
		return
	}
	if err := w.log.Sync(); err != nil {
		w.fail(ctx, fmt.Errorf("wal fdatasync: %w", err))
		return
	}
	w.env.State.WALSyncs.Add(1)
	n, err := sl.Release()
	if err != nil {
		w.fail(ctx, fmt.Errorf("wal release behind %d: %w", msg.Meta.Index, err))
		return
	}
	w.env.Logger.Info().Uint64("index", msg.Meta.Index).Int("segments-released", n).Msg("snapshot: WAL released behind the backend")
}
