package mvcc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func TestReopenRestoresEverything(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.put("b", "1")
	h.put("a", "2")
	h.del("b", "")
	h.mustOK(h.compact(3))
	h.put("b", "2")
	h.put("c", "1")
	h.s.SetConsistentIndex(h.idx + 5)
	h.idx += 5
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	h.put("d", "1") // applied, not committed: Close commits it
	rev, ci := h.s.Rev(), h.s.ConsistentIndex()
	hash, _, _, _ := h.s.HashKV(0)
	var history [][]*messages.KeyValue
	for r := int64(3); r <= rev; r++ {
		history = append(history, h.rng(all(r)).Kvs)
	}
	h.reopen()
	if h.s.Rev() != rev || h.s.CompactRev() != 3 || h.s.ConsistentIndex() != ci || h.s.CommittedIndex() != ci || h.s.Pending() != 0 {
		t.Fatalf("after reopen: rev %d compact %d ci %d committed %d pending %d; want %d 3 %d %d 0",
			h.s.Rev(), h.s.CompactRev(), h.s.ConsistentIndex(), h.s.CommittedIndex(), h.s.Pending(), rev, ci, ci)
	}
	if got, _, _, _ := h.s.HashKV(0); got != hash {
		t.Fatalf("hash after reopen %x, want %x", got, hash)
	}
	for i, want := range history {
		equalKVs(t, "history", h.rng(all(int64(i)+3)).Kvs, want)
	}
	wantErr(t, "below compaction", h.rangeErr(all(2)), rpcerr.Compacted)
	// Writes continue with the next revision and version.
	if resp := h.put("a", "3"); resp.Header.Revision != rev+1 {
		t.Fatalf("next revision %d, want %d", resp.Header.Revision, rev+1)
	}
	equalKVs(t, "a", []*messages.KeyValue{h.get("a")}, []*messages.KeyValue{kv("a", "3", 2, rev+1, 3)})
}

// copyFile copies the database file as a crash would leave it: only what
// bbolt committed is in the file.
func copyFile(t *testing.T, from string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

func TestUncommittedWritesAreLostOnCrash(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1") // index 1
	h.put("b", "1") // index 2
	if h.s.Pending() != 2 {
		t.Fatalf("pending %d, want 2", h.s.Pending())
	}
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	if h.s.Pending() != 0 || h.s.CommittedIndex() != 2 {
		t.Fatalf("after commit: pending %d committed %d", h.s.Pending(), h.s.CommittedIndex())
	}
	h.put("c", "1")           // index 3
	h.del("a", "")            // index 4
	h.s.SetConsistentIndex(5) // index 5
	h.idx = 5
	if h.s.ConsistentIndex() != 5 || h.s.CommittedIndex() != 2 || h.s.Pending() != 3 {
		t.Fatalf("before crash: ci %d committed %d pending %d", h.s.ConsistentIndex(), h.s.CommittedIndex(), h.s.Pending())
	}
	// Readers already see the uncommitted writes.
	if got := keysOf(h.rng(all(0)).Kvs); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("published view: %q", got)
	}

	crashed, err := mvcc.Open(copyFile(t, h.path), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	if crashed.ConsistentIndex() != 2 || crashed.Rev() != 3 {
		t.Fatalf("after crash: ci %d rev %d, want 2 3", crashed.ConsistentIndex(), crashed.Rev())
	}
	resp, e := crashed.View().Range(all(0))
	if e != nil || len(resp.Kvs) != 2 || string(resp.Kvs[0].Key) != "a" || string(resp.Kvs[1].Key) != "b" {
		t.Fatalf("after crash: %v %v", resp, e)
	}
	// Replaying the lost entries gives the same state.
	crashed.Apply(3, putReq(&messages.PutRequest{Key: []byte("c"), Value: []byte("1")}))
	crashed.Apply(4, delReq(&messages.DeleteRangeRequest{Key: []byte("a")}))
	crashed.SetConsistentIndex(5)
	h1, _, _, _ := h.s.HashKV(0)
	h2, _, _, _ := crashed.HashKV(0)
	if h1 != h2 || crashed.Rev() != h.s.Rev() {
		t.Fatalf("after replay: hash %x rev %d, want %x %d", h2, crashed.Rev(), h1, h.s.Rev())
	}
}

func TestCompactionIsAtomicWithCommit(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.put("a", "2")
	h.put("a", "3")
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	h.mustOK(h.compact(3)) // not committed
	crashed, err := mvcc.Open(copyFile(t, h.path), mvcc.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	if crashed.CompactRev() != -1 {
		t.Fatalf("uncommitted compaction visible after crash: %d", crashed.CompactRev())
	}
	if resp, e := crashed.View().Range(&messages.RangeRequest{Key: []byte("a"), Revision: 2}); e != nil || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("revision 2 after crash: %v %v", resp, e)
	}
}

func TestApplyTwicePanics(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	for _, f := range []func(){
		func() { h.s.Apply(h.idx, putReq(&messages.PutRequest{Key: []byte("b")})) },
		func() { h.s.Apply(0, putReq(&messages.PutRequest{Key: []byte("b")})) },
		func() { h.s.SetConsistentIndex(h.idx) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("re-applying an entry did not panic")
				}
			}()
			f()
		}()
	}
	if h.get("b") != nil || h.s.Rev() != 2 {
		t.Fatal("a rejected entry changed the store")
	}
}

func TestUnknownRequest(t *testing.T) {
	h := newHarness(t)
	for _, req := range []*messages.InternalRequest{nil, {}} {
		if e := respErr(h.apply(req)); e == nil {
			t.Fatal("an empty request was accepted")
		}
	}
	if h.s.Rev() != 1 || h.s.ConsistentIndex() != 2 {
		t.Fatalf("rev %d ci %d", h.s.Rev(), h.s.ConsistentIndex())
	}
}

func TestClose(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	h.put("b", "1")
	v := h.s.View()
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); !errors.Is(err, mvcc.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.s.Commit(); !errors.Is(err, mvcc.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	// b is in the view's overlay; a needs the file.
	if resp, e := v.Range(&messages.RangeRequest{Key: []byte("b")}); e != nil || len(resp.Kvs) != 1 {
		t.Fatalf("overlay read after close: %v %v", resp, e)
	}
	_, e := v.Range(&messages.RangeRequest{Key: []byte("a")})
	wantErr(t, "file read after close", e, rpcerr.Stopped)
	if size, inUse := h.s.Size(); size != 0 || inUse != 0 {
		t.Fatalf("Size after close: %d %d", size, inUse)
	}
	h.s = nil
}

func TestSize(t *testing.T) {
	h := newHarness(t)
	size0, _ := h.s.Size()
	for i := range 2000 {
		h.put("key"+itoa(int64(i%100)), string(make([]byte, 512)))
	}
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	size1, inUse1 := h.s.Size()
	if size1 <= size0 || inUse1 <= 0 || inUse1 > size1 {
		t.Fatalf("sizes: before %d, after %d in use %d", size0, size1, inUse1)
	}
	h.mustOK(h.compact(h.s.Rev()))
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	// Pages freed by a commit are reusable (and count as free) after the next.
	h.put("x", "1")
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	size2, inUse2 := h.s.Size()
	if inUse2 >= inUse1 || size2 < inUse2 {
		t.Fatalf("after compaction: size %d in use %d (before: in use %d)", size2, inUse2, inUse1)
	}
}

func TestOpenCorrupt(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	data := make([]byte, 64*1024)
	for i := range data {
		data[i] = byte(i*7 + i/13)
	}
	if err := os.WriteFile(garbage, data, 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.db")
	if err := os.WriteFile(small, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{garbage, small} {
		if s, err := mvcc.Open(p, mvcc.Options{}); !errors.Is(err, mvcc.ErrCorrupt) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open(%s): %v, want ErrCorrupt", filepath.Base(p), err)
		}
	}

	// Valid bbolt files with records that do not make sense.
	rec := func(main, sub int64, tomb bool) []byte {
		k := make([]byte, 0, 18)
		for i := 7; i >= 0; i-- {
			k = append(k, byte(main>>(8*i)))
		}
		k = append(k, '_')
		for i := 7; i >= 0; i-- {
			k = append(k, byte(sub>>(8*i)))
		}
		if tomb {
			k = append(k, 't')
		}
		return k
	}
	val := func(kv *messages.KeyValue) []byte {
		b, err := proto.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := val(kv("a", "v", 2, 2, 1))
	cases := []struct {
		name string
		keys [][2][]byte
		meta [][2][]byte
	}{
		{"short key", [][2][]byte{{[]byte("short"), good}}, nil},
		{"bad separator", [][2][]byte{{append(rec(2, 0, false)[:8:8], append([]byte{'-'}, rec(2, 0, false)[9:]...)...), good}}, nil},
		{"bad mark", [][2][]byte{{append(rec(2, 0, false), 'x'), good}}, nil},
		{"undecodable value", [][2][]byte{{rec(2, 0, false), []byte{0xff, 0xff, 0xff}}}, nil},
		{"mod revision mismatch", [][2][]byte{{rec(3, 0, false), good}}, nil},
		{"zero version", [][2][]byte{{rec(2, 0, false), val(kv("a", "v", 2, 2, 0))}}, nil},
		{"same revision twice", [][2][]byte{{rec(2, 0, false), good}, {rec(2, 0, true), val(&messages.KeyValue{Key: []byte("b")})}}, nil},
		{"tombstone of a deleted key", [][2][]byte{{rec(2, 0, false), good}, {rec(3, 0, true), val(&messages.KeyValue{Key: []byte("a")})}, {rec(4, 0, true), val(&messages.KeyValue{Key: []byte("a")})}}, nil},
		{"version gap", [][2][]byte{{rec(2, 0, false), good}, {rec(3, 0, false), val(kv("a", "v", 2, 3, 5))}}, nil},
		{"bad consistent index", nil, [][2][]byte{{[]byte("consistent_index"), []byte{1, 2, 3}}}},
		{"bad compact revision", nil, [][2][]byte{{[]byte("finishedCompactRev"), []byte("nonsense")}}},
		{"missing meta bucket", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "db")
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				if c.name == "missing meta bucket" {
					_, err := tx.CreateBucket([]byte("key"))
					return err
				}
				kb, _ := tx.CreateBucket([]byte("key"))
				mb, _ := tx.CreateBucket([]byte("meta"))
				for _, r := range c.keys {
					if err := kb.Put(r[0], mvcc.Seal(r[0], r[1])); err != nil {
						return err
					}
				}
				if err := mb.Put(mvcc.FormatRecord()); err != nil {
					return err
				}
				for _, r := range c.meta {
					if err := mb.Put(r[0], mvcc.Seal(r[0], r[1])); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			s, err := mvcc.Open(p, mvcc.Options{})
			if !errors.Is(err, mvcc.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			// Every record is well sealed: the refusal is the case's own.
			if strings.Contains(err.Error(), "checksum") || strings.Contains(err.Error(), "record format") {
				t.Fatalf("Open: %v, refused for its checksums, not for the case", err)
			}
			t.Log(err)
		})
	}
}
