package remoting

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/remote"
)

// raftMessageType is the only message type a LinkFault duplicates: Raft
// tolerates duplicated messages by design; nothing else sent between members
// (forwarded proposals, lease forwards, snapshot chunks) is idempotent, and
// TCP, which carries every peer stream, never duplicates.
const raftMessageType = "aetcd.RaftMessage"

// LinkFault is the fault applied to peer messages arriving from one source.
type LinkFault struct {
	// Drop is the probability (0..1) that a message is dropped.
	Drop float64
	// Delay holds each arriving batch that long before delivery; later
	// batches on the same stream wait behind it (the link stays FIFO).
	Delay time.Duration
	// Duplicate is the probability (0..1) that a Raft message is delivered
	// twice.
	Duplicate float64
	// Blackhole drops every message.
	Blackhole bool
}

func (f LinkFault) String() string {
	if f.Blackhole {
		return "blackhole"
	}
	return fmt.Sprintf("drop=%g delay=%s duplicate=%g", f.Drop, f.Delay, f.Duplicate)
}

// NetFaults is a fault layer on the peer messages a member receives,
// switchable at run time. Rules are keyed by the source's remoting address
// (the host:port its actor system advertises, which a peer stream names in
// its connect request). A one-way link fault from A to B is a rule at B for
// A; a partition is a rule on each side. Safe for concurrent use.
//
// Only member-to-member streams (protoactor server connections) are
// subject to rules; client connections never are.
type NetFaults struct {
	mu    sync.Mutex
	rules map[string]LinkFault
	rng   *rand.Rand
}

// NewNetFaults returns a fault layer with no rules whose random choices
// come from rng, which it then owns.
func NewNetFaults(rng *rand.Rand) *NetFaults {
	return &NetFaults{rules: map[string]LinkFault{}, rng: rng}
}

// Set replaces the rule for messages from source (host:port). It fails for
// probabilities outside 0..1 or a negative delay, and changes nothing then.
func (n *NetFaults) Set(source string, f LinkFault) error {
	if source == "" {
		return fmt.Errorf("remoting: link fault: empty source address")
	}
	if f.Drop < 0 || f.Drop > 1 || f.Duplicate < 0 || f.Duplicate > 1 {
		return fmt.Errorf("remoting: link fault from %s: probabilities must be within 0..1 (drop %g, duplicate %g)", source, f.Drop, f.Duplicate)
	}
	if f.Delay < 0 {
		return fmt.Errorf("remoting: link fault from %s: negative delay %s", source, f.Delay)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules[source] = f
	return nil
}

// Clear removes the rule for source, or every rule when source is "".
func (n *NetFaults) Clear(source string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if source == "" {
		clear(n.rules)
		return
	}
	delete(n.rules, source)
}

// String lists the rules, one "source: fault" per line, sorted by source.
func (n *NetFaults) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var lines []string
	for src, f := range n.rules {
		lines = append(lines, src+": "+f.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// apply applies source's rule to a validated batch in place and returns how
// long to hold it before delivery.
func (n *NetFaults) apply(source string, b *remote.MessageBatch) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.rules[source]
	if !ok {
		return 0
	}
	if f.Blackhole {
		b.Envelopes = nil
		return 0
	}
	kept := make([]*remote.MessageEnvelope, 0, len(b.Envelopes))
	for _, env := range b.Envelopes {
		if f.Drop > 0 && n.rng.Float64() < f.Drop {
			continue
		}
		kept = append(kept, env)
		if f.Duplicate > 0 && b.TypeNames[env.TypeId] == raftMessageType && n.rng.Float64() < f.Duplicate {
			kept = append(kept, env)
		}
	}
	b.Envelopes = kept
	return f.Delay
}
