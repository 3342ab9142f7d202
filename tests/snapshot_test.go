package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSnapshotsBoundTheWAL: with a small --snapshot-count and small WAL
// segments, the WAL is released behind the backend as writes go on, so the
// number of segment files stays small; a restart replays from the snapshot
// point and every write is still there.
func TestSnapshotsBoundTheWAL(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	cfg.SnapshotCount = 200
	cfg.WALSegmentBytes = 64 << 10
	cfg.BackendCommitInterval = 0 // default; snapshots follow backend commits
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", 200)
	const rounds, perRound = 3, 1500
	for round := 0; round < rounds; round++ {
		m, err := bootstrap.Start(cfg, zerolog.Nop())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c := newClient(t, m.ClientAddrs()...)
		if round > 0 {
			g, err := c.Get(ctxT(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if g.Count != int64(round*perRound) || g.Header.Revision != int64(round*perRound+1) {
				t.Fatalf("after restart %d: %d keys at revision %d, want %d at %d", round, g.Count, g.Header.Revision, round*perRound, round*perRound+1)
			}
		}
		for i := 0; i < perRound; i++ {
			if _, err := c.Put(ctxT(t), fmt.Sprintf("k%d-%05d", round, i), value); err != nil {
				t.Fatal(err)
			}
		}
		// Segments written for this round: ~perRound*250 B / 64 KiB ≈ 6.
		// Without release they would accumulate across rounds.
		segs := walSegments(t, dir)
		c.Close()
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		if len(segs) > 6 {
			t.Fatalf("round %d: %d WAL segments remain; the WAL is not released behind snapshots", round, len(segs))
		}
		t.Logf("round %d: %d WAL segments", round, len(segs))
	}
}
