package tests

import (
	"testing"
	"time"
)

// TestClusterFiveMembers: a 5-member cluster keeps serving writes with two
// members down (the leader and a follower killed with SIGKILL under put
// load); both rejoin and every member ends with the same data.
func TestClusterFiveMembers(t *testing.T) {
	c := startCluster(t, 5)
	const prefix = "five/"
	stopLoad := runLoad(c, prefix, c.members...)
	time.Sleep(300 * time.Millisecond)
	leader := c.waitLeader(10*time.Second, c.members...)
	follower := c.others(leader)[0]
	c.kill9(leader)
	c.kill9(follower)
	t.Logf("killed leader %s and follower %s", leader.name, follower.name)
	survivors := c.others(leader, follower)
	c.waitNewLeader(10*time.Second, leader, survivors...)

	// Writes through the survivors are acknowledged with two members down.
	cli := c.client(survivors...)
	down := map[string]int64{}
	for i := 0; i < 20; i++ {
		ctx, cancel := reqCtx()
		key := prefix + "down/" + string(rune('a'+i))
		resp, err := cli.Put(ctx, key, key)
		cancel()
		if err != nil {
			t.Fatalf("put with two of five members down: %v", err)
		}
		down[key] = resp.Header.Revision
	}
	c.restart(leader)
	c.restart(follower)
	time.Sleep(300 * time.Millisecond)
	load := stopLoad()
	rev, _ := c.waitConverged(20*time.Second, prefix, c.members...)
	load.mu.Lock()
	acked := load.acked
	load.mu.Unlock()
	t.Logf("%d puts acknowledged; errors: %s", len(acked), load.errSummary())
	if len(acked) == 0 {
		t.Fatal("no put was acknowledged")
	}
	for k, r := range down {
		acked[k] = r
	}
	c.checkAcked(prefix, acked, c.members...)
	c.checkHashKV(rev, c.members...)
}
