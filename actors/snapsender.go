package actors

import (
	"crypto/sha256"
	"errors"
	"hash"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
)

const (
	// SnapshotChunkBytes bounds the data of one SnapshotChunk.
	SnapshotChunkBytes = 1 << 20
	// snapshotWindow is how many chunks may be unacknowledged at once.
	snapshotWindow = 4
)

// errTransferStopped ends a stream whose sender actor stopped.
var errTransferStopped = errors.New("snapshot transfer stopped")

// snapshotSender streams one backend snapshot to a follower's snapshot
// receiver, a child of the applier living for one transfer. A goroutine of
// its own reads the snapshot (a bbolt read transaction, closed when the
// stream ends) into chunks of at most SnapshotChunkBytes and hands each to
// the actor, which sends it; at most snapshotWindow chunks are
// unacknowledged at once. The outcome goes to the raft node as
// SnapshotStatus: success once the receiver acknowledged the last chunk
// (verified and handed to its raft node), failure on a rejection or when
// nothing arrived for ApplierConfig.SnapshotTimeout.
type snapshotSender struct {
	env      *Env
	snap     *mvcc.Snapshot
	chunk    *messages.SnapshotChunk // template: meta, leader, term, transfer ID
	to       uint64
	receiver *actor.PID
	raft     *actor.PID
	timeout  time.Duration

	credits  chan struct{}
	done     chan struct{}
	finished bool
}

func newSnapshotSenderProps(env *Env, snap *mvcc.Snapshot, tmpl *messages.SnapshotChunk, to uint64, receiver, raft *actor.PID, timeout time.Duration) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &snapshotSender{env: env, snap: snap, chunk: tmpl, to: to, receiver: receiver, raft: raft, timeout: timeout}
	})
}

func (s *snapshotSender) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.onStarted(ctx)
	case *messages.SnapshotChunk:
		s.onChunk(ctx, msg)
	case *messages.SnapshotAck:
		s.onAck(ctx, msg)
	case *messages.SnapshotStatus:
		s.finish(ctx, msg.Failed, "reading the backend failed")
	case *actor.ReceiveTimeout:
		s.finish(ctx, true, "no acknowledgement in time")
	case *actor.Stopping:
		s.onStopping()
	}
}

func (s *snapshotSender) onStarted(ctx actor.Context) {
	s.credits = make(chan struct{}, snapshotWindow)
	for i := 0; i < snapshotWindow; i++ {
		s.credits <- struct{}{}
	}
	s.done = make(chan struct{})
	ctx.SetReceiveTimeout(s.timeout)
	s.env.Logger.Info().Uint64("to", s.to).Uint64("index", s.chunk.Meta.Index).Int64("bytes", s.snap.Size()).Msg("snapshot transfer starting")
	go s.stream(ctx.ActorSystem().Root, ctx.Self())
}

// stream runs on its own goroutine: it owns s.snap and closes it.
func (s *snapshotSender) stream(root *actor.RootContext, self *actor.PID) {
	defer s.snap.Close()
	w := &chunkWriter{s: s, root: root, self: self, hash: sha256.New(), buf: make([]byte, 0, SnapshotChunkBytes)}
	_, err := s.snap.WriteTo(w)
	if err == nil {
		err = w.emit(true)
	}
	if err != nil && !errors.Is(err, errTransferStopped) {
		s.env.Logger.Warn().Err(err).Uint64("to", s.to).Msg("snapshot stream failed")
		root.Send(self, &messages.SnapshotStatus{To: s.to, Failed: true})
	}
}

// chunkWriter cuts what WriteTo writes into chunks.
type chunkWriter struct {
	s      *snapshotSender
	root   *actor.RootContext
	self   *actor.PID
	hash   hash.Hash
	buf    []byte
	offset uint64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), SnapshotChunkBytes-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == SnapshotChunkBytes {
			if err := w.emit(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// emit waits for a free slot in the window and hands the buffered data to
// the actor as one chunk.
func (w *chunkWriter) emit(last bool) error {
	select {
	case <-w.s.credits:
	case <-w.s.done:
		return errTransferStopped
	}
	w.hash.Write(w.buf)
	c := &messages.SnapshotChunk{Meta: w.s.chunk.Meta, Leader: w.s.chunk.Leader, Term: w.s.chunk.Term,
		TransferId: w.s.chunk.TransferId, Offset: w.offset, Data: w.buf, Last: last}
	if last {
		c.Sha256 = w.hash.Sum(nil)
		c.Members, c.Removed = w.s.chunk.Members, w.s.chunk.Removed
	}
	w.offset += uint64(len(w.buf))
	w.buf = make([]byte, 0, SnapshotChunkBytes)
	w.root.Send(w.self, c)
	return nil
}

func (s *snapshotSender) onChunk(ctx actor.Context, c *messages.SnapshotChunk) {
	if s.finished {
		return
	}
	c.AckTo = ctx.Self()
	ctx.Send(s.receiver, c)
}

func (s *snapshotSender) onAck(ctx actor.Context, a *messages.SnapshotAck) {
	if a.TransferId != s.chunk.TransferId || s.finished {
		return
	}
	switch {
	case a.Rejected:
		s.finish(ctx, true, "rejected by the receiver: "+a.Reason)
	case a.Last:
		s.finish(ctx, false, "")
	default:
		select {
		case s.credits <- struct{}{}:
		default: // a duplicate acknowledgement
		}
	}
}

func (s *snapshotSender) finish(ctx actor.Context, failed bool, reason string) {
	if s.finished {
		return
	}
	s.finished = true
	if failed {
		s.env.Logger.Warn().Uint64("to", s.to).Str("reason", reason).Msg("snapshot transfer failed")
	} else {
		s.env.Logger.Info().Uint64("to", s.to).Uint64("index", s.chunk.Meta.Index).Msg("snapshot transfer finished")
	}
	ctx.Send(s.raft, &messages.SnapshotStatus{To: s.to, Failed: failed})
	ctx.Stop(ctx.Self())
}

func (s *snapshotSender) onStopping() {
	if s.done != nil {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}
