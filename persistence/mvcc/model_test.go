package mvcc_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"google.golang.org/protobuf/proto"
)

// model is a deliberately naive reference: the whole key space at every
// revision, and the leases that exist now.
type model struct {
	states     []map[string]*messages.KeyValue // states[rev]; states[0] unused
	compactRev int64
	leases     map[int64]bool
}

func newModel() *model {
	return &model{states: []map[string]*messages.KeyValue{nil, {}}, compactRev: -1, leases: map[int64]bool{}}
}

// leaseKeys returns the keys whose current record has the lease, sorted.
func (m *model) leaseKeys(id int64) []string {
	var out []string
	for k, kv := range m.states[m.rev()] {
		if kv.Lease == id {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) rev() int64 { return int64(len(m.states) - 1) }

func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}

func (m *model) rangeAt(state map[string]*messages.KeyValue, key, end []byte) []*messages.KeyValue {
	var out []*messages.KeyValue
	for k, kv := range state {
		if inRange([]byte(k), key, end) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

// mtxn is a write in progress on the model.
type mtxn struct {
	m       *model
	state   map[string]*messages.KeyValue
	rev     int64 // the revision the writes get
	changed bool
}

func (m *model) begin() *mtxn {
	st := map[string]*messages.KeyValue{}
	for k, v := range m.states[m.rev()] {
		st[k] = v
	}
	return &mtxn{m: m, state: st, rev: m.rev() + 1}
}

func (tx *mtxn) put(key, val []byte, lease int64) {
	prev := tx.state[string(key)]
	kv := &messages.KeyValue{Key: key, Value: val, CreateRevision: tx.rev, ModRevision: tx.rev, Version: 1, Lease: lease}
	if prev != nil {
		kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
	}
	tx.state[string(key)] = kv
	tx.changed = true
}

func (tx *mtxn) del(key, end []byte) int64 {
	n := int64(0)
	for k := range tx.state {
		if inRange([]byte(k), key, end) {
			delete(tx.state, k)
			n++
		}
	}
	if n > 0 {
		tx.changed = true
	}
	return n
}

func (tx *mtxn) commit() {
	if tx.changed {
		tx.m.states = append(tx.m.states, tx.state)
	}
}

// TestModel applies random requests (with restarts, commits and
// compactions) to the store and to the model and compares every answer and
// random reads at random revisions.
func TestModel(t *testing.T) {
	rounds := 4
	steps := 2000
	if testing.Short() {
		rounds, steps = 1, 300
	}
	for range rounds {
		seed := rand.Int63()
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

func runModel(t *testing.T, seed int64, steps int) {
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewSource(seed))
	h := newHarness(t)
	m := newModel()
	key := func() []byte { return []byte{'k', byte('0' + rnd.Intn(8))} }
	val := func() []byte { return []byte(fmt.Sprint(rnd.Intn(5))) }
	// lease is 0 (none) half of the time, else one of leases 1-3, which
	// may or may not exist.
	lease := func() int64 { return max(0, rnd.Int63n(6)-2) }
	end := func(k []byte) []byte {
		switch rnd.Intn(4) {
		case 0:
			return nil
		case 1:
			return []byte{0}
		default:
			return []byte{'k', k[1] + byte(rnd.Intn(4))}
		}
	}
	check := func(what string, got *messages.ClientResponse, wantErr *messages.Error) {
		t.Helper()
		if !rpcerr.Is(got.GetError(), wantErr) && !(got.GetError() == nil && wantErr == nil) {
			t.Fatalf("step %s: error %v, want %v", what, got.GetError(), wantErr)
		}
	}
	for step := range steps {
		what := fmt.Sprintf("%d", step)
		switch n := rnd.Intn(100); {
		case n < 35: // put
			p := &messages.PutRequest{Key: key(), Value: val(), PrevKv: rnd.Intn(2) == 0, IgnoreValue: rnd.Intn(8) == 0, Lease: lease()}
			if p.Lease == 0 {
				p.IgnoreLease = rnd.Intn(6) == 0
			}
			tx := m.begin()
			prev := tx.state[string(p.Key)]
			resp := h.apply(putReq(p))
			if p.Lease != 0 && !m.leases[p.Lease] {
				check(what+" put", resp, rpcerr.LeaseNotFound)
				break
			}
			if (p.IgnoreValue || p.IgnoreLease) && prev == nil {
				check(what+" put", resp, rpcerr.KeyNotFound)
				break
			}
			check(what+" put", resp, nil)
			v, l := p.Value, p.Lease
			if p.IgnoreValue {
				v = prev.Value
			}
			if p.IgnoreLease {
				l = prev.Lease
			}
			tx.put(p.Key, v, l)
			tx.commit()
			if p.PrevKv && !proto.Equal(resp.GetPut().PrevKv, prev) && !(prev == nil && resp.GetPut().PrevKv == nil) {
				t.Fatalf("step %s: prev kv %v, want %v", what, resp.GetPut().PrevKv, prev)
			}
			if resp.GetPut().Header.Revision != m.rev() {
				t.Fatalf("step %s: put revision %d, want %d", what, resp.GetPut().Header.Revision, m.rev())
			}
		case n < 50: // delete range
			k := key()
			d := &messages.DeleteRangeRequest{Key: k, RangeEnd: end(k), PrevKv: true}
			tx := m.begin()
			prev := m.rangeAt(tx.state, d.Key, d.RangeEnd)
			n := tx.del(d.Key, d.RangeEnd)
			tx.commit()
			resp := h.apply(delReq(d))
			check(what+" delete", resp, nil)
			if dr := resp.GetDeleteRange(); dr.Deleted != n || dr.Header.Revision != m.rev() {
				t.Fatalf("step %s: delete %v, want %d at %d", what, dr, n, m.rev())
			}
			equalKVs(t, what+" delete prev", resp.GetDeleteRange().PrevKvs, prev)
		case n < 70: // txn
			stepTxn(t, rnd, h, m, what, key, val, lease, end)
		case n < 73: // lease grant
			id := 1 + rnd.Int63n(3)
			resp := h.apply(grantReq(id, 10))
			if m.leases[id] {
				check(what+" grant", resp, rpcerr.LeaseExist)
				break
			}
			check(what+" grant", resp, nil)
			m.leases[id] = true
		case n < 75: // lease revoke
			id := 1 + rnd.Int63n(3)
			resp := h.apply(revokeReq(id))
			if !m.leases[id] {
				check(what+" revoke", resp, rpcerr.LeaseNotFound)
				break
			}
			check(what+" revoke", resp, nil)
			tx := m.begin()
			for _, k := range m.leaseKeys(id) {
				tx.del([]byte(k), nil)
			}
			tx.commit()
			delete(m.leases, id)
			if got := resp.GetLeaseRevoke().GetHeader().GetRevision(); got != m.rev() {
				t.Fatalf("step %s: revoke revision %d, want %d", what, got, m.rev())
			}
		case n < 77: // compaction
			rev := m.compactRev + 1 + rnd.Int63n(m.rev()-m.compactRev+1) - 1
			resp := h.compact(rev)
			switch {
			case rev <= m.compactRev:
				check(what+" compact", resp, rpcerr.Compacted)
			case rev > m.rev():
				check(what+" compact", resp, rpcerr.FutureRev)
			default:
				check(what+" compact", resp, nil)
				m.compactRev = rev
			}
		case n < 88:
			if err := h.s.Commit(); err != nil {
				t.Fatal(err)
			}
		case n < 90:
			h.reopen()
		}
		if h.s.Rev() != m.rev() || h.s.CompactRev() != m.compactRev {
			t.Fatalf("step %s: rev %d compact %d, want %d %d", what, h.s.Rev(), h.s.CompactRev(), m.rev(), m.compactRev)
		}
		for id := int64(1); id <= 3; id++ {
			if !m.leases[id] {
				wantNoLease(t, h.s, id)
				continue
			}
			wantLease(t, h.s, id, 10, 0, m.leaseKeys(id)...)
		}
		// Random reads.
		for range 3 {
			k := key()
			req := &messages.RangeRequest{Key: k, RangeEnd: end(k), Limit: int64(rnd.Intn(3))}
			if rnd.Intn(3) > 0 {
				req.Revision = rnd.Int63n(m.rev()+2) - 1
			}
			resp, err := h.s.View().Range(req)
			at := req.Revision
			if at <= 0 {
				at = m.rev()
			}
			switch {
			case at > m.rev():
				wantErr(t, what+" range", err, rpcerr.FutureRev)
				continue
			case at < m.compactRev:
				wantErr(t, what+" range", err, rpcerr.Compacted)
				continue
			case err != nil:
				t.Fatalf("step %s: range %v: %s", what, req, err.Message)
			}
			want := m.rangeAt(m.states[at], req.Key, req.RangeEnd)
			count, more := int64(len(want)), false
			if req.Limit > 0 && int64(len(want)) > req.Limit {
				want, more = want[:req.Limit], true
			}
			equalKVs(t, what+fmt.Sprintf(" range %q-%q at %d", req.Key, req.RangeEnd, at), resp.Kvs, want)
			if resp.Count != count || resp.More != more || resp.Header.Revision != m.rev() {
				t.Fatalf("step %s: range count %d more %v rev %d, want %d %v %d", what, resp.Count, resp.More, resp.Header.Revision, count, more, m.rev())
			}
		}
	}
	t.Logf("final revision %d, compacted at %d", m.rev(), m.compactRev)
	// A restarted copy hashes the same.
	hash1, _, _, _ := h.s.HashKV(0)
	h.reopen()
	if hash2, _, _, _ := h.s.HashKV(0); hash1 != hash2 {
		t.Fatalf("hash changed across restart: %x %x", hash1, hash2)
	}
}

func stepTxn(t *testing.T, rnd *rand.Rand, h *harness, m *model, what string, key, val func() []byte, lease func() int64, end func([]byte) []byte) {
	t.Helper()
	before := m.states[m.rev()]
	cmps := func() []*messages.Compare {
		var out []*messages.Compare
		for range rnd.Intn(3) {
			k := key()
			c := &messages.Compare{Key: k, Result: messages.Compare_CompareResult(rnd.Intn(4))}
			if rnd.Intn(3) == 0 {
				c.RangeEnd = end(k)
			}
			switch rnd.Intn(5) {
			case 0:
				c.Target, c.TargetUnion = messages.Compare_VERSION, &messages.Compare_Version{Version: rnd.Int63n(4)}
			case 1:
				c.Target, c.TargetUnion = messages.Compare_MOD, &messages.Compare_ModRevision{ModRevision: rnd.Int63n(m.rev() + 1)}
			case 2:
				c.Target, c.TargetUnion = messages.Compare_CREATE, &messages.Compare_CreateRevision{CreateRevision: rnd.Int63n(m.rev() + 1)}
			case 3:
				c.Target, c.TargetUnion = messages.Compare_VALUE, &messages.Compare_Value{Value: val()}
			case 4:
				c.Target, c.TargetUnion = messages.Compare_LEASE, &messages.Compare_Lease{Lease: rnd.Int63n(4)}
			}
			out = append(out, c)
		}
		return out
	}
	var mkOps func(depth int) []*messages.RequestOp
	mkTxn := func(depth int) *messages.TxnRequest {
		return &messages.TxnRequest{Compare: cmps(), Success: mkOps(depth + 1), Failure: mkOps(depth + 1)}
	}
	mkOps = func(depth int) []*messages.RequestOp {
		var ops []*messages.RequestOp
		for range rnd.Intn(4) {
			k := key()
			switch n := rnd.Intn(10); {
			case n < 4:
				p := &messages.PutRequest{Key: k, Value: val(), PrevKv: rnd.Intn(2) == 0, IgnoreValue: rnd.Intn(10) == 0, Lease: lease()}
				if p.Lease == 0 {
					p.IgnoreLease = rnd.Intn(8) == 0
				}
				ops = append(ops, opPutReq(p))
			case n < 6:
				ops = append(ops, opDel(string(k), string(end(k)), rnd.Intn(2) == 0))
			case n < 9:
				r := &messages.RangeRequest{Key: k, RangeEnd: end(k)}
				if rnd.Intn(4) == 0 {
					r.Revision = rnd.Int63n(m.rev() + 2)
				}
				ops = append(ops, opRange(r))
			default:
				if depth < 2 {
					ops = append(ops, opTxn(mkTxn(depth)))
				}
			}
		}
		return ops
	}
	rt := mkTxn(0)

	// The model: compares on the state before, checks, then execution.
	compare := func(c *messages.Compare) bool {
		kvs := m.rangeAt(before, c.Key, c.RangeEnd)
		if len(kvs) == 0 {
			if c.Target == messages.Compare_VALUE {
				return false
			}
			kvs = []*messages.KeyValue{{}}
		}
		for _, kv := range kvs {
			var r int
			switch c.Target {
			case messages.Compare_VERSION:
				r = cmpI(kv.Version, c.GetVersion())
			case messages.Compare_MOD:
				r = cmpI(kv.ModRevision, c.GetModRevision())
			case messages.Compare_CREATE:
				r = cmpI(kv.CreateRevision, c.GetCreateRevision())
			case messages.Compare_VALUE:
				r = bytes.Compare(kv.Value, c.GetValue())
			case messages.Compare_LEASE:
				r = cmpI(kv.Lease, c.GetLease())
			}
			ok := map[messages.Compare_CompareResult]bool{eq: r == 0, ne: r != 0, gt: r > 0, lt: r < 0}[c.Result]
			if !ok {
				return false
			}
		}
		return true
	}
	var wantErrV *messages.Error
	var checkOps func(rt *messages.TxnRequest)
	checkOps = func(rt *messages.TxnRequest) {
		ok := true
		for _, c := range rt.Compare {
			ok = ok && compare(c)
		}
		ops := rt.Failure
		if ok {
			ops = rt.Success
		}
		for _, op := range ops {
			if wantErrV != nil {
				return
			}
			switch {
			case op.GetRequestRange() != nil:
				r := op.GetRequestRange()
				if r.Revision > m.rev() {
					wantErrV = rpcerr.FutureRev
				} else if r.Revision != 0 && r.Revision < m.compactRev {
					wantErrV = rpcerr.Compacted
				}
			case op.GetRequestPut() != nil:
				p := op.GetRequestPut()
				if (p.IgnoreValue || p.IgnoreLease) && before[string(p.Key)] == nil {
					wantErrV = rpcerr.KeyNotFound
				} else if p.Lease != 0 && !m.leases[p.Lease] {
					wantErrV = rpcerr.LeaseNotFound
				}
			case op.GetRequestTxn() != nil:
				checkOps(op.GetRequestTxn())
			}
		}
	}
	checkOps(rt)
	tx := m.begin()
	var exec func(rt *messages.TxnRequest) *messages.TxnResponse
	exec = func(rt *messages.TxnRequest) *messages.TxnResponse {
		ok := true
		for _, c := range rt.Compare {
			ok = ok && compare(c)
		}
		ops := rt.Failure
		if ok {
			ops = rt.Success
		}
		resp := &messages.TxnResponse{Succeeded: ok}
		for _, op := range ops {
			if wantErrV != nil {
				return nil
			}
			out := &messages.ResponseOp{}
			switch {
			case op.GetRequestRange() != nil:
				r := op.GetRequestRange()
				st := tx.state
				if r.Revision > 0 {
					st = m.states[r.Revision]
				}
				kvs := m.rangeAt(st, r.Key, r.RangeEnd)
				out.Response = &messages.ResponseOp_ResponseRange{ResponseRange: &messages.RangeResponse{Kvs: kvs, Count: int64(len(kvs))}}
			case op.GetRequestPut() != nil:
				p := op.GetRequestPut()
				prev := tx.state[string(p.Key)]
				if (p.IgnoreValue || p.IgnoreLease) && prev == nil {
					wantErrV = rpcerr.KeyNotFound // deleted earlier in the txn: the whole txn fails
					return nil
				}
				v, l := p.Value, p.Lease
				if p.IgnoreValue {
					v = prev.Value
				}
				if p.IgnoreLease {
					l = prev.Lease
				}
				pr := &messages.PutResponse{}
				if p.PrevKv {
					pr.PrevKv = prev
				}
				tx.put(p.Key, v, l)
				out.Response = &messages.ResponseOp_ResponsePut{ResponsePut: pr}
			case op.GetRequestDeleteRange() != nil:
				d := op.GetRequestDeleteRange()
				dr := &messages.DeleteRangeResponse{}
				if d.PrevKv {
					dr.PrevKvs = m.rangeAt(tx.state, d.Key, d.RangeEnd)
				}
				dr.Deleted = tx.del(d.Key, d.RangeEnd)
				out.Response = &messages.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
			case op.GetRequestTxn() != nil:
				sub := exec(op.GetRequestTxn())
				if sub == nil {
					return nil
				}
				out.Response = &messages.ResponseOp_ResponseTxn{ResponseTxn: sub}
			}
			resp.Responses = append(resp.Responses, out)
		}
		return resp
	}
	var want *messages.TxnResponse
	if wantErrV == nil {
		want = exec(rt)
	}
	got := h.txn(rt)
	if wantErrV != nil {
		if !rpcerr.Is(got.GetError(), wantErrV) {
			t.Fatalf("step %s: txn error %v, want %q\n%v", what, got.GetError(), wantErrV.Message, rt)
		}
		return
	}
	tx.commit()
	if got.GetError() != nil {
		t.Fatalf("step %s: txn: %s\n%v", what, got.GetError().Message, rt)
	}
	if g := got.GetTxn(); g.Header.Revision != m.rev() {
		t.Fatalf("step %s: txn revision %d, want %d", what, g.Header.Revision, m.rev())
	}
	stripHeaders(got.GetTxn())
	got.GetTxn().Header = nil
	if !proto.Equal(got.GetTxn(), want) {
		t.Fatalf("step %s: txn\n%v\ngot  %v\nwant %v", what, rt, got.GetTxn(), want)
	}
}

func stripHeaders(r *messages.TxnResponse) {
	r.Header = nil
	for _, op := range r.Responses {
		switch {
		case op.GetResponseRange() != nil:
			op.GetResponseRange().Header = nil
		case op.GetResponsePut() != nil:
			op.GetResponsePut().Header = nil
		case op.GetResponseDeleteRange() != nil:
			op.GetResponseDeleteRange().Header = nil
		case op.GetResponseTxn() != nil:
			stripHeaders(op.GetResponseTxn())
		}
	}
}

func cmpI(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
