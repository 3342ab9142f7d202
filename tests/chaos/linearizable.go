package chaos

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// LinearizabilityResult is the outcome of CheckLinearizable. Ok is true iff
// every key's history was proven linearizable. Otherwise Violations holds
// one entry per key proven not linearizable, and TimedOut says whether some
// key was left undecided; TimedOut with no Violations is inconclusive, not
// a failure.
type LinearizabilityResult struct {
	Ok         bool // the history is linearizable
	TimedOut   bool // porcupine gave up (neither proven nor refuted)
	Operations int  // operations checked (after dropping unknown reads)
	Violations []Violation
}

// CheckLinearizable checks ops against a sequential model of etcd's
// key-value store, one key at a time (a history is linearizable iff each
// key's is):
//
//   - Get returns Found and, if found, Got: the key's presence and value.
//   - Put sets the key to Value.
//   - Delete removes the key; Deleted is 1 iff the key was present before.
//   - CAS puts Value and reports Succeeded iff (ExpectAbsent and the key is
//     absent) or (!ExpectAbsent and the key holds Expect); otherwise the
//     key is unchanged and Succeeded is false.
//
// An Unknown write (Put, Delete, CAS) may take effect at any point after
// its Call, or never: it is checked as an operation that returns after
// every other operation and whose results are not compared. Unknown Gets
// carry no information and are dropped. A completed operation whose Return
// precedes its Call is taken to return at its Call.
//
// Each key is checked concurrently with its own timeout (0: no limit), so
// the whole check takes about timeout at most for refuted or undecided keys,
// plus a second, verbose check of the refuted keys. Each refuted key gives
// one Violation{Check: "linearizable"} naming it. When some key is refuted
// and visPath is not "", porcupine's HTML visualization of the refuted keys
// (their partial linearizations and the point where each fails) is written
// to visPath, and the violations say so, or why it could not be written.
func CheckLinearizable(ops []Op, timeout time.Duration, visPath string) LinearizabilityResult {
	byKey, n := kvHistories(ops)
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	outcomes := make([]porcupine.CheckResult, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			outcomes[i] = porcupine.CheckOperationsTimeout(kvModel, byKey[k], timeout)
		})
	}
	wg.Wait()

	res := LinearizabilityResult{Ok: true, Operations: n}
	var refuted []string
	for i, k := range keys {
		switch outcomes[i] {
		case porcupine.Illegal:
			refuted = append(refuted, k)
			res.Ok = false
		case porcupine.Unknown:
			res.TimedOut = true
			res.Ok = false
		}
	}
	if len(refuted) == 0 {
		return res
	}

	// A second, verbose check of the refuted keys alone, for the longest
	// linearizable prefixes and the visualization.
	var history []porcupine.Operation
	for _, k := range refuted {
		history = append(history, byKey[k]...)
	}
	_, info := porcupine.CheckOperationsVerbose(kvModel, history, timeout)
	partials := info.PartialLinearizations() // one per refuted key, in order
	where := "no visualization requested"
	if visPath != "" {
		if err := porcupine.VisualizePath(kvModel, info, visPath); err != nil {
			where = "visualization not written: " + err.Error()
		} else {
			where = "visualization in " + visPath
		}
	}
	for i, k := range refuted {
		longest := 0
		if i < len(partials) {
			for _, p := range partials[i] {
				longest = max(longest, len(p))
			}
		}
		res.Violations = append(res.Violations, Violation{
			Check: "linearizable",
			Detail: fmt.Sprintf("key %q: %d operations are not linearizable (longest linearizable prefix: %d); %s",
				k, len(byKey[k]), longest, where),
		})
	}
	return res
}

// kvHistories turns ops into porcupine operations grouped by key and returns
// them with their total count. Unknown Gets are dropped; unknown writes
// return one nanosecond after the latest Call or Return of any operation.
func kvHistories(ops []Op) (map[string][]porcupine.Operation, int) {
	var end int64
	for _, op := range ops {
		end = max(end, op.Call)
		if !op.Unknown {
			end = max(end, op.Return)
		}
	}
	end++

	// Porcupine draws one lane per ClientId; an unknown operation never
	// returns, so each gets a lane of its own above the recording clients'
	// lanes instead of overlapping its client's later operations.
	lanes := 0
	for _, op := range ops {
		lanes = max(lanes, op.Client+1)
	}
	unknownLane := make(map[string]int)

	byKey := make(map[string][]porcupine.Operation)
	n := 0
	for _, op := range ops {
		if op.Unknown && op.Kind == KindGet {
			continue
		}
		in := kvInput{
			kind: op.Kind, key: op.Key, value: op.Value,
			expect: op.Expect, expectAbsent: op.ExpectAbsent,
		}
		out := kvOutput{unknown: op.Unknown}
		client, ret := op.Client, max(op.Return, op.Call)
		if op.Unknown {
			client = lanes + unknownLane[op.Key]
			unknownLane[op.Key]++
			ret = end
		} else {
			out.found, out.got, out.succeeded, out.deleted = op.Found, op.Got, op.Succeeded, op.Deleted
		}
		byKey[op.Key] = append(byKey[op.Key], porcupine.Operation{
			ClientId: client,
			Input:    in,
			Call:     op.Call,
			Output:   out,
			Return:   ret,
			Metadata: kvMetadata{client: op.Client, member: op.Member, rev: op.Rev},
		})
		n++
	}
	return byKey, n
}

// kvInput is a porcupine operation's input: the request of one Op.
type kvInput struct {
	kind         Kind
	key          string
	value        string
	expect       string
	expectAbsent bool
}

// kvOutput is a porcupine operation's output: the results of one Op, all
// zero when unknown.
type kvOutput struct {
	unknown   bool
	found     bool
	got       string
	succeeded bool
	deleted   int64
}

// kvState is one key's state in the model.
type kvState struct {
	present bool
	value   string
}

// kvMetadata is shown beside an operation in the visualization.
type kvMetadata struct {
	client int
	member string
	rev    int64
}

// kvModel is the sequential specification of one key of etcd's key-value
// store (see CheckLinearizable). It is partitioned by key so that one check
// may hold several keys.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := make(map[string][]porcupine.Operation)
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		parts := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			parts[i] = byKey[k]
		}
		return parts
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		return kvStep(state.(kvState), input.(kvInput), output.(kvOutput))
	},
	Equal: func(a, b any) bool { return a.(kvState) == b.(kvState) },
	Hash: func(state any) uint64 {
		s := state.(kvState)
		h := fnv.New64a()
		h.Write([]byte(s.value))
		if s.present {
			return h.Sum64() ^ 1
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		return describeKVOp(input.(kvInput), output.(kvOutput))
	},
	DescribeState: func(state any) string {
		s := state.(kvState)
		if !s.present {
			return "absent"
		}
		return strconv.Quote(s.value)
	},
	DescribeOperationMetadata: func(info any) string {
		m, ok := info.(kvMetadata)
		if !ok {
			return ""
		}
		return fmt.Sprintf("client %d, member %s, header revision %d", m.client, m.member, m.rev)
	},
}

// kvStep applies in to s. It reports whether out is a possible result of
// that (always, for an unknown write) and returns the next state.
func kvStep(s kvState, in kvInput, out kvOutput) (bool, kvState) {
	switch in.kind {
	case KindGet:
		if out.unknown {
			return true, s
		}
		return out.found == s.present && (!s.present || out.got == s.value), s
	case KindPut:
		return true, kvState{present: true, value: in.value}
	case KindDelete:
		ok := out.unknown || ((out.deleted == 0 || out.deleted == 1) && (out.deleted == 1) == s.present)
		return ok, kvState{}
	case KindCAS:
		holds := (in.expectAbsent && !s.present) || (!in.expectAbsent && s.present && s.value == in.expect)
		if !out.unknown && out.succeeded != holds {
			return false, s
		}
		if holds {
			return true, kvState{present: true, value: in.value}
		}
		return true, s
	}
	return false, s
}

// describeKVOp renders one operation for the visualization, for example
// `cas k1 "v2"→"v5": ok` or `put k1 "v7": unknown`.
func describeKVOp(in kvInput, out kvOutput) string {
	var req, res string
	switch in.kind {
	case KindGet:
		req = "get " + in.key
		switch {
		case out.found:
			res = strconv.Quote(out.got)
		default:
			res = "absent"
		}
	case KindPut:
		req = fmt.Sprintf("put %s %q", in.key, in.value)
		res = "ok"
	case KindDelete:
		req = "delete " + in.key
		res = fmt.Sprintf("deleted %d", out.deleted)
	case KindCAS:
		from := "absent"
		if !in.expectAbsent {
			from = strconv.Quote(in.expect)
		}
		req = fmt.Sprintf("cas %s %s→%q", in.key, from, in.value)
		res = "failed"
		if out.succeeded {
			res = "ok"
		}
	default:
		req = in.kind.String() + " " + in.key
	}
	if out.unknown {
		res = "unknown"
	}
	return req + ": " + res
}
