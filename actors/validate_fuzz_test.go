package actors_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
)

func opPut(key string) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte(key), Value: []byte("v")}}}
}

func opRange(key string) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestRange{RequestRange: &messages.RangeRequest{Key: []byte(key)}}}
}

func opDelete(key, end string) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestDeleteRange{RequestDeleteRange: &messages.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

func opTxn(t *messages.TxnRequest) *messages.RequestOp {
	return &messages.RequestOp{Request: &messages.RequestOp_RequestTxn{RequestTxn: t}}
}

// nestedTxn returns a txn depth levels deep, each level one compare and one
// op (the next level), with a put of leaf at the bottom.
func nestedTxn(depth int, leaf string) *messages.TxnRequest {
	t := &messages.TxnRequest{Success: []*messages.RequestOp{opPut(leaf)}}
	for range depth {
		t = &messages.TxnRequest{Compare: []*messages.Compare{{Key: []byte("c")}}, Success: []*messages.RequestOp{opTxn(t)}}
	}
	return t
}

// validateSeed is a corpus request and CheckRequest's answer to it with
// maxTxnOps 128.
type validateSeed struct {
	req  *messages.ClientRequest
	want *messages.Error
}

// validateSeeds are valid and invalid requests of every kind CheckRequest
// checks, and a few it passes through.
func validateSeeds() []validateSeed {
	kv := func(r any) *messages.ClientRequest {
		switch r := r.(type) {
		case *messages.RangeRequest:
			return &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: r}}
		case *messages.PutRequest:
			return &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: r}}
		case *messages.DeleteRangeRequest:
			return &messages.ClientRequest{Request: &messages.ClientRequest_DeleteRange{DeleteRange: r}}
		case *messages.TxnRequest:
			return &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: r}}
		}
		panic(r)
	}
	many := func(n int, op func(i int) *messages.RequestOp) []*messages.RequestOp {
		ops := make([]*messages.RequestOp, n)
		for i := range ops {
			ops[i] = op(i)
		}
		return ops
	}
	return []validateSeed{
		{kv(&messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), SortOrder: messages.RangeRequest_DESCEND, SortTarget: messages.RangeRequest_VALUE}), nil},
		{kv(&messages.RangeRequest{}), rpcerr.EmptyKey},
		{kv(&messages.RangeRequest{Key: []byte("a"), SortOrder: 3}), rpcerr.InvalidSortOption},
		{kv(&messages.RangeRequest{Key: []byte("a"), SortTarget: -1}), rpcerr.InvalidSortOption},
		{kv(&messages.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7}), nil},
		{kv(&messages.PutRequest{Value: []byte("v")}), rpcerr.EmptyKey},
		{kv(&messages.PutRequest{Key: []byte("k"), IgnoreValue: true}), nil},
		{kv(&messages.PutRequest{Key: []byte("k"), Value: []byte("v"), IgnoreValue: true}), rpcerr.ValueProvided},
		{kv(&messages.PutRequest{Key: []byte("k"), Lease: 1, IgnoreLease: true}), rpcerr.LeaseProvided},
		{kv(&messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}), nil},
		{kv(&messages.DeleteRangeRequest{RangeEnd: []byte("z")}), rpcerr.EmptyKey},
		{kv(&messages.TxnRequest{
			Compare: []*messages.Compare{{Key: []byte("a"), Target: messages.Compare_VALUE, TargetUnion: &messages.Compare_Value{Value: []byte("x")}}},
			Success: []*messages.RequestOp{opPut("a"), opRange("b"), opDelete("c", "d")},
			Failure: []*messages.RequestOp{opPut("a"), opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("b")}, Failure: []*messages.RequestOp{opPut("b")}})},
		}), nil},
		{kv(&messages.TxnRequest{Compare: []*messages.Compare{{}}}), rpcerr.EmptyKey},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{{}}}), rpcerr.KeyNotFound},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("a"), opPut("a")}}), rpcerr.DuplicateKey},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{opDelete("a", "c"), opPut("b")}}), rpcerr.DuplicateKey},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("a"), opTxn(&messages.TxnRequest{Failure: []*messages.RequestOp{opPut("a")}})}}), rpcerr.DuplicateKey},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opDelete("a", "")}}), opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("a")}})}}), rpcerr.DuplicateKey},
		{kv(&messages.TxnRequest{Success: many(129, func(i int) *messages.RequestOp { return opRange("r") })}), rpcerr.TooManyOps},
		{kv(&messages.TxnRequest{Success: many(100, func(i int) *messages.RequestOp { return opPut(string(rune('a' + i))) })}), nil},
		{kv(&messages.TxnRequest{Success: []*messages.RequestOp{opTxn(&messages.TxnRequest{Success: many(128, func(int) *messages.RequestOp { return opRange("r") })})}}), rpcerr.TooManyOps},
		{kv(nestedTxn(10, "leaf")), nil},
		{kv(nestedTxn(64, "leaf")), nil},
		{kv(nestedTxn(200, "leaf")), rpcerr.TooManyOps},
		{kv(nestedTxn(3, "")), rpcerr.EmptyKey},
		{&messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: &messages.StatusRequest{}}}, nil},
		{&messages.ClientRequest{Request: &messages.ClientRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: -1}}}, nil},
		{&messages.ClientRequest{}, nil},
	}
}

// FuzzValidateRequest decodes arbitrary bytes as a ClientRequest, and as
// each KV request the etcd gRPC front decodes straight from the wire and
// wraps in one (bootstrap has no conversion step of its own), and runs the
// gateway's CheckRequest. It must not panic, must not modify the request,
// must answer the same twice, must answer one of etcd's v3rpc errors, and
// must agree with the etcd rules restated here: a range, put or delete is
// accepted exactly when etcd accepts it; an accepted txn has at every level
// no more ops than its budget (maxTxnOps less the op counts of the levels
// above), non-empty keys, no empty op, and on any one path through its
// nested txns no key put twice nor put under an earlier delete; a rejected
// txn has a witness for the error given.
func FuzzValidateRequest(f *testing.F) {
	for i, s := range validateSeeds() {
		req := s.req
		if got := actors.CheckRequest(req, 128); got != s.want {
			f.Fatalf("seed %d: CheckRequest = %v, want %v", i, got, s.want)
		}
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(127))
		f.Add(b, uint8(2))
		if t := req.GetTxn(); t != nil {
			// The same txn as the Txn RPC receives it.
			tb, err := proto.Marshal(t)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(tb, uint8(127))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ops uint8) {
		maxTxnOps := 1 + int(ops) // --max-txn-ops must be positive
		var reqs []*messages.ClientRequest
		if req := new(messages.ClientRequest); proto.Unmarshal(data, req) == nil {
			reqs = append(reqs, req)
		}
		if r := new(messages.RangeRequest); proto.Unmarshal(data, r) == nil {
			reqs = append(reqs, &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: r}})
		}
		if r := new(messages.PutRequest); proto.Unmarshal(data, r) == nil {
			reqs = append(reqs, &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: r}})
		}
		if r := new(messages.DeleteRangeRequest); proto.Unmarshal(data, r) == nil {
			reqs = append(reqs, &messages.ClientRequest{Request: &messages.ClientRequest_DeleteRange{DeleteRange: r}})
		}
		if r := new(messages.TxnRequest); proto.Unmarshal(data, r) == nil {
			reqs = append(reqs, &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: r}})
		}
		for _, req := range reqs {
			checkValidation(t, req, maxTxnOps)
		}
	})
}

var validationErrors = []*messages.Error{rpcerr.EmptyKey, rpcerr.KeyNotFound, rpcerr.ValueProvided, rpcerr.LeaseProvided,
	rpcerr.TooManyOps, rpcerr.DuplicateKey, rpcerr.InvalidSortOption}

func checkValidation(t *testing.T, req *messages.ClientRequest, maxTxnOps int) {
	t.Helper()
	before := proto.Clone(req).(*messages.ClientRequest)
	got := actors.CheckRequest(req, maxTxnOps)
	if !proto.Equal(req, before) {
		t.Fatalf("CheckRequest modified the request:\n%v\nwas\n%v", req, before)
	}
	if again := actors.CheckRequest(before, maxTxnOps); again != got {
		t.Fatalf("CheckRequest answered %v, then %v", got, again)
	}
	if got != nil {
		known := false
		for _, e := range validationErrors {
			known = known || got == e
		}
		if !known {
			t.Fatalf("CheckRequest answered %v, not one of etcd's v3rpc errors", got)
		}
	}
	switch r := req.Request.(type) {
	case *messages.ClientRequest_Range:
		if want := rangeError(r.Range); got != want {
			t.Fatalf("range %v: %v, want %v", r.Range, got, want)
		}
	case *messages.ClientRequest_Put:
		if want := putError(r.Put); got != want {
			t.Fatalf("put %v: %v, want %v", r.Put, got, want)
		}
	case *messages.ClientRequest_DeleteRange:
		if want := deleteError(r.DeleteRange); got != want {
			t.Fatalf("delete %v: %v, want %v", r.DeleteRange, got, want)
		}
	case *messages.ClientRequest_Txn:
		checkTxnVerdict(t, r.Txn, maxTxnOps, got)
		if got == nil {
			_ = mvcc.IsTxnReadOnly(r.Txn) // what the gateway asks next
		}
	default:
		if got != nil {
			t.Fatalf("%T rejected with %v: CheckRequest checks only KV requests", r, got)
		}
	}
}

// rangeError, putError and deleteError are etcd's checks, in etcd's order.
func rangeError(r *messages.RangeRequest) *messages.Error {
	_, orderOK := messages.RangeRequest_SortOrder_name[int32(r.SortOrder)]
	_, targetOK := messages.RangeRequest_SortTarget_name[int32(r.SortTarget)]
	switch {
	case len(r.Key) == 0:
		return rpcerr.EmptyKey
	case !orderOK || !targetOK:
		return rpcerr.InvalidSortOption
	}
	return nil
}

func putError(r *messages.PutRequest) *messages.Error {
	switch {
	case len(r.Key) == 0:
		return rpcerr.EmptyKey
	case r.IgnoreValue && len(r.Value) != 0:
		return rpcerr.ValueProvided
	case r.IgnoreLease && r.Lease != 0:
		return rpcerr.LeaseProvided
	}
	return nil
}

func deleteError(r *messages.DeleteRangeRequest) *messages.Error {
	if len(r.Key) == 0 {
		return rpcerr.EmptyKey
	}
	return nil
}

// txnWitnesses collects, over the whole txn tree, the errors some part of
// it deserves by the per-request rules (not DuplicateKey).
func txnWitnesses(t *messages.TxnRequest, budget int, found map[*messages.Error]bool) {
	opc := max(len(t.Compare), len(t.Success), len(t.Failure))
	if opc > budget {
		found[rpcerr.TooManyOps] = true
	}
	for _, c := range t.Compare {
		if len(c.Key) == 0 {
			found[rpcerr.EmptyKey] = true
		}
	}
	for _, op := range append(append([]*messages.RequestOp(nil), t.Success...), t.Failure...) {
		var err *messages.Error
		switch r := op.Request.(type) {
		case *messages.RequestOp_RequestRange:
			err = rangeError(r.RequestRange)
		case *messages.RequestOp_RequestPut:
			err = putError(r.RequestPut)
		case *messages.RequestOp_RequestDeleteRange:
			err = deleteError(r.RequestDeleteRange)
		case *messages.RequestOp_RequestTxn:
			txnWitnesses(r.RequestTxn, budget-opc, found)
		default:
			err = rpcerr.KeyNotFound
		}
		if err != nil {
			found[err] = true
		}
	}
}

func checkTxnVerdict(t *testing.T, txn *messages.TxnRequest, maxTxnOps int, got *messages.Error) {
	t.Helper()
	found := map[*messages.Error]bool{}
	txnWitnesses(txn, maxTxnOps, found)
	if got == rpcerr.DuplicateKey || (got == nil && len(found) > 0) {
		if got == nil {
			t.Fatalf("txn accepted, but it deserves %v", found)
		}
		// DuplicateKey is checked only after every per-request rule passed.
		if len(found) > 0 {
			t.Fatalf("txn rejected with %v, but it deserves %v first", got, found)
		}
		return
	}
	if got != nil {
		if !found[got] {
			t.Fatalf("txn rejected with %v, but no part of it deserves that (it deserves %v)", got, found)
		}
		return
	}
	for _, branch := range []func(depth int) bool{
		func(int) bool { return true },
		func(int) bool { return false },
		func(depth int) bool { return depth%2 == 0 },
	} {
		for _, ops := range [][]*messages.RequestOp{txn.Success, txn.Failure} {
			if _, _, dup := onePath(ops, 0, branch); dup != "" {
				t.Fatalf("txn accepted, but one path through it writes %q twice", dup)
			}
		}
	}
}

// onePath walks ops taking, in each nested txn at depth d, the success
// branch if branch(d), and returns the keys it puts and the ranges it
// deletes, or the first key put twice or put under a delete etcd checks it
// against: a delete of the same level, or of an earlier nested txn.
func onePath(ops []*messages.RequestOp, depth int, branch func(int) bool) (puts map[string]bool, dels [][2][]byte, dup string) {
	under := func(k []byte) bool {
		for _, d := range dels {
			if bytes.Compare(k, d[0]) >= 0 && (len(d[1]) == 0 || bytes.Compare(k, d[1]) < 0) {
				return true
			}
		}
		return false
	}
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			end := d.RangeEnd
			if len(end) == 0 {
				end = append(bytes.Clone(d.Key), 0)
			}
			dels = append(dels, [2][]byte{d.Key, end})
		}
	}
	puts = map[string]bool{}
	for _, op := range ops {
		nested := op.GetRequestTxn()
		if nested == nil {
			continue
		}
		taken := nested.Failure
		if branch(depth) {
			taken = nested.Success
		}
		p, d, dup := onePath(taken, depth+1, branch)
		if dup != "" {
			return nil, nil, dup
		}
		for k := range p {
			if puts[k] || under([]byte(k)) {
				return nil, nil, k
			}
			puts[k] = true
		}
		dels = append(dels, d...)
	}
	for _, op := range ops {
		if p := op.GetRequestPut(); p != nil {
			if puts[string(p.Key)] || under(p.Key) {
				return nil, nil, string(p.Key)
			}
			puts[string(p.Key)] = true
		}
	}
	return puts, dels, ""
}
