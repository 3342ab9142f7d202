package bootstrap

import (
	"math/rand/v2"

	"github.com/aetcd/aetcd/cluster"
)

func hostPort(u string) (string, error) { return cluster.HostPort(u) }

// newRand seeds the Raft core's randomness (election timeouts) per member.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
