package raft

// A deterministic simulation of whole clusters (in the spirit of
// TigerBeetle's VOPR and FoundationDB's simulator): N cores on a network
// that drops, delays, reorders and duplicates messages and partitions
// members, with WALs that fsync late and members that crash (losing every
// write not yet durable, sometimes keeping a torn part of it) and restart
// from what survived. Half the seeds also change the membership: the
// leader is asked to add spare members as learners or voters, promote
// learners and remove members (itself included). After every event the
// safety properties of Raft (Figure 3) are checked, and that every member's
// configuration is the one its applied log prescribes; after healing, the
// final configuration must elect a leader and commit. Every run is a
// function of its seed; a failure prints it.
//
//	go test ./cluster/raft -run TestSimulation -raft.seeds=5000 [-raft.steps=20000]
//	go test ./cluster/raft -run TestSimulation -raft.seed=1234 -raft.trace

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

var (
	flagSimSeeds    = flag.Int("raft.seeds", 0, "number of simulation seeds to run (default 3000, 40 with -short)")
	flagSimSeed     = flag.Int64("raft.seed", 0, "run only this simulation seed")
	flagSimTrace    = flag.Bool("raft.trace", false, "print the simulation's events (with -raft.seed)")
	flagSimSteps    = flag.Int("raft.steps", 4000, "events per simulation before healing")
	flagSimTwoToOne = flag.Bool("raft.twotoone", false, "let conf changes remove a voter from two voters (liveness may fail, see confChange)")
)

func TestSimulation(t *testing.T) {
	if *flagSimSeed != 0 {
		runSimulation(t, uint64(*flagSimSeed))
		return
	}
	n := *flagSimSeeds
	if n == 0 {
		n = 3000
		if testing.Short() {
			n = 40
		}
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runSimulation(t, seed)
		})
	}
}

type simParams struct {
	members         int
	preVote         bool
	checkQuorum     bool
	electionTicks   int
	heartbeatTicks  int
	maxInflight     int
	maxSizePerMsg   uint64
	maxCommitted    uint64
	dropPct, dupPct int // per delivered message
	reorderPct      int // chance a delivery picks a random message, not the oldest
	safetySteps     int
	// spares are members outside the initial configuration that conf
	// changes may add; membership changes happen only if spares > 0.
	spares int
}

type committedEntry struct {
	term       uint64
	typ        messages.EntryType
	data       []byte
	commitTerm uint64 // term of the member that first reported it committed
}

type entryRecord struct {
	typ      messages.EntryType
	data     []byte
	prevTerm uint64
}

// confPoint is the configuration after the committed conf change entry at
// index, and every member removed through it.
type confPoint struct {
	index   uint64
	conf    *messages.ConfState
	removed []uint64
}

type simNode struct {
	id   uint64
	cfg  Config
	core *Core // nil while crashed

	// WAL: durable, and handed out but not yet durable
	hs      *messages.HardState
	snap    *messages.SnapshotMeta
	wal     []*messages.Entry
	pending []write

	// state machine: applied entries, applied[i] has index i+1
	applied []*messages.Entry
	// conf is the configuration as of confIndex, the last entry or
	// snapshot handed out for applying: what the host's membership is.
	conf      *messages.ConfState
	confIndex uint64
	// role and roleTerm were last seen by checkRole.
	role     Role
	roleTerm uint64

	// incremental check cursors
	commitChecked  uint64
	durableChecked uint64
	lcTerm         uint64
	lcChecked      uint64
}

type simulation struct {
	t     testing.TB
	seed  uint64
	rng   *rand.Rand
	p     simParams
	nodes []*simNode
	net   []*messages.RaftMessage
	cut   map[[2]uint64]bool
	step  int

	leaders   map[uint64]uint64 // term -> leader
	records   map[[2]uint64]entryRecord
	committed []committedEntry // committed[i] has index i+1
	// initial is the configuration before the first entry; confPoints
	// follow it, one per committed conf change entry, in index order.
	initial    *messages.ConfState
	confPoints []confPoint
	// neverAdd: members whose removal a leader accepted; their IDs are
	// never added again.
	neverAdd  map[uint64]bool
	proposals int
	reads     int
	// statistics, shown with -v
	readsAnswered, crashes, snapshots int
	confProposed                      int
	confRefused                       map[string]int // ProposeConfChange error -> count
	// readsIssued: ctx -> the least index a linearizable answer may carry
	readsIssued map[string]uint64
	trace       bool
}

func runSimulation(t testing.TB, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xa37cd))
	p := simParams{
		members:        []int{3, 3, 5, 5, 4, 1}[rng.IntN(6)],
		preVote:        rng.IntN(3) > 0,
		checkQuorum:    rng.IntN(3) > 0,
		electionTicks:  3 + rng.IntN(8),
		heartbeatTicks: 1 + rng.IntN(2),
		maxInflight:    []int{1, 2, 4, 256}[rng.IntN(4)],
		maxSizePerMsg:  []uint64{1, 100, 1 << 20}[rng.IntN(3)],
		maxCommitted:   []uint64{0, 1, 200}[rng.IntN(3)],
		dropPct:        []int{0, 2, 10, 25}[rng.IntN(4)],
		dupPct:         []int{0, 2, 10}[rng.IntN(3)],
		reorderPct:     []int{0, 10, 50}[rng.IntN(3)],
		safetySteps:    *flagSimSteps,
	}
	if rng.IntN(2) == 0 {
		p.spares = 1 + rng.IntN(3)
	}
	voters := ids(p.members)
	s := &simulation{
		t: t, seed: seed, rng: rng, p: p,
		cut:         map[[2]uint64]bool{},
		leaders:     map[uint64]uint64{},
		records:     map[[2]uint64]entryRecord{},
		readsIssued: map[string]uint64{},
		initial:     &messages.ConfState{Voters: voters},
		neverAdd:    map[uint64]bool{},
		confRefused: map[string]int{},
		trace:       *flagSimTrace,
	}
	for _, id := range ids(p.members + p.spares) {
		n := &simNode{id: id}
		// A spare joins knowing the configuration before the first entry
		// (the log here does not start with conf changes): it rebuilds the
		// configuration by applying the log from index 1, or takes a
		// snapshot's.
		n.cfg = Config{
			ID: id, Voters: voters,
			ElectionTicks: p.electionTicks, HeartbeatTicks: p.heartbeatTicks,
			Rand:    rand.New(rand.NewPCG(seed, id)),
			PreVote: p.preVote, CheckQuorum: p.checkQuorum,
			MaxInflightMsgs: p.maxInflight, MaxSizePerMsg: p.maxSizePerMsg,
			MaxCommittedSizePerReady: p.maxCommitted,
		}
		s.nodes = append(s.nodes, n)
		s.start(n)
	}
	s.logf("params %+v", p)
	s.safetyPhase()
	s.livenessPhase()
	if testing.Verbose() {
		t.Logf("seed %d: %d members + %d spares, %d terms with a leader, %d entries committed, %d proposed, %d reads answered of %d, %d crashes, %d snapshots, %d conf changes proposed (refused %v), %d committed, final %v",
			seed, p.members, p.spares, len(s.leaders), len(s.committed), s.proposals, s.readsAnswered, s.reads, s.crashes, s.snapshots,
			s.confProposed, s.confRefused, len(s.confPoints), s.confAt(uint64(len(s.committed))))
	}
}

func (s *simulation) fail(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.t.Fatalf("seed %d, step %d: %s\nparams: %+v\nreplay: go test ./cluster/raft -run 'TestSimulation' -raft.seed=%d -raft.trace -v",
		s.seed, s.step, msg, s.p, s.seed)
}

func (s *simulation) logf(format string, args ...any) {
	if s.trace {
		s.t.Logf("%5d "+format, append([]any{s.step}, args...)...)
	}
}

// guard runs f and turns a panic inside the core into a failure with the seed.
func (s *simulation) guard(n *simNode, what string, f func()) {
	s.t.Helper()
	defer func() {
		if r := recover(); r != nil {
			s.fail("node %d panicked in %s: %v", n.id, what, r)
		}
	}()
	f()
}

func (s *simulation) start(n *simNode) {
	rs := RestoreState{HardState: n.hs, Snapshot: n.snap, Entries: slices.Clone(n.wal), Applied: uint64(len(n.applied))}
	c, err := New(n.cfg, rs)
	if err != nil {
		s.fail("restart of %d: %v", n.id, err)
	}
	n.core = c
	n.commitChecked, n.durableChecked, n.lcTerm, n.lcChecked = 0, 0, 0, 0
	// The host's membership is its state machine's.
	n.confIndex = uint64(len(n.applied))
	n.conf = s.confAt(n.confIndex)
	n.role, n.roleTerm = RoleFollower, 0
	s.handle(n)
}

// --- safety phase ---

// Simulated events. Each seed draws its own mix so that runs range from
// calm to hostile (frequent crashes, partitions, slow disks).
const (
	evDeliver = iota
	evTick
	evPersist
	evPropose
	evRead
	evCrash
	evRestart
	evPartition
	evHeal
	evTransfer
	evCompact
	evConfChange
	numEvents
)

var eventWeightRange = [numEvents][2]int{
	evDeliver:   {200, 600},
	evTick:      {100, 300},
	evPersist:   {40, 250},
	evPropose:   {30, 120},
	evRead:      {10, 50},
	evCrash:     {0, 15},
	evRestart:   {10, 60},
	evPartition: {0, 30},
	evHeal:      {5, 30},
	evTransfer:  {0, 15},
	evCompact:   {0, 15},
	// evConfChange is drawn only in seeds with spares.
	evConfChange: {2, 30},
}

func (s *simulation) safetyPhase() {
	var cumulative [numEvents]int
	total := 0
	for ev, r := range eventWeightRange {
		if ev != evConfChange || s.p.spares > 0 {
			total += r[0] + s.rng.IntN(r[1]-r[0]+1)
		}
		cumulative[ev] = total
	}
	s.logf("event weights (cumulative) %v", cumulative)
	for s.step = 0; s.step < s.p.safetySteps; s.step++ {
		if s.step%250 == 0 {
			s.checkLogsMatch()
		}
		r := s.rng.IntN(total)
		ev := 0
		for cumulative[ev] <= r {
			ev++
		}
		switch ev {
		case evDeliver:
			s.deliver(s.p.dropPct, s.p.dupPct, s.p.reorderPct)
		case evTick:
			if n := s.randomUp(); n != nil {
				s.logf("tick %d", n.id)
				s.guard(n, "Tick", n.core.Tick)
				s.handle(n)
			}
		case evPersist:
			if n := s.randomUp(); n != nil && len(n.pending) > 0 {
				s.persist(n, 1+s.rng.IntN(len(n.pending)))
			}
		case evPropose:
			s.propose()
		case evRead:
			s.readIndex()
		case evCrash:
			s.crash()
		case evRestart:
			s.restart()
		case evPartition:
			s.partition()
		case evHeal:
			s.logf("heal")
			clear(s.cut)
		case evTransfer:
			s.transfer()
		case evCompact:
			s.compact()
		case evConfChange:
			s.confChange()
		}
	}
}

func (s *simulation) randomUp() *simNode {
	var up []*simNode
	for _, n := range s.nodes {
		if n.core != nil {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[s.rng.IntN(len(up))]
}

func (s *simulation) deliver(dropPct, dupPct, reorderPct int) {
	if len(s.net) == 0 {
		return
	}
	i := 0
	if s.rng.IntN(100) < reorderPct {
		i = s.rng.IntN(len(s.net))
	}
	m := s.net[i]
	if s.rng.IntN(100) < dupPct {
		s.net = append(s.net, m) // delivered again later
	}
	s.net = slices.Delete(s.net, i, i+1)
	to, from := s.nodes[m.To-1], s.nodes[m.From-1]
	lost := s.cut[[2]uint64{m.From, m.To}] || to.core == nil || s.rng.IntN(100) < dropPct ||
		s.hostRemoved(to, m.From)
	if m.Type == msgSnap && from.core != nil {
		// The host reports how sending a snapshot ended.
		s.guard(from, "ReportSnapshot", func() { from.core.ReportSnapshot(m.To, lost) })
		s.handle(from)
	}
	if lost {
		s.logf("drop %v", m)
		if from.core != nil && s.rng.IntN(5) == 0 {
			// Sometimes the transport notices and says so.
			s.guard(from, "ReportUnreachable", func() { from.core.ReportUnreachable(m.To) })
			s.handle(from)
		}
		return
	}
	s.logf("deliver %v", m)
	m = proto.Clone(m).(*messages.RaftMessage)
	s.guard(to, "Step", func() {
		if err := to.core.Step(m); err != nil {
			s.fail("node %d: Step(%v): %v", to.id, m, err)
		}
	})
	s.handle(to)
}

// persist makes the first k pending writes of n durable and reports them,
// as a WAL writer does after one fdatasync.
func (s *simulation) persist(n *simNode, k int) {
	var lastIdx, lastTerm uint64
	var lastHS *messages.HardState
	installed := false
	for _, w := range n.pending[:k] {
		if w.snap != nil {
			n.snap, n.wal = w.snap, nil
			lastIdx, lastTerm = w.snap.Index, w.snap.Term
			// Installed in the state machine only once durable, so the
			// state machine is never ahead of the WAL.
			n.applied = s.snapshotState(w.snap.Index)
			installed = true
			s.snapshots++
		}
		if len(w.ents) > 0 {
			n.writeEntries(w.ents)
			last := w.ents[len(w.ents)-1]
			lastIdx, lastTerm = last.Index, last.Term
		}
		if w.hs != nil {
			n.hs, lastHS = w.hs, w.hs
		}
	}
	n.pending = slices.Delete(n.pending, 0, k)
	s.logf("persist %d: %d writes through (%d, %d), hs %v", n.id, k, lastIdx, lastTerm, lastHS)
	s.guard(n, "Persisted", func() {
		// Either order is allowed; vary it.
		if s.rng.IntN(2) == 0 {
			if lastIdx > 0 {
				n.core.Persisted(lastIdx, lastTerm)
			}
			n.core.PersistedHardState(lastHS)
		} else {
			n.core.PersistedHardState(lastHS)
			if lastIdx > 0 {
				n.core.Persisted(lastIdx, lastTerm)
			}
		}
		if installed {
			n.core.Applied(uint64(len(n.applied)))
		}
	})
	s.handle(n)
}

func (n *simNode) writeEntries(es []*messages.Entry) {
	first := es[0].Index
	n.wal = slices.DeleteFunc(n.wal, func(e *messages.Entry) bool { return e.Index >= first })
	n.wal = append(n.wal, es...)
}

func (s *simulation) propose() {
	n := s.randomUp()
	if n == nil || n.core.Role() != RoleLeader {
		return
	}
	k := 1 + s.rng.IntN(3)
	data := make([][]byte, k)
	for i := range data {
		s.proposals++
		data[i] = fmt.Appendf(nil, "p%d", s.proposals)
	}
	var err error
	s.guard(n, "Propose", func() { err = n.core.Propose(data...) })
	s.logf("propose %d x%d: %v", n.id, k, err)
	if err != nil && err != ErrProposalDropped {
		s.fail("Propose on leader %d: %v", n.id, err)
	}
	s.handle(n)
}

func (s *simulation) readIndex() {
	n := s.randomUp()
	if n == nil {
		return
	}
	s.reads++
	ctx := fmt.Sprintf("r%d", s.reads)
	var err error
	s.guard(n, "ReadIndex", func() { err = n.core.ReadIndex([]byte(ctx)) })
	s.logf("read %d %s: %v", n.id, ctx, err)
	if err == nil {
		// A linearizable read must observe everything committed so far.
		s.readsIssued[ctx] = uint64(len(s.committed))
	} else if err != ErrNoLeader {
		s.fail("ReadIndex on %d: %v", n.id, err)
	}
	s.handle(n)
}

func (s *simulation) crash() {
	down := 0
	for _, n := range s.nodes {
		if n.core == nil {
			down++
		}
	}
	if down >= (len(s.nodes)-1)/2 && len(s.nodes) > 1 {
		return
	}
	n := s.randomUp()
	if n == nil {
		return
	}
	// Half the time prefer a leader or candidate: their crashes are the
	// interesting ones.
	if s.rng.IntN(2) == 0 {
		for _, o := range s.nodes {
			if o.core != nil && (o.core.Role() == RoleLeader || o.core.Role() == RoleCandidate) {
				n = o
				break
			}
		}
	}
	// Writes handed to the WAL but not reported may survive in part; the
	// last surviving one may be torn after its entries (entries are written
	// before the hard state).
	survive := 0
	if len(n.pending) > 0 && s.rng.IntN(2) == 0 {
		survive = s.rng.IntN(len(n.pending) + 1)
	}
	for i, w := range n.pending[:survive] {
		if w.snap != nil {
			n.snap, n.wal = w.snap, nil
		}
		if len(w.ents) > 0 {
			n.writeEntries(w.ents)
		}
		if w.hs != nil && !(i == survive-1 && s.rng.IntN(2) == 0) {
			n.hs = w.hs
		}
	}
	n.pending = nil
	n.core = nil
	s.crashes++
	if s.rng.IntN(2) == 0 {
		// The state machine lost its state too and replays from the log.
		n.applied = nil
	}
	if n.snap != nil && uint64(len(n.applied)) < n.snap.Index {
		n.applied = s.snapshotState(n.snap.Index)
	}
	s.logf("crash %d (%d writes survive, applied %d)", n.id, survive, len(n.applied))
}

func (s *simulation) restart() {
	for _, n := range s.nodes {
		if n.core == nil {
			s.logf("restart %d", n.id)
			s.start(n)
			return
		}
	}
}

func (s *simulation) partition() {
	clear(s.cut)
	side := map[uint64]bool{}
	for _, n := range s.nodes {
		side[n.id] = s.rng.IntN(2) == 0
	}
	oneWay := s.rng.IntN(4) == 0
	for _, a := range s.nodes {
		for _, b := range s.nodes {
			if side[a.id] != side[b.id] && (!oneWay || side[a.id]) {
				s.cut[[2]uint64{a.id, b.id}] = true
			}
		}
	}
	s.logf("partition %v one-way=%v", side, oneWay)
}

func (s *simulation) transfer() {
	n := s.randomUp()
	if n == nil || n.core.Role() != RoleLeader || len(s.nodes) == 1 {
		return
	}
	to := uint64(1 + s.rng.IntN(len(s.nodes)))
	s.logf("transfer %d -> %d", n.id, to)
	voter := slices.Contains(n.core.ConfState().Voters, to)
	s.guard(n, "TransferLeader", func() {
		if err := n.core.TransferLeader(to); err != nil && (voter || err != ErrUnknownPeer) {
			s.fail("TransferLeader(%d): %v", to, err)
		}
	})
	s.handle(n)
}

func (s *simulation) compact() {
	n := s.randomUp()
	if n == nil {
		return
	}
	l := &n.core.log
	to := min(l.applied, l.persisted)
	if to <= l.snapIndex {
		return
	}
	to = l.snapIndex + 1 + s.rng.Uint64N(to-l.snapIndex)
	term := l.mustTerm(to)
	s.guard(n, "Compact", func() {
		if err := n.core.Compact(to); err != nil {
			s.fail("Compact(%d) on %d: %v", to, n.id, err)
		}
	})
	// The host writes a snapshot of its state machine covering `to` and
	// drops the WAL's older entries.
	n.snap = &messages.SnapshotMeta{Index: to, Term: term, ConfState: s.confAt(to)}
	n.wal = slices.DeleteFunc(n.wal, func(e *messages.Entry) bool { return e.Index <= to })
	s.logf("compact %d through %d", n.id, to)
	s.handle(n)
}

// snapshotState is the state machine as of index, from the committed record.
func (s *simulation) snapshotState(index uint64) []*messages.Entry {
	if index > uint64(len(s.committed)) {
		s.fail("snapshot at %d covers uncommitted entries (committed %d)", index, len(s.committed))
	}
	out := make([]*messages.Entry, index)
	for i := range out {
		c := s.committed[i]
		out[i] = &messages.Entry{Index: uint64(i + 1), Term: c.term, Type: c.typ, Data: c.data}
	}
	return out
}

// confChange asks a leader for a random membership change: add a spare as
// learner or voter, promote a learner, remove a voter (sometimes the
// leader itself; the last voter too, which must be refused) or a learner,
// or update a member. Refusals are counted; whether the change is valid
// must match the model (simConfChange).
//
// Without -raft.twotoone no voter is removed from two voters: until the
// remaining voter learns that the removal committed, it still needs the
// removed member's vote, and the removed member (no longer a voter: it
// never campaigns) refuses it when its log is longer, e.g. after it led,
// committed the removal and crashed, or after the leader that removed it
// lost its unsynced tail and commit index in a crash. No leader can then
// ever be elected. This is inherent in configurations taking effect when
// applied (etcd warns against shrinking two members to one likewise); the
// liveness phase would report it.
func (s *simulation) confChange() {
	var leaders []*simNode
	for _, n := range s.nodes {
		if n.core != nil && n.core.Role() == RoleLeader {
			leaders = append(leaders, n)
		}
	}
	if len(leaders) == 0 {
		return
	}
	l := leaders[s.rng.IntN(len(leaders))]
	cs := l.core.ConfState()
	var spares, others []uint64
	for _, n := range s.nodes {
		if !slices.Contains(cs.Voters, n.id) && !slices.Contains(cs.Learners, n.id) && !s.neverAdd[n.id] {
			spares = append(spares, n.id)
		}
		if n.id != l.id && slices.Contains(cs.Voters, n.id) {
			others = append(others, n.id)
		}
	}
	pick := func(ids []uint64) uint64 {
		if len(ids) == 0 {
			return 0
		}
		return ids[s.rng.IntN(len(ids))]
	}
	cc := &messages.ConfChange{Context: fmt.Appendf(nil, "cc%d", s.confProposed)}
	switch k := s.rng.IntN(20); {
	case k < 6:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_ADD_LEARNER_NODE, pick(spares)
	case k < 10:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_ADD_NODE, pick(cs.Learners)
	case k < 12:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_ADD_NODE, pick(spares)
	case k < 15:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_REMOVE_NODE, pick(others)
	case k < 16:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_REMOVE_NODE, l.id
	case k < 18:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_REMOVE_NODE, pick(cs.Learners)
	default:
		cc.Type, cc.NodeId = messages.ConfChangeType_CONF_UPDATE_NODE, pick(slices.Concat(cs.Voters, cs.Learners))
	}
	if cc.NodeId == 0 {
		return
	}
	if cc.Type == messages.ConfChangeType_CONF_REMOVE_NODE && len(cs.Voters) == 2 &&
		slices.Contains(cs.Voters, cc.NodeId) && !*flagSimTwoToOne {
		return
	}
	_, valid := simConfChange(cs, cc)
	var err error
	s.guard(l, "ProposeConfChange", func() { err = l.core.ProposeConfChange(cc) })
	s.logf("conf change on %d: %v %d: %v", l.id, cc.Type, cc.NodeId, err)
	switch {
	case err == nil && !valid:
		s.fail("leader %d accepted %v %d, invalid in its configuration %v", l.id, cc.Type, cc.NodeId, cs)
	case err == nil:
		s.confProposed++
		if cc.Type == messages.ConfChangeType_CONF_REMOVE_NODE {
			s.neverAdd[cc.NodeId] = true
		}
	case errors.Is(err, ErrInvalidConfChange) && valid:
		s.fail("leader %d refused %v %d, valid in its configuration %v: %v", l.id, cc.Type, cc.NodeId, cs, err)
	case errors.Is(err, ErrInvalidConfChange):
		s.confRefused["invalid"]++
	case errors.Is(err, ErrPendingConfChange):
		s.confRefused["pending"]++
	case errors.Is(err, ErrProposalDropped):
		s.confRefused["dropped"]++
	default:
		s.fail("ProposeConfChange(%v %d) on leader %d: %v", cc.Type, cc.NodeId, l.id, err)
	}
	s.handle(l)
}

// simConfChange is the model of a single-member change: cs changed by cc,
// and whether cc applies to cs at all (a change that does not leaves the
// configuration as it is, on every member alike).
func simConfChange(cs *messages.ConfState, cc *messages.ConfChange) (*messages.ConfState, bool) {
	id := cc.GetNodeId()
	voter, learner := slices.Contains(cs.Voters, id), slices.Contains(cs.Learners, id)
	without := func(ids []uint64) []uint64 {
		return slices.DeleteFunc(slices.Clone(ids), func(v uint64) bool { return v == id })
	}
	with := func(ids []uint64) []uint64 {
		out := append(slices.Clone(ids), id)
		slices.Sort(out)
		return out
	}
	switch t := cc.GetType(); {
	case id == 0:
	case t == messages.ConfChangeType_CONF_ADD_NODE && !voter:
		return &messages.ConfState{Voters: with(cs.Voters), Learners: without(cs.Learners)}, true
	case t == messages.ConfChangeType_CONF_ADD_LEARNER_NODE && !voter && !learner:
		return &messages.ConfState{Voters: slices.Clone(cs.Voters), Learners: with(cs.Learners)}, true
	case t == messages.ConfChangeType_CONF_REMOVE_NODE && (learner || voter && len(cs.Voters) > 1):
		return &messages.ConfState{Voters: without(cs.Voters), Learners: without(cs.Learners)}, true
	case t == messages.ConfChangeType_CONF_UPDATE_NODE && (voter || learner):
		return cs, true
	}
	return cs, false
}

func confEqual(a, b *messages.ConfState) bool {
	return slices.Equal(a.GetVoters(), b.GetVoters()) && slices.Equal(a.GetLearners(), b.GetLearners())
}

// confPointAt returns the last conf point at or below committed index i,
// or nil if there is none.
func (s *simulation) confPointAt(i uint64) *confPoint {
	if i > uint64(len(s.committed)) {
		s.fail("configuration asked for at %d, beyond everything committed (%d)", i, len(s.committed))
	}
	j, _ := slices.BinarySearchFunc(s.confPoints, i+1, func(p confPoint, t uint64) int { return cmp.Compare(p.index, t) })
	if j == 0 {
		return nil
	}
	return &s.confPoints[j-1]
}

// confAt returns the configuration as of committed index i (shared: do not
// modify).
func (s *simulation) confAt(i uint64) *messages.ConfState {
	if p := s.confPointAt(i); p != nil {
		return p.conf
	}
	return s.initial
}

// hostRemoved reports whether n's host knows id to be removed (from what it
// has applied): it then neither sends to id nor accepts id's messages.
func (s *simulation) hostRemoved(n *simNode, id uint64) bool {
	p := s.confPointAt(n.confIndex)
	return p != nil && slices.Contains(p.removed, id)
}

// --- the host side of one member, with the checks ---

func (s *simulation) handle(n *simNode) {
	s.t.Helper()
	if n.core == nil {
		return
	}
	s.checkRole(n, true)
	for i := 0; n.core.HasReady(); i++ {
		if i > 100000 {
			s.fail("node %d: Ready never drained", n.id)
		}
		s.checkCommitted(n)
		var rd Ready
		s.guard(n, "Ready", func() { rd = n.core.Ready() })
		s.checkNewEntries(n, rd.Entries)
		if rd.Snapshot != nil || len(rd.Entries) > 0 || rd.HardState != nil {
			n.pending = append(n.pending, write{snap: rd.Snapshot, ents: rd.Entries, hs: rd.HardState})
		}
		for _, m := range rd.Messages {
			if m.From != n.id || m.To == n.id || m.To == 0 || m.To > uint64(len(s.nodes)) {
				s.fail("node %d sent a misaddressed message %v", n.id, m)
			}
			if s.hostRemoved(n, m.To) {
				s.logf("host %d drops %v to a removed member", n.id, m)
				continue
			}
			s.net = append(s.net, m)
		}
		if rd.Snapshot != nil {
			s.installConf(n, rd.Snapshot)
		}
		for _, e := range rd.CommittedEntries {
			s.apply(n, e)
		}
		for _, rs := range rd.ReadStates {
			s.checkRead(n, rs)
		}
		s.guard(n, "Advance", func() {
			n.core.Advance(rd)
			if len(rd.CommittedEntries) > 0 {
				n.core.Applied(uint64(len(n.applied)))
			}
		})
		if rd.Snapshot != nil || len(rd.CommittedEntries) > 0 {
			s.checkConf(n)
		}
	}
	s.checkCommitted(n)
	s.checkConf(n)
	s.checkRole(n, false)
	s.checkLeader(n)
	s.checkDurable(n)
}

// installConf makes a snapshot's configuration the host's, checking that
// it is the configuration as of the snapshot's index.
func (s *simulation) installConf(n *simNode, snap *messages.SnapshotMeta) {
	if want := s.confAt(snap.Index); !confEqual(snap.ConfState, want) {
		s.fail("node %d got a snapshot at %d with configuration %v; the log gives %v", n.id, snap.Index, snap.ConfState, want)
	}
	n.conf, n.confIndex = snap.ConfState, snap.Index
}

// checkConf checks that n's configuration in effect is the one its host
// derived from the snapshot and conf change entries handed out for
// applying, and that this is the configuration every member has at that
// index.
func (s *simulation) checkConf(n *simNode) {
	if got := n.core.ConfState(); !confEqual(got, n.conf) {
		s.fail("node %d has configuration %v; what it handed out for applying (through %d) gives %v", n.id, got, n.confIndex, n.conf)
	}
	if want := s.confAt(n.confIndex); !confEqual(n.conf, want) {
		s.fail("node %d applied configuration %v at %d, the committed log gives %v", n.id, n.conf, n.confIndex, want)
	}
}

// checkDurable checks that what the core believes durable (its persisted
// index) is what the WAL holds.
func (s *simulation) checkDurable(n *simNode) {
	l := &n.core.log
	if l.persisted < n.durableChecked {
		n.durableChecked = l.persisted // truncated
	}
	for i := max(n.durableChecked, l.snapIndex) + 1; i <= l.persisted; i++ {
		e := l.entries[i-l.snapIndex-1]
		j := slices.IndexFunc(n.wal, func(w *messages.Entry) bool { return w.Index == i })
		if j < 0 || n.wal[j].Term != e.Term || !bytes.Equal(n.wal[j].Data, e.Data) {
			s.fail("node %d believes entry (%d, %d) durable (persisted %d), the WAL does not hold it", n.id, i, e.Term, l.persisted)
		}
	}
	n.durableChecked = l.persisted
}

// checkNewEntries records every entry a member hands out for persisting and
// checks the Log Matching Property: two entries with the same index and
// term hold the same command and follow the same previous term (which, by
// induction, makes the logs identical up to there).
func (s *simulation) checkNewEntries(n *simNode, es []*messages.Entry) {
	for i, e := range es {
		var prevTerm uint64
		if i > 0 {
			prevTerm = es[i-1].Term
		} else {
			t, ok := n.core.log.term(e.Index - 1)
			if !ok {
				s.fail("node %d hands out entry %d without its predecessor", n.id, e.Index)
			}
			prevTerm = t
		}
		key := [2]uint64{e.Index, e.Term}
		rec, seen := s.records[key]
		if !seen {
			s.records[key] = entryRecord{typ: e.Type, data: e.Data, prevTerm: prevTerm}
			continue
		}
		if rec.typ != e.Type || !bytes.Equal(rec.data, e.Data) || rec.prevTerm != prevTerm {
			s.fail("log matching: node %d has entry (%d, %d) = %q after term %d; seen before as %q after term %d",
				n.id, e.Index, e.Term, e.Data, prevTerm, rec.data, rec.prevTerm)
		}
	}
}

// checkCommitted extends the record of committed entries from n's commit
// index and checks that n agrees with every entry committed before.
func (s *simulation) checkCommitted(n *simNode) {
	l := &n.core.log
	from := max(n.commitChecked, l.snapIndex) + 1
	for i := from; i <= l.committed; i++ {
		e := l.entries[i-l.snapIndex-1]
		if i > uint64(len(s.committed)) {
			s.committed = append(s.committed, committedEntry{term: e.Term, typ: e.Type, data: e.Data, commitTerm: n.core.term})
			if e.Type == messages.EntryType_ENTRY_CONF_CHANGE {
				s.recordConfChange(e)
			}
			continue
		}
		c := s.committed[i-1]
		if c.term != e.Term || c.typ != e.Type || !bytes.Equal(c.data, e.Data) {
			s.fail("node %d committed (%d, %d) %q, but (%d, %d) %q was committed before",
				n.id, i, e.Term, e.Data, i, c.term, c.data)
		}
	}
	n.commitChecked = max(n.commitChecked, l.committed)
}

// recordConfChange adds the conf point of committed conf change entry e.
func (s *simulation) recordConfChange(e *messages.Entry) {
	cc := &messages.ConfChange{}
	if err := proto.Unmarshal(e.Data, cc); err != nil {
		s.fail("committed conf change entry %d: %v", e.Index, err)
	}
	prev := s.confAt(e.Index - 1)
	var removed []uint64
	if p := s.confPointAt(e.Index - 1); p != nil {
		removed = p.removed
	}
	conf, ok := simConfChange(prev, cc)
	if ok && cc.Type == messages.ConfChangeType_CONF_REMOVE_NODE {
		removed = append(slices.Clone(removed), cc.NodeId)
	}
	s.confPoints = append(s.confPoints, confPoint{index: e.Index, conf: conf, removed: removed})
	s.logf("committed at %d: %v %d (applies: %v) -> %v", e.Index, cc.Type, cc.NodeId, ok, conf)
}

// apply is the state machine: entries arrive once each, in order, and are
// the committed ones (State Machine Safety). Conf change entries change the
// host's membership.
func (s *simulation) apply(n *simNode, e *messages.Entry) {
	want := uint64(len(n.applied)) + 1
	if e.Index != want {
		s.fail("node %d applies entry %d, expected %d", n.id, e.Index, want)
	}
	if e.Index > uint64(len(s.committed)) {
		s.fail("node %d applies entry %d beyond everything committed (%d)", n.id, e.Index, len(s.committed))
	}
	if e.Index > n.core.log.persisted {
		s.fail("node %d applies entry %d that is not durable locally (persisted %d)", n.id, e.Index, n.core.log.persisted)
	}
	c := s.committed[e.Index-1]
	if c.term != e.Term || c.typ != e.Type || !bytes.Equal(c.data, e.Data) {
		s.fail("state machine safety: node %d applies (%d, %d) %q, committed is (%d, %d) %q",
			n.id, e.Index, e.Term, e.Data, e.Index, c.term, c.data)
	}
	n.applied = append(n.applied, e)
	n.confIndex = e.Index
	if e.Type == messages.EntryType_ENTRY_CONF_CHANGE {
		cc := &messages.ConfChange{}
		if err := proto.Unmarshal(e.Data, cc); err != nil {
			s.fail("node %d applies conf change entry %d: %v", n.id, e.Index, err)
		}
		n.conf, _ = simConfChange(n.conf, cc)
	}
}

func (s *simulation) checkRead(n *simNode, rs ReadState) {
	// Duplicated or late (after a crash) answers reach the host too; it
	// ignores those it no longer waits for, but each must still be valid.
	ctx := string(rs.Context)
	minIndex, ok := s.readsIssued[ctx]
	if !ok {
		s.fail("node %d got a read state %q nobody asked for", n.id, ctx)
	}
	s.readsAnswered++
	if rs.Index < minIndex {
		s.fail("linearizability: read %q answered at index %d, but %d was committed when it was issued", ctx, rs.Index, minIndex)
	}
}

// checkRole checks that members campaign and win elections only as voters
// of their own configuration, and that only a leader whose own removal it
// applied leads while not a voter (a leader steps down on its removal, or
// keeps leading without counting itself until the host stops it).
// Configurations change only at Advance (in handle), roles elsewhere: at
// the start of handle the configuration is the one the current role was
// taken in.
func (s *simulation) checkRole(n *simNode, atStart bool) {
	c := n.core
	role := c.Role()
	if role == RoleFollower {
		n.role, n.roleTerm = role, c.term
		return
	}
	voter := slices.Contains(n.conf.Voters, n.id)
	if atStart && (n.role != role || n.roleTerm != c.term) && !voter {
		s.fail("node %d became %v in term %d but is not a voter in its configuration %v", n.id, role, c.term, n.conf)
	}
	n.role, n.roleTerm = role, c.term
	if c.IsLearner() {
		s.fail("learner %d is %v in term %d", n.id, role, c.term)
	}
	if role == RoleLeader && !voter && !s.hostRemoved(n, n.id) {
		s.fail("node %d leads term %d, is not a voter in its configuration %v and was not removed", n.id, c.term, n.conf)
	}
}

// checkLeader checks Election Safety (at most one leader per term) and
// Leader Completeness (a leader holds every entry committed in an earlier
// term).
func (s *simulation) checkLeader(n *simNode) {
	c := n.core
	if c.Role() != RoleLeader {
		return
	}
	if other, ok := s.leaders[c.term]; ok && other != n.id {
		s.fail("election safety: %d and %d are both leaders of term %d", other, n.id, c.term)
	}
	s.leaders[c.term] = n.id
	if n.lcTerm != c.term {
		n.lcTerm, n.lcChecked = c.term, c.log.snapIndex
	}
	for i := n.lcChecked + 1; i <= uint64(len(s.committed)); i++ {
		e := s.committed[i-1]
		if e.commitTerm >= c.term {
			continue
		}
		t, ok := c.log.term(i)
		if !ok || t != e.term || !bytes.Equal(c.log.entries[i-c.log.snapIndex-1].Data, e.data) {
			s.fail("leader completeness: leader %d of term %d lacks entry %d (term %d) committed in term %d",
				n.id, c.term, i, e.term, e.commitTerm)
		}
	}
	n.lcChecked = max(n.lcChecked, uint64(len(s.committed)))
}

// checkLogsMatch compares the in-memory logs of every pair of running
// members directly: if they hold an entry with the same index and term,
// they hold the same entries up to it.
func (s *simulation) checkLogsMatch() {
	for i, a := range s.nodes {
		for _, b := range s.nodes[i+1:] {
			if a.core == nil || b.core == nil {
				continue
			}
			la, lb := &a.core.log, &b.core.log
			lo := max(la.snapIndex, lb.snapIndex) + 1
			hi := min(la.lastIndex(), lb.lastIndex())
			// the highest index where both agree on the term
			top := uint64(0)
			for j := hi; j >= lo; j-- {
				if la.mustTerm(j) == lb.mustTerm(j) {
					top = j
					break
				}
			}
			for j := lo; j <= top; j++ {
				ea, eb := la.entries[j-la.snapIndex-1], lb.entries[j-lb.snapIndex-1]
				if ea.Term != eb.Term || !bytes.Equal(ea.Data, eb.Data) {
					s.fail("log matching: %d and %d agree on entry %d's term but differ at %d: (%d, %q) vs (%d, %q)",
						a.id, b.id, top, j, ea.Term, ea.Data, eb.Term, eb.Data)
				}
			}
		}
	}
}

// --- liveness phase ---

// livenessPhase heals everything and requires a leader to be elected and a
// new proposal to be applied on every member of its configuration (voters
// and learners; removed members and spares never added are left out)
// within a bounded time.
func (s *simulation) livenessPhase() {
	s.logf("liveness: heal, restart everyone")
	clear(s.cut)
	for _, n := range s.nodes {
		if n.core == nil {
			s.start(n)
		}
	}
	const live = "live"
	maxRounds := 40 * s.p.electionTicks
	for round := 0; round < maxRounds; round++ {
		s.step++
		for _, n := range s.nodes {
			s.guard(n, "Tick", n.core.Tick)
			s.handle(n)
		}
		for range 10000 {
			if len(s.net) == 0 && !s.anyPending() {
				break
			}
			if len(s.net) > 0 {
				s.deliver(0, 0, 0)
			}
			for _, n := range s.nodes {
				if len(n.pending) > 0 {
					s.persist(n, len(n.pending))
				}
			}
		}
		hasLive := func(id uint64) bool {
			return slices.ContainsFunc(s.nodes[id-1].applied, func(e *messages.Entry) bool { return strings.HasPrefix(string(e.Data), live) })
		}
		// The leader of the highest term (a deposed one may not know yet).
		var l *simNode
		for _, n := range s.nodes {
			if n.core.Role() == RoleLeader && (l == nil || n.core.term > l.core.term) {
				l = n
			}
		}
		if l != nil {
			cs := l.core.ConfState()
			if !slices.ContainsFunc(cs.Voters, func(id uint64) bool { return !hasLive(id) }) &&
				!slices.ContainsFunc(cs.Learners, func(id uint64) bool { return !hasLive(id) }) {
				return
			}
		}
		for _, n := range s.nodes {
			if n.core.Role() == RoleLeader && n.core.leadTransferee == 0 && round%s.p.electionTicks == 0 {
				s.guard(n, "Propose", func() { _ = n.core.Propose(fmt.Appendf(nil, "%s%d", live, round)) })
				s.handle(n)
			}
		}
	}
	var states []string
	for _, n := range s.nodes {
		st := n.core.Status()
		states = append(states, fmt.Sprintf("%d: %v term %d lead %d commit %d last %d persisted %d applied %d voters %v learners %v",
			n.id, st.Role, st.Term, st.Lead, st.Commit, st.LastIndex, st.Persisted, len(n.applied), st.Voters, st.Learners))
	}
	s.fail("liveness: no proposal applied everywhere %d ticks after healing\n%s", maxRounds, strings.Join(states, "\n"))
}

func (s *simulation) anyPending() bool {
	for _, n := range s.nodes {
		if len(n.pending) > 0 {
			return true
		}
	}
	return false
}
