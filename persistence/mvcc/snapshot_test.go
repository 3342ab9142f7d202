package mvcc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
)

// snapshotOf writes a snapshot of h's store to a file next to it.
func snapshotOf(t *testing.T, h *harness, name string) string {
	t.Helper()
	sn, err := h.s.OpenSnapshot()
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	if err != nil || n != sn.Size() {
		t.Fatalf("WriteTo: %d bytes of %d, %v", n, sn.Size(), err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestoreReplacesData(t *testing.T) {
	src := newHarness(t)
	for i := 0; i < 50; i++ {
		src.put("k"+string(rune('a'+i%26)), "v")
	}
	src.del("ka", "")
	src.mustOK(src.compact(20))
	src.put("new", "x")
	snap := snapshotOf(t, src, "db.snap")
	if ci, err := mvcc.Verify(snap); err != nil || ci != src.idx {
		t.Fatalf("Verify = %d, %v; want %d", ci, err, src.idx)
	}

	dst := newHarness(t)
	dst.put("old", "1")
	dst.put("only-here", "2")
	old := dst.s.View()
	oldResp := dst.rng(&messages.RangeRequest{Key: b("old")})
	if err := dst.s.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot file still there after Restore: %v", err)
	}
	if got, want := dst.s.ConsistentIndex(), src.idx; got != want {
		t.Fatalf("consistent index %d, want %d", got, want)
	}
	if dst.s.Rev() != src.s.Rev() || dst.s.CompactRev() != src.s.CompactRev() {
		t.Fatalf("rev/compact %d/%d, want %d/%d", dst.s.Rev(), dst.s.CompactRev(), src.s.Rev(), src.s.CompactRev())
	}
	all := &messages.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00")}
	equalKVs(t, "all keys", dst.rng(all).Kvs, src.rng(all).Kvs)
	if dst.get("only-here") != nil {
		t.Fatal("key of the replaced store survived Restore")
	}
	wantErr(t, "range below compaction", dst.rangeErr(&messages.RangeRequest{Key: b("kb"), Revision: 5}), rpcerr.Compacted)
	h1, _, _, e1 := src.s.HashKV(0)
	h2, _, _, e2 := dst.s.HashKV(0)
	if e1 != nil || e2 != nil || h1 != h2 {
		t.Fatalf("HashKV %d (%v) vs %d (%v)", h1, e1, h2, e2)
	}

	// A view published before Restore answers what it answered, or Stopped.
	resp, e := old.Range(&messages.RangeRequest{Key: b("old")})
	if e != nil && !rpcerr.Is(e, rpcerr.Stopped) {
		t.Fatalf("old view: %v", e)
	}
	if e == nil {
		equalKVs(t, "old view", resp.Kvs, oldResp.Kvs)
	}

	// The store goes on: writes continue from the snapshot's index and
	// revision, and survive a reopen.
	dst.idx = dst.s.ConsistentIndex()
	pr := dst.put("after", "y")
	if pr.Header.Revision != src.s.Rev()+1 {
		t.Fatalf("put after Restore at revision %d, want %d", pr.Header.Revision, src.s.Rev()+1)
	}
	dst.reopen()
	if dst.get("after") == nil || dst.get("new") == nil {
		t.Fatal("data lost across reopen after Restore")
	}
}

// TestVerifyRefusesDamagedBuckets: files in which a few bytes of the
// "lease" bucket's value differ from a sound file once made Verify recurse
// until the stack overflowed, or loop in a bbolt cursor while its memory
// grew: fatal errors no recover catches, or a member that never starts.
func TestVerifyRefusesDamagedBuckets(t *testing.T) {
	for _, tt := range []struct {
		name string
		// patch edits the value of the "lease" bucket, which starts at
		// data[at:] on a page of pageSize bytes.
		patch func(data []byte, at, pageSize int)
	}{
		{"bucket nested in itself", func(data []byte, at, pageSize int) {
			// The root page ID (0 while the bucket is inline) becomes the
			// page holding the bucket.
			binary.LittleEndian.PutUint64(data[at:], uint64(at/pageSize))
		}},
		{"inline page marked as a branch leading to itself", func(data []byte, at, pageSize int) {
			// The inline page follows the 16-byte bucket header: flags
			// at 8 become a branch's, and its one element (16 bytes after
			// the page header) points to page 0, which for an inline
			// bucket is its own page.
			page := data[at+16:]
			binary.LittleEndian.PutUint16(page[8:], 0x01)
			binary.LittleEndian.PutUint64(page[16+8:], 0)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("a", "1")
			h.grant(7, 60)
			data, err := os.ReadFile(snapshotOf(t, h, "db.snap"))
			if err != nil {
				t.Fatal(err)
			}
			pageSize := int(binary.LittleEndian.Uint32(data[24:])) // meta page 0: header, magic, version, page size
			patched := 0
			for at := 0; ; {
				i := bytes.Index(data[at:], []byte("lease"))
				if i < 0 {
					break
				}
				at += i + len("lease")
				// An inline bucket with one record: root page 0, and a
				// page of one element.
				if binary.LittleEndian.Uint64(data[at:]) == 0 && binary.LittleEndian.Uint16(data[at+16+10:]) == 1 {
					tt.patch(data, at, pageSize)
					patched++
				}
			}
			if patched == 0 {
				t.Fatal("no inline lease bucket found to patch")
			}
			bad := filepath.Join(t.TempDir(), "db.snap")
			if err := os.WriteFile(bad, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := mvcc.Verify(bad); !errors.Is(err, mvcc.ErrCorrupt) {
				t.Fatalf("Verify = %v, want ErrCorrupt", err)
			}
			if s, err := mvcc.Open(bad, mvcc.Options{}); !errors.Is(err, mvcc.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestRestoreRefusesGarbage(t *testing.T) {
	dst := newHarness(t)
	dst.put("keep", "1")
	bad := filepath.Join(t.TempDir(), "db.snap")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mvcc.Verify(bad); !errors.Is(err, mvcc.ErrCorrupt) {
		t.Fatalf("Verify(garbage) = %v, want ErrCorrupt", err)
	}
	if err := dst.s.Restore(bad); !errors.Is(err, mvcc.ErrCorrupt) {
		t.Fatalf("Restore(garbage) = %v, want ErrCorrupt", err)
	}
	if dst.get("keep") == nil {
		t.Fatal("store changed by a refused Restore")
	}
	dst.put("more", "2")
	if err := dst.s.Commit(); err != nil {
		t.Fatalf("Commit after refused Restore: %v", err)
	}
}
