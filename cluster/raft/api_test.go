package raft_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/aetcd/aetcd/messages"
)

func cfg(id uint64, voters ...uint64) raft.Config {
	return raft.Config{ID: id, Voters: voters, Rand: rand.New(rand.NewPCG(id, 1))}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := map[string]raft.Config{
		"zero ID":          {Voters: []uint64{1}, Rand: rand.New(rand.NewPCG(1, 1))},
		"no rand":          {ID: 1, Voters: []uint64{1}},
		"duplicate voter":  cfg(1, 1, 2, 2),
		"zero voter":       cfg(1, 0, 1),
		"election <= beat": {ID: 1, Voters: []uint64{1}, Rand: rand.New(rand.NewPCG(1, 1)), ElectionTicks: 2, HeartbeatTicks: 2},
	}
	for name, c := range tests {
		if _, err := raft.New(c, raft.RestoreState{}); !errors.Is(err, raft.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestNewRejectsInvalidRestoreState(t *testing.T) {
	e := func(index, term uint64) *messages.Entry { return &messages.Entry{Index: index, Term: term} }
	tests := map[string]raft.RestoreState{
		"gap":             {Entries: []*messages.Entry{e(1, 1), e(3, 1)}},
		"not after snap":  {Snapshot: &messages.SnapshotMeta{Index: 5, Term: 1}, Entries: []*messages.Entry{e(7, 1)}},
		"term decreases":  {Entries: []*messages.Entry{e(1, 2), e(2, 1)}},
		"commit too far":  {HardState: &messages.HardState{Term: 1, Commit: 3}, Entries: []*messages.Entry{e(1, 1)}},
		"applied too far": {Entries: []*messages.Entry{e(1, 1)}, Applied: 2},
		"applied < snap":  {Snapshot: &messages.SnapshotMeta{Index: 5, Term: 1}, Applied: 4},
	}
	for name, rs := range tests {
		if _, err := raft.New(cfg(1, 1, 2, 3), rs); !errors.Is(err, raft.ErrInvalidRestoreState) {
			t.Errorf("%s: New = %v, want ErrInvalidRestoreState", name, err)
		}
	}
}

func TestStepRejectsBadMessages(t *testing.T) {
	c, err := raft.New(cfg(1, 1, 2, 3), raft.RestoreState{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		m    *messages.RaftMessage
		want error
	}{
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_PROP, From: 2, To: 1}, raft.ErrStepLocalMsg},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_HUP, From: 2, To: 1}, raft.ErrStepLocalMsg},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 2, To: 3}, raft.ErrWrongRecipient},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 0, To: 1}, raft.ErrUnknownPeer},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 1, To: 1}, raft.ErrUnknownPeer},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 2, To: 1, Term: 1,
			Entries: []*messages.Entry{{Index: 2, Term: 1}}}, raft.ErrInvalidMessage},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 2, To: 1, Term: 1,
			Entries: []*messages.Entry{{Index: 1, Term: 2}}}, raft.ErrInvalidMessage},
		{&messages.RaftMessage{Type: messages.RaftMessageType_MSG_SNAP, From: 2, To: 1, Term: 1}, raft.ErrInvalidMessage},
	}
	for i, tt := range tests {
		if err := c.Step(tt.m); !errors.Is(err, tt.want) {
			t.Errorf("#%d: Step = %v, want %v", i, err, tt.want)
		}
	}
	if c.Term() != 0 || c.HasReady() {
		t.Fatal("a rejected message changed the core")
	}
}

func TestReadyAdvanceContract(t *testing.T) {
	c, err := raft.New(cfg(1, 1), raft.RestoreState{})
	if err != nil {
		t.Fatal(err)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("Advance without Ready", func() { c.Advance(raft.Ready{}) })
	c.Campaign()
	rd := c.Ready()
	mustPanic("Tick between Ready and Advance", c.Tick)
	mustPanic("Ready twice", func() { c.Ready() })
	c.Advance(rd)
	c.PersistedHardState(rd.HardState)
	if c.Role() != raft.RoleLeader {
		t.Fatalf("role %v, want leader", c.Role())
	}
	// The leader's empty entry 1 is in the log but not yet handed out.
	mustPanic("Persisted before handed out", func() { c.Persisted(1, 1) })
	mustPanic("Applied beyond handed out", func() { c.Applied(1) })
	c.Persisted(9, 1) // beyond the log: a stale report, ignored
}

func TestNonLeaderOperations(t *testing.T) {
	c, err := raft.New(cfg(2, 1, 2, 3), raft.RestoreState{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Propose([]byte("x")); err != raft.ErrNotLeader {
		t.Fatalf("Propose = %v, want ErrNotLeader", err)
	}
	if err := c.TransferLeader(1); err != raft.ErrNotLeader {
		t.Fatalf("TransferLeader = %v, want ErrNotLeader", err)
	}
	if err := c.ReadIndex(nil); err != raft.ErrNoLeader {
		t.Fatalf("ReadIndex = %v, want ErrNoLeader", err)
	}
	st := c.Status()
	if st.ID != 2 || st.Role != raft.RoleFollower || st.Progress != nil {
		t.Fatalf("Status = %+v", st)
	}
}

// Example shows the smallest correct host of a single-voter member: a WAL
// that is durable at once and a state machine that prints.
func Example() {
	core, err := raft.New(raft.Config{ID: 1, Voters: []uint64{1}, Rand: rand.New(rand.NewPCG(1, 2))}, raft.RestoreState{})
	if err != nil {
		panic(err)
	}
	var wal []*messages.Entry
	drain := func() {
		for core.HasReady() {
			rd := core.Ready()
			if rd.SoftState != nil {
				fmt.Println("role:", rd.SoftState.Role)
			}
			wal = append(wal, rd.Entries...) // (a real WAL truncates first)
			// (rd.Messages would be sent to peers here)
			core.Advance(rd)
			// The WAL reports the write durable.
			if n := len(rd.Entries); n > 0 {
				core.Persisted(rd.Entries[n-1].Index, rd.Entries[n-1].Term)
			}
			core.PersistedHardState(rd.HardState)
			for _, e := range rd.CommittedEntries {
				if len(e.Data) > 0 {
					fmt.Printf("apply %d: %s\n", e.Index, e.Data)
				}
				core.Applied(e.Index)
			}
			for _, rs := range rd.ReadStates {
				fmt.Printf("read %s at %d\n", rs.Context, rs.Index)
			}
		}
	}
	for core.Role() != raft.RoleLeader {
		core.Tick()
		drain()
	}
	if err := core.Propose([]byte("hello"), []byte("world")); err != nil {
		panic(err)
	}
	if err := core.ReadIndex([]byte("r1")); err != nil {
		panic(err)
	}
	drain()
	fmt.Println("wal entries:", len(wal))
	// Output:
	// role: candidate
	// role: leader
	// read r1 at 1
	// apply 2: hello
	// apply 3: world
	// wal entries: 3
}
