package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type watchConfig struct {
	endpoint string
	watchers int
	streams  int
	conns    int
	prefix   bool
	putRate  int
	puts     int
	valSize  int
	settle   time.Duration
	pid      int
}

// runWatch opens --watchers watchers over --streams watch streams (one
// clientv3 Watcher each, spread over --conns connections) on one member,
// all on one key (or, with --prefix, on one prefix whose keys the puts
// cycle through), then puts --puts values at --put-rate per second from
// one more client to the same member. The delivery latency of an event is
// the time a watcher received it minus the time its put's response
// returned (the commit as the client sees it; 0 if the event came first,
// as etcd's watch-latency does). Memory per watcher is the member's VmRSS
// after the watchers were created and --settle passed, minus its VmRSS
// before, divided by the watchers.
func runWatch(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("aetcd-bench watch", flag.ContinueOnError)
	var cfg watchConfig
	fs.StringVar(&cfg.endpoint, "endpoint", "127.0.0.1:2379", "the member's client endpoint (host:port); watchers and puts both use it")
	fs.IntVar(&cfg.watchers, "watchers", 10000, "watchers in all")
	fs.IntVar(&cfg.streams, "streams", 100, "watch streams the watchers are spread over")
	fs.IntVar(&cfg.conns, "conns", 10, "gRPC connections the streams are spread over")
	fs.BoolVar(&cfg.prefix, "prefix", false, "watch a prefix (puts cycle over 100 keys under it) instead of one key")
	fs.IntVar(&cfg.putRate, "put-rate", 100, "puts per second")
	fs.IntVar(&cfg.puts, "puts", 1000, "puts in all")
	fs.IntVar(&cfg.valSize, "val-size", 32, "value size in bytes")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "wait after the watchers are created before reading the member's RSS")
	fs.IntVar(&cfg.pid, "pid", 0, "pid of the member process, for VmRSS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.watchers <= 0 || cfg.streams <= 0 || cfg.conns <= 0 || cfg.putRate <= 0 || cfg.puts <= 0 {
		return errors.New("--watchers, --streams, --conns, --put-rate and --puts must be positive")
	}
	r, err := watchRow(ctx, cfg)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "on\twatchers\tstreams\tputs/s\tcreate s\tRSS0 MiB\tRSS1 MiB\tKiB/watcher\tRSS max MiB\tdelivered\tmissing\tout of order\tp50 ms\tp99 ms\tmax ms\tput p50 ms\tput p99 ms\t")
	on := "key"
	if cfg.prefix {
		on = "prefix"
	}
	fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", on, cfg.watchers, cfg.streams,
		r.putRate, r.create.Seconds(), mib(r.rss0), mib(r.rss1), r.perWatcher, mib(r.rssMax), r.delivered, r.missing, r.outOfOrder,
		ms(r.p50), ms(r.p99), ms(r.max), ms(r.put50), ms(r.put99))
	return tw.Flush()
}

func mib(kib int64) string {
	if kib <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(kib)/1024)
}

type watchResult struct {
	create                      time.Duration
	rss0, rss1, rssMax          int64
	perWatcher                  string
	putRate                     float64
	delivered, missing          int
	outOfOrder                  int
	p50, p99, max, put50, put99 time.Duration
}

// watchEvent is what a watcher keeps of an event it received.
type watchEvent struct {
	rev int64
	at  time.Time
}

func watchRow(ctx context.Context, cfg watchConfig) (watchResult, error) {
	var r watchResult
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dial := func() (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{Endpoints: []string{cfg.endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	}
	putCli, err := dial()
	if err != nil {
		return r, fmt.Errorf("dial: %w", err)
	}
	defer putCli.Close()
	key := "watch-bench/key"
	watchKey, opts := key, []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if cfg.prefix {
		watchKey = "watch-bench/p/"
		opts = append(opts, clientv3.WithPrefix())
	}
	value := strings.Repeat("v", cfg.valSize)
	if _, err := putCli.Put(ctx, "watch-bench/warmup", value); err != nil {
		return r, fmt.Errorf("warm-up put: %w", err)
	}
	readRSS := func() int64 {
		if cfg.pid == 0 {
			return 0
		}
		kib, _ := rssKiB(cfg.pid)
		return kib
	}
	r.rss0 = readRSS()

	conns := make([]*clientv3.Client, min(cfg.conns, cfg.streams))
	for i := range conns {
		if conns[i], err = dial(); err != nil {
			return r, fmt.Errorf("dial: %w", err)
		}
		defer conns[i].Close()
	}
	events := make([][]watchEvent, cfg.watchers)
	var created, done sync.WaitGroup
	var createErr atomic.Value
	createStart := time.Now()
	for s := 0; s < cfg.streams; s++ {
		w := clientv3.NewWatcher(conns[s%len(conns)])
		defer w.Close()
		for i := s; i < cfg.watchers; i += cfg.streams {
			created.Add(1)
			done.Add(1)
			wch := w.Watch(ctx, watchKey, opts...)
			evs := make([]watchEvent, 0, cfg.puts)
			go func() {
				defer done.Done()
				first := true
				for resp := range wch {
					now := time.Now()
					if first {
						first = false
						created.Done()
						if !resp.Created {
							createErr.Store(fmt.Errorf("watcher %d: first response is not the creation", i))
						}
					}
					if err := resp.Err(); err != nil {
						createErr.Store(fmt.Errorf("watcher %d: %w", i, err))
						break
					}
					for _, ev := range resp.Events {
						evs = append(evs, watchEvent{rev: ev.Kv.ModRevision, at: now})
					}
					if len(evs) >= cfg.puts {
						break
					}
				}
				events[i] = evs
				if first {
					created.Done()
				}
			}()
		}
	}
	created.Wait()
	r.create = time.Since(createStart)
	if err, _ := createErr.Load().(error); err != nil {
		return r, err
	}
	time.Sleep(cfg.settle)
	r.rss1 = readRSS()
	r.perWatcher = "-"
	if r.rss0 > 0 && r.rss1 > 0 {
		r.perWatcher = fmt.Sprintf("%.1f", float64(r.rss1-r.rss0)/float64(cfg.watchers))
	}

	// The put stream, at a fixed rate; RSS sampled every 200 ms meanwhile.
	putEnd := make(map[int64]time.Time, cfg.puts)
	putLat := make([]time.Duration, 0, cfg.puts)
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			r.rssMax = max(r.rssMax, readRSS())
			select {
			case <-t.C:
			case <-stopSampling:
				return
			}
		}
	}()
	putStart := time.Now()
	interval := time.Second / time.Duration(cfg.putRate)
	for i := 0; i < cfg.puts; i++ {
		if d := time.Until(putStart.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		k := key
		if cfg.prefix {
			k = fmt.Sprintf("%s%02d", watchKey, i%100)
		}
		t := time.Now()
		resp, err := putCli.Put(ctx, k, value)
		if err != nil {
			return r, fmt.Errorf("put: %w", err)
		}
		end := time.Now()
		putLat = append(putLat, end.Sub(t))
		putEnd[resp.Header.Revision] = end
	}
	r.putRate = float64(cfg.puts) / time.Since(putStart).Seconds()
	allDone := make(chan struct{})
	go func() { done.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		cancel() // the watchers that still wait end with what they have
		<-allDone
	}
	close(stopSampling)
	sampling.Wait()

	var lat []time.Duration
	for _, evs := range events {
		var last int64
		for _, ev := range evs {
			if ev.rev <= last {
				r.outOfOrder++
			}
			last = ev.rev
			end, ok := putEnd[ev.rev]
			if !ok {
				r.outOfOrder++ // an event no put of ours made
				continue
			}
			lat = append(lat, max(ev.at.Sub(end), 0))
		}
		r.delivered += len(evs)
		r.missing += max(cfg.puts-len(evs), 0)
	}
	r.p50, r.p99, r.max = quantiles(lat)
	r.put50, r.put99, _ = quantiles(putLat)
	return r, nil
}
