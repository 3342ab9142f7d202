package mvcc_test

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func grantReq(id, ttl int64) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_LeaseGrant{LeaseGrant: &messages.LeaseGrantRequest{ID: id, TTL: ttl}}}
}

func revokeReq(id int64) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_LeaseRevoke{LeaseRevoke: &messages.LeaseRevokeRequest{ID: id}}}
}

func checkpointReq(cps ...*messages.LeaseCheckpoint) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_LeaseCheckpoint{LeaseCheckpoint: &messages.LeaseCheckpointRequest{Checkpoints: cps}}}
}

func (h *harness) grant(id, ttl int64) *messages.LeaseGrantResponse {
	h.t.Helper()
	return h.mustOK(h.apply(grantReq(id, ttl))).GetLeaseGrant()
}

func (h *harness) revoke(id int64) *messages.LeaseRevokeResponse {
	h.t.Helper()
	return h.mustOK(h.apply(revokeReq(id))).GetLeaseRevoke()
}

func (h *harness) putLease(key, val string, lease int64) *messages.PutResponse {
	h.t.Helper()
	return h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte(key), Value: []byte(val), Lease: lease}))).GetPut()
}

// wantLease checks lease id's TTLs and attached keys.
func wantLease(t testing.TB, s *mvcc.Store, id, ttl, remaining int64, keys ...string) {
	t.Helper()
	info, ok := s.Lease(id)
	if !ok {
		t.Fatalf("lease %d not found", id)
	}
	got := make([]string, len(info.Keys))
	for i, k := range info.Keys {
		got[i] = string(k)
	}
	if info.ID != id || info.TTL != ttl || info.RemainingTTL != remaining || !slices.Equal(got, keys) {
		t.Fatalf("lease %d: id %d ttl %d remaining %d keys %q; want ttl %d remaining %d keys %q",
			id, info.ID, info.TTL, info.RemainingTTL, got, ttl, remaining, keys)
	}
}

func wantNoLease(t testing.TB, s *mvcc.Store, id int64) {
	t.Helper()
	if info, ok := s.Lease(id); ok {
		t.Fatalf("lease %d exists: %+v", id, info)
	}
}

// leaseIDs returns the IDs Leases lists, checking that it lists no keys.
func leaseIDs(t testing.TB, s *mvcc.Store) []int64 {
	t.Helper()
	var ids []int64
	for _, l := range s.Leases() {
		if l.Keys != nil {
			t.Fatalf("Leases lists keys of lease %d: %q", l.ID, l.Keys)
		}
		ids = append(ids, l.ID)
	}
	return ids
}

func TestLeaseGrant(t *testing.T) {
	cases := []struct {
		name    string
		min     int64 // Options.MinLeaseTTL
		id, ttl int64
		wantErr *messages.Error
		wantTTL int64
	}{
		{name: "grant", id: 1, ttl: 10, wantTTL: 10},
		{name: "negative ID", id: -5, ttl: 10, wantTTL: 10},
		{name: "ID 0", id: 0, ttl: 10, wantErr: rpcerr.LeaseNotFound},
		{name: "ID taken", id: 7, ttl: 10, wantErr: rpcerr.LeaseExist},
		{name: "largest TTL", id: 1, ttl: mvcc.MaxLeaseTTL, wantTTL: mvcc.MaxLeaseTTL},
		{name: "TTL too large", id: 1, ttl: mvcc.MaxLeaseTTL + 1, wantErr: rpcerr.LeaseTTLTooLarge},
		{name: "TTL too large for a taken ID", id: 7, ttl: mvcc.MaxLeaseTTL + 1, wantErr: rpcerr.LeaseTTLTooLarge},
		{name: "TTL raised to the minimum", min: 5, id: 1, ttl: 2, wantTTL: 5},
		{name: "TTL above the minimum", min: 5, id: 1, ttl: 6, wantTTL: 6},
		{name: "TTL 0 raised", min: 5, id: 1, ttl: 0, wantTTL: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarnessWith(t, mvcc.Options{MinLeaseTTL: c.min})
			h.put("a", "1")
			h.grant(7, 100)
			rev := h.s.Rev()
			resp := h.apply(grantReq(c.id, c.ttl))
			if h.s.Rev() != rev {
				t.Fatalf("revision %d after a grant, want %d", h.s.Rev(), rev)
			}
			if c.wantErr != nil {
				wantErr(t, "grant", respErr(resp), c.wantErr)
				if c.id != 7 {
					wantNoLease(t, h.s, c.id)
				}
				wantLease(t, h.s, 7, max(100, c.min), 0)
				return
			}
			g := h.mustOK(resp).GetLeaseGrant()
			if g.GetHeader().GetRevision() != rev || g.ID != c.id || g.TTL != c.wantTTL {
				t.Fatalf("grant response %v, want revision %d ID %d TTL %d", g, rev, c.id, c.wantTTL)
			}
			wantLease(t, h.s, c.id, c.wantTTL, 0)
			h.reopen()
			wantLease(t, h.s, c.id, c.wantTTL, 0)
		})
	}
}

func TestPutUnknownLease(t *testing.T) {
	lp := func(key string, lease int64) *messages.RequestOp {
		return opPutReq(&messages.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: lease})
	}
	cases := []struct {
		name string
		req  *messages.InternalRequest
	}{
		{"put", putReq(&messages.PutRequest{Key: []byte("new"), Value: []byte("v"), Lease: 9})},
		{"put of an existing key", putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 9})},
		{"put with ignore_lease", putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 9, IgnoreLease: true})},
		{"txn: after a delete and a good put", &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Success: []*messages.RequestOp{opDel("a", "", false), lp("b", 1), lp("new", 9)},
		}}}},
		{"txn: failure branch", &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Compare: []*messages.Compare{cmpVersion("a", eq, 5)},
			Failure: []*messages.RequestOp{opDel("\x00", "\x00", false), lp("new", 9)},
		}}}},
		{"nested txn", &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Success: []*messages.RequestOp{lp("b", 1), opDel("a", "", false), opTxn(&messages.TxnRequest{
				Success: []*messages.RequestOp{opPut("c", "2"), lp("new", 9)},
			})},
		}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.grant(1, 10)
			h.put("a", "1")
			rev := h.s.Rev()
			before := h.rng(all(0)).Kvs
			wantErr(t, c.name, respErr(h.apply(c.req)), rpcerr.LeaseNotFound)
			if h.s.Rev() != rev {
				t.Fatalf("revision %d, want %d", h.s.Rev(), rev)
			}
			equalKVs(t, "keys", h.rng(all(0)).Kvs, before)
			wantLease(t, h.s, 1, 10, 0)
			wantNoLease(t, h.s, 9)
		})
	}
}

func TestLeaseAttach(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 20)
	h.putLease("a", "1", 1)
	h.putLease("b", "1", 1)
	h.putLease("c", "1", 2)
	h.put("x", "1")
	wantLease(t, h.s, 1, 10, 0, "a", "b")
	wantLease(t, h.s, 2, 20, 0, "c")
	if got := h.get("a").Lease; got != 1 {
		t.Fatalf("record of a has lease %d, want 1", got)
	}

	steps := []struct {
		name   string
		req    *messages.InternalRequest
		lease1 []string
		lease2 []string
		// recordLeases are the leases in the records of keys a, b, c, d, e
		// (-1: no such key).
		recordLeases [5]int64
	}{
		{"put on another lease moves the key", putReq(&messages.PutRequest{Key: b("a"), Value: b("2"), Lease: 2}),
			[]string{"b"}, []string{"a", "c"}, [5]int64{2, 1, 2, -1, -1}},
		{"put on the same lease keeps it", putReq(&messages.PutRequest{Key: b("b"), Value: b("2"), Lease: 1}),
			[]string{"b"}, []string{"a", "c"}, [5]int64{2, 1, 2, -1, -1}},
		{"put without a lease detaches", putReq(&messages.PutRequest{Key: b("b"), Value: b("3")}),
			nil, []string{"a", "c"}, [5]int64{2, 0, 2, -1, -1}},
		{"ignore_lease keeps the lease", putReq(&messages.PutRequest{Key: b("c"), Value: b("2"), IgnoreLease: true}),
			nil, []string{"a", "c"}, [5]int64{2, 0, 2, -1, -1}},
		{"ignore_lease keeps no lease", putReq(&messages.PutRequest{Key: b("b"), Value: b("4"), IgnoreLease: true}),
			nil, []string{"a", "c"}, [5]int64{2, 0, 2, -1, -1}},
		{"delete detaches", delReq(&messages.DeleteRangeRequest{Key: b("a")}),
			nil, []string{"c"}, [5]int64{-1, 0, 2, -1, -1}},
		{"txn: puts attach, deletes detach, nested too", &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Compare: []*messages.Compare{cmpLease("c", eq, 2)},
			Success: []*messages.RequestOp{
				opPutReq(&messages.PutRequest{Key: b("d"), Value: b("1"), Lease: 1}),
				opDel("c", "", false),
				opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{
					opPutReq(&messages.PutRequest{Key: b("e"), Value: b("1"), Lease: 1}),
					opPutReq(&messages.PutRequest{Key: b("b"), Value: b("5"), Lease: 2}),
				}}),
			},
		}}},
			[]string{"d", "e"}, []string{"b"}, [5]int64{-1, 2, -1, 1, 1}},
		{"txn: put, delete and put again of one key", &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Success: []*messages.RequestOp{
				opPutReq(&messages.PutRequest{Key: b("a"), Value: b("1"), Lease: 1}),
				opDel("a", "", false),
				opPutReq(&messages.PutRequest{Key: b("a"), Value: b("2"), Lease: 2}),
				opPutReq(&messages.PutRequest{Key: b("d"), Value: b("2"), Lease: 2}),
				opDel("d", "", false),
			},
		}}},
			[]string{"e"}, []string{"a", "b"}, [5]int64{2, 2, -1, -1, 1}},
		{"delete range detaches from both", delReq(&messages.DeleteRangeRequest{Key: b("a"), RangeEnd: b("\x00")}),
			nil, nil, [5]int64{-1, -1, -1, -1, -1}},
	}
	for i, st := range steps {
		h.mustOK(h.apply(st.req))
		wantLease(t, h.s, 1, 10, 0, st.lease1...)
		wantLease(t, h.s, 2, 20, 0, st.lease2...)
		for j, k := range []string{"a", "b", "c", "d", "e"} {
			kv := h.get(k)
			switch {
			case kv == nil && st.recordLeases[j] != -1:
				t.Fatalf("step %d (%s): key %s missing", i, st.name, k)
			case kv != nil && kv.Lease != st.recordLeases[j]:
				t.Fatalf("step %d (%s): record of %s has lease %d, want %d", i, st.name, k, kv.Lease, st.recordLeases[j])
			}
		}
	}
	// A txn that fails while executing (ignore_lease of a key it deleted)
	// changes no attachment.
	h.putLease("a", "1", 1)
	wantErr(t, "failing txn", respErr(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{
		opPutReq(&messages.PutRequest{Key: b("f"), Value: b("1"), Lease: 2}),
		opDel("a", "", false),
		opPutReq(&messages.PutRequest{Key: b("a"), IgnoreLease: true}),
	}})), rpcerr.KeyNotFound)
	wantLease(t, h.s, 1, 10, 0, "a")
	wantLease(t, h.s, 2, 20, 0)
}

// revRecords returns the records of revision main in the database file
// at path (closed): key, sub-revision and whether it is a tombstone.
func revRecords(t *testing.T, path string, main int64) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	prefix := make([]byte, 8)
	for i := range 8 {
		prefix[i] = byte(main >> (8 * (7 - i)))
	}
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("key")).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			kv := new(messages.KeyValue)
			v, err := mvcc.Unseal(k, v)
			if err != nil {
				return err
			}
			if err := proto.Unmarshal(v, kv); err != nil {
				return err
			}
			sub := int64(0)
			for _, x := range k[9:17] {
				sub = sub<<8 | int64(x)
			}
			out = append(out, fmt.Sprintf("%s@%d tomb=%v", kv.Key, sub, len(k) == 18 && k[17] == 't'))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLeaseRevoke(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.grant(2, 10)
	h.grant(3, 10)
	for _, k := range []string{"c", "a", "d", "b"} {
		h.putLease(k, "v", 1)
	}
	h.putLease("x", "v", 2)
	h.put("y", "v")
	h.putLease("d", "v2", 2) // moved to lease 2
	rev := h.s.Rev()

	revoked := h.revoke(1).GetHeader().GetRevision()
	if revoked != rev+1 || h.s.Rev() != rev+1 {
		t.Fatalf("revoke at revision %d (store %d), want %d", revoked, h.s.Rev(), rev+1)
	}
	if got := keysOf(h.rng(all(0)).Kvs); !slices.Equal(got, []string{"d", "x", "y"}) {
		t.Fatalf("keys after revoke %q, want d x y", got)
	}
	wantNoLease(t, h.s, 1)
	wantLease(t, h.s, 2, 10, 0, "d", "x")
	if got := leaseIDs(t, h.s); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("Leases %v, want [2 3]", got)
	}
	wantErr(t, "revoke again", respErr(h.apply(revokeReq(1))), rpcerr.LeaseNotFound)
	wantErr(t, "put on the revoked lease", respErr(h.apply(putReq(&messages.PutRequest{Key: b("a"), Lease: 1}))), rpcerr.LeaseNotFound)
	wantErr(t, "revoke unknown", respErr(h.apply(revokeReq(42))), rpcerr.LeaseNotFound)

	// A lease with no keys, or whose keys were all deleted or moved,
	// revokes without a new revision.
	rev = h.s.Rev()
	if r := h.revoke(3); r.GetHeader().GetRevision() != rev || h.s.Rev() != rev {
		t.Fatalf("revoke of a lease without keys at revision %d (store %d), want %d", r.GetHeader().GetRevision(), h.s.Rev(), rev)
	}
	h.grant(4, 10)
	h.putLease("p", "v", 4)
	h.putLease("q", "v", 4)
	h.del("p", "")
	h.put("q", "v2")
	rev = h.s.Rev()
	if r := h.revoke(4); r.GetHeader().GetRevision() != rev || h.s.Rev() != rev {
		t.Fatalf("revoke of a lease whose keys left at revision %d (store %d), want %d", r.GetHeader().GetRevision(), h.s.Rev(), rev)
	}
	if h.get("q") == nil {
		t.Fatal("revoke deleted a key no longer attached")
	}

	// The tombstones: one revision, sub-revisions 0.. in key order, as a
	// DeleteRange records them; the lease record is gone from the file.
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a@0 tomb=true", "b@1 tomb=true", "c@2 tomb=true"}
	if got := revRecords(t, h.path, revoked); !slices.Equal(got, want) {
		t.Fatalf("records of the revoke %q, want %q", got, want)
	}
	h.open()
	if got := leaseIDs(t, h.s); !slices.Equal(got, []int64{2}) {
		t.Fatalf("Leases after reopen %v, want [2]", got)
	}
	wantLease(t, h.s, 2, 10, 0, "d", "x")
}

func TestLeaseCheckpoint(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 100)
	h.grant(2, 200)
	h.putLease("a", "v", 1)
	rev := h.s.Rev()
	h.mustOK(h.apply(checkpointReq(
		&messages.LeaseCheckpoint{ID: 1, Remaining_TTL: 40},
		&messages.LeaseCheckpoint{ID: 99, Remaining_TTL: 5}, // unknown: ignored
	)))
	if h.s.Rev() != rev {
		t.Fatalf("revision %d after a checkpoint, want %d", h.s.Rev(), rev)
	}
	wantLease(t, h.s, 1, 100, 40, "a")
	wantLease(t, h.s, 2, 200, 0)
	wantNoLease(t, h.s, 99)
	h.mustOK(h.apply(checkpointReq(&messages.LeaseCheckpoint{ID: 1, Remaining_TTL: 30}, &messages.LeaseCheckpoint{ID: 2, Remaining_TTL: 150})))
	h.reopen()
	wantLease(t, h.s, 1, 100, 30, "a")
	wantLease(t, h.s, 2, 200, 150)
	if got := leaseIDs(t, h.s); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("Leases %v, want [1 2]", got)
	}
}

func TestLeasesSurviveReopen(t *testing.T) {
	h := newHarness(t)
	h.grant(3, 30)
	h.grant(1, 10)
	h.grant(2, 20)
	h.grant(-4, 40)
	h.putLease("a", "1", 1)
	h.putLease("b", "1", 1)
	h.putLease("c", "1", 2)
	h.putLease("n", "1", -4)
	h.mustOK(h.apply(checkpointReq(&messages.LeaseCheckpoint{ID: 2, Remaining_TTL: 7})))
	h.putLease("a", "2", 2) // reattached
	h.del("b", "")          // detached by delete
	h.putLease("b", "2", 3) // the key again, on another lease
	h.putLease("c", "2", 0) // detached by put
	h.putLease("d", "1", 1)
	h.putLease("d", "2", 1)
	h.mustOK(h.compact(h.s.Rev() - 1))
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	h.putLease("e", "1", 3) // applied, not committed: Close commits it
	want := map[int64][]string{1: {"d"}, 2: {"a"}, 3: {"b", "e"}, -4: {"n"}}
	check := func(when string) {
		t.Helper()
		if got := leaseIDs(t, h.s); !slices.Equal(got, []int64{-4, 1, 2, 3}) {
			t.Fatalf("%s: Leases %v, want [-4 1 2 3]", when, got)
		}
		wantLease(t, h.s, 1, 10, 0, want[1]...)
		wantLease(t, h.s, 2, 20, 7, want[2]...)
		wantLease(t, h.s, 3, 30, 0, want[3]...)
		wantLease(t, h.s, -4, 40, 0, want[-4]...)
	}
	check("before reopen")
	h.reopen()
	check("after reopen")
	h.mustOK(h.compact(h.s.Rev()))
	h.reopen()
	check("after compaction and reopen")

	// A revoke after the reopen deletes the rebuilt attachments.
	h.revoke(3)
	if h.get("b") != nil || h.get("e") != nil {
		t.Fatal("revoke after reopen left keys of the lease")
	}

	// MinLeaseTTL raises TTLs of leases read from the file (as etcd).
	h.opts.MinLeaseTTL = 15
	h.reopen()
	wantLease(t, h.s, 1, 15, 0, "d")
	wantLease(t, h.s, 2, 20, 7, "a")
}

func TestLeaseMissingRecordLeavesKeyUnattached(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.putLease("a", "1", 1)
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	editLeaseBucket(t, h.path, func(b *bolt.Bucket) error {
		return b.Delete([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	h.open()
	wantNoLease(t, h.s, 1)
	if kv := h.get("a"); kv == nil || kv.Lease != 1 {
		t.Fatalf("key a: %v, want its record with lease 1", kv)
	}
	// ignore_lease keeps the record's lease, attached to nothing.
	h.mustOK(h.apply(putReq(&messages.PutRequest{Key: b("a"), Value: b("2"), IgnoreLease: true})))
	if kv := h.get("a"); kv.Lease != 1 {
		t.Fatalf("key a has lease %d after ignore_lease, want 1", kv.Lease)
	}
	// A new lease 1 does not adopt the key.
	h.grant(1, 10)
	wantLease(t, h.s, 1, 10, 0)
	h.revoke(1)
	if h.get("a") == nil {
		t.Fatal("revoke deleted a key not attached to the lease")
	}
}

// editLeaseBucket runs f on bucket "lease" of the closed database file at
// path.
func editLeaseBucket(t *testing.T, path string, f func(*bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return f(tx.Bucket([]byte("lease"))) }); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseOpenCorrupt(t *testing.T) {
	rec := func(l *messages.LeaseRecord) []byte {
		v, err := proto.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	id := func(n int64) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, byte(n)} }
	cases := []struct {
		name       string
		key, value []byte
	}{
		{"undecodable record", id(5), []byte{0xff, 0xff, 0xff}},
		{"key of another lease", id(5), rec(&messages.LeaseRecord{ID: 6, TTL: 10})},
		{"short key", []byte{5}, rec(&messages.LeaseRecord{ID: 5, TTL: 10})},
		{"empty record under a key", id(5), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.grant(1, 10)
			h.putLease("a", "1", 1)
			if err := h.s.Close(); err != nil {
				t.Fatal(err)
			}
			h.s = nil
			editLeaseBucket(t, h.path, func(b *bolt.Bucket) error { return b.Put(c.key, mvcc.Seal(c.key, c.value)) })
			if _, err := mvcc.Verify(h.path); !errors.Is(err, mvcc.ErrCorrupt) {
				t.Fatalf("Verify: %v, want ErrCorrupt", err)
			}
			s, err := mvcc.Open(h.path, mvcc.Options{})
			if !errors.Is(err, mvcc.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// TestOpenRefusesFileWithoutLeaseBucket: the lease bucket is created with
// the others; a file without it lost every lease (their keys would never
// expire), and is refused.
func TestOpenRefusesFileWithoutLeaseBucket(t *testing.T) {
	h := newHarness(t)
	h.grant(1, 10)
	h.putLease("a", "1", 1)
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	h.s = nil
	db, err := bolt.Open(h.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("lease")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := mvcc.Open(h.path, mvcc.Options{})
	if !errors.Is(err, mvcc.ErrCorrupt) || !strings.Contains(err.Error(), `bucket "lease" is missing`) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open: %v, want ErrCorrupt naming the missing bucket", err)
	}
}

func TestRestoreCarriesLeases(t *testing.T) {
	src := newHarness(t)
	src.grant(1, 10)
	src.grant(2, 20)
	src.putLease("a", "1", 1)
	src.putLease("b", "1", 2)
	src.putLease("c", "1", 2)
	src.del("c", "")
	src.mustOK(src.apply(checkpointReq(&messages.LeaseCheckpoint{ID: 2, Remaining_TTL: 12})))
	snap := snapshotOf(t, src, "db.snap")

	dst := newHarness(t)
	dst.grant(1, 99)
	dst.grant(3, 30)
	dst.putLease("z", "1", 3)
	if err := dst.s.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	dst.idx = dst.s.ConsistentIndex()
	if got := leaseIDs(t, dst.s); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("Leases after Restore %v, want [1 2]", got)
	}
	wantLease(t, dst.s, 1, 10, 0, "a")
	wantLease(t, dst.s, 2, 20, 12, "b")
	wantErr(t, "put on a lease of the replaced store", respErr(dst.apply(putReq(&messages.PutRequest{Key: b("z"), Lease: 3}))), rpcerr.LeaseNotFound)
	dst.revoke(2)
	if dst.get("b") != nil {
		t.Fatal("revoke after Restore left key b")
	}
	dst.reopen()
	if got := leaseIDs(t, dst.s); !slices.Equal(got, []int64{1}) {
		t.Fatalf("Leases after Restore and reopen %v, want [1]", got)
	}
}

// TestLeaseConcurrentReaders reads Lease and Leases while the writer grants,
// attaches, moves, deletes, checkpoints and revokes. Keys are named after
// the lease they are put on ("l<id>/<n>"), so a reader can check that every
// key it sees attached belongs there, and that answers are sorted.
func TestLeaseConcurrentReaders(t *testing.T) {
	const readers = 4
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	h := newHarness(t)

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(r) + 1))
			for !done.Load() {
				ls := h.s.Leases()
				if !slices.IsSortedFunc(ls, func(a, b mvcc.LeaseInfo) int { return cmp.Compare(a.ID, b.ID) }) {
					errs <- fmt.Sprintf("reader %d: Leases not sorted: %v", r, ls)
					return
				}
				id := int64(rnd.Intn(6))
				info, ok := h.s.Lease(id)
				if !ok {
					continue
				}
				if !slices.IsSortedFunc(info.Keys, bytes.Compare) {
					errs <- fmt.Sprintf("reader %d: keys of lease %d not sorted: %q", r, id, info.Keys)
					return
				}
				for _, k := range info.Keys {
					if !bytes.HasPrefix(k, fmt.Appendf(nil, "l%d/", id)) {
						errs <- fmt.Sprintf("reader %d: key %q attached to lease %d", r, k, id)
						return
					}
				}
			}
		}()
	}

	rnd := rand.New(rand.NewSource(seed))
	live := map[int64]bool{}
	for i := range ops {
		id := int64(1 + rnd.Intn(5))
		switch n := rnd.Intn(10); {
		case n < 2:
			if !live[id] {
				h.grant(id, int64(10+i))
				live[id] = true
			}
		case n < 7:
			if live[id] {
				h.putLease(fmt.Sprintf("l%d/%d", id, rnd.Intn(20)), "v", id)
			}
		case n < 8:
			h.del(fmt.Sprintf("l%d/%d", id, rnd.Intn(20)), "")
		case n < 9:
			h.mustOK(h.apply(checkpointReq(&messages.LeaseCheckpoint{ID: id, Remaining_TTL: int64(i)})))
		default:
			if live[id] {
				h.revoke(id)
				delete(live, id)
			}
		}
		if rnd.Intn(50) == 0 {
			if err := h.s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Whatever is live at the end is attached to its lease.
	for id := range live {
		info, _ := h.s.Lease(id)
		kvs := h.rng(&messages.RangeRequest{Key: fmt.Appendf(nil, "l%d/", id), RangeEnd: fmt.Appendf(nil, "l%d0", id)}).Kvs
		if len(info.Keys) != len(kvs) {
			t.Fatalf("lease %d has %d keys, %d live", id, len(info.Keys), len(kvs))
		}
	}
}
