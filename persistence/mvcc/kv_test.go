package mvcc_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

func TestRevisionsAndVersions(t *testing.T) {
	h := newHarness(t)
	if h.s.Rev() != 1 || h.s.View().Rev() != 1 || h.s.CompactRev() != -1 {
		t.Fatalf("fresh store: rev %d, view rev %d, compact rev %d; want 1, 1, -1", h.s.Rev(), h.s.View().Rev(), h.s.CompactRev())
	}
	steps := []struct {
		do      func() int64 // returns the response header revision
		wantRev int64
	}{
		{func() int64 { return h.put("a", "1").Header.Revision }, 2},
		{func() int64 { return h.put("a", "2").Header.Revision }, 3},
		{func() int64 { return h.put("b", "x").Header.Revision }, 4},
		{func() int64 { return h.del("a", "").Header.Revision }, 5},
		{func() int64 { return h.del("a", "").Header.Revision }, 5}, // nothing to delete: no new revision
		{func() int64 { return h.put("a", "3").Header.Revision }, 6},
	}
	for i, st := range steps {
		if got := st.do(); got != st.wantRev || h.s.Rev() != st.wantRev || h.s.View().Rev() != st.wantRev {
			t.Fatalf("step %d: header revision %d, store %d, view %d; want %d", i, got, h.s.Rev(), h.s.View().Rev(), st.wantRev)
		}
	}
	history := []struct {
		rev  int64
		want []*messages.KeyValue
	}{
		{1, nil},
		{2, []*messages.KeyValue{kv("a", "1", 2, 2, 1)}},
		{3, []*messages.KeyValue{kv("a", "2", 2, 3, 2)}},
		{4, []*messages.KeyValue{kv("a", "2", 2, 3, 2), kv("b", "x", 4, 4, 1)}},
		{5, []*messages.KeyValue{kv("b", "x", 4, 4, 1)}},
		{6, []*messages.KeyValue{kv("a", "3", 6, 6, 1), kv("b", "x", 4, 4, 1)}},
		{0, []*messages.KeyValue{kv("a", "3", 6, 6, 1), kv("b", "x", 4, 4, 1)}},
		{-3, []*messages.KeyValue{kv("a", "3", 6, 6, 1), kv("b", "x", 4, 4, 1)}},
	}
	for _, c := range history {
		resp := h.rng(&messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: c.rev})
		equalKVs(t, "range all at "+itoa(c.rev), resp.Kvs, c.want)
		if resp.Header.Revision != 6 || resp.Count != int64(len(c.want)) {
			t.Fatalf("rev %d: header revision %d count %d, want 6 and %d", c.rev, resp.Header.Revision, resp.Count, len(c.want))
		}
	}
	wantErr(t, "range at future revision", h.rangeErr(&messages.RangeRequest{Key: []byte("a"), Revision: 7}), rpcerr.FutureRev)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRangeEndForms(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"a", "ab", "abc", "b", "c\xff", "d"} {
		h.put(k, "v")
	}
	cases := []struct {
		name     string
		key, end string
		want     []string
	}{
		{"single key", "a", "", []string{"a"}},
		{"single missing key", "zz", "", []string{}},
		{"half-open range", "a", "b", []string{"a", "ab", "abc"}},
		{"prefix", "ab", "ac", []string{"ab", "abc"}},
		{"from key", "b", "\x00", []string{"b", "c\xff", "d"}},
		{"all keys", "\x00", "\x00", []string{"a", "ab", "abc", "b", "c\xff", "d"}},
		{"end before key", "c", "a", []string{}},
		{"end equal key", "b", "b", []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.rng(&messages.RangeRequest{Key: []byte(c.key), RangeEnd: b(c.end)})
			if got := keysOf(resp.Kvs); !slices.Equal(got, c.want) || resp.Count != int64(len(c.want)) {
				t.Fatalf("got %q count %d, want %q", got, resp.Count, c.want)
			}
			// DeleteRange interprets range_end the same way (checked on a copy of the state).
			rt := &messages.TxnRequest{Success: []*messages.RequestOp{opDel(c.key, c.end, true)}}
			h2 := newHarness(t)
			for _, k := range []string{"a", "ab", "abc", "b", "c\xff", "d"} {
				h2.put(k, "v")
			}
			dr := h2.mustOK(h2.txn(rt)).GetTxn().Responses[0].GetResponseDeleteRange()
			if got := keysOf(dr.PrevKvs); !slices.Equal(got, c.want) || dr.Deleted != int64(len(c.want)) {
				t.Fatalf("delete: prev %q deleted %d, want %q", got, dr.Deleted, c.want)
			}
		})
	}
}

func TestRangeLimitMoreCount(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} { // revisions 2..6
		h.put(k, "v")
	}
	all := func(limit, rev int64) *messages.RangeRequest {
		return &messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), Limit: limit, Revision: rev}
	}
	cases := []struct {
		name  string
		req   *messages.RangeRequest
		keys  []string
		more  bool
		count int64
	}{
		{"no limit", all(0, 0), []string{"a", "b", "c", "d", "e"}, false, 5},
		{"limit 2", all(2, 0), []string{"a", "b"}, true, 5},
		{"limit 4", all(4, 0), []string{"a", "b", "c", "d"}, true, 5},
		{"limit = count", all(5, 0), []string{"a", "b", "c", "d", "e"}, false, 5},
		{"limit > count", all(6, 0), []string{"a", "b", "c", "d", "e"}, false, 5},
		{"negative limit", all(-1, 0), []string{"a", "b", "c", "d", "e"}, false, 5},
		{"limit at old revision", all(1, 4), []string{"a"}, true, 3},
		{"count at old revision", all(0, 3), []string{"a", "b"}, false, 2},
		{"count of an empty range", &messages.RangeRequest{Key: []byte("x"), RangeEnd: []byte("z"), Limit: 1}, []string{}, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.rng(c.req)
			if got := keysOf(resp.Kvs); !slices.Equal(got, c.keys) || resp.More != c.more || resp.Count != c.count {
				t.Fatalf("got %q more %v count %d, want %q more %v count %d", got, resp.More, resp.Count, c.keys, c.more, c.count)
			}
		})
	}
}

// sortFixture: final state k1{c4 m4 v1 "m"}, k2{c2 m7 v3 "z"}, k3{c3 m5 v2 "a"}.
func sortFixture(t *testing.T) *harness {
	h := newHarness(t)
	h.put("k2", "q") // 2
	h.put("k3", "w") // 3
	h.put("k1", "m") // 4
	h.put("k3", "a") // 5
	h.put("k2", "r") // 6
	h.put("k2", "z") // 7
	return h
}

func TestRangeSort(t *testing.T) {
	h := sortFixture(t)
	ascending := map[messages.RangeRequest_SortTarget][]string{
		messages.RangeRequest_KEY:     {"k1", "k2", "k3"},
		messages.RangeRequest_VERSION: {"k1", "k3", "k2"},
		messages.RangeRequest_CREATE:  {"k2", "k3", "k1"},
		messages.RangeRequest_MOD:     {"k1", "k3", "k2"},
		messages.RangeRequest_VALUE:   {"k3", "k1", "k2"},
	}
	for target, asc := range ascending {
		for _, order := range []messages.RangeRequest_SortOrder{messages.RangeRequest_NONE, messages.RangeRequest_ASCEND, messages.RangeRequest_DESCEND} {
			want := slices.Clone(asc)
			if order == messages.RangeRequest_DESCEND {
				slices.Reverse(want)
			}
			for _, limit := range []int64{0, 2} {
				name := target.String() + "/" + order.String() + "/limit" + itoa(limit)
				t.Run(name, func(t *testing.T) {
					resp := h.rng(&messages.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), SortOrder: order, SortTarget: target, Limit: limit})
					w, more := want, false
					if limit > 0 {
						w, more = want[:limit], true
					}
					if got := keysOf(resp.Kvs); !slices.Equal(got, w) || resp.More != more || resp.Count != 3 {
						t.Fatalf("got %q more %v count %d, want %q more %v count 3", got, resp.More, resp.Count, w, more)
					}
				})
			}
		}
	}
}

// TestRangeSortNoneWithLimit pins etcd's behaviour for a non-KEY target with
// order NONE: only limit+1 records (in key order) are fetched, then sorted.
func TestRangeSortNoneWithLimit(t *testing.T) {
	h := newHarness(t)
	h.put("k1", "x")
	h.put("k1", "x")
	h.put("k1", "x") // k1 version 3
	h.put("k2", "x")
	h.put("k2", "x") // k2 version 2
	h.put("k3", "x") // k3 version 1
	req := &messages.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), SortTarget: messages.RangeRequest_VERSION, Limit: 1}
	resp := h.rng(req)
	if got := keysOf(resp.Kvs); !slices.Equal(got, []string{"k2"}) || !resp.More || resp.Count != 3 {
		t.Fatalf("VERSION/NONE limit 1: got %q more %v count %d; want [k2] true 3", got, resp.More, resp.Count)
	}
	req.SortOrder = messages.RangeRequest_ASCEND
	resp = h.rng(req)
	if got := keysOf(resp.Kvs); !slices.Equal(got, []string{"k3"}) || !resp.More {
		t.Fatalf("VERSION/ASCEND limit 1: got %q more %v; want [k3] true", got, resp.More)
	}
}

func TestRangeFilters(t *testing.T) {
	h := sortFixture(t)
	r := func(mut func(*messages.RangeRequest)) *messages.RangeRequest {
		req := &messages.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")}
		mut(req)
		return req
	}
	cases := []struct {
		name  string
		req   *messages.RangeRequest
		keys  []string
		more  bool
		count int64
	}{
		{"min mod", r(func(q *messages.RangeRequest) { q.MinModRevision = 5 }), []string{"k2", "k3"}, false, 3},
		{"max mod", r(func(q *messages.RangeRequest) { q.MaxModRevision = 5 }), []string{"k1", "k3"}, false, 3},
		{"min create", r(func(q *messages.RangeRequest) { q.MinCreateRevision = 3 }), []string{"k1", "k3"}, false, 3},
		{"max create", r(func(q *messages.RangeRequest) { q.MaxCreateRevision = 3 }), []string{"k2", "k3"}, false, 3},
		{"min and max mod", r(func(q *messages.RangeRequest) { q.MinModRevision = 5; q.MaxModRevision = 6 }), []string{"k3"}, false, 3},
		{"filter then limit", r(func(q *messages.RangeRequest) { q.MinModRevision = 5; q.Limit = 1 }), []string{"k2"}, true, 3},
		{"filter, limit not reached", r(func(q *messages.RangeRequest) { q.MinModRevision = 5; q.Limit = 2 }), []string{"k2", "k3"}, false, 3},
		{"filter, sort, limit", r(func(q *messages.RangeRequest) {
			q.MaxCreateRevision = 3
			q.SortTarget = messages.RangeRequest_MOD
			q.SortOrder = messages.RangeRequest_ASCEND
			q.Limit = 1
		}), []string{"k3"}, true, 3},
		{"filter at old revision", r(func(q *messages.RangeRequest) { q.Revision = 5; q.MinModRevision = 4 }), []string{"k1", "k3"}, false, 3},
		{"filter removes all", r(func(q *messages.RangeRequest) { q.MinModRevision = 100 }), []string{}, false, 3},
		{"count only ignores filters", r(func(q *messages.RangeRequest) { q.CountOnly = true; q.MinModRevision = 100 }), []string{}, false, 3},
		{"count only ignores limit", r(func(q *messages.RangeRequest) { q.CountOnly = true; q.Limit = 1 }), []string{}, false, 3},
		{"count only at old revision", r(func(q *messages.RangeRequest) { q.CountOnly = true; q.Revision = 3 }), []string{}, false, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.rng(c.req)
			if got := keysOf(resp.Kvs); !slices.Equal(got, c.keys) || resp.More != c.more || resp.Count != c.count {
				t.Fatalf("got %q more %v count %d, want %q more %v count %d", got, resp.More, resp.Count, c.keys, c.more, c.count)
			}
		})
	}
}

func TestRangeKeysOnly(t *testing.T) {
	h := sortFixture(t)
	resp := h.rng(&messages.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), KeysOnly: true})
	equalKVs(t, "keys only", resp.Kvs, []*messages.KeyValue{kv("k1", "", 4, 4, 1), kv("k2", "", 2, 7, 3), kv("k3", "", 3, 5, 2)})
	// The stored values are untouched.
	if got := h.get("k2"); string(got.Value) != "z" {
		t.Fatalf("value after keys-only range: %q", got.Value)
	}
	// Returned records belong to the caller: modifying one changes nothing.
	resp = h.rng(&messages.RangeRequest{Key: []byte("k1")})
	resp.Kvs[0].Version = 99
	if got := h.get("k1"); got.Version != 1 {
		t.Fatalf("stored record changed through a response: %v", got)
	}
}

func TestPutOptions(t *testing.T) {
	h := newHarness(t)
	resp := h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("1"), PrevKv: true}))).GetPut()
	if resp.PrevKv != nil || resp.Header.Revision != 2 {
		t.Fatalf("first put: %v", resp)
	}
	resp = h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("2"), PrevKv: true}))).GetPut()
	equalKVs(t, "prev kv", []*messages.KeyValue{resp.PrevKv}, []*messages.KeyValue{kv("a", "1", 2, 2, 1)})

	h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte("a"), IgnoreValue: true})))
	equalKVs(t, "ignore_value", []*messages.KeyValue{h.get("a")}, []*messages.KeyValue{kv("a", "2", 2, 4, 3)})

	resp = h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte("a"), Value: []byte("3"), IgnoreLease: true, PrevKv: true}))).GetPut()
	equalKVs(t, "ignore_lease", []*messages.KeyValue{h.get("a"), resp.PrevKv}, []*messages.KeyValue{kv("a", "3", 2, 5, 4), kv("a", "2", 2, 4, 3)})

	h.del("a", "")
	before := h.s.Rev()
	errCases := []struct {
		name string
		req  *messages.PutRequest
		want *messages.Error
	}{
		{"ignore_value on a deleted key", &messages.PutRequest{Key: []byte("a"), IgnoreValue: true}, rpcerr.KeyNotFound},
		{"ignore_value on a missing key", &messages.PutRequest{Key: []byte("zz"), IgnoreValue: true}, rpcerr.KeyNotFound},
		{"ignore_lease on a missing key", &messages.PutRequest{Key: []byte("zz"), Value: []byte("v"), IgnoreLease: true}, rpcerr.KeyNotFound},
		{"lease", &messages.PutRequest{Key: []byte("zz"), Value: []byte("v"), Lease: 7}, rpcerr.LeaseNotFound},
		{"lease on an existing key", &messages.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 7, PrevKv: true}, rpcerr.LeaseNotFound},
	}
	for _, c := range errCases {
		wantErr(t, c.name, respErr(h.apply(putReq(c.req))), c.want)
		if h.s.Rev() != before || h.get(string(c.req.Key)) != nil {
			t.Fatalf("%s: store changed: rev %d (want %d), key %v", c.name, h.s.Rev(), before, h.get(string(c.req.Key)))
		}
	}
}

func TestDeleteRange(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("b", "2") // 3
	h.put("b", "3") // 4
	h.put("c", "4") // 5
	resp := h.mustOK(h.apply(delReq(&messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true}))).GetDeleteRange()
	if resp.Deleted != 2 || resp.Header.Revision != 6 {
		t.Fatalf("delete [a, c): %v", resp)
	}
	equalKVs(t, "prev kvs", resp.PrevKvs, []*messages.KeyValue{kv("a", "1", 2, 2, 1), kv("b", "3", 3, 4, 2)})
	equalKVs(t, "after delete", h.rng(&messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")}).Kvs,
		[]*messages.KeyValue{kv("c", "4", 5, 5, 1)})
	equalKVs(t, "before delete", h.rng(&messages.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 5}).Kvs,
		[]*messages.KeyValue{kv("a", "1", 2, 2, 1), kv("b", "3", 3, 4, 2), kv("c", "4", 5, 5, 1)})

	resp = h.mustOK(h.apply(delReq(&messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true}))).GetDeleteRange()
	if resp.Deleted != 0 || len(resp.PrevKvs) != 0 || resp.Header.Revision != 6 || h.s.Rev() != 6 {
		t.Fatalf("delete of nothing: %v, store rev %d", resp, h.s.Rev())
	}
	resp = h.mustOK(h.apply(delReq(&messages.DeleteRangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")}))).GetDeleteRange()
	if resp.Deleted != 1 || resp.PrevKvs != nil || resp.Header.Revision != 7 {
		t.Fatalf("delete all: %v", resp)
	}
}
