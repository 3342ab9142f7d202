package remoting

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// batchOf returns a batch of n envelopes of each of the given types.
func batchOf(n int, types ...string) *remote.MessageBatch {
	b := &remote.MessageBatch{TypeNames: types, Targets: []*actor.PID{{Id: "raft"}}}
	for t := range types {
		for i := 0; i < n; i++ {
			b.Envelopes = append(b.Envelopes, &remote.MessageEnvelope{TypeId: int32(t)})
		}
	}
	return b
}

func countType(b *remote.MessageBatch, typ int32) int {
	n := 0
	for _, e := range b.Envelopes {
		if e.TypeId == typ {
			n++
		}
	}
	return n
}

func TestNetFaults(t *testing.T) {
	const other = "aetcd.ForwardProposals"
	nf := NewNetFaults(rand.New(rand.NewPCG(1, 2)))
	b := batchOf(100, raftMessageType, other)
	if d := nf.apply("a:1", b); d != 0 || len(b.Envelopes) != 200 {
		t.Fatalf("no rule: delay %v, %d envelopes, want 0 and 200", d, len(b.Envelopes))
	}
	if err := nf.Set("a:1", LinkFault{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	b = batchOf(100, raftMessageType, other)
	nf.apply("b:2", b)
	if len(b.Envelopes) != 200 {
		t.Fatalf("a rule for a:1 changed a batch from b:2: %d envelopes", len(b.Envelopes))
	}
	nf.apply("a:1", b)
	if len(b.Envelopes) != 0 {
		t.Fatalf("blackhole kept %d envelopes", len(b.Envelopes))
	}

	if err := nf.Set("a:1", LinkFault{Duplicate: 1, Delay: 7 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	b = batchOf(100, raftMessageType, other)
	if d := nf.apply("a:1", b); d != 7*time.Millisecond {
		t.Fatalf("delay %v, want 7ms", d)
	}
	if got := countType(b, 0); got != 200 {
		t.Errorf("duplicate=1: %d Raft messages, want 200", got)
	}
	if got := countType(b, 1); got != 100 {
		t.Errorf("duplicate=1: %d other messages, want 100 (only Raft messages are duplicated)", got)
	}

	if err := nf.Set("a:1", LinkFault{Drop: 0.5}); err != nil {
		t.Fatal(err)
	}
	b = batchOf(1000, raftMessageType)
	nf.apply("a:1", b)
	if n := len(b.Envelopes); n < 400 || n > 600 {
		t.Errorf("drop=0.5 kept %d of 1000", n)
	}

	for _, bad := range []LinkFault{{Drop: -0.1}, {Drop: 1.1}, {Duplicate: 2}, {Delay: -time.Second}} {
		if err := nf.Set("a:1", bad); err == nil {
			t.Errorf("Set(%+v) accepted", bad)
		}
	}
	if err := nf.Set("", LinkFault{}); err == nil {
		t.Error("Set with an empty source accepted")
	}
	if got := nf.String(); got != "a:1: drop=0.5 delay=0s duplicate=0" {
		t.Errorf("String() = %q after refused Sets", got)
	}
	nf.Clear("")
	b = batchOf(10, raftMessageType)
	nf.apply("a:1", b)
	if len(b.Envelopes) != 10 || nf.String() != "" {
		t.Errorf("after Clear: %d envelopes, rules %q", len(b.Envelopes), nf.String())
	}
}
