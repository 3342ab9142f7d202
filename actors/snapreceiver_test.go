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

// receiverRig is a snapshot receiver writing to a temporary directory, with
// probes standing in for the raft node and the sender.
type receiverRig struct {
	t        *testing.T
	system   *actor.ActorSystem
	dir      string
	receiver *actor.PID
	ackTo    *actor.PID
	acks     chan *messages.SnapshotAck
	received chan *messages.SnapshotReceived
}

func newReceiverRig(t *testing.T) *receiverRig {
	t.Helper()
	r := &receiverRig{t: t, dir: t.TempDir(), acks: make(chan *messages.SnapshotAck, 64), received: make(chan *messages.SnapshotReceived, 4)}
	r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(r.system.Shutdown)
	root := r.system.Root
	raft := root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.SnapshotReceived); ok {
			r.received <- m
		}
	}))
	r.ackTo = root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.SnapshotAck); ok {
			r.acks <- m
		}
	}))
	env := &actors.Env{Logger: zerolog.Nop(), State: &actors.MemberState{MemberID: 2}, Fatal: func(err error) { t.Errorf("fatal: %v", err) }}
	r.receiver = root.Spawn(actors.NewSnapshotReceiverProps(env, r.dir, raft))
	return r
}

func (r *receiverRig) send(c *messages.SnapshotChunk) *messages.SnapshotAck {
	r.t.Helper()
	c.AckTo = r.ackTo
	r.system.Root.Send(r.receiver, c)
	select {
	case a := <-r.acks:
		return a
	case <-time.After(5 * time.Second):
		r.t.Fatalf("no ack for chunk at offset %d", c.Offset)
		return nil
	}
}

func (r *receiverRig) noneReceived() {
	r.t.Helper()
	select {
	case m := <-r.received:
		r.t.Fatalf("raft node told of snapshot %d", m.Meta.Index)
	default:
	}
	if names, _ := filepath.Glob(filepath.Join(r.dir, "db.snap-*")); len(names) > 0 {
		r.t.Fatalf("snapshot file kept: %v", names)
	}
}

// backendFile returns the bytes of a backend whose consistent index is index.
func backendFile(t testing.TB, index uint64) []byte {
	t.Helper()
	s, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := uint64(1); i <= index; i++ {
		s.Apply(i, &messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{
			Key: []byte{byte('a' + i%26), byte(i)}, Value: bytes.Repeat([]byte("v"), 100)}}})
	}
	sn, err := s.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunks cuts file into pieces of size bytes for one transfer.
func chunks(file []byte, size int, id, term, index uint64) []*messages.SnapshotChunk {
	var out []*messages.SnapshotChunk
	sum := sha256.Sum256(file)
	for off := 0; ; off += size {
		end := min(off+size, len(file))
		c := &messages.SnapshotChunk{Meta: &messages.SnapshotMeta{Index: index, Term: term}, Leader: 1, Term: term,
			TransferId: id, Offset: uint64(off), Data: file[off:end], Last: end == len(file)}
		if c.Last {
			c.Sha256 = sum[:]
		}
		out = append(out, c)
		if c.Last {
			return out
		}
	}
}

func TestSnapshotReceiverInstallsVerifiedFile(t *testing.T) {
	r := newReceiverRig(t)
	file := backendFile(t, 50)
	cs := chunks(file, len(file)/3+1, 9, 4, 50)
	for i, c := range cs {
		a := r.send(c)
		if a.Rejected || a.Offset != c.Offset || a.Last != (i == len(cs)-1) {
			t.Fatalf("chunk %d: ack %v", i, a)
		}
	}
	select {
	case m := <-r.received:
		if m.Meta.Index != 50 || m.Term != 4 || m.Leader != 1 {
			t.Fatalf("SnapshotReceived %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raft node not told")
	}
	got, err := os.ReadFile(filepath.Join(r.dir, actors.SnapshotFileName(50)))
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("snapshot file: %d bytes, %v; want the %d sent", len(got), err, len(file))
	}
	if _, err := os.Stat(filepath.Join(r.dir, actors.IncomingSnapshotName)); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", actors.IncomingSnapshotName, err)
	}
}

func TestSnapshotReceiverRejects(t *testing.T) {
	file := backendFile(t, 20)
	size := len(file)/4 + 1
	t.Run("out of order", func(t *testing.T) {
		r := newReceiverRig(t)
		cs := chunks(file, size, 1, 2, 20)
		if a := r.send(cs[0]); a.Rejected {
			t.Fatalf("first chunk rejected: %s", a.Reason)
		}
		if a := r.send(cs[2]); !a.Rejected {
			t.Fatal("chunk skipping one accepted")
		}
		if a := r.send(cs[1]); !a.Rejected {
			t.Fatal("chunk of an aborted transfer accepted")
		}
		r.noneReceived()
	})
	t.Run("unknown transfer", func(t *testing.T) {
		r := newReceiverRig(t)
		if a := r.send(chunks(file, size, 1, 2, 20)[1]); !a.Rejected {
			t.Fatal("chunk of an unknown transfer accepted")
		}
		r.noneReceived()
	})
	t.Run("sha mismatch", func(t *testing.T) {
		r := newReceiverRig(t)
		cs := chunks(file, size, 1, 2, 20)
		cs[len(cs)-1].Sha256 = make([]byte, 32)
		for i, c := range cs {
			a := r.send(c)
			if a.Rejected != (i == len(cs)-1) {
				t.Fatalf("chunk %d: rejected %v (%s)", i, a.Rejected, a.Reason)
			}
		}
		r.noneReceived()
	})
	t.Run("garbage", func(t *testing.T) {
		r := newReceiverRig(t)
		garbage := bytes.Repeat([]byte("not a bbolt file"), 1000)
		cs := chunks(garbage, 4096, 1, 2, 20)
		for i, c := range cs {
			a := r.send(c)
			if a.Rejected != (i == len(cs)-1) {
				t.Fatalf("chunk %d: rejected %v (%s)", i, a.Rejected, a.Reason)
			}
		}
		r.noneReceived()
	})
	t.Run("wrong consistent index", func(t *testing.T) {
		r := newReceiverRig(t)
		cs := chunks(file, size, 1, 2, 21)
		if a := r.send(cs[len(cs)-1]); !a.Rejected {
			t.Fatal("last chunk alone accepted")
		}
		for i, c := range cs {
			if a := r.send(c); a.Rejected != (i == len(cs)-1) {
				t.Fatalf("chunk %d: rejected %v (%s)", i, a.Rejected, a.Reason)
			}
		}
		r.noneReceived()
	})
	t.Run("newer term replaces older", func(t *testing.T) {
		r := newReceiverRig(t)
		old := chunks(file, size, 1, 2, 20)
		if a := r.send(old[0]); a.Rejected {
			t.Fatal(a.Reason)
		}
		newer := chunks(file, size, 2, 3, 20)
		if a := r.send(newer[0]); a.Rejected {
			t.Fatalf("newer transfer rejected: %s", a.Reason)
		}
		if a := r.send(old[1]); !a.Rejected {
			t.Fatal("replaced transfer continued")
		}
		if a := r.send(chunks(file, size, 3, 1, 20)[0]); !a.Rejected {
			t.Fatal("transfer of an older term replaced one in progress")
		}
		for _, c := range newer[1:] {
			if a := r.send(c); a.Rejected {
				t.Fatalf("newer transfer chunk at %d rejected: %s", c.Offset, a.Reason)
			}
		}
		select {
		case m := <-r.received:
			if m.Term != 3 {
				t.Fatalf("received term %d, want 3", m.Term)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("raft node not told")
		}
	})
}
