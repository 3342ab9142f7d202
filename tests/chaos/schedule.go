package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind is a kind of fault the campaign injects.
type FaultKind string

const (
	FaultKillActor      FaultKind = "kill-actor"      // one actor of a member fail-stops; the process restarts the member
	FaultSigkill        FaultKind = "sigkill"         // SIGKILL, restart after a delay
	FaultPause          FaultKind = "pause"           // SIGSTOP for a while, then SIGCONT
	FaultPartition      FaultKind = "partition"       // one member isolated from every other
	FaultIsolateLeader  FaultKind = "isolate-leader"  // the leader isolated from every other
	FaultOneWay         FaultKind = "one-way"         // messages from one member to another dropped
	FaultLossy          FaultKind = "lossy"           // drop, delay and duplicate between all pairs
	FaultFsyncError     FaultKind = "fsync-error"     // the next WAL fdatasync fails: the member exits
	FaultTornWAL        FaultKind = "torn-wal"        // killed, its WAL tail torn, restarted
	FaultWALBitflip     FaultKind = "wal-bitflip"     // killed, a WAL bit flipped: restart refused, repaired
	FaultBackendBitflip FaultKind = "backend-bitflip" // killed, a backend bit flipped: restart refused, repaired
)

// AllFaultKinds lists every fault kind in the order schedules rotate
// through them.
var AllFaultKinds = []FaultKind{
	FaultKillActor, FaultSigkill, FaultPause, FaultPartition, FaultIsolateLeader, FaultOneWay,
	FaultLossy, FaultFsyncError, FaultTornWAL, FaultWALBitflip, FaultBackendBitflip,
}

// Actors and KillHows are what kill-actor faults name; a campaign of
// enough seeds kills every actor in every way.
var (
	Actors   = []string{"gateway", "raft", "wal", "applier", "snap", "lessor", "watchhub-0", "watchhub-1", "watchhub-2", "watchhub-3"}
	KillHows = []string{"stop", "poison", "panic"}
)

// processKinds are the kinds that affect one member's process or disk
// (not the network): the only ones a second concurrent lane injects.
var processKinds = []FaultKind{FaultKillActor, FaultSigkill, FaultPause, FaultFsyncError, FaultTornWAL, FaultWALBitflip, FaultBackendBitflip}

// ParseFaultKinds parses a comma-separated list of fault kinds; "" and
// "all" mean every kind.
func ParseFaultKinds(s string) ([]FaultKind, error) {
	if s == "" || s == "all" {
		return slices.Clone(AllFaultKinds), nil
	}
	var out []FaultKind
	for _, part := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(part))
		if !slices.Contains(AllFaultKinds, k) {
			return nil, fmt.Errorf("chaos: unknown fault kind %q (kinds: %s)", k, JoinKinds(AllFaultKinds))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	// Canonical order, so that the same set gives the same schedules.
	slices.SortFunc(out, func(a, b FaultKind) int { return slices.Index(AllFaultKinds, a) - slices.Index(AllFaultKinds, b) })
	return out, nil
}

// JoinKinds renders kinds as a comma-separated list.
func JoinKinds(kinds []FaultKind) string {
	var s []string
	for _, k := range kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

// LeaderTarget as a Fault's Target means the member that leads when the
// fault is injected.
const LeaderTarget = -1

// ActorKill is one kill of a kill-actor fault.
type ActorKill struct{ Actor, How string }

func (k ActorKill) String() string { return k.Actor + "/" + k.How }

// Fault is one scheduled fault.
type Fault struct {
	At   time.Duration // earliest injection, from the start of the safety phase
	Lane int           // faults of a lane are injected one after another
	Kind FaultKind
	// Target is a member index or LeaderTarget. For one-way, messages from
	// Target to Peer are dropped (Peer is moved on if it is the target).
	Target, Peer int
	Kills        []ActorKill // kill-actor: in order, each once the member serves again
	Net          NetRule     // lossy: the rule on every link
	// Duration is how long the fault lasts: a pause, a partition, lossy
	// links, or how long a killed or exited member stays down.
	Duration time.Duration
}

func targetName(i int) string {
	if i == LeaderTarget {
		return "leader"
	}
	return fmt.Sprintf("m%d", i+1)
}

func (f Fault) String() string {
	var what string
	switch f.Kind {
	case FaultKillActor:
		var ks []string
		for _, k := range f.Kills {
			ks = append(ks, k.String())
		}
		what = fmt.Sprintf("%s: kill %s", targetName(f.Target), strings.Join(ks, ", then "))
	case FaultSigkill, FaultFsyncError, FaultTornWAL, FaultWALBitflip, FaultBackendBitflip:
		what = fmt.Sprintf("%s, down %v", targetName(f.Target), f.Duration)
	case FaultOneWay:
		what = fmt.Sprintf("%s -> %s dropped for %v", targetName(f.Target), targetName(f.Peer), f.Duration)
	case FaultLossy:
		what = fmt.Sprintf("all links %s for %v", f.Net, f.Duration)
	default:
		what = fmt.Sprintf("%s for %v", targetName(f.Target), f.Duration)
	}
	return fmt.Sprintf("%7.2fs  lane %d  %-15s %s", f.At.Seconds(), f.Lane, f.Kind, what)
}

// Schedule is the seeded list of faults of one campaign's safety phase.
type Schedule struct {
	Seed     uint64
	Members  int
	Duration time.Duration // the safety phase
	Kinds    []FaultKind
	Faults   []Fault // by At
}

func (s *Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule of seed %d: %d members, safety phase %v, kinds %s, %d faults\n", s.Seed, s.Members, s.Duration, JoinKinds(s.Kinds), len(s.Faults))
	for _, f := range s.Faults {
		b.WriteString("  ")
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// faultSlot is the mean time a schedule gives one fault of lane 0.
const faultSlot = 4 * time.Second

// FaultsPerSeed is how many faults lane 0 of a schedule over a safety phase
// of duration d holds. Schedules rotate through the kinds by this stride:
// seed s's lane 0 injects kinds at rotation positions s*n .. s*n+n-1, so
// consecutive seeds continue where the previous one stopped and
// ceil(2*len(kinds)/n) consecutive seeds inject every kind (and, with
// every kind, ceil(30/n) seeds kill every actor in every way).
func FaultsPerSeed(d time.Duration) int {
	return max(2, int(d/faultSlot))
}

// deck is the rotation of kinds: kill-actor (if selected) between every
// two other kinds, so it is injected as often as all others together.
func deck(kinds []FaultKind) []FaultKind {
	kill := slices.Contains(kinds, FaultKillActor)
	var others []FaultKind
	for _, k := range kinds {
		if k != FaultKillActor {
			others = append(others, k)
		}
	}
	if !kill || len(others) == 0 {
		return slices.Clone(kinds)
	}
	var d []FaultKind
	for _, k := range others {
		d = append(d, FaultKillActor, k)
	}
	return d
}

// killsBefore is how many kill-actor entries the infinite repetition of d
// holds before position g.
func killsBefore(d []FaultKind, g uint64) uint64 {
	per := uint64(0)
	for _, k := range d {
		if k == FaultKillActor {
			per++
		}
	}
	n := (g / uint64(len(d))) * per
	for _, k := range d[:g%uint64(len(d))] {
		if k == FaultKillActor {
			n++
		}
	}
	return n
}

// NewSchedule returns the schedule of seed for a cluster of members over a
// safety phase of duration d, with faults of kinds (nil: all). The same
// arguments always give the same schedule.
func NewSchedule(seed uint64, members int, d time.Duration, kinds []FaultKind) *Schedule {
	if len(kinds) == 0 {
		kinds = slices.Clone(AllFaultKinds)
	}
	s := &Schedule{Seed: seed, Members: members, Duration: d, Kinds: kinds}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	dk := deck(kinds)
	n := FaultsPerSeed(d)
	slot := d / time.Duration(n)
	maxDur := slot * 6 / 10
	// Lane 0: every kind, one fault per slot.
	lane0 := make([]int, n) // static target per slot, for lane 1
	for j := 0; j < n; j++ {
		g := seed*uint64(n) + uint64(j)
		kind := dk[g%uint64(len(dk))]
		f := newFault(rng, kind, members, maxDur)
		f.At = time.Duration(j)*slot + randDur(rng, 0, slot/7)
		if kind == FaultKillActor {
			k := killsBefore(dk, g)
			for i := uint64(0); i < 2; i++ {
				c := (2*k + i) % uint64(len(Actors)*len(KillHows))
				f.Kills = append(f.Kills, ActorKill{Actors[c/uint64(len(KillHows))], KillHows[c%uint64(len(KillHows))]})
			}
		}
		lane0[j] = f.Target
		s.Faults = append(s.Faults, f)
	}
	// Lane 1, with five members or more: process and disk faults on
	// members lane 0 does not target meanwhile, so that at most two of
	// five are down at once.
	var pk []FaultKind
	for _, k := range kinds {
		if slices.Contains(processKinds, k) {
			pk = append(pk, k)
		}
	}
	if members >= 5 && len(pk) > 0 {
		for j := 1; j < n; j += 2 {
			kind := pk[rng.IntN(len(pk))]
			f := newFault(rng, kind, members, maxDur)
			f.Lane = 1
			f.At = time.Duration(j)*slot + slot/2
			var free []int
			for i := 0; i < members; i++ {
				if i != lane0[j] && (j+1 >= n || i != lane0[j+1]) {
					free = append(free, i)
				}
			}
			f.Target = free[rng.IntN(len(free))]
			if kind == FaultKillActor {
				c := rng.IntN(len(Actors) * len(KillHows))
				f.Kills = []ActorKill{{Actors[c/len(KillHows)], KillHows[c%len(KillHows)]}}
			}
			s.Faults = append(s.Faults, f)
		}
		slices.SortStableFunc(s.Faults, func(a, b Fault) int { return int(a.At - b.At) })
	}
	return s
}

// newFault draws a fault of kind: its target, parameters and duration
// (at most maxDur, rounded to 100 ms, but never below the kind's minimum).
func newFault(rng *rand.Rand, kind FaultKind, members int, maxDur time.Duration) Fault {
	f := Fault{Kind: kind, Target: rng.IntN(members)}
	sometimesLeader := func(p float64) {
		if rng.Float64() < p {
			f.Target = LeaderTarget
		}
	}
	dur := func(lo, hi time.Duration) time.Duration {
		hi = max(lo, min(hi, maxDur))
		return randDur(rng, lo, hi).Round(100 * time.Millisecond)
	}
	switch kind {
	case FaultKillActor:
		sometimesLeader(0.3)
	case FaultSigkill:
		sometimesLeader(0.3)
		f.Duration = dur(300*time.Millisecond, 3*time.Second)
	case FaultPause:
		sometimesLeader(0.5) // the stale read after a pause (etcd #20418)
		f.Duration = dur(time.Second, 4*time.Second)
	case FaultPartition:
		f.Duration = dur(1500*time.Millisecond, 4*time.Second)
	case FaultIsolateLeader:
		f.Target = LeaderTarget
		f.Duration = dur(1500*time.Millisecond, 4*time.Second)
	case FaultOneWay:
		sometimesLeader(0.3)
		f.Peer = rng.IntN(members)
		if f.Peer == f.Target {
			f.Peer = (f.Peer + 1) % members
		}
		f.Duration = dur(1500*time.Millisecond, 4*time.Second)
	case FaultLossy:
		f.Net = NetRule{
			Drop:      float64(int(100*(0.05+0.25*rng.Float64()))) / 100,
			Delay:     time.Duration(rng.IntN(40)) * time.Millisecond,
			Duplicate: float64(int(100*0.2*rng.Float64())) / 100,
		}
		f.Duration = dur(2*time.Second, 5*time.Second)
	case FaultFsyncError:
		sometimesLeader(0.3)
		f.Duration = dur(300*time.Millisecond, 2*time.Second)
	case FaultTornWAL, FaultWALBitflip, FaultBackendBitflip:
		sometimesLeader(0.3)
		f.Duration = dur(200*time.Millisecond, time.Second)
	}
	return f
}

func randDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
