package mvcc_test

import (
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

func all(rev int64) *messages.RangeRequest {
	return &messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: rev}
}

func TestCompaction(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("a", "2") // 3
	h.put("b", "1") // 4
	h.del("a", "")  // 5
	h.put("c", "1") // 6

	wantErr(t, "compact a future revision", respErr(h.compact(7)), rpcerr.FutureRev)
	resp := h.mustOK(h.compact(3)).GetCompaction()
	if resp.Header.Revision != 6 || h.s.CompactRev() != 3 || h.s.View().CompactRev() != 3 || h.s.Rev() != 6 {
		t.Fatalf("compact 3: header %d, compact rev %d/%d, rev %d", resp.Header.Revision, h.s.CompactRev(), h.s.View().CompactRev(), h.s.Rev())
	}
	wantErr(t, "compact the same revision", respErr(h.compact(3)), rpcerr.Compacted)
	wantErr(t, "compact an older revision", respErr(h.compact(2)), rpcerr.Compacted)
	wantErr(t, "range below the compaction", h.rangeErr(all(2)), rpcerr.Compacted)
	wantErr(t, "count below the compaction", h.rangeErr(&messages.RangeRequest{Key: []byte("a"), Revision: 2, CountOnly: true}), rpcerr.Compacted)
	equalKVs(t, "range at the compaction", h.rng(all(3)).Kvs, []*messages.KeyValue{kv("a", "2", 2, 3, 2)})
	equalKVs(t, "range after the compaction", h.rng(all(4)).Kvs, []*messages.KeyValue{kv("a", "2", 2, 3, 2), kv("b", "1", 4, 4, 1)})

	// Compacting at a tombstone keeps what reads at that revision need.
	h.mustOK(h.compact(5))
	equalKVs(t, "range at 5", h.rng(all(5)).Kvs, []*messages.KeyValue{kv("b", "1", 4, 4, 1)})
	h.mustOK(h.compact(6))
	equalKVs(t, "range at 6", h.rng(all(6)).Kvs, []*messages.KeyValue{kv("b", "1", 4, 4, 1), kv("c", "1", 6, 6, 1)})
	wantErr(t, "range at 5 after compact 6", h.rangeErr(all(5)), rpcerr.Compacted)

	// A key deleted and recreated after compaction starts a new life.
	h.put("a", "new") // 7
	equalKVs(t, "recreated", []*messages.KeyValue{h.get("a")}, []*messages.KeyValue{kv("a", "new", 7, 7, 1)})

	// Everything survives a restart.
	h.reopen()
	if h.s.CompactRev() != 6 || h.s.Rev() != 7 {
		t.Fatalf("after reopen: compact rev %d rev %d", h.s.CompactRev(), h.s.Rev())
	}
	wantErr(t, "range at 5 after reopen", h.rangeErr(all(5)), rpcerr.Compacted)
	wantErr(t, "compact 6 after reopen", respErr(h.compact(6)), rpcerr.Compacted)
	equalKVs(t, "range at 6 after reopen", h.rng(all(6)).Kvs, []*messages.KeyValue{kv("b", "1", 4, 4, 1), kv("c", "1", 6, 6, 1)})
	equalKVs(t, "range after reopen", h.rng(all(0)).Kvs, []*messages.KeyValue{kv("a", "new", 7, 7, 1), kv("b", "1", 4, 4, 1), kv("c", "1", 6, 6, 1)})
}

// TestCompactionAtFreshStore: etcd accepts compacting a never-compacted
// store at revision 0 or 1.
func TestCompactionAtFreshStore(t *testing.T) {
	h := newHarness(t)
	h.mustOK(h.compact(1))
	if h.s.CompactRev() != 1 {
		t.Fatalf("compact rev %d", h.s.CompactRev())
	}
	wantErr(t, "again", respErr(h.compact(1)), rpcerr.Compacted)
	h.put("a", "1")
	h.mustOK(h.compact(2))

	h0 := newHarness(t)
	h0.mustOK(h0.compact(0))
	h0.put("a", "1")
	h0.reopen()
	if h0.s.CompactRev() != 0 || h0.s.Rev() != 2 {
		t.Fatalf("compacted at 0, after reopen: compact rev %d rev %d", h0.s.CompactRev(), h0.s.Rev())
	}
	wantErr(t, "compact 0 again", respErr(h0.compact(0)), rpcerr.Compacted)
}

// TestCompactionRevisionSurvivesRestart: when compaction removed the latest
// records (tombstones), the revision after a restart must not go back (etcd #17780).
func TestCompactionRevisionSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.del("a", "")  // 3
	h.put("b", "1") // 4
	h.del("b", "")  // 5
	h.mustOK(h.compact(5))
	h.reopen()
	if h.s.Rev() != 5 || h.s.CompactRev() != 5 {
		t.Fatalf("after reopen: rev %d compact rev %d, want 5 5", h.s.Rev(), h.s.CompactRev())
	}
	if resp := h.put("c", "1"); resp.Header.Revision != 6 {
		t.Fatalf("next write got revision %d, want 6", resp.Header.Revision)
	}
}

func TestHashKV(t *testing.T) {
	reqs := []*messages.InternalRequest{
		putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("1")}),
		putReq(&messages.PutRequest{Key: []byte("b"), Value: []byte("1")}),
		putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("2")}),
		delReq(&messages.DeleteRangeRequest{Key: []byte("b")}),
		{Request: &messages.InternalRequest_Txn{Txn: &messages.TxnRequest{
			Compare: []*messages.Compare{cmpVersion("a", eq, 2)},
			Success: []*messages.RequestOp{opPut("c", "1"), opPut("d", "1"), opDel("a", "", false)},
		}}},
		putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("3")}),
		{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: 4}}},
		putReq(&messages.PutRequest{Key: []byte("e"), Value: []byte("1")}),
	}
	h1, h2 := newHarness(t), newHarness(t)
	for i, r := range reqs {
		h1.apply(r)
		h2.apply(r)
		if i == 3 {
			if err := h2.s.Commit(); err != nil { // commit timing must not matter
				t.Fatal(err)
			}
		}
	}
	h2.reopen() // neither must a restart (the index is rebuilt from the file)
	for _, rev := range []int64{0, 4, 5, 6, 7, 8} {
		a, ac, ar, err1 := h1.s.HashKV(rev)
		b, bc, br, err2 := h2.s.HashKV(rev)
		if err1 != nil || err2 != nil {
			t.Fatalf("HashKV(%d): %v %v", rev, err1, err2)
		}
		if a != b || ac != bc || ar != br {
			t.Fatalf("HashKV(%d): %x/%d/%d vs %x/%d/%d", rev, a, ac, ar, b, bc, br)
		}
		if ac != 4 || (rev == 0 && ar != 8) || (rev != 0 && ar != rev) {
			t.Fatalf("HashKV(%d): compact rev %d hash rev %d", rev, ac, ar)
		}
	}
	h0, _, _, _ := h1.s.HashKV(5)
	h1c, _, _, _ := h1.s.HashKV(8)
	if h0 == h1c {
		t.Fatal("hashes at different revisions are equal")
	}
	_, _, _, err := h1.s.HashKV(3)
	wantErr(t, "hash below compaction", err, rpcerr.Compacted)
	_, _, _, err = h1.s.HashKV(9)
	wantErr(t, "hash of a future revision", err, rpcerr.FutureRev)

	// A different history hashes differently.
	h2.put("e", "2")
	a, _, _, _ := h1.s.HashKV(0)
	b2, _, _, _ := h2.s.HashKV(8)
	c2, _, _, _ := h2.s.HashKV(0)
	if a != b2 || a == c2 {
		t.Fatalf("hash at 8 %x vs %x; current %x must differ", a, b2, c2)
	}
	// A never-compacted store reports compact revision -1, as etcd.
	h3 := newHarness(t)
	if _, c, r, _ := h3.s.HashKV(0); c != -1 || r != 1 {
		t.Fatalf("fresh store HashKV: compact rev %d hash rev %d", c, r)
	}
}
