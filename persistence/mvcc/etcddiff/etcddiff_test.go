package etcddiff

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/pkg/v3/traceutil"
	eerrors "go.etcd.io/etcd/server/v3/etcdserver/errors"
	etxn "go.etcd.io/etcd/server/v3/etcdserver/txn"
	"go.etcd.io/etcd/server/v3/lease"
	betesting "go.etcd.io/etcd/server/v3/storage/backend/testing"
	emvcc "go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

func TestDifferential(t *testing.T) {
	// 8571781894900261891 compacts at revision 0.
	seeds := []int64{8571781894900261891}
	for range 20 {
		seeds = append(seeds, rand.Int63())
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { newDiff(t, seed).run(400) })
	}
}

// diff drives etcd's store and aetcd's with the same requests.
type diff struct {
	t    *testing.T
	seed int64
	rnd  *rand.Rand
	ctx  context.Context
	lg   *zap.Logger
	les  *lease.FakeLessor
	es   emvcc.KV
	as   *mvcc.Store
	idx  uint64
	// written holds the keys a txn being generated writes: etcd rejects
	// (and misbehaves on) txns that write a key twice.
	written map[byte]bool
	// compactions are the revisions compacted at: etcd answers HashKV at
	// one of those from a cache filled by the compaction (a hash since the
	// previous compaction), which aetcd does not keep.
	compactions map[int64]bool
}

func newDiff(t *testing.T, seed int64) *diff {
	t.Logf("seed %d", seed)
	be, _ := betesting.NewDefaultTmpBackend(t)
	// etcd reports its own invariant failures with lg.Fatal.
	lg := zap.NewExample(zap.IncreaseLevel(zap.WarnLevel))
	les := &lease.FakeLessor{LeaseSet: map[lease.LeaseID]struct{}{}}
	es := emvcc.NewStore(lg, be, les, emvcc.StoreConfig{})
	as, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = as.Close()
		_ = es.Close()
		_ = be.Close()
	})
	return &diff{t: t, seed: seed, rnd: rand.New(rand.NewSource(seed)), ctx: context.Background(), lg: lg, les: les, es: es, as: as,
		compactions: map[int64]bool{}}
}

func (d *diff) key() []byte { return []byte{'k', byte('0' + d.rnd.Intn(8))} }
func (d *diff) val() []byte { return []byte(fmt.Sprint(d.rnd.Intn(4))) }

func (d *diff) end(k []byte) []byte {
	switch d.rnd.Intn(4) {
	case 0:
		return nil
	case 1:
		return []byte{0}
	default:
		return []byte{'k', k[1] + byte(d.rnd.Intn(4))}
	}
}

func (d *diff) revision() int64 { return d.rnd.Int63n(d.as.Rev()+2) - 1 }

func (d *diff) rangeReq() *messages.RangeRequest {
	k := d.key()
	r := &messages.RangeRequest{Key: k, RangeEnd: d.end(k)}
	if d.rnd.Intn(2) == 0 {
		r.Limit = int64(d.rnd.Intn(4))
	}
	if d.rnd.Intn(2) == 0 {
		r.Revision = d.revision()
	}
	if d.rnd.Intn(2) == 0 {
		r.SortOrder = messages.RangeRequest_SortOrder(d.rnd.Intn(3))
		r.SortTarget = messages.RangeRequest_SortTarget(d.rnd.Intn(5))
	}
	r.KeysOnly = d.rnd.Intn(5) == 0
	r.CountOnly = d.rnd.Intn(8) == 0
	if d.rnd.Intn(3) == 0 {
		v := d.rnd.Int63n(d.as.Rev() + 1)
		switch d.rnd.Intn(4) {
		case 0:
			r.MinModRevision = v
		case 1:
			r.MaxModRevision = v
		case 2:
			r.MinCreateRevision = v
		case 3:
			r.MaxCreateRevision = v
		}
	}
	return r
}

func (d *diff) putReq() *messages.PutRequest {
	p := &messages.PutRequest{Key: d.key(), Value: d.val(), PrevKv: d.rnd.Intn(2) == 0, IgnoreValue: d.rnd.Intn(8) == 0, IgnoreLease: d.rnd.Intn(10) == 0}
	if d.rnd.Intn(20) == 0 {
		p.Lease = 5 // no lease exists
	}
	return p
}

func (d *diff) compares() []*messages.Compare {
	var out []*messages.Compare
	for range d.rnd.Intn(3) {
		k := d.key()
		c := &messages.Compare{Key: k, Result: messages.Compare_CompareResult(d.rnd.Intn(4))}
		if d.rnd.Intn(3) == 0 {
			c.RangeEnd = d.end(k)
		}
		switch d.rnd.Intn(5) {
		case 0:
			c.Target, c.TargetUnion = messages.Compare_VERSION, &messages.Compare_Version{Version: d.rnd.Int63n(4)}
		case 1:
			c.Target, c.TargetUnion = messages.Compare_MOD, &messages.Compare_ModRevision{ModRevision: d.rnd.Int63n(d.as.Rev() + 1)}
		case 2:
			c.Target, c.TargetUnion = messages.Compare_CREATE, &messages.Compare_CreateRevision{CreateRevision: d.rnd.Int63n(d.as.Rev() + 1)}
		case 3:
			c.Target, c.TargetUnion = messages.Compare_VALUE, &messages.Compare_Value{Value: d.val()}
		case 4:
			c.Target, c.TargetUnion = messages.Compare_LEASE, &messages.Compare_Lease{Lease: d.rnd.Int63n(2)}
		}
		out = append(out, c)
	}
	return out
}

// claim reserves the keys k0..k7 in [key, end) for one write of the txn.
func (d *diff) claim(key, end []byte) bool {
	var ks []byte
	for c := byte('0'); c < '8'; c++ {
		if inRange([]byte{'k', c}, key, end) {
			ks = append(ks, c)
		}
	}
	for _, c := range ks {
		if d.written[c] {
			return false
		}
	}
	for _, c := range ks {
		d.written[c] = true
	}
	return true
}

func (d *diff) txnReq(depth int) *messages.TxnRequest {
	return &messages.TxnRequest{Compare: d.compares(), Success: d.ops(depth + 1), Failure: d.ops(depth + 1)}
}

func (d *diff) ops(depth int) []*messages.RequestOp {
	var ops []*messages.RequestOp
	for range d.rnd.Intn(4) {
		switch n := d.rnd.Intn(10); {
		case n < 4:
			p := d.putReq()
			if d.claim(p.Key, nil) {
				ops = append(ops, &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: p}})
			}
		case n < 6:
			k := d.key()
			dr := &messages.DeleteRangeRequest{Key: k, RangeEnd: d.end(k), PrevKv: d.rnd.Intn(2) == 0}
			if d.claim(dr.Key, dr.RangeEnd) {
				ops = append(ops, &messages.RequestOp{Request: &messages.RequestOp_RequestDeleteRange{RequestDeleteRange: dr}})
			}
		case n < 9:
			ops = append(ops, &messages.RequestOp{Request: &messages.RequestOp_RequestRange{RequestRange: d.rangeReq()}})
		default:
			if depth < 2 {
				ops = append(ops, &messages.RequestOp{Request: &messages.RequestOp_RequestTxn{RequestTxn: d.txnReq(depth)}})
			}
		}
	}
	return ops
}

func (d *diff) apply(r *messages.InternalRequest) *messages.ClientResponse {
	d.idx++
	return d.as.Apply(d.idx, r)
}

func (d *diff) run(steps int) {
	t := d.t
	for step := range steps {
		switch n := d.rnd.Intn(100); {
		case n < 30:
			p := d.putReq()
			var ep pb.PutRequest
			toEtcd(t, p, &ep)
			resp, _, err := etxn.Put(d.ctx, d.lg, d.les, d.es, &ep)
			d.same(step, p, d.apply(&messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: p}}), resp, &messages.PutResponse{}, err)
		case n < 45:
			k := d.key()
			dr := &messages.DeleteRangeRequest{Key: k, RangeEnd: d.end(k), PrevKv: d.rnd.Intn(2) == 0}
			var edr pb.DeleteRangeRequest
			toEtcd(t, dr, &edr)
			resp, _, err := etxn.DeleteRange(d.ctx, d.lg, d.es, &edr)
			d.same(step, dr, d.apply(&messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: dr}}), resp, &messages.DeleteRangeResponse{}, err)
		case n < 75:
			d.written = map[byte]bool{}
			rt := d.txnReq(0)
			var ert pb.TxnRequest
			toEtcd(t, rt, &ert)
			resp, _, err := etxn.Txn(d.ctx, d.lg, &ert, false, d.es, d.les)
			d.same(step, rt, d.apply(&messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: rt}}), resp, &messages.TxnResponse{}, err)
		case n < 80:
			rev := d.revision()
			ch, err := d.es.Compact(traceutil.TODO(), rev)
			if err == nil {
				<-ch
				d.compactions[rev] = true
			}
			got := d.apply(&messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: rev}}})
			var resp *pb.CompactionResponse
			if err == nil {
				resp = &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: d.es.Rev()}}
			}
			d.same(step, &messages.CompactionRequest{Revision: rev}, got, resp, &messages.CompactionResponse{}, err)
		case n < 85:
			if err := d.as.Commit(); err != nil {
				t.Fatal(err)
			}
		case n < 88:
			// Ask at an explicit revision (etcd's cache answers HashByRev(0)
			// after a compaction at revision 0), never a compaction's.
			rev := d.rnd.Int63n(d.as.Rev()) + 1
			if d.compactions[rev] {
				break
			}
			eh, _, eerr := d.es.HashStorage().HashByRev(rev)
			ah, ac, ar, aerr := d.as.HashKV(rev)
			if !rpcerr.Is(aerr, mapErr(eerr)) && (aerr != nil || eerr != nil) {
				t.Fatalf("seed %d step %d: HashKV(%d) error aetcd %v etcd %v", d.seed, step, rev, aerr, eerr)
			}
			if eerr == nil && (eh.Hash != ah || eh.CompactRevision != ac || eh.Revision != ar) {
				t.Fatalf("seed %d step %d: HashKV(%d) aetcd %x/%d/%d etcd %x/%d/%d", d.seed, step, rev, ah, ac, ar, eh.Hash, eh.CompactRevision, eh.Revision)
			}
		default:
			r := d.rangeReq()
			var er pb.RangeRequest
			toEtcd(t, r, &er)
			resp, _, err := etxn.Range(d.ctx, d.lg, d.es, &er)
			d.as.Publish()
			gr, gerr := d.as.View().Range(r)
			got := &messages.ClientResponse{Response: &messages.ClientResponse_Range{Range: gr}}
			if gerr != nil {
				got = rpcerr.Response(gerr)
			}
			d.same(step, r, got, resp, &messages.RangeResponse{}, err)
		}
		if d.es.Rev() != d.as.Rev() {
			t.Fatalf("seed %d step %d: revision etcd %d aetcd %d", d.seed, step, d.es.Rev(), d.as.Rev())
		}
	}
}

// same checks aetcd's response against etcd's (converted through the wire
// format into want) or their errors.
func (d *diff) same(step int, req proto.Message, got *messages.ClientResponse, resp interface{ Marshal() ([]byte, error) }, want proto.Message, err error) {
	d.t.Helper()
	if err != nil || got.GetError() != nil {
		if !rpcerr.Is(got.GetError(), mapErr(err)) {
			d.t.Fatalf("seed %d step %d: %v\naetcd error %v, etcd %v", d.seed, step, req, got.GetError(), err)
		}
		return
	}
	conv(d.t, resp, want)
	var g proto.Message
	switch r := got.Response.(type) {
	case *messages.ClientResponse_Put:
		g = r.Put
	case *messages.ClientResponse_DeleteRange:
		g = r.DeleteRange
	case *messages.ClientResponse_Txn:
		g = r.Txn
	case *messages.ClientResponse_Range:
		g = r.Range
	case *messages.ClientResponse_Compaction:
		g = r.Compaction
	}
	if !proto.Equal(g, want) {
		d.t.Fatalf("seed %d step %d: %v\naetcd %v\netcd  %v", d.seed, step, req, g, want)
	}
}

func conv(t *testing.T, from interface{ Marshal() ([]byte, error) }, to proto.Message) {
	t.Helper()
	b, err := from.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}

func toEtcd(t *testing.T, from proto.Message, to interface{ Unmarshal([]byte) error }) {
	t.Helper()
	b, err := proto.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
}

func mapErr(err error) *messages.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, emvcc.ErrCompacted):
		return rpcerr.Compacted
	case errors.Is(err, emvcc.ErrFutureRev):
		return rpcerr.FutureRev
	case errors.Is(err, eerrors.ErrKeyNotFound):
		return rpcerr.KeyNotFound
	case errors.Is(err, lease.ErrLeaseNotFound):
		return rpcerr.LeaseNotFound
	}
	return &messages.Error{Message: "unmapped etcd error: " + err.Error()}
}

func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return string(k) == string(key)
	case len(end) == 1 && end[0] == 0:
		return string(k) >= string(key)
	default:
		return string(k) >= string(key) && string(k) < string(end)
	}
}
