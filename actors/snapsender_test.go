package actors_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// senderRig is an applier over a backend larger than the sender's window,
// with probes for the raft node and a follower's snapshot receiver.
type senderRig struct {
	t        *testing.T
	system   *actor.ActorSystem
	applier  *actor.PID
	receiver *actor.PID
	chunks   chan *messages.SnapshotChunk
	status   chan *messages.SnapshotStatus
	index    uint64
}

func newSenderRig(t *testing.T, timeout time.Duration) *senderRig {
	t.Helper()
	store, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 1024)
	const n = 6000 // about 6 MiB: more chunks than the window
	for i := uint64(1); i <= n; i++ {
		store.Apply(i, &messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{
			Key: []byte{byte(i >> 8), byte(i)}, Value: val}}})
	}
	if err := store.Commit(); err != nil {
		t.Fatal(err)
	}
	r := &senderRig{t: t, chunks: make(chan *messages.SnapshotChunk, 64), status: make(chan *messages.SnapshotStatus, 4), index: n + 1}
	r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	root := r.system.Root
	raft := root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.SnapshotStatus); ok {
			r.status <- m
		}
	}))
	r.receiver = root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.SnapshotChunk); ok {
			r.chunks <- m
		}
	}))
	env := &actors.Env{Logger: zerolog.Nop(), State: &actors.MemberState{MemberID: 1}, Fatal: func(err error) { t.Errorf("fatal: %v", err) }}
	r.applier = root.Spawn(actors.NewApplierProps(env, store, raft, actors.ApplierConfig{SnapshotTimeout: timeout}))
	t.Cleanup(func() {
		_ = root.PoisonFuture(r.applier).Wait()
		r.system.Shutdown()
		_ = store.Close()
	})
	// One entry applied by this applier gives it the term of its index.
	root.Send(r.applier, &messages.Apply{Entries: []*messages.Entry{{Index: r.index, Term: 3}}})
	root.Send(r.applier, &messages.SendSnapshot{To: 2, Term: 3, Receiver: r.receiver})
	return r
}

func (r *senderRig) nextChunk() *messages.SnapshotChunk {
	r.t.Helper()
	select {
	case c := <-r.chunks:
		return c
	case <-time.After(5 * time.Second):
		r.t.Fatal("no chunk")
		return nil
	}
}

func ack(r *senderRig, c *messages.SnapshotChunk) {
	r.system.Root.Send(c.AckTo, &messages.SnapshotAck{TransferId: c.TransferId, Offset: c.Offset, Last: c.Last})
}

func TestSnapshotSenderWindowAndSuccess(t *testing.T) {
	r := newSenderRig(t, 5*time.Second)
	var got []*messages.SnapshotChunk
	for i := 0; i < 4; i++ {
		got = append(got, r.nextChunk())
	}
	select {
	case c := <-r.chunks:
		t.Fatalf("chunk at offset %d sent with 4 unacknowledged", c.Offset)
	case <-time.After(300 * time.Millisecond):
	}
	for _, c := range got {
		ack(r, c)
	}
	for !got[len(got)-1].Last {
		c := r.nextChunk()
		got = append(got, c)
		ack(r, c)
	}
	var file []byte
	for i, c := range got {
		if c.Offset != uint64(len(file)) || len(c.Data) > actors.SnapshotChunkBytes || c.Meta.Index != r.index || c.Meta.Term != 3 || c.Term != 3 || c.Leader != 1 {
			t.Fatalf("chunk %d: offset %d (want %d), %d bytes, meta %v, term %d, leader %d", i, c.Offset, len(file), len(c.Data), c.Meta, c.Term, c.Leader)
		}
		file = append(file, c.Data...)
	}
	if sum := sha256.Sum256(file); !bytes.Equal(sum[:], got[len(got)-1].Sha256) {
		t.Fatal("SHA-256 of the last chunk does not match the data")
	}
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if ci, err := mvcc.Verify(path); err != nil || ci != r.index {
		t.Fatalf("streamed file: consistent index %d, %v; want %d", ci, err, r.index)
	}
	select {
	case st := <-r.status:
		if st.Failed || st.To != 2 {
			t.Fatalf("status %v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no SnapshotStatus")
	}
}

func TestSnapshotSenderGivesUp(t *testing.T) {
	r := newSenderRig(t, 300*time.Millisecond)
	r.nextChunk()
	select {
	case st := <-r.status:
		if !st.Failed || st.To != 2 {
			t.Fatalf("status %v, want failed", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("transfer without acknowledgements did not give up")
	}
}

func TestSnapshotSenderRejected(t *testing.T) {
	r := newSenderRig(t, 5*time.Second)
	c := r.nextChunk()
	r.system.Root.Send(c.AckTo, &messages.SnapshotAck{TransferId: c.TransferId, Offset: c.Offset, Rejected: true, Reason: "test"})
	select {
	case st := <-r.status:
		if !st.Failed {
			t.Fatalf("status %v, want failed", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rejected transfer did not end")
	}
}
