package chaos

// Disk faults: damage to a stopped member's data dir the way real disks
// fail. Each function changes exactly one thing, chooses what with the
// *rand.Rand it is given (so a seed replays it) and returns a one-line
// description naming the file, the byte offset and the bit, for the fault
// report. None of them may run while a member has the data dir open.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// Paths of a member's WAL directory and backend file inside its data dir.
var (
	walDirPath  = filepath.Join("member", "wal")
	backendPath = filepath.Join("member", "snap", "db")
)

// TearWALTail tears the last record of the newest WAL segment as a crash
// in the middle of its write leaves it: a prefix of the record (at least
// one non-zero byte) stays, the rest reads as the preallocated zeros (or,
// if the record ended the file, the file ends early). aetcd's Open must
// cut the record off.
func TearWALTail(dataDir string, rng *rand.Rand) (string, error) {
	segs, err := readWAL(dataDir)
	if err != nil {
		return "", err
	}
	seg := segs[len(segs)-1]
	if len(seg.records) == 0 {
		return "", fmt.Errorf("tear WAL tail: %s holds no record", seg.rel)
	}
	rec := seg.records[len(seg.records)-1]
	b := seg.data[rec.off : rec.off+int64(rec.n)]
	// Keep bytes [0, keep) with keep past the first non-zero byte (so
	// something of the record reached the disk) and at most the index of
	// the last non-zero byte (so the cut changes the record).
	first := slices.IndexFunc(b, func(c byte) bool { return c != 0 })
	last := len(b) - 1
	for b[last] == 0 {
		last--
	}
	if first >= last {
		return "", fmt.Errorf("tear WAL tail: last record of %s has a single non-zero byte", seg.rel)
	}
	keep := first + 1 + rng.Intn(last-first)
	cut := rec.off + int64(keep)
	end := rec.off + int64(rec.n)
	how := fmt.Sprintf("zeroed bytes %d-%d", cut, end-1)
	if end == int64(len(seg.data)) {
		if err := os.Truncate(seg.path, cut); err != nil {
			return "", fmt.Errorf("tear WAL tail: %w", err)
		}
		how = fmt.Sprintf("truncated the file at byte %d", cut)
	} else if err := writeAt(seg.path, cut, make([]byte, end-cut)); err != nil {
		return "", fmt.Errorf("tear WAL tail: %w", err)
	}
	return fmt.Sprintf("tore the last record of %s (record %d, %s, %d bytes at offset %d): kept its first %d bytes, %s",
		seg.rel, len(seg.records)-1, rec.what(), rec.n, rec.off, keep, how), nil
}

// FlipWALBit flips one bit inside a WAL record that is not the last record
// of the log, so the damage cannot pass for a torn tail: the record is
// followed by another one. A flip in a length field of the newest segment
// that would make the record seem to run past the last non-zero byte (which
// Open reads as a torn tail, see package wal) is never chosen. aetcd's Open
// must refuse the log with an error naming the file and offset.
func FlipWALBit(dataDir string, rng *rand.Rand) (string, error) {
	segs, err := readWAL(dataDir)
	if err != nil {
		return "", err
	}
	// Candidates: every byte of every record but the log's last one.
	var total int64
	for i, s := range segs {
		for j, r := range s.records {
			if i == len(segs)-1 && j == len(s.records)-1 {
				break
			}
			total += int64(r.n)
		}
	}
	if total == 0 {
		return "", fmt.Errorf("flip WAL bit: the log has fewer than two records")
	}
retry:
	for range 1000 {
		pick, bit := rng.Int63n(total), rng.Intn(8)
		for i, s := range segs {
			for j, r := range s.records {
				if pick >= int64(r.n) {
					pick -= int64(r.n)
					continue
				}
				off := r.off + pick
				old := s.data[off]
				flipped := old ^ 1<<bit
				if i == len(segs)-1 && pick < 4 && looksTorn(s, r, pick, flipped) {
					continue retry
				}
				if err := writeAt(s.path, off, []byte{flipped}); err != nil {
					return "", fmt.Errorf("flip WAL bit: %w", err)
				}
				return fmt.Sprintf("flipped bit %d of byte %d (%#02x->%#02x) of %s: %s of record %d of %d (%s, %d bytes at offset %d)",
					bit, off, old, flipped, s.rel, walField(pick), j, len(s.records), r.what(), r.n, r.off), nil
			}
		}
		panic("chaos: FlipWALBit picked a byte past the records")
	}
	return "", fmt.Errorf("flip WAL bit: no flip found that cannot pass for a torn tail")
}

// looksTorn reports whether setting byte pick of r's length field to
// flipped makes r seem to end past the last non-zero byte of its segment.
func looksTorn(s walSegment, r walRecord, pick int64, flipped byte) bool {
	var h [4]byte
	copy(h[:], s.data[r.off:r.off+4])
	h[pick] = flipped
	length := binary.LittleEndian.Uint32(h[:])
	if length > wal.MaxRecordBytes {
		return false
	}
	lastNonZero := int64(len(s.data)) - 1
	for lastNonZero >= 0 && s.data[lastNonZero] == 0 {
		lastNonZero--
	}
	return r.off+wal.HeaderSize+int64(length) > lastNonZero
}

func walField(pick int64) string {
	switch {
	case pick < 4:
		return fmt.Sprintf("length field byte %d", pick)
	case pick == 4:
		return "type byte"
	case pick < wal.HeaderSize:
		return fmt.Sprintf("checksum byte %d", pick-5)
	}
	return fmt.Sprintf("payload byte %d", pick-wal.HeaderSize)
}

// walSegment is one segment file and the records it holds.
type walSegment struct {
	path, rel string // rel: relative to the data dir
	data      []byte
	records   []walRecord
}

// walRecord is one record of a segment.
type walRecord struct {
	off   int64
	n     int // header and payload
	typ   wal.RecordType
	index uint64 // entry index; 0 for other records
}

func (r walRecord) what() string {
	if r.typ == wal.RecordEntry {
		return fmt.Sprintf("entry %d", r.index)
	}
	return r.typ.String()
}

// readWAL reads every segment of dataDir's WAL, oldest first, and the
// records in each. A segment that does not decode to its end of data is an
// error: the injectors damage healthy logs only.
func readWAL(dataDir string) ([]walSegment, error) {
	paths, err := filepath.Glob(filepath.Join(dataDir, walDirPath, "*.wal"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no WAL segment in %s", filepath.Join(dataDir, walDirPath))
	}
	slices.Sort(paths) // names are fixed-width hex: sequence order
	segs := make([]walSegment, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dataDir, p)
		s := walSegment{path: p, rel: rel, data: data}
		for off := 0; ; {
			typ, payload, n, err := wal.DecodeRecord(data[off:])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s is already damaged at offset %d: %w", rel, off, err)
			}
			r := walRecord{off: int64(off), n: n, typ: typ}
			if typ == wal.RecordEntry {
				e := new(messages.Entry)
				if err := proto.Unmarshal(payload, e); err != nil {
					return nil, fmt.Errorf("%s: entry at offset %d does not decode: %w", rel, off, err)
				}
				r.index = e.Index
			}
			s.records = append(s.records, r)
			off += n
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// FlipBackendBit flips one bit of member/snap/db in a byte bbolt reads: a
// meta page (either of the two), or, in a page reachable from the current
// meta page's root (branch and leaf pages of every bucket, their overflow
// pages, the freelist page if the file has one), the page header, an
// element header, a key or a value. Unused space inside pages, free pages
// and the file beyond the high-water mark are never chosen: a flip there
// cannot matter.
func FlipBackendBit(dataDir string, rng *rand.Rand) (string, error) {
	path := filepath.Join(dataDir, backendPath)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("flip backend bit: %w", err)
	}
	spans, err := boltSpans(data)
	if err != nil {
		return "", fmt.Errorf("flip backend bit: %s: %w", path, err)
	}
	var total int64
	for _, s := range spans {
		total += int64(s.n)
	}
	pick, bit := rng.Int63n(total), rng.Intn(8)
	for _, s := range spans {
		if pick >= int64(s.n) {
			pick -= int64(s.n)
			continue
		}
		off := s.off + pick
		old := data[off]
		flipped := old ^ 1<<bit
		if err := writeAt(path, off, []byte{flipped}); err != nil {
			return "", fmt.Errorf("flip backend bit: %w", err)
		}
		return fmt.Sprintf("flipped bit %d of byte %d (%#02x->%#02x) of %s: byte %d of %d of %s",
			bit, off, old, flipped, backendPath, pick, s.n, s.what), nil
	}
	panic("chaos: FlipBackendBit picked a byte past the spans")
}

// RewriteBackendValue changes the value of the newest put in the backend's
// bucket "key" to a different, well-formed record with a valid checksum:
// not a disk fault (every record's checksum catches those) but silent
// divergence, what a bug in the apply path would leave. Only comparing
// HashKV with the peers (--experimental-initial-corrupt-check) detects it.
// Records are sealed as persistence/mvcc documents: the value, then a
// CRC-32C of bbolt key and value, big-endian.
func RewriteBackendValue(dataDir string, rng *rand.Rand) (string, error) {
	path := filepath.Join(dataDir, backendPath)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return "", fmt.Errorf("rewrite backend value: %w", err)
	}
	defer db.Close()
	var desc string
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New(`no bucket "key"`)
		}
		c := b.Cursor()
		for k, sv := c.Last(); k != nil; k, sv = c.Prev() {
			if len(k) != 17 || len(sv) < 4 { // a tombstone's key ends in 't'
				continue
			}
			kv := new(messages.KeyValue)
			if err := proto.Unmarshal(sv[:len(sv)-4], kv); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			old := string(kv.Value)
			kv.Value = append([]byte(nil), kv.Value...)
			if len(kv.Value) == 0 {
				kv.Value = []byte{byte('a' + rng.Intn(26))}
			} else {
				i := rng.Intn(len(kv.Value))
				kv.Value[i] ^= byte(1 + rng.Intn(255))
			}
			v, err := proto.Marshal(kv)
			if err != nil {
				return err
			}
			table := crc32.MakeTable(crc32.Castagnoli)
			sum := crc32.Update(crc32.Update(0, table, k), table, v)
			desc = fmt.Sprintf("rewrote the value of key %q at revision %d in %s from %q to %q, checksum recomputed",
				kv.Key, binary.BigEndian.Uint64(k), backendPath, old, kv.Value)
			return b.Put(append([]byte(nil), k...), binary.BigEndian.AppendUint32(v, sum))
		}
		return errors.New(`no put in bucket "key"`)
	})
	if err != nil {
		return "", fmt.Errorf("rewrite backend value: %s: %w", path, err)
	}
	return desc, nil
}

// boltSpan is a run of bytes of a bbolt file that bbolt reads.
type boltSpan struct {
	off    int64
	n      int
	bucket string // the bucket whose page holds the bytes; "" for meta and freelist pages
	what   string
}

// bbolt's on-disk format (go.etcd.io/bbolt/internal/common): a page starts
// with a 16-byte header (id uint64, flags uint16, count uint16, overflow
// uint32); a meta page holds after it magic, version, page size, flags
// (uint32 each), the root bucket (root page, sequence), the freelist page,
// the high-water mark, the transaction ID and an FNV-64a checksum of the
// fields before it (uint64 each). Branch elements are (pos, ksize uint32,
// page uint64), leaf elements (flags, pos, ksize, vsize uint32), pos
// counting from the element; a leaf element with flag 1 is a nested
// bucket whose value is (root page, sequence) followed, when the root is 0,
// by an inline page.
const (
	boltPageHeader     = 16
	boltElement        = 16
	boltMetaBytes      = 64 // through the checksum
	boltMagic          = 0xED0CDAED
	boltBranchPage     = 0x01
	boltLeafPage       = 0x02
	boltFreelistPage   = 0x10
	boltBucketLeaf     = 0x01
	boltNoFreelist     = ^uint64(0)
	boltBucketValueLen = 16
)

type boltMeta struct {
	pageSize           int
	root, freelist, hw uint64
	txid               uint64
	valid              bool
}

func parseBoltMeta(p []byte) boltMeta {
	le := binary.LittleEndian
	m := boltMeta{
		pageSize: int(le.Uint32(p[24:])),
		root:     le.Uint64(p[32:]), freelist: le.Uint64(p[48:]), hw: le.Uint64(p[56:]),
		txid: le.Uint64(p[64:]),
	}
	h := fnv.New64a()
	h.Write(p[boltPageHeader : boltPageHeader+boltMetaBytes-8])
	m.valid = le.Uint32(p[16:]) == boltMagic && le.Uint32(p[20:]) == 2 && le.Uint64(p[boltPageHeader+boltMetaBytes-8:]) == h.Sum64()
	return m
}

// boltSpans lists the bytes of data (a healthy bbolt file) that bbolt
// reads, labelled for the fault report.
func boltSpans(data []byte) ([]boltSpan, error) {
	if len(data) < boltPageHeader+boltMetaBytes {
		return nil, fmt.Errorf("%d bytes: not a bbolt file", len(data))
	}
	m0 := parseBoltMeta(data)
	if !m0.valid || m0.pageSize < 512 || len(data) < 2*m0.pageSize {
		return nil, fmt.Errorf("meta page 0 is not valid: not a healthy bbolt file")
	}
	ps := m0.pageSize
	m1 := parseBoltMeta(data[ps:])
	cur, curPage := m0, 0
	if m1.valid && m1.txid > m0.txid {
		cur, curPage = m1, 1
	}
	w := &boltWalker{data: data, pageSize: ps, hw: cur.hw, seen: map[uint64]bool{}}
	for i, m := range []boltMeta{m0, m1} {
		role := "current"
		if i != curPage {
			role = "previous"
		}
		w.add(int64(i*ps), boltPageHeader+boltMetaBytes, "", "meta page %d (txid %d, %s)", i, m.txid, role)
	}
	if err := w.page(cur.root, "the root bucket", false); err != nil {
		return nil, err
	}
	if cur.freelist != boltNoFreelist {
		if err := w.freelist(cur.freelist); err != nil {
			return nil, err
		}
	}
	return w.spans, nil
}

type boltWalker struct {
	data     []byte
	pageSize int
	hw       uint64
	seen     map[uint64]bool
	spans    []boltSpan
}

func (w *boltWalker) add(off int64, n int, bucket, format string, args ...any) {
	if n > 0 {
		w.spans = append(w.spans, boltSpan{off: off, n: n, bucket: bucket, what: fmt.Sprintf(format, args...)})
	}
}

// pageAt returns the page with id and its bytes (with overflow pages).
func (w *boltWalker) pageAt(id uint64) (int64, []byte, error) {
	if id < 2 || id >= w.hw || w.seen[id] {
		return 0, nil, fmt.Errorf("page %d: out of range or referenced twice", id)
	}
	w.seen[id] = true
	off := int64(id) * int64(w.pageSize)
	if off+boltPageHeader > int64(len(w.data)) {
		return 0, nil, fmt.Errorf("page %d: beyond the end of the file", id)
	}
	n := int64(binary.LittleEndian.Uint32(w.data[off+12:])+1) * int64(w.pageSize)
	if off+n > int64(len(w.data)) || binary.LittleEndian.Uint64(w.data[off:]) != id {
		return 0, nil, fmt.Errorf("page %d: damaged header", id)
	}
	return off, w.data[off : off+n], nil
}

// page adds the used bytes of page id (of bucket name) and of every page
// below it. An inline page (inline set) is at w.data[id:] instead: id is
// then its file offset.
func (w *boltWalker) page(id uint64, name string, inline bool) error {
	var off int64
	var p []byte
	var where string
	if inline {
		off, p, where = int64(id), w.data[id:], fmt.Sprintf("inline page of %s", name)
	} else {
		var err error
		if off, p, err = w.pageAt(id); err != nil {
			return err
		}
		where = fmt.Sprintf("page %d", id)
	}
	le := binary.LittleEndian
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if boltPageHeader+count*boltElement > len(p) {
		return fmt.Errorf("%s: %d elements do not fit", where, count)
	}
	kind := map[uint16]string{boltBranchPage: "branch", boltLeafPage: "leaf"}[flags]
	if kind == "" {
		return fmt.Errorf("%s: unexpected page flags %#x", where, flags)
	}
	if inline {
		w.add(off, boltPageHeader, name, "header of the %s", where)
	} else {
		w.add(off, boltPageHeader, name, "header of %s (%s of %s)", where, kind, name)
	}
	for i := range count {
		e := boltPageHeader + i*boltElement
		eoff := off + int64(e)
		if flags == boltBranchPage {
			pos, ksize, child := int(le.Uint32(p[e:])), int(le.Uint32(p[e+4:])), le.Uint64(p[e+8:])
			if e+pos+ksize > len(p) {
				return fmt.Errorf("%s: element %d runs past the page", where, i)
			}
			w.add(eoff, boltElement, name, "element %d header of %s (branch of %s)", i, where, name)
			w.add(eoff+int64(pos), ksize, name, "key of element %d of %s (branch of %s)", i, where, name)
			if err := w.page(child, name, false); err != nil {
				return err
			}
			continue
		}
		eflags, pos, ksize, vsize := le.Uint32(p[e:]), int(le.Uint32(p[e+4:])), int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
		if e+pos+ksize+vsize > len(p) {
			return fmt.Errorf("%s: element %d runs past the page", where, i)
		}
		key := p[e+pos : e+pos+ksize]
		label := boltKeyLabel(name, key)
		w.add(eoff, boltElement, name, "element %d header of %s (leaf of %s, %s)", i, where, name, label)
		w.add(eoff+int64(pos), ksize, name, "key of element %d of %s (leaf of %s, %s)", i, where, name, label)
		voff := eoff + int64(pos+ksize)
		if eflags&boltBucketLeaf == 0 {
			w.add(voff, vsize, name, "value of element %d of %s (leaf of %s, %s)", i, where, name, label)
			continue
		}
		if vsize < boltBucketValueLen {
			return fmt.Errorf("%s: bucket %q has a %d-byte value", where, key, vsize)
		}
		child := fmt.Sprintf("%q", key)
		w.add(voff, boltBucketValueLen, name, "root and sequence of bucket %s (element %d of %s)", child, i, where)
		if root := le.Uint64(p[e+pos+ksize:]); root != 0 {
			if err := w.page(root, "bucket "+child, false); err != nil {
				return err
			}
		} else if err := w.page(uint64(voff+boltBucketValueLen), "bucket "+child, true); err != nil {
			return err
		}
	}
	return nil
}

// freelist adds the freelist page's header and page IDs.
func (w *boltWalker) freelist(id uint64) error {
	off, p, err := w.pageAt(id)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint16(p[8:]) != boltFreelistPage {
		return fmt.Errorf("page %d: the meta page's freelist is not a freelist page", id)
	}
	w.add(off, boltPageHeader, "", "header of page %d (freelist)", id)
	count, start := int(le.Uint16(p[10:])), boltPageHeader
	if count == 0xFFFF { // the count is in the first element
		count, start = int(le.Uint64(p[boltPageHeader:])), boltPageHeader+8
		w.add(off+boltPageHeader, 8, "", "count of page %d (freelist)", id)
	}
	if start+8*count > len(p) {
		return fmt.Errorf("page %d: %d free page IDs do not fit", id, count)
	}
	w.add(off+int64(start), 8*count, "", "free page IDs of page %d (freelist)", id)
	return nil
}

// boltKeyLabel names a key for the report: a revision in bucket "key",
// printable keys as text, others in hex.
func boltKeyLabel(bucket string, key []byte) string {
	if bucket == `bucket "key"` && (len(key) == 17 || len(key) == 18) && key[8] == '_' {
		s := fmt.Sprintf("revision %d_%d", binary.BigEndian.Uint64(key), binary.BigEndian.Uint64(key[9:]))
		if len(key) == 18 {
			s += " tombstone"
		}
		return s
	}
	printable := len(key) > 0 && !strings.ContainsFunc(string(key), func(r rune) bool { return r < 0x20 || r > 0x7e })
	if printable {
		return fmt.Sprintf("key %q", key)
	}
	return fmt.Sprintf("key %x", key)
}

// writeAt overwrites bytes of path at off and syncs the file.
func writeAt(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
