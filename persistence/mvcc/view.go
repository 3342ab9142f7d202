package mvcc

import (
	"fmt"
	"sync/atomic"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// View is an immutable read view of the store as of one Publish: the key
// index snapshot, the revision and compaction revision then, and the records
// written since the last Commit before it. All methods are safe on any
// goroutine, concurrently with the writer.
type View struct {
	tree       *keyTree
	rev        int64
	compactRev int64
	overlay    []record
	db         *bolt.DB
	latest     *atomic.Pointer[View] // the store's newest view
}

// Rev returns the store's revision as of this view.
func (v *View) Rev() int64 { return v.rev }

// CompactRev returns the compaction revision as of this view (-1 if none).
func (v *View) CompactRev() int64 { return v.compactRev }

// Range answers req as etcd would at this view; the header carries only the
// revision (the view's). Errors: rpcerr.FutureRev above the view's revision,
// rpcerr.Compacted below the compaction revision (the view's, or one that
// finished in the file since the view was published), rpcerr.Stopped if the
// store was closed and the answer needs the file. A read of the latest
// revision (revision <= 0) never answers Compacted: if the file was
// compacted past this view, it is answered from the newest view (and its
// header carries that view's revision). Returned records share byte slices
// with the store: do not modify them.
func (v *View) Range(req *messages.RangeRequest) (*messages.RangeResponse, *messages.Error) {
	for {
		resp, err := v.rangeOnce(req)
		if err == nil || req.GetRevision() > 0 || !rpcerr.Is(err, rpcerr.Compacted) {
			return resp, err
		}
		next := v.latest.Load()
		if next == v {
			return resp, err
		}
		v = next
	}
}

func (v *View) rangeOnce(req *messages.RangeRequest) (*messages.RangeResponse, *messages.Error) {
	src := viewSource{v: v}
	defer src.close()
	return reader{tree: v.tree, src: &src, curRev: v.rev, compactRev: v.compactRev}.executeRange(req)
}

// Txn answers a read-only txn (no put or delete_range in any branch,
// nested txns included) as Apply would at this view's state, without
// writing: every compare, nested ones included, is evaluated first, then the
// chosen ranges run, all against this one view; header.revision is the
// view's revision (a nested txn's header has revision 0, as etcd's). Errors:
// rpcerr.FutureRev and rpcerr.Compacted for a range's revision as Apply
// (checked before any range runs), rpcerr.Compacted or rpcerr.Stopped as
// Range, and ErrTxnNotReadOnly for a txn that writes. If
// every range reads the latest revision, a compaction that finished in the
// file past this view makes the whole txn run again on the newest view, as
// Range does. Returned records share byte slices with the store: do not
// modify them.
func (v *View) Txn(req *messages.TxnRequest) (*messages.TxnResponse, *messages.Error) {
	if !IsTxnReadOnly(req) {
		return nil, ErrTxnNotReadOnly
	}
	latestOnly := rangesAtLatest(req)
	for {
		resp, err := v.txnOnce(req)
		if err == nil || !latestOnly || !rpcerr.Is(err, rpcerr.Compacted) {
			return resp, err
		}
		next := v.latest.Load()
		if next == v {
			return resp, err
		}
		v = next
	}
}

func (v *View) txnOnce(req *messages.TxnRequest) (*messages.TxnResponse, *messages.Error) {
	src := viewSource{v: v}
	defer src.close()
	rd := reader{tree: v.tree, src: &src, curRev: v.rev, compactRev: v.compactRev}
	path, err := rd.compareToPath(req)
	if err != nil {
		return nil, err
	}
	if _, err := rd.checkTxn(req, path); err != nil {
		return nil, err
	}
	resp, _, err := executeTxn(readTxn{rd}, req, path)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = v.rev
	return resp, nil
}

// IsTxnReadOnly reports whether rt writes nothing: no put or delete_range on
// either branch, of rt or of any nested txn. (etcd's IsTxnReadonly is
// narrower: it also counts a nested txn as a write.)
func IsTxnReadOnly(rt *messages.TxnRequest) bool {
	for _, ops := range [][]*messages.RequestOp{rt.GetSuccess(), rt.GetFailure()} {
		for _, op := range ops {
			switch tv := op.GetRequest().(type) {
			case *messages.RequestOp_RequestPut, *messages.RequestOp_RequestDeleteRange:
				return false
			case *messages.RequestOp_RequestTxn:
				if !IsTxnReadOnly(tv.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// rangesAtLatest reports whether every range in rt, on either branch and in
// nested txns, reads the latest revision.
func rangesAtLatest(rt *messages.TxnRequest) bool {
	for _, ops := range [][]*messages.RequestOp{rt.GetSuccess(), rt.GetFailure()} {
		for _, op := range ops {
			switch tv := op.GetRequest().(type) {
			case *messages.RequestOp_RequestRange:
				if tv.RequestRange.GetRevision() != 0 {
					return false
				}
			case *messages.RequestOp_RequestTxn:
				if !rangesAtLatest(tv.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// readTxn executes the ops of a read-only txn on a view. View.Txn rejects
// txns that write, so its put and deleteRange are never called.
type readTxn struct{ rd reader }

func (t readTxn) reader() reader { return t.rd }

func (readTxn) put(*messages.PutRequest) (*messages.PutResponse, *messages.Error) {
	panic("mvcc: put in a read-only txn")
}

func (readTxn) deleteRange(*messages.DeleteRangeRequest) *messages.DeleteRangeResponse {
	panic("mvcc: delete_range in a read-only txn")
}

// viewSource reads records for one Range or Txn: from the view's overlay,
// else from the file in a read transaction opened on first use and closed
// with the request.
type viewSource struct {
	v        *View
	tx       *bolt.Tx
	keys     *bolt.Bucket
	finished int64 // the file's finished compaction revision, read with tx
	buf      [markedRevKeyLen]byte
}

func (s *viewSource) get(rev revision, atRev int64) (*messages.KeyValue, *messages.Error) {
	if r := findRecord(s.v.overlay, rev); r != nil {
		return copyKV(r.kv), nil
	}
	if s.tx == nil {
		tx, err := s.v.db.Begin(false)
		if err != nil {
			return nil, rpcerr.Stopped
		}
		s.tx, s.keys = tx, tx.Bucket(keyBucketName)
		finished, _, ferr := metaRev(tx.Bucket(metaBucketName), finishedCompactKey)
		if ferr != nil {
			panic(fmt.Sprintf("mvcc: %v", ferr))
		}
		s.finished = finished
	}
	// A compaction committed after this view was published may have
	// removed what the view's index points at: answer as etcd does for a
	// read below the compaction. (One Txn reads at several revisions.)
	if atRev < s.finished {
		return nil, rpcerr.Compacted
	}
	k := appendRevKey(s.buf[:0], rev, false)
	val := s.keys.Get(k)
	if val == nil {
		panic(fmt.Sprintf("mvcc: record %s, live at revision %d in a view at %d, is missing from the database", revString(rev), atRev, s.v.rev))
	}
	kv := new(messages.KeyValue)
	if err := proto.Unmarshal(mustUnseal(k, val), kv); err != nil {
		panic(fmt.Sprintf("mvcc: record %s does not decode: %v", revString(rev), err))
	}
	return kv, nil
}

func (s *viewSource) close() {
	if s.tx != nil {
		_ = s.tx.Rollback()
	}
}
