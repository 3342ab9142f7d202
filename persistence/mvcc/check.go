package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/aetcd/aetcd/messages"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// bbolt's on-disk format (go.etcd.io/bbolt/internal/common), as much of it
// as checkFile needs. A page starts with a 16-byte header: ID uint64, flags
// uint16, element count uint16, overflow page count uint32. A meta page
// holds after it magic, version, page size, flags (uint32 each), the root
// bucket (root page, sequence), the freelist page, the high-water mark (the
// first page ID not in use), the transaction ID and an FNV-64a checksum of
// the fields before it (uint64 each). Branch elements are (pos, key size
// uint32, child page uint64); leaf elements (flags, pos, key size, value
// size uint32); pos counts from the element itself. A leaf element with
// flag 1 is a nested bucket: its value is (root page, sequence), followed,
// when the root page is 0, by the bucket's only page (an inline page).
const (
	boltPageHeaderLen  = 16
	boltElementLen     = 16
	boltMetaLen        = 64 // through the checksum
	boltBucketValueLen = 16
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltBranchFlag     = 0x01
	boltLeafFlag       = 0x02
	boltMetaFlag       = 0x04
	boltFreelistFlag   = 0x10
	boltBucketLeafFlag = 0x01
	boltNoFreelist     = ^uint64(0)
	// boltMaxPageSize bounds the page sizes tried for the second meta page
	// when the first is damaged (as bbolt: 1 KiB to 16 MiB).
	boltMaxPageSize = 16 << 20
)

// checkFile verifies the structure of the bbolt file at path by reading it
// as plain bytes, before bbolt maps it: the meta page bbolt will use
// (bbolt's rule: the valid one with the higher transaction ID), and every
// page reachable from it, which must lie below the high-water mark and
// inside the file, be referenced once, carry its own ID and a branch or
// leaf type (the freelist page its type), hold elements, keys and values
// inside the page, keys in strictly ascending order within the bounds the
// parent branch sets, and nested buckets whose values are well formed.
// These are the checks of bbolt's Tx.Check, made without the unchecked
// pointer arithmetic bbolt does on page contents: on a damaged page bbolt
// can build a slice that points outside its memory map, which crashes the
// process ("found bad pointer in Go heap") instead of failing.
//
// It fails with an error wrapping ErrCorrupt that names the page; with the
// I/O error if the file cannot be read.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mvcc: open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mvcc: open %s: %w", path, err)
	}
	c := &fileChecker{f: f, path: path, size: info.Size(), seen: map[uint64]bool{}}
	return c.run()
}

type fileChecker struct {
	f        *os.File
	path     string
	size     int64
	pageSize int64
	hwm      uint64          // high-water mark of the meta page in use
	seen     map[uint64]bool // pages referenced so far (overflow pages included)
}

type boltMeta struct {
	pageSize                uint32
	root, freelist, hwm, tx uint64
	valid                   bool
}

func (c *fileChecker) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, c.path, fmt.Sprintf(format, args...))
}

// readAt reads n bytes at off; a short file is corruption.
func (c *fileChecker) readAt(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > c.size {
		return nil, c.corrupt("bytes %d-%d are beyond the end of the file (%d bytes)", off, off+n-1, c.size)
	}
	b := make([]byte, n)
	if _, err := c.f.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("mvcc: read %s: %w", c.path, err)
	}
	return b, nil
}

func parseMeta(p []byte) boltMeta {
	le := binary.LittleEndian
	m := boltMeta{
		pageSize: le.Uint32(p[24:]),
		root:     le.Uint64(p[32:]), freelist: le.Uint64(p[48:]), hwm: le.Uint64(p[56:]), tx: le.Uint64(p[64:]),
	}
	sum := fnv.New64a()
	sum.Write(p[boltPageHeaderLen : boltPageHeaderLen+boltMetaLen-8])
	m.valid = le.Uint32(p[16:]) == boltMagic && le.Uint32(p[20:]) == boltVersion &&
		le.Uint16(p[8:])&boltMetaFlag != 0 && le.Uint64(p[boltPageHeaderLen+boltMetaLen-8:]) == sum.Sum64()
	return m
}

func (c *fileChecker) run() error {
	const metaBytes = boltPageHeaderLen + boltMetaLen
	if c.size < metaBytes {
		return c.corrupt("%d bytes: too small for a bbolt file", c.size)
	}
	p, err := c.readAt(0, metaBytes)
	if err != nil {
		return err
	}
	m0, m1 := parseMeta(p), boltMeta{}
	if m0.valid {
		c.pageSize = int64(m0.pageSize)
	}
	// The second meta page is one page in; without a valid first meta
	// page, try each page size it may have been written with.
	for ps := int64(1024); ps <= boltMaxPageSize && ps+metaBytes <= c.size; ps <<= 1 {
		if c.pageSize != 0 && ps != c.pageSize {
			continue
		}
		if p, err = c.readAt(ps, metaBytes); err != nil {
			return err
		}
		if m := parseMeta(p); m.valid && (c.pageSize != 0 || int64(m.pageSize) == ps) {
			m1, c.pageSize = m, ps
			break
		}
	}
	m := m0
	switch {
	case !m0.valid && !m1.valid:
		return c.corrupt("neither meta page is valid (bad magic, version or checksum)")
	case !m0.valid || (m1.valid && m1.tx > m0.tx):
		m = m1
	}
	if c.pageSize < 1024 || c.pageSize&(c.pageSize-1) != 0 || int64(m.pageSize) != c.pageSize {
		return c.corrupt("meta page of transaction %d: page size %d", m.tx, m.pageSize)
	}
	c.hwm = m.hwm
	if c.hwm < 3 || c.hwm > uint64(c.size/c.pageSize) {
		return c.corrupt("meta page of transaction %d: high-water mark %d, but the file holds %d pages", m.tx, m.hwm, c.size/c.pageSize)
	}
	if _, err := c.tree(m.root, "the root bucket", nil, nil); err != nil {
		return err
	}
	if m.freelist != boltNoFreelist {
		return c.freelist(m.freelist)
	}
	return nil
}

// page reads page id with its overflow pages, checking that they are below
// the high-water mark, referenced once and carry the page's own ID.
func (c *fileChecker) page(id uint64, of string) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, c.corrupt("%s references page %d, outside 2..%d", of, id, c.hwm-1)
	}
	h, err := c.readAt(int64(id)*c.pageSize, boltPageHeaderLen)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if got := le.Uint64(h); got != id {
		return nil, c.corrupt("page %d (of %s) carries ID %d", id, of, got)
	}
	overflow := uint64(le.Uint32(h[12:]))
	if id+overflow >= c.hwm {
		return nil, c.corrupt("page %d (of %s) has %d overflow pages, past the high-water mark %d", id, of, overflow, c.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i] {
			return nil, c.corrupt("page %d (of %s) is referenced twice", i, of)
		}
		c.seen[i] = true
	}
	return c.readAt(int64(id)*c.pageSize, int64(overflow+1)*c.pageSize)
}

// tree checks page id of bucket name and the pages below it. Every key must
// be at least lo (if not nil) and below hi (if not nil). It returns the
// page's last key.
func (c *fileChecker) tree(id uint64, name string, lo, hi []byte) ([]byte, error) {
	p, err := c.page(id, name)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("page %d (of %s)", id, name)
	if flags := binary.LittleEndian.Uint16(p[8:]); flags == boltLeafFlag {
		return c.leaf(p, where, name, lo, hi, false)
	} else if flags != boltBranchFlag {
		return nil, c.corrupt("%s has flags %#x, want a branch or leaf page", where, flags)
	}
	le := binary.LittleEndian
	count := int(le.Uint16(p[10:]))
	if count == 0 || boltPageHeaderLen+count*boltElementLen > len(p) {
		return nil, c.corrupt("%s: branch with %d elements", where, count)
	}
	keys := make([][]byte, count)
	off := uint64(boltPageHeaderLen + count*boltElementLen) // where the next key must start
	for i := range count {
		e := boltPageHeaderLen + i*boltElementLen
		pos, ksize := uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:]))
		if uint64(e)+pos != off {
			return nil, c.corrupt("%s: element %d's key starts at byte %d, want %d (bbolt packs keys after the elements)", where, i, uint64(e)+pos, off)
		}
		if off+ksize > uint64(len(p)) {
			return nil, c.corrupt("%s: element %d's key runs past the page", where, i)
		}
		keys[i] = p[off : off+ksize]
		off += ksize
		if err := c.order(where, i, keys, lo, hi); err != nil {
			return nil, err
		}
	}
	var last []byte
	for i := range count {
		upper := hi
		if i+1 < count {
			upper = keys[i+1]
		}
		child := le.Uint64(p[boltPageHeaderLen+i*boltElementLen+8:])
		if last, err = c.tree(child, name, keys[i], upper); err != nil {
			return nil, err
		}
	}
	return last, nil
}

// order checks keys[i] against its predecessor and the bounds.
func (c *fileChecker) order(where string, i int, keys [][]byte, lo, hi []byte) error {
	k := keys[i]
	switch {
	case i > 0 && bytes.Compare(keys[i-1], k) >= 0:
		return c.corrupt("%s: key %d (%x) is not above key %d (%x)", where, i, k, i-1, keys[i-1])
	case lo != nil && bytes.Compare(k, lo) < 0:
		return c.corrupt("%s: key %d (%x) is below its parent's key %x", where, i, k, lo)
	case hi != nil && bytes.Compare(k, hi) >= 0:
		return c.corrupt("%s: key %d (%x) is not below the parent's next key %x", where, i, k, hi)
	}
	return nil
}

// leaf checks the leaf page p (a page of the file, or an inline page, which
// p then holds exactly) and the buckets nested in it, and returns its last
// key. bbolt writes a page's keys and values packed in element order right
// after the elements, and an inline page with ID 0, no overflow and nothing
// after its last value: anything else is damage (a changed element count,
// position or size).
func (c *fileChecker) leaf(p []byte, where, name string, lo, hi []byte, inline bool) ([]byte, error) {
	le := binary.LittleEndian
	count := int(le.Uint16(p[10:]))
	if boltPageHeaderLen+count*boltElementLen > len(p) {
		return nil, c.corrupt("%s: %d elements do not fit", where, count)
	}
	if id, overflow := le.Uint64(p), le.Uint32(p[12:]); inline && (id != 0 || overflow != 0) {
		return nil, c.corrupt("%s: inline page with ID %d and overflow %d, want 0 and 0", where, id, overflow)
	}
	keys := make([][]byte, count)
	off := uint64(boltPageHeaderLen + count*boltElementLen) // where the next key must start
	for i := range count {
		e := boltPageHeaderLen + i*boltElementLen
		flags, pos := le.Uint32(p[e:]), uint64(le.Uint32(p[e+4:]))
		ksize, vsize := uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
		if uint64(e)+pos != off {
			return nil, c.corrupt("%s: element %d's key starts at byte %d, want %d (bbolt packs keys and values after the elements)", where, i, uint64(e)+pos, off)
		}
		if off+ksize+vsize > uint64(len(p)) {
			return nil, c.corrupt("%s: element %d's key and value run past the page", where, i)
		}
		if flags&^boltBucketLeafFlag != 0 {
			return nil, c.corrupt("%s: element %d has flags %#x", where, i, flags)
		}
		k := p[off : off+ksize]
		v := p[off+ksize : off+ksize+vsize]
		off += ksize + vsize
		keys[i] = k
		if err := c.order(where, i, keys, lo, hi); err != nil {
			return nil, err
		}
		if flags&boltBucketLeafFlag == 0 {
			continue
		}
		child := fmt.Sprintf("bucket %q", k)
		if len(v) < boltBucketValueLen {
			return nil, c.corrupt("%s: %s has a %d-byte value", where, child, len(v))
		}
		if root := le.Uint64(v); root != 0 {
			if _, err := c.tree(root, child, nil, nil); err != nil {
				return nil, err
			}
			continue
		}
		inline := v[boltBucketValueLen:]
		if len(inline) < boltPageHeaderLen || le.Uint16(inline[8:]) != boltLeafFlag {
			return nil, c.corrupt("%s: inline %s is not a leaf page", where, child)
		}
		if _, err := c.leaf(inline, fmt.Sprintf("inline page of %s in %s", child, where), child, nil, nil, true); err != nil {
			return nil, err
		}
	}
	if inline && off != uint64(len(p)) {
		return nil, c.corrupt("%s: inline page of %d bytes holds %d", where, len(p), off)
	}
	if count == 0 {
		return nil, nil
	}
	return keys[count-1], nil
}

// freelist checks the freelist page: its type and that the free page IDs
// it lists fit in it and lie in 2..high-water mark.
func (c *fileChecker) freelist(id uint64) error {
	p, err := c.page(id, "the freelist")
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if flags := le.Uint16(p[8:]); flags != boltFreelistFlag {
		return c.corrupt("freelist page %d has flags %#x", id, flags)
	}
	count, start := uint64(le.Uint16(p[10:])), uint64(boltPageHeaderLen)
	if count == 0xFFFF { // the count is in the first element
		count, start = le.Uint64(p[boltPageHeaderLen:]), boltPageHeaderLen+8
	}
	if count > (uint64(len(p))-start)/8 {
		return c.corrupt("freelist page %d: %d page IDs do not fit", id, count)
	}
	for i := range count {
		if free := le.Uint64(p[start+8*i:]); free < 2 || free >= c.hwm {
			return c.corrupt("freelist page %d lists page %d, outside 2..%d", id, free, c.hwm-1)
		}
	}
	return nil
}

// checkBuckets checks the schema of a file that passed checkFile: only the
// buckets this package writes, none nested or with a sequence, only its
// keys in bucket meta, every record of buckets meta, members and removed
// members sealed, and members and removed members that decode (restore
// reads buckets key and lease, with the same care). It visits every page
// of the others.
func checkBuckets(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if seq := b.Sequence(); seq != 0 {
			return fmt.Errorf("bucket %q has sequence %d; this package never sets one", name, seq)
		}
		var check func(k, v []byte) error
		switch string(name) {
		case string(keyBucketName), string(leaseBucketName):
			return nil // restore reads them
		case string(metaBucketName):
			check = func(k, v []byte) error {
				switch string(k) {
				case string(consistentIndexKey), string(scheduledCompactKey), string(finishedCompactKey), string(recordFormatKey):
					if _, err := unseal(k, v); err != nil {
						return fmt.Errorf("meta %s: %w", k, err)
					}
					return nil
				}
				return fmt.Errorf("bucket meta holds unknown key %q", k)
			}
		case string(membersBucketName):
			check = func(k, v []byte) error {
				m := new(messages.Member)
				v, err := unseal(k, v)
				if err == nil {
					err = decodeExact(v, m)
				}
				if err != nil || len(k) != 8 || m.ID != binary.BigEndian.Uint64(k) {
					return fmt.Errorf("member record %x does not decode (%v) or holds another member", k, err)
				}
				return nil
			}
		case string(removedBucketName):
			check = func(k, v []byte) error {
				v, err := unseal(k, v)
				if err != nil || len(k) != 8 || len(v) != 0 {
					return fmt.Errorf("removed member record %x = %x (%v): want an 8-byte key and no value", k, v, err)
				}
				return nil
			}
		default:
			return fmt.Errorf("unknown bucket %q", name)
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil && b.Bucket(k) != nil {
				return fmt.Errorf("bucket %q holds a nested bucket %q", name, k)
			}
			if err := check(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// decodeExact unmarshals b into m and checks that b is exactly what this
// package writes for m: no unknown fields, and the encoding Marshal gives
// (fields in number order, each once, shortest varints). A bit flip that
// leaves a record decodable often breaks one of these.
func decodeExact(b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		return errors.New("unknown fields")
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return errors.New("not in the encoding this package writes")
	}
	return nil
}
