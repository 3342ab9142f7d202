package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/bootstrap"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestRestartKeepsData stops a member cleanly and starts it again on the
// same data dir: data, revisions and compaction survive, and the member
// leaves no goroutine behind.
func TestRestartKeepsData(t *testing.T) {
	checkNoGoroutineLeak(t)
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	m, err := bootstrap.Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m.ClientAddrs()...)
	seed(t, c, "a", "1", "b", "2", "a", "3")
	if _, err := c.Compact(ctxT(t), 3); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m, err = bootstrap.Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	c = newClient(t, m.ClientAddrs()...)
	g, err := c.Get(ctxT(t), "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if got := kvOf(t, g.Kvs); got != "a=3 c2 m4 v2 l0; b=2 c3 m3 v1 l0" || g.Header.Revision != 4 {
		t.Fatalf("after restart: %s rev %d", got, g.Header.Revision)
	}
	if _, err := c.Get(ctxT(t), "a", clientv3.WithRev(2)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("compaction lost on restart: %v", err)
	}
	p, err := c.Put(ctxT(t), "c", "5")
	if err != nil || p.Header.Revision != 5 {
		t.Fatalf("put after restart: %v rev %v", err, p)
	}
	c.Close()
}

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segments in %s: %v", dir, err)
	}
	return segs
}

// TestCorruptWALRefusesToStart flips a byte inside an early WAL record: the
// member must refuse to start with an error naming the file and offset.
func TestCorruptWALRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	writeAndStop(t, cfg, slices.Repeat([]string{"key", strings.Repeat("v", 100)}, 20)...)
	seg := walSegments(t, dir)[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte in the middle of the written data (well before the tail).
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	b[end/2] ^= 0x40
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = bootstrap.Start(cfg, zerolog.Nop())
	if err == nil {
		t.Fatal("member started on a corrupt WAL")
	}
	var ce *wal.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), filepath.Base(seg)) {
		t.Fatalf("error does not name the corrupt segment: %v", err)
	}
	t.Logf("refused: %v", err)
}

// TestCorruptBackendRefusesToStart overwrites the bbolt file with garbage.
func TestCorruptBackendRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	writeAndStop(t, cfg)
	db := filepath.Join(dir, "member", "snap", "db")
	if err := os.WriteFile(db, []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.Start(cfg, zerolog.Nop()); err == nil {
		t.Fatal("member started on a garbage backend")
	} else {
		t.Logf("refused: %v", err)
	}
}

// TestDataDirOfAnotherMember refuses a data dir created by another member.
func TestDataDirOfAnotherMember(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	writeAndStop(t, cfg)
	cfg.InitialClusterToken = "other-cluster"
	cfg.InitialCluster = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.Start(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "belongs to member") {
		t.Fatalf("started on another member's data dir: %v", err)
	}
}

// TestLostCommittedEntriesRefusesToStart: a WAL whose hard state has an
// index committed that its log no longer holds (entries lost from the tail
// of a log that had made them durable) is refused at start, not served.
func TestLostCommittedEntriesRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cfg := memberConfig(t, dir)
	writeAndStop(t, cfg, slices.Repeat([]string{"key", "v"}, 5)...)
	w, replay, err := wal.Open(filepath.Join(dir, "member", "wal"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	last := replay.Entries[len(replay.Entries)-1].Index
	hs := &messages.HardState{Term: replay.HardState.Term, Vote: replay.HardState.Vote, Commit: last + 3}
	if err := w.Save(hs, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = bootstrap.Start(cfg, zerolog.Nop())
	want := fmt.Sprintf("the WAL's hard state has index %d committed but the log ends at %d", last+3, last)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Start on a log missing committed entries = %v, want an error with %q", err, want)
	}
}

// writeAndStop starts a member on cfg, puts kvs (key, value, key, value,
// ...) through it one by one and stops it cleanly: a data dir to restart
// on.
func writeAndStop(t *testing.T, cfg bootstrap.Config, kvs ...string) {
	t.Helper()
	m, err := bootstrap.Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m.ClientAddrs()...)
	seed(t, c, kvs...)
	c.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
}
