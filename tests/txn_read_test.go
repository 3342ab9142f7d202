package tests

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestReadOnlyTxnIsARead checks that a txn without writes is served as a
// read, as etcd's Txn does: linearizable, serializable or nested, it adds
// no Raft entry, answers with the current revision and a full header, and
// sees a write acknowledged just before it; a write txn is still proposed.
func TestReadOnlyTxnIsARead(t *testing.T) {
	checkNoGoroutineLeak(t)
	m := startMember(t, t.TempDir())
	c := newClient(t, m.ClientAddrs()...)
	ctx := ctxT(t)
	seed(t, c, "a", "1", "b", "2") // rev 3
	raftIndex := func() uint64 {
		t.Helper()
		st, err := c.Status(ctx, m.ClientAddrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		return st.RaftIndex
	}
	readOnly := []clientv3.Op{
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "=", "1")},
			[]clientv3.Op{clientv3.OpGet("a"), clientv3.OpGet("b")}, []clientv3.Op{clientv3.OpGet("b")}),
		clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("a", clientv3.WithSerializable()), clientv3.OpGet("", clientv3.WithPrefix(), clientv3.WithSerializable())}, nil),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Version("b"), "=", 1)}, []clientv3.Op{
			clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Version("a"), ">", 0)}, []clientv3.Op{clientv3.OpGet("a", clientv3.WithRev(2))}, nil),
		}, nil),
	}
	// Background entries (none expected once the seed writes are applied)
	// would move the index: allow a few attempts.
	quiet := false
	for attempt := 0; attempt < 5 && !quiet; attempt++ {
		before := raftIndex()
		for i, op := range readOnly {
			r, err := c.Do(ctx, op)
			if err != nil {
				t.Fatalf("read-only txn %d: %v", i, err)
			}
			tr := r.Txn()
			if !tr.Succeeded || tr.Header.Revision != 3 || tr.Header.MemberId == 0 || tr.Header.ClusterId == 0 || tr.Header.RaftTerm == 0 {
				t.Fatalf("read-only txn %d: %+v", i, tr)
			}
		}
		quiet = raftIndex() == before
	}
	if !quiet {
		t.Fatal("read-only txns added Raft entries")
	}

	// A write txn is proposed; a linearizable read-only txn right after it
	// sees the write.
	before := raftIndex()
	if _, err := c.Txn(ctx).Then(clientv3.OpPut("a", "3")).Commit(); err != nil {
		t.Fatal(err)
	}
	if raftIndex() <= before {
		t.Fatal("write txn added no Raft entry")
	}
	r, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "3")).Then(clientv3.OpGet("a")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Succeeded || r.Header.Revision != 4 || kvOf(t, r.Responses[0].GetResponseRange().Kvs) != "a=3 c2 m4 v2 l0" {
		t.Fatalf("read-only txn after a write: %+v", r)
	}
}
