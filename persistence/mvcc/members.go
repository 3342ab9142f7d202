package mvcc

import (
	"encoding/binary"
	"fmt"

	"github.com/aetcd/aetcd/messages"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// membersBucketName holds published member attributes: key = 8-byte
// big-endian member ID, value = marshalled messages.Member.
var membersBucketName = []byte("members")

// applyMember records m's attributes in the open batch. It writes no key
// and does not advance the revision.
func (s *Store) applyMember(m *messages.Member) *messages.ClientResponse {
	b, err := s.batch().CreateBucketIfNotExists(membersBucketName)
	if err == nil {
		var v []byte
		if v, err = proto.Marshal(m); err == nil {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], m.GetID())
			err = b.Put(k[:], v)
		}
	}
	if err != nil {
		panic(fmt.Sprintf("mvcc: %s: record member %x: %v", s.path, m.GetID(), err))
	}
	s.dirty = true
	return &messages.ClientResponse{}
}

// Members returns the member attributes recorded so far, including those in
// the open batch, ordered by ID. Writer goroutine only. A record that does
// not decode is reported as ErrCorrupt.
func (s *Store) Members() ([]*messages.Member, error) {
	var out []*messages.Member
	read := func(tx *bolt.Tx) error {
		b := tx.Bucket(membersBucketName)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m := &messages.Member{}
			if len(k) != 8 || proto.Unmarshal(v, m) != nil || m.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("%w: %s: member record %x does not decode", ErrCorrupt, s.path, k)
			}
			out = append(out, m)
			return nil
		})
	}
	if s.tx != nil {
		return out, read(s.tx)
	}
	return out, s.db.View(read)
}
