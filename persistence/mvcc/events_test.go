package mvcc_test

import (
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// evString describes events compactly: "PUT k=v@mod/create/ver" or
// "DEL k@mod", joined by spaces.
func evString(evs []*messages.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		kv := ev.Kv
		if ev.Type == messages.Event_DELETE {
			parts[i] = fmt.Sprintf("DEL %s@%d", kv.Key, kv.ModRevision)
			if kv.Value != nil || kv.CreateRevision != 0 || kv.Version != 0 || kv.Lease != 0 {
				parts[i] += fmt.Sprintf("(extra fields: %v)", kv)
			}
		} else {
			parts[i] = fmt.Sprintf("PUT %s=%s@%d/%d/%d", kv.Key, kv.Value, kv.ModRevision, kv.CreateRevision, kv.Version)
		}
		if ev.PrevKv != nil {
			parts[i] += "(prev_kv set)"
		}
	}
	return strings.Join(parts, " ")
}

func wantEvents(t testing.TB, what string, got []*messages.Event, want string) {
	t.Helper()
	if s := evString(got); s != want {
		t.Fatalf("%s:\n got %q\nwant %q", what, s, want)
	}
}

// events calls Events on the newest view and fails the test on an error.
func (h *harness) events(fromRev, toRev int64, limit int) mvcc.EventsResult {
	h.t.Helper()
	res, err := h.s.View().Events(fromRev, toRev, limit)
	if err != nil {
		h.t.Fatalf("Events(%d, %d, %d): %s", fromRev, toRev, limit, err.Message)
	}
	return res
}

func (h *harness) commit() {
	h.t.Helper()
	if err := h.s.Commit(); err != nil {
		h.t.Fatalf("Commit: %v", err)
	}
}

func TestTakeEvents(t *testing.T) {
	h := newHarness(t)
	if evs := h.s.TakeEvents(); len(evs) != 0 {
		t.Fatalf("fresh store: %v", evs)
	}
	h.put("a", "1") // 2
	evs := h.s.TakeEvents()
	wantEvents(t, "put", evs, "PUT a=1@2/2/1")
	if !proto.Equal(evs[0].Kv, h.get("a")) {
		t.Fatalf("put event %v is not the stored record %v", evs[0].Kv, h.get("a"))
	}
	if hist := h.events(2, 2, 0).Events; evs[0].Kv != hist[0].Kv {
		t.Fatal("the put event's Kv is not the record shared with the overlay")
	}
	if evs := h.s.TakeEvents(); len(evs) != 0 {
		t.Fatalf("taken twice: %v", evs)
	}

	h.put("b", "1") // 3
	h.put("c", "1") // 4
	wantEvents(t, "two puts", h.s.TakeEvents(), "PUT b=1@3/3/1 PUT c=1@4/4/1")
	h.del("a", "c") // 5
	wantEvents(t, "delete range", h.s.TakeEvents(), "DEL a@5 DEL b@5")

	h.mustOK(h.txn(&messages.TxnRequest{ // 6
		Success: []*messages.RequestOp{
			opPut("z", "1"),
			opRange(&messages.RangeRequest{Key: b("c")}),
			opDel("c", "", true),
			opTxn(&messages.TxnRequest{Success: []*messages.RequestOp{opPut("a", "2"), opPut("y", "1")}}),
			opPut("x", "1"),
		},
	}))
	wantEvents(t, "txn", h.s.TakeEvents(), "PUT z=1@6/6/1 DEL c@6 PUT a=2@6/6/1 PUT y=1@6/6/1 PUT x=1@6/6/1")

	// Writes that change nothing, failed requests and compactions: no events.
	h.del("nothing", "")
	h.mustOK(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{opRange(&messages.RangeRequest{Key: b("a")})}}))
	wantErr(t, "put with a lease", respErr(h.apply(putReq(&messages.PutRequest{Key: b("a"), Value: b("3"), Lease: 7}))), rpcerr.LeaseNotFound)
	wantErr(t, "txn with a future range", respErr(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{
		opPut("a", "3"), opRange(&messages.RangeRequest{Key: b("a"), Revision: 99}),
	}})), rpcerr.FutureRev)
	// Fails during execution, after it staged a tombstone.
	wantErr(t, "txn ignore_value after delete", respErr(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{
		opDel("a", "", false), opPutReq(&messages.PutRequest{Key: b("a"), IgnoreValue: true}),
	}})), rpcerr.KeyNotFound)
	h.mustOK(h.compact(4))
	h.s.SetConsistentIndex(h.idx + 1)
	h.idx++
	if evs := h.s.TakeEvents(); len(evs) != 0 || h.s.Rev() != 6 {
		t.Fatalf("no-op writes, failures and compaction: events %s, rev %d", evString(evs), h.s.Rev())
	}

	// Pending events do not survive a reopen or a Restore.
	h.put("p", "1")
	h.reopen()
	if evs := h.s.TakeEvents(); len(evs) != 0 {
		t.Fatalf("after reopen: %s", evString(evs))
	}
	src := newHarness(t)
	src.put("s", "1")
	snap := snapshotOf(t, src, "db.snap")
	h.put("q", "1")
	if err := h.s.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if evs := h.s.TakeEvents(); len(evs) != 0 {
		t.Fatalf("after Restore: %s", evString(evs))
	}
}

// TestEventsSources reads the same history from the overlay only, from the
// file only, and mixed (records committed after the view was published are
// in both and must appear once).
func TestEventsSources(t *testing.T) {
	h := newHarness(t)
	var live []*messages.Event
	step := func(f func()) {
		f()
		live = append(live, h.s.TakeEvents()...)
	}
	step(func() { h.put("a", "1") }) // 2
	step(func() { h.put("b", "1") }) // 3
	step(func() { h.put("a", "2") }) // 4
	const upTo4 = "PUT a=1@2/2/1 PUT b=1@3/3/1 PUT a=2@4/2/2"

	overlayOnly := h.s.View()
	wantEvents(t, "overlay only", h.events(2, 4, 0).Events, upTo4)
	h.commit()
	wantEvents(t, "file only", h.events(2, 4, 0).Events, upTo4)
	wantEvents(t, "overlay view after commit", mustEvents(t, overlayOnly, 2, 4, 0).Events, upTo4)

	step(func() { h.del("b", "") }) // 5
	step(func() {
		h.mustOK(h.txn(&messages.TxnRequest{Success: []*messages.RequestOp{ // 6
			opPut("c", "1"), opDel("a", "", false)}}))
	})
	const upTo6 = upTo4 + " DEL b@5 PUT c=1@6/6/1 DEL a@6"
	mixed := h.s.View()
	wantEvents(t, "mixed", h.events(2, 6, 0).Events, upTo6)
	wantEvents(t, "mixed, from the overlay's start", h.events(5, 6, 0).Events, "DEL b@5 PUT c=1@6/6/1 DEL a@6")
	wantEvents(t, "mixed, file part", h.events(3, 4, 0).Events, "PUT b=1@3/3/1 PUT a=2@4/2/2")
	h.commit()
	step(func() { h.put("d", "1") }) // 7, in the file after the next commit only
	h.commit()
	res := mustEvents(t, mixed, 2, 100, 0)
	wantEvents(t, "mixed view after a later commit", res.Events, upTo6)
	if res.Last != 6 {
		t.Fatalf("Last %d, want the view's revision 6", res.Last)
	}
	all := h.events(0, 100, 0)
	wantEvents(t, "everything", all.Events, upTo6+" PUT d=1@7/7/1")
	if all.Last != 7 {
		t.Fatalf("Last %d, want 7", all.Last)
	}
	for i := range live {
		if !proto.Equal(live[i], all.Events[i]) {
			t.Fatalf("event %d: live %v, historical %v", i, live[i], all.Events[i])
		}
	}

	// Empty windows.
	for _, c := range []struct{ from, to, last int64 }{
		{5, 4, 4},   // from > to
		{8, 100, 7}, // from above the view's revision
		{1, 1, 1},   // revision 1 has no changes
	} {
		res := h.events(c.from, c.to, 0)
		if len(res.Events) != 0 || res.Last != c.last {
			t.Fatalf("Events(%d, %d): %s, last %d; want none, last %d", c.from, c.to, evString(res.Events), res.Last, c.last)
		}
	}

	// A view published before Close answers from its overlay, and Stopped
	// where it needs the file.
	h.put("e", "1") // 8
	v := h.s.View()
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "overlay after Close", mustEvents(t, v, 8, 8, 0).Events, "PUT e=1@8/8/1")
	_, err := v.Events(7, 8, 0)
	wantErr(t, "file after Close", err, rpcerr.Stopped)
}

func mustEvents(t testing.TB, v *mvcc.View, fromRev, toRev int64, limit int) mvcc.EventsResult {
	t.Helper()
	res, err := v.Events(fromRev, toRev, limit)
	if err != nil {
		t.Fatalf("Events(%d, %d, %d): %s", fromRev, toRev, limit, err.Message)
	}
	return res
}

// TestEventsLimit: a limit never splits a revision.
func TestEventsLimit(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	five := &messages.TxnRequest{}
	for i := range 5 {
		five.Success = append(five.Success, opPut(fmt.Sprintf("k%d", i), "1"))
	}
	h.mustOK(h.txn(five)) // 3
	h.put("b", "1")       // 4
	for _, committed := range []bool{false, true} {
		for _, c := range []struct {
			from        int64
			limit, want int
			last        int64
		}{
			{2, 0, 7, 4},
			{2, 1, 1, 2},
			{2, 2, 6, 3},
			{3, 2, 5, 3},
			{3, 5, 5, 3},
			{3, 6, 6, 4},
			{4, 1, 1, 4},
		} {
			res := h.events(c.from, 4, c.limit)
			if len(res.Events) != c.want || res.Last != c.last {
				t.Fatalf("committed %v: Events(%d, 4, %d): %d events (%s), last %d; want %d, last %d",
					committed, c.from, c.limit, len(res.Events), evString(res.Events), res.Last, c.want, c.last)
			}
		}
		h.commit()
	}
	// Limit across the file and the overlay.
	h.put("c", "1") // 5, overlay
	if res := h.events(4, 5, 1); res.Last != 4 || evString(res.Events) != "PUT b=1@4/4/1" {
		t.Fatalf("limit at the file's end: %s, last %d", evString(res.Events), res.Last)
	}
	if res := h.events(3, 5, 5); res.Last != 3 || len(res.Events) != 5 {
		t.Fatalf("limit inside the file: %s, last %d", evString(res.Events), res.Last)
	}
}

func TestEventsCompacted(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.put("a", fmt.Sprint(i)) // 2..6
	}
	h.commit()
	h.mustOK(h.compact(4))
	res, err := h.s.View().Events(3, 6, 0)
	wantErr(t, "below the compaction", err, rpcerr.Compacted)
	if res.CompactRev != 4 || len(res.Events) != 0 {
		t.Fatalf("compacted: %+v", res)
	}
	wantEvents(t, "at the compaction", h.events(4, 6, 0).Events, "PUT a=2@4/2/3 PUT a=3@5/2/4 PUT a=4@6/2/5")

	// A compaction that finishes in the file after a view was published.
	h.commit()
	old := h.s.View()
	h.mustOK(h.compact(5))
	h.commit()
	if old.CompactRev() != 4 {
		t.Fatalf("old view's compaction revision %d", old.CompactRev())
	}
	res, err = old.Events(4, 6, 0)
	wantErr(t, "old view, compacted in the file", err, rpcerr.Compacted)
	if res.CompactRev != 5 {
		t.Fatalf("old view: CompactRev %d, want 5", res.CompactRev)
	}
	wantEvents(t, "old view at the new compaction", mustEvents(t, old, 5, 6, 0).Events, "PUT a=3@5/2/4 PUT a=4@6/2/5")
}

// TestEventsAtCompactedTombstone: a watch from the compaction revision gets
// every event of it, a deletion included (etcd #18089, #19179); a later
// compaction removes the tombstone; both survive a reopen.
func TestEventsAtCompactedTombstone(t *testing.T) {
	for _, commit := range []bool{false, true} {
		t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
			h := newHarness(t)
			h.put("k", "v2") // 2
			h.put("k", "v3") // 3
			h.put("k", "v4") // 4
			h.del("k", "")   // 5
			h.put("k", "v6") // 6
			if commit {
				h.commit()
			}
			h.mustOK(h.compact(5))
			if commit {
				h.commit()
			}
			const want = "DEL k@5 PUT k=v6@6/6/1"
			wantEvents(t, "from the compaction", h.events(5, 6, 0).Events, want)
			_, err := h.s.View().Events(4, 6, 0)
			wantErr(t, "below the compaction", err, rpcerr.Compacted)
			if kv := h.s.View().PrevKV([]byte("k"), 6); kv != nil {
				t.Fatalf("prev of the put after the delete: %v", kv)
			}

			h.reopen()
			wantEvents(t, "after reopen", h.events(5, 6, 0).Events, want)
			res, err := h.s.View().Events(4, 6, 0)
			wantErr(t, "below the compaction after reopen", err, rpcerr.Compacted)
			if res.CompactRev != 5 {
				t.Fatalf("CompactRev %d after reopen", res.CompactRev)
			}

			h.put("k", "v7") // 7
			h.mustOK(h.compact(6))
			wantEvents(t, "after compacting past the tombstone", h.events(6, 7, 0).Events, "PUT k=v6@6/6/1 PUT k=v7@7/6/2")
			h.reopen()
			wantEvents(t, "after compacting past the tombstone and reopen", h.events(6, 7, 0).Events, "PUT k=v6@6/6/1 PUT k=v7@7/6/2")
			if err := h.s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := fileRecords(t, h.path); got != "6 7" {
				t.Fatalf("records in the file: %s, want 6 7 (the tombstone at 5 removed)", got)
			}
		})
	}
}

// fileRecords lists the main revisions of the records in bucket "key" of a
// closed store's file.
func fileRecords(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var revs []string
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("key")).ForEach(func(k, _ []byte) error {
			var main uint64
			for _, c := range k[:8] {
				main = main<<8 | uint64(c)
			}
			revs = append(revs, fmt.Sprint(main))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(revs, " ")
}

func TestPrevKV(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // 2
	h.put("a", "2") // 3
	h.del("a", "")  // 4
	h.put("a", "3") // 5
	h.put("b", "1") // 6
	v := h.s.View()
	for _, c := range []struct {
		key  string
		rev  int64
		want *messages.KeyValue
	}{
		{"a", 0, nil},
		{"a", 1, nil},
		{"a", 2, nil},
		{"a", 3, kv("a", "1", 2, 2, 1)},
		{"a", 4, kv("a", "2", 2, 3, 2)},
		{"a", 5, nil}, // deleted at 4
		{"a", 6, kv("a", "3", 5, 5, 1)},
		{"b", 6, nil},
		{"a", 8, nil}, // above the view
	} {
		got := v.PrevKV([]byte(c.key), c.rev)
		if (got == nil) != (c.want == nil) || (got != nil && !proto.Equal(got, c.want)) {
			t.Fatalf("PrevKV(%s, %d) = %v, want %v", c.key, c.rev, got, c.want)
		}
	}
	h.mustOK(h.compact(4))
	if got := h.s.View().PrevKV([]byte("a"), 4); got != nil {
		t.Fatalf("PrevKV below the compaction = %v", got)
	}
	if got := h.s.View().PrevKV([]byte("a"), 6); !proto.Equal(got, kv("a", "3", 5, 5, 1)) {
		t.Fatalf("PrevKV after compaction = %v", got)
	}
}

// TestEventsMatchLive runs readers calling Events on fresh views while the
// writer applies, commits and compacts. The events of every window a reader
// gets must equal, exactly, those TakeEvents produced for its revisions:
// the watch hubs switch between the two paths and must neither duplicate
// nor drop an event.
func TestEventsMatchLive(t *testing.T) {
	const readers = 3
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	h := newHarness(t)

	var mu sync.RWMutex
	live := map[int64][]*messages.Event{} // by main revision
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for r := range readers {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(r) + 1))
			for !done.Load() {
				v := h.s.View()
				lo := max(1, v.CompactRev())
				from := lo + rnd.Int63n(v.Rev()-lo+2) // up to v.Rev()+1
				limit := rnd.Intn(8)
				res, err := v.Events(from, v.Rev(), limit)
				if err != nil {
					if !rpcerr.Is(err, rpcerr.Compacted) || res.CompactRev <= from {
						errs <- fmt.Sprintf("reader %d: Events(%d, %d, %d): %s, compact rev %d", r, from, v.Rev(), limit, err.Message, res.CompactRev)
						return
					}
					continue
				}
				if res.Last < from-1 || res.Last > v.Rev() || (limit == 0 && res.Last != max(v.Rev(), from-1)) {
					errs <- fmt.Sprintf("reader %d: Events(%d, %d, %d): last %d", r, from, v.Rev(), limit, res.Last)
					return
				}
				var want []*messages.Event
				mu.RLock()
				for rev := from; rev <= res.Last; rev++ {
					want = append(want, live[rev]...)
				}
				mu.RUnlock()
				if len(want) != len(res.Events) || (limit > 0 && res.Last < v.Rev() && len(want) < limit) {
					errs <- fmt.Sprintf("reader %d: Events(%d, %d, %d): last %d, %d events, want %d:\n got %s\nwant %s",
						r, from, v.Rev(), limit, res.Last, len(res.Events), len(want), evString(res.Events), evString(want))
					return
				}
				for i := range want {
					if !proto.Equal(want[i], res.Events[i]) {
						errs <- fmt.Sprintf("reader %d: Events(%d, %d, %d): event %d = %v, live %v", r, from, v.Rev(), limit, i, res.Events[i], want[i])
						return
					}
				}
			}
		}(r)
	}

	rnd := rand.New(rand.NewSource(seed))
	key := func() string { return fmt.Sprintf("k%02d", rnd.Intn(30)) }
	for i := 0; i < ops && len(errs) == 0; i++ {
		var req *messages.InternalRequest
		switch n := rnd.Intn(10); {
		case n < 5:
			req = putReq(&messages.PutRequest{Key: b(key()), Value: b(fmt.Sprint(i))})
		case n < 7:
			k := key()
			req = delReq(&messages.DeleteRangeRequest{Key: b(k), RangeEnd: b(k + "5")})
		case n < 9:
			rt := &messages.TxnRequest{}
			used := map[string]bool{}
			for range 1 + rnd.Intn(5) {
				k := key()
				if used[k] { // the gateway rejects two writes of one key in a txn
					continue
				}
				used[k] = true
				if rnd.Intn(3) == 0 {
					rt.Success = append(rt.Success, opDel(k, "", false))
				} else {
					rt.Success = append(rt.Success, opPut(k, fmt.Sprint(i)))
				}
			}
			req = &messages.InternalRequest{Request: &messages.InternalRequest_Txn{Txn: rt}}
		default:
			if c := h.s.CompactRev(); h.s.Rev() > max(c, 1)+20 {
				at := max(c+1, h.s.Rev()-10-rnd.Int63n(10))
				req = &messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: at}}}
			} else {
				req = putReq(&messages.PutRequest{Key: b(key()), Value: b(fmt.Sprint(i))})
			}
		}
		h.idx++
		if e := h.s.Apply(h.idx, req).GetError(); e != nil {
			t.Fatalf("seed %d: op %d: %s", seed, i, e.Message)
		}
		evs := h.s.TakeEvents()
		if len(evs) > 0 {
			rev := evs[0].Kv.ModRevision
			for _, ev := range evs {
				if ev.Kv.ModRevision != rev || rev != h.s.Rev() {
					t.Fatalf("seed %d: op %d: event %v at store revision %d", seed, i, ev, h.s.Rev())
				}
			}
			mu.Lock()
			live[rev] = evs
			mu.Unlock()
		}
		h.s.Publish() // after the live events are recorded
		if rnd.Intn(8) == 0 {
			h.commit()
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("seed %d: %s", seed, e)
	}
}
