package mvcc_test

import (
	"path/filepath"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"google.golang.org/protobuf/proto"
)

func TestMemberAttributesPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := mvcc.Open(path, mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	m1 := &messages.Member{ID: 7, Name: "m1", ClientURLs: []string{"http://127.0.0.1:1"}}
	m2 := &messages.Member{ID: 3, Name: "m2", ClientURLs: []string{"http://127.0.0.1:2"}}
	for i, m := range []*messages.Member{m1, m2} {
		s.Apply(uint64(i+1), &messages.InternalRequest{Request: &messages.InternalRequest_MemberAttributes{MemberAttributes: m}})
	}
	got, err := s.Members()
	if err != nil || len(got) != 2 || !proto.Equal(got[0], m2) || !proto.Equal(got[1], m1) {
		t.Fatalf("in the open batch: %v %v", got, err)
	}
	if s.Rev() != 1 {
		t.Fatalf("member attributes moved the revision to %d", s.Rev())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = mvcc.Open(path, mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err = s.Members()
	if err != nil || len(got) != 2 || !proto.Equal(got[1], m1) || s.ConsistentIndex() != 2 {
		t.Fatalf("after reopen: %v %v ci %d", got, err, s.ConsistentIndex())
	}
}
