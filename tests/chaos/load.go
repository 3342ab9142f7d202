package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The load: clients doing random operations on a small key set, each
// pinned to one member; watchers of the key prefix; leases kept alive with
// keys attached. Everything they see is recorded for the checkers.

const (
	keyPrefix   = "/kv/"
	keyCount    = 10
	leasePrefix = "/lease/"
	// opTimeout bounds one client operation.
	opTimeout = 2 * time.Second
	leaseTTL  = 5 * time.Second
)

func keyName(i int) string { return fmt.Sprintf("%s%02d", keyPrefix, i) }

// recorder collects the history of a run. Every method is goroutine-safe.
type recorder struct {
	mu      sync.Mutex
	ops     []Op
	watches []*WatchLog
	leases  []*LeaseLog
}

func (r *recorder) addOp(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// history returns copies of what was recorded.
func (r *recorder) history() ([]Op, []WatchLog, []LeaseLog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := append([]Op(nil), r.ops...)
	var ws []WatchLog
	for _, w := range r.watches {
		c := *w
		c.Events = append([]WatchEvent(nil), w.Events...)
		ws = append(ws, c)
	}
	var ls []LeaseLog
	for _, l := range r.leases {
		c := *l
		c.Keys = append([]string(nil), l.Keys...)
		c.Acks = append([]int64(nil), l.Acks...)
		ls = append(ls, c)
	}
	return ops, ws, ls
}

// kvClient is one recording client pinned to one member.
type kvClient struct {
	id     int
	member *Member
	cli    *clientv3.Client
	rng    *rand.Rand
	rec    *recorder
	seq    int
	// last is the last value this client saw or wrote per key (CAS
	// expectations).
	last map[string]string
	// completed counts operations with a known outcome (liveness).
	completed atomic.Int64
}

func newKVClient(id int, m *Member, seed uint64, rec *recorder) (*kvClient, error) {
	cli, err := newClient(m.ClientURL)
	if err != nil {
		return nil, err
	}
	return &kvClient{id: id, member: m, cli: cli, rng: rand.New(rand.NewPCG(seed, uint64(id)+1)), rec: rec, last: map[string]string{}}, nil
}

// run does operations until ctx is done. An operation in flight when ctx
// ends completes (it has its own timeout), so stopping adds no unknowns.
func (c *kvClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		op := c.do()
		c.rec.addOp(op)
		pause := time.Duration(c.rng.IntN(10)) * time.Millisecond
		if op.Unknown {
			pause = 50*time.Millisecond + time.Duration(c.rng.IntN(100))*time.Millisecond
		} else {
			c.completed.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// do sends one random operation and returns it as recorded.
func (c *kvClient) do() Op {
	key := keyName(c.rng.IntN(keyCount))
	op := Op{Client: c.id, Key: key, Member: c.member.Name}
	r := c.rng.IntN(100)
	switch {
	case r < 35:
		op.Kind = KindGet
	case r < 65:
		op.Kind = KindPut
	case r < 75:
		op.Kind = KindDelete
	default:
		op.Kind = KindCAS
	}
	if op.Kind == KindPut || op.Kind == KindCAS {
		c.seq++
		op.Value = fmt.Sprintf("c%d-%d", c.id, c.seq)
	}
	if op.Kind == KindCAS {
		if v, ok := c.last[key]; ok && c.rng.IntN(4) != 0 {
			op.Expect = v
		} else {
			op.ExpectAbsent = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	op.Call = time.Now().UnixNano()
	var err error
	switch op.Kind {
	case KindGet:
		var resp *clientv3.GetResponse
		if resp, err = c.cli.Get(ctx, key); err == nil {
			op.Rev = resp.Header.Revision
			if len(resp.Kvs) > 0 {
				op.Found, op.Got = true, string(resp.Kvs[0].Value)
				c.last[key] = op.Got
			} else {
				delete(c.last, key)
			}
		}
	case KindPut:
		var resp *clientv3.PutResponse
		if resp, err = c.cli.Put(ctx, key, op.Value); err == nil {
			op.Rev = resp.Header.Revision
			c.last[key] = op.Value
		}
	case KindDelete:
		var resp *clientv3.DeleteResponse
		if resp, err = c.cli.Delete(ctx, key); err == nil {
			op.Rev, op.Deleted = resp.Header.Revision, resp.Deleted
			delete(c.last, key)
		}
	case KindCAS:
		cmp := clientv3.Compare(clientv3.Value(key), "=", op.Expect)
		if op.ExpectAbsent {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		var resp *clientv3.TxnResponse
		if resp, err = c.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, op.Value)).Commit(); err == nil {
			op.Rev, op.Succeeded = resp.Header.Revision, resp.Succeeded
			if resp.Succeeded {
				c.last[key] = op.Value
			}
		}
	}
	op.Return = time.Now().UnixNano()
	if err != nil {
		// No error proves a write was not applied (a timeout, a broken
		// connection, "leader changed" may all follow the proposal), and
		// an erroring read says nothing.
		op.Unknown = true
		op.Return = 0
	}
	return op
}

// watcher watches keyPrefix through one member and resumes a broken watch
// from the last revision seen + 1, each attempt a WatchLog.
type watcher struct {
	id     int
	member *Member
	cli    *clientv3.Client
	rec    *recorder
	// progress is the revision through which the watcher has received
	// every event (events, created and progress notifications).
	progress atomic.Int64
	logs     atomic.Int64
}

func newWatcher(id int, m *Member, rec *recorder) (*watcher, error) {
	cli, err := newClient(m.ClientURL)
	if err != nil {
		return nil, err
	}
	return &watcher{id: id, member: m, cli: cli, rec: rec}, nil
}

// streamCtx is the context of the watcher's streams: it requires a leader,
// so that a member cut off from the cluster ends the watch (etcd's
// behavior) and the watcher resumes it.
func streamCtx(ctx context.Context) context.Context { return clientv3.WithRequireLeader(ctx) }

func (w *watcher) run(ctx context.Context) {
	startRev := int64(0)
	for ctx.Err() == nil {
		wl := &WatchLog{ID: int(w.logs.Add(1)), Prefix: keyPrefix, Member: w.member.Name, StartRev: startRev}
		wl.ID = w.id*1000 + wl.ID
		w.rec.mu.Lock()
		w.rec.watches = append(w.rec.watches, wl)
		w.rec.mu.Unlock()
		last := w.watchOnce(ctx, wl)
		if last > 0 {
			startRev = last + 1
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watchOnce runs one watch into wl until it ends and returns the last
// revision through which wl saw everything (0 if none).
func (w *watcher) watchOnce(ctx context.Context, wl *WatchLog) int64 {
	wctx, cancel := context.WithCancel(streamCtx(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithProgressNotify()}
	if wl.StartRev > 0 {
		opts = append(opts, clientv3.WithRev(wl.StartRev))
	}
	last := int64(0)
	if wl.StartRev > 0 {
		last = wl.StartRev - 1
	}
	end := "the watch channel closed"
	for resp := range w.cli.Watch(wctx, keyPrefix, opts...) {
		if err := resp.Err(); err != nil {
			end = err.Error()
			break
		}
		if resp.Created {
			w.rec.mu.Lock()
			wl.CreatedRev = resp.Header.Revision
			w.rec.mu.Unlock()
			if wl.StartRev == 0 {
				last = resp.Header.Revision
				w.advance(last)
			}
			continue
		}
		if len(resp.Events) == 0 {
			if resp.IsProgressNotify() && resp.Header.Revision > last {
				last = resp.Header.Revision
				w.advance(last)
			}
			continue
		}
		evs := make([]WatchEvent, 0, len(resp.Events))
		for _, ev := range resp.Events {
			evs = append(evs, watchEvent(ev))
			last = max(last, ev.Kv.ModRevision)
		}
		w.rec.mu.Lock()
		wl.Events = append(wl.Events, evs...)
		w.rec.mu.Unlock()
		w.advance(last)
	}
	if ctx.Err() != nil {
		end = "stopped by the runner"
	}
	w.rec.mu.Lock()
	wl.End = end
	w.rec.mu.Unlock()
	return last
}

func (w *watcher) advance(rev int64) {
	for {
		cur := w.progress.Load()
		if rev <= cur || w.progress.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// requestProgress asks the watcher's member for a progress notification.
func (w *watcher) requestProgress() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_ = w.cli.RequestProgress(streamCtx(ctx))
}

func watchEvent(ev *clientv3.Event) WatchEvent {
	return WatchEvent{
		Put:       ev.Type == mvccpb.PUT,
		Key:       string(ev.Kv.Key),
		Value:     string(ev.Kv.Value),
		ModRev:    ev.Kv.ModRevision,
		CreateRev: ev.Kv.CreateRevision,
		Version:   ev.Kv.Version,
	}
}

// leaseKeeper grants leases through one member, attaches two keys to each
// and keeps it alive; a lease whose keep-alive ends (it expired, or could
// not be renewed in time) is recorded as no longer kept alive and replaced.
type leaseKeeper struct {
	id     int
	member *Member
	cli    *clientv3.Client
	rec    *recorder
	// life ends every keep-alive (the end of the run).
	life context.Context

	mu      sync.Mutex
	current *LeaseLog
	stop    context.CancelFunc // ends the current lease's keep-alive
}

func newLeaseKeeper(life context.Context, id int, m *Member, rec *recorder) (*leaseKeeper, error) {
	cli, err := newClient(m.ClientURL)
	if err != nil {
		return nil, err
	}
	return &leaseKeeper{id: id, member: m, cli: cli, rec: rec, life: life}, nil
}

// run grants leases one after another while grantCtx lasts; the last one
// is kept alive until life ends or it is revoked.
func (k *leaseKeeper) run(grantCtx context.Context) {
	for grantCtx.Err() == nil {
		k.keepOne(grantCtx)
		select {
		case <-grantCtx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// keepOne grants a lease, attaches its keys and keeps it alive until its
// keep-alive channel closes, it is revoked or life ends.
func (k *leaseKeeper) keepOne(grantCtx context.Context) {
	gctx, cancel := context.WithTimeout(grantCtx, opTimeout)
	grant, err := k.cli.Grant(gctx, int64(leaseTTL/time.Second))
	cancel()
	if err != nil {
		return // a lease granted unknown to us expires unrecorded: it has no keys
	}
	ll := &LeaseLog{ID: int64(grant.ID), TTL: leaseTTL, Granted: time.Now().UnixNano()}
	kctx, stop := context.WithCancel(k.life)
	defer stop()
	ch, err := k.cli.KeepAlive(kctx, grant.ID)
	if err != nil {
		return
	}
	k.rec.mu.Lock()
	k.rec.leases = append(k.rec.leases, ll)
	k.rec.mu.Unlock()
	k.mu.Lock()
	k.current, k.stop = ll, stop
	k.mu.Unlock()
	for _, suffix := range []string{"a", "b"} {
		key := fmt.Sprintf("%s%x/%s", leasePrefix, int64(grant.ID), suffix)
		pctx, cancel := context.WithTimeout(kctx, opTimeout)
		_, err := k.cli.Put(pctx, key, fmt.Sprintf("lease%d-%s", k.id, suffix), clientv3.WithLease(grant.ID))
		cancel()
		if err == nil {
			k.rec.mu.Lock()
			ll.Keys = append(ll.Keys, key)
			k.rec.mu.Unlock()
		}
	}
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				if kctx.Err() == nil {
					k.ended(ll, 0) // expired or not renewed in time
				}
				return
			}
			if resp.TTL > 0 {
				k.rec.mu.Lock()
				ll.Acks = append(ll.Acks, time.Now().UnixNano())
				k.rec.mu.Unlock()
			}
		case <-kctx.Done():
			// Revoked (revoke recorded it) or kept alive to the end of
			// the run (Revoked stays 0).
			return
		}
	}
}

// ended records that the runner no longer keeps ll alive.
func (k *leaseKeeper) ended(ll *LeaseLog, rev int64) {
	k.rec.mu.Lock()
	if ll.Revoked == 0 {
		ll.Revoked = time.Now().UnixNano()
	}
	if rev != 0 {
		ll.RevokedRev = rev
	}
	k.rec.mu.Unlock()
	k.mu.Lock()
	if k.current == ll {
		k.current, k.stop = nil, nil
	}
	k.mu.Unlock()
}

// revoke stops keeping the current lease alive and revokes it; the lease
// log records the revoke's revision if it succeeded.
func (k *leaseKeeper) revoke() error {
	k.mu.Lock()
	ll, stop := k.current, k.stop
	k.mu.Unlock()
	if ll == nil {
		return errors.New("no lease kept alive")
	}
	k.rec.mu.Lock()
	ll.Revoked = time.Now().UnixNano()
	k.rec.mu.Unlock()
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := k.cli.Revoke(ctx, clientv3.LeaseID(ll.ID))
	if err != nil {
		k.ended(ll, 0)
		return err
	}
	k.ended(ll, resp.Header.Revision)
	return nil
}
