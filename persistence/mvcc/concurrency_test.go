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
)

// TestConcurrentReaders runs readers on View().Range while the writer
// applies transfers between accounts (the sum of balances is invariant),
// writes and deletes other keys, publishes, commits and compacts. Every read
// must be a consistent snapshot: the right sum at any revision, values that
// match their revisions, the same answer when a revision is read again, and
// only "compacted" as an error.
func TestConcurrentReaders(t *testing.T) {
	const (
		accounts = 10
		balance  = 100
		readers  = 4
	)
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	h := newHarness(t)
	acct := h.openAccounts(accounts, balance)

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for r := range readers {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(r) + 1))
			seen := map[int64]string{} // revision -> accounts at it
			fail := func(format string, args ...any) {
				errs <- fmt.Sprintf("reader %d: "+format, append([]any{r}, args...)...)
			}
			for !done.Load() {
				v := h.s.View()
				rev := int64(0)
				if rnd.Intn(2) == 0 && v.Rev() > 2 {
					rev = max(2, v.CompactRev()) + rnd.Int63n(v.Rev()-max(2, v.CompactRev())+1)
				}
				resp, err := v.Range(&messages.RangeRequest{Key: []byte("acct/"), RangeEnd: []byte("acct0"), Revision: rev})
				if err != nil {
					if rev == 0 || !rpcerr.Is(err, rpcerr.Compacted) || h.s.View().CompactRev() <= rev {
						fail("range accounts at %d (view %d): %s", rev, v.Rev(), err.Message)
						return
					}
					continue
				}
				sum, desc := 0, ""
				for _, kv := range resp.Kvs {
					n, _ := strconv.Atoi(string(kv.Value))
					sum += n
					desc += fmt.Sprintf("%s=%s@%d,", kv.Key, kv.Value, kv.ModRevision)
				}
				if len(resp.Kvs) != accounts || sum != accounts*balance || resp.Count != accounts {
					fail("accounts at %d: %d keys, sum %d: %s", rev, len(resp.Kvs), sum, desc)
					return
				}
				at := rev
				if at == 0 {
					at = resp.Header.Revision
				}
				if prev, ok := seen[at]; ok && prev != desc {
					fail("revision %d read twice: %s then %s", at, prev, desc)
					return
				}
				seen[at] = desc

				resp, err = v.Range(&messages.RangeRequest{Key: []byte("junk/"), RangeEnd: []byte("junk0"), Revision: rev})
				if err != nil {
					if rev == 0 || !rpcerr.Is(err, rpcerr.Compacted) || h.s.View().CompactRev() <= rev {
						fail("range junk at %d: %s", rev, err.Message)
						return
					}
					continue
				}
				for _, kv := range resp.Kvs {
					if string(kv.Value) != strconv.FormatInt(kv.ModRevision, 10) || (rev > 0 && kv.ModRevision > rev) {
						fail("junk at %d: %s=%s mod %d", rev, kv.Key, kv.Value, kv.ModRevision)
						return
					}
				}
			}
		}(r)
	}

	rnd := rand.New(rand.NewSource(seed))
	for i := 0; i < ops; i++ {
		switch n := rnd.Intn(100); {
		case n < 50: // transfer
			a, b2 := rnd.Intn(accounts), rnd.Intn(accounts)
			if a == b2 {
				continue
			}
			ka, kb := h.get(acct(a)), h.get(acct(b2))
			va, _ := strconv.Atoi(string(ka.Value))
			vb, _ := strconv.Atoi(string(kb.Value))
			x := rnd.Intn(10)
			resp := h.mustOK(h.txn(&messages.TxnRequest{
				Compare: []*messages.Compare{cmpMod(acct(a), eq, ka.ModRevision), cmpMod(acct(b2), eq, kb.ModRevision)},
				Success: []*messages.RequestOp{opPut(acct(a), strconv.Itoa(va-x)), opPut(acct(b2), strconv.Itoa(vb+x))},
			}))
			if !resp.GetTxn().Succeeded {
				t.Fatal("transfer compare failed with a single writer")
			}
		case n < 80:
			h.put(fmt.Sprintf("junk/%d", rnd.Intn(50)), strconv.FormatInt(h.s.Rev()+1, 10))
		case n < 90:
			k := rnd.Intn(50)
			h.del(fmt.Sprintf("junk/%d", k), fmt.Sprintf("junk/%d", k+3))
		case n < 95:
			if h.s.Rev()-20 > h.s.CompactRev() {
				h.mustOK(h.compact(h.s.Rev() - 20))
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
			t.Fatal(e)
		default:
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
