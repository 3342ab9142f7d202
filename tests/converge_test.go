package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// endpoint is one member as the convergence checks address it: its name,
// client address and member ID.
type endpoint struct {
	name, addr string
	id         uint64
}

func endpointNames(eps []endpoint) string {
	var out []string
	for _, e := range eps {
		out = append(out, e.name)
	}
	return strings.Join(out, ",")
}

// waitConvergedAt waits until serializable reads of prefix on every
// endpoint return the same store revision and the same keys with the same
// values and mod_revisions, and returns that revision and each key's
// mod_revision.
func waitConvergedAt(t testing.TB, timeout time.Duration, prefix string, eps []endpoint) (int64, map[string]int64) {
	t.Helper()
	clis := make([]*clientv3.Client, len(eps))
	for i, e := range eps {
		clis[i] = newClient(t, e.addr)
	}
	defer func() {
		for _, cli := range clis {
			cli.Close()
		}
	}()
	deadline := time.Now().Add(timeout)
	for {
		rev, keys, diff := compareSerializable(clis, eps, prefix)
		if diff == "" {
			return rev, keys
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %s did not converge within %v: %s", endpointNames(eps), timeout, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// compareSerializable reads prefix serializably through clis[i] (the
// client of eps[i]) and describes the first difference, or returns "" with
// the common revision and mod_revisions.
func compareSerializable(clis []*clientv3.Client, eps []endpoint, prefix string) (int64, map[string]int64, string) {
	var rev int64
	var first map[string]string
	var modRevs map[string]int64
	for i, cli := range clis {
		ctx, cancel := reqCtx()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		cancel()
		if err != nil {
			return 0, nil, fmt.Sprintf("%s: serializable get: %v", eps[i].name, err)
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = fmt.Sprintf("%q@%d", kv.Value, kv.ModRevision)
		}
		if i == 0 {
			rev, first, modRevs = resp.Header.Revision, got, map[string]int64{}
			for _, kv := range resp.Kvs {
				modRevs[string(kv.Key)] = kv.ModRevision
			}
			continue
		}
		if resp.Header.Revision != rev || len(got) != len(first) {
			return 0, nil, fmt.Sprintf("%s at revision %d with %d keys, %s at revision %d with %d keys",
				eps[0].name, rev, len(first), eps[i].name, resp.Header.Revision, len(got))
		}
		for k, v := range first {
			if got[k] != v {
				return 0, nil, fmt.Sprintf("key %s: %s on %s, %s on %s", k, v, eps[0].name, got[k], eps[i].name)
			}
		}
	}
	return rev, modRevs, ""
}

// checkHashKVAt compares HashKV at revision rev on every endpoint and checks
// that each answers with its own member ID.
func checkHashKVAt(t testing.TB, rev int64, eps []endpoint) {
	t.Helper()
	var addrs []string
	for _, e := range eps {
		addrs = append(addrs, e.addr)
	}
	cli := newClient(t, addrs...)
	defer cli.Close()
	var first *clientv3.HashKVResponse
	var firstName string
	for _, e := range eps {
		ctx, cancel := reqCtx()
		h, err := cli.HashKV(ctx, e.addr, rev)
		cancel()
		if err != nil {
			t.Errorf("%s: HashKV(%d): %v", e.name, rev, err)
			continue
		}
		if h.Header.MemberId != e.id {
			t.Errorf("%s: HashKV answered with member_id %x, want %x", e.name, h.Header.MemberId, e.id)
		}
		t.Logf("%s: HashKV(%d) = hash %d, compact_revision %d, hash_revision %d", e.name, rev, h.Hash, h.CompactRevision, h.HashRevision)
		if first == nil {
			first, firstName = h, e.name
			continue
		}
		if h.Hash != first.Hash || h.HashRevision != first.HashRevision || h.CompactRevision != first.CompactRevision {
			t.Errorf("HashKV(%d) differs: %s hash %d (hash_revision %d, compact %d), %s hash %d (hash_revision %d, compact %d)",
				rev, firstName, first.Hash, first.HashRevision, first.CompactRevision, e.name, h.Hash, h.HashRevision, h.CompactRevision)
		}
	}
}
