package raft

// Tests named after the Raft paper ("In Search of an Understandable
// Consensus Algorithm", extended version) cite the section they check.

import (
	"slices"
	"testing"

	"github.com/aetcd/aetcd/messages"
)

// leaderOf makes n (a fresh follower in a cluster of voters) the leader of
// the next term by answering its vote requests.
func leaderOf(t *testing.T, n *testNode) {
	t.Helper()
	n.Campaign()
	for range 2 {
		for _, m := range n.take() {
			switch {
			case m.Type == msgPreVote && n.Role() == RolePreCandidate:
				n.step(&messages.RaftMessage{Type: msgPreVoteResp, From: m.To, To: n.id, Term: m.Term})
			case m.Type == msgVote && n.Role() == RoleCandidate:
				n.step(&messages.RaftMessage{Type: msgVoteResp, From: m.To, To: n.id, Term: m.Term})
			}
		}
	}
	if n.Role() != RoleLeader {
		t.Fatalf("node %d is %v, want leader", n.id, n.Role())
	}
	n.take()
}

// §5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to
// follower state."
func TestUpdateTermFromMessage(t *testing.T) {
	for _, role := range []Role{RoleFollower, RolePreCandidate, RoleCandidate, RoleLeader} {
		for _, typ := range []messages.RaftMessageType{msgApp, msgHeartbeat, msgVote, msgAppResp} {
			t.Run(role.String()+"/"+typ.String(), func(t *testing.T) {
				cfg := testConfig(1, ids(3))
				cfg.PreVote = role == RolePreCandidate
				n := newTestNode(t, cfg, RestoreState{})
				switch role {
				case RolePreCandidate, RoleCandidate:
					n.Campaign()
				case RoleLeader:
					leaderOf(t, n)
				}
				n.handle()
				if n.Role() != role {
					t.Fatalf("setup: role %v, want %v", n.Role(), role)
				}
				m := &messages.RaftMessage{Type: typ, From: 2, To: 1, Term: 5}
				if typ == msgVote {
					m.LogTerm, m.Index = 9, 9
				}
				n.step(m)
				if n.Term() != 5 || n.Role() != RoleFollower {
					t.Fatalf("term %d role %v, want 5 follower", n.Term(), n.Role())
				}
				wantLead := uint64(0)
				if typ == msgApp || typ == msgHeartbeat {
					wantLead = 2
				}
				if n.Leader() != wantLead {
					t.Fatalf("leader %d, want %d", n.Leader(), wantLead)
				}
			})
		}
	}
}

// §5.1: "If a server receives a request with a stale term number, it
// rejects the request." With CheckQuorum or PreVote, the stale leader is
// told the newer term so that it steps down.
func TestRejectStaleTermMessage(t *testing.T) {
	for _, checkQuorum := range []bool{false, true} {
		cfg := testConfig(1, ids(3))
		cfg.CheckQuorum = checkQuorum
		n := newTestNode(t, cfg, RestoreState{HardState: &messages.HardState{Term: 3}})
		n.step(&messages.RaftMessage{Type: msgApp, From: 2, To: 1, Term: 2, Entries: []*messages.Entry{{Index: 1, Term: 2}}})
		if n.LastIndex() != 0 || n.Term() != 3 || n.Leader() != 0 {
			t.Fatalf("stale MSG_APP changed state: last %d term %d lead %d", n.LastIndex(), n.Term(), n.Leader())
		}
		out := n.take()
		if !checkQuorum {
			if len(out) != 0 {
				t.Fatalf("answered a stale message: %v", out)
			}
			continue
		}
		if len(out) != 1 || out[0].Type != msgAppResp || out[0].Term != 3 || out[0].To != 2 {
			t.Fatalf("want one MSG_APP_RESP of term 3 to 2, got %v", out)
		}
	}
}

// §5.2: "When servers start up, they begin as followers."
func TestStartAsFollower(t *testing.T) {
	n := newTestNode(t, testConfig(1, ids(3)), RestoreState{})
	if n.Role() != RoleFollower || n.Term() != 0 || n.Leader() != 0 {
		t.Fatalf("fresh core: %v term %d lead %d", n.Role(), n.Term(), n.Leader())
	}
}

// §5.2: "Leaders send periodic heartbeats ... to all followers in order to
// maintain their authority." The heartbeat carries min(match, commit) so a
// follower never commits an entry it may not hold.
func TestLeaderBcastBeat(t *testing.T) {
	cfg := testConfig(1, ids(3))
	cfg.HeartbeatTicks = 2
	n := newTestNode(t, cfg, RestoreState{})
	leaderOf(t, n)
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: n.Term(), Index: 1})
	n.take()
	if n.log.committed != 1 {
		t.Fatalf("commit %d, want 1", n.log.committed)
	}
	n.tick(1)
	if hb := filter(n.take(), msgHeartbeat); len(hb) != 0 {
		t.Fatalf("heartbeat before HeartbeatTicks: %v", hb)
	}
	n.tick(1)
	hb := filter(n.take(), msgHeartbeat)
	if len(hb) != 2 {
		t.Fatalf("got %d heartbeats, want 2", len(hb))
	}
	for _, m := range hb {
		want := map[uint64]uint64{2: 1, 3: 0}[m.To]
		if m.Commit != want || m.Term != n.Term() || len(m.Entries) != 0 {
			t.Fatalf("heartbeat to %d: commit %d term %d, want commit %d", m.To, m.Commit, m.Term, want)
		}
	}
}

// §5.2: "If a follower receives no communication over a period of time
// called the election timeout, then it ... begins an election ... A
// follower increments its current term and transitions to candidate state.
// It then votes for itself and issues RequestVote RPCs in parallel."
// The vote for itself counts only once it is durable.
func TestFollowerStartsElection(t *testing.T) {
	log := ents(1, 1, 2)
	n := newTestNode(t, testConfig(1, ids(3)), RestoreState{HardState: &messages.HardState{Term: 2}, Entries: log})
	n.manual = true
	n.tick(2 * n.cfg.ElectionTicks)
	if n.Role() != RoleCandidate || n.Term() != 3 || n.vote != 1 {
		t.Fatalf("%v term %d vote %d, want candidate term 3 voting for itself", n.Role(), n.Term(), n.vote)
	}
	if out := n.take(); len(out) != 0 {
		t.Fatalf("sent %v before its term and vote were durable", out)
	}
	if _, counted := n.trk.votes[1]; counted {
		t.Fatal("own vote counted before its hard state is durable")
	}
	n.persist(len(n.pending))
	votes := filter(n.take(), msgVote)
	if len(votes) != 2 {
		t.Fatalf("%d vote requests, want 2", len(votes))
	}
	for _, m := range votes {
		if m.Term != 3 || m.Index != 3 || m.LogTerm != 2 {
			t.Fatalf("vote request %v, want term 3 last (3, 2)", m)
		}
	}
	n.step(&messages.RaftMessage{Type: msgVoteResp, From: 2, To: 1, Term: 3})
	if n.Role() != RoleLeader {
		t.Fatalf("%v with its own vote and one grant, want leader", n.Role())
	}
}

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a
// fixed interval."
func TestElectionTimeoutRandomized(t *testing.T) {
	for _, preVote := range []bool{false, true} {
		cfg := testConfig(1, ids(3))
		cfg.PreVote = preVote
		n := newTestNode(t, cfg, RestoreState{})
		seen := map[int]bool{}
		for range 200 {
			n.becomeFollower(n.Term()+1, 0)
			ticks := 0
			for n.Role() == RoleFollower {
				n.Tick()
				ticks++
				if ticks > 2*cfg.ElectionTicks {
					t.Fatalf("no election after %d ticks", ticks)
				}
			}
			if ticks < cfg.ElectionTicks {
				t.Fatalf("election after %d ticks, below ElectionTicks %d", ticks, cfg.ElectionTicks)
			}
			seen[ticks] = true
			n.handle()
		}
		if len(seen) < cfg.ElectionTicks*8/10 {
			t.Fatalf("only %d distinct timeouts in [%d, %d)", len(seen), cfg.ElectionTicks, 2*cfg.ElectionTicks)
		}
	}
}

// §5.2: "A candidate wins an election if it receives votes from a majority
// of the servers in the full cluster for the same term." It returns to
// follower once a majority rejects it.
func TestLeaderElectionInOneRound(t *testing.T) {
	tests := []struct {
		size  int
		votes map[uint64]bool
		want  Role
	}{
		{1, nil, RoleLeader},
		{3, map[uint64]bool{2: true, 3: true}, RoleLeader},
		{3, map[uint64]bool{2: true}, RoleLeader},
		{5, map[uint64]bool{2: true, 3: true, 4: true, 5: true}, RoleLeader},
		{5, map[uint64]bool{2: true, 3: true}, RoleLeader},
		{3, map[uint64]bool{}, RoleCandidate},
		{5, map[uint64]bool{2: true}, RoleCandidate},
		{5, map[uint64]bool{2: false, 3: false}, RoleCandidate},
		{3, map[uint64]bool{2: false, 3: false}, RoleFollower},
		{5, map[uint64]bool{2: false, 3: false, 4: false}, RoleFollower},
		{4, map[uint64]bool{2: false, 3: false}, RoleFollower},
	}
	for i, tt := range tests {
		n := newTestNode(t, testConfig(1, ids(tt.size)), RestoreState{})
		n.Campaign()
		n.handle()
		for _, id := range ids(tt.size)[1:] {
			if granted, ok := tt.votes[id]; ok {
				n.step(&messages.RaftMessage{Type: msgVoteResp, From: id, To: 1, Term: 1, Reject: !granted})
			}
		}
		if n.Role() != tt.want || n.Term() != 1 {
			t.Errorf("#%d: %v term %d, want %v term 1", i, n.Role(), n.Term(), tt.want)
		}
	}
}

// §5.2: "Each server will vote for at most one candidate in a given term,
// on a first-come-first-served basis."
func TestFollowerVote(t *testing.T) {
	tests := []struct {
		vote, from uint64
		reject     bool
	}{
		{0, 2, false},
		{2, 2, false},
		{3, 2, true},
	}
	for i, tt := range tests {
		n := newTestNode(t, testConfig(1, ids(3)), RestoreState{HardState: &messages.HardState{Term: 1, Vote: tt.vote}})
		n.step(&messages.RaftMessage{Type: msgVote, From: tt.from, To: 1, Term: 1})
		out := n.take()
		if len(out) != 1 || out[0].Type != msgVoteResp || out[0].Reject != tt.reject {
			t.Errorf("#%d: got %v, want reject=%v", i, out, tt.reject)
		}
	}
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries
// RPC from another server claiming to be leader. If the leader's term ... is
// at least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
func TestCandidateFallback(t *testing.T) {
	for _, typ := range []messages.RaftMessageType{msgApp, msgHeartbeat} {
		n := newTestNode(t, testConfig(1, ids(3)), RestoreState{})
		n.Campaign()
		n.handle()
		n.step(&messages.RaftMessage{Type: typ, From: 2, To: 1, Term: n.Term()})
		if n.Role() != RoleFollower || n.Leader() != 2 || n.Term() != 1 {
			t.Fatalf("%v: %v lead %d term %d, want follower of 2 in term 1", typ, n.Role(), n.Leader(), n.Term())
		}
	}
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate ... If the logs have last entries with different
// terms, then the log with the later term is more up-to-date. If the logs
// end with the same term, then whichever log is longer is more up-to-date."
func TestVoteRequestUpToDate(t *testing.T) {
	tests := []struct {
		logTerm, index uint64
		grant          bool
	}{
		{1, 2, false}, // earlier last term, shorter
		{1, 9, false}, // earlier last term, longer
		{2, 2, false}, // same last term, shorter
		{2, 3, true},  // identical
		{2, 4, true},  // same last term, longer
		{3, 1, true},  // later last term, shorter
	}
	for _, typ := range []messages.RaftMessageType{msgVote, msgPreVote} {
		for i, tt := range tests {
			n := newTestNode(t, testConfig(1, ids(3)), RestoreState{HardState: &messages.HardState{Term: 2}, Entries: ents(1, 1, 2)})
			n.step(&messages.RaftMessage{Type: typ, From: 2, To: 1, Term: 3, LogTerm: tt.logTerm, Index: tt.index})
			out := n.take()
			if len(out) != 1 || out[0].Reject == tt.grant {
				t.Errorf("%v #%d: got %v, want grant=%v", typ, i, out, tt.grant)
			}
		}
	}
}

// §5.4.2 and §8: a new leader appends an empty entry of its term, which it
// replicates at once; committing it commits every earlier entry.
func TestLeaderAppendsEmptyEntry(t *testing.T) {
	n := newTestNode(t, testConfig(1, ids(3)), RestoreState{HardState: &messages.HardState{Term: 2}, Entries: ents(1, 2)})
	n.Campaign()
	n.handle()
	n.step(&messages.RaftMessage{Type: msgVoteResp, From: 2, To: 1, Term: 3})
	if n.Role() != RoleLeader {
		t.Fatalf("%v, want leader", n.Role())
	}
	e := n.log.entries[2]
	if n.LastIndex() != 3 || e.Term != 3 || len(e.Data) != 0 {
		t.Fatalf("last entry %v, want empty entry 3 of term 3", e)
	}
	apps := filter(n.take(), msgApp)
	if len(apps) != 2 {
		t.Fatalf("%d MSG_APP, want 2", len(apps))
	}
	for _, m := range apps {
		if m.Index != 2 || m.LogTerm != 2 || len(m.Entries) != 1 || m.Entries[0].Index != 3 {
			t.Fatalf("MSG_APP %v, want prev (2, 2) + entry 3", m)
		}
	}
	// Committing the empty entry commits the earlier terms' entries too.
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 3, Index: 3})
	if n.log.committed != 3 {
		t.Fatalf("commit %d, want 3", n.log.committed)
	}
	if got := termsOf(n.applied); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("applied terms %v, want [1 2 3]", got)
	}
}

// §5.4.2, Figure 8: "Raft never commits log entries from previous terms by
// counting replicas. Only log entries from the leader's current term are
// committed by counting replicas."
func TestFigure8CommitOnlyCurrentTerm(t *testing.T) {
	// (c): S1 is leader of term 4 with [1:t1 2:t2]; S2 holds 2:t2; S5 holds
	// a conflicting 2:t3 from its own term-3 leadership.
	voters := ids(5)
	s1 := newTestNode(t, testConfig(1, voters), RestoreState{HardState: &messages.HardState{Term: 3, Commit: 1}, Entries: ents(1, 2)})
	s1.Campaign()
	s1.handle()
	s1.step(&messages.RaftMessage{Type: msgVoteResp, From: 2, To: 1, Term: 4})
	s1.step(&messages.RaftMessage{Type: msgVoteResp, From: 3, To: 1, Term: 4})
	if s1.Role() != RoleLeader || s1.Term() != 4 {
		t.Fatalf("S1 %v term %d, want leader of 4", s1.Role(), s1.Term())
	}
	// Entry 2 (term 2) reaches a majority: S1, S2, S3.
	s1.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 4, Index: 2})
	s1.step(&messages.RaftMessage{Type: msgAppResp, From: 3, To: 1, Term: 4, Index: 2})
	if s1.log.committed != 1 {
		t.Fatalf("commit %d after a majority holds the term-2 entry, want 1 (not committed by counting)", s1.log.committed)
	}
	// (d) shows why: S5 (last entry 2:t3) is more up to date than S2 and S3
	// (last entry 2:t2) and could still be elected and overwrite entry 2.
	s2 := newTestNode(t, testConfig(2, voters), RestoreState{HardState: &messages.HardState{Term: 4}, Entries: ents(1, 2)})
	s2.step(&messages.RaftMessage{Type: msgVote, From: 5, To: 2, Term: 5, Index: 2, LogTerm: 3})
	if out := s2.take(); len(out) != 1 || out[0].Reject {
		t.Fatalf("S2 answered S5's vote with %v, want a grant", out)
	}
	// (e): once the term-4 entry 3 is on a majority, it commits and entry 2
	// with it; S5 can no longer win against S2 or S3.
	s1.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 4, Index: 3})
	if s1.log.committed != 1 {
		t.Fatalf("commit %d with entry 3 on 2 of 5, want 1", s1.log.committed)
	}
	s1.step(&messages.RaftMessage{Type: msgAppResp, From: 3, To: 1, Term: 4, Index: 3})
	if s1.log.committed != 3 {
		t.Fatalf("commit %d with entry 3 on a majority, want 3", s1.log.committed)
	}
	s3 := newTestNode(t, testConfig(3, voters), RestoreState{HardState: &messages.HardState{Term: 4}, Entries: ents(1, 2, 4)})
	s3.step(&messages.RaftMessage{Type: msgVote, From: 5, To: 3, Term: 5, Index: 2, LogTerm: 3})
	if out := s3.take(); len(out) != 1 || !out[0].Reject {
		t.Fatalf("S3 answered S5's vote with %v, want a rejection", out)
	}
}

// §5.3 with durable acknowledgments (DESIGN.md principle 2): the leader
// counts itself toward the quorum only once its own entries are durable.
func TestLeaderCommitsOnlyDurableQuorum(t *testing.T) {
	n := newTestNode(t, testConfig(1, ids(5)), RestoreState{})
	leaderOf(t, n) // entry 1 durable on the leader
	for id := uint64(2); id <= 5; id++ {
		n.step(&messages.RaftMessage{Type: msgAppResp, From: id, To: 1, Term: 1, Index: 1})
	}
	n.take()
	n.manual = true
	if err := n.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.handle()
	if apps := filter(n.take(), msgApp); len(apps) != 4 {
		t.Fatalf("leader sent %d MSG_APP before its fsync, want 4", len(apps))
	}
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 1, Index: 2})
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 3, To: 1, Term: 1, Index: 2})
	if n.log.committed >= 2 {
		t.Fatalf("committed %d on 2 followers while the leader's copy is not durable", n.log.committed)
	}
	n.persist(len(n.pending))
	n.handle()
	if n.log.committed != 2 {
		t.Fatalf("commit %d after the leader persisted, want 2", n.log.committed)
	}
}

// §5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it;
// append any new entries not already in the log." and the consistency
// check: reject if the log does not contain an entry at prevLogIndex whose
// term matches prevLogTerm.
func TestFollowerAppendEntries(t *testing.T) {
	tests := []struct {
		index, logTerm uint64
		ents           []uint64 // terms of entries index+1, ...
		reject         bool
		want           []uint64
		wantIndex      uint64 // acknowledged index
	}{
		{2, 2, []uint64{3}, false, []uint64{1, 2, 3}, 3},
		{1, 1, []uint64{3}, false, []uint64{1, 3}, 2},    // truncates 2:t2
		{0, 0, []uint64{1, 2}, false, []uint64{1, 2}, 2}, // already present
		{0, 0, []uint64{1}, false, []uint64{1, 2}, 1},    // prefix: nothing truncated
		{0, 0, []uint64{3, 3}, false, []uint64{3, 3}, 2}, // replaces everything
		{2, 3, []uint64{3}, true, []uint64{1, 2}, 0},     // prev term mismatch
		{3, 2, []uint64{3}, true, []uint64{1, 2}, 0},     // prev beyond log
		{1, 1, nil, false, []uint64{1, 2}, 1},            // probe
		{2, 2, []uint64{2, 3, 3}, false, []uint64{1, 2, 2, 3, 3}, 5},
	}
	for i, tt := range tests {
		n := newTestNode(t, testConfig(1, ids(3)), RestoreState{HardState: &messages.HardState{Term: 2}, Entries: ents(1, 2)})
		m := &messages.RaftMessage{Type: msgApp, From: 2, To: 1, Term: 3, Index: tt.index, LogTerm: tt.logTerm}
		for j, term := range tt.ents {
			m.Entries = append(m.Entries, &messages.Entry{Index: tt.index + 1 + uint64(j), Term: term})
		}
		n.step(m)
		if got := termsOf(n.log.entries); !slices.Equal(got, tt.want) {
			t.Errorf("#%d: log terms %v, want %v", i, got, tt.want)
		}
		out := n.take()
		if len(out) != 1 || out[0].Type != msgAppResp || out[0].Reject != tt.reject || (!tt.reject && out[0].Index != tt.wantIndex) {
			t.Errorf("#%d: answer %v, want reject=%v index %d", i, out, tt.reject, tt.wantIndex)
		}
	}
}

// A follower acknowledges entries only after they are durable; the
// acknowledgment is emitted when Persisted reports them.
func TestFollowerAcksOnlyDurableEntries(t *testing.T) {
	n := newTestNode(t, testConfig(2, ids(3)), RestoreState{})
	n.manual = true
	n.step(&messages.RaftMessage{Type: msgApp, From: 1, To: 2, Term: 1, Index: 0, LogTerm: 0,
		Entries: []*messages.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}}, Commit: 2})
	if out := n.take(); len(out) != 0 {
		t.Fatalf("sent %v before the entries were durable", out)
	}
	if len(n.applied) != 0 {
		t.Fatalf("applied %d entries that are not durable locally", len(n.applied))
	}
	// Only the first write (hard state + entries) becomes durable.
	n.persist(1)
	n.handle()
	out := n.take()
	if len(out) != 1 || out[0].Type != msgAppResp || out[0].Index != 2 || out[0].Reject {
		t.Fatalf("after Persisted: %v, want acknowledgment of 2", out)
	}
	if len(n.applied) != 2 {
		t.Fatalf("applied %d entries, want 2", len(n.applied))
	}
	// An append of already-durable entries is acknowledged at once.
	n.step(&messages.RaftMessage{Type: msgApp, From: 1, To: 2, Term: 1, Index: 2, LogTerm: 1, Commit: 2})
	if out := n.take(); len(out) != 1 || out[0].Index != 2 {
		t.Fatalf("probe answered with %v, want acknowledgment of 2", out)
	}
}

// A vote grant is sent only once the vote is durable.
func TestVoteGrantWaitsForDurableVote(t *testing.T) {
	n := newTestNode(t, testConfig(2, ids(3)), RestoreState{})
	n.manual = true
	n.step(&messages.RaftMessage{Type: msgVote, From: 1, To: 2, Term: 1})
	if out := n.take(); len(out) != 0 {
		t.Fatalf("sent %v before the vote was durable", out)
	}
	// A second candidate of the same term is rejected at once.
	n.step(&messages.RaftMessage{Type: msgVote, From: 3, To: 2, Term: 1})
	if out := n.take(); len(out) != 1 || out[0].To != 3 || !out[0].Reject {
		t.Fatalf("second candidate got %v, want a rejection", out)
	}
	n.persist(len(n.pending))
	n.handle()
	out := n.take()
	if len(out) != 1 || out[0].To != 1 || out[0].Type != msgVoteResp || out[0].Reject {
		t.Fatalf("after the vote was durable: %v, want the grant to 1", out)
	}
}

// §5.3, Figure 7: the leader brings logs (a)-(f) to its own, however they
// diverge, and the reject hint (§5.3, "the follower can include the term of
// the conflicting entry and the first index it stores for that term")
// needs a few round trips rather than one per entry.
func TestLeaderSyncFollowerLog(t *testing.T) {
	leaderLog := []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
	tests := map[string]struct {
		terms      []uint64
		maxRejects int
	}{
		"a":     {[]uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}, 1},
		"b":     {[]uint64{1, 1, 1, 4}, 1},
		"c":     {[]uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 1},
		"d":     {[]uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 2},
		"e":     {[]uint64{1, 1, 1, 4, 4, 4, 4}, 2},
		"f":     {[]uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 2},
		"empty": {nil, 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			voters := ids(3)
			leader := newTestNode(t, testConfig(1, voters), RestoreState{HardState: &messages.HardState{Term: 7, Commit: 3}, Entries: ents(leaderLog...)})
			follower := newTestNode(t, testConfig(2, voters), RestoreState{HardState: &messages.HardState{Term: 7}, Entries: ents(tt.terms...)})
			// Node 3 mirrors the leader so the leader can win without node 2.
			third := newTestNode(t, testConfig(3, voters), RestoreState{HardState: &messages.HardState{Term: 7}, Entries: ents(leaderLog...)})
			nw := &network{t: t, nodes: map[uint64]*testNode{1: leader, 2: follower, 3: third}, ids: voters,
				cut: map[[2]uint64]bool{}, drop: map[messages.RaftMessageType]bool{}}
			rejects := 0
			leader.Campaign()
			for range 100 {
				var msgs []*messages.RaftMessage
				for _, id := range voters {
					msgs = append(msgs, nw.nodes[id].take()...)
				}
				if len(msgs) == 0 {
					break
				}
				for _, m := range msgs {
					if m.Type == msgAppResp && m.Reject && m.From == 2 {
						rejects++
					}
					nw.nodes[m.To].step(m)
				}
			}
			if leader.Role() != RoleLeader {
				t.Fatalf("leader is %v", leader.Role())
			}
			want := append(slices.Clone(leaderLog), 8)
			if got := termsOf(follower.log.entries); !slices.Equal(got, want) {
				t.Fatalf("follower log %v, want %v", got, want)
			}
			if rejects > tt.maxRejects {
				t.Fatalf("%d rejections, want at most %d", rejects, tt.maxRejects)
			}
		})
	}
}

// The follower's reject hint names the largest index at or below the probe
// whose term is at most the probe's term, and the leader skips its own
// entries whose term exceeds the hint's.
func TestRejectHint(t *testing.T) {
	tests := []struct {
		follower           []uint64
		index, logTerm     uint64
		wantHint, wantTerm uint64
	}{
		{[]uint64{1, 1, 1, 4, 4, 4, 4}, 10, 6, 7, 4}, // beyond the log: last index
		{[]uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 10, 6, 10, 3},
		{[]uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 10, 7, 10, 6},
		{[]uint64{1, 1, 1, 5, 5, 5}, 6, 4, 3, 1}, // skips the whole term 5
		{[]uint64{2, 2}, 2, 1, 0, 0},
	}
	for i, tt := range tests {
		n := newTestNode(t, testConfig(2, ids(3)), RestoreState{HardState: &messages.HardState{Term: 7}, Entries: ents(tt.follower...)})
		n.step(&messages.RaftMessage{Type: msgApp, From: 1, To: 2, Term: 8, Index: tt.index, LogTerm: tt.logTerm})
		out := n.take()
		if len(out) != 1 || !out[0].Reject || out[0].RejectHint != tt.wantHint || out[0].LogTerm != tt.wantTerm || out[0].Index != tt.index {
			t.Errorf("#%d: %v, want reject of %d with hint (%d, %d)", i, out, tt.index, tt.wantHint, tt.wantTerm)
		}
	}
	// Leader side: log [1 1 1 4 4 5 5 6 6 6], follower hints (10, 3): all of
	// the leader's entries above index 3 have terms above 3.
	l := raftLog{entries: ents(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)}
	if got := l.findConflictByTerm(10, 3); got != 3 {
		t.Fatalf("leader findConflictByTerm(10, 3) = %d, want 3", got)
	}
}

// Raft thesis §9.6: with pre-vote a partitioned member does not raise its
// term, so it does not depose the leader when it comes back.
func TestPreVoteDoesNotBumpTermOfPartitionedNode(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		nw := newNetwork(t, 3, func(c *Config) { c.PreVote = preVote })
		nw.elect(1)
		nw.propose(1, "x")
		term := nw.nodes[1].Term()
		nw.isolate(3)
		for range 10 {
			nw.nodes[3].tick(2 * nw.nodes[3].cfg.ElectionTicks)
			nw.stabilize()
		}
		got := nw.nodes[3].Term()
		if preVote && got != term {
			t.Fatalf("pre-vote: partitioned node's term %d, want %d", got, term)
		}
		if !preVote && got <= term {
			t.Fatalf("without pre-vote: partitioned node's term %d did not rise above %d", got, term)
		}
		nw.heal()
		for range 5 * nw.nodes[3].cfg.ElectionTicks {
			for _, id := range nw.ids {
				nw.nodes[id].tick(1)
			}
			nw.stabilize()
		}
		if preVote && (nw.nodes[1].Role() != RoleLeader || nw.nodes[1].Term() != term) {
			t.Fatalf("pre-vote: after healing node 1 is %v in term %d, want leader in %d", nw.nodes[1].Role(), nw.nodes[1].Term(), term)
		}
		if !preVote && nw.nodes[1].Term() == term {
			t.Fatalf("without pre-vote: the returning node did not disrupt term %d", term)
		}
	}
}

// Raft thesis §6.2: with CheckQuorum a leader that has not heard from a
// quorum within an election timeout steps down.
func TestCheckQuorumStepDown(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	et := nw.nodes[1].cfg.ElectionTicks
	// Connected: stays leader across several check rounds.
	for range 3 * et {
		nw.nodes[1].tick(1)
		nw.stabilize()
	}
	if nw.nodes[1].Role() != RoleLeader {
		t.Fatalf("connected leader stepped down: %v", nw.nodes[1].Role())
	}
	nw.isolate(1)
	for range 2 * et {
		nw.nodes[1].tick(1)
		nw.stabilize()
	}
	if nw.nodes[1].Role() != RoleFollower || nw.nodes[1].Leader() != 0 {
		t.Fatalf("isolated leader is %v (lead %d), want follower with no leader", nw.nodes[1].Role(), nw.nodes[1].Leader())
	}
}

// Raft thesis §4.2.3: with CheckQuorum, a member that heard from the leader
// within the election timeout ignores vote requests (leader lease), unless
// the leader itself asked for the election (leadership transfer).
func TestLeaseIgnoresVoteRequests(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.CheckQuorum = true })
	nw.elect(1)
	term := nw.nodes[1].Term()
	// Node 3 was cut off and campaigns in a higher term.
	nw.nodes[3].step(&messages.RaftMessage{Type: msgHeartbeat, From: 1, To: 3, Term: term}) // knows the leader
	nw.nodes[3].becomeFollower(term, 0)
	nw.nodes[3].Campaign()
	nw.stabilize()
	if nw.nodes[2].Term() != term || nw.nodes[1].Role() != RoleLeader {
		t.Fatalf("vote request in lease changed node 2's term to %d / leader to %v", nw.nodes[2].Term(), nw.nodes[1].Role())
	}
	// Once node 2 has not heard from the leader for an election timeout, it
	// votes.
	nw.isolate(1)
	nw.nodes[2].tick(nw.nodes[2].cfg.ElectionTicks)
	nw.nodes[3].becomeFollower(nw.nodes[3].Term(), 0)
	nw.nodes[3].Campaign()
	nw.stabilize()
	if nw.nodes[3].Role() != RoleLeader {
		t.Fatalf("node 3 is %v after the lease expired, want leader", nw.nodes[3].Role())
	}
}

// §8 and Raft thesis §6.4: read index. Requests issued before a heartbeat
// round starts share it; a request arriving while a round is in flight
// waits for the next round, since an earlier round does not prove
// leadership after its arrival.
func TestReadIndexBatching(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.propose(1, "x")
	l := nw.nodes[1]
	commit := l.log.committed
	for _, ctx := range []string{"a", "b", "c"} {
		if err := l.ReadIndex([]byte(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	round1 := filter(l.take(), msgHeartbeat)
	if len(round1) != 2 {
		t.Fatalf("%d heartbeats for 3 reads, want one round of 2", len(round1))
	}
	// "d" arrives while round 1 is in flight.
	if err := l.ReadIndex([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if hb := filter(l.take(), msgHeartbeat); len(hb) != 0 {
		t.Fatalf("started a second round while one is in flight: %v", hb)
	}
	// One follower answers round 1: quorum (leader + 1).
	nw.nodes[2].step(round1[0])
	for _, m := range nw.nodes[2].take() {
		l.step(m)
	}
	if len(l.reads) != 3 {
		t.Fatalf("%d read states after round 1, want 3 (a, b, c)", len(l.reads))
	}
	for i, rs := range l.reads {
		if rs.Index != commit || string(rs.Context) != []string{"a", "b", "c"}[i] {
			t.Fatalf("read state %d: %+v, want index %d", i, rs, commit)
		}
	}
	// Round 2 carries "d" and starts right away.
	round2 := filter(l.take(), msgHeartbeat)
	if len(round2) != 2 {
		t.Fatalf("%d heartbeats for round 2, want 2", len(round2))
	}
	// A late answer to round 1 from node 3 does not confirm round 2.
	nw.nodes[3].step(round1[1])
	for _, m := range nw.nodes[3].take() {
		l.step(m)
	}
	if len(l.reads) != 3 {
		t.Fatalf("round 1 answer confirmed a later request: %d read states", len(l.reads))
	}
	nw.nodes[3].step(round2[1])
	for _, m := range nw.nodes[3].take() {
		l.step(m)
	}
	if len(l.reads) != 4 || string(l.reads[3].Context) != "d" {
		t.Fatalf("read states %+v, want d answered by round 2", l.reads)
	}
}

// §8: a new leader answers reads only after it committed an entry of its
// own term (before that its commit index may lag the previous leader's).
func TestReadIndexWaitsForCurrentTermCommit(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.drop[msgAppResp] = true
	nw.elect(1)
	l := nw.nodes[1]
	if err := l.ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	if hb := filter(l.take(), msgHeartbeat); len(hb) != 0 {
		t.Fatalf("read round before the term's first commit: %v", hb)
	}
	delete(nw.drop, msgAppResp)
	l.tick(1)
	nw.stabilize()
	if len(l.reads) != 1 || l.reads[0].Index != 1 {
		t.Fatalf("read states %+v, want one at index 1", l.reads)
	}
}

// A follower forwards ReadIndex to the leader; with no known leader
// ReadIndex fails with ErrNoLeader.
func TestReadIndexOnFollower(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	if err := nw.nodes[2].ReadIndex([]byte("r")); err != ErrNoLeader {
		t.Fatalf("ReadIndex without a leader: %v, want ErrNoLeader", err)
	}
	nw.elect(1)
	nw.propose(1, "x")
	if err := nw.nodes[2].ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	f := nw.nodes[2]
	if len(f.reads) != 1 || f.reads[0].Index != nw.nodes[1].log.committed || string(f.reads[0].Context) != "r" {
		t.Fatalf("follower read states %+v, want index %d", f.reads, nw.nodes[1].log.committed)
	}
}

// A single voter becomes leader on its first election timeout as soon as
// its vote is durable, and commits entries only once they are durable.
func TestSingleVoter(t *testing.T) {
	n := newTestNode(t, testConfig(1, []uint64{1}), RestoreState{})
	n.manual = true
	timeout := n.randomizedElectionTimeout
	for i := 1; i < timeout; i++ {
		n.tick(1)
	}
	if n.Role() != RoleFollower {
		t.Fatalf("%v before the election timeout", n.Role())
	}
	n.tick(1)
	if n.Role() != RoleCandidate || len(n.pending) != 1 || n.pending[0].hs.Vote != 1 {
		t.Fatalf("at the timeout: %v, pending %v; want candidate with its vote being persisted", n.Role(), n.pending)
	}
	n.persist(1)
	n.handle()
	if n.Role() != RoleLeader {
		t.Fatalf("%v once the vote is durable, want leader", n.Role())
	}
	if len(n.applied) != 0 {
		t.Fatal("applied before the leader's entry was durable")
	}
	if err := n.ReadIndex([]byte("early")); err != nil {
		t.Fatal(err)
	}
	n.handle()
	if len(n.reads) != 0 {
		t.Fatal("read answered before the leader committed in its term")
	}
	if err := n.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.handle()
	if n.log.committed != 0 {
		t.Fatalf("commit %d before anything is durable", n.log.committed)
	}
	n.persist(len(n.pending))
	n.handle()
	if n.log.committed != 2 || len(n.applied) != 2 || string(n.applied[1].Data) != "x" {
		t.Fatalf("commit %d applied %v, want both entries", n.log.committed, n.applied)
	}
	if len(n.reads) != 1 || n.reads[0].Index != 2 {
		t.Fatalf("read states %+v, want the early read at 2", n.reads)
	}
	if err := n.ReadIndex([]byte("now")); err != nil {
		t.Fatal(err)
	}
	n.handle()
	if len(n.reads) != 2 || n.reads[1].Index != 2 {
		t.Fatalf("read states %+v, want an immediate answer at 2", n.reads)
	}
}

// Raft thesis §3.10: leadership transfer.
func TestLeaderTransfer(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.CheckQuorum = true; c.PreVote = true })
	nw.elect(1)
	nw.propose(1, "x")
	if err := nw.nodes[1].TransferLeader(2); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if nw.nodes[2].Role() != RoleLeader || nw.nodes[1].Role() != RoleFollower || nw.nodes[1].Leader() != 2 {
		t.Fatalf("after transfer: node 2 %v, node 1 %v (lead %d)", nw.nodes[2].Role(), nw.nodes[1].Role(), nw.nodes[1].Leader())
	}

	// A transfer to a member that cannot catch up drops proposals until it
	// is abandoned after an election timeout.
	nw.isolate(3)
	if err := nw.nodes[2].Propose([]byte("y")); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if err := nw.nodes[2].TransferLeader(3); err != nil {
		t.Fatal(err)
	}
	if err := nw.nodes[2].Propose([]byte("z")); err != ErrProposalDropped {
		t.Fatalf("Propose during transfer: %v, want ErrProposalDropped", err)
	}
	for range nw.nodes[2].cfg.ElectionTicks {
		nw.nodes[2].tick(1)
		nw.stabilize()
	}
	if nw.nodes[2].Role() != RoleLeader {
		t.Fatalf("node 2 is %v", nw.nodes[2].Role())
	}
	if err := nw.nodes[2].Propose([]byte("z")); err != nil {
		t.Fatalf("Propose after the transfer was abandoned: %v", err)
	}
	if err := nw.nodes[1].TransferLeader(3); err != ErrNotLeader {
		t.Fatalf("TransferLeader on a follower: %v, want ErrNotLeader", err)
	}
}

// In replicate state the leader pipelines MSG_APPs up to MaxInflightMsgs,
// each at most MaxSizePerMsg, then waits for acknowledgments.
func TestReplicatePipelining(t *testing.T) {
	cfg := testConfig(1, ids(2))
	cfg.MaxInflightMsgs = 2
	cfg.MaxSizePerMsg = 1
	n := newTestNode(t, cfg, RestoreState{})
	n.Campaign()
	n.handle()
	n.step(&messages.RaftMessage{Type: msgVoteResp, From: 2, To: 1, Term: 1})
	n.take()
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	n.take()
	if p := n.trk.progress[2]; p.state != ProgressReplicate {
		t.Fatalf("progress %v, want replicate", p.state)
	}
	for i := range 5 {
		if err := n.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	apps := filter(n.take(), msgApp)
	if len(apps) != 2 || len(apps[0].Entries) != 1 || apps[1].Entries[0].Index != 3 {
		t.Fatalf("sent %v, want 2 single-entry MSG_APPs (2, 3)", apps)
	}
	n.step(&messages.RaftMessage{Type: msgAppResp, From: 2, To: 1, Term: 1, Index: 3})
	apps = filter(n.take(), msgApp)
	var sent []uint64
	for _, m := range apps {
		for _, e := range m.Entries {
			sent = append(sent, e.Index)
		}
	}
	if !slices.Equal(sent, []uint64{4, 5}) {
		t.Fatalf("after the acknowledgment sent entries %v, want [4 5]", sent)
	}
}

// A lost MSG_APP in replicate state is repaired: the follower rejects the
// next one and the leader probes back.
func TestReplicateRecoversFromLostAppend(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.propose(1, "a")
	nw.drop[msgApp] = true
	nw.propose(1, "b")
	delete(nw.drop, msgApp)
	nw.propose(1, "c")
	nw.nodes[1].tick(1)
	nw.stabilize()
	for _, id := range nw.ids {
		if got := len(nw.nodes[id].applied); got != 4 {
			t.Fatalf("node %d applied %d entries, want 4", id, got)
		}
	}
}

// Restarting from the durable state alone keeps term, vote and durable log;
// undurable entries are gone.
func TestRestartFromDurableState(t *testing.T) {
	n := newTestNode(t, testConfig(2, ids(3)), RestoreState{})
	n.manual = true
	n.step(&messages.RaftMessage{Type: msgVote, From: 1, To: 2, Term: 4})
	n.step(&messages.RaftMessage{Type: msgApp, From: 1, To: 2, Term: 4, Entries: []*messages.Entry{{Index: 1, Term: 4}}})
	n.persist(1) // the vote
	n.step(&messages.RaftMessage{Type: msgApp, From: 1, To: 2, Term: 4, Index: 1, LogTerm: 4, Entries: []*messages.Entry{{Index: 2, Term: 4}}, Commit: 1})
	n.persist(1)
	// the last write (entry 2, commit 1) is lost in the crash
	r := newTestNode(t, testConfig(2, ids(3)), n.restoreState())
	if r.Term() != 4 || r.vote != 1 || r.LastIndex() != 1 || r.log.committed != 0 {
		t.Fatalf("restarted: term %d vote %d last %d commit %d, want 4 1 1 0", r.Term(), r.vote, r.LastIndex(), r.log.committed)
	}
	// A vote request of the same term from someone else is refused.
	r.step(&messages.RaftMessage{Type: msgVote, From: 3, To: 2, Term: 4, Index: 9, LogTerm: 4})
	if out := r.take(); len(out) != 1 || !out[0].Reject {
		t.Fatalf("restarted member answered %v, want a rejection", out)
	}
}

// A lagging follower whose entries were compacted away receives a MSG_SNAP
// and continues from the snapshot.
func TestSnapshotCatchUp(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	nw.isolate(3)
	nw.propose(1, "a", "b", "c")
	l := nw.nodes[1]
	if err := l.Compact(3); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(3); err != ErrCompacted {
		t.Fatalf("second Compact: %v, want ErrCompacted", err)
	}
	if err := l.Compact(9); err != ErrUnavailable {
		t.Fatalf("Compact beyond applied: %v, want ErrUnavailable", err)
	}
	nw.heal()
	l.tick(1)
	nw.stabilize()
	f := nw.nodes[3]
	if f.snap == nil || f.snap.Index != 3 || f.LastIndex() != 4 || f.log.committed != 4 {
		t.Fatalf("follower snapshot %v last %d commit %d, want snapshot 3, last 4", f.snap, f.LastIndex(), f.log.committed)
	}
	nw.propose(1, "d")
	if f.LastIndex() != 5 || f.log.committed != 5 {
		t.Fatalf("after the snapshot follower last %d commit %d, want 5 5", f.LastIndex(), f.log.committed)
	}
}
