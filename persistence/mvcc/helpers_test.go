package mvcc_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"google.golang.org/protobuf/proto"
)

// harness drives one store the way the applier does: consecutive Raft
// indexes, Publish after every apply.
type harness struct {
	t    testing.TB
	path string
	opts mvcc.Options // NoSync is set by open
	s    *mvcc.Store
	idx  uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, mvcc.Options{})
}

func newHarnessWith(t testing.TB, opts mvcc.Options) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "db"), opts: opts}
	h.open()
	t.Cleanup(func() {
		if h.s != nil {
			_ = h.s.Close()
		}
	})
	return h
}

func (h *harness) open() {
	h.t.Helper()
	opts := h.opts
	opts.NoSync = true
	s, err := mvcc.Open(h.path, opts)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.s = s
	h.idx = s.ConsistentIndex()
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.open()
}

func (h *harness) apply(req *messages.InternalRequest) *messages.ClientResponse {
	h.t.Helper()
	h.idx++
	resp := h.s.Apply(h.idx, req)
	h.s.Publish()
	return resp
}

func (h *harness) mustOK(resp *messages.ClientResponse) *messages.ClientResponse {
	h.t.Helper()
	if e := resp.GetError(); e != nil {
		h.t.Fatalf("unexpected error %q", e.Message)
	}
	return resp
}

func (h *harness) put(key, val string) *messages.PutResponse {
	h.t.Helper()
	return h.mustOK(h.apply(putReq(&messages.PutRequest{Key: []byte(key), Value: []byte(val)}))).GetPut()
}

func (h *harness) del(key, end string) *messages.DeleteRangeResponse {
	h.t.Helper()
	return h.mustOK(h.apply(delReq(&messages.DeleteRangeRequest{Key: b(key), RangeEnd: b(end)}))).GetDeleteRange()
}

func (h *harness) txn(rt *messages.TxnRequest) *messages.ClientResponse {
	h.t.Helper()
	return h.apply(&messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: rt}})
}

// openAccounts puts n keys acct/00.. with value balance in one txn (the
// setup of the transfer tests, whose sum of balances is invariant) and
// returns the key of account i.
func (h *harness) openAccounts(n, balance int) func(i int) string {
	acct := func(i int) string { return fmt.Sprintf("acct/%02d", i) }
	init := &messages.TxnRequest{}
	for i := range n {
		init.Success = append(init.Success, opPut(acct(i), strconv.Itoa(balance)))
	}
	h.mustOK(h.txn(init))
	return acct
}

func (h *harness) compact(rev int64) *messages.ClientResponse {
	h.t.Helper()
	return h.apply(&messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: rev}}})
}

func (h *harness) rng(r *messages.RangeRequest) *messages.RangeResponse {
	h.t.Helper()
	resp, err := h.s.View().Range(r)
	if err != nil {
		h.t.Fatalf("Range(%v): %s", r, err.Message)
	}
	return resp
}

func (h *harness) rangeErr(r *messages.RangeRequest) *messages.Error {
	h.t.Helper()
	_, err := h.s.View().Range(r)
	return err
}

func (h *harness) get(key string) *messages.KeyValue {
	h.t.Helper()
	resp := h.rng(&messages.RangeRequest{Key: []byte(key)})
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func putReq(p *messages.PutRequest) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: p}}
}

func delReq(d *messages.DeleteRangeRequest) *messages.InternalRequest {
	return &messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: d}}
}

// b converts a string to bytes, "" to nil.
func b(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func kv(key, val string, create, mod, ver int64) *messages.KeyValue {
	return &messages.KeyValue{Key: []byte(key), Value: b(val), CreateRevision: create, ModRevision: mod, Version: ver}
}

func keysOf(kvs []*messages.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

func equalKVs(t testing.TB, what string, got, want []*messages.KeyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d kvs %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s: kv[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func wantErr(t testing.TB, what string, got, want *messages.Error) {
	t.Helper()
	if !rpcerr.Is(got, want) {
		t.Fatalf("%s: error %v, want %q", what, got, want.Message)
	}
}

func respErr(resp *messages.ClientResponse) *messages.Error { return resp.GetError() }

// Compare and op builders.
func cmpVersion(key string, r messages.Compare_CompareResult, v int64) *messages.Compare {
	return &messages.Compare{Key: []byte(key), Target: messages.Compare_VERSION, Result: r, TargetUnion: &messages.Compare_Version{Version: v}}
}

func cmpCreate(key string, r messages.Compare_CompareResult, v int64) *messages.Compare {
	return &messages.Compare{Key: []byte(key), Target: messages.Compare_CREATE, Result: r, TargetUnion: &messages.Compare_CreateRevision{CreateRevision: v}}
}

func cmpMod(key string, r messages.Compare_CompareResult, v int64) *messages.Compare {
	return &messages.Compare{Key: []byte(key), Target: messages.Compare_MOD, Result: r, TargetUnion: &messages.Compare_ModRevision{ModRevision: v}}
}

func cmpValue(key string, r messages.Compare_CompareResult, v string) *messages.Compare {
	return &messages.Compare{Key: []byte(key), Target: messages.Compare_VALUE, Result: r, TargetUnion: &messages.Compare_Value{Value: []byte(v)}}
}

func cmpLease(key string, r messages.Compare_CompareResult, v int64) *messages.Compare {
	return &messages.Compare{Key: []byte(key), Target: messages.Compare_LEASE, Result: r, TargetUnion: &messages.Compare_Lease{Lease: v}}
}

func opPut(key, val string) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte(key), Value: []byte(val)}}}
}

func opPutReq(p *messages.PutRequest) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: p}}
}

func opDel(key, end string, prev bool) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestDeleteRange{RequestDeleteRange: &messages.DeleteRangeRequest{Key: []byte(key), RangeEnd: b(end), PrevKv: prev}}}
}

func opRange(r *messages.RangeRequest) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestRange{RequestRange: r}}
}

func opTxn(rt *messages.TxnRequest) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestTxn{RequestTxn: rt}}
}
