package mvcc

import (
	"fmt"
	"hash/crc32"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	bolt "go.etcd.io/bbolt"
)

// HashKV returns etcd's HashKV of the store: a CRC-32 (Castagnoli) over the
// bucket name and the records of bucket "key" up to rev (0: the current
// revision), skipping records a compaction at rev would remove below the
// compaction revision and a tombstone at the compaction revision, as etcd's
// kvHasher; with the compaction revision (-1 if none) and the hashed
// revision. Members that applied the same requests return the same hash.
// Errors: rpcerr.Compacted if rev is below the compaction revision,
// rpcerr.FutureRev if above the current one. Writer goroutine only; it
// includes writes not yet committed.
func (s *Store) HashKV(rev int64) (hash uint32, compactRev int64, hashRev int64, err *messages.Error) {
	s.mustBeUsable()
	compactRev = s.compactRev
	switch {
	case rev > 0 && rev < compactRev:
		return 0, 0, 0, rpcerr.Compacted
	case rev > 0 && rev > s.rev:
		return 0, 0, 0, rpcerr.FutureRev
	case rev == 0:
		rev = s.rev
	}
	keep := s.index.keep(rev)
	h := crc32.New(castagnoli)
	h.Write(keyBucketName)
	lower := revision{main: compactRev + 1}
	walk := func(b *bolt.Bucket) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			kr, tomb, perr := parseRevKey(k)
			if perr != nil {
				panic(fmt.Sprintf("mvcc: %s: %v", s.path, perr))
			}
			if kr.main > rev {
				break // keys are in revision order
			}
			if kr.less(lower) && len(keep) > 0 {
				if _, ok := keep[kr]; !ok {
					continue
				}
			}
			if kr.main == compactRev && tomb {
				continue
			}
			h.Write(k)
			h.Write(mustUnseal(k, v))
		}
	}
	if s.tx != nil {
		walk(s.keys)
	} else if verr := s.db.View(func(tx *bolt.Tx) error {
		walk(tx.Bucket(keyBucketName))
		return nil
	}); verr != nil {
		panic(fmt.Sprintf("mvcc: %s: hash: %v", s.path, verr))
	}
	return h.Sum32(), compactRev, rev, nil
}
