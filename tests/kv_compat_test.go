package tests

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests drive an in-process member with etcd's own client and check
// responses field by field against etcd 3.6's semantics (shared/ETCD_API.md).

func newKV(t *testing.T) *clientv3.Client {
	t.Helper()
	checkNoGoroutineLeak(t)
	m := startMember(t, t.TempDir())
	return newClient(t, m.ClientAddrs()...)
}

func kvOf(t *testing.T, kvs []*mvccpb.KeyValue) string {
	t.Helper()
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, fmt.Sprintf("%s=%s c%d m%d v%d l%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease))
	}
	return strings.Join(parts, "; ")
}

func wantErr(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %q, got nil", msg)
	}
	// clientv3 turns a status whose message is one of etcd's errors into
	// rpctypes.EtcdError: getting one proves the message matched exactly.
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		if ee.Code() != code || ee.Error() != msg {
			t.Fatalf("want %v %q, got %v %q", code, msg, ee.Code(), ee.Error())
		}
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("want gRPC status %v %q, got %T %v", code, msg, err, err)
	}
	if st.Code() != code || st.Message() != msg {
		t.Fatalf("want %v %q, got %v %q", code, msg, st.Code(), st.Message())
	}
}

func currentRev(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	resp, err := c.Get(ctxT(t), "any")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func TestKVRevisionsAndVersions(t *testing.T) {
	c := newKV(t)
	ctx := ctxT(t)
	if rev := currentRev(t, c); rev != 1 {
		t.Fatalf("fresh store revision %d, want 1", rev)
	}
	p1, err := c.Put(ctx, "foo", "bar")
	if err != nil {
		t.Fatal(err)
	}
	if p1.Header.Revision != 2 || p1.PrevKv != nil {
		t.Fatalf("first put: header rev %d prev %v", p1.Header.Revision, p1.PrevKv)
	}
	if p1.Header.MemberId == 0 || p1.Header.ClusterId == 0 || p1.Header.RaftTerm == 0 {
		t.Fatalf("header not filled: %+v", p1.Header)
	}
	p2, err := c.Put(ctx, "foo", "baz", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p2.Header.Revision != 3 || kvOf(t, []*mvccpb.KeyValue{p2.PrevKv}) != "foo=bar c2 m2 v1 l0" {
		t.Fatalf("second put: rev %d prev %s", p2.Header.Revision, kvOf(t, []*mvccpb.KeyValue{p2.PrevKv}))
	}
	g, err := c.Get(ctx, "foo")
	if err != nil {
		t.Fatal(err)
	}
	if got := kvOf(t, g.Kvs); got != "foo=baz c2 m3 v2 l0" || g.Count != 1 || g.More {
		t.Fatalf("get: %s count %d more %v", got, g.Count, g.More)
	}
	d, err := c.Delete(ctx, "foo", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != 1 || d.Header.Revision != 4 || kvOf(t, d.PrevKvs) != "foo=baz c2 m3 v2 l0" {
		t.Fatalf("delete: deleted %d rev %d prev %s", d.Deleted, d.Header.Revision, kvOf(t, d.PrevKvs))
	}
	d2, err := c.Delete(ctx, "foo")
	if err != nil {
		t.Fatal(err)
	}
	if d2.Deleted != 0 || d2.Header.Revision != 4 {
		t.Fatalf("delete of missing key: deleted %d rev %d (must not bump)", d2.Deleted, d2.Header.Revision)
	}
	if _, err := c.Put(ctx, "foo", "again"); err != nil {
		t.Fatal(err)
	}
	g, _ = c.Get(ctx, "foo")
	if got := kvOf(t, g.Kvs); got != "foo=again c5 m5 v1 l0" {
		t.Fatalf("recreated key: %s", got)
	}
	// History: the revision of a Range does not change the header revision.
	old, err := c.Get(ctx, "foo", clientv3.WithRev(3))
	if err != nil {
		t.Fatal(err)
	}
	if got := kvOf(t, old.Kvs); got != "foo=baz c2 m3 v2 l0" || old.Header.Revision != 5 {
		t.Fatalf("get at rev 3: %s header rev %d", got, old.Header.Revision)
	}
	gone, _ := c.Get(ctx, "foo", clientv3.WithRev(4))
	if len(gone.Kvs) != 0 || gone.Count != 0 {
		t.Fatalf("get at rev 4 (deleted): %s", kvOf(t, gone.Kvs))
	}
}

func seed(t *testing.T, c *clientv3.Client, kvs ...string) {
	t.Helper()
	for i := 0; i+1 < len(kvs); i += 2 {
		if _, err := c.Put(ctxT(t), kvs[i], kvs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(resp *clientv3.GetResponse) string {
	var ks []string
	for _, kv := range resp.Kvs {
		ks = append(ks, string(kv.Key))
	}
	return strings.Join(ks, ",")
}

func TestKVRange(t *testing.T) {
	c := newKV(t)
	// revisions: a=2, b=3, c=4, d=5, b again=6 (b version 2), e=7
	seed(t, c, "a", "3", "b", "1", "c", "2", "d", "0", "b", "9", "e", "5")
	cases := []struct {
		name      string
		key       string
		opts      []clientv3.OpOption
		keys      string
		count     int64
		more      bool
		valuesOff bool
	}{
		{"single", "b", nil, "b", 1, false, false},
		{"missing", "zz", nil, "", 0, false, false},
		{"range", "b", []clientv3.OpOption{clientv3.WithRange("d")}, "b,c", 2, false, false},
		{"prefix", "", []clientv3.OpOption{clientv3.WithPrefix()}, "a,b,c,d,e", 5, false, false},
		{"from key", "c", []clientv3.OpOption{clientv3.WithFromKey()}, "c,d,e", 3, false, false},
		{"all from \\0", "\x00", []clientv3.OpOption{clientv3.WithFromKey()}, "a,b,c,d,e", 5, false, false},
		{"limit", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, "a,b", 5, true, false},
		{"limit equal", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(5)}, "a,b,c,d,e", 5, false, false},
		{"sort key desc", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, "e,d,c,b,a", 5, false, false},
		{"sort value none", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortNone)}, "d,c,a,e,b", 5, false, false},
		{"sort value desc limit", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithLimit(2)}, "b,e", 5, true, false},
		{"sort version desc", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend), clientv3.WithLimit(1)}, "b", 5, true, false},
		{"sort create asc", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}, "a,b,c,d,e", 5, false, false},
		{"sort mod desc", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}, "e,b,d,c,a", 5, false, false},
		{"keys only", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}, "a,b,c,d,e", 5, false, true},
		{"count only", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, "", 5, false, false},
		{"min mod rev", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(5)}, "b,d,e", 5, false, false},
		{"max mod rev", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxModRev(4)}, "a,c", 5, false, false},
		{"min create rev", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinCreateRev(4)}, "c,d,e", 5, false, false},
		{"max create rev", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMaxCreateRev(3)}, "a,b", 5, false, false},
		{"at rev 4", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(4)}, "a,b,c", 3, false, false},
		{"serializable", "b", []clientv3.OpOption{clientv3.WithSerializable()}, "b", 1, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(ctxT(t), tc.key, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(resp); got != tc.keys || resp.Count != tc.count || resp.More != tc.more {
				t.Fatalf("got keys %q count %d more %v; want %q %d %v", got, resp.Count, resp.More, tc.keys, tc.count, tc.more)
			}
			if resp.Header.Revision != 7 {
				t.Fatalf("header revision %d, want 7", resp.Header.Revision)
			}
			for _, kv := range resp.Kvs {
				if tc.valuesOff != (len(kv.Value) == 0) {
					t.Fatalf("key %s value %q (keys_only=%v)", kv.Key, kv.Value, tc.valuesOff)
				}
			}
		})
	}
	b, _ := c.Get(ctxT(t), "b")
	if got := kvOf(t, b.Kvs); got != "b=9 c3 m6 v2 l0" {
		t.Fatalf("b: %s", got)
	}
}

func TestKVPutOptions(t *testing.T) {
	c := newKV(t)
	ctx := ctxT(t)
	seed(t, c, "k", "v1")
	r, err := c.Put(ctx, "k", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if string(r.PrevKv.Value) != "v1" {
		t.Fatalf("prev kv %v", r.PrevKv)
	}
	g, _ := c.Get(ctx, "k")
	if got := kvOf(t, g.Kvs); got != "k=v1 c2 m3 v2 l0" {
		t.Fatalf("ignore_value put: %s", got)
	}
	if _, err := c.Put(ctx, "k", "", clientv3.WithIgnoreLease()); err != nil {
		t.Fatal(err)
	}
	g, _ = c.Get(ctx, "k")
	if got := kvOf(t, g.Kvs); got != "k=c2 m4 v3 l0" && got != "k= c2 m4 v3 l0" {
		t.Fatalf("ignore_lease put: %s", got)
	}
}

func TestKVErrors(t *testing.T) {
	c := newKV(t)
	seed(t, c, "k", "v", "other", "x")
	before := currentRev(t, c)
	manyOps := make([]clientv3.Op, 129)
	for i := range manyOps {
		manyOps[i] = clientv3.OpPut(fmt.Sprintf("k%d", i), "v")
	}
	cases := []struct {
		name string
		do   func() error
		code codes.Code
		msg  string
	}{
		{"get empty key", func() error { _, err := c.Get(ctxT(t), ""); return err }, codes.InvalidArgument, "etcdserver: key is not provided"},
		{"put empty key", func() error { _, err := c.Put(ctxT(t), "", "v"); return err }, codes.InvalidArgument, "etcdserver: key is not provided"},
		{"delete empty key", func() error { _, err := c.Delete(ctxT(t), ""); return err }, codes.InvalidArgument, "etcdserver: key is not provided"},
		{"invalid sort order", func() error {
			_, err := c.Get(ctxT(t), "k", clientv3.WithSort(clientv3.SortByKey, clientv3.SortOrder(7)))
			return err
		}, codes.InvalidArgument, "etcdserver: invalid sort option"},
		{"invalid sort target", func() error {
			_, err := c.Get(ctxT(t), "k", clientv3.WithSort(clientv3.SortTarget(9), clientv3.SortAscend))
			return err
		}, codes.InvalidArgument, "etcdserver: invalid sort option"},
		{"ignore value with value", func() error {
			_, err := c.Put(ctxT(t), "k", "v", clientv3.WithIgnoreValue())
			return err
		}, codes.InvalidArgument, "etcdserver: value is provided"},
		{"ignore value on missing key", func() error {
			_, err := c.Put(ctxT(t), "missing", "", clientv3.WithIgnoreValue())
			return err
		}, codes.InvalidArgument, "etcdserver: key not found"},
		{"ignore lease on missing key", func() error {
			_, err := c.Put(ctxT(t), "missing", "v", clientv3.WithIgnoreLease())
			return err
		}, codes.InvalidArgument, "etcdserver: key not found"},
		{"lease not found", func() error {
			_, err := c.Put(ctxT(t), "k", "v", clientv3.WithLease(12345))
			return err
		}, codes.NotFound, "etcdserver: requested lease not found"},
		{"too many txn ops", func() error {
			_, err := c.Txn(ctxT(t)).Then(manyOps...).Commit()
			return err
		}, codes.InvalidArgument, "etcdserver: too many operations in txn request"},
		{"duplicate put in txn", func() error {
			_, err := c.Txn(ctxT(t)).Then(clientv3.OpPut("a", "1"), clientv3.OpPut("a", "2")).Commit()
			return err
		}, codes.InvalidArgument, "etcdserver: duplicate key given in txn request"},
		{"put inside deleted range in txn", func() error {
			_, err := c.Txn(ctxT(t)).Then(clientv3.OpDelete("a", clientv3.WithRange("c")), clientv3.OpPut("b", "2")).Commit()
			return err
		}, codes.InvalidArgument, "etcdserver: duplicate key given in txn request"},
		{"duplicate put through nested txn", func() error {
			_, err := c.Txn(ctxT(t)).Then(clientv3.OpPut("a", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("a", "2")}, nil)).Commit()
			return err
		}, codes.InvalidArgument, "etcdserver: duplicate key given in txn request"},
		{"future revision", func() error { _, err := c.Get(ctxT(t), "k", clientv3.WithRev(1000)); return err }, codes.OutOfRange, "etcdserver: mvcc: required revision is a future revision"},
		{"compact future revision", func() error { _, err := c.Compact(ctxT(t), 1000); return err }, codes.OutOfRange, "etcdserver: mvcc: required revision is a future revision"},
		{"request too large", func() error {
			_, err := c.Put(ctxT(t), "big", strings.Repeat("x", 1600*1024))
			return err
		}, codes.InvalidArgument, "etcdserver: request is too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.do(), tc.code, tc.msg)
			if rev := currentRev(t, c); rev != before {
				t.Fatalf("revision moved from %d to %d on a failed request", before, rev)
			}
		})
	}
	// Over the gRPC receive limit (max-request-bytes + 512 KiB) gRPC itself refuses.
	_, err := c.Put(ctxT(t), "huge", strings.Repeat("x", 3<<20))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("3 MiB put: %v, want ResourceExhausted", err)
	}
	g, _ := c.Get(ctxT(t), "", clientv3.WithPrefix())
	if keys(g) != "k,other" {
		t.Fatalf("store changed by failed requests: %s", keys(g))
	}
}

func TestKVTxn(t *testing.T) {
	c := newKV(t)
	ctx := ctxT(t)
	seed(t, c, "a", "1", "b", "2", "a", "11") // a: c2 m4 v2; b: c3 m3 v1; rev 4
	type cmpCase struct {
		name string
		cmp  clientv3.Cmp
		want bool
	}
	cmps := []cmpCase{
		{"version eq", clientv3.Compare(clientv3.Version("a"), "=", 2), true},
		{"version gt", clientv3.Compare(clientv3.Version("a"), ">", 2), false},
		{"version lt", clientv3.Compare(clientv3.Version("a"), "<", 3), true},
		{"version ne", clientv3.Compare(clientv3.Version("a"), "!=", 2), false},
		{"create eq", clientv3.Compare(clientv3.CreateRevision("a"), "=", 2), true},
		{"mod gt", clientv3.Compare(clientv3.ModRevision("a"), ">", 3), true},
		{"mod lt", clientv3.Compare(clientv3.ModRevision("b"), "<", 3), false},
		{"value eq", clientv3.Compare(clientv3.Value("a"), "=", "11"), true},
		{"value gt", clientv3.Compare(clientv3.Value("b"), ">", "1"), true},
		{"value ne", clientv3.Compare(clientv3.Value("b"), "!=", "2"), false},
		{"lease eq 0", clientv3.Compare(clientv3.LeaseValue("a"), "=", 0), true},
		{"missing version eq 0", clientv3.Compare(clientv3.Version("zz"), "=", 0), true},
		{"missing create eq 0", clientv3.Compare(clientv3.CreateRevision("zz"), "=", 0), true},
		{"missing value eq empty", clientv3.Compare(clientv3.Value("zz"), "=", ""), false},
		{"missing value ne", clientv3.Compare(clientv3.Value("zz"), "!=", "x"), false},
		{"range all match", clientv3.Compare(clientv3.Version("a"), ">", 0).WithRange("c"), true},
		{"range one fails", clientv3.Compare(clientv3.Version("a"), "=", 2).WithRange("c"), false},
		{"prefix mod", clientv3.Compare(clientv3.ModRevision("a"), "<", 5).WithPrefix(), true},
		{"from key mod", clientv3.Compare(clientv3.ModRevision("a"), "<", 5).WithRange("\x00"), true},
	}
	for _, tc := range cmps {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Txn(ctx).If(tc.cmp).Then(clientv3.OpGet("a")).Else(clientv3.OpGet("b")).Commit()
			if err != nil {
				t.Fatal(err)
			}
			if r.Succeeded != tc.want {
				t.Fatalf("succeeded %v, want %v", r.Succeeded, tc.want)
			}
			if r.Header.Revision != 4 {
				t.Fatalf("read-only txn moved the revision to %d", r.Header.Revision)
			}
			want := "b"
			if tc.want {
				want = "a"
			}
			if got := string(r.Responses[0].GetResponseRange().Kvs[0].Key); got != want {
				t.Fatalf("branch read %s, want %s", got, want)
			}
		})
	}
	// Writes in one txn share a revision with increasing sub-revisions;
	// reads inside the txn see earlier writes of the txn; compares of nested
	// txns are evaluated against the state before the txn, as etcd does
	// (x does not exist yet, so version(x) = 0 holds).
	r, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "11")).Then(
		clientv3.OpPut("x", "1"), clientv3.OpDelete("b", clientv3.WithPrevKV()), clientv3.OpGet("x"),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Version("x"), "=", 0)}, []clientv3.Op{clientv3.OpPut("y", "2")}, nil),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Succeeded || r.Header.Revision != 5 || len(r.Responses) != 4 {
		t.Fatalf("write txn: succeeded %v rev %d responses %d", r.Succeeded, r.Header.Revision, len(r.Responses))
	}
	if d := r.Responses[1].GetResponseDeleteRange(); d.Deleted != 1 || kvOf(t, d.PrevKvs) != "b=2 c3 m3 v1 l0" {
		t.Fatalf("delete in txn: %d %s", d.Deleted, kvOf(t, d.PrevKvs))
	}
	if g := r.Responses[2].GetResponseRange(); kvOf(t, g.Kvs) != "x=1 c5 m5 v1 l0" {
		t.Fatalf("read-your-write in txn: %s", kvOf(t, g.Kvs))
	}
	if nt := r.Responses[3].GetResponseTxn(); !nt.Succeeded || len(nt.Responses) != 1 {
		t.Fatalf("nested txn: %+v", nt)
	}
	all, _ := c.Get(ctx, "", clientv3.WithPrefix())
	if got := kvOf(t, all.Kvs); got != "a=11 c2 m4 v2 l0; x=1 c5 m5 v1 l0; y=2 c5 m5 v1 l0" {
		t.Fatalf("after txn: %s", got)
	}
	// A failed compare runs the failure branch.
	r, err = c.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "nope")).Then(clientv3.OpPut("z", "1")).Else(clientv3.OpPut("w", "1")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if r.Succeeded || r.Header.Revision != 6 {
		t.Fatalf("failure branch: succeeded %v rev %d", r.Succeeded, r.Header.Revision)
	}
	if g, _ := c.Get(ctx, "z"); len(g.Kvs) != 0 {
		t.Fatal("success branch ran on a failed compare")
	}
}

func TestKVCompaction(t *testing.T) {
	c := newKV(t)
	ctx := ctxT(t)
	seed(t, c, "k", "1", "k", "2", "k", "3", "j", "x") // revs 2..5
	if _, err := c.Compact(ctx, 4); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(ctx, "k", clientv3.WithRev(3))
	wantErr(t, err, codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")
	g, err := c.Get(ctx, "k", clientv3.WithRev(4))
	if err != nil {
		t.Fatal(err)
	}
	if kvOf(t, g.Kvs) != "k=3 c2 m4 v3 l0" {
		t.Fatalf("at compact revision: %s", kvOf(t, g.Kvs))
	}
	_, err = c.Compact(ctx, 4)
	wantErr(t, err, codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")
	_, err = c.Compact(ctx, 3)
	wantErr(t, err, codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")
	if rev := currentRev(t, c); rev != 5 {
		t.Fatalf("compaction moved the revision to %d", rev)
	}
	_, err = c.Txn(ctx).Then(clientv3.OpGet("k", clientv3.WithRev(2))).Commit()
	wantErr(t, err, codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")
}

func TestMaintenanceAndCluster(t *testing.T) {
	m := startMember(t, t.TempDir())
	c := newClient(t, m.ClientAddrs()...)
	ctx := ctxT(t)
	seed(t, c, "a", "1")
	st, err := c.Status(ctx, m.ClientAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != m.ID() || st.Header.MemberId != m.ID() || st.RaftTerm == 0 || st.RaftIndex < 2 || st.Version == "" || st.DbSize == 0 {
		t.Fatalf("status: %+v", st)
	}
	ml, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 1 || ml.Members[0].ID != m.ID() || ml.Members[0].Name != "m1" {
		t.Fatalf("member list: %+v", ml.Members)
	}
	al, err := c.AlarmList(ctx)
	if err != nil || len(al.Alarms) != 0 {
		t.Fatalf("alarm list: %v %v", al, err)
	}
	h1, err := c.HashKV(ctx, m.ClientAddrs()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, c, "b", "2")
	h2, err := c.HashKV(ctx, m.ClientAddrs()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Hash == h2.Hash || h2.HashRevision != 3 {
		t.Fatalf("hashkv did not follow a write: %d@%d then %d@%d", h1.Hash, h1.HashRevision, h2.Hash, h2.HashRevision)
	}
	h3, err := c.HashKV(ctx, m.ClientAddrs()[0], 2)
	if err != nil || h3.Hash != h1.Hash {
		t.Fatalf("hashkv at rev 2: %v %v, want %d", h3, err, h1.Hash)
	}
}
