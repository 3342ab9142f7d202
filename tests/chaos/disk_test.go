package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/aetcd/aetcd/persistence/wal"
)

const diskSeeds = 100

// diskFixture writes a data dir with a WAL of several segments (metadata,
// hard states and entries 1..301, the last record an entry) and a backend with keys, a tombstone,
// a lease, a member and a compaction, and returns its path.
func diskFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, _, err := wal.Open(filepath.Join(dir, walDirPath), wal.Options{SegmentSizeBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SaveMetadata([]byte("0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 300; i += 10 {
		var ents []*messages.Entry
		for j := i; j < i+10; j++ {
			ents = append(ents, &messages.Entry{Term: 1, Index: j, Data: bytes.Repeat([]byte{byte(j)}, 1+int(j%7)*200)})
		}
		if err := w.Save(&messages.HardState{Term: 1, Commit: i + 9}, ents); err != nil {
			t.Fatal(err)
		}
	}
	// The log ends with an entry (a Save without a hard state).
	if err := w.Save(nil, []*messages.Entry{{Term: 1, Index: 301, Data: []byte("last")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segments(t, dir)); n < 3 {
		t.Fatalf("fixture has %d WAL segments, want several", n)
	}

	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, backendPath)), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.Open(filepath.Join(dir, backendPath), mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(0)
	apply := func(r *messages.InternalRequest) {
		idx++
		if e := s.Apply(idx, r).GetError(); e != nil {
			t.Fatal(e.Message)
		}
	}
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_LeaseGrant{LeaseGrant: &messages.LeaseGrantRequest{ID: 7, TTL: 60}}})
	for i := range 400 {
		apply(&messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{
			Key: fmt.Appendf(nil, "key/%04d", i%250), Value: bytes.Repeat([]byte{'v'}, 10+i%90), Lease: int64(7 * (i % 2)),
		}}})
	}
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: &messages.DeleteRangeRequest{Key: []byte("key/0001")}}})
	apply(&messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: 100}}})
	s.SaveMember(&messages.Member{ID: 0xabc, Name: "m1", PeerURLs: []string{"http://127.0.0.1:2380"}})
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, walDirPath, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// copyDir copies the fixture so each seed damages a fresh one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// readFiles returns the contents of every file under dir by relative path.
func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flippedBit compares before and after file by file and returns the one
// file and offset whose byte differs in exactly one bit, failing the test
// on any other difference.
func flippedBit(t *testing.T, before, after map[string][]byte) (string, int64, int) {
	t.Helper()
	var file string
	var off int64 = -1
	bit := -1
	for name, b := range before {
		a := after[name]
		if len(a) != len(b) {
			t.Fatalf("%s changed size: %d -> %d", name, len(b), len(a))
		}
		for i := range b {
			if d := a[i] ^ b[i]; d != 0 {
				if off >= 0 || d&(d-1) != 0 {
					t.Fatalf("more than one bit changed: %s byte %d (%#02x -> %#02x)", name, i, b[i], a[i])
				}
				file, off = name, int64(i)
				for bit = 0; d != 1<<bit; bit++ {
				}
			}
		}
	}
	if len(after) != len(before) || off < 0 {
		t.Fatalf("no single bit flipped (files %d -> %d)", len(before), len(after))
	}
	return file, off, bit
}

func TestTearWALTail(t *testing.T) {
	fixture := diskFixture(t)
	before := readFiles(t, fixture)
	segs, err := readWAL(fixture)
	if err != nil {
		t.Fatal(err)
	}
	newest := segs[len(segs)-1]
	last := newest.records[len(newest.records)-1]
	for seed := range int64(diskSeeds) {
		dir := copyDir(t, fixture)
		desc, err := TearWALTail(dir, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		again, _ := TearWALTail(copyDir(t, fixture), rand.New(rand.NewSource(seed)))
		if again != desc {
			t.Fatalf("seed %d does not replay: %q, then %q", seed, desc, again)
		}
		// Only the newest segment changed, and only inside its last
		// record: a prefix is kept, the rest is zero (or gone).
		after := readFiles(t, dir)
		for name, b := range before {
			if name != newest.rel && !bytes.Equal(b, after[name]) {
				t.Fatalf("seed %d (%s): %s changed", seed, desc, name)
			}
		}
		a, b := after[newest.rel], before[newest.rel]
		end := last.off + int64(last.n)
		// cut: the first byte of the last record that is gone or changed.
		cut := int64(len(a))
		if len(a) == len(b) {
			cut = int64(len(a))
			for i := range a {
				if a[i] != b[i] {
					cut = int64(i)
					break
				}
			}
		}
		switch {
		case cut <= last.off || cut >= end:
			t.Fatalf("seed %d (%s): first change at %d, outside the last record's payload [%d, %d)", seed, desc, cut, last.off, end)
		case !bytes.Equal(a[:cut], b[:cut]):
			t.Fatalf("seed %d (%s): bytes before the cut changed", seed, desc)
		case len(a) == len(b) && !allZero(a[cut:end]):
			t.Fatalf("seed %d (%s): not all zeros from the cut to the end of the record", seed, desc)
		case len(a) == len(b) && !bytes.Equal(a[end:], b[end:]):
			t.Fatalf("seed %d (%s): bytes after the last record changed", seed, desc)
		}
		if !strings.Contains(desc, newest.rel) || !strings.Contains(desc, fmt.Sprintf("at offset %d", last.off)) {
			t.Fatalf("seed %d: description %q does not name %s and offset %d", seed, desc, newest.rel, last.off)
		}
		// The WAL reads it as a torn tail: everything before the last
		// record replays.
		w, r, err := wal.Open(filepath.Join(dir, walDirPath), wal.Options{SegmentSizeBytes: 64 << 10})
		if err != nil {
			t.Fatalf("seed %d (%s): wal.Open: %v", seed, desc, err)
		}
		w.Close()
		want := uint64(301)
		if last.typ == wal.RecordEntry {
			want = last.index - 1
		}
		if !r.TornTailRepaired || len(r.Entries) == 0 || r.Entries[len(r.Entries)-1].Index != want {
			t.Fatalf("seed %d (%s): torn %v, %d entries (want through %d)", seed, desc, r.TornTailRepaired, len(r.Entries), want)
		}
		if seed < 3 {
			t.Log(desc)
		}
	}
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

func TestFlipWALBit(t *testing.T) {
	fixture := diskFixture(t)
	before := readFiles(t, fixture)
	segs, err := readWAL(fixture)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]int{}
	for seed := range int64(diskSeeds) {
		dir := copyDir(t, fixture)
		desc, err := FlipWALBit(dir, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		again, _ := FlipWALBit(copyDir(t, fixture), rand.New(rand.NewSource(seed)))
		if again != desc {
			t.Fatalf("seed %d does not replay: %q, then %q", seed, desc, again)
		}
		file, off, bit := flippedBit(t, before, readFiles(t, dir))
		if want := fmt.Sprintf("flipped bit %d of byte %d ", bit, off); !strings.HasPrefix(desc, want) || !strings.Contains(desc, file) {
			t.Fatalf("seed %d: description %q, but bit %d of byte %d of %s flipped", seed, desc, bit, off, file)
		}
		// The byte is inside a record that is not the log's last one.
		var rec *walRecord
		for i, s := range segs {
			for j, r := range s.records {
				if s.rel == file && off >= r.off && off < r.off+int64(r.n) {
					if i == len(segs)-1 && j == len(s.records)-1 {
						t.Fatalf("seed %d (%s): flipped the log's last record", seed, desc)
					}
					rec = &s.records[j]
				}
			}
		}
		if rec == nil {
			t.Fatalf("seed %d (%s): flipped byte is in no record", seed, desc)
		}
		fields[strings.Fields(walField(off - rec.off))[0]]++
		// The WAL refuses it, naming that file and that record.
		w, _, err := wal.Open(filepath.Join(dir, walDirPath), wal.Options{SegmentSizeBytes: 64 << 10})
		if err == nil {
			w.Close()
			t.Fatalf("seed %d (%s): wal.Open accepted the log", seed, desc)
		}
		var ce *wal.CorruptError
		if !errors.As(err, &ce) || ce.File != filepath.Join(dir, file) || ce.Offset != rec.off {
			t.Fatalf("seed %d (%s): wal.Open: %v; want a *wal.CorruptError at %s offset %d", seed, desc, err, file, rec.off)
		}
		if seed < 3 {
			t.Logf("%s\n    -> %v", desc, err)
		}
	}
	t.Logf("flipped fields over %d seeds: %v", diskSeeds, fields)
}

// TestFlipBackendBit checks each flip against bbolt's own view of the
// file: the byte is in a meta, branch or leaf page, never a free one, and
// the bytes FlipBackendBit may choose in bucket "key" are exactly those
// bbolt counts as in use there.
func TestFlipBackendBit(t *testing.T) {
	fixture := diskFixture(t)
	before := readFiles(t, fixture)

	// bbolt's view of the fixture: page types and the key bucket's use.
	db, err := bolt.Open(filepath.Join(copyDir(t, fixture), backendPath), 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	pageType := map[int64]string{} // by page ID, overflow pages included
	var keyInuse int
	var pageSize int64
	err = db.View(func(tx *bolt.Tx) error {
		pageSize = int64(tx.DB().Info().PageSize)
		for id := 0; ; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			for i := range info.OverflowCount + 1 {
				pageType[int64(id+i)] = info.Type
			}
			id += info.OverflowCount + 1
		}
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			st := tx.Bucket([]byte("key")).Stats()
			keyInuse = st.BranchInuse + st.LeafInuse
			return nil
		})
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	spans, err := boltSpans(before[backendPath])
	if err != nil {
		t.Fatal(err)
	}
	spanned := 0
	for _, s := range spans {
		if s.bucket == `bucket "key"` {
			spanned += s.n
		}
	}
	if spanned != keyInuse {
		t.Fatalf("FlipBackendBit may choose %d bytes of bucket \"key\"'s pages, bbolt counts %d in use", spanned, keyInuse)
	}

	kinds := map[string]int{}
	for seed := range int64(diskSeeds) {
		dir := copyDir(t, fixture)
		desc, err := FlipBackendBit(dir, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		again, _ := FlipBackendBit(copyDir(t, fixture), rand.New(rand.NewSource(seed)))
		if again != desc {
			t.Fatalf("seed %d does not replay: %q, then %q", seed, desc, again)
		}
		file, off, bit := flippedBit(t, before, readFiles(t, dir))
		if want := fmt.Sprintf("flipped bit %d of byte %d ", bit, off); file != backendPath || !strings.HasPrefix(desc, want) {
			t.Fatalf("seed %d: description %q, but bit %d of byte %d of %s flipped", seed, desc, bit, off, file)
		}
		switch typ := pageType[off/pageSize]; typ {
		case "meta", "branch", "leaf":
			kinds[typ]++
		default:
			t.Fatalf("seed %d (%s): flipped a byte of page %d, which bbolt calls %q", seed, desc, off/pageSize, typ)
		}
		if seed < 3 {
			t.Log(desc)
		}
	}
	t.Logf("flips by page type over %d seeds: %v", diskSeeds, kinds)
}
