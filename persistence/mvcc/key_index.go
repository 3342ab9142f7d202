package mvcc

import (
	"bytes"
	"fmt"
)

// generation is one life of a key: from the put that created it to the
// tombstone that ended it (the last generation of a live key has no
// tombstone; the last generation of a deleted key is empty).
type generation struct {
	ver     int64      // number of changes in this generation, including compacted ones
	created revision   // the put that created the key (zero if compacted before a restore)
	revs    []revision // ascending; the last one is the tombstone unless this is the last generation
}

func (g *generation) isEmpty() bool { return len(g.revs) == 0 }

// keyIndex is the history of one key, as etcd's keyIndex: generations
// separated by tombstones. put(1);put(2);delete(3);put(4) gives
// generations {1,2,3(t)} {4}; a further delete(5) gives {1,2,3(t)} {4,5(t)} {}.
//
// Copy-on-write: a keyIndex reachable from a published View is immutable.
// The writer mutates one in place only while epoch equals the index's
// current epoch (see index.mutable); slices of revisions may be shared
// between versions, and the writer only ever appends past the length that
// any older version sees, or reslices its own copy.
type keyIndex struct {
	key         []byte
	modified    revision // the latest change (put or tombstone)
	generations []generation
	epoch       uint64
}

func keyIndexLess(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 }

// isEmpty reports whether the key has no revisions left (after compaction).
func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 0 || (len(ki.generations) == 1 && ki.generations[0].isEmpty())
}

// live reports whether the key exists at the latest revision.
func (ki *keyIndex) live() bool {
	return len(ki.generations) > 0 && !ki.generations[len(ki.generations)-1].isEmpty()
}

// put records a change at rev, which must be greater than ki.modified.
func (ki *keyIndex) put(rev revision) {
	if !rev.greater(ki.modified) {
		panic("mvcc: keyIndex.put: revision " + revString(rev) + " not greater than last modification " + revString(ki.modified) + " of key " + string(ki.key))
	}
	if len(ki.generations) == 0 {
		ki.generations = append(ki.generations, generation{})
	}
	g := &ki.generations[len(ki.generations)-1]
	if g.isEmpty() {
		g.created = rev
	}
	g.revs = append(g.revs, rev)
	g.ver++
	ki.modified = rev
}

// tombstone records a deletion at rev and starts a new, empty generation.
// It reports false (and changes nothing) if the key is not live.
func (ki *keyIndex) tombstone(rev revision) bool {
	if !ki.live() {
		return false
	}
	ki.put(rev)
	ki.generations = append(ki.generations, generation{})
	return true
}

// restore starts the history of a key whose first record on disk is a put at
// modified, with the created revision and version stored in that record.
func (ki *keyIndex) restore(created, modified revision, ver int64) {
	ki.modified = modified
	ki.generations = append(ki.generations, generation{ver: ver, created: created, revs: []revision{modified}})
}

// restoreTombstone starts the history of a key whose first record on disk is
// a tombstone (its creation was compacted away).
func (ki *keyIndex) restoreTombstone(rev revision) {
	ki.restore(revision{}, rev, 1)
	ki.generations = append(ki.generations, generation{})
}

// get returns the change visible at atRev (the latest one with main <=
// atRev), the key's creation revision and its version then. ok is false if
// the key does not exist at atRev.
func (ki *keyIndex) get(atRev int64) (mod, created revision, ver int64, ok bool) {
	g := ki.findGeneration(atRev)
	if g == nil {
		return revision{}, revision{}, 0, false
	}
	for i := len(g.revs) - 1; i >= 0; i-- {
		if g.revs[i].main <= atRev {
			return g.revs[i], g.created, g.ver - int64(len(g.revs)-i-1), true
		}
	}
	return revision{}, revision{}, 0, false
}

// findGeneration returns the generation in which the key is live at atRev,
// or nil if it does not exist then (before creation or after a tombstone).
func (ki *keyIndex) findGeneration(atRev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if g.isEmpty() {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].main <= atRev {
			return nil // deleted at or before atRev
		}
		if g.revs[0].main <= atRev {
			return g
		}
	}
	return nil
}

// compactPoint finds what compaction at atRev keeps: generations before
// genIdx go entirely; in generation genIdx the revisions before revIndex go
// (revIndex is the latest revision <= atRev, -1 if there is none).
func (ki *keyIndex) compactPoint(atRev int64) (genIdx, revIndex int) {
	for genIdx < len(ki.generations)-1 {
		g := &ki.generations[genIdx]
		if g.revs[len(g.revs)-1].main >= atRev {
			break
		}
		genIdx++
	}
	g := &ki.generations[genIdx]
	revIndex = -1
	for i := len(g.revs) - 1; i >= 0; i-- {
		if g.revs[i].main <= atRev {
			revIndex = i
			break
		}
	}
	return genIdx, revIndex
}

// needsCompact reports whether compact(atRev) would remove anything.
func (ki *keyIndex) needsCompact(atRev int64) bool {
	genIdx, revIndex := ki.compactPoint(atRev)
	return genIdx > 0 || revIndex > 0
}

// compact removes the revisions that no read at or after atRev needs: for
// each key the latest revision <= atRev is kept (even a tombstone, which a
// later compaction removes), everything older goes. The removed revisions
// are appended to removed. ki must be mutable.
func (ki *keyIndex) compact(atRev int64, removed []revision) []revision {
	genIdx, revIndex := ki.compactPoint(atRev)
	for i := range genIdx {
		removed = append(removed, ki.generations[i].revs...)
	}
	g := &ki.generations[genIdx]
	if revIndex > 0 {
		removed = append(removed, g.revs[:revIndex]...)
		g.revs = g.revs[revIndex:]
	}
	if genIdx > 0 {
		ki.generations = ki.generations[genIdx:]
	}
	return removed
}

// keep adds to available the revisions a compaction at atRev would keep
// below or at atRev, except a tombstone (as etcd's keyIndex.keep, which
// defines what HashKV hashes).
func (ki *keyIndex) keep(atRev int64, available map[revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	genIdx, revIndex := ki.compactPoint(atRev)
	if revIndex < 0 {
		return
	}
	g := &ki.generations[genIdx]
	if revIndex == len(g.revs)-1 && genIdx != len(ki.generations)-1 {
		return // a tombstone
	}
	available[g.revs[revIndex]] = struct{}{}
}

func revString(r revision) string { return fmt.Sprintf("%d.%d", r.main, r.sub) }
