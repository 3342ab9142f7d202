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

// removedBucketName holds the IDs of removed members: key = 8-byte
// big-endian member ID, empty value. A removed ID never rejoins.
var removedBucketName = []byte("members_removed")

func memberKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// applyMember records a member's published attributes (name, client URLs)
// in the open batch; its peer URLs and learner flag stay as membership
// changes set them. Attributes of a member without a record (removed, or
// never added) are ignored. It writes no key and does not advance the
// revision.
func (s *Store) applyMember(m *messages.Member) *messages.ClientResponse {
	b := s.batch().Bucket(membersBucketName)
	if b == nil {
		return &messages.ClientResponse{}
	}
	k := memberKey(m.GetID())
	v := b.Get(k)
	if v == nil {
		return &messages.ClientResponse{}
	}
	rec := &messages.Member{}
	if err := proto.Unmarshal(mustUnseal(k, v), rec); err != nil {
		panic(fmt.Sprintf("mvcc: %s: member record %x does not decode: %v", s.path, m.GetID(), err))
	}
	rec.Name, rec.ClientURLs = m.Name, m.ClientURLs
	s.SaveMember(rec)
	return &messages.ClientResponse{}
}

// SaveMember records m, replacing any record of m.ID, in the open batch.
func (s *Store) SaveMember(m *messages.Member) {
	b, err := s.batch().CreateBucketIfNotExists(membersBucketName)
	if err == nil {
		var v []byte
		if v, err = proto.Marshal(m); err == nil {
			err = putSealed(b, memberKey(m.GetID()), v)
		}
	}
	if err != nil {
		panic(fmt.Sprintf("mvcc: %s: record member %x: %v", s.path, m.GetID(), err))
	}
	s.dirty = true
}

// RemoveMember deletes id's record and records id as removed, in the open
// batch.
func (s *Store) RemoveMember(id uint64) {
	tx := s.batch()
	var err error
	if b := tx.Bucket(membersBucketName); b != nil {
		err = b.Delete(memberKey(id))
	}
	if err == nil {
		var rb *bolt.Bucket
		if rb, err = tx.CreateBucketIfNotExists(removedBucketName); err == nil {
			err = putSealed(rb, memberKey(id), nil)
		}
	}
	if err != nil {
		panic(fmt.Sprintf("mvcc: %s: remove member %x: %v", s.path, id, err))
	}
	s.dirty = true
}

// RemovedMembers returns the IDs of removed members, including those
// removed in the open batch. Writer goroutine only.
func (s *Store) RemovedMembers() (map[uint64]bool, error) {
	out := map[uint64]bool{}
	read := func(tx *bolt.Tx) error {
		b := tx.Bucket(removedBucketName)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v, err := unseal(k, v); err != nil || len(k) != 8 || len(v) != 0 {
				return fmt.Errorf("%w: %s: removed member record %x = %x (%v)", ErrCorrupt, s.path, k, v, err)
			}
			out[binary.BigEndian.Uint64(k)] = true
			return nil
		})
	}
	if s.tx != nil {
		return out, read(s.tx)
	}
	return out, s.db.View(read)
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
			v, err := unseal(k, v)
			if err != nil || len(k) != 8 || proto.Unmarshal(v, m) != nil || m.ID != binary.BigEndian.Uint64(k) {
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
