package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"google.golang.org/protobuf/proto"
)

// Apply applies one committed write, the Raft entry at index idx, in the
// open batch (beginning one if needed) and returns its response with
// header.revision set (the store's revision after the request; the caller
// fills the other header fields) or an error response (rpcerr values; then
// nothing was written). All changes of one request share one new main
// revision; a request that changes nothing does not advance the revision.
// The consistent index becomes idx either way. It panics if idx <=
// ConsistentIndex() (the caller skips entries already applied), after Close,
// or after a failed Commit.
func (s *Store) Apply(idx uint64, req *messages.InternalRequest) *messages.ClientResponse {
	s.advance(idx)
	s.batch()
	switch r := req.GetRequest().(type) {
	case *messages.InternalRequest_Put:
		return s.applyPut(r.Put)
	case *messages.InternalRequest_DeleteRange:
		return s.applyDeleteRange(r.DeleteRange)
	case *messages.InternalRequest_Txn:
		return s.applyTxn(r.Txn)
	case *messages.InternalRequest_Compaction:
		return s.applyCompaction(r.Compaction)
	case *messages.InternalRequest_MemberAttributes:
		return s.applyMember(r.MemberAttributes)
	case *messages.InternalRequest_LeaseGrant:
		return s.applyLeaseGrant(r.LeaseGrant)
	case *messages.InternalRequest_LeaseRevoke:
		return s.applyLeaseRevoke(r.LeaseRevoke)
	case *messages.InternalRequest_LeaseCheckpoint:
		return s.applyLeaseCheckpoint(r.LeaseCheckpoint)
	default:
		return rpcerr.Response(errUnknownRequest)
	}
}

func (s *Store) applyPut(p *messages.PutRequest) *messages.ClientResponse {
	if p.GetLease() != 0 && s.leases.get(p.GetLease()) == nil {
		return rpcerr.Response(rpcerr.LeaseNotFound)
	}
	tw := s.newWrite()
	resp, err := tw.put(p)
	if err != nil {
		return rpcerr.Response(err)
	}
	tw.end()
	return &messages.ClientResponse{Response: &messages.ClientResponse_Put{Put: resp}}
}

func (s *Store) applyDeleteRange(dr *messages.DeleteRangeRequest) *messages.ClientResponse {
	tw := s.newWrite()
	resp := tw.deleteRange(dr)
	tw.end()
	return &messages.ClientResponse{Response: &messages.ClientResponse_DeleteRange{DeleteRange: resp}}
}

// applyTxn follows etcd's txn.Txn: every compare (of nested txns too) is
// evaluated against the state before the txn, the chosen ops are checked
// (range revisions, put preconditions) against that state, and only then
// executed; reads inside the txn see its earlier writes.
func (s *Store) applyTxn(rt *messages.TxnRequest) *messages.ClientResponse {
	tw := s.newWrite()
	before := tw.reader()
	path, err := before.compareToPath(rt)
	if err != nil {
		panic(fmt.Sprintf("mvcc: compare in the writer failed: %s", err.GetMessage()))
	}
	if _, err := before.checkTxn(rt, path); err != nil {
		return rpcerr.Response(err)
	}
	// Execution can still fail where the check could not foresee it: a put
	// with ignore_value/ignore_lease of a key deleted earlier in the same
	// txn (the gateway rejects such txns; etcd panics on them). Keep a
	// snapshot of the index to undo the txn's index changes then.
	var saved *keyTree
	if hasIgnorePut(rt, path) {
		saved = s.index.snapshot()
	}
	resp, _, err := executeTxn(tw, rt, path)
	if err != nil {
		if saved == nil {
			panic(fmt.Sprintf("mvcc: txn failed after its checks passed: %s", err.GetMessage()))
		}
		s.index.tree = saved
		return rpcerr.Response(err)
	}
	tw.end()
	resp.Header = &messages.ResponseHeader{Revision: s.rev}
	return &messages.ClientResponse{Response: &messages.ClientResponse_Txn{Txn: resp}}
}

func (s *Store) applyCompaction(c *messages.CompactionRequest) *messages.ClientResponse {
	rev := c.GetRevision()
	if rev <= s.compactRev {
		return rpcerr.Response(rpcerr.Compacted)
	}
	if rev > s.rev {
		return rpcerr.Response(rpcerr.FutureRev)
	}
	s.compact(rev)
	return &messages.ClientResponse{Response: &messages.ClientResponse_Compaction{Compaction: &messages.CompactionResponse{
		Header: &messages.ResponseHeader{Revision: s.rev},
	}}}
}

// compact compacts the index at rev, deletes the records it no longer needs
// from bucket "key" and records rev as scheduled and finished, all in the
// open batch: a crash leaves either none or all of it.
func (s *Store) compact(rev int64) {
	s.batch()
	removed := s.index.compact(rev)
	slices.SortFunc(removed, func(a, b revision) int {
		switch {
		case a.less(b):
			return -1
		case a == b:
			return 0
		default:
			return 1
		}
	})
	c := s.keys.Cursor()
	var buf [markedRevKeyLen]byte
	for _, r := range removed {
		k := appendRevKey(buf[:0], r, false)
		if ck, _ := c.Seek(k); ck != nil && bytes.HasPrefix(ck, k) {
			if err := c.Delete(); err != nil {
				panic(fmt.Sprintf("mvcc: %s: compaction: delete record %s: %v", s.path, revString(r), err))
			}
		}
	}
	for _, name := range [][]byte{scheduledCompactKey, finishedCompactKey} {
		if err := putSealed(s.meta, name, appendRevKey(nil, revision{main: rev}, false)); err != nil {
			panic(fmt.Sprintf("mvcc: %s: compaction: write meta: %v", s.path, err))
		}
	}
	s.compactRev = rev
	s.dirty = true
}

// writeTxn stages the changes of one request at revision beginRev+1. The
// index is updated as changes are made (so later reads of the request see
// them); records reach the batch and the overlay in end.
type writeTxn struct {
	s        *Store
	beginRev int64
	changes  []record
}

func (s *Store) newWrite() *writeTxn { return &writeTxn{s: s, beginRev: s.rev} }

// rev is the revision reads inside the request see.
func (tw *writeTxn) rev() int64 {
	if len(tw.changes) > 0 {
		return tw.beginRev + 1
	}
	return tw.beginRev
}

func (tw *writeTxn) reader() reader {
	return reader{tree: tw.s.index.tree, src: tw, curRev: tw.rev(), compactRev: tw.s.compactRev, leases: &tw.s.leases}
}

// get resolves a revision from the request's own changes, the overlay or
// the batch.
func (tw *writeTxn) get(rev revision, _ int64) (*messages.KeyValue, *messages.Error) {
	if rev.main == tw.beginRev+1 && rev.sub < int64(len(tw.changes)) {
		return copyKV(tw.changes[rev.sub].kv), nil
	}
	if r := findRecord(tw.s.overlay, rev); r != nil {
		return copyKV(r.kv), nil
	}
	var buf [markedRevKeyLen]byte
	k := appendRevKey(buf[:0], rev, false)
	val := tw.s.keys.Get(k)
	if val == nil {
		panic(fmt.Sprintf("mvcc: %s: record %s, live in the index, is missing from the database", tw.s.path, revString(rev)))
	}
	kv := new(messages.KeyValue)
	if err := proto.Unmarshal(mustUnseal(k, val), kv); err != nil {
		panic(fmt.Sprintf("mvcc: %s: record %s does not decode: %v", tw.s.path, revString(rev), err))
	}
	return kv, nil
}

// end writes the staged records to the batch and the overlay, attaches and
// detaches their keys to and from leases, and advances the revision if
// anything changed.
func (tw *writeTxn) end() {
	if len(tw.changes) == 0 {
		return
	}
	s := tw.s
	for _, r := range tw.changes {
		size := proto.Size(r.kv)
		buf := make([]byte, 0, markedRevKeyLen+size+sealLen)
		buf = appendRevKey(buf, r.rev, r.tombstone)
		n := len(buf)
		buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, r.kv)
		if err == nil {
			// The seal covers key and value, which buf holds back to back.
			buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
			err = s.keys.Put(buf[:n:n], buf[n:])
		}
		if err != nil {
			panic(fmt.Sprintf("mvcc: %s: write record %s: %v", s.path, revString(r.rev), err))
		}
	}
	s.leases.track(tw.changes)
	s.overlay = append(s.overlay, tw.changes...)
	s.events = appendEvents(s.events, tw.changes)
	s.rev = tw.beginRev + 1
	s.dirty = true
}

// putKV stages a put of key at the next sub-revision and returns the
// revision responses report.
func (tw *writeTxn) putKV(key, value []byte, lease int64) int64 {
	rev := revision{main: tw.beginRev + 1, sub: int64(len(tw.changes))}
	created, ver := rev.main, int64(0)
	ki := tw.s.index.lookup(key)
	if ki != nil {
		if _, c, v, ok := ki.get(rev.main); ok {
			created, ver = c.main, v
		}
	}
	// One copy owned by the store: requests may be reused by the caller.
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	kv := &messages.KeyValue{
		Key:            buf[:len(key):len(key)],
		CreateRevision: created,
		ModRevision:    rev.main,
		Version:        ver + 1,
		Lease:          lease,
	}
	if len(value) > 0 {
		kv.Value = buf[len(key):]
	}
	tw.s.index.putAt(ki, kv.Key, rev)
	tw.changes = append(tw.changes, record{rev: rev, kv: kv})
	return rev.main
}

// deleteKeys stages tombstones for every key in [key, end) that exists now.
func (tw *writeTxn) deleteKeys(key, end []byte) int64 {
	atRev := tw.rev()
	var keys [][]byte
	visit(tw.s.index.tree, newKeyRange(key, end), func(ki *keyIndex) bool {
		if _, _, _, ok := ki.get(atRev); ok {
			keys = append(keys, ki.key)
		}
		return true
	})
	for _, k := range keys {
		rev := revision{main: tw.beginRev + 1, sub: int64(len(tw.changes))}
		if !tw.s.index.tombstone(k, rev) {
			panic(fmt.Sprintf("mvcc: tombstone of key %q, live at %d, failed", k, atRev))
		}
		tw.changes = append(tw.changes, record{rev: rev, kv: &messages.KeyValue{Key: k}, tombstone: true})
	}
	return int64(len(keys))
}

// put executes a PutRequest as etcd's txn.put (the lease is checked by the
// caller).
func (tw *writeTxn) put(p *messages.PutRequest) (*messages.PutResponse, *messages.Error) {
	var prev *messages.KeyValue
	if p.GetIgnoreValue() || p.GetIgnoreLease() || p.GetPrevKv() {
		rr, err := tw.reader().rangeKeys(p.GetKey(), nil, rangeOptions{})
		if err != nil {
			return nil, err
		}
		if len(rr.kvs) > 0 {
			prev = rr.kvs[0]
		}
	}
	if (p.GetIgnoreValue() || p.GetIgnoreLease()) && prev == nil {
		return nil, rpcerr.KeyNotFound
	}
	val, lease := p.GetValue(), p.GetLease()
	if p.GetIgnoreValue() {
		val = prev.Value
	}
	if p.GetIgnoreLease() {
		lease = prev.Lease
	}
	resp := &messages.PutResponse{Header: &messages.ResponseHeader{}}
	if p.GetPrevKv() {
		resp.PrevKv = prev
	}
	resp.Header.Revision = tw.putKV(p.GetKey(), val, lease)
	return resp, nil
}

// deleteRange executes a DeleteRangeRequest as etcd's txn.deleteRange.
func (tw *writeTxn) deleteRange(dr *messages.DeleteRangeRequest) *messages.DeleteRangeResponse {
	resp := &messages.DeleteRangeResponse{Header: &messages.ResponseHeader{}}
	if dr.GetPrevKv() {
		rr, err := tw.reader().rangeKeys(dr.GetKey(), dr.GetRangeEnd(), rangeOptions{})
		if err != nil {
			panic(fmt.Sprintf("mvcc: read at the current revision failed: %s", err.GetMessage()))
		}
		resp.PrevKvs = rr.kvs
	}
	resp.Deleted = tw.deleteKeys(dr.GetKey(), dr.GetRangeEnd())
	resp.Header.Revision = tw.rev()
	return resp
}

// branch returns the ops a txn runs given its compare result.
func branch(rt *messages.TxnRequest, succeeded bool) []*messages.RequestOp {
	if succeeded {
		return rt.GetSuccess()
	}
	return rt.GetFailure()
}

// compareToPath evaluates the compares of rt and of the nested txns on the
// chosen branches at the reader's state, before any write: path[0] is rt's
// result, followed by the paths of its chosen nested txns in order (etcd's
// txnPath). The only errors are the reader's source's (a view racing a
// compaction, or a closed store).
func (rd reader) compareToPath(rt *messages.TxnRequest) ([]bool, *messages.Error) {
	ok, err := rd.applyCompares(rt.GetCompare())
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	for _, op := range branch(rt, ok) {
		if nt := op.GetRequestTxn(); nt != nil {
			sub, err := rd.compareToPath(nt)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

// checkTxn validates the chosen ops at the reader's state (the state before
// the txn) as etcd's checkTxn and returns the number of nested txns it
// walked.
func (rd reader) checkTxn(rt *messages.TxnRequest, path []bool) (int, *messages.Error) {
	nested := 0
	for _, op := range branch(rt, path[0]) {
		var err *messages.Error
		switch tv := op.GetRequest().(type) {
		case *messages.RequestOp_RequestRange:
			err = rd.checkRange(tv.RequestRange)
		case *messages.RequestOp_RequestPut:
			err = rd.checkPut(tv.RequestPut)
		case *messages.RequestOp_RequestTxn:
			if tv.RequestTxn == nil {
				continue
			}
			var n int
			n, err = rd.checkTxn(tv.RequestTxn, path[1:])
			nested += n + 1
			path = path[n+1:]
		}
		if err != nil {
			return 0, err
		}
	}
	return nested, nil
}

func (rd reader) checkRange(r *messages.RangeRequest) *messages.Error {
	switch rev := r.GetRevision(); {
	case rev == 0:
		return nil
	case rev > rd.curRev:
		return rpcerr.FutureRev
	case rev < rd.compactRev:
		return rpcerr.Compacted
	}
	return nil
}

func (rd reader) checkPut(p *messages.PutRequest) *messages.Error {
	if p.GetIgnoreValue() || p.GetIgnoreLease() {
		ki, _ := rd.tree.Get(&keyIndex{key: p.GetKey()})
		if ki == nil || !ki.live() {
			return rpcerr.KeyNotFound
		}
	}
	if p.GetLease() != 0 && !rd.leases.exists(p.GetLease()) {
		return rpcerr.LeaseNotFound
	}
	return nil
}

// hasIgnorePut reports whether the chosen ops contain a put with
// ignore_value or ignore_lease.
func hasIgnorePut(rt *messages.TxnRequest, path []bool) bool {
	found, _ := scanIgnorePut(rt, path)
	return found
}

func scanIgnorePut(rt *messages.TxnRequest, path []bool) (found bool, nested int) {
	for _, op := range branch(rt, path[0]) {
		switch tv := op.GetRequest().(type) {
		case *messages.RequestOp_RequestPut:
			if tv.RequestPut.GetIgnoreValue() || tv.RequestPut.GetIgnoreLease() {
				return true, 0
			}
		case *messages.RequestOp_RequestTxn:
			if tv.RequestTxn == nil {
				continue
			}
			f, n := scanIgnorePut(tv.RequestTxn, path[1:])
			if f {
				return true, 0
			}
			nested += n + 1
			path = path[n+1:]
		}
	}
	return false, nested
}

// txnExecutor runs the ops of a txn: a writeTxn, or a readTxn for a
// read-only txn on a View.
type txnExecutor interface {
	// reader is the state a range op reads (with the txn's earlier writes).
	reader() reader
	put(p *messages.PutRequest) (*messages.PutResponse, *messages.Error)
	deleteRange(dr *messages.DeleteRangeRequest) *messages.DeleteRangeResponse
}

// executeTxn runs the chosen ops of rt (etcd's executeTxn) on ex and returns
// the response (a nested txn's header has revision 0, as etcd's) and the
// number of nested txns it ran.
func executeTxn(ex txnExecutor, rt *messages.TxnRequest, path []bool) (*messages.TxnResponse, int, *messages.Error) {
	ops := branch(rt, path[0])
	resp := &messages.TxnResponse{
		Header:    &messages.ResponseHeader{},
		Succeeded: path[0],
		Responses: make([]*messages.ResponseOp, len(ops)),
	}
	nested := 0
	for i, op := range ops {
		out := &messages.ResponseOp{}
		switch tv := op.GetRequest().(type) {
		case *messages.RequestOp_RequestRange:
			r, err := ex.reader().executeRange(tv.RequestRange)
			if err != nil {
				return nil, 0, err
			}
			out.Response = &messages.ResponseOp_ResponseRange{ResponseRange: r}
		case *messages.RequestOp_RequestPut:
			r, err := ex.put(tv.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			out.Response = &messages.ResponseOp_ResponsePut{ResponsePut: r}
		case *messages.RequestOp_RequestDeleteRange:
			out.Response = &messages.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: ex.deleteRange(tv.RequestDeleteRange)}
		case *messages.RequestOp_RequestTxn:
			if tv.RequestTxn == nil {
				break
			}
			r, n, err := executeTxn(ex, tv.RequestTxn, path[1:])
			if err != nil {
				return nil, 0, err
			}
			nested += n + 1
			path = path[n+1:]
			out.Response = &messages.ResponseOp_ResponseTxn{ResponseTxn: r}
		}
		resp.Responses[i] = out
	}
	return resp, nested, nil
}

func (rd reader) applyCompares(cmps []*messages.Compare) (bool, *messages.Error) {
	for _, c := range cmps {
		if ok, err := rd.applyCompare(c); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// applyCompare evaluates one compare at the reader's current revision as
// etcd's applyCompare: every key in the range must satisfy it; with no key,
// a VALUE compare fails and the others compare a zero KeyValue. Revisions
// and versions come from the index; values and leases from the records.
func (rd reader) applyCompare(c *messages.Compare) (bool, *messages.Error) {
	atRev := rd.curRev
	needRecord := c.GetTarget() == messages.Compare_VALUE || c.GetTarget() == messages.Compare_LEASE
	found, ok := false, true
	var err *messages.Error
	visit(rd.tree, newKeyRange(c.GetKey(), c.GetRangeEnd()), func(ki *keyIndex) bool {
		mod, created, ver, live := ki.get(atRev)
		if !live {
			return true
		}
		found = true
		var kv *messages.KeyValue
		if needRecord {
			if kv, err = rd.src.get(mod, atRev); err != nil {
				return false
			}
		} else {
			kv = &messages.KeyValue{ModRevision: mod.main, CreateRevision: created.main, Version: ver}
		}
		ok = compareKV(c, kv)
		return ok
	})
	switch {
	case err != nil:
		return false, err
	case !found && c.GetTarget() == messages.Compare_VALUE:
		return false, nil // a missing key has no value, not an empty one
	case !found:
		return compareKV(c, &messages.KeyValue{}), nil
	}
	return ok, nil
}

func compareKV(c *messages.Compare, kv *messages.KeyValue) bool {
	var result int
	switch c.GetTarget() {
	case messages.Compare_VALUE:
		var v []byte
		if tv, _ := c.GetTargetUnion().(*messages.Compare_Value); tv != nil {
			v = tv.Value
		}
		result = bytes.Compare(kv.Value, v)
	case messages.Compare_CREATE:
		var v int64
		if tv, _ := c.GetTargetUnion().(*messages.Compare_CreateRevision); tv != nil {
			v = tv.CreateRevision
		}
		result = cmpInt64(kv.CreateRevision, v)
	case messages.Compare_MOD:
		var v int64
		if tv, _ := c.GetTargetUnion().(*messages.Compare_ModRevision); tv != nil {
			v = tv.ModRevision
		}
		result = cmpInt64(kv.ModRevision, v)
	case messages.Compare_VERSION:
		var v int64
		if tv, _ := c.GetTargetUnion().(*messages.Compare_Version); tv != nil {
			v = tv.Version
		}
		result = cmpInt64(kv.Version, v)
	case messages.Compare_LEASE:
		var v int64
		if tv, _ := c.GetTargetUnion().(*messages.Compare_Lease); tv != nil {
			v = tv.Lease
		}
		result = cmpInt64(kv.Lease, v)
	}
	switch c.GetResult() {
	case messages.Compare_EQUAL:
		return result == 0
	case messages.Compare_NOT_EQUAL:
		return result != 0
	case messages.Compare_GREATER:
		return result > 0
	case messages.Compare_LESS:
		return result < 0
	}
	return true
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
