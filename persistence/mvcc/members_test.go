package mvcc_test

import (
	"path/filepath"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"google.golang.org/protobuf/proto"
)

func attrs(m *messages.Member) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_MemberAttributes{MemberAttributes: m}}
}

func TestMembersPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := mvcc.Open(path, mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Membership changes create the records; attributes fill in name and
	// client URLs but never peer URLs or the learner flag.
	s.SaveMember(&messages.Member{ID: 7, PeerURLs: []string{"http://127.0.0.1:17"}})
	s.SaveMember(&messages.Member{ID: 3, PeerURLs: []string{"http://127.0.0.1:13"}, IsLearner: true})
	s.SaveMember(&messages.Member{ID: 5, PeerURLs: []string{"http://127.0.0.1:15"}})
	s.SetConsistentIndex(1)
	s.Apply(2, attrs(&messages.Member{ID: 7, Name: "m1", ClientURLs: []string{"http://127.0.0.1:1"}, PeerURLs: []string{"http://ignored:1"}, IsLearner: true}))
	s.Apply(3, attrs(&messages.Member{ID: 3, Name: "m2", ClientURLs: []string{"http://127.0.0.1:2"}}))
	s.RemoveMember(5)
	s.SetConsistentIndex(4)
	s.Apply(5, attrs(&messages.Member{ID: 5, Name: "gone"}))
	s.Apply(6, attrs(&messages.Member{ID: 9, Name: "never added"}))
	m1 := &messages.Member{ID: 7, Name: "m1", ClientURLs: []string{"http://127.0.0.1:1"}, PeerURLs: []string{"http://127.0.0.1:17"}}
	m2 := &messages.Member{ID: 3, Name: "m2", ClientURLs: []string{"http://127.0.0.1:2"}, PeerURLs: []string{"http://127.0.0.1:13"}, IsLearner: true}
	check := func(when string) {
		t.Helper()
		got, err := s.Members()
		if err != nil || len(got) != 2 || !proto.Equal(got[0], m2) || !proto.Equal(got[1], m1) {
			t.Fatalf("%s: %v %v", when, got, err)
		}
		removed, err := s.RemovedMembers()
		if err != nil || len(removed) != 1 || !removed[5] {
			t.Fatalf("%s: removed %v %v", when, removed, err)
		}
	}
	check("in the open batch")
	if s.Rev() != 1 {
		t.Fatalf("member records moved the revision to %d", s.Rev())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = mvcc.Open(path, mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("after reopen")
	if s.ConsistentIndex() != 6 {
		t.Fatalf("consistent index %d after reopen, want 6", s.ConsistentIndex())
	}
}
