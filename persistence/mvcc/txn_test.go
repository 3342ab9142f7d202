package mvcc_test

import (
	"slices"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

const (
	eq = messages.Compare_EQUAL
	gt = messages.Compare_GREATER
	lt = messages.Compare_LESS
	ne = messages.Compare_NOT_EQUAL
)

func TestTxnCompares(t *testing.T) {
	h := newHarness(t)
	h.put("a", "x")
	h.put("a", "x") // a: create 2, mod 3, version 2, value "x", lease 0
	cases := []struct {
		cmp  *messages.Compare
		want bool
	}{
		{cmpVersion("a", eq, 2), true}, {cmpVersion("a", eq, 1), false},
		{cmpVersion("a", gt, 1), true}, {cmpVersion("a", gt, 2), false},
		{cmpVersion("a", lt, 3), true}, {cmpVersion("a", lt, 2), false},
		{cmpVersion("a", ne, 1), true}, {cmpVersion("a", ne, 2), false},
		{cmpCreate("a", eq, 2), true}, {cmpCreate("a", eq, 3), false},
		{cmpCreate("a", gt, 1), true}, {cmpCreate("a", gt, 2), false},
		{cmpCreate("a", lt, 3), true}, {cmpCreate("a", lt, 2), false},
		{cmpCreate("a", ne, 3), true}, {cmpCreate("a", ne, 2), false},
		{cmpMod("a", eq, 3), true}, {cmpMod("a", eq, 2), false},
		{cmpMod("a", gt, 2), true}, {cmpMod("a", gt, 3), false},
		{cmpMod("a", lt, 4), true}, {cmpMod("a", lt, 3), false},
		{cmpMod("a", ne, 2), true}, {cmpMod("a", ne, 3), false},
		{cmpValue("a", eq, "x"), true}, {cmpValue("a", eq, "y"), false},
		{cmpValue("a", gt, "w"), true}, {cmpValue("a", gt, "x"), false},
		{cmpValue("a", lt, "y"), true}, {cmpValue("a", lt, "x"), false},
		{cmpValue("a", ne, "y"), true}, {cmpValue("a", ne, "x"), false},
		{cmpValue("a", gt, ""), true}, {cmpValue("a", eq, ""), false},
		{cmpLease("a", eq, 0), true}, {cmpLease("a", eq, 1), false},
		{cmpLease("a", gt, -1), true}, {cmpLease("a", gt, 0), false},
		{cmpLease("a", lt, 1), true}, {cmpLease("a", lt, 0), false},
		{cmpLease("a", ne, 1), true}, {cmpLease("a", ne, 0), false},
		// A missing key compares as a zero KeyValue, except VALUE, which fails.
		{cmpVersion("zz", eq, 0), true}, {cmpVersion("zz", gt, 0), false},
		{cmpCreate("zz", eq, 0), true}, {cmpCreate("zz", lt, 1), true},
		{cmpMod("zz", eq, 0), true}, {cmpMod("zz", ne, 0), false},
		{cmpLease("zz", eq, 0), true},
		{cmpValue("zz", eq, ""), false}, {cmpValue("zz", ne, "x"), false}, {cmpValue("zz", lt, "x"), false},
		// A compare with the wrong target union compares against zero.
		{&messages.Compare{Key: []byte("a"), Target: messages.Compare_VERSION, Result: gt, TargetUnion: &messages.Compare_ModRevision{ModRevision: 100}}, true},
	}
	for _, c := range cases {
		rt := &messages.TxnRequest{
			Compare: []*messages.Compare{c.cmp},
			Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a")})},
			Failure: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("zz")})},
		}
		resp := h.mustOK(h.txn(rt)).GetTxn()
		if resp.Succeeded != c.want {
			t.Errorf("compare %v: succeeded %v, want %v", c.cmp, resp.Succeeded, c.want)
		}
		if resp.Header.Revision != 3 || h.s.Rev() != 3 {
			t.Fatalf("read-only txn changed the revision: header %d store %d", resp.Header.Revision, h.s.Rev())
		}
		if got := len(resp.Responses[0].GetResponseRange().Kvs); got != map[bool]int{true: 1, false: 0}[c.want] {
			t.Errorf("compare %v: ran the wrong branch", c.cmp)
		}
	}
	// Several compares: all must hold.
	rt := &messages.TxnRequest{Compare: []*messages.Compare{cmpVersion("a", eq, 2), cmpValue("a", eq, "y")}}
	if h.mustOK(h.txn(rt)).GetTxn().Succeeded {
		t.Fatal("a txn with one failing compare succeeded")
	}
	if !h.mustOK(h.txn(&messages.TxnRequest{})).GetTxn().Succeeded {
		t.Fatal("a txn without compares failed")
	}
}

func TestTxnRangeCompares(t *testing.T) {
	h := newHarness(t)
	h.put("r1", "a") // 2
	h.put("r2", "b") // 3
	h.put("r2", "b") // 4: r1 version 1, r2 version 2
	h.put("s", "c")  // 5
	rc := func(c *messages.Compare, end string) *messages.Compare { c.RangeEnd = []byte(end); return c }
	cases := []struct {
		name string
		cmp  *messages.Compare
		want bool
	}{
		{"every key matches", rc(cmpVersion("r", gt, 0), "s"), true},
		{"one key does not match", rc(cmpVersion("r", eq, 1), "s"), false},
		{"value range", rc(cmpValue("r", lt, "c"), "s"), true},
		{"value range, one fails", rc(cmpValue("r", eq, "a"), "s"), false},
		{"mod range", rc(cmpMod("r", lt, 5), "s"), true},
		{"from key", rc(cmpCreate("r2", gt, 2), "\x00"), true},
		{"from key, one fails", rc(cmpCreate("r1", gt, 2), "\x00"), false},
		{"all keys", rc(cmpLease("\x00", eq, 0), "\x00"), true},
		{"empty range: numeric compares a zero KeyValue", rc(cmpVersion("t", eq, 0), "u"), true},
		{"empty range: create < 1", rc(cmpCreate("t", lt, 1), "u"), true},
		{"empty range: version > 0 fails", rc(cmpVersion("t", gt, 0), "u"), false},
		{"empty range: value fails", rc(cmpValue("t", eq, ""), "u"), false},
		{"empty range: value not-equal fails", rc(cmpValue("t", ne, "x"), "u"), false},
	}
	for _, c := range cases {
		resp := h.mustOK(h.txn(&messages.TxnRequest{Compare: []*messages.Compare{c.cmp}})).GetTxn()
		if resp.Succeeded != c.want {
			t.Errorf("%s: succeeded %v, want %v", c.name, resp.Succeeded, c.want)
		}
	}
	// Deleted keys do not take part in a range compare.
	h.del("r1", "")
	if !h.mustOK(h.txn(&messages.TxnRequest{Compare: []*messages.Compare{rc(cmpVersion("r", eq, 2), "s")}})).GetTxn().Succeeded {
		t.Error("a deleted key took part in a range compare")
	}
}

func TestTxnReadYourWrites(t *testing.T) {
	h := newHarness(t)
	h.put("a", "0") // 2
	rng := func(key string) *messages.RequestOp { return opRange(&messages.RangeRequest{Key: []byte(key)}) }
	rt := &messages.TxnRequest{Success: []*messages.RequestOp{
		rng("a"),
		opPut("a", "1"),
		rng("a"),
		opDel("a", "", true),
		rng("a"),
		opPut("a", "2"),
		rng("a"),
		opPutReq(&messages.PutRequest{Key: []byte("b"), Value: []byte("x"), PrevKv: true}),
		opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 2}),
	}}
	resp := h.mustOK(h.txn(rt)).GetTxn()
	if !resp.Succeeded || resp.Header.Revision != 3 || h.s.Rev() != 3 {
		t.Fatalf("txn: succeeded %v header %d store %d", resp.Succeeded, resp.Header.Revision, h.s.Rev())
	}
	r := resp.Responses
	check := func(i int, want []*messages.KeyValue, wantRev int64) {
		t.Helper()
		rr := r[i].GetResponseRange()
		equalKVs(t, "range "+itoa(int64(i)), rr.Kvs, want)
		if rr.Header.Revision != wantRev {
			t.Fatalf("range %d header revision %d, want %d", i, rr.Header.Revision, wantRev)
		}
	}
	check(0, []*messages.KeyValue{kv("a", "0", 2, 2, 1)}, 2)
	check(2, []*messages.KeyValue{kv("a", "1", 2, 3, 2)}, 3)
	check(4, nil, 3)
	check(6, []*messages.KeyValue{kv("a", "2", 3, 3, 1)}, 3)
	check(8, []*messages.KeyValue{kv("a", "0", 2, 2, 1)}, 3)
	if p := r[1].GetResponsePut(); p.Header.Revision != 3 {
		t.Fatalf("put header revision %d", p.Header.Revision)
	}
	if d := r[3].GetResponseDeleteRange(); d.Deleted != 1 || d.Header.Revision != 3 {
		t.Fatalf("delete response %v", d)
	} else {
		equalKVs(t, "delete prev kvs", d.PrevKvs, []*messages.KeyValue{kv("a", "1", 2, 3, 2)})
	}
	if p := r[7].GetResponsePut(); p.PrevKv != nil {
		t.Fatalf("prev kv of a new key: %v", p.PrevKv)
	}
	equalKVs(t, "after txn", h.rng(&messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}).Kvs,
		[]*messages.KeyValue{kv("a", "2", 3, 3, 1), kv("b", "x", 3, 3, 1)})
	// Before the txn's revision, the state before it.
	equalKVs(t, "at 2", h.rng(&messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: 2}).Kvs,
		[]*messages.KeyValue{kv("a", "0", 2, 2, 1)})
}

func TestTxnNested(t *testing.T) {
	h := newHarness(t)
	h.put("x", "0") // 2
	inner := &messages.TxnRequest{
		// Evaluated before the outer txn writes: x is still at version 1.
		Compare: []*messages.Compare{cmpVersion("x", eq, 1)},
		Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("x")}), opPut("y", "inner")},
		Failure: []*messages.RequestOp{opPut("z", "wrong branch")},
	}
	innerFail := &messages.TxnRequest{
		Compare: []*messages.Compare{cmpValue("x", eq, "nope")},
		Success: []*messages.RequestOp{opPut("z", "wrong branch")},
		Failure: []*messages.RequestOp{opDel("x", "", false), opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("w", "deep")}})},
	}
	outer := &messages.TxnRequest{
		Compare: []*messages.Compare{cmpMod("x", eq, 2)},
		Success: []*messages.RequestOp{opPut("x", "1"), opTxn(inner), opTxn(innerFail), opRange(&messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00")})},
		Failure: []*messages.RequestOp{opPut("z", "wrong branch")},
	}
	resp := h.mustOK(h.txn(outer)).GetTxn()
	if !resp.Succeeded || resp.Header.Revision != 3 {
		t.Fatalf("outer: %v", resp)
	}
	in := resp.Responses[1].GetResponseTxn()
	if !in.Succeeded || in.Header == nil || in.Header.Revision != 0 {
		t.Fatalf("inner txn response: succeeded %v header %v (etcd leaves a nested header's revision 0)", in.Succeeded, in.Header)
	}
	equalKVs(t, "inner range sees the outer put", in.Responses[0].GetResponseRange().Kvs, []*messages.KeyValue{kv("x", "1", 2, 3, 2)})
	inf := resp.Responses[2].GetResponseTxn()
	if inf.Succeeded || len(inf.Responses) != 2 || inf.Responses[0].GetResponseDeleteRange().GetDeleted() != 1 {
		t.Fatalf("second inner txn: %v", inf)
	}
	if deep := inf.Responses[1].GetResponseTxn(); !deep.Succeeded || deep.Responses[0].GetResponsePut().GetHeader().GetRevision() != 3 {
		t.Fatalf("deepest txn: %v", deep)
	}
	equalKVs(t, "final range in txn", resp.Responses[3].GetResponseRange().Kvs,
		[]*messages.KeyValue{kv("w", "deep", 3, 3, 1), kv("y", "inner", 3, 3, 1)})
	if got := keysOf(h.rng(&messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")}).Kvs); !slices.Equal(got, []string{"w", "y"}) {
		t.Fatalf("after nested txn: keys %q", got)
	}
}

func TestTxnFailureBranchAndRevision(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	rt := &messages.TxnRequest{
		Compare: []*messages.Compare{cmpValue("a", eq, "other")},
		Success: []*messages.RequestOp{opPut("s", "1")},
		Failure: []*messages.RequestOp{opPut("f", "1"), opRange(&messages.RangeRequest{Key: []byte("f")})},
	}
	resp := h.mustOK(h.txn(rt)).GetTxn()
	if resp.Succeeded || resp.Header.Revision != 3 || len(resp.Responses) != 2 {
		t.Fatalf("failure branch: %v", resp)
	}
	if h.get("s") != nil || h.get("f") == nil {
		t.Fatal("the wrong branch ran")
	}
	// A write txn whose writes change nothing does not advance the revision.
	resp = h.mustOK(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{opDel("nothing", "", true)}})).GetTxn()
	if resp.Header.Revision != 3 || h.s.Rev() != 3 || resp.Responses[0].GetResponseDeleteRange().GetHeader().GetRevision() != 3 {
		t.Fatalf("no-op delete txn: %v, store %d", resp, h.s.Rev())
	}
	// Odd requests: empty ops do not panic.
	resp = h.mustOK(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{{}, {Request: &messages.RequestOp_RequestTxn{}}}})).GetTxn()
	if len(resp.Responses) != 2 || h.s.Rev() != 3 {
		t.Fatalf("empty ops: %v", resp)
	}
}

func TestTxnErrorsChangeNothing(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("a", "2") // 3
	h.put("b", "1") // 4
	h.mustOK(h.compact(3))
	snapshot := func() (int64, uint32, []*messages.KeyValue) {
		hash, _, _, err := h.s.HashKV(0)
		if err != nil {
			t.Fatal(err)
		}
		return h.s.Rev(), hash, h.rng(&messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")}).Kvs
	}
	rev0, hash0, kvs0 := snapshot()
	view0 := h.s.View()
	ops := func(last *messages.RequestOp) []*messages.RequestOp {
		return []*messages.RequestOp{opPut("c", "new"), opDel("b", "", false), last}
	}
	cases := []struct {
		name string
		rt   *messages.TxnRequest
		want *messages.Error
	}{
		{"range at a future revision", &messages.TxnRequest{Success: ops(opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 5}))}, rpcerr.FutureRev},
		{"range at the revision the txn would create", &messages.TxnRequest{Success: ops(opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 5}))}, rpcerr.FutureRev},
		{"range at a compacted revision", &messages.TxnRequest{Success: ops(opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 2}))}, rpcerr.Compacted},
		{"ignore_value on a missing key", &messages.TxnRequest{Success: ops(opPutReq(&messages.PutRequest{Key: []byte("zz"), IgnoreValue: true}))}, rpcerr.KeyNotFound},
		{"ignore_lease on a missing key", &messages.TxnRequest{Success: ops(opPutReq(&messages.PutRequest{Key: []byte("zz"), IgnoreLease: true}))}, rpcerr.KeyNotFound},
		{"lease", &messages.TxnRequest{Success: ops(opPutReq(&messages.PutRequest{Key: []byte("zz"), Lease: 3}))}, rpcerr.LeaseNotFound},
		{"error in the failure branch", &messages.TxnRequest{
			Compare: []*messages.Compare{cmpVersion("a", eq, 100)},
			Failure: ops(opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 100})),
		}, rpcerr.FutureRev},
		{"error in a nested txn", &messages.TxnRequest{Success: ops(opTxn(&messages.TxnRequest{
			Success: []*messages.RequestOp{opPutReq(&messages.PutRequest{Key: []byte("zz"), Lease: 3})},
		}))}, rpcerr.LeaseNotFound},
		// The gateway rejects these (a put inside a delete range); the store
		// must still leave no trace of the txn.
		{"ignore_value of a key deleted earlier in the txn", &messages.TxnRequest{Success: []*messages.RequestOp{
			opPut("c", "new"), opDel("a", "", false), opPutReq(&messages.PutRequest{Key: []byte("a"), IgnoreValue: true}),
		}}, rpcerr.KeyNotFound},
		{"ignore_lease of a key deleted in a nested txn", &messages.TxnRequest{Success: []*messages.RequestOp{
			opPut("c", "new"), opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opDel("\x00", "\x00", false)}}),
			opPutReq(&messages.PutRequest{Key: []byte("b"), Value: []byte("v"), IgnoreLease: true}),
		}}, rpcerr.KeyNotFound},
	}
	for _, c := range cases {
		wantErr(t, c.name, respErr(h.txn(c.rt)), c.want)
		rev, hash, kvs := snapshot()
		if rev != rev0 || hash != hash0 {
			t.Fatalf("%s: rev %d hash %x, want %d %x", c.name, rev, hash, rev0, hash0)
		}
		equalKVs(t, c.name, kvs, kvs0)
	}
	if h.s.View() != view0 {
		t.Fatal("failed requests published a new view")
	}
	// The store still works after a rolled-back txn.
	h.put("a", "3")
	equalKVs(t, "after errors", []*messages.KeyValue{h.get("a")}, []*messages.KeyValue{kv("a", "3", 2, 5, 3)})
}
