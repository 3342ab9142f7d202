package tests

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Watch API tests. The single-member tests run against an in-process aetcd
// member, or, with AETCD_WATCH_REFERENCE set to the path of an etcd 3.6.6
// binary, against real etcd (to check that what they expect is what etcd
// does):
//
//	AETCD_WATCH_REFERENCE=~/.cache/etcd-reference-3.6.6/etcd go test ./tests -run 'TestWatch'
//
// Tests that need aetcd internals (restart in-process, clusters) skip in
// that mode.

const (
	// errCompactedMsg is rpctypes.ErrCompacted.Error(), the cancel_reason
	// of a create with a negative start revision.
	errCompactedMsg = "etcdserver: mvcc: required revision has been compacted"
	// Cancel reasons of storage/mvcc/watcher.go.
	errWatchRangeMsg       = "mvcc: watcher range is empty"
	errWatchDuplicateIDMsg = "mvcc: duplicate watch ID provided on the WatchStream"
	// watchWait bounds every wait for one watch response.
	watchWait = 10 * time.Second
)

// watchServerOpts configures the server of a single-member watch test.
type watchServerOpts struct {
	progressInterval time.Duration // 0: the default
}

// referenceEtcd is the etcd binary the single-member tests run against
// instead of aetcd, if set.
func referenceEtcd() string { return os.Getenv("AETCD_WATCH_REFERENCE") }

// startWatchServer starts a single member (aetcd, or the reference etcd)
// and returns its client address (host:port).
func startWatchServer(t *testing.T, o watchServerOpts) string {
	t.Helper()
	if bin := referenceEtcd(); bin != "" {
		return startReferenceEtcd(t, bin, o)
	}
	cfg := memberConfig(t, t.TempDir())
	if o.progressInterval > 0 {
		cfg.WatchProgressNotifyInterval = o.progressInterval
	}
	addr := startMemberCfg(t, cfg).ClientAddrs()[0]
	waitServing(t, addr)
	return addr
}

// waitServing waits until a linearizable read on addr succeeds: aetcd
// serves before its first election, when etcd's require-leader calls
// would still fail with "no leader".
func waitServing(t *testing.T, addr string) {
	t.Helper()
	cli := newClient(t, addr)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "probe")
		cancel()
		if err == nil {
			cli.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startReferenceEtcd(t *testing.T, bin string, o watchServerOpts) string {
	t.Helper()
	client := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	args := []string{"--name", "ref", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "ref=" + peer, "--log-level", "error"}
	if o.progressInterval > 0 {
		args = append(args, "--watch-progress-notify-interval", o.progressInterval.String())
	}
	cmd := exec.Command(bin, args...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	waitServing(t, client)
	return client
}

// skipWithReference skips a test that only runs against aetcd.
func skipWithReference(t *testing.T) {
	if referenceEtcd() != "" {
		t.Skip("aetcd only")
	}
}

// dialRaw returns a gRPC connection to addr, closed when the test ends.
func dialRaw(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawWatch is one Watch stream driven with etcd's own stubs. Responses
// are read by a goroutine started at the first read, so a test can leave
// the stream unread (a slow consumer) until then.
type rawWatch struct {
	t      *testing.T
	stream pb.Watch_WatchClient
	cancel context.CancelFunc
	once   sync.Once
	resps  chan *pb.WatchResponse
	err    chan error
}

func openRawWatch(t *testing.T, conn *grpc.ClientConn) *rawWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &rawWatch{t: t, stream: stream, cancel: cancel, resps: make(chan *pb.WatchResponse, 1024), err: make(chan error, 1)}
	t.Cleanup(w.close)
	return w
}

func (w *rawWatch) close() {
	w.cancel()
	w.start() // the reader ends once the stream does
}

func (w *rawWatch) start() {
	w.once.Do(func() {
		go func() {
			for {
				resp, err := w.stream.Recv()
				if err != nil {
					w.err <- err
					return
				}
				w.resps <- resp
			}
		}()
	})
}

func (w *rawWatch) send(req *pb.WatchRequest) {
	w.t.Helper()
	if err := w.stream.Send(req); err != nil {
		w.t.Fatalf("watch send: %v", err)
	}
}

func (w *rawWatch) create(cr *pb.WatchCreateRequest) {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
}

func (w *rawWatch) cancelWatch(id int64) {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
}

func (w *rawWatch) requestProgress() {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
}

// next returns the next response, failing the test if none comes within
// timeout or the stream ends.
func (w *rawWatch) next(timeout time.Duration) *pb.WatchResponse {
	w.t.Helper()
	w.start()
	select {
	case r := <-w.resps:
		return r
	case err := <-w.err:
		w.t.Fatalf("watch stream ended: %v", err)
	case <-time.After(timeout):
		w.t.Fatalf("no watch response within %v", timeout)
	}
	return nil
}

// none fails the test if a response arrives within d.
func (w *rawWatch) none(d time.Duration) {
	w.t.Helper()
	w.start()
	select {
	case r := <-w.resps:
		w.t.Fatalf("unexpected watch response %v", r)
	case err := <-w.err:
		w.t.Fatalf("watch stream ended: %v", err)
	case <-time.After(d):
	}
}

// createOK creates a watcher and returns its ID from the created response.
func (w *rawWatch) createOK(cr *pb.WatchCreateRequest) int64 {
	w.t.Helper()
	w.create(cr)
	r := w.next(watchWait)
	for r.WatchId == -1 && !r.Created { // a late answer to collect's progress requests
		r = w.next(watchWait)
	}
	if !r.Created || r.Canceled || len(r.Events) > 0 {
		w.t.Fatalf("create %v: got %v, want a created response", cr, r)
	}
	return r.WatchId
}

// collect reads responses until a progress response (watch_id -1) at or
// above rev, asking for progress as needed, and returns the events per
// watch ID. Any canceled response fails the test.
func (w *rawWatch) collect(rev int64) map[int64][]*mvccpb.Event {
	w.t.Helper()
	out := map[int64][]*mvccpb.Event{}
	w.requestProgress()
	deadline := time.Now().Add(30 * time.Second)
	w.start()
	for {
		var r *pb.WatchResponse
		select {
		case r = <-w.resps:
		case err := <-w.err:
			w.t.Fatalf("watch stream ended: %v", err)
		case <-time.After(500 * time.Millisecond):
			// etcd drops a progress request while a watcher is
			// unsynced: ask again.
			if time.Now().After(deadline) {
				w.t.Fatalf("no progress response at revision %d within 30s", rev)
			}
			w.requestProgress()
			continue
		}
		switch {
		case r.Canceled:
			w.t.Fatalf("unexpected response while collecting: %v", r)
		case r.Created:
		case r.WatchId == -1:
			if r.Header.Revision >= rev {
				return out
			}
			w.requestProgress()
		default:
			out[r.WatchId] = append(out[r.WatchId], r.Events...)
		}
	}
}

// readUntil reads responses of watch id until one carries revision rev
// (or the watcher is canceled) and returns its events and the cancel
// response, if any. Other watchers' responses fail the test.
func (w *rawWatch) readUntil(id, rev int64, timeout time.Duration) (evs []*mvccpb.Event, canceled *pb.WatchResponse) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := w.next(time.Until(deadline))
		if r.WatchId == -1 && !r.Created {
			continue // a late answer to collect's progress requests
		}
		if r.WatchId != id {
			w.t.Fatalf("response of watch %d while reading watch %d: %v", r.WatchId, id, r)
		}
		evs = append(evs, r.Events...)
		if r.Canceled {
			return evs, r
		}
		if n := len(evs); n > 0 && evs[n-1].Kv.ModRevision >= rev {
			return evs, nil
		}
	}
}

func createReq(key, end string, start int64) *pb.WatchCreateRequest {
	cr := &pb.WatchCreateRequest{Key: []byte(key), StartRevision: start}
	if end != "" {
		cr.RangeEnd = []byte(end)
	}
	return cr
}

// put puts key=val and returns the revision.
func put(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(ctxT(t), key, val)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	resp, err := cli.Delete(ctxT(t), key, opts...)
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
	return resp.Header.Revision
}

// evString renders events compactly for comparisons: TYPE key@rev.
func evString(evs []*mvccpb.Event) string {
	var parts []string
	for _, ev := range evs {
		s := fmt.Sprintf("%s %q@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
		if ev.PrevKv != nil {
			s += fmt.Sprintf(" prev %q@%d", ev.PrevKv.Value, ev.PrevKv.ModRevision)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// checkRevisions fails unless evs carry exactly the revisions want, in
// order (one event per revision).
func checkRevisions(t *testing.T, what string, evs []*mvccpb.Event, want []int64) {
	t.Helper()
	got := make([]int64, len(evs))
	for i, ev := range evs {
		got[i] = ev.Kv.ModRevision
	}
	checkRevs(t, what, got, want)
}

// checkRevs fails unless got equals want.
func checkRevs(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d (first difference %s)", what, len(got), len(want), firstDiff(got, want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %s", what, firstDiff(got, want))
		}
	}
}

func firstDiff(got, want []int64) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("missing revision %d at position %d", want[i], i)
		case i >= len(want):
			return fmt.Sprintf("extra revision %d at position %d", got[i], i)
		case got[i] != want[i]:
			return fmt.Sprintf("revision %d at position %d, want %d (previous %v)", got[i], i, want[i], got[max(0, i-3):i])
		}
	}
	return "none"
}

func revRange(from, to int64) []int64 {
	var out []int64
	for r := from; r <= to; r++ {
		out = append(out, r)
	}
	return out
}

// TestWatchRanges: every way of naming keys in a create request (as a
// Range), with auto IDs 0, 1, 2, ... in creation order on one stream.
func TestWatchRanges(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	w := openRawWatch(t, dialRaw(t, addr))
	cases := []struct {
		name, key, end string
		want           []string
	}{
		{"single key", "a", "", []string{"a"}},
		{"prefix", "a", "b", []string{"a", "ab", "abc"}},
		{"range", "ab", "c", []string{"ab", "abc", "b"}},
		{"from key", "b", "\x00", []string{"b", "c", "zz"}},
		{"all keys", "\x00", "\x00", []string{"\x00", "a", "ab", "abc", "b", "c", "zz"}},
		{"empty key, from key", "", "\x00", []string{"\x00", "a", "ab", "abc", "b", "c", "zz"}},
		{"empty key alone is key 0x00", "", "", []string{"\x00"}},
		{"no match", "q", "r", nil},
	}
	for i, tc := range cases {
		if id := w.createOK(createReq(tc.key, tc.end, 0)); id != int64(i) {
			t.Fatalf("%s: watch ID %d, want %d (auto IDs count up per stream)", tc.name, id, i)
		}
	}
	var last int64
	for _, k := range []string{"\x00", "a", "ab", "abc", "b", "c", "zz"} {
		last = put(t, cli, k, "v")
	}
	got := w.collect(last)
	for i, tc := range cases {
		var keys []string
		for _, ev := range got[int64(i)] {
			keys = append(keys, string(ev.Kv.Key))
		}
		if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
			t.Errorf("%s [%q, %q): keys %q, want %q", tc.name, tc.key, tc.end, keys, tc.want)
		}
	}
}

// TestWatchCreateErrors: a bad create is answered created+canceled with
// watch_id -1 and etcd's cancel_reason; the stream keeps serving.
func TestWatchCreateErrors(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	w := openRawWatch(t, dialRaw(t, addr))
	if id := w.createOK(&pb.WatchCreateRequest{Key: []byte("k"), WatchId: 7}); id != 7 {
		t.Fatalf("client-chosen watch_id 7: created %d", id)
	}
	if id := w.createOK(&pb.WatchCreateRequest{Key: []byte("k"), WatchId: 1}); id != 1 {
		t.Fatalf("client-chosen watch_id 1: created %d", id)
	}
	// Auto IDs skip the ones taken.
	for _, want := range []int64{0, 2} {
		if id := w.createOK(createReq("k", "", 0)); id != want {
			t.Fatalf("auto watch ID %d, want %d", id, want)
		}
	}
	rev := put(t, cli, "k", "v")
	w.collect(rev)
	bad := []struct {
		name   string
		req    *pb.WatchCreateRequest
		reason string
	}{
		{"duplicate watch_id", &pb.WatchCreateRequest{Key: []byte("k"), WatchId: 7}, errWatchDuplicateIDMsg},
		{"key == range_end", createReq("b", "b", 0), errWatchRangeMsg},
		{"key > range_end", createReq("c", "b", 0), errWatchRangeMsg},
		{"negative start_revision", createReq("k", "", -1), errCompactedMsg},
	}
	for _, tc := range bad {
		w.create(tc.req)
		r := w.next(watchWait)
		if !r.Created || !r.Canceled || r.WatchId != -1 || r.CancelReason != tc.reason || len(r.Events) > 0 {
			t.Errorf("%s: got %v, want created+canceled, watch_id -1, cancel_reason %q", tc.name, r, tc.reason)
		}
		if r.Header == nil || r.Header.Revision != rev {
			t.Errorf("%s: header %v, want revision %d", tc.name, r.Header, rev)
		}
	}
	// The stream still serves all four watchers.
	rev = put(t, cli, "k", "v2")
	got := w.collect(rev)
	for _, id := range []int64{0, 1, 2, 7} {
		if s := evString(got[id]); s != fmt.Sprintf("PUT \"k\"@%d", rev) {
			t.Errorf("watch %d after the failed creates: %s", id, s)
		}
	}
}

// TestWatchCancel: a cancel is answered canceled with the watch's ID and
// nothing follows for it; an unknown ID is ignored.
func TestWatchCancel(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	w := openRawWatch(t, dialRaw(t, addr))
	a := w.createOK(createReq("k", "", 0))
	b := w.createOK(createReq("k", "", 0))
	rev := put(t, cli, "k", "1")
	w.cancelWatch(a)
	var canceled *pb.WatchResponse
	got := map[int64][]*mvccpb.Event{}
	for canceled == nil {
		r := w.next(watchWait)
		if r.Canceled {
			canceled = r
			continue
		}
		got[r.WatchId] = append(got[r.WatchId], r.Events...)
	}
	if canceled.WatchId != a || canceled.Created || canceled.CancelReason != "" || canceled.CompactRevision != 0 {
		t.Fatalf("cancel answered %v", canceled)
	}
	if canceled.Header.Revision != rev {
		t.Errorf("cancel response header revision %d, want %d", canceled.Header.Revision, rev)
	}
	w.cancelWatch(12345) // unknown: no answer
	rev2 := put(t, cli, "k", "2")
	for id, evs := range w.collect(rev2) {
		got[id] = append(got[id], evs...)
	}
	checkRevisions(t, "canceled watcher", got[a], []int64{rev})
	checkRevisions(t, "other watcher", got[b], []int64{rev, rev2})
	if len(got) != 2 {
		t.Errorf("events for unexpected watchers: %v", got)
	}
}

// TestWatchEventsAndFilters: prev_kv (absent on a creation), NOPUT,
// NODELETE, headers, and the events of one txn in one response in
// sub-revision order.
func TestWatchEventsAndFilters(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	w := openRawWatch(t, dialRaw(t, addr))
	created := put(t, cli, "other", "x")
	w.create(&pb.WatchCreateRequest{Key: []byte("f"), PrevKv: true})
	if r := w.next(watchWait); !r.Created || r.Header.Revision != created {
		t.Fatalf("created response %v, want header revision %d", r, created)
	}
	noPut := w.createOK(&pb.WatchCreateRequest{Key: []byte("f"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	noDel := w.createOK(&pb.WatchCreateRequest{Key: []byte("f"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}})
	both := w.createOK(&pb.WatchCreateRequest{Key: []byte("f"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT, pb.WatchCreateRequest_NODELETE}})
	r1 := put(t, cli, "f", "1")
	r2 := put(t, cli, "f", "2")
	r3 := del(t, cli, "f")
	r4 := put(t, cli, "f", "3")
	got := w.collect(r4)
	want := map[int64]string{
		0:     fmt.Sprintf(`PUT "f"@%d, PUT "f"@%d prev "1"@%d, DELETE "f"@%d prev "2"@%d, PUT "f"@%d`, r1, r2, r1, r3, r2, r4),
		noPut: fmt.Sprintf(`DELETE "f"@%d`, r3),
		noDel: fmt.Sprintf(`PUT "f"@%d, PUT "f"@%d, PUT "f"@%d`, r1, r2, r4),
		both:  "",
	}
	for id, s := range want {
		if g := evString(got[id]); g != s {
			t.Errorf("watch %d: %s\nwant %s", id, g, s)
		}
	}
	if ev := got[0]; len(ev) == 4 && (ev[0].PrevKv != nil || ev[3].PrevKv != nil) {
		t.Errorf("creation events carry prev_kv")
	}

	// One txn: one response, events in sub-revision order, header at the
	// txn's revision.
	put(t, cli, "t/0", "x")
	tw := w.createOK(createReq("t/", "t0", 0))
	tresp, err := cli.Txn(ctxT(t)).Then(clientv3.OpPut("t/3", "a"), clientv3.OpDelete("t/0"), clientv3.OpPut("t/1", "b"), clientv3.OpPut("t/2", "c")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	rev := tresp.Header.Revision
	r := w.next(watchWait)
	if r.WatchId != tw || r.Header.Revision != rev {
		t.Fatalf("txn response %v, want watch %d at header revision %d", r, tw, rev)
	}
	if s, want := evString(r.Events), fmt.Sprintf(`PUT "t/3"@%d, DELETE "t/0"@%d, PUT "t/1"@%d, PUT "t/2"@%d`, rev, rev, rev, rev); s != want {
		t.Errorf("txn events %s, want %s", s, want)
	}
}

// TestWatchStartRevision: from now, from the past while writes continue
// (history then live: every revision once, in order), from the future.
func TestWatchStartRevision(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	const history, live = 1500, 500
	first := put(t, cli, "h/first", "v")
	writeN(t, cli, "h/", 0, history-1)
	mid := first + history/2

	// Writes continue while the catch-up runs.
	done := make(chan int64, 1)
	go func() {
		var last int64
		for i := 0; i < live; i++ {
			resp, err := cli.Put(context.Background(), fmt.Sprintf("h/live/%d", i), "v")
			if err != nil {
				break
			}
			last = resp.Header.Revision
		}
		done <- last
	}()
	w := openRawWatch(t, dialRaw(t, addr))
	// Auto IDs 0 and 1; the first one's history may arrive before the
	// second one's created response (collect skips created responses).
	const past, fromFirst = 0, 1
	w.create(createReq("h/", "h0", mid))
	w.create(createReq("h/", "h0", first))
	last := <-done
	if last != first+history+live-1 {
		t.Fatalf("live writes ended at revision %d, want %d", last, first+history+live-1)
	}
	got := w.collect(last)
	checkRevisions(t, "watch from the middle of the history", got[past], revRange(mid, last))
	checkRevisions(t, "watch from the first write", got[fromFirst], revRange(first, last))

	// Start revision 0 is now; a future start revision skips until then.
	now := w.createOK(createReq("h/", "h0", 0))
	future := w.createOK(createReq("h/", "h0", last+3))
	r1 := put(t, cli, "h/x", "1")
	put(t, cli, "h/x", "2")
	r3 := put(t, cli, "h/x", "3")
	r5 := writeN(t, cli, "h/y", 0, 2)
	got = w.collect(r5)
	checkRevisions(t, "start revision 0", got[now], revRange(r1, r5))
	checkRevisions(t, "start revision in the future", got[future], revRange(r3, r5))
}

// writeN puts n keys prefix+i (i from first) from 16 clients at once and
// returns the highest revision.
func writeN(t *testing.T, cli *clientv3.Client, prefix string, first, n int) int64 {
	t.Helper()
	return writeConcurrently(t, cli, 16, prefix, first, n)
}

// writeConcurrently is writeN with conc clients.
func writeConcurrently(t *testing.T, cli *clientv3.Client, conc int, prefix string, first, n int) int64 {
	t.Helper()
	var mu sync.Mutex
	var last int64
	keys := make(chan string, n)
	for i := first; i < first+n; i++ {
		keys <- fmt.Sprintf("%s%06d", prefix, i)
	}
	close(keys)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				resp, err := cli.Put(context.Background(), k, k)
				if err != nil {
					t.Errorf("put %s: %v", k, err)
					return
				}
				mu.Lock()
				last = max(last, resp.Header.Revision)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return last
}

// TestWatchFragment: a revision larger than the fragment size (etcd's
// --max-request-bytes + 512 KiB) reaches a fragment watcher in several
// responses, fragment set on all but the last, which clientv3 joins; a
// watcher without fragment gets it whole.
func TestWatchFragment(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	const n, size = 100, 50 * 1024
	val := strings.Repeat("v", size)
	for i := range n {
		put(t, cli, fmt.Sprintf("big/%03d", i), val)
	}
	w := openRawWatch(t, dialRaw(t, addr))
	frag := w.createOK(&pb.WatchCreateRequest{Key: []byte("big/"), RangeEnd: []byte("big0"), PrevKv: true, Fragment: true})
	whole := w.createOK(&pb.WatchCreateRequest{Key: []byte("big/"), RangeEnd: []byte("big0"), PrevKv: true})
	wch := cli.Watch(clientv3.WithRequireLeader(context.Background()), "big/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment())
	// Deleting all keys in one revision: each event carries its 50 KiB
	// prev_kv, 5 MB in all.
	rev := del(t, cli, "big/", clientv3.WithPrefix())

	var parts []*pb.WatchResponse
	var wholeResp *pb.WatchResponse
	for wholeResp == nil || len(parts) == 0 || parts[len(parts)-1].Fragment {
		r := w.next(watchWait)
		switch r.WatchId {
		case frag:
			parts = append(parts, r)
		case whole:
			wholeResp = r
		}
	}
	if len(wholeResp.Events) != n || wholeResp.Fragment {
		t.Errorf("watcher without fragment: %d events in one response (fragment=%v), want %d", len(wholeResp.Events), wholeResp.Fragment, n)
	}
	if len(parts) < 3 {
		t.Errorf("%d fragments, want at least 3 (5 MB over 2 MiB fragments)", len(parts))
	}
	var evs []*mvccpb.Event
	for i, p := range parts {
		if p.Fragment != (i < len(parts)-1) {
			t.Errorf("fragment %d of %d: fragment=%v", i, len(parts), p.Fragment)
		}
		if p.Header.Revision != rev {
			t.Errorf("fragment %d header revision %d, want %d", i, p.Header.Revision, rev)
		}
		if size := p.Size(); size > (1572864+512*1024)+size/n*2 {
			t.Errorf("fragment %d is %d bytes", i, size)
		}
		evs = append(evs, p.Events...)
	}
	if len(evs) != n {
		t.Fatalf("fragments hold %d events, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Type != mvccpb.DELETE || string(ev.Kv.Key) != fmt.Sprintf("big/%03d", i) || ev.PrevKv == nil || len(ev.PrevKv.Value) != size {
			t.Fatalf("fragment event %d: %s", i, evString([]*mvccpb.Event{ev}))
		}
	}
	select {
	case wr := <-wch:
		if err := wr.Err(); err != nil || len(wr.Events) != n {
			t.Errorf("clientv3 WithFragment: err %v, %d events, want %d joined", err, len(wr.Events), n)
		}
	case <-time.After(watchWait):
		t.Fatal("clientv3 WithFragment: no response")
	}
}

// TestWatchCompacted: a start revision below the compaction revision is
// created, then canceled with compact_revision; a watch from the
// compaction revision itself works, including a delete at exactly that
// revision (etcd #18089, #19179).
func TestWatchCompacted(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	r1 := put(t, cli, "c/x", "1")
	put(t, cli, "c/y", "1")
	rDel := del(t, cli, "c/x")
	if _, err := cli.Compact(ctxT(t), rDel); err != nil {
		t.Fatal(err)
	}
	rAfter := put(t, cli, "c/z", "1")

	w := openRawWatch(t, dialRaw(t, addr))
	for _, start := range []int64{r1, rDel - 1} {
		w.create(createReq("c/", "c0", start))
		r := w.next(watchWait)
		if !r.Created || r.Canceled || r.Header.Revision != rAfter {
			t.Fatalf("watch from compacted %d: first response %v, want created at header revision %d", start, r, rAfter)
		}
		id := r.WatchId
		r = w.next(watchWait)
		if r.WatchId != id || !r.Canceled || r.Created || r.CompactRevision != rDel || r.CancelReason != "" || len(r.Events) > 0 {
			t.Fatalf("watch from compacted %d: second response %v, want canceled with compact_revision %d", start, r, rDel)
		}
		// etcd's sendLoop takes the header revision from the mvcc
		// response, which a compacted cancel leaves at 0.
		if r.Header == nil || r.Header.Revision != 0 {
			t.Errorf("compacted cancel header %v, want revision 0 as etcd's", r.Header)
		}
	}
	// #18089, #19179: from the compaction revision, which is a delete.
	id := w.createOK(createReq("c/", "c0", rDel))
	evs, canceled := w.readUntil(id, rAfter, watchWait)
	if canceled != nil {
		t.Fatalf("watch from the compaction revision canceled: %v", canceled)
	}
	if s, want := evString(evs), fmt.Sprintf(`DELETE "c/x"@%d, PUT "c/z"@%d`, rDel, rAfter); s != want {
		t.Fatalf("watch from the compaction revision: %s, want %s", s, want)
	}

	// clientv3 reports ErrCompacted with the compaction revision.
	wr := <-cli.Watch(context.Background(), "c/", clientv3.WithPrefix(), clientv3.WithRev(rDel-1))
	if wr.CompactRevision != rDel || !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
		t.Errorf("clientv3 watch from a compacted revision: compact revision %d, err %v", wr.CompactRevision, wr.Err())
	}
}

// TestWatchProgress: a progress request on a synced stream is answered
// with watch_id -1 at the current revision; on a stream with a watcher
// catching up, only after the watcher's history; on a stream without
// watchers, never. progress_notify watchers hear the revision every
// --watch-progress-notify-interval when idle.
func TestWatchProgress(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{progressInterval: 300 * time.Millisecond})
	cli := newClient(t, addr)
	conn := dialRaw(t, addr)
	rev := put(t, cli, "p/a", "1")

	t.Run("no watchers", func(t *testing.T) {
		w := openRawWatch(t, conn)
		w.requestProgress()
		w.none(time.Second)
	})
	t.Run("synced", func(t *testing.T) {
		w := openRawWatch(t, conn)
		w.createOK(createReq("p/", "p0", 0))
		w.requestProgress()
		r := w.next(watchWait)
		if r.WatchId != -1 || r.Created || r.Canceled || len(r.Events) > 0 || r.Header.Revision != rev {
			t.Fatalf("progress response %v, want watch_id -1 at revision %d", r, rev)
		}
	})
	t.Run("catching up", func(t *testing.T) {
		last := writeN(t, cli, "p/h/", 0, 2000)
		w := openRawWatch(t, conn)
		w.create(createReq("p/", "p0", rev))
		w.requestProgress()
		if r := w.next(watchWait); !r.Created {
			t.Fatalf("first response %v, want created", r)
		}
		var evs []*mvccpb.Event
		for {
			if referenceEtcd() != "" && len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision == last {
				// etcd 3.6.6 drops a progress request made while a
				// watcher is unsynced (progressIfSync); aetcd defers it.
				w.none(time.Second)
				break
			}
			r := w.next(watchWait)
			if r.WatchId == -1 {
				if len(evs) == 0 || evs[len(evs)-1].Kv.ModRevision != last || r.Header.Revision != last {
					t.Fatalf("progress response at revision %d after %d events, want it after the whole history through %d", r.Header.Revision, len(evs), last)
				}
				break
			}
			evs = append(evs, r.Events...)
		}
		checkRevisions(t, "history", evs, revRange(rev, last))
	})
	t.Run("progress_notify", func(t *testing.T) {
		w := openRawWatch(t, conn)
		id := w.createOK(&pb.WatchCreateRequest{Key: []byte("p/"), RangeEnd: []byte("p0"), ProgressNotify: true})
		cur, err := cli.Get(ctxT(t), "p/a")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			r := w.next(5 * time.Second)
			if r.WatchId != id || len(r.Events) > 0 || r.Canceled || r.Header.Revision != cur.Header.Revision {
				t.Fatalf("progress notification %v, want watch %d at revision %d", r, id, cur.Header.Revision)
			}
		}
	})
}

// TestWatchSlowConsumer (etcd #17529, #17247): hundreds of watchers with
// prev_kv on one stream that is not read while thousands of revisions are
// written; each watcher then gets every revision it matches exactly once,
// in order, with the right prev_kv.
func TestWatchSlowConsumer(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	const (
		watchers = 200
		keys     = 20
		puts     = 2000
	)
	w := openRawWatch(t, dialRaw(t, addr))
	// Watcher i: every 10th watches the whole prefix, the others one key.
	for i := range watchers {
		cr := &pb.WatchCreateRequest{Key: []byte(fmt.Sprintf("s/%02d", i%keys)), PrevKv: true, WatchId: int64(i + 1)}
		if i%10 == 0 {
			cr.Key, cr.RangeEnd = []byte("s/"), []byte("s0")
		}
		w.create(cr)
	}
	for range watchers {
		if r := w.next(watchWait); !r.Created || r.Canceled {
			t.Fatalf("create answered %v", r)
		}
	}
	// From here on nothing is read until every put is done.
	type write struct {
		key string
		rev int64
	}
	writes := make([]write, 0, puts)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < puts; i += 8 {
				key := fmt.Sprintf("s/%02d", i%keys)
				resp, err := cli.Put(context.Background(), key, fmt.Sprint(i))
				if err != nil {
					t.Errorf("put: %v", err)
					return
				}
				mu.Lock()
				writes = append(writes, write{key, resp.Header.Revision})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	last := int64(0)
	perKey := map[string][]int64{}
	var all []int64
	for _, wr := range writes {
		perKey[wr.key] = append(perKey[wr.key], wr.rev)
		all = append(all, wr.rev)
		last = max(last, wr.rev)
	}
	for _, revs := range perKey {
		slices.Sort(revs)
	}
	slices.Sort(all)
	got := w.collect(last)
	prevOf := map[int64]int64{} // revision -> the revision of the key's previous put
	for _, revs := range perKey {
		for i := 1; i < len(revs); i++ {
			prevOf[revs[i]] = revs[i-1]
		}
	}
	for i := range watchers {
		id := int64(i + 1)
		want := perKey[fmt.Sprintf("s/%02d", i%keys)]
		if i%10 == 0 {
			want = all
		}
		checkRevisions(t, fmt.Sprintf("watcher %d", id), got[id], want)
		for _, ev := range got[id] {
			p, ok := prevOf[ev.Kv.ModRevision]
			if ok != (ev.PrevKv != nil) || (ok && ev.PrevKv.ModRevision != p) {
				t.Fatalf("watcher %d: event at %d has prev_kv %v, want the put at %d", id, ev.Kv.ModRevision, ev.PrevKv, p)
			}
		}
	}
}

// TestWatchSlowConsumerCompacted: a compaction while a watcher waits
// behind an unread stream cancels it with compact_revision after the
// events it got, never leaving a gap.
func TestWatchSlowConsumerCompacted(t *testing.T) {
	addr := startWatchServer(t, watchServerOpts{})
	cli := newClient(t, addr)
	start := put(t, cli, "sc/start", "v")
	w := openRawWatch(t, dialRaw(t, addr))
	w.create(&pb.WatchCreateRequest{Key: []byte("sc/"), RangeEnd: []byte("sc0"), StartRevision: start, WatchId: 1})
	// Big values so that gRPC's flow control stops the sender early.
	val := strings.Repeat("x", 4096)
	var last int64
	for i := range 3000 {
		last = put(t, cli, fmt.Sprintf("sc/%d", i%50), val)
	}
	if _, err := cli.Compact(ctxT(t), last); err != nil {
		t.Fatal(err)
	}
	after := put(t, cli, "sc/after", "v")
	if r := w.next(watchWait); !r.Created {
		t.Fatalf("first response %v", r)
	}
	evs, canceled := w.readUntil(1, after, 30*time.Second)
	if canceled == nil {
		// Everything got through before the compaction mattered.
		checkRevisions(t, "watch", evs, revRange(start, after))
		t.Logf("the watcher was not behind the compaction")
		return
	}
	if canceled.CompactRevision != last {
		t.Errorf("canceled with compact_revision %d, want %d", canceled.CompactRevision, last)
	}
	n := int64(len(evs))
	checkRevisions(t, "events before the compacted cancel", evs, revRange(start, start+n-1))
	if start+n >= last {
		t.Errorf("canceled although it had every revision through %d (compaction at %d)", start+n-1, last)
	}
	t.Logf("%d events, then canceled at compaction %d", n, last)
}

// TestWatchResume: a watch closed and reopened from the last revision seen
// + 1 continues without a gap or a duplicate, on the same member and
// across a restart of the member — etcd's "Resumable" guarantee, which
// etcd 3.6.1 broke (#20221, found by Antithesis, fixed in 3.6.2).
// TestClusterWatchLeaderFailover checks the same across members.
func TestWatchResume(t *testing.T) {
	skipWithReference(t)
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	m := startMemberCfg(t, cfg)
	waitServing(t, m.ClientAddrs()[0])
	cli := newClient(t, m.ClientAddrs()...)
	first := put(t, cli, "r/0", "v")
	writeN(t, cli, "r/a", 0, 99)

	var seen []int64
	watchSome := func(cli *clientv3.Client, n int) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		from := first
		if len(seen) > 0 {
			from = seen[len(seen)-1] + 1
		}
		wch := cli.Watch(ctx, "r/", clientv3.WithPrefix(), clientv3.WithRev(from))
		for len(seen) < n {
			select {
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					t.Fatalf("watch ended: %v", wr.Err())
				}
				for _, ev := range wr.Events {
					seen = append(seen, ev.Kv.ModRevision)
				}
			case <-time.After(watchWait):
				t.Fatalf("watch stalled after %d events", len(seen))
			}
		}
	}
	watchSome(cli, 40)
	watchSome(cli, 100)
	// Restart; the watch from the next revision resumes and goes on live.
	cli.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m = startMemberCfg(t, cfg)
	waitServing(t, m.ClientAddrs()[0])
	cli = newClient(t, m.ClientAddrs()...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeN(t, cli, "r/b", 0, 100)
	}()
	watchSome(cli, 200)
	<-done
	checkRevs(t, "resumed watches", seen[:200], revRange(first, first+199))
	cli.Close()
}

// TestWatchStreamsNoLeak: watch streams opened and closed, by the client
// canceling or by closing the connection, leave no goroutine behind.
func TestWatchStreamsNoLeak(t *testing.T) {
	skipWithReference(t)
	checkNoGoroutineLeak(t)
	addr := startWatchServer(t, watchServerOpts{})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range 20 {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
		wch := cli.Watch(ctx, "leak/", clientv3.WithPrefix(), clientv3.WithPrevKV())
		put(t, cli, "leak/k", fmt.Sprint(i))
		if wr := <-wch; len(wr.Events) != 1 {
			t.Fatalf("watch %d: %v (err %v)", i, wr, wr.Err())
		}
		cancel()
	}
	for range 5 {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		stream, err := pb.NewWatchClient(conn).Watch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: createReq("leak/", "leak0", 1)}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		conn.Close()
	}
}

// memberWatch follows one member's watch of every key from a revision and
// records what it delivers.
type memberWatch struct {
	name   string
	mu     sync.Mutex
	evs    []*mvccpb.Event
	errs   []string
	last   int64
	cancel context.CancelFunc
	done   chan struct{}
}

// watchMember watches all keys on cli from revision from until canceled,
// recording a violation whenever a revision arrives out of order, twice or
// after a gap (every revision of the test is one put, so the watch must
// deliver from, from+1, ...).
func watchMember(name string, cli *clientv3.Client, from int64) *memberWatch {
	ctx, cancel := context.WithCancel(context.Background())
	mw := &memberWatch{name: name, last: from - 1, cancel: cancel, done: make(chan struct{})}
	wch := cli.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(from))
	go func() {
		defer close(mw.done)
		for wr := range wch {
			mw.mu.Lock()
			if err := wr.Err(); err != nil && ctx.Err() == nil {
				mw.errs = append(mw.errs, fmt.Sprintf("watch error after revision %d: %v (compact revision %d)", mw.last, err, wr.CompactRevision))
			}
			for _, ev := range wr.Events {
				if rev := ev.Kv.ModRevision; rev != mw.last+1 && len(mw.errs) < 10 {
					mw.errs = append(mw.errs, fmt.Sprintf("revision %d after %d", rev, mw.last))
				}
				mw.last = ev.Kv.ModRevision
				mw.evs = append(mw.evs, (*mvccpb.Event)(ev))
			}
			mw.mu.Unlock()
		}
	}()
	return mw
}

func (mw *memberWatch) lastRev() int64 {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	return mw.last
}

// TestWatchClusterSnapshot (etcd #15271): a member that was stopped while
// the others wrote enough to compact their Raft logs catches up from a
// snapshot of the leader's backend; its watch keeps delivering every
// revision once, in order, never going back, and ends where the others'
// do. Watches of the same range on all three members deliver identical
// events.
func TestWatchClusterSnapshot(t *testing.T) {
	skipWithReference(t)
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	c := startCluster(t, 3, "--snapshot-count", "100")
	leader := c.waitLeader(5*time.Second, c.members...)
	stopped := c.others(leader)[0]
	writer := c.client(c.others(stopped)...)
	start := put(t, writer, "ws/start", "v")
	watches := map[string]*memberWatch{}
	for _, m := range c.members {
		watches[m.name] = watchMember(m.name, c.client(m), start)
	}
	mid := writeN(t, writer, "ws/a/", 0, 200)
	waitWatches(t, watches, mid)

	c.signal(stopped, syscall.SIGSTOP)
	// More than the 5000 entries the leader keeps behind its snapshot
	// plus what it pipelines to the stopped member before it pauses (256
	// appends in flight, of about one entry per concurrent writer): the
	// stopped member's kernel buffers what was sent, so only entries
	// beyond that need the snapshot.
	writeConcurrently(t, writer, 4, "ws/b/", 0, 6500)
	c.signal(stopped, syscall.SIGCONT)
	last := writeN(t, writer, "ws/c/", 0, 300)
	// The members first (a stall there is not the watch's), then the
	// watches.
	if rev, _ := c.waitConverged(30*time.Second, "ws/", c.members...); rev != last {
		t.Fatalf("members converged at revision %d, want %d", rev, last)
	}
	waitWatches(t, watches, last)
	if !strings.Contains(stopped.logOf(), snapInstalledMsg) {
		t.Errorf("%s caught up without installing a snapshot", stopped.name)
	}
	for _, mw := range watches {
		mw.cancel()
		<-mw.done
		for _, e := range mw.errs {
			t.Errorf("%s: %s", mw.name, e)
		}
	}
	// Live and historical watches of [start, last] agree on every member.
	want := evString(watches[leader.name].evs)
	for _, m := range c.members {
		if got := evString(watches[m.name].evs); got != want {
			t.Errorf("%s's live watch differs from %s's", m.name, leader.name)
		}
		hist := watchMember(m.name, c.client(m), start)
		waitWatches(t, map[string]*memberWatch{m.name: hist}, last)
		hist.cancel()
		<-hist.done
		if got := evString(hist.evs); got != want {
			t.Errorf("%s's watch of the history differs from %s's live watch", m.name, leader.name)
		}
	}
}

// waitWatches waits until every watch has delivered revision rev.
func waitWatches(t *testing.T, watches map[string]*memberWatch, rev int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, mw := range watches {
		for mw.lastRev() < rev {
			if time.Now().After(deadline) {
				mw.mu.Lock()
				t.Fatalf("%s's watch at revision %d, want %d (%v)", mw.name, mw.last, rev, mw.errs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
