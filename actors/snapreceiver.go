package actors

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
)

// IncomingSnapshotName is the file, in the snapshot directory, a snapshot
// being received is written to.
const IncomingSnapshotName = "db.incoming"

// maxSnapshotChunkBytes bounds the data of a chunk the receiver accepts.
const maxSnapshotChunkBytes = 4 * SnapshotChunkBytes

// snapshotReceiver receives backend snapshots streamed by a leader's
// snapshot sender, one transfer at a time. It writes the chunks of a
// transfer in order to db.incoming in the snapshot directory, acknowledging
// each; a chunk out of order, or one of an unknown transfer that does not
// start at offset 0, is rejected (ending that transfer). A new transfer
// (offset 0) replaces a partial one unless it is from an older term. After
// the last chunk it fsyncs the file, checks its SHA-256, that it opens as a
// backend and that its consistent index is the snapshot's index, renames it
// to SnapshotFileName(index), fsyncs the directory, hands the snapshot's
// metadata to the raft node (SnapshotReceived) and only then acknowledges
// the last chunk.
type snapshotReceiver struct {
	env  *Env
	dir  string
	raft *actor.PID
	cur  *incomingSnapshot
}

type incomingSnapshot struct {
	leader, term, id uint64
	meta             *messages.SnapshotMeta
	file             *os.File
	offset           uint64
	hash             hash.Hash
}

// NewSnapshotReceiverProps returns the props of a snapshot receiver writing
// to dir and reporting to raft.
func NewSnapshotReceiverProps(env *Env, dir string, raft *actor.PID) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &snapshotReceiver{env: env, dir: dir, raft: raft}
	})
}

func (r *snapshotReceiver) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.SnapshotChunk:
		r.onChunk(ctx, msg)
	case *actor.Stopping:
		r.abort()
	}
}

func (r *snapshotReceiver) onChunk(ctx actor.Context, c *messages.SnapshotChunk) {
	reject := func(reason string) {
		r.env.Logger.Warn().Uint64("leader", c.Leader).Uint64("transfer", c.TransferId).Uint64("offset", c.Offset).Str("reason", reason).Msg("snapshot chunk rejected")
		r.reply(ctx, c, &messages.SnapshotAck{TransferId: c.TransferId, Offset: c.Offset, Rejected: true, Reason: reason})
	}
	switch {
	case c.Meta == nil || c.Meta.Index == 0 || c.Leader == 0:
		reject("chunk without snapshot metadata or leader")
		return
	case len(c.Data) > maxSnapshotChunkBytes:
		reject(fmt.Sprintf("chunk of %d bytes exceeds %d", len(c.Data), maxSnapshotChunkBytes))
		return
	}
	cur := r.cur
	same := cur != nil && cur.id == c.TransferId && cur.leader == c.Leader && cur.term == c.Term && cur.meta.Index == c.Meta.Index
	switch {
	case same && c.Offset != cur.offset:
		r.abort()
		reject(fmt.Sprintf("chunk at offset %d, expected %d", c.Offset, cur.offset))
		return
	case !same && c.Offset != 0:
		reject("chunk of an unknown transfer")
		return
	case !same && cur != nil && c.Term < cur.term:
		reject(fmt.Sprintf("transfer of term %d while one of term %d is in progress", c.Term, cur.term))
		return
	case !same:
		r.abort()
		f, err := os.OpenFile(filepath.Join(r.dir, IncomingSnapshotName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			reject(err.Error())
			return
		}
		r.cur = &incomingSnapshot{leader: c.Leader, term: c.Term, id: c.TransferId, meta: c.Meta, file: f, hash: sha256.New()}
		cur = r.cur
		r.env.Logger.Info().Uint64("leader", c.Leader).Uint64("index", c.Meta.Index).Msg("receiving a snapshot")
	}
	if _, err := cur.file.Write(c.Data); err != nil {
		r.abort()
		reject(err.Error())
		return
	}
	cur.hash.Write(c.Data)
	cur.offset += uint64(len(c.Data))
	if !c.Last {
		r.reply(ctx, c, &messages.SnapshotAck{TransferId: c.TransferId, Offset: c.Offset})
		return
	}
	if err := r.complete(c); err != nil {
		r.abort()
		reject(err.Error())
		return
	}
	r.cur = nil
	ctx.Send(r.raft, &messages.SnapshotReceived{Leader: c.Leader, Term: c.Term, Meta: c.Meta, Members: c.Members, Removed: c.Removed})
	r.reply(ctx, c, &messages.SnapshotAck{TransferId: c.TransferId, Offset: c.Offset, Last: true})
}

// complete makes the received file durable, verifies it and moves it to its
// final name.
func (r *snapshotReceiver) complete(c *messages.SnapshotChunk) error {
	cur := r.cur
	if err := cur.file.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", cur.file.Name(), err)
	}
	if err := cur.file.Close(); err != nil {
		return fmt.Errorf("close %s: %w", cur.file.Name(), err)
	}
	name := cur.file.Name()
	cur.file = nil
	if sum := cur.hash.Sum(nil); !bytes.Equal(sum, c.Sha256) {
		return fmt.Errorf("SHA-256 mismatch: received %x, sender says %x", sum, c.Sha256)
	}
	ci, err := mvcc.Verify(name)
	if err != nil {
		return err
	}
	if ci != c.Meta.Index {
		return fmt.Errorf("snapshot file has consistent index %d, metadata says %d", ci, c.Meta.Index)
	}
	final := filepath.Join(r.dir, SnapshotFileName(c.Meta.Index))
	if err := os.Rename(name, final); err != nil {
		return err
	}
	if err := mvcc.SyncDir(r.dir); err != nil {
		return fmt.Errorf("fsync %s: %w", r.dir, err)
	}
	r.env.Logger.Info().Uint64("index", c.Meta.Index).Uint64("bytes", cur.offset).Str("file", final).Msg("snapshot received and verified")
	return nil
}

func (r *snapshotReceiver) reply(ctx actor.Context, c *messages.SnapshotChunk, ack *messages.SnapshotAck) {
	if c.AckTo != nil {
		ctx.Send(c.AckTo, ack)
	}
}

// abort drops the transfer in progress and its partial file.
func (r *snapshotReceiver) abort() {
	if r.cur == nil {
		return
	}
	if r.cur.file != nil {
		_ = r.cur.file.Close()
	}
	_ = os.Remove(filepath.Join(r.dir, IncomingSnapshotName))
	r.cur = nil
}
