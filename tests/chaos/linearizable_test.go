package chaos_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/tests/chaos"
)

// Operation builders for crafted histories; times are in nanoseconds.

func lGet(client int, key string, call, ret int64, found bool, got string) chaos.Op {
	return chaos.Op{Client: client, Kind: chaos.KindGet, Key: key, Call: call, Return: ret, Found: found, Got: got}
}

func lPut(client int, key, value string, call, ret int64) chaos.Op {
	return chaos.Op{Client: client, Kind: chaos.KindPut, Key: key, Value: value, Call: call, Return: ret}
}

func lDelete(client int, key string, call, ret int64, deleted int64) chaos.Op {
	return chaos.Op{Client: client, Kind: chaos.KindDelete, Key: key, Call: call, Return: ret, Deleted: deleted}
}

// lCAS is a CAS expecting expect ("" = absent) that reports succeeded.
func lCAS(client int, key, expect, value string, call, ret int64, succeeded bool) chaos.Op {
	return chaos.Op{Client: client, Kind: chaos.KindCAS, Key: key, Value: value, Expect: expect, ExpectAbsent: expect == "",
		Call: call, Return: ret, Succeeded: succeeded}
}

// unknown marks op's outcome unknown and scrambles its results, which the
// checker must ignore.
func unknown(op chaos.Op) chaos.Op {
	op.Unknown = true
	op.Return = op.Call + 1
	op.Found, op.Got, op.Succeeded, op.Deleted = true, "garbage", !op.Succeeded, 7
	return op
}

func TestCheckLinearizable(t *testing.T) {
	tests := []struct {
		name    string
		ops     []chaos.Op
		ok      bool
		checked int      // Operations
		keys    []string // keys named by the violations, in order
	}{
		{
			name:    "empty history",
			ok:      true,
			checked: 0,
		},
		{
			name: "sequential put, get, delete, get",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lGet(1, "x", 20, 30, true, "a"),
				lDelete(0, "x", 40, 50, 1), lGet(1, "x", 60, 70, false, ""),
			},
			ok: true, checked: 4,
		},
		{
			name: "stale read after a newer completed write",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lPut(0, "x", "b", 20, 30), lGet(1, "x", 40, 50, true, "a"),
			},
			ok: false, checked: 3, keys: []string{"x"},
		},
		{
			name: "lost acknowledged write",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lGet(1, "x", 20, 30, false, "")},
			ok:   false, checked: 2, keys: []string{"x"},
		},
		{
			name: "CAS succeeded although the key held another value",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lCAS(1, "x", "b", "c", 20, 30, true)},
			ok:   false, checked: 2, keys: []string{"x"},
		},
		{
			name: "CAS failed although the key held the expected value",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lCAS(1, "x", "a", "c", 20, 30, false)},
			ok:   false, checked: 2, keys: []string{"x"},
		},
		{
			name: "CAS expecting absence succeeded on a present key",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lCAS(1, "x", "", "c", 20, 30, true)},
			ok:   false, checked: 2, keys: []string{"x"},
		},
		{
			name: "CAS chain: absent, then from each value to the next",
			ops: []chaos.Op{
				lCAS(0, "x", "", "a", 0, 10, true), lCAS(1, "x", "a", "b", 20, 30, true),
				lCAS(0, "x", "a", "c", 40, 50, false), lGet(1, "x", 60, 70, true, "b"),
			},
			ok: true, checked: 4,
		},
		{
			name: "delete reporting nothing deleted on a present key",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lDelete(1, "x", 20, 30, 0)},
			ok:   false, checked: 2, keys: []string{"x"},
		},
		{
			name: "unknown put explains a later read",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lPut(1, "x", "b", 15, 0)), lGet(2, "x", 20, 30, true, "b"),
			},
			ok: true, checked: 3,
		},
		{
			name: "unknown put never applied",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lPut(1, "x", "b", 15, 0)),
				lGet(2, "x", 20, 30, true, "a"), lGet(2, "x", 40, 50, true, "a"),
			},
			ok: true, checked: 4,
		},
		{
			name: "unknown put seen applied, then its overwritten value read again",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lPut(1, "x", "b", 15, 0)),
				lGet(2, "x", 20, 30, true, "b"), lGet(2, "x", 40, 50, true, "a"),
			},
			ok: false, checked: 4, keys: []string{"x"},
		},
		{
			name: "unknown put cannot take effect before its call",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lGet(2, "x", 20, 30, true, "b"), unknown(lPut(1, "x", "b", 35, 0)),
			},
			ok: false, checked: 3, keys: []string{"x"},
		},
		{
			name: "unknown CAS whose comparison holds may apply",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lCAS(1, "x", "a", "b", 15, 0, false)), lGet(2, "x", 20, 30, true, "b"),
			},
			ok: true, checked: 3,
		},
		{
			name: "unknown CAS whose comparison cannot hold does not apply",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lCAS(1, "x", "z", "b", 15, 0, true)), lGet(2, "x", 20, 30, true, "b"),
			},
			ok: false, checked: 3, keys: []string{"x"},
		},
		{
			name: "unknown delete may apply",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lDelete(1, "x", 15, 0, 0)), lGet(2, "x", 20, 30, false, ""),
			},
			ok: true, checked: 3,
		},
		{
			name: "unknown reads are dropped",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), unknown(lGet(1, "x", 15, 0, false, "")), lGet(2, "x", 20, 30, true, "a"),
			},
			ok: true, checked: 2,
		},
		{
			name: "read concurrent with a put sees the old state",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lGet(1, "x", 5, 8, false, "")},
			ok:   true, checked: 2,
		},
		{
			name: "read concurrent with a put sees the new state",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lGet(1, "x", 5, 8, true, "a")},
			ok:   true, checked: 2,
		},
		{
			name: "concurrent puts read in either order by later reads",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lPut(1, "x", "b", 5, 15),
				lGet(2, "x", 20, 30, true, "a"), lGet(2, "x", 40, 50, true, "a"),
			},
			ok: true, checked: 4,
		},
		{
			name: "two reads disagree on the order of concurrent puts",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lPut(1, "x", "b", 5, 15),
				lGet(2, "x", 20, 30, true, "b"), lGet(3, "x", 40, 50, true, "a"),
			},
			ok: false, checked: 4, keys: []string{"x"},
		},
		{
			name: "intervals are closed: operations touching at an instant are concurrent",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lGet(1, "x", 10, 20, false, "")},
			ok:   true, checked: 2,
		},
		{
			name: "only the broken keys are named",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10), lGet(1, "x", 20, 30, true, "a"),
				lPut(0, "z", "c", 0, 10), lGet(1, "z", 20, 30, false, ""),
				lPut(0, "y", "b", 0, 10), lGet(1, "y", 20, 30, false, ""),
			},
			ok: false, checked: 6, keys: []string{"y", "z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := chaos.CheckLinearizable(tt.ops, 10*time.Second, "")
			if res.Ok != tt.ok || res.TimedOut || res.Operations != tt.checked {
				t.Fatalf("got Ok=%v TimedOut=%v Operations=%d, want Ok=%v TimedOut=false Operations=%d; violations: %v",
					res.Ok, res.TimedOut, res.Operations, tt.ok, tt.checked, res.Violations)
			}
			if len(res.Violations) != len(tt.keys) {
				t.Fatalf("got violations %v, want one per key %q", res.Violations, tt.keys)
			}
			for i, v := range res.Violations {
				if v.Check != "linearizable" || !strings.Contains(v.Detail, strconv.Quote(tt.keys[i])) {
					t.Errorf("violation %d = %v, want a linearizable violation naming key %q", i, v, tt.keys[i])
				}
			}
		})
	}
}

func TestCheckLinearizableWritesVisualization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lin.html")
	ops := []chaos.Op{
		lPut(0, "x", "a", 0, 10), lPut(0, "x", "b", 20, 30), lGet(1, "x", 40, 50, true, "a"),
		unknown(lPut(1, "x", "c", 55, 0)),
		lPut(0, "y", "d", 0, 10), lGet(1, "y", 20, 30, true, "d"),
	}
	res := chaos.CheckLinearizable(ops, 10*time.Second, path)
	if res.Ok || len(res.Violations) != 1 || !strings.Contains(res.Violations[0].Detail, path) {
		t.Fatalf("got %+v, want one violation pointing at %s", res, path)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<html", `get x: \"a\"`, `put x \"c\": unknown`, "member"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("visualization lacks %q", want)
		}
	}
	if strings.Contains(string(html), `put y`) {
		t.Errorf("visualization shows the linearizable key y")
	}
}

func TestCheckLinearizableNoVisualizationWhenOk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lin.html")
	res := chaos.CheckLinearizable([]chaos.Op{lPut(0, "x", "a", 0, 10)}, 10*time.Second, path)
	if !res.Ok {
		t.Fatalf("got %+v, want Ok", res)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("visualization written for a linearizable history (stat: %v)", err)
	}
}

// TestCheckLinearizableTimeout: a key whose refutation needs every order of
// n concurrent puts (about n·2^n states) is undecided, not a violation.
func TestCheckLinearizableTimeout(t *testing.T) {
	const n = 28
	var ops []chaos.Op
	for i := range n {
		ops = append(ops, lPut(i, "x", fmt.Sprint("v", i), 0, 100))
	}
	ops = append(ops, lGet(n, "x", 50, 60, true, "never written"))
	res := chaos.CheckLinearizable(ops, 100*time.Millisecond, filepath.Join(t.TempDir(), "lin.html"))
	if res.Ok || !res.TimedOut || len(res.Violations) != 0 || res.Operations != n+1 {
		t.Fatalf("got %+v, want TimedOut alone with %d operations", res, n+1)
	}
}

// TestCheckLinearizableSimulated checks histories of a correct store with
// concurrent clients and unknown outcomes: each is linearizable, and stops
// being so when a stale read is appended. AETCD_CHAOS_SEED replays a seed.
func TestCheckLinearizableSimulated(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("AETCD_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("AETCD_CHAOS_SEED: %v", err)
		}
	}
	ops := simulateKV(seed, 8, 10, 2000, 0.05)
	unknowns := 0
	for _, op := range ops {
		if op.Unknown {
			unknowns++
		}
	}

	start := time.Now()
	res := chaos.CheckLinearizable(ops, 30*time.Second, "")
	t.Logf("seed %d: %d ops (%d unknown), checked %d in %v", seed, len(ops), unknowns, res.Operations, time.Since(start))
	if !res.Ok {
		t.Fatalf("seed %d (AETCD_CHAOS_SEED=%d replays it): got %+v, want Ok", seed, seed, res)
	}

	stale, ok := staleRead(ops)
	if !ok {
		t.Fatalf("seed %d: no two sequential acknowledged puts of a key to build a stale read from", seed)
	}
	res = chaos.CheckLinearizable(append(ops, stale), 30*time.Second, "")
	if res.Ok || len(res.Violations) != 1 || !strings.Contains(res.Violations[0].Detail, strconv.Quote(stale.Key)) {
		t.Fatalf("seed %d (AETCD_CHAOS_SEED=%d replays it): with the stale read %+v appended, got %+v, want a violation on its key",
			seed, seed, stale, res)
	}
}

// simulateKV returns n operations of clients on keys named k0, k1, ...,
// against a correct sequential store: each client's operations follow one
// another in time; each takes effect at an instant within its interval, in
// instant order. A fraction unknownRate of the operations is Unknown (a
// write among them takes effect or not, evenly).
func simulateKV(seed uint64, clients, keys, n int, unknownRate float64) []chaos.Op {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type timed struct {
		op      chaos.Op
		at      int64 // the instant it takes effect
		applied bool
	}
	next := make([]int64, clients) // each client's next call time
	written := make([][]string, keys)
	var sim []timed
	for i := range n {
		c := rng.IntN(clients)
		k := rng.IntN(keys)
		op := chaos.Op{Client: c, Key: fmt.Sprint("k", k), Member: fmt.Sprint("m", c%3)}
		op.Call = next[c] + rng.Int64N(50)
		op.Return = op.Call + 1 + rng.Int64N(300)
		next[c] = op.Return + 1
		switch r := rng.IntN(100); {
		case r < 40:
			op.Kind = chaos.KindGet
		case r < 65:
			op.Kind = chaos.KindPut
		case r < 75:
			op.Kind = chaos.KindDelete
		default:
			op.Kind = chaos.KindCAS
			if w := written[k]; len(w) > 0 && rng.IntN(4) != 0 {
				op.Expect = w[len(w)-1-rng.IntN(min(len(w), 3))]
			} else {
				op.ExpectAbsent = true
			}
		}
		if op.Kind == chaos.KindPut || op.Kind == chaos.KindCAS {
			op.Value = fmt.Sprint("v", i)
			written[k] = append(written[k], op.Value)
		}
		op.Unknown = rng.Float64() < unknownRate
		sim = append(sim, timed{op: op, at: op.Call + rng.Int64N(op.Return-op.Call+1), applied: !op.Unknown || rng.IntN(2) == 0})
	}

	slices.SortStableFunc(sim, func(a, b timed) int { return cmp.Compare(a.at, b.at) })
	type state struct {
		present bool
		value   string
	}
	store := make(map[string]state)
	var rev int64 = 1
	for i := range sim {
		s, op := store[sim[i].op.Key], &sim[i].op
		if !sim[i].applied {
			continue
		}
		switch op.Kind {
		case chaos.KindGet:
			op.Found, op.Got = s.present, s.value
		case chaos.KindPut:
			store[op.Key] = state{true, op.Value}
			rev++
		case chaos.KindDelete:
			if s.present {
				op.Deleted = 1
				delete(store, op.Key)
				rev++
			}
		case chaos.KindCAS:
			op.Succeeded = (op.ExpectAbsent && !s.present) || (!op.ExpectAbsent && s.present && s.value == op.Expect)
			if op.Succeeded {
				store[op.Key] = state{true, op.Value}
				rev++
			}
		}
		op.Rev = rev
	}
	slices.SortStableFunc(sim, func(a, b timed) int { return cmp.Compare(a.op.Call, b.op.Call) })
	ops := make([]chaos.Op, len(sim))
	for i, s := range sim {
		ops[i] = s.op
		if s.op.Unknown {
			ops[i] = unknown(s.op)
		}
	}
	return ops
}

// staleRead returns a Get, after every operation of ops, that returns the
// value of an acknowledged put of a key that a later acknowledged put (one
// called after it returned) overwrote: no linearization allows it, since
// every value is written once.
func staleRead(ops []chaos.Op) (chaos.Op, bool) {
	var end int64
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
	}
	for _, older := range ops {
		if older.Kind != chaos.KindPut || older.Unknown {
			continue
		}
		for _, newer := range ops {
			if newer.Kind == chaos.KindPut && !newer.Unknown && newer.Key == older.Key && newer.Call > older.Return {
				return lGet(0, older.Key, end+1, end+2, true, older.Value), true
			}
		}
	}
	return chaos.Op{}, false
}
