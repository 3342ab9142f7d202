package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// keepAliveLoopInterval is how often a client sends the keep-alives that
// are due: clientv3's retryConnWait (sendKeepAliveLoop wakes every 500 ms).
const keepAliveLoopInterval = 500 * time.Millisecond

type leasesConfig struct {
	endpoints []string
	leases    int
	clients   int
	// grantConcurrency bounds the grants in flight.
	grantConcurrency int
	ttl              int64
	duration         time.Duration
	sample           int
	prefix           string
	pids             []int
}

// runLeases grants --leases leases (one key each) from --clients clients,
// keeps every one alive for --duration while a watcher checks that no key
// is deleted, then stops keeping alive --sample of them and measures how
// long after its expected expiry (last keep-alive ack + TTL) the watcher
// sees each key's DELETE.
//
// Keep-alives follow clientv3's Lease.KeepAlive on the wire: one
// LeaseKeepAlive stream per client carrying all its leases; a loop sends
// every 500 ms the keep-alives that are due; a lease is due again TTL/3
// after its ack (and is re-sent every 500 ms until acknowledged). They are
// sent on raw streams (over the clientv3 client's connection) rather than
// through Lease.KeepAlive so the bench knows the exact send and ack times
// of every keep-alive, and so that stopping a lease never drops an ack in
// flight.
func runLeases(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("aetcd-bench leases", flag.ContinueOnError)
	var endpoints, pids string
	var cfg leasesConfig
	fs.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated client endpoints; client i uses endpoint i mod n; the watcher uses the first")
	fs.IntVar(&cfg.leases, "leases", 100000, "leases to grant, one key each")
	fs.IntVar(&cfg.clients, "clients", 1000, "clients (one gRPC connection and one keep-alive stream each); leases are spread over them")
	fs.IntVar(&cfg.grantConcurrency, "grant-concurrency", 100, "grants (each followed by its put) in flight at once")
	fs.Int64Var(&cfg.ttl, "ttl", 10, "lease TTL in seconds")
	fs.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long all leases are kept alive after the last grant")
	fs.IntVar(&cfg.sample, "sample", 1000, "leases no longer kept alive at the end, to measure expiry jitter")
	fs.StringVar(&cfg.prefix, "prefix", "lease-bench/", "key prefix")
	fs.StringVar(&pids, "pids", "", "comma-separated pids of the member processes, for VmRSS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.endpoints = strings.Split(endpoints, ",")
	var err error
	if cfg.pids, err = parsePids(pids); err != nil {
		return err
	}
	if cfg.leases <= 0 || cfg.clients <= 0 || cfg.ttl <= 0 || cfg.grantConcurrency <= 0 || cfg.sample < 0 || cfg.sample > cfg.leases {
		return errors.New("--leases, --clients and --ttl must be positive, --sample within [0, leases]")
	}
	b := &leaseBench{cfg: cfg, out: out, lost: map[int64]time.Time{}}
	return b.run(ctx)
}

type leaseBench struct {
	cfg     leasesConfig
	out     io.Writer
	clients []*kaClient
	watcher *clientv3.Client

	mu sync.Mutex
	// deleted: DELETE events seen, by lease id (from the key).
	deleted map[int64]time.Time
	// lost: DELETEs or TTL-0 answers of leases still kept alive.
	lost map[int64]time.Time
	// sampled: leases no longer kept alive.
	sampled map[int64]bool
}

// kaClient is one client: a connection, its keep-alive stream and the
// clocks of its leases.
type kaClient struct {
	b   *leaseBench
	cli *clientv3.Client
	lc  pb.LeaseClient

	mu     sync.Mutex
	leases map[int64]*kaLease
	// latencies and counts since the last resetAckStats.
	latencies  []time.Duration
	ackCount   int
	sendCount  int
	streamErrs int
	lastErr    error
}

type kaLease struct {
	next        time.Time // next keep-alive due
	pendingFrom time.Time // first unacknowledged send; zero if none
	lastAck     time.Time
	stop        bool // stop after the next ack
	stopped     bool
	gone        bool // answered TTL 0
}

func (b *leaseBench) run(ctx context.Context) error {
	cfg := b.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rss0 := rssMiB(cfg.pids)

	// Connections: dialled in parallel, 50 at a time.
	b.clients = make([]*kaClient, cfg.clients)
	dialErr := make(chan error, cfg.clients)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range b.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cfg.endpoints[i%len(cfg.endpoints)]}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				dialErr <- err
				return
			}
			b.clients[i] = &kaClient{b: b, cli: cli, lc: pb.NewLeaseClient(cli.ActiveConnection()), leases: map[int64]*kaLease{}}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range b.clients {
			if c != nil {
				c.cli.Close()
			}
		}
	}()
	select {
	case err := <-dialErr:
		return fmt.Errorf("dial: %w", err)
	default:
	}
	var err error
	b.watcher, err = clientv3.New(clientv3.Config{Endpoints: cfg.endpoints[:1], DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("dial watcher: %w", err)
	}
	defer b.watcher.Close()
	b.deleted = map[int64]time.Time{}
	b.sampled = map[int64]bool{}
	watchReady := make(chan struct{})
	watchErr := make(chan error, 1)
	go b.watchDeletes(ctx, watchReady, watchErr)
	select {
	case <-watchReady:
	case err := <-watchErr:
		return err
	}
	for _, c := range b.clients {
		go c.keepAlive(ctx)
	}

	// Grants: every client grants its share, one at a time, at most
	// --grant-concurrency at once, and puts a key on each lease; a lease is
	// kept alive from its grant on. A failed grant or put is retried after
	// 100 ms, up to 20 times (then the bench fails).
	grantLat := make([][]time.Duration, cfg.clients)
	putLat := make([][]time.Duration, cfg.clients)
	errs := make([]error, cfg.clients)
	var retries atomic.Int64
	var lastRetryErr atomic.Value
	retry := func(op func() error) error {
		var err error
		for range 20 {
			if err = op(); err == nil || ctx.Err() != nil {
				return err
			}
			retries.Add(1)
			lastRetryErr.Store(err)
			time.Sleep(100 * time.Millisecond)
		}
		return err
	}
	grantSem := make(chan struct{}, cfg.grantConcurrency)
	grantStart := time.Now()
	for i, c := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < cfg.leases; j += cfg.clients {
				grantSem <- struct{}{}
				var g *clientv3.LeaseGrantResponse
				err := retry(func() (err error) {
					t := time.Now()
					if g, err = c.cli.Grant(ctx, cfg.ttl); err == nil {
						grantLat[i] = append(grantLat[i], time.Since(t))
					}
					return err
				})
				if err != nil {
					<-grantSem
					errs[i] = fmt.Errorf("grant: %w", err)
					return
				}
				now := time.Now()
				c.mu.Lock()
				c.leases[int64(g.ID)] = &kaLease{next: now, lastAck: now}
				c.mu.Unlock()
				err = retry(func() error {
					t := time.Now()
					_, err := c.cli.Put(ctx, b.key(int64(g.ID)), "x", clientv3.WithLease(g.ID))
					if err == nil {
						putLat[i] = append(putLat[i], time.Since(t))
					}
					return err
				})
				<-grantSem
				if err != nil {
					errs[i] = fmt.Errorf("put with lease %x: %w", g.ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	grantElapsed := time.Since(grantStart)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	lastRetry, _ := lastRetryErr.Load().(error)
	rssGranted := rssMiB(cfg.pids)
	keysAfterGrants, err := b.countKeys(ctx)
	if err != nil {
		return err
	}

	// Steady state: every lease kept alive for the duration.
	grantAcks, grantSends, grantKaLat, grantStreamErrs, grantStreamErr := b.ackStats()
	b.resetAckStats()
	steadyStart := time.Now()
	select {
	case <-time.After(cfg.duration):
	case <-ctx.Done():
		return ctx.Err()
	}
	steadyElapsed := time.Since(steadyStart)
	acks, sends, kaLat, streamErrs, lastStreamErr := b.ackStats()
	b.resetAckStats()
	rssSteady := rssMiB(cfg.pids)
	keysAfterSteady, err := b.countKeys(ctx)
	if err != nil {
		return err
	}

	// Expiry: stop keeping alive every (leases/sample)-th lease after its
	// next ack; wait for their DELETEs up to 2 TTLs + 10 s after the stop.
	stopAt := time.Now()
	if cfg.sample > 0 {
		var ids []int64
		for _, c := range b.clients {
			c.mu.Lock()
			for _, id := range slices.Sorted(maps.Keys(c.leases)) {
				ids = append(ids, id)
			}
			c.mu.Unlock()
		}
		// Every (leases/sample)-th, in client order: spread over clients.
		every := len(ids) / cfg.sample
		b.mu.Lock()
		for i := 0; i < cfg.sample; i++ {
			b.sampled[ids[i*every]] = true
		}
		b.mu.Unlock()
		for _, c := range b.clients {
			c.mu.Lock()
			for i := 0; i < cfg.sample; i++ {
				if l := c.leases[ids[i*every]]; l != nil {
					l.stop = true
				}
			}
			c.mu.Unlock()
		}
	}
	waitUntil := stopAt.Add(2*time.Duration(cfg.ttl)*time.Second + 10*time.Second)
	for time.Now().Before(waitUntil) && b.sampleDeletes() < cfg.sample {
		time.Sleep(100 * time.Millisecond)
	}
	expiryElapsed := time.Since(stopAt)
	rssEnd := rssMiB(cfg.pids)

	// Jitter: DELETE seen − (last ack + TTL), for each sampled lease.
	var jitter []time.Duration
	var minJitter time.Duration
	notStopped, notDeleted := 0, 0
	ttl := time.Duration(cfg.ttl) * time.Second
	b.mu.Lock()
	for _, c := range b.clients {
		c.mu.Lock()
		for id, l := range c.leases {
			if !b.sampled[id] {
				continue
			}
			if !l.stopped {
				notStopped++
				continue
			}
			seen, ok := b.deleted[id]
			if !ok {
				notDeleted++
				continue
			}
			j := seen.Sub(l.lastAck.Add(ttl))
			if len(jitter) == 0 || j < minJitter {
				minJitter = j
			}
			jitter = append(jitter, j)
		}
		c.mu.Unlock()
	}
	lost := len(b.lost)
	var lostExample string
	for id, at := range b.lost {
		lostExample = fmt.Sprintf(" (e.g. lease %x at %s)", id, at.Format("15:04:05.000"))
		break
	}
	b.mu.Unlock()
	j50, j99, jmax := quantiles(jitter)
	ka50, ka99, _ := quantiles(kaLat)
	allGrants, allPuts := flatten(grantLat), flatten(putLat)
	g50, g99, _ := quantiles(allGrants)
	p50, p99, _ := quantiles(allPuts)

	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "leases\t%d (ttl %d s, %d clients over %d endpoints, one keep-alive stream each)\n", cfg.leases, cfg.ttl, cfg.clients, len(cfg.endpoints))
	fmt.Fprintf(tw, "grants/s (grant+put with lease)\t%.0f (%d in %.1f s)\n", float64(len(allGrants))/grantElapsed.Seconds(), len(allGrants), grantElapsed.Seconds())
	fmt.Fprintf(tw, "grant/put errors retried\t%d%s\n", retries.Load(), errSuffix(lastRetry))
	fmt.Fprintf(tw, "grant p50 / p99 ms\t%.2f / %.2f\n", ms(g50), ms(g99))
	fmt.Fprintf(tw, "put-with-lease p50 / p99 ms\t%.2f / %.2f\n", ms(p50), ms(p99))
	gka50, gka99, _ := quantiles(grantKaLat)
	fmt.Fprintf(tw, "keep-alives during grants: acks / sent\t%d / %d (p50 / p99 %.2f / %.2f ms, stream errors %d%s)\n",
		grantAcks, grantSends, ms(gka50), ms(gka99), grantStreamErrs, errSuffix(grantStreamErr))
	fmt.Fprintf(tw, "keys after grants / after steady\t%d / %d (want %d)\n", keysAfterGrants, keysAfterSteady, cfg.leases)
	fmt.Fprintf(tw, "keep-alive acks/s (steady, %.0f s)\t%.0f (sent %.0f/s)\n", steadyElapsed.Seconds(), float64(acks)/steadyElapsed.Seconds(), float64(sends)/steadyElapsed.Seconds())
	fmt.Fprintf(tw, "keep-alive p50 / p99 ms\t%.2f / %.2f\n", ms(ka50), ms(ka99))
	fmt.Fprintf(tw, "keep-alive stream errors\t%d%s\n", streamErrs, errSuffix(lastStreamErr))
	fmt.Fprintf(tw, "kept-alive leases lost (DELETE or TTL 0)\t%d%s\n", lost, lostExample)
	fmt.Fprintf(tw, "sample stopped / deleted / missing\t%d / %d / %d (in %.1f s)\n", cfg.sample-notStopped, len(jitter), notDeleted, expiryElapsed.Seconds())
	fmt.Fprintf(tw, "expiry jitter min / p50 / p99 / max ms\t%.0f / %.0f / %.0f / %.0f\n", ms(minJitter), ms(j50), ms(j99), ms(jmax))
	if len(cfg.pids) > 0 {
		fmt.Fprintf(tw, "member RSS MiB: start\t%s\n", strings.Join(rss0, " "))
		fmt.Fprintf(tw, "member RSS MiB: after grants\t%s\n", strings.Join(rssGranted, " "))
		fmt.Fprintf(tw, "member RSS MiB: end of steady\t%s\n", strings.Join(rssSteady, " "))
		fmt.Fprintf(tw, "member RSS MiB: end\t%s\n", strings.Join(rssEnd, " "))
	}
	return tw.Flush()
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (last: " + err.Error() + ")"
}

func flatten(xs [][]time.Duration) []time.Duration {
	var all []time.Duration
	for _, x := range xs {
		all = append(all, x...)
	}
	return all
}

// key is the key attached to lease id.
func (b *leaseBench) key(id int64) string { return fmt.Sprintf("%s%016x", b.cfg.prefix, id) }

func (b *leaseBench) countKeys(ctx context.Context) (int64, error) {
	r, err := b.watcher.Get(ctx, b.cfg.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return r.Count, nil
}

// watchDeletes records every DELETE under the prefix; one of a lease not
// in the sample is a lost lease.
func (b *leaseBench) watchDeletes(ctx context.Context, ready chan<- struct{}, fail chan<- error) {
	wch := b.watcher.Watch(ctx, b.cfg.prefix, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	first := true
	for resp := range wch {
		now := time.Now()
		if first {
			first = false
			close(ready)
		}
		if err := resp.Err(); err != nil {
			fail <- fmt.Errorf("watch: %w", err)
			return
		}
		b.mu.Lock()
		for _, ev := range resp.Events {
			if ev.Type != mvccpb.DELETE {
				continue
			}
			id, err := strconv.ParseInt(strings.TrimPrefix(string(ev.Kv.Key), b.cfg.prefix), 16, 64)
			if err != nil {
				continue
			}
			b.deleted[id] = now
			if !b.sampled[id] {
				b.lost[id] = now
			}
		}
		b.mu.Unlock()
	}
}

func (b *leaseBench) sampleDeletes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for id := range b.sampled {
		if _, ok := b.deleted[id]; ok {
			n++
		}
	}
	return n
}

func (b *leaseBench) resetAckStats() {
	for _, c := range b.clients {
		c.mu.Lock()
		c.latencies, c.ackCount, c.sendCount, c.streamErrs = c.latencies[:0], 0, 0, 0
		c.mu.Unlock()
	}
}

func (b *leaseBench) ackStats() (acks, sends int, lat []time.Duration, streamErrs int, lastErr error) {
	for _, c := range b.clients {
		c.mu.Lock()
		acks += c.ackCount
		sends += c.sendCount
		lat = append(lat, c.latencies...)
		streamErrs += c.streamErrs
		if c.lastErr != nil {
			lastErr = c.lastErr
		}
		c.mu.Unlock()
	}
	return acks, sends, lat, streamErrs, lastErr
}

// keepAlive runs the client's keep-alive stream until ctx ends, opening
// it again 500 ms after it fails (as clientv3 does).
func (c *kaClient) keepAlive(ctx context.Context) {
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := c.lc.LeaseKeepAlive(sctx)
		if err != nil {
			cancel()
			c.streamFailed(ctx, err)
			time.Sleep(keepAliveLoopInterval)
			continue
		}
		recvDone := make(chan error, 1)
		go func() { recvDone <- c.receive(stream) }()
		err = c.send(sctx, stream, recvDone)
		cancel()
		c.streamFailed(ctx, err)
		c.mu.Lock()
		for _, l := range c.leases {
			l.pendingFrom = time.Time{}
		}
		c.mu.Unlock()
		time.Sleep(keepAliveLoopInterval)
	}
}

func (c *kaClient) streamFailed(ctx context.Context, err error) {
	if ctx.Err() != nil || err == nil {
		return
	}
	c.mu.Lock()
	c.streamErrs++
	c.lastErr = err
	c.mu.Unlock()
}

// send sends the due keep-alives every 500 ms; it returns when the stream
// fails or the receiver stops.
func (c *kaClient) send(ctx context.Context, stream pb.Lease_LeaseKeepAliveClient, recvDone <-chan error) error {
	t := time.NewTicker(keepAliveLoopInterval)
	defer t.Stop()
	var due []int64
	for {
		now := time.Now()
		due = due[:0]
		c.mu.Lock()
		for id, l := range c.leases {
			if !l.stopped && !l.gone && l.next.Before(now) {
				due = append(due, id)
				if l.pendingFrom.IsZero() {
					l.pendingFrom = now
				}
			}
		}
		c.sendCount += len(due)
		c.mu.Unlock()
		for _, id := range due {
			if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
				return fmt.Errorf("keep-alive send: %w", err)
			}
		}
		select {
		case <-t.C:
		case err := <-recvDone:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// receive records each ack: the lease is due again TTL/3 later.
func (c *kaClient) receive(stream pb.Lease_LeaseKeepAliveClient) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("keep-alive recv: %w", err)
		}
		now := time.Now()
		c.mu.Lock()
		l := c.leases[resp.ID]
		if l == nil {
			c.mu.Unlock()
			continue
		}
		if resp.TTL <= 0 {
			lost := !l.gone && !l.stop
			l.gone = true
			c.mu.Unlock()
			if lost {
				c.b.mu.Lock()
				if _, ok := c.b.lost[resp.ID]; !ok {
					c.b.lost[resp.ID] = now
				}
				c.b.mu.Unlock()
			}
			continue
		}
		c.ackCount++
		if !l.pendingFrom.IsZero() {
			c.latencies = append(c.latencies, now.Sub(l.pendingFrom))
		}
		l.pendingFrom = time.Time{}
		l.lastAck = now
		l.next = now.Add(time.Duration(resp.TTL) * time.Second / 3)
		if l.stop {
			l.stopped = true
		}
		c.mu.Unlock()
	}
}
