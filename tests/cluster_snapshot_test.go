package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Snapshot transfer: a follower that was down while the leader compacted
// its log past the follower's last entry catches up from a snapshot of the
// leader's backend.

const (
	snapSentMsg      = "snapshot transfer finished"
	snapInstalledMsg = "snapshot installed: backend replaced"
	snapPersistMsg   = "snapshot from the leader: persisting"
	snapReceivedMsg  = "snapshot received and verified"
	snapRecoveredMsg = "finished installing a received snapshot interrupted by a crash"
)

// keyPad lengthens the keys (and values, which repeat them) so the backend
// spans several snapshot chunks and more than the sender's window.
var keyPad = strings.Repeat("p", 500)

// writeKeys puts n keys prefix+i+keyPad (i from first) through cli with 32
// concurrent clients, failing the test on any error.
func writeKeys(t *testing.T, cli *clientv3.Client, load *putLoad, prefix string, first, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	keyc := make(chan string, n)
	for i := first; i < first+n; i++ {
		keyc <- fmt.Sprintf("%s%05d-%s", prefix, i, keyPad)
	}
	close(keyc)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keyc {
				if err := load.put(context.Background(), cli, key, reqTimeout); err != nil {
					errc <- fmt.Errorf("put %s: %w", key, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("writing: %v (and %d more)", err, len(errc))
	}
}

// waitKeys waits until a serializable get of prefix on m returns n keys.
func (c *testCluster) waitKeys(m *clusterMember, prefix string, n int, timeout time.Duration) {
	c.t.Helper()
	cli := c.client(m)
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := reqCtx()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		cancel()
		if err == nil && resp.Count == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d of %d keys at revision %d", resp.Count, n, resp.Header.Revision)
			}
			c.t.Fatalf("%s did not catch up within %v: %v", m.name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logOf returns the output of m's current (or last) incarnation.
func (m *clusterMember) logOf() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs[len(m.logs)-1].String()
}

// logLines returns the lines of m's current incarnation's log that
// contain substr.
func (m *clusterMember) logLines(substr string) []string {
	var out []string
	for _, l := range strings.Split(m.logOf(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func TestClusterSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	const (
		prefix = "snap/"
		n      = 8000
	)
	start := time.Now()
	c := startCluster(t, 3, "--snapshot-count", "100", "--wal-segment-size", "65536")
	leader := c.waitLeader(2*time.Second, c.members...)
	f := c.others(leader)[0]
	c.kill9(f)
	t.Logf("killed follower %s; leader is %s", f.name, leader.name)

	cli := c.client(c.others(f)...)
	defer cli.Close()
	load := newPutLoad()
	writeAt := time.Now()
	writeKeys(t, cli, load, prefix, 0, n)
	t.Logf("%d puts with %s down in %v", n, f.name, time.Since(writeAt).Round(time.Millisecond))

	restartAt := time.Now()
	c.restart(f)
	c.waitKeys(f, prefix, n, 30*time.Second)
	t.Logf("%s caught up %v after the restart", f.name, time.Since(restartAt).Round(time.Millisecond))
	if !strings.Contains(f.logOf(), snapInstalledMsg) {
		t.Errorf("%s caught up without installing a snapshot (log lacks %q)", f.name, snapInstalledMsg)
	}
	sent := false
	for _, m := range c.others(f) {
		sent = sent || strings.Contains(m.logOf(), snapSentMsg)
		for _, l := range m.logLines("snapshot transfer") {
			t.Logf("%s: %s", m.name, l)
		}
	}
	if !sent {
		t.Errorf("no member logged %q", snapSentMsg)
	}
	rev, _ := c.waitConverged(10*time.Second, prefix, c.members...)
	c.checkAcked(prefix, load.acked, c.members...)
	c.checkHashKV(rev, c.members...)
	if t.Failed() {
		return
	}

	// Again, and SIGKILL the follower as soon as it has received the
	// snapshot: the kill lands before, between or after the WAL marker and
	// the backend swap; every case must restart and catch up.
	c.kill9(f)
	writeKeys(t, cli, load, prefix, n, n)
	c.spawn(f)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(f.logOf(), snapReceivedMsg) {
		if time.Now().After(deadline) {
			t.Fatalf("%s received no snapshot within 30s", f.name)
		}
		time.Sleep(time.Millisecond)
	}
	c.kill9(f)
	log := f.logOf()
	phase := "after receiving, before the WAL marker"
	switch {
	case strings.Contains(log, snapInstalledMsg):
		phase = "after the backend swap"
	case strings.Contains(log, snapPersistMsg):
		phase = "after asking the WAL for the marker, before the backend swap"
	}
	t.Logf("killed %s again %s", f.name, phase)
	c.restart(f)
	if strings.Contains(f.logOf(), snapRecoveredMsg) {
		t.Logf("%s completed the interrupted install at startup", f.name)
	}
	c.waitKeys(f, prefix, 2*n, 30*time.Second)
	rev, _ = c.waitConverged(10*time.Second, prefix, c.members...)
	c.checkAcked(prefix, load.acked, c.members...)
	c.checkHashKV(rev, c.members...)
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}
