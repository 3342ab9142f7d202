package mvcc

import (
	"bytes"

	"github.com/google/btree"
)

// btreeDegree is the degree of the key index B-tree (etcd uses 32).
const btreeDegree = 32

// keyTree maps keys to their histories. A tree shared with a View (through
// Clone) is only read.
type keyTree = btree.BTreeG[*keyIndex]

func newKeyTree() *keyTree { return btree.NewG(btreeDegree, keyIndexLess) }

// keyRange is a normalised etcd key range.
type keyRange struct {
	key    []byte
	end    []byte // exclusive upper bound; nil means none (unless single)
	single bool
}

// newKeyRange interprets etcd's range_end: empty means the single key, "\0"
// means every key >= key, anything else is the exclusive end.
func newKeyRange(key, rangeEnd []byte) keyRange {
	switch {
	case len(rangeEnd) == 0:
		return keyRange{key: key, single: true}
	case len(rangeEnd) == 1 && rangeEnd[0] == 0:
		return keyRange{key: key}
	default:
		return keyRange{key: key, end: rangeEnd}
	}
}

// visit calls f on every key history in r, in key order, until f returns false.
func visit(t *keyTree, r keyRange, f func(*keyIndex) bool) {
	probe := &keyIndex{key: r.key}
	if r.single {
		if ki, ok := t.Get(probe); ok {
			f(ki)
		}
		return
	}
	t.AscendGreaterOrEqual(probe, func(ki *keyIndex) bool {
		if r.end != nil && bytes.Compare(ki.key, r.end) >= 0 {
			return false
		}
		return f(ki)
	})
}

// revisionsAt returns, in key order, the revisions of the keys in r that
// exist at atRev, at most limit of them (no limit if limit <= 0), and the
// number of such keys regardless of limit.
func revisionsAt(t *keyTree, r keyRange, atRev int64, limit int64) (revs []revision, total int64) {
	visit(t, r, func(ki *keyIndex) bool {
		if rev, _, _, ok := ki.get(atRev); ok {
			if limit <= 0 || int64(len(revs)) < limit {
				revs = append(revs, rev)
			}
			total++
		}
		return true
	})
	return revs, total
}

// countAt returns the number of keys in r that exist at atRev.
func countAt(t *keyTree, r keyRange, atRev int64) (total int64) {
	visit(t, r, func(ki *keyIndex) bool {
		if _, _, _, ok := ki.get(atRev); ok {
			total++
		}
		return true
	})
	return total
}

// index is the writer's key index.
type index struct {
	tree *keyTree
	// epoch advances whenever the tree is shared (snapshot): key histories
	// created in an older epoch may be visible to readers and are copied
	// before modification.
	epoch uint64
}

func newIndex() *index { return &index{tree: newKeyTree()} }

func (ix *index) lookup(key []byte) *keyIndex {
	ki, _ := ix.tree.Get(&keyIndex{key: key})
	return ki
}

// snapshot returns an immutable O(1) copy of the tree. Later writes copy
// what they change.
func (ix *index) snapshot() *keyTree {
	t := ix.tree.Clone()
	ix.epoch++
	return t
}

// mutable returns a version of ki that the writer may modify in place,
// replacing ki in the tree with a copy if ki may be shared.
func (ix *index) mutable(ki *keyIndex) *keyIndex {
	if ki.epoch == ix.epoch {
		return ki
	}
	c := &keyIndex{
		key:         ki.key,
		modified:    ki.modified,
		generations: append(make([]generation, 0, len(ki.generations)+1), ki.generations...),
		epoch:       ix.epoch,
	}
	ix.tree.ReplaceOrInsert(c)
	return c
}

// put records a put of key at rev. key must not be modified afterwards.
func (ix *index) put(key []byte, rev revision) { ix.putAt(ix.lookup(key), key, rev) }

// putAt is put with ki = ix.lookup(key) already known (nil if absent).
func (ix *index) putAt(ki *keyIndex, key []byte, rev revision) {
	if ki == nil {
		ki = &keyIndex{key: key, epoch: ix.epoch}
		ki.put(rev)
		ix.tree.ReplaceOrInsert(ki)
		return
	}
	ix.mutable(ki).put(rev)
}

// tombstone records a deletion of key at rev; false if key is not live.
func (ix *index) tombstone(key []byte, rev revision) bool {
	ki := ix.lookup(key)
	if ki == nil || !ki.live() {
		return false
	}
	return ix.mutable(ki).tombstone(rev)
}

// compact drops what no read at or after atRev needs and returns the
// removed revisions (in no particular order).
func (ix *index) compact(atRev int64) []revision {
	var todo []*keyIndex
	ix.tree.Ascend(func(ki *keyIndex) bool {
		if ki.needsCompact(atRev) {
			todo = append(todo, ki)
		}
		return true
	})
	var removed []revision
	for _, ki := range todo {
		m := ix.mutable(ki)
		removed = m.compact(atRev, removed)
		if m.isEmpty() {
			ix.tree.Delete(m)
		}
	}
	return removed
}

// keep returns the revisions <= atRev that a compaction at atRev would keep
// (tombstones excluded), as etcd's treeIndex.Keep.
func (ix *index) keep(atRev int64) map[revision]struct{} {
	available := make(map[revision]struct{})
	ix.tree.Ascend(func(ki *keyIndex) bool {
		ki.keep(atRev, available)
		return true
	})
	return available
}
