package mvcc

import (
	"bytes"
	"slices"
	"sort"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

// kvSource resolves revisions of live keys to their records. atRev is the
// revision the read is at (a source backed by the file re-checks it against
// the finished compaction). The returned KeyValue belongs to the caller.
type kvSource interface {
	get(rev revision, atRev int64) (*messages.KeyValue, *messages.Error)
}

// reader is one consistent state of the store: an index tree, the revision
// it reflects, the compaction revision, and where records come from.
type reader struct {
	tree       *keyTree
	src        kvSource
	curRev     int64
	compactRev int64
	// leases answers whether a put's lease exists: the store's table in the
	// writer, nil in a view (whose txns do not put).
	leases *leaseTable
}

type rangeOptions struct {
	limit int64 // <= 0: no limit
	rev   int64 // <= 0: curRev
	count bool  // count only, no records
}

type rangeResult struct {
	kvs   []*messages.KeyValue
	count int64 // keys in range at the revision, regardless of limit
	rev   int64 // the reader's current revision
}

// rangeKeys reads [key, end) as etcd's storeTxnCommon.rangeKeys.
func (rd reader) rangeKeys(key, end []byte, ro rangeOptions) (*rangeResult, *messages.Error) {
	rev := ro.rev
	if rev > rd.curRev {
		return nil, rpcerr.FutureRev
	}
	if rev <= 0 {
		rev = rd.curRev
	}
	if rev < rd.compactRev {
		return nil, rpcerr.Compacted
	}
	kr := newKeyRange(key, end)
	if ro.count {
		return &rangeResult{count: countAt(rd.tree, kr, rev), rev: rd.curRev}, nil
	}
	revs, total := revisionsAt(rd.tree, kr, rev, ro.limit)
	kvs := make([]*messages.KeyValue, len(revs))
	for i, r := range revs {
		kv, err := rd.src.get(r, rev)
		if err != nil {
			return nil, err
		}
		kvs[i] = kv
	}
	return &rangeResult{kvs: kvs, count: total, rev: rd.curRev}, nil
}

// executeRange answers a RangeRequest as etcd's txn.executeRange: with a
// sort order or a revision filter everything is fetched, filtered, sorted and
// then cut to limit; otherwise limit+1 records are fetched to set more. count
// is the number of keys in range at the revision before filters and limit.
func (rd reader) executeRange(r *messages.RangeRequest) (*messages.RangeResponse, *messages.Error) {
	limit := r.GetLimit()
	if r.GetSortOrder() != messages.RangeRequest_NONE ||
		r.GetMinModRevision() != 0 || r.GetMaxModRevision() != 0 ||
		r.GetMinCreateRevision() != 0 || r.GetMaxCreateRevision() != 0 {
		limit = 0
	}
	if limit > 0 {
		limit++
	}
	rr, err := rd.rangeKeys(r.GetKey(), r.GetRangeEnd(), rangeOptions{limit: limit, rev: r.GetRevision(), count: r.GetCountOnly()})
	if err != nil {
		return nil, err
	}
	kvs := rr.kvs
	if v := r.GetMaxModRevision(); v != 0 {
		kvs = slices.DeleteFunc(kvs, func(kv *messages.KeyValue) bool { return kv.ModRevision > v })
	}
	if v := r.GetMinModRevision(); v != 0 {
		kvs = slices.DeleteFunc(kvs, func(kv *messages.KeyValue) bool { return kv.ModRevision < v })
	}
	if v := r.GetMaxCreateRevision(); v != 0 {
		kvs = slices.DeleteFunc(kvs, func(kv *messages.KeyValue) bool { return kv.CreateRevision > v })
	}
	if v := r.GetMinCreateRevision(); v != 0 {
		kvs = slices.DeleteFunc(kvs, func(kv *messages.KeyValue) bool { return kv.CreateRevision < v })
	}

	order, target := r.GetSortOrder(), r.GetSortTarget()
	switch {
	case target != messages.RangeRequest_KEY && order == messages.RangeRequest_NONE:
		order = messages.RangeRequest_ASCEND // records come in key order; sort by a non-key target ascending
	case target == messages.RangeRequest_KEY && order == messages.RangeRequest_ASCEND:
		order = messages.RangeRequest_NONE // already in key order
	}
	if order == messages.RangeRequest_ASCEND || order == messages.RangeRequest_DESCEND {
		// sort.Sort with etcd's comparisons gives etcd's order among ties.
		var s sort.Interface
		switch target {
		case messages.RangeRequest_VERSION:
			s = byVersion{kvs}
		case messages.RangeRequest_CREATE:
			s = byCreate{kvs}
		case messages.RangeRequest_MOD:
			s = byMod{kvs}
		case messages.RangeRequest_VALUE:
			s = byValue{kvs}
		default:
			s = byKey{kvs}
		}
		if order == messages.RangeRequest_DESCEND {
			s = sort.Reverse(s)
		}
		sort.Sort(s)
	}

	resp := &messages.RangeResponse{Header: &messages.ResponseHeader{Revision: rr.rev}, Count: rr.count}
	if l := r.GetLimit(); l > 0 && int64(len(kvs)) > l {
		kvs = kvs[:l]
		resp.More = true
	}
	if r.GetKeysOnly() {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

type kvSlice []*messages.KeyValue

func (s kvSlice) Len() int      { return len(s) }
func (s kvSlice) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

type byKey struct{ kvSlice }

func (s byKey) Less(i, j int) bool { return bytes.Compare(s.kvSlice[i].Key, s.kvSlice[j].Key) < 0 }

type byVersion struct{ kvSlice }

func (s byVersion) Less(i, j int) bool { return s.kvSlice[i].Version < s.kvSlice[j].Version }

type byCreate struct{ kvSlice }

func (s byCreate) Less(i, j int) bool {
	return s.kvSlice[i].CreateRevision < s.kvSlice[j].CreateRevision
}

type byMod struct{ kvSlice }

func (s byMod) Less(i, j int) bool { return s.kvSlice[i].ModRevision < s.kvSlice[j].ModRevision }

type byValue struct{ kvSlice }

func (s byValue) Less(i, j int) bool {
	return bytes.Compare(s.kvSlice[i].Value, s.kvSlice[j].Value) < 0
}

// copyKV returns a caller-owned copy of a shared record; the byte slices
// are shared and must not be modified.
func copyKV(kv *messages.KeyValue) *messages.KeyValue {
	return &messages.KeyValue{
		Key:            kv.Key,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Value:          kv.Value,
		Lease:          kv.Lease,
	}
}

// findRecord returns the record at rev in an overlay, or nil.
func findRecord(overlay []record, rev revision) *record {
	if len(overlay) == 0 || rev.less(overlay[0].rev) {
		return nil
	}
	i, ok := slices.BinarySearchFunc(overlay, rev, func(r record, t revision) int {
		switch {
		case r.rev.less(t):
			return -1
		case r.rev == t:
			return 0
		default:
			return 1
		}
	})
	if !ok {
		return nil
	}
	return &overlay[i]
}
