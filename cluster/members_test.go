package cluster_test

import (
	"errors"
	"testing"

	"github.com/aetcd/aetcd/cluster"
)

// etcd 3.6.6 started with default flags reports member 8e9e05c52164694d in
// cluster cdf818194e3a8c32; the same inputs must give the same IDs here.
func TestIDsMatchEtcd(t *testing.T) {
	members, err := cluster.ParseInitialCluster("default=http://localhost:2380", "etcd-cluster")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ID != 0x8e9e05c52164694d {
		t.Fatalf("member ID %x, want 8e9e05c52164694d", members[0].ID)
	}
	if got := cluster.ClusterID([]uint64{members[0].ID}); got != 0xcdf818194e3a8c32 {
		t.Fatalf("cluster ID %x, want cdf818194e3a8c32", got)
	}
}

func TestParseInitialClusterErrors(t *testing.T) {
	for _, s := range []string{"", "a", "a=", "=http://x:1", "a=ftp://x:1", "a=http://x", "a=http://x:1/path",
		"a=http://x:1,b=http://x:1"} {
		if _, err := cluster.ParseInitialCluster(s, "t"); !errors.Is(err, cluster.ErrBadInitialCluster) {
			t.Errorf("%q: err %v, want ErrBadInitialCluster", s, err)
		}
	}
	ms, err := cluster.ParseInitialCluster("a=http://127.0.0.1:1,b=http://127.0.0.1:2,b=http://127.0.0.1:3", "t")
	if err != nil || len(ms) != 2 {
		t.Fatalf("%v %v", ms, err)
	}
}
