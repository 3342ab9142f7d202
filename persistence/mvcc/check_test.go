package mvcc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
)

// checkFixture writes a store with keys, history, a tombstone, a lease, a
// member and a removed member, closes it and returns its path.
func checkFixture(t testing.TB, keys int) string {
	t.Helper()
	h := newHarness(t)
	h.grant(9, 60)
	for i := range keys {
		h.mustOK(h.apply(putReq(&messages.PutRequest{Key: fmt.Appendf(nil, "k/%04d", i%(keys/2+1)), Value: fmt.Appendf(nil, "v%d", i), Lease: 9 * int64(i%2)})))
	}
	h.del("k/0001", "")
	h.mustOK(h.compact(int64(keys / 4)))
	h.s.SaveMember(&messages.Member{ID: 1, Name: "a", PeerURLs: []string{"http://a:2380"}})
	h.s.SaveMember(&messages.Member{ID: 2, Name: "b", PeerURLs: []string{"http://b:2380"}})
	h.s.RemoveMember(2)
	if err := h.s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	h.s = nil
	return h.path
}

// editFile applies f to a copy of the file at path and returns the copy.
func editFile(t *testing.T, path string, f func(b []byte)) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f(b)
	out := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// editBolt applies f in a bbolt write transaction to a copy of the file.
func editBolt(t *testing.T, path string, f func(tx *bolt.Tx) error) string {
	t.Helper()
	out := editFile(t, path, func([]byte) {})
	db, err := bolt.Open(out, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantCorrupt(t *testing.T, path, want string) {
	t.Helper()
	s, err := mvcc.Open(path, mvcc.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open accepted the file, want an error containing %q", want)
	}
	if !errors.Is(err, mvcc.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v; want ErrCorrupt containing %q", err, want)
	}
	if _, verr := mvcc.Verify(path); !errors.Is(verr, mvcc.ErrCorrupt) {
		t.Fatalf("Verify: %v, want ErrCorrupt", verr)
	}
}

// leafOf returns the file offset of the first leaf page with more than ten
// elements (of bucket "key" in checkFixture's file) and the page size. It
// opens path for writing (bbolt's Tx.Page needs the freelist loaded).
func leafOf(t *testing.T, path string) (pageOff int64, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return fmt.Errorf("no leaf page found: %v", err)
			}
			if info.Type == "leaf" && info.Count > 10 {
				pageOff = int64(id) * int64(pageSize)
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pageOff, pageSize
}

// TestOpenChecksPages damages the page structure the way checkFile must
// catch before bbolt reads the pages.
func TestOpenChecksPages(t *testing.T) {
	path := checkFixture(t, 400)
	leaf, pageSize := leafOf(t, editFile(t, path, func([]byte) {}))
	le := binary.LittleEndian
	cases := []struct {
		name, want string
		edit       func(b []byte)
	}{
		{"page ID", "carries ID", func(b []byte) { b[leaf] ^= 0x40 }},
		{"page type", "want a branch or leaf page", func(b []byte) { b[leaf+8] = 0x20 }},
		{"element count", "do not fit", func(b []byte) { le.PutUint16(b[leaf+10:], 0xfff0) }},
		{"element position", "bbolt packs keys and values", func(b []byte) { b[leaf+16+4*16+4+3] ^= 0x80 }},
		// Fewer elements: the page stays well formed but drops records.
		{"element count lowered", "bbolt packs keys and values", func(b []byte) {
			le.PutUint16(b[leaf+10:], le.Uint16(b[leaf+10:])-1)
		}},
		{"key size", "bbolt packs keys and values", func(b []byte) { b[leaf+16+4*16+8] ^= 0x01 }},
		{"key order", "is not above key", func(b []byte) {
			// Make element 4's key (a revision) sort before element 3's.
			pos := int64(le.Uint32(b[leaf+16+4*16+4:]))
			b[leaf+16+4*16+pos+7] = 0
		}},
		{"leaf flags", "has flags", func(b []byte) { b[leaf+16+3*16] = 0x04 }},
		// Bucket "lease" holds one lease: an inline page, after the key
		// "lease" and a bucket header of zeros (root page 0, sequence 0).
		// bbolt reads neither its ID nor its overflow.
		{"inline page ID", "inline page with ID 512", func(b []byte) { b[inlineLease(t, b)+1] = 0x02 }},
		{"inline page overflow", "overflow 1", func(b []byte) { b[inlineLease(t, b)+12] = 0x01 }},
		{"both meta pages", "neither meta page is valid", func(b []byte) { b[16] ^= 1; b[pageSize+16] ^= 1 }},
		{"high-water mark", "high-water mark", func(b []byte) {
			for _, m := range []int{0, pageSize} {
				le.PutUint64(b[m+56:], 1<<40)
				fixMetaChecksum(b[m:])
			}
		}},
		{"root beyond the high-water mark", "outside 2..", func(b []byte) {
			for _, m := range []int{0, pageSize} {
				le.PutUint64(b[m+32:], le.Uint64(b[m+56:])+5)
				fixMetaChecksum(b[m:])
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCorrupt(t, editFile(t, path, c.edit), c.want)
		})
	}
}

// fixMetaChecksum rewrites the checksum of the meta page at p[0:].
func fixMetaChecksum(p []byte) {
	const sumOff = 16 + 56
	h := uint64(14695981039346656037)
	for _, c := range p[16:sumOff] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	binary.LittleEndian.PutUint64(p[sumOff:], h)
}

// TestOpenChecksSchema: records that decode but that this package never
// writes are refused.
func TestOpenChecksSchema(t *testing.T) {
	path := checkFixture(t, 40)
	firstKey := func(tx *bolt.Tx, bucket string) ([]byte, []byte) {
		return tx.Bucket([]byte(bucket)).Cursor().First()
	}
	cases := []struct {
		name, want string
		edit       func(tx *bolt.Tx) error
	}{
		{"unknown bucket", `unknown bucket "lgase"`, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("lgase"))
			return err
		}},
		{"nested bucket", "nested bucket", func(tx *bolt.Tx) error {
			_, err := tx.Bucket([]byte("meta")).CreateBucket([]byte("x"))
			return err
		}},
		{"unknown meta key", `unknown key "consistent_indey"`, func(tx *bolt.Tx) error {
			return putSealed(tx, "meta", []byte("consistent_indey"), make([]byte, 8))
		}},
		{"compaction revision with a sub-revision", "is not a revision", func(tx *bolt.Tx) error {
			v := getSealed(t, tx, "meta", []byte("finishedCompactRev"))
			v[16] = 1
			return putSealed(tx, "meta", []byte("finishedCompactRev"), v)
		}},
		{"unknown field in a record", "unknown fields", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "key")
			v, _ = mvcc.Unseal(k, v)
			return putSealed(tx, "key", k, protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), v...), 15, protowire.VarintType), 1))
		}},
		{"field twice in a record", "not in the encoding", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "key")
			v, _ = mvcc.Unseal(k, v)
			kv := new(messages.KeyValue)
			if err := proto.Unmarshal(v, kv); err != nil {
				return err
			}
			// The key field again, equal: decodes to the same record.
			v = protowire.AppendBytes(protowire.AppendTag(append([]byte(nil), v...), 1, protowire.BytesType), kv.Key)
			return putSealed(tx, "key", k, v)
		}},
		{"tombstone with a value", "holds more than the key", func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte("key")).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) == 18 {
					v, _ := proto.Marshal(&messages.KeyValue{Key: []byte("k/0001"), Value: []byte("x")})
					return putSealed(tx, "key", append([]byte(nil), k...), v)
				}
			}
			return errors.New("no tombstone")
		}},
		// A changed byte that leaves a record well formed: only the
		// record's checksum tells.
		{"value byte changed", "record 2.0: checksum mismatch: stored", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "key")
			v = append([]byte(nil), v...)
			v[len(v)-5] ^= 0x01 // the last byte of the value
			return tx.Bucket([]byte("key")).Put(k, v)
		}},
		{"record key changed", "checksum mismatch", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "key")
			v = append([]byte(nil), v...)
			if err := tx.Bucket([]byte("key")).Delete(k); err != nil {
				return err
			}
			k = append([]byte(nil), k...)
			k[7] ^= 0x80 // a later revision, still in order
			return tx.Bucket([]byte("key")).Put(k, v)
		}},
		{"consistent index changed", "meta consistent_index: checksum mismatch", func(tx *bolt.Tx) error {
			v := append([]byte(nil), tx.Bucket([]byte("meta")).Get([]byte("consistent_index"))...)
			v[7] ^= 0x01
			return tx.Bucket([]byte("meta")).Put([]byte("consistent_index"), v)
		}},
		{"lease TTL changed", "bucket lease", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "lease")
			v = append([]byte(nil), v...)
			v[len(v)-5] ^= 0x01
			return tx.Bucket([]byte("lease")).Put(k, v)
		}},
		{"record without its checksum", "1 bytes: too short for a checksum", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("members_removed")).Put(binary.BigEndian.AppendUint64(nil, 2), []byte{1})
		}},
		{"no record format", "written by an aetcd without record checksums", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Delete([]byte("recordFormat"))
		}},
		{"bucket with a sequence", `bucket "members" has sequence 5`, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("members")).SetSequence(5)
		}},
		{"another record format", "meta recordFormat", func(tx *bolt.Tx) error {
			return putSealed(tx, "meta", []byte("recordFormat"), []byte{1})
		}},
		{"records without a consistent index", "no consistent_index", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Delete([]byte("consistent_index"))
		}},
		{"lease record with an unknown field", "bucket lease", func(tx *bolt.Tx) error {
			k, v := firstKey(tx, "lease")
			v, _ = mvcc.Unseal(k, v)
			return putSealed(tx, "lease", k, protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), v...), 9, protowire.VarintType), 1))
		}},
		{"member record of another member", "member record", func(tx *bolt.Tx) error {
			v, _ := proto.Marshal(&messages.Member{ID: 7, Name: "x"})
			return putSealed(tx, "members", binary.BigEndian.AppendUint64(nil, 1), v)
		}},
		{"removed member with a value", "removed member record", func(tx *bolt.Tx) error {
			return putSealed(tx, "members_removed", binary.BigEndian.AppendUint64(nil, 2), []byte{1})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCorrupt(t, editBolt(t, path, c.edit), c.want)
		})
	}
	// A file written with bbolt's defaults (a freelist page) passes.
	synced := editFile(t, path, func([]byte) {})
	db, err := bolt.Open(synced, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("key")).Delete([]byte("nothing")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := mvcc.Open(synced, mvcc.Options{})
	if err != nil {
		t.Fatalf("Open of a file with a freelist page: %v", err)
	}
	s.Close()
}

// TestOpenBitFlips flips random bits in the pages of a small store: Open
// either refuses with ErrCorrupt or opens; it never crashes the process
// (before the pages were checked, bbolt built slices from damaged element
// headers that the garbage collector found pointing into its heap).
func TestOpenBitFlips(t *testing.T) {
	path := checkFixture(t, 300)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	flips := 2000
	if testing.Short() {
		flips = 200
	}
	dir := t.TempDir()
	refused := 0
	for i := range flips {
		b := append([]byte(nil), orig...)
		off, bit := rng.Intn(len(b)), rng.Intn(8)
		b[off] ^= 1 << bit
		p := filepath.Join(dir, fmt.Sprintf("db%d", i))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := mvcc.Open(p, mvcc.Options{NoSync: true})
		switch {
		case err == nil:
			s.Close()
		case errors.Is(err, mvcc.ErrCorrupt):
			refused++
		default:
			t.Fatalf("seed %d, flip %d (bit %d of byte %d): %v, want ErrCorrupt or success", seed, i, bit, off, err)
		}
		os.Remove(p)
	}
	t.Logf("%d of %d flips refused", refused, flips)
}

// BenchmarkOpenLarge opens a store of 100 000 keys with 1 KiB values
// (about 110 MB): "check" is checkFile alone (the page structure), "open"
// all of Open (check, the decode of every record in restore, bbolt's own
// read-write open). Run with -benchtime=5x.
func BenchmarkOpenLarge(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db")
	s, err := mvcc.Open(path, mvcc.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 1024)
	for i := range 100_000 {
		if e := s.Apply(uint64(i+1), putReq(&messages.PutRequest{Key: fmt.Appendf(nil, "/registry/pods/key-%08d", i), Value: value})).GetError(); e != nil {
			b.Fatal(e.Message)
		}
		if i%10_000 == 9_999 {
			if err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if info, err := os.Stat(path); err == nil {
		b.Logf("file of %d MB", info.Size()>>20)
	}
	b.Run("check", func(b *testing.B) {
		for range b.N {
			if err := mvcc.CheckFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for range b.N {
			s, err := mvcc.Open(path, mvcc.Options{})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

// putSealed stores v under k in bucket name with its record checksum, as
// the package writes records.
func putSealed(tx *bolt.Tx, name string, k, v []byte) error {
	return tx.Bucket([]byte(name)).Put(k, mvcc.Seal(k, v))
}

// getSealed returns a copy of the unsealed value of k in bucket name.
func getSealed(t *testing.T, tx *bolt.Tx, name string, k []byte) []byte {
	t.Helper()
	v, err := mvcc.Unseal(k, tx.Bucket([]byte(name)).Get(k))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), v...)
}

// TestDamagedRecordIsNeverServed flips a bit of a committed value in the
// file under an open store (bbolt reads the file through a shared memory
// map, so the store sees it): reading that record must panic with
// ErrCorrupt's message instead of answering the changed value, and the
// next Open must refuse the file.
func TestDamagedRecordIsNeverServed(t *testing.T) {
	h := newHarness(t)
	h.put("k", "needle-value-0123456789")
	h.reopen() // reads now come from the file, not from the written records in memory
	data, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(data, []byte("needle-value-0123456789"))
	if off < 0 || bytes.Count(data, []byte("needle-value")) != 1 {
		t.Fatalf("the value is not in the file exactly once")
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[off+7] ^ 0x01}, int64(off+7)); err != nil { // "needle-" -> "needle,"
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			r := recover()
			if msg := fmt.Sprint(r); r == nil || !strings.Contains(msg, mvcc.ErrCorrupt.Error()) || !strings.Contains(msg, "checksum mismatch") {
				t.Fatalf("reading the damaged record: recovered %v, want a panic naming the failed checksum", r)
			}
		}()
		kv := h.get("k")
		t.Fatalf("the damaged record was served: %q", kv.GetValue())
	}()
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	h.s = nil
	if s, err := mvcc.Open(h.path, mvcc.Options{}); !errors.Is(err, mvcc.ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open: %v, want ErrCorrupt naming the failed checksum", err)
	}
}

// inlineLease returns the offset in b of the inline page of bucket "lease".
func inlineLease(t *testing.T, b []byte) int {
	t.Helper()
	// Key, bucket header, page ID, leaf flag, one element (a freed page
	// may still hold the bucket as it was before the grant, empty).
	pattern := append(append([]byte("lease"), make([]byte, 16+8)...), 0x02, 0x00, 0x01, 0x00)
	i := bytes.Index(b, pattern)
	if i < 0 || bytes.Count(b, pattern) != 1 {
		t.Fatal("no single inline page of bucket lease in the file")
	}
	return i + len("lease") + 16
}
