package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func testConfig(id uint64, voters []uint64) Config {
	return Config{
		ID: id, Voters: voters, ElectionTicks: 10, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(id, 0x5eed)),
	}
}

func ents(terms ...uint64) []*messages.Entry {
	out := make([]*messages.Entry, len(terms))
	for i, t := range terms {
		out[i] = &messages.Entry{Index: uint64(i + 1), Term: t, Data: fmt.Appendf(nil, "e%d/t%d", i+1, t)}
	}
	return out
}

// write is one Ready's durable part, queued until the test persists it.
type write struct {
	snap *messages.SnapshotMeta
	ents []*messages.Entry
	hs   *messages.HardState
}

// testNode is a Core with an in-memory WAL and state machine: the smallest
// correct host. With manual set, Ready writes queue in pending until
// persist is called; otherwise they are durable at once.
type testNode struct {
	t testing.TB
	*Core

	// durable WAL contents
	hs   *messages.HardState
	snap *messages.SnapshotMeta
	wal  []*messages.Entry

	manual  bool
	pending []write

	out     []*messages.RaftMessage
	applied []*messages.Entry
	reads   []ReadState
	softs   []SoftState
}

func newTestNode(t testing.TB, cfg Config, rs RestoreState) *testNode {
	t.Helper()
	c, err := New(cfg, rs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n := &testNode{t: t, Core: c, hs: rs.HardState, snap: rs.Snapshot, wal: slices.Clone(rs.Entries)}
	return n
}

// handle drains every Ready (and, unless manual, persists it at once).
func (n *testNode) handle() {
	for i := 0; ; i++ {
		if i > 1000 {
			n.t.Fatalf("node %d: Ready never drained", n.id)
		}
		if !n.HasReady() {
			if n.manual || len(n.pending) == 0 {
				return
			}
			n.persist(len(n.pending))
			continue
		}
		rd := n.Ready()
		if rd.SoftState != nil {
			n.softs = append(n.softs, *rd.SoftState)
		}
		if rd.Snapshot != nil || len(rd.Entries) > 0 || rd.HardState != nil {
			n.pending = append(n.pending, write{snap: rd.Snapshot, ents: rd.Entries, hs: rd.HardState})
		}
		n.out = append(n.out, rd.Messages...)
		n.reads = append(n.reads, rd.ReadStates...)
		n.Advance(rd)
		if k := len(rd.CommittedEntries); k > 0 {
			n.applied = append(n.applied, rd.CommittedEntries...)
			n.Applied(rd.CommittedEntries[k-1].Index)
		}
		if rd.Snapshot != nil {
			n.Applied(rd.Snapshot.Index)
		}
	}
}

// persist makes the first k pending writes durable and reports them.
func (n *testNode) persist(k int) {
	var lastIdx, lastTerm uint64
	var lastHS *messages.HardState
	for _, w := range n.pending[:k] {
		if w.snap != nil {
			n.snap, n.wal = w.snap, nil
			lastIdx, lastTerm = w.snap.Index, w.snap.Term
		}
		if len(w.ents) > 0 {
			first := w.ents[0].Index
			n.wal = slices.DeleteFunc(n.wal, func(e *messages.Entry) bool { return e.Index >= first })
			n.wal = append(n.wal, w.ents...)
			last := w.ents[len(w.ents)-1]
			lastIdx, lastTerm = last.Index, last.Term
		}
		if w.hs != nil {
			n.hs, lastHS = w.hs, w.hs
		}
	}
	n.pending = n.pending[k:]
	if lastIdx > 0 {
		n.Persisted(lastIdx, lastTerm)
	}
	if lastHS != nil {
		n.PersistedHardState(lastHS)
	}
}

// take returns and forgets the messages sent so far.
func (n *testNode) take() []*messages.RaftMessage {
	n.handle()
	out := n.out
	n.out = nil
	return out
}

func (n *testNode) step(m *messages.RaftMessage) {
	n.t.Helper()
	if err := n.Step(m); err != nil {
		n.t.Fatalf("node %d: Step(%v): %v", n.id, m, err)
	}
	n.handle()
}

func (n *testNode) tick(k int) {
	for range k {
		n.Tick()
		n.handle()
	}
}

func (n *testNode) restoreState() RestoreState {
	return RestoreState{HardState: n.hs, Snapshot: n.snap, Entries: slices.Clone(n.wal)}
}

func filter(ms []*messages.RaftMessage, t messages.RaftMessageType) []*messages.RaftMessage {
	var out []*messages.RaftMessage
	for _, m := range ms {
		if m.Type == t {
			out = append(out, m)
		}
	}
	return out
}

// network connects testNodes with synchronous, ordered delivery that can
// cut links and drop message types (in the style of etcd raft's tests).
type network struct {
	t     testing.TB
	nodes map[uint64]*testNode
	ids   []uint64
	cut   map[[2]uint64]bool
	drop  map[messages.RaftMessageType]bool
}

func newNetwork(t testing.TB, n int, tweak func(*Config)) *network {
	nw := &network{t: t, nodes: map[uint64]*testNode{}, ids: ids(n), cut: map[[2]uint64]bool{}, drop: map[messages.RaftMessageType]bool{}}
	for _, id := range nw.ids {
		cfg := testConfig(id, nw.ids)
		if tweak != nil {
			tweak(&cfg)
		}
		nw.nodes[id] = newTestNode(t, cfg, RestoreState{})
	}
	return nw
}

func (nw *network) isolate(id uint64) {
	for _, o := range nw.ids {
		if o != id {
			nw.cut[[2]uint64{id, o}] = true
			nw.cut[[2]uint64{o, id}] = true
		}
	}
}

func (nw *network) heal() {
	clear(nw.cut)
	clear(nw.drop)
}

// stabilize delivers messages until none are left.
func (nw *network) stabilize() {
	nw.t.Helper()
	for round := 0; ; round++ {
		if round > 10000 {
			nw.t.Fatal("network never quiesced")
		}
		var msgs []*messages.RaftMessage
		for _, id := range nw.ids {
			msgs = append(msgs, nw.nodes[id].take()...)
		}
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if nw.cut[[2]uint64{m.From, m.To}] || nw.drop[m.Type] || nw.nodes[m.To] == nil {
				continue
			}
			nw.nodes[m.To].step(proto.Clone(m).(*messages.RaftMessage))
		}
	}
}

// elect makes id the leader through a normal (non-pre-vote) campaign.
func (nw *network) elect(id uint64) {
	nw.t.Helper()
	nw.nodes[id].Campaign()
	nw.stabilize()
	if r := nw.nodes[id].Role(); r != RoleLeader {
		nw.t.Fatalf("node %d is %v after campaigning, want leader", id, r)
	}
}

func (nw *network) propose(id uint64, data ...string) {
	nw.t.Helper()
	bs := make([][]byte, len(data))
	for i, d := range data {
		bs[i] = []byte(d)
	}
	if err := nw.nodes[id].Propose(bs...); err != nil {
		nw.t.Fatalf("Propose on %d: %v", id, err)
	}
	nw.stabilize()
}

func termsOf(es []*messages.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Term
	}
	return out
}
