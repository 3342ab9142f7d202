package mvcc

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// MaxLeaseTTL is the largest TTL in seconds a lease may be granted with
// (etcd's lease.MaxLeaseTTL).
const MaxLeaseTTL = 9_000_000_000

// leaseBucketName is the bbolt bucket of lease records (as etcd's schema).
var leaseBucketName = []byte("lease")

// LeaseInfo is one lease as the store has applied it.
type LeaseInfo struct {
	ID int64
	// TTL is the granted TTL in seconds (raised to Options.MinLeaseTTL).
	TTL int64
	// RemainingTTL is the last checkpointed remaining TTL in seconds, 0 if
	// none.
	RemainingTTL int64
	// Keys are the keys attached to the lease, ascending; nil from Leases.
	Keys [][]byte
}

// lease is a lease in the lease table.
type lease struct {
	ttl          int64
	remainingTTL int64
	keys         map[string]struct{}
}

// leaseTable is the store's leases and the keys attached to them. The
// writer reads it without locking (it is the only goroutine that changes
// it) and holds mu for writing around every change; other goroutines hold
// mu for reading.
type leaseTable struct {
	mu       sync.RWMutex
	leases   map[int64]*lease
	attached map[string]int64 // key → the lease it is attached to
}

// get returns the lease id, nil if none. Writer goroutine only.
func (t *leaseTable) get(id int64) *lease { return t.leases[id] }

// exists reports whether lease id exists. Safe on any goroutine.
func (t *leaseTable) exists(id int64) bool {
	if t == nil {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.leases[id] != nil
}

// add inserts a lease with no keys and returns it. The caller holds mu for
// writing.
func (t *leaseTable) add(id, ttl, remainingTTL int64) *lease {
	if t.leases == nil {
		t.leases = make(map[int64]*lease)
		t.attached = make(map[string]int64)
	}
	l := &lease{ttl: ttl, remainingTTL: remainingTTL, keys: make(map[string]struct{})}
	t.leases[id] = l
	return l
}

// remove deletes lease id and detaches its keys. The caller holds mu for
// writing.
func (t *leaseTable) remove(id int64) {
	for k := range t.leases[id].keys {
		delete(t.attached, k)
	}
	delete(t.leases, id)
}

// attach attaches key to lease id (which exists), detaching it from the
// lease it had. The caller holds mu for writing.
func (t *leaseTable) attach(key string, id int64) {
	t.detach(key)
	t.leases[id].keys[key] = struct{}{}
	t.attached[key] = id
}

// detach detaches key from its lease, if any. The caller holds mu for
// writing.
func (t *leaseTable) detach(key string) {
	if old, ok := t.attached[key]; ok {
		delete(t.leases[old].keys, key)
		delete(t.attached, key)
	}
}

// track updates the attachments for the records of one write, in order: a
// put attaches its key to the record's lease (none for 0) and a tombstone
// detaches it. A record whose lease does not exist leaves its key
// unattached: only a put with ignore_lease of a key whose lease was missing
// from the file at Open can write one (see restore). Writer goroutine only.
func (t *leaseTable) track(changes []record) {
	locked := false
	for _, r := range changes {
		id := r.kv.Lease
		if r.tombstone || t.leases[id] == nil {
			id = 0
		}
		if t.attached[string(r.kv.Key)] == id {
			continue
		}
		if !locked {
			t.mu.Lock()
			locked = true
		}
		if id == 0 {
			t.detach(string(r.kv.Key))
		} else {
			t.attach(string(r.kv.Key), id)
		}
	}
	if locked {
		t.mu.Unlock()
	}
}

// replace takes over the leases of o (a table no other goroutine uses).
func (t *leaseTable) replace(o *leaseTable) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leases, t.attached = o.leases, o.attached
}

// Lease returns lease id and its attached keys (copies), or false if it
// does not exist. It reflects every applied entry, which may be ahead of the
// newest published View. Safe on any goroutine.
func (s *Store) Lease(id int64) (LeaseInfo, bool) {
	t := &s.leases
	t.mu.RLock()
	defer t.mu.RUnlock()
	l := t.leases[id]
	if l == nil {
		return LeaseInfo{}, false
	}
	keys := make([][]byte, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, func(a, b []byte) int { return cmp.Compare(string(a), string(b)) })
	return LeaseInfo{ID: id, TTL: l.ttl, RemainingTTL: l.remainingTTL, Keys: keys}, true
}

// Leases returns every lease, ascending by ID, without their keys. Like
// Lease it reflects every applied entry. Safe on any goroutine.
func (s *Store) Leases() []LeaseInfo {
	t := &s.leases
	t.mu.RLock()
	out := make([]LeaseInfo, 0, len(t.leases))
	for id, l := range t.leases {
		out = append(out, LeaseInfo{ID: id, TTL: l.ttl, RemainingTTL: l.remainingTTL})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b LeaseInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// leaseKey is the bbolt key of lease id: 8 bytes big-endian (as etcd's).
func leaseKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(id))
}

// writeLease writes the record of lease id to the batch.
func (s *Store) writeLease(id int64, l *lease) {
	v, err := proto.Marshal(&messages.LeaseRecord{ID: id, TTL: l.ttl, RemainingTTL: l.remainingTTL})
	if err == nil {
		err = putSealed(s.leaseRecords, leaseKey(id), v)
	}
	if err != nil {
		panic(fmt.Sprintf("mvcc: %s: write lease %d: %v", s.path, id, err))
	}
}

// applyLeaseGrant grants a lease as etcd's lessor.Grant: the ID must not be
// 0 or taken, the TTL at most MaxLeaseTTL; a TTL below
// Options.MinLeaseTTL is raised to it. A grant does not change the revision.
func (s *Store) applyLeaseGrant(g *messages.LeaseGrantRequest) *messages.ClientResponse {
	id, ttl := g.GetID(), g.GetTTL()
	switch {
	case id == 0:
		return rpcerr.Response(rpcerr.LeaseNotFound)
	case ttl > MaxLeaseTTL:
		return rpcerr.Response(rpcerr.LeaseTTLTooLarge)
	case s.leases.get(id) != nil:
		return rpcerr.Response(rpcerr.LeaseExist)
	}
	ttl = max(ttl, s.opts.MinLeaseTTL)
	s.leases.mu.Lock()
	l := s.leases.add(id, ttl, 0)
	s.leases.mu.Unlock()
	s.writeLease(id, l)
	return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseGrant{LeaseGrant: &messages.LeaseGrantResponse{
		Header: &messages.ResponseHeader{Revision: s.rev},
		ID:     id,
		TTL:    ttl,
	}}}
}

// applyLeaseRevoke deletes the keys attached to the lease in one write, in
// key order (as etcd's lessor.Revoke: members record the same tombstones),
// and then the lease.
func (s *Store) applyLeaseRevoke(r *messages.LeaseRevokeRequest) *messages.ClientResponse {
	id := r.GetID()
	l := s.leases.get(id)
	if l == nil {
		return rpcerr.Response(rpcerr.LeaseNotFound)
	}
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tw := s.newWrite()
	for _, k := range keys {
		if tw.deleteKeys([]byte(k), nil) != 1 {
			panic(fmt.Sprintf("mvcc: key %q attached to lease %d does not exist", k, id))
		}
	}
	// Remove the lease with its keys in one step for readers of the table;
	// end then finds the tombstoned keys already detached.
	s.leases.mu.Lock()
	s.leases.remove(id)
	s.leases.mu.Unlock()
	tw.end()
	if err := s.leaseRecords.Delete(leaseKey(id)); err != nil {
		panic(fmt.Sprintf("mvcc: %s: delete lease %d: %v", s.path, id, err))
	}
	return &messages.ClientResponse{Response: &messages.ClientResponse_LeaseRevoke{LeaseRevoke: &messages.LeaseRevokeResponse{
		Header: &messages.ResponseHeader{Revision: s.rev},
	}}}
}

// applyLeaseCheckpoint records the remaining TTLs of the leases that exist
// (others are ignored, as etcd's lessor.Checkpoint) and returns an empty
// response.
func (s *Store) applyLeaseCheckpoint(c *messages.LeaseCheckpointRequest) *messages.ClientResponse {
	for _, cp := range c.GetCheckpoints() {
		l := s.leases.get(cp.GetID())
		if l == nil {
			continue
		}
		s.leases.mu.Lock()
		l.remainingTTL = cp.GetRemaining_TTL()
		s.leases.mu.Unlock()
		s.writeLease(cp.GetID(), l)
	}
	// No client waits for a checkpoint and ClientResponse has no case for
	// one: answer nothing, as applyMember does.
	return &messages.ClientResponse{}
}

// restoreLeases loads bucket "lease" (nil: none)
// into the lease table, raising TTLs below Options.MinLeaseTTL in memory as
// etcd does, and attaches the keys in leaseOf (each live key's lease, from
// its latest record). A key whose lease is not in the bucket stays
// unattached (etcd's restore does the same).
func (s *Store) restoreLeases(b *bolt.Bucket, leaseOf map[string]int64) error {
	t := &leaseTable{}
	if b != nil {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("lease record key %x is not 8 bytes", k)
			}
			rec := new(messages.LeaseRecord)
			v, err := unseal(k, v)
			if err == nil {
				err = decodeExact(v, rec)
			}
			if err != nil {
				return fmt.Errorf("lease record %x does not decode: %w", k, err)
			}
			if int64(binary.BigEndian.Uint64(k)) != rec.ID {
				return fmt.Errorf("lease record %x holds lease %d", k, rec.ID)
			}
			t.add(rec.ID, max(rec.TTL, s.opts.MinLeaseTTL), rec.RemainingTTL)
		}
	}
	for k, id := range leaseOf {
		if t.leases[id] != nil {
			t.attach(k, id)
		}
	}
	s.leases.replace(t)
	return nil
}

// HasLease reports whether lease id exists, as Lease does but without
// copying its keys. Safe on any goroutine.
func (s *Store) HasLease(id int64) bool { return s.leases.exists(id) }
