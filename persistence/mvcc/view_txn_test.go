package mvcc_test

import (
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"google.golang.org/protobuf/proto"
)

// randReadTxn builds a random read-only txn over keys k0..k7: compares of
// every target and result (some over ranges), ranges with random options
// and revisions around [compactRev, rev], nested read-only txns.
func randReadTxn(rnd *rand.Rand, rev, compactRev int64, depth int) *messages.TxnRequest {
	key := func() string { return "k" + strconv.Itoa(rnd.Intn(8)) }
	end := func(k string) []byte {
		switch rnd.Intn(4) {
		case 0:
			return []byte("k" + strconv.Itoa(int(k[1]-'0')+1+rnd.Intn(4)))
		case 1:
			return []byte("\x00")
		}
		return nil
	}
	results := []messages.Compare_CompareResult{messages.Compare_EQUAL, messages.Compare_GREATER, messages.Compare_LESS, messages.Compare_NOT_EQUAL}
	rt := &messages.TxnRequest{}
	for range rnd.Intn(4) {
		k := key()
		res := results[rnd.Intn(len(results))]
		n := rnd.Int63n(rev + 2)
		var c *messages.Compare
		switch rnd.Intn(5) {
		case 0:
			c = cmpVersion(k, res, rnd.Int63n(4))
		case 1:
			c = cmpCreate(k, res, n)
		case 2:
			c = cmpMod(k, res, n)
		case 3:
			c = cmpValue(k, res, "v"+strconv.Itoa(rnd.Intn(6)))
		default:
			c = cmpLease(k, res, rnd.Int63n(2))
		}
		c.RangeEnd = end(k)
		rt.Compare = append(rt.Compare, c)
	}
	ops := func() []*messages.RequestOp {
		var out []*messages.RequestOp
		for range rnd.Intn(4) {
			if depth < 2 && rnd.Intn(5) == 0 {
				out = append(out, opTxn(randReadTxn(rnd, rev, compactRev, depth+1)))
				continue
			}
			k := key()
			r := &messages.RangeRequest{Key: []byte(k), RangeEnd: end(k), KeysOnly: rnd.Intn(4) == 0, CountOnly: rnd.Intn(6) == 0}
			switch lo := max(1, compactRev); rnd.Intn(12) {
			case 0:
				r.Revision = rnd.Int63n(rev+3) - 1 // -1 .. rev+1, mostly compacted
			case 1, 2, 3:
				r.Revision = lo + rnd.Int63n(rev-lo+2) // compactRev .. rev+1
			}
			if rnd.Intn(3) == 0 {
				r.Limit = rnd.Int63n(4)
			}
			if rnd.Intn(3) == 0 {
				r.SortOrder = messages.RangeRequest_SortOrder(rnd.Intn(3))
				r.SortTarget = messages.RangeRequest_SortTarget(rnd.Intn(5))
			}
			if rnd.Intn(4) == 0 {
				r.MinModRevision = rnd.Int63n(rev + 1)
			}
			if rnd.Intn(4) == 0 {
				r.MaxCreateRevision = rnd.Int63n(rev + 1)
			}
			out = append(out, opRange(r))
		}
		return out
	}
	rt.Success, rt.Failure = ops(), ops()
	return rt
}

// TestViewTxnMatchesApply runs random read-only txns over random data both
// on View.Txn and through Apply at the same state: the responses (or
// errors) must be equal and Apply must not advance the revision.
func TestViewTxnMatchesApply(t *testing.T) {
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewSource(seed))
	h := newHarness(t)
	rounds := 3000
	if testing.Short() {
		rounds = 600
	}
	outcomes := map[string]int{}
	for i := range rounds {
		k := "k" + strconv.Itoa(rnd.Intn(8))
		switch n := rnd.Intn(20); {
		case n < 9:
			h.put(k, "v"+strconv.Itoa(rnd.Intn(6)))
		case n < 11:
			h.del(k, string(b(k)[:1])+string(rune('0'+rnd.Intn(9))))
		case n < 12 && rnd.Intn(4) == 0:
			if r := h.s.Rev() - int64(rnd.Intn(20)); r > h.s.CompactRev() && r > 0 {
				h.mustOK(h.compact(r))
			}
		case n < 13:
			if err := h.s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			rt := randReadTxn(rnd, h.s.Rev(), h.s.CompactRev(), 0)
			if !mvcc.IsTxnReadOnly(rt) {
				t.Fatalf("seed %d: generated a write txn %v", seed, rt)
			}
			rev := h.s.Rev()
			got, gotErr := h.s.View().Txn(rt)
			want := h.txn(rt)
			if h.s.Rev() != rev {
				t.Fatalf("seed %d round %d: Apply of a read-only txn moved the revision from %d to %d", seed, i, rev, h.s.Rev())
			}
			if e := want.GetError(); e != nil || gotErr != nil {
				if !proto.Equal(e, gotErr) {
					t.Fatalf("seed %d round %d: txn %v\nView.Txn error %v, Apply error %v", seed, i, rt, gotErr, e)
				}
				outcomes[e.GetMessage()]++
				continue
			}
			if !proto.Equal(got, want.GetTxn()) {
				t.Fatalf("seed %d round %d: txn %v\nView.Txn %v\nApply    %v", seed, i, rt, got, want.GetTxn())
			}
			if got.Header.GetRevision() != rev {
				t.Fatalf("seed %d: header revision %d, want %d", seed, got.Header.GetRevision(), rev)
			}
			outcomes[fmt.Sprintf("succeeded=%v", got.Succeeded)]++
		}
	}
	t.Logf("outcomes %v", outcomes)
}

func TestViewTxnErrors(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("a", "2") // 3
	h.put("b", "1") // 4
	h.mustOK(h.compact(3))
	v := h.s.View()
	nested := func(op *messages.RequestOp) *messages.RequestOp {
		return opTxn(&messages.TxnRequest{Compare: []*messages.Compare{cmpVersion("a", eq, 2)}, Success: []*messages.RequestOp{op}})
	}
	cases := []struct {
		name string
		rt   *messages.TxnRequest
		want *messages.Error
	}{
		{"compacted", &messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 2})}}, rpcerr.Compacted},
		{"negative revision", &messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: -1})}}, rpcerr.Compacted},
		{"future", &messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 5})}}, rpcerr.FutureRev},
		{"compacted in a nested txn", &messages.TxnRequest{Success: []*messages.RequestOp{
			opRange(&messages.RangeRequest{Key: []byte("a")}), nested(opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 2})),
		}}, rpcerr.Compacted},
		{"future on the failure branch", &messages.TxnRequest{
			Compare: []*messages.Compare{cmpValue("a", eq, "1")},
			Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 2})},
			Failure: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 9})},
		}, rpcerr.FutureRev},
		{"put", &messages.TxnRequest{Failure: []*messages.RequestOp{opPut("c", "1")}}, mvcc.ErrTxnNotReadOnly},
		{"nested delete", &messages.TxnRequest{Success: []*messages.RequestOp{nested(opDel("c", "", false))}}, mvcc.ErrTxnNotReadOnly},
	}
	for _, c := range cases {
		resp, err := v.Txn(c.rt)
		if resp != nil {
			t.Fatalf("%s: response %v with error %v", c.name, resp, err)
		}
		wantErr(t, c.name, err, c.want)
	}
	// At the compaction revision itself the range is served.
	resp, err := v.Txn(&messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 3})}})
	if err != nil || string(resp.Responses[0].GetResponseRange().Kvs[0].Value) != "2" || resp.Header.Revision != 4 {
		t.Fatalf("range at the compaction revision: %v %v", resp, err)
	}
}

// TestViewTxnAfterPhysicalCompaction: a view published before a compaction
// that reached the file answers a txn reading below the compaction
// "compacted", and a txn that reads only the latest revision from the
// newest view instead.
func TestViewTxnAfterPhysicalCompaction(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	h.put("b", "1") // 3
	old := h.s.View()
	h.put("a", "2") // 4
	h.put("a", "3") // 5
	h.mustOK(h.compact(5))
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err := old.Txn(&messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a"), Revision: 3})}})
	wantErr(t, "range below a physical compaction", err, rpcerr.Compacted)

	resp, err := old.Txn(&messages.TxnRequest{
		Compare: []*messages.Compare{cmpValue("a", eq, "1")},
		Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a")})},
		Failure: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte("a")})},
	})
	if err != nil {
		t.Fatalf("latest-revision txn on a compacted view: %s", err.Message)
	}
	if resp.Succeeded || resp.Header.Revision != 5 || string(resp.Responses[0].GetResponseRange().Kvs[0].Value) != "3" {
		t.Fatalf("latest-revision txn on a compacted view was not served by the newest view: %v", resp)
	}
}

// TestViewTxnConcurrent runs read-only txns on views while the writer
// transfers between accounts, writes, commits and compacts: each txn's
// compares and ranges see one revision (the sum is invariant, the ranges
// report the txn's revision, and a compare on that revision's record
// holds), and the only error is "compacted" for an explicit old revision.
func TestViewTxnConcurrent(t *testing.T) {
	const accounts, balance, readers = 8, 100, 4
	ops := 2000
	if testing.Short() {
		ops = 400
	}
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	h := newHarness(t)
	acct := h.openAccounts(accounts, balance)

	all := func(rev int64) *messages.RequestOp {
		return opRange(&messages.RangeRequest{Key: []byte("acct/"), RangeEnd: []byte("acct0"), Revision: rev})
	}
	sum := func(r *messages.RangeResponse) int {
		n := 0
		for _, kv := range r.Kvs {
			x, _ := strconv.Atoi(string(kv.Value))
			n += x
		}
		return n
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for r := range readers {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(r) + 1))
			fail := func(format string, args ...any) {
				errs <- fmt.Sprintf("reader %d: "+format, append([]any{r}, args...)...)
			}
			for !done.Load() {
				v := h.s.View()
				// First learn acct/00 at the view, then ask a txn whose
				// compare holds exactly at that revision.
				first, err := v.Txn(&messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: []byte(acct(0))})}})
				if err != nil {
					fail("read acct/00: %s", err.Message)
					return
				}
				kv0 := first.Responses[0].GetResponseRange().Kvs[0]
				old := int64(0)
				if c := v.CompactRev(); v.Rev() > 2 {
					lo := max(2, c)
					old = lo + rnd.Int63n(v.Rev()-lo+1)
				}
				resp, err := v.Txn(&messages.TxnRequest{
					Compare: []*messages.Compare{cmpValue(acct(0), eq, string(kv0.Value)), cmpMod(acct(0), eq, kv0.ModRevision)},
					Success: []*messages.RequestOp{all(0), opTxn(&messages.TxnRequest{
						Compare: []*messages.Compare{cmpVersion(acct(1), gt, 0)},
						Success: []*messages.RequestOp{all(old)},
					})},
				})
				if err != nil {
					if old == 0 || !rpcerr.Is(err, rpcerr.Compacted) || h.s.View().CompactRev() <= old {
						fail("txn at %d (view %d): %s", old, v.Rev(), err.Message)
						return
					}
					continue
				}
				if resp.Header.Revision != first.Header.Revision {
					// Only a compaction past the view makes a txn move to a newer view.
					if h.s.View().CompactRev() <= v.Rev() {
						fail("txn at revision %d, view at %d", resp.Header.Revision, first.Header.Revision)
						return
					}
					continue
				}
				if !resp.Succeeded {
					fail("compare on acct/00 as read at %d failed at the same view", v.Rev())
					return
				}
				latest := resp.Responses[0].GetResponseRange()
				nested := resp.Responses[1].GetResponseTxn()
				if latest.Header.Revision != resp.Header.Revision || !nested.Succeeded {
					fail("inconsistent txn %v", resp)
					return
				}
				atOld := nested.Responses[0].GetResponseRange()
				if len(latest.Kvs) != accounts || sum(latest) != accounts*balance || len(atOld.Kvs) != accounts || sum(atOld) != accounts*balance {
					fail("sums %d at %d and %d at %d", sum(latest), resp.Header.Revision, sum(atOld), old)
					return
				}
			}
		}(r)
	}

	rnd := rand.New(rand.NewSource(seed))
	for range ops {
		switch n := rnd.Intn(100); {
		case n < 60:
			a, c := rnd.Intn(accounts), rnd.Intn(accounts)
			if a == c {
				continue
			}
			ka, kc := h.get(acct(a)), h.get(acct(c))
			va, _ := strconv.Atoi(string(ka.Value))
			vc, _ := strconv.Atoi(string(kc.Value))
			x := rnd.Intn(10)
			h.mustOK(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{opPut(acct(a), strconv.Itoa(va-x)), opPut(acct(c), strconv.Itoa(vc+x))}}))
		case n < 85:
			h.put(fmt.Sprintf("junk/%d", rnd.Intn(20)), "x")
		case n < 92:
			if h.s.Rev()-10 > h.s.CompactRev() {
				h.mustOK(h.compact(h.s.Rev() - 10))
			}
		default:
			if err := h.s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case e := <-errs:
			done.Store(true)
			wg.Wait()
			t.Fatalf("seed %d: %s", seed, e)
		default:
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("seed %d: %s", seed, e)
	}
}
