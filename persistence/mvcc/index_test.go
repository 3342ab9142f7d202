package mvcc

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/aetcd/aetcd/messages"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func rv(main, sub int64) revision { return revision{main: main, sub: sub} }

// etcdExample builds etcd's documented keyIndex:
// put(1.0);put(2.0);tombstone(3.0);put(4.0);tombstone(5.0).
func etcdExample() *keyIndex {
	ki := &keyIndex{key: []byte("foo")}
	ki.put(rv(1, 0))
	ki.put(rv(2, 0))
	ki.tombstone(rv(3, 0))
	ki.put(rv(4, 0))
	ki.tombstone(rv(5, 0))
	return ki
}

func TestKeyIndexGet(t *testing.T) {
	ki := etcdExample()
	cases := []struct {
		atRev      int64
		ok         bool
		mod, creat revision
		ver        int64
	}{
		{0, false, revision{}, revision{}, 0},
		{1, true, rv(1, 0), rv(1, 0), 1},
		{2, true, rv(2, 0), rv(1, 0), 2},
		{3, false, revision{}, revision{}, 0},
		{4, true, rv(4, 0), rv(4, 0), 1},
		{5, false, revision{}, revision{}, 0},
		{6, false, revision{}, revision{}, 0},
	}
	for _, c := range cases {
		mod, created, ver, ok := ki.get(c.atRev)
		if ok != c.ok || mod != c.mod || created != c.creat || ver != c.ver {
			t.Errorf("get(%d) = %v %v %d %v, want %v %v %d %v", c.atRev, mod, created, ver, ok, c.mod, c.creat, c.ver, c.ok)
		}
	}
	if ki.tombstone(rv(6, 0)) {
		t.Error("tombstone of a deleted key succeeded")
	}
}

func TestKeyIndexCompact(t *testing.T) {
	// etcd's documented compaction sequence, plus the removed revisions.
	gens := func(g ...[]revision) [][]revision { return g }
	cases := []struct {
		atRev   int64
		want    [][]revision
		removed []revision
		empty   bool
	}{
		{1, gens([]revision{rv(1, 0), rv(2, 0), rv(3, 0)}, []revision{rv(4, 0), rv(5, 0)}, nil), nil, false},
		{2, gens([]revision{rv(2, 0), rv(3, 0)}, []revision{rv(4, 0), rv(5, 0)}, nil), []revision{rv(1, 0)}, false},
		{3, gens([]revision{rv(3, 0)}, []revision{rv(4, 0), rv(5, 0)}, nil), []revision{rv(1, 0), rv(2, 0)}, false},
		{4, gens([]revision{rv(4, 0), rv(5, 0)}, nil), []revision{rv(1, 0), rv(2, 0), rv(3, 0)}, false},
		{5, gens([]revision{rv(5, 0)}, nil), []revision{rv(1, 0), rv(2, 0), rv(3, 0), rv(4, 0)}, false},
		{6, gens(nil), []revision{rv(1, 0), rv(2, 0), rv(3, 0), rv(4, 0), rv(5, 0)}, true},
	}
	for _, c := range cases {
		ki := etcdExample()
		if got := ki.needsCompact(c.atRev); got != (len(c.removed) > 0) {
			t.Errorf("needsCompact(%d) = %v", c.atRev, got)
		}
		removed := ki.compact(c.atRev, nil)
		var got [][]revision
		for _, g := range ki.generations {
			got = append(got, g.revs)
		}
		for i := range got {
			if len(got[i]) == 0 {
				got[i] = nil
			}
		}
		if !reflect.DeepEqual(got, c.want) || !slices.Equal(removed, c.removed) || ki.isEmpty() != c.empty {
			t.Errorf("compact(%d): generations %v removed %v empty %v; want %v %v %v", c.atRev, got, removed, ki.isEmpty(), c.want, c.removed, c.empty)
		}
	}
	// Compacting twice: the tombstone kept at 5 goes at 6.
	ki := etcdExample()
	ki.compact(5, nil)
	if removed := ki.compact(6, nil); !slices.Equal(removed, []revision{rv(5, 0)}) || !ki.isEmpty() {
		t.Errorf("compact(5) then compact(6): removed %v empty %v", removed, ki.isEmpty())
	}
}

func TestKeyIndexKeep(t *testing.T) {
	cases := []struct {
		atRev int64
		want  []revision
	}{
		{1, []revision{rv(1, 0)}},
		{2, []revision{rv(2, 0)}},
		{3, nil}, // a tombstone is not kept for hashing
		{4, []revision{rv(4, 0)}},
		{5, nil},
		{6, nil},
	}
	for _, c := range cases {
		available := map[revision]struct{}{}
		etcdExample().keep(c.atRev, available)
		var got []revision
		for r := range available {
			got = append(got, r)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("keep(%d) = %v, want %v", c.atRev, got, c.want)
		}
	}
}

// TestIndexSnapshotIsolation: a snapshot never sees later writes,
// tombstones or compactions of the index it came from.
func TestIndexSnapshotIsolation(t *testing.T) {
	ix := newIndex()
	for i := int64(2); i < 50; i++ {
		ix.put([]byte{byte('a' + i%5)}, rv(i, 0))
	}
	snap := ix.snapshot()
	type state struct {
		key        string
		mod, creat revision
		ver        int64
	}
	read := func(t *keyTree, atRev int64) []state {
		var out []state
		visit(t, newKeyRange([]byte{0}, []byte{0}), func(ki *keyIndex) bool {
			if m, c, v, ok := ki.get(atRev); ok {
				out = append(out, state{string(ki.key), m, c, v})
			}
			return true
		})
		return out
	}
	before := read(snap, 49)
	beforeOld := read(snap, 30)
	ix.tombstone([]byte("a"), rv(50, 0))
	ix.put([]byte("b"), rv(51, 0))
	ix.put([]byte("z"), rv(51, 1))
	ix.compact(51)
	ix.put([]byte("c"), rv(52, 0))
	if got := read(snap, 49); !reflect.DeepEqual(got, before) {
		t.Fatalf("snapshot changed: %v, want %v", got, before)
	}
	if got := read(snap, 30); !reflect.DeepEqual(got, beforeOld) {
		t.Fatalf("snapshot history changed: %v, want %v", got, beforeOld)
	}
	if got := read(ix.tree, 52); len(got) != 5 || got[0].key != "b" {
		t.Fatalf("index after writes: %v", got)
	}
}

func TestRevKeyEncoding(t *testing.T) {
	for _, c := range []struct {
		rev  revision
		tomb bool
	}{{rv(1, 0), false}, {rv(1<<40, 7), true}, {rv(2, 1<<33), false}} {
		k := appendRevKey(nil, c.rev, c.tomb)
		got, tomb, err := parseRevKey(k)
		if err != nil || got != c.rev || tomb != c.tomb {
			t.Errorf("round trip %v %v: %v %v %v", c.rev, c.tomb, got, tomb, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("short"), append(appendRevKey(nil, rv(1, 0), false), 'x'),
		func() []byte { k := appendRevKey(nil, rv(1, 0), false); k[8] = '-'; return k }(),
		appendRevKey(nil, rv(-1, 0), false), appendRevKey(nil, rv(1, -1), false)} {
		if _, _, err := parseRevKey(bad); err == nil {
			t.Errorf("parseRevKey(%x) succeeded", bad)
		}
	}
}

// TestPhysicalCompaction checks which records remain in bucket "key".
func TestPhysicalCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(0)
	apply := func(r *messages.InternalRequest) {
		idx++
		if e := s.Apply(idx, r).GetError(); e != nil {
			t.Fatalf("apply: %s", e.Message)
		}
	}
	put := func(k string) {
		apply(&messages.InternalRequest{Request: &messages.InternalRequest_Put{Put: &messages.PutRequest{Key: []byte(k), Value: []byte("v")}}})
	}
	del := func(k string) {
		apply(&messages.InternalRequest{Request: &messages.InternalRequest_DeleteRange{DeleteRange: &messages.DeleteRangeRequest{Key: []byte(k)}}})
	}
	compact := func(rev int64) {
		apply(&messages.InternalRequest{Request: &messages.InternalRequest_Compaction{Compaction: &messages.CompactionRequest{Revision: rev}}})
	}
	records := func() []string {
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
		var out []string
		_ = s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(keyBucketName).ForEach(func(k, v []byte) error {
				r, tomb, _ := parseRevKey(k)
				kv := new(messages.KeyValue)
				if err := protoUnmarshal(mustUnseal(k, v), kv); err != nil {
					t.Fatal(err)
				}
				s := string(kv.Key) + "@" + revString(r)
				if tomb {
					s += "t"
				}
				out = append(out, s)
				return nil
			})
		})
		return out
	}
	put("a") // 2
	put("a") // 3
	put("b") // 4
	del("a") // 5
	put("c") // 6
	put("c") // 7
	steps := []struct {
		rev  int64
		want []string
	}{
		{3, []string{"a@3.0", "b@4.0", "a@5.0t", "c@6.0", "c@7.0"}},
		{5, []string{"b@4.0", "a@5.0t", "c@6.0", "c@7.0"}},
		{6, []string{"b@4.0", "c@6.0", "c@7.0"}},
		{7, []string{"b@4.0", "c@7.0"}},
	}
	if got := records(); len(got) != 6 {
		t.Fatalf("before compaction: %v", got)
	}
	for _, st := range steps {
		compact(st.rev)
		if got := records(); !slices.Equal(got, st.want) {
			t.Fatalf("after compact(%d): %v, want %v", st.rev, got, st.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func protoUnmarshal(b []byte, kv *messages.KeyValue) error { return proto.Unmarshal(b, kv) }
