package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rssKiB returns VmRSS of process pid in KiB, read from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("read rss: no VmRSS in /proc/%d/status", pid)
}

// rssMiB formats the RSS of each pid ("123 MiB"), "-" where unknown.
func rssMiB(pids []int) []string {
	out := make([]string, len(pids))
	for i, pid := range pids {
		kib, err := rssKiB(pid)
		if err != nil {
			out[i] = "-"
			continue
		}
		out[i] = fmt.Sprintf("%.0f", float64(kib)/1024)
	}
	return out
}

// parsePids parses a comma-separated list of process ids; "" is none.
func parsePids(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--pids: %q is not a process id", p)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// quantiles sorts ds and returns its p50, p99 and max (zeros if empty).
func quantiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)*50/100], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
}
