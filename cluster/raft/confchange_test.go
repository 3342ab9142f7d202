package raft

import (
	"errors"
	"slices"
	"testing"

	"github.com/aetcd/aetcd/messages"
)

func cc(t messages.ConfChangeType, id uint64) *messages.ConfChange {
	return &messages.ConfChange{Type: t, NodeId: id}
}

// addNode adds a fresh member with an empty log to the network. Its
// configuration before the first entry is the network's initial one (in
// production that is empty and the log starts with conf changes).
func (nw *network) addNode(id uint64) *testNode {
	n := newTestNode(nw.t, testConfig(id, []uint64{1, 2, 3}), RestoreState{})
	nw.nodes[id] = n
	nw.ids = append(nw.ids, id)
	return n
}

func (nw *network) confChange(leader uint64, c *messages.ConfChange) {
	nw.t.Helper()
	if err := nw.nodes[leader].ProposeConfChange(c); err != nil {
		nw.t.Fatalf("ProposeConfChange(%v) on %d: %v", c, leader, err)
	}
	nw.stabilize()
}

func TestConfChangeAddLearnerPromoteRemove(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.propose(1, "a")
	n4 := nw.addNode(4)

	nw.confChange(1, cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 4))
	for _, id := range nw.ids {
		cs := nw.nodes[id].ConfState()
		if !slices.Equal(cs.Voters, []uint64{1, 2, 3}) || !slices.Equal(cs.Learners, []uint64{4}) {
			t.Fatalf("node %d after adding learner 4: %v", id, cs)
		}
	}
	if !n4.IsLearner() {
		t.Fatal("node 4 is not a learner")
	}
	// The learner received the whole log from the leader.
	nw.propose(1, "b")
	if got, want := n4.LastIndex(), nw.nodes[1].LastIndex(); got != want {
		t.Fatalf("learner last index %d, leader %d", got, want)
	}
	// A learner never campaigns.
	n4.tick(100)
	nw.stabilize()
	if n4.Role() != RoleFollower || nw.nodes[1].Role() != RoleLeader {
		t.Fatalf("learner campaigned: roles %v / %v", n4.Role(), nw.nodes[1].Role())
	}

	nw.confChange(1, cc(messages.ConfChangeType_CONF_ADD_NODE, 4))
	if cs := n4.ConfState(); !slices.Equal(cs.Voters, []uint64{1, 2, 3, 4}) || len(cs.Learners) != 0 {
		t.Fatalf("after promoting 4: %v", cs)
	}
	// Four voters: a quorum is 3, so with 2 and 3 cut off nothing commits.
	nw.isolate(2)
	nw.isolate(3)
	before := nw.nodes[1].Committed()
	if err := nw.nodes[1].Propose([]byte("c")); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if nw.nodes[1].Committed() != before {
		t.Fatal("committed with 2 of 4 voters")
	}
	nw.heal()
	nw.nodes[1].tick(1)
	nw.stabilize()
	if nw.nodes[1].Committed() == before {
		t.Fatal("not committed after healing")
	}

	nw.confChange(1, cc(messages.ConfChangeType_CONF_REMOVE_NODE, 2))
	for _, id := range []uint64{1, 3, 4} {
		if cs := nw.nodes[id].ConfState(); !slices.Equal(cs.Voters, []uint64{1, 3, 4}) {
			t.Fatalf("node %d after removing 2: %v", id, cs)
		}
	}
	// Node 2 is gone: 1, 3 and 4 commit without it.
	nw.isolate(2)
	nw.propose(1, "d")
	if nw.nodes[4].Committed() != nw.nodes[1].LastIndex() {
		t.Fatal("remaining voters did not commit")
	}
}

func TestConfChangeOneAtATime(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.addNode(4)
	nw.addNode(5)
	nw.isolate(2)
	nw.isolate(3)
	if err := nw.nodes[1].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 4)); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if err := nw.nodes[1].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 5)); !errors.Is(err, ErrPendingConfChange) {
		t.Fatalf("second change while the first is uncommitted: %v, want ErrPendingConfChange", err)
	}
	nw.heal()
	nw.nodes[1].tick(1)
	nw.stabilize()
	if err := nw.nodes[1].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 5)); err != nil {
		t.Fatalf("second change after the first applied: %v", err)
	}
}

func TestConfChangeNewLeaderWaitsForOldChanges(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	// 1 appends a change that only 2 receives, then fails.
	nw.isolate(3)
	nw.drop[messages.RaftMessageType_MSG_APP_RESP] = true
	if err := nw.nodes[1].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 4)); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	nw.isolate(1)
	delete(nw.drop, messages.RaftMessageType_MSG_APP_RESP)
	for k := range nw.cut {
		if k[0] != 1 && k[1] != 1 {
			delete(nw.cut, k)
		}
	}
	nw.elect(2)
	// 2's log holds 1's change; a new one must wait until it is applied.
	if err := nw.nodes[2].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 5)); err != nil && !errors.Is(err, ErrPendingConfChange) {
		t.Fatal(err)
	}
	if cs := nw.nodes[3].ConfState(); !slices.Equal(cs.Learners, []uint64{4}) {
		t.Fatalf("the old leader's change did not commit under the new leader: %v", cs)
	}
}

func TestConfChangeInvalid(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	for _, c := range []*messages.ConfChange{
		cc(messages.ConfChangeType_CONF_ADD_NODE, 2),
		cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 3),
		cc(messages.ConfChangeType_CONF_REMOVE_NODE, 9),
		cc(messages.ConfChangeType_CONF_UPDATE_NODE, 9),
		cc(messages.ConfChangeType_CONF_ADD_NODE, 0),
	} {
		if err := nw.nodes[1].ProposeConfChange(c); !errors.Is(err, ErrInvalidConfChange) {
			t.Errorf("%v: %v, want ErrInvalidConfChange", c, err)
		}
	}
	if err := nw.nodes[2].ProposeConfChange(cc(messages.ConfChangeType_CONF_ADD_NODE, 4)); !errors.Is(err, ErrNotLeader) {
		t.Errorf("on a follower: %v, want ErrNotLeader", err)
	}
	single := newNetwork(t, 1, nil)
	single.elect(1)
	if err := single.nodes[1].ProposeConfChange(cc(messages.ConfChangeType_CONF_REMOVE_NODE, 1)); !errors.Is(err, ErrInvalidConfChange) {
		t.Errorf("removing the last voter: %v, want ErrInvalidConfChange", err)
	}
}

// A removed leader goes on leading without counting itself, so the others
// learn that its removal committed; once it is gone they elect a leader
// among themselves.
func TestConfChangeRemoveLeader(t *testing.T) {
	nw := newNetwork(t, 2, nil)
	nw.elect(1)
	nw.confChange(1, cc(messages.ConfChangeType_CONF_REMOVE_NODE, 1))
	if r := nw.nodes[1].Role(); r != RoleLeader {
		t.Fatalf("removed leader is %v, want still leader", r)
	}
	if cs := nw.nodes[2].ConfState(); !slices.Equal(cs.Voters, []uint64{2}) {
		t.Fatalf("the remaining voter did not apply the removal: %v", cs)
	}
	// The removed leader commits with the remaining voter's acknowledgment
	// alone.
	nw.isolate(2)
	before := nw.nodes[1].Committed()
	if err := nw.nodes[1].Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if nw.nodes[1].Committed() != before {
		t.Fatal("the removed leader counted itself")
	}
	nw.heal()
	nw.nodes[1].tick(1)
	nw.stabilize()
	if nw.nodes[1].Committed() == before {
		t.Fatal("the remaining voter's acknowledgment did not commit")
	}
	// Without the removed member, 2 alone is a quorum.
	nw.isolate(1)
	nw.nodes[2].tick(100)
	nw.stabilize()
	if nw.nodes[2].Role() != RoleLeader {
		t.Fatalf("remaining voter is %v, want leader", nw.nodes[2].Role())
	}
	nw.nodes[1].tick(100) // a removed member never campaigns
	if nw.nodes[1].Role() == RoleCandidate || nw.nodes[1].Role() == RolePreCandidate {
		t.Fatal("removed member campaigned")
	}
}

// A restarted member rebuilds its configuration from the snapshot and the
// conf changes it had applied; later ones take effect when handed out.
func TestConfChangeSurvivesRestartAndCompaction(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.addNode(4)
	nw.confChange(1, cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 4))
	nw.propose(1, "x")
	n2 := nw.nodes[2]
	rs := n2.restoreState()
	rs.Applied = n2.applied[len(n2.applied)-1].Index
	re := newTestNode(t, testConfig(2, []uint64{1, 2, 3}), rs)
	if cs := re.ConfState(); !slices.Equal(cs.Learners, []uint64{4}) {
		t.Fatalf("restarted with everything applied: %v", cs)
	}
	rs.Applied = 0
	re = newTestNode(t, testConfig(2, []uint64{1, 2, 3}), rs)
	if cs := re.ConfState(); len(cs.Learners) != 0 {
		t.Fatalf("restarted with nothing applied: %v before re-applying", cs)
	}
	re.handle()
	if cs := re.ConfState(); !slices.Equal(cs.Learners, []uint64{4}) {
		t.Fatalf("after re-applying: %v", cs)
	}

	// Compact the leader's log past the change; a new member gets a
	// snapshot whose configuration includes it.
	l := nw.nodes[1]
	if err := l.Compact(l.Committed()); err != nil {
		t.Fatal(err)
	}
	n5 := nw.addNode(5)
	nw.confChange(1, cc(messages.ConfChangeType_CONF_ADD_LEARNER_NODE, 5))
	if n5.snap == nil {
		t.Fatal("no snapshot sent to the new member")
	}
	if !slices.Equal(n5.snap.ConfState.Voters, []uint64{1, 2, 3}) || !slices.Equal(n5.snap.ConfState.Learners, []uint64{4}) {
		t.Fatalf("snapshot conf state %v", n5.snap.ConfState)
	}
	if cs := n5.ConfState(); !slices.Equal(cs.Learners, []uint64{4, 5}) {
		t.Fatalf("new member's configuration %v", cs)
	}
	nw.propose(1, "y")
	if n5.LastIndex() != l.LastIndex() {
		t.Fatal("new member does not replicate after its snapshot")
	}
}
