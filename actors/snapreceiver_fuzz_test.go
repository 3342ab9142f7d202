package actors_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
)

// A FuzzSnapshotReceiver input is a sequence of chunk descriptions, each a
// 12-byte header (flags, transfer ID, term, snapshot index, offset delta,
// data length, data start, corruption byte and position) followed by the
// chunk's literal data and checksum when the flags say so. An offset is
// absolute (the start field) or relative to where the transfer in progress
// expects the next chunk (the delta), and data is by default the slice of a
// real backend file (the reference) at the offset, so that valid transfers,
// and near misses of them, are a few mutations away.
const (
	chunkLast    = 1 << iota
	chunkLiteral // data follows the header (length 0xffff: one byte more than the receiver accepts)
	chunkNoMeta
	chunkNoLeader
	chunkShaRef     // checksum mode (2 bits): 0 right for the data sent, 1 the reference's,
	chunkShaNone    //   2 none, 3 the 32 bytes after the data
	chunkAbsolute   // the offset is start (unsigned), not the expected offset plus delta
	chunkCorrupt    // data[corruptAt % len] ^= xor
	chunkShaLiteral = chunkShaRef | chunkShaNone
)

const (
	chunkHeaderBytes = 12
	maxFuzzChunks    = 24
	refIndex         = 3 // the reference backend's consistent index
)

type fuzzChunk struct {
	flags, transfer, term, index byte
	delta                        int8
	length                       uint16
	start                        int16
	xor                          byte
	corruptAt                    uint16
	literal, sha                 []byte
}

func (c fuzzChunk) appendTo(b []byte) []byte {
	b = append(b, c.flags, c.transfer, c.term, c.index, byte(c.delta))
	b = binary.LittleEndian.AppendUint16(b, c.length)
	b = binary.LittleEndian.AppendUint16(b, uint16(c.start))
	b = append(b, c.xor)
	b = binary.LittleEndian.AppendUint16(b, c.corruptAt)
	if c.flags&chunkLiteral != 0 && c.length != 0xffff {
		b = append(b, c.literal[:c.length]...)
	}
	if c.flags&chunkShaLiteral == chunkShaLiteral {
		b = append(b, c.sha...)
	}
	return b
}

func encodeChunks(cs ...fuzzChunk) []byte {
	var b []byte
	for _, c := range cs {
		b = c.appendTo(b)
	}
	return b
}

func decodeChunks(b []byte) []fuzzChunk {
	var out []fuzzChunk
	for len(out) < maxFuzzChunks && len(b) >= chunkHeaderBytes {
		c := fuzzChunk{flags: b[0], transfer: b[1], term: b[2], index: b[3], delta: int8(b[4]),
			length: binary.LittleEndian.Uint16(b[5:]), start: int16(binary.LittleEndian.Uint16(b[7:])),
			xor: b[9], corruptAt: binary.LittleEndian.Uint16(b[10:])}
		b = b[chunkHeaderBytes:]
		if c.flags&chunkLiteral != 0 && c.length != 0xffff {
			n := min(int(c.length), len(b))
			c.literal, b = b[:n], b[n:]
		}
		if c.flags&chunkShaLiteral == chunkShaLiteral {
			n := min(sha256.Size, len(b))
			c.sha, b = b[:n], b[n:]
		}
		out = append(out, c)
	}
	return out
}

// refChunks cuts the reference into a valid transfer of pieces of size
// bytes, at absolute offsets.
func refChunks(refLen int, size uint16, transfer, term byte) []fuzzChunk {
	var out []fuzzChunk
	for off := 0; off < refLen; off += int(size) {
		c := fuzzChunk{flags: chunkAbsolute, transfer: transfer, term: term, index: refIndex, length: size, start: int16(uint16(off))}
		if off+int(size) >= refLen {
			c.flags |= chunkLast
		}
		out = append(out, c)
	}
	return out
}

// recordFailures is a guardian strategy that reports an actor's panic and
// stops it.
type recordFailures struct{ reasons chan string }

func (s recordFailures) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	select {
	case s.reasons <- fmt.Sprintf("actor %s panicked: %v", child.Id, reason):
	default:
	}
	sup.StopChildren(child)
}

// FuzzSnapshotReceiver drives a snapshot receiver, in a fresh directory,
// with chunks built from the input: transfers of the reference backend cut
// anywhere, out of order, of several transfers and terms, with bogus
// metadata (none, index 0 or the wrong index, no leader), corrupted bytes,
// garbage data and right, wrong or missing checksums. A model of the transfer in progress, kept from the
// acknowledgements, checks that the receiver
//   - never panics (its guardian reports it) and acknowledges every chunk,
//     for the chunk's transfer and offset;
//   - accepts a chunk only if it has metadata and a leader, continues the
//     transfer in progress at its end, or starts a transfer (offset 0) of
//     no older term than the one in progress;
//   - acknowledges a last chunk as last only after the whole transfer's
//     SHA-256 matched and the file, now db.snap-<index>, holds exactly the
//     bytes sent and opens as a backend of that consistent index, and tells
//     the raft node of exactly those transfers;
//   - leaves nothing in the directory but db.incoming while a transfer is in
//     progress and the verified db.snap-N files;
//   - afterwards still receives a valid transfer, and on stopping removes
//     the partial one.
func FuzzSnapshotReceiver(f *testing.F) {
	ref := backendFile(f, refIndex)
	page := uint16(os.Getpagesize())
	refLen := len(ref)
	third := uint16(refLen/3 + 1)
	valid := refChunks(refLen, third, 1, 2)
	with := func(cs []fuzzChunk, edit func(cs []fuzzChunk) []fuzzChunk) []fuzzChunk {
		return edit(append([]fuzzChunk(nil), cs...))
	}
	garbage := bytes.Repeat([]byte("not a bbolt page"), 64)
	seeds := [][]fuzzChunk{
		valid,
		refChunks(refLen, 0xffff, 7, 1), // the whole file in one chunk
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // truncated: the second chunk claims to be the last, with a checksum right for what was sent
			cs[1].flags |= chunkLast
			return cs[:2]
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // the reference's checksum for a truncated file
			cs[1].flags |= chunkLast | chunkShaRef
			return cs[:2]
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // wrong checksum
			cs[2].flags |= chunkShaLiteral
			cs[2].sha = make([]byte, sha256.Size)
			return cs
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // no checksum
			cs[2].flags |= chunkShaNone
			return cs
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // out of order: 0, 2, 1, 2
			return []fuzzChunk{cs[0], cs[2], cs[1], cs[2]}
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // the same, with offsets relative to the expected one
			for i := range cs {
				cs[i].flags &^= chunkAbsolute
				cs[i].start = 0
			}
			c2 := cs[2]
			c2.delta = 127
			return []fuzzChunk{cs[0], cs[1], {transfer: 1, term: 2, index: refIndex, delta: -1, length: third}, cs[0], c2, cs[1], cs[2]}
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // offset 0 again mid-transfer
			return []fuzzChunk{cs[0], cs[0], cs[0], cs[1], cs[2]}
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // bogus metadata
			cs[0].flags |= chunkNoMeta
			cs[1].flags |= chunkNoLeader
			cs[2].index = 0
			return append(cs, valid...)
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // the metadata names another index
			for i := range cs {
				cs[i].index = refIndex + 1
			}
			return cs
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // a newer term replaces the transfer, an older one does not
			newer := refChunks(refLen, third, 2, 3)
			older := refChunks(refLen, third, 3, 1)
			return []fuzzChunk{cs[0], newer[0], cs[1], older[0], newer[1], newer[2]}
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // a newer transfer replaces the one in progress, then fails its checksum
			newer := refChunks(refLen, third, 2, 3)[0]
			newer.flags |= chunkLast | chunkShaNone
			return []fuzzChunk{cs[0], newer, cs[1]}
		}),
		with(valid, func(cs []fuzzChunk) []fuzzChunk { // two transfers of the same term interleaved
			other := refChunks(refLen, third, 9, 2)
			return []fuzzChunk{cs[0], other[0], cs[1], other[1], other[2]}
		}),
		{{flags: chunkLiteral | chunkLast, transfer: 1, term: 1, index: refIndex, length: uint16(len(garbage)), literal: garbage}},
		{{flags: chunkLiteral, transfer: 1, term: 1, index: refIndex, length: 0xffff}, {flags: chunkLast, transfer: 1, term: 1, index: refIndex}},
		{{flags: chunkLiteral | chunkLast, transfer: 1, term: 1, index: refIndex}}, // an empty file
		{{transfer: 1, term: 1, index: refIndex, delta: -128, length: 100}},        // a huge offset (0 - 128)
	}
	// The reference, corrupted at each meta page, the root and the first
	// bucket page, with a checksum right for the corrupted file.
	for _, at := range []uint16{16, 20, page + 16, page + 40, 2*page + 20, 3*page + 18, 4*page + 30} {
		seeds = append(seeds, []fuzzChunk{{flags: chunkLast | chunkCorrupt, transfer: 1, term: 1, index: refIndex, length: 0xffff, xor: 0xff, corruptAt: at}})
	}
	for _, cs := range seeds {
		f.Add(encodeChunks(cs...))
	}

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	f.Cleanup(system.Shutdown)
	failures := make(chan string, 4)
	root := actor.NewRootContext(system, nil).WithGuardian(recordFailures{failures})
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(failures) > 0 {
			<-failures
		}
		h := newSnapHarness(t, root, failures, ref)
		for _, fc := range decodeChunks(data) {
			h.step(h.build(fc))
		}
		h.finish()
	})
}

type transferKey struct{ leader, term, id, index uint64 }

// snapHarness is one fuzz iteration: a receiver, probes for the raft node
// and the acknowledgements, and the model of what the receiver holds.
type snapHarness struct {
	t        *testing.T
	root     *actor.RootContext
	failures chan string
	ref      []byte
	dir      string
	receiver *actor.PID
	raft     *actor.PID
	ackTo    *actor.PID
	acks     chan *messages.SnapshotAck
	received chan *messages.SnapshotReceived

	// cur is the transfer the receiver has in progress (nil: none) and
	// buf the bytes it accepted of it.
	cur *transferKey
	buf []byte
	// verified are the snapshot files the receiver installed, by name;
	// reported the SnapshotReceived messages the raft node must get.
	verified map[string][]byte
	reported []*messages.SnapshotReceived
}

func newSnapHarness(t *testing.T, root *actor.RootContext, failures chan string, ref []byte) *snapHarness {
	h := &snapHarness{t: t, root: root, failures: failures, ref: ref, dir: t.TempDir(),
		acks: make(chan *messages.SnapshotAck, 1), received: make(chan *messages.SnapshotReceived, maxFuzzChunks+2),
		verified: map[string][]byte{}}
	h.raft = root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *messages.SnapshotReceived:
			h.received <- m
		case *messages.Flush:
			ctx.Respond(m)
		}
	}))
	h.ackTo = root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.SnapshotAck); ok {
			h.acks <- m
		}
	}))
	env := &actors.Env{Logger: zerolog.Nop(), State: &actors.MemberState{MemberID: 2}, Fatal: func(err error) { t.Errorf("fatal: %v", err) }}
	h.receiver = root.Spawn(actors.NewSnapshotReceiverProps(env, h.dir, h.raft))
	t.Cleanup(func() {
		for _, pid := range []*actor.PID{h.receiver, h.raft, h.ackTo} {
			root.Stop(pid)
		}
	})
	return h
}

func keyOf(c *messages.SnapshotChunk) transferKey {
	return transferKey{c.Leader, c.Term, c.TransferId, c.GetMeta().GetIndex()}
}

// build turns a chunk description into the chunk, relative to the model.
func (h *snapHarness) build(fc fuzzChunk) *messages.SnapshotChunk {
	c := &messages.SnapshotChunk{Leader: 1, Term: uint64(fc.term), TransferId: uint64(fc.transfer),
		Meta: &messages.SnapshotMeta{Index: uint64(fc.index), Term: uint64(fc.term)}, Last: fc.flags&chunkLast != 0,
		Removed: []uint64{uint64(fc.transfer)}}
	if fc.flags&chunkNoMeta != 0 {
		c.Meta = nil
	}
	if fc.flags&chunkNoLeader != 0 {
		c.Leader = 0
	}
	var expected uint64
	if h.cur != nil && *h.cur == keyOf(c) {
		expected = uint64(len(h.buf))
	}
	dataStart := int(fc.start)
	if fc.flags&chunkAbsolute != 0 {
		c.Offset, dataStart = uint64(uint16(fc.start)), 0
	} else {
		c.Offset = expected + uint64(int64(fc.delta)) // wraps to a huge offset below 0
	}
	switch {
	case fc.flags&chunkLiteral != 0 && fc.length == 0xffff:
		c.Data = make([]byte, 4*actors.SnapshotChunkBytes+1)
	case fc.flags&chunkLiteral != 0:
		c.Data = bytes.Clone(fc.literal)
	default:
		start := min(c.Offset, uint64(len(h.ref)))
		s := min(max(int(start)+dataStart, 0), len(h.ref))
		e := min(s+int(fc.length), len(h.ref))
		c.Data = bytes.Clone(h.ref[s:e])
	}
	if fc.flags&chunkCorrupt != 0 && len(c.Data) > 0 {
		c.Data[int(fc.corruptAt)%len(c.Data)] ^= fc.xor
	}
	switch fc.flags & chunkShaLiteral {
	case 0: // right if the receiver takes this chunk as the end of the transfer
		var prefix []byte
		if expected > 0 && c.Offset == expected {
			prefix = h.buf
		}
		sum := sha256.Sum256(append(bytes.Clone(prefix), c.Data...))
		c.Sha256 = sum[:]
	case chunkShaRef:
		sum := sha256.Sum256(h.ref)
		c.Sha256 = sum[:]
	case chunkShaNone:
	case chunkShaLiteral:
		c.Sha256 = bytes.Clone(fc.sha)
	}
	return c
}

// step sends c, waits for its acknowledgement and checks it and the
// directory against the model, which it then advances.
func (h *snapHarness) step(c *messages.SnapshotChunk) *messages.SnapshotAck {
	t := h.t
	t.Helper()
	c.AckTo = h.ackTo
	h.root.Send(h.receiver, c)
	var ack *messages.SnapshotAck
	select {
	case ack = <-h.acks:
	case reason := <-h.failures:
		t.Fatalf("chunk %s: %s", describe(c), reason)
	case <-time.After(4 * time.Second):
		// Well inside the fuzz worker's 10 s limit per input, so that a
		// receiver stuck in a loop is reported with its chunk.
		t.Fatalf("chunk %s: no acknowledgement", describe(c))
	}
	if ack.TransferId != c.TransferId || ack.Offset != c.Offset {
		t.Fatalf("chunk %s acknowledged as transfer %d offset %d", describe(c), ack.TransferId, ack.Offset)
	}
	key := keyOf(c)
	same := h.cur != nil && *h.cur == key
	if ack.Rejected {
		if ack.Last {
			t.Fatalf("chunk %s rejected and acknowledged as last", describe(c))
		}
		// A chunk with metadata, a leader and a size the receiver takes
		// is rejected only by ending the transfer in progress if it is of
		// that transfer or starts a new one (offset 0, no older term):
		// the new one replaced it before failing.
		starts := !same && c.Offset == 0 && (h.cur == nil || c.Term >= h.cur.term)
		if c.Meta.GetIndex() != 0 && c.Leader != 0 && len(c.Data) <= 4*actors.SnapshotChunkBytes && (same || starts) {
			h.cur, h.buf = nil, nil
		}
		h.checkDir()
		return ack
	}

	switch {
	case c.Meta == nil || c.Meta.Index == 0 || c.Leader == 0:
		t.Fatalf("chunk %s without metadata or leader accepted", describe(c))
	case len(c.Data) > 4*actors.SnapshotChunkBytes:
		t.Fatalf("chunk %s of %d bytes accepted", describe(c), len(c.Data))
	case same && c.Offset != uint64(len(h.buf)):
		t.Fatalf("chunk %s accepted, expected offset %d", describe(c), len(h.buf))
	case !same && c.Offset != 0:
		t.Fatalf("chunk %s of a transfer not in progress accepted (in progress: %v)", describe(c), h.cur)
	case !same && h.cur != nil && c.Term < h.cur.term:
		t.Fatalf("chunk %s replaced a transfer of term %d", describe(c), h.cur.term)
	case !same:
		h.cur, h.buf = &key, nil
	}
	h.buf = append(h.buf, c.Data...)
	if ack.Last != c.Last {
		t.Fatalf("chunk %s (last %v) acknowledged with last %v", describe(c), c.Last, ack.Last)
	}
	if c.Last {
		// Accepted as the end of a transfer: it must have been verified.
		if sum := sha256.Sum256(h.buf); !bytes.Equal(sum[:], c.Sha256) {
			t.Fatalf("transfer ending with %s installed with SHA-256 %x, sender said %x", describe(c), sum, c.Sha256)
		}
		name := actors.SnapshotFileName(c.Meta.Index)
		path := filepath.Join(h.dir, name)
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, h.buf) {
			t.Fatalf("transfer ending with %s: %s holds %d bytes (%v), want the %d sent", describe(c), name, len(got), err, len(h.buf))
		}
		if ci, err := mvcc.Verify(path); err != nil || ci != c.Meta.Index {
			t.Fatalf("transfer ending with %s installed a file that verifies as %d, %v", describe(c), ci, err)
		}
		h.verified[name] = h.buf
		h.reported = append(h.reported, &messages.SnapshotReceived{Leader: c.Leader, Term: c.Term, Meta: c.Meta, Removed: c.Removed})
		h.cur, h.buf = nil, nil
	}
	h.checkDir()
	return ack
}

// checkDir checks that the directory holds db.incoming exactly while a
// transfer is in progress, and otherwise only verified snapshots.
func (h *snapHarness) checkDir() {
	h.t.Helper()
	entries, err := os.ReadDir(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	incoming := false
	for _, e := range entries {
		switch _, ok := h.verified[e.Name()]; {
		case e.Name() == actors.IncomingSnapshotName:
			incoming = true
		case !ok:
			h.t.Fatalf("%s in the snapshot directory", e.Name())
		}
	}
	if incoming != (h.cur != nil) {
		h.t.Fatalf("%s present %v with transfer in progress %v", actors.IncomingSnapshotName, incoming, h.cur)
	}
}

// finish sends a valid transfer of a newer term than any in the input and
// the first chunk of another, stops the receiver and checks what it left
// and reported.
func (h *snapHarness) finish() {
	t := h.t
	t.Helper()
	sum := sha256.Sum256(h.ref)
	half := len(h.ref) / 2
	for i, part := range [][]byte{h.ref[:half], h.ref[half:], h.ref[:half]} {
		term := uint64(1000 + i/2)
		c := &messages.SnapshotChunk{Leader: 1, Term: term, TransferId: term, Meta: &messages.SnapshotMeta{Index: refIndex, Term: term},
			Offset: uint64(i % 2 * half), Data: part, Last: i == 1}
		if c.Last {
			c.Sha256 = sum[:]
		}
		if ack := h.step(c); ack.Rejected {
			t.Fatalf("after the input a valid chunk %s was rejected: %s", describe(c), ack.Reason)
		}
	}
	h.cur = nil // stopping the receiver ends the transfer in progress
	if err := h.root.StopFuture(h.receiver).Wait(); err != nil {
		t.Fatalf("stop the receiver: %v", err)
	}
	select {
	case reason := <-h.failures:
		t.Fatal(reason)
	default:
	}
	h.checkDir()
	for name, want := range h.verified {
		if got, err := os.ReadFile(filepath.Join(h.dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s changed after it was verified: %d bytes, %v", name, len(got), err)
		}
	}
	if _, err := h.root.RequestFuture(h.raft, &messages.Flush{}, 10*time.Second).Result(); err != nil {
		t.Fatalf("flush the raft probe: %v", err)
	}
	for i, want := range h.reported {
		select {
		case got := <-h.received:
			if got.Leader != want.Leader || got.Term != want.Term || !proto.Equal(got.Meta, want.Meta) || !slices.Equal(got.Removed, want.Removed) {
				t.Fatalf("raft node told %v, want %v", got, want)
			}
		default:
			t.Fatalf("raft node told of %d snapshots, want %d", i, len(h.reported))
		}
	}
	if len(h.received) > 0 {
		t.Fatalf("raft node told of a snapshot it should not have: %v", <-h.received)
	}
	if len(h.acks) > 0 {
		t.Fatalf("an acknowledgement too many: %v", <-h.acks)
	}
}

func describe(c *messages.SnapshotChunk) string {
	return fmt.Sprintf("{leader %d term %d transfer %d index %d offset %d, %d bytes, last %v}",
		c.Leader, c.Term, c.TransferId, c.GetMeta().GetIndex(), c.Offset, len(c.Data), c.Last)
}
