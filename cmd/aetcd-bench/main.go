// Command aetcd-bench drives an etcd-compatible endpoint (aetcd or etcd)
// through the etcd v3 gRPC API with N concurrent clients and prints a table
// of throughput and latency, plus WAL fdatasyncs per second and entries per
// fdatasync read from the server's /metrics (aetcd's aetcd_wal_* counters,
// or etcd's etcd_disk_wal_fsync_duration_seconds_count).
//
//	aetcd-bench --endpoints 127.0.0.1:2379 --op put --clients 1,8,64 --duration 10s
//
// Two subcommands measure leases and watches (see leases.go, watch.go):
//
//	aetcd-bench leases --endpoints a,b,c --leases 100000 --clients 1000 --ttl 10 --duration 60s
//	aetcd-bench watch --endpoints a --watchers 10000 --streams 100 --put-rate 100 --puts 1000
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type config struct {
	endpoints []string
	op        string
	clients   []int
	conns     int
	duration  time.Duration
	valSize   int
	keySpace  int
	metrics   string
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "aetcd-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "leases":
			return runLeases(ctx, args[1:], out)
		case "watch":
			return runWatch(ctx, args[1:], out)
		}
	}
	fs := flag.NewFlagSet("aetcd-bench", flag.ContinueOnError)
	var endpoints, clients string
	var cfg config
	fs.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated client endpoints (host:port)")
	fs.StringVar(&cfg.op, "op", "put", "put, range-l (linearizable range of one key) or range-s (serializable)")
	fs.StringVar(&clients, "clients", "1,8,64", "comma-separated numbers of concurrent clients, one row each")
	fs.IntVar(&cfg.conns, "conns", 0, "gRPC connections shared by the clients (default: one per client, at most 100)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long each row runs")
	fs.IntVar(&cfg.valSize, "val-size", 256, "value size in bytes")
	fs.IntVar(&cfg.keySpace, "key-space", 100000, "number of distinct keys")
	fs.StringVar(&cfg.metrics, "metrics-url", "", "server /metrics URL for fdatasync counts (default http://<first endpoint>/metrics)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.endpoints = strings.Split(endpoints, ",")
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			return fmt.Errorf("--clients: %q is not a positive number", c)
		}
		cfg.clients = append(cfg.clients, n)
	}
	if cfg.metrics == "" {
		cfg.metrics = "http://" + cfg.endpoints[0] + "/metrics"
	}
	switch cfg.op {
	case "put", "range-l", "range-s":
	default:
		return fmt.Errorf("--op must be put, range-l or range-s")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tclients\tconns\trequests\terrors\tthroughput/s\tp50 ms\tp99 ms\tfsyncs/s\tentries/fsync\t")
	for _, n := range cfg.clients {
		r, err := runRow(ctx, cfg, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.3f\t%.3f\t%s\t%s\t\n", cfg.op, n, r.conns, r.ok, r.errs,
			float64(r.ok)/r.elapsed.Seconds(), ms(r.p50), ms(r.p99), r.fsyncRate, r.perFsync)
		tw.Flush()
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type row struct {
	conns               int
	ok, errs            int
	elapsed             time.Duration
	p50, p99            time.Duration
	fsyncRate, perFsync string
}

func runRow(ctx context.Context, cfg config, n int) (row, error) {
	conns := cfg.conns
	if conns <= 0 {
		conns = min(n, 100)
	}
	cls := make([]*clientv3.Client, conns)
	for i := range cls {
		c, err := clientv3.New(clientv3.Config{Endpoints: cfg.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return row{}, err
		}
		defer c.Close()
		cls[i] = c
	}
	value := strings.Repeat("v", cfg.valSize)
	if cfg.op != "put" {
		if _, err := cls[0].Put(ctx, "bench-read", value); err != nil {
			return row{}, err
		}
	}
	before, beforeErr := scrape(cfg.metrics)
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	deadline := time.Now().Add(cfg.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := cls[i%conns]
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for time.Now().Before(deadline) {
				t := time.Now()
				var err error
				switch cfg.op {
				case "put":
					_, err = c.Put(ctx, fmt.Sprintf("bench-%08d", rng.IntN(cfg.keySpace)), value)
				case "range-l":
					_, err = c.Get(ctx, "bench-read")
				case "range-s":
					_, err = c.Get(ctx, "bench-read", clientv3.WithSerializable())
				}
				if err != nil {
					errs[i]++
					continue
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, afterErr := scrape(cfg.metrics)
	var all []time.Duration
	r := row{conns: conns, elapsed: elapsed, fsyncRate: "-", perFsync: "-"}
	for i := range lat {
		all = append(all, lat[i]...)
		r.errs += errs[i]
	}
	r.ok = len(all)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	if beforeErr == nil && afterErr == nil {
		if syncs := after.fsyncs - before.fsyncs; syncs > 0 {
			r.fsyncRate = fmt.Sprintf("%.0f", syncs/elapsed.Seconds())
			if after.entries > 0 {
				r.perFsync = fmt.Sprintf("%.1f", (after.entries-before.entries)/syncs)
			} else if cfg.op == "put" {
				r.perFsync = fmt.Sprintf("~%.1f", float64(r.ok)/syncs)
			}
		}
	}
	return r, nil
}

type counters struct{ fsyncs, entries float64 }

// scrape reads WAL counters from a Prometheus text endpoint.
func scrape(url string) (counters, error) {
	var c counters
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "aetcd_wal_fsyncs_total", "etcd_disk_wal_fsync_duration_seconds_count":
			c.fsyncs, found = f, true
		case "aetcd_wal_entries_total":
			c.entries = f
		}
	}
	if !found {
		return c, fmt.Errorf("no WAL fsync counter at %s", url)
	}
	return c, sc.Err()
}
