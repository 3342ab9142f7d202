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

// viewSource reads records for one Range: from the view's overlay, else from
// the file in a read transaction opened on first use and closed with the
// Range.
type viewSource struct {
	v    *View
	tx   *bolt.Tx
	keys *bolt.Bucket
	buf  [markedRevKeyLen]byte
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
		// A compaction committed after this view was published may have
		// removed what the view's index points at: answer as etcd does
		// for a read below the compaction.
		finished, _, ferr := metaRev(tx.Bucket(metaBucketName), finishedCompactKey)
		if ferr != nil {
			panic(fmt.Sprintf("mvcc: %v", ferr))
		}
		if atRev < finished {
			return nil, rpcerr.Compacted
		}
	}
	val := s.keys.Get(appendRevKey(s.buf[:0], rev, false))
	if val == nil {
		panic(fmt.Sprintf("mvcc: record %s, live at revision %d in a view at %d, is missing from the database", revString(rev), atRev, s.v.rev))
	}
	kv := new(messages.KeyValue)
	if err := proto.Unmarshal(val, kv); err != nil {
		panic(fmt.Sprintf("mvcc: record %s does not decode: %v", revString(rev), err))
	}
	return kv, nil
}

func (s *viewSource) close() {
	if s.tx != nil {
		_ = s.tx.Rollback()
	}
}
