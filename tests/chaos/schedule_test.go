package chaos

import (
	"slices"
	"testing"
	"time"
)

func TestScheduleIsDeterministic(t *testing.T) {
	for _, members := range []int{3, 5} {
		a := NewSchedule(42, members, 30*time.Second, nil).String()
		b := NewSchedule(42, members, 30*time.Second, nil).String()
		if a != b {
			t.Fatalf("seed 42 gave two schedules:\n%s\n%s", a, b)
		}
		if c := NewSchedule(43, members, 30*time.Second, nil).String(); c == a {
			t.Fatalf("seeds 42 and 43 gave the same schedule:\n%s", a)
		}
	}
}

// Consecutive seeds continue the rotation: enough of them inject every kind
// and kill every actor in every way.
func TestConsecutiveSeedsCoverEveryFault(t *testing.T) {
	for _, tc := range []struct {
		duration time.Duration
		seeds    int
	}{
		{25 * time.Second, 5},
		{30 * time.Second, 5},
		{16 * time.Second, 8},
	} {
		for _, first := range []uint64{0, 1, 1000} {
			kinds := map[FaultKind]bool{}
			kills := map[string]int{}
			for s := first; s < first+uint64(tc.seeds); s++ {
				for _, f := range NewSchedule(s, 3, tc.duration, nil).Faults {
					kinds[f.Kind] = true
					for _, k := range f.Kills {
						kills[k.String()]++
					}
				}
			}
			for _, k := range AllFaultKinds {
				if !kinds[k] {
					t.Errorf("%d seeds from %d of %v: no %s fault", tc.seeds, first, tc.duration, k)
				}
			}
			if m := MissingKills(kills); len(m) > 0 {
				t.Errorf("%d seeds from %d of %v: no kill %v", tc.seeds, first, tc.duration, m)
			}
		}
	}
}

func TestScheduleKindsFilter(t *testing.T) {
	kinds, err := ParseFaultKinds("pause, partition,pause")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kinds, []FaultKind{FaultPause, FaultPartition}) {
		t.Fatalf("parsed %v", kinds)
	}
	if _, err := ParseFaultKinds("pause,meteor"); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
	for s := uint64(0); s < 20; s++ {
		for _, f := range NewSchedule(s, 5, 30*time.Second, kinds).Faults {
			if !slices.Contains(kinds, f.Kind) {
				t.Fatalf("seed %d: %s outside the filter", s, f)
			}
		}
	}
}

// A fault stays within the safety phase's slots and, with five members,
// the second lane never targets the member lane 0 targets meanwhile.
func TestScheduleShape(t *testing.T) {
	d := 30 * time.Second
	for s := uint64(0); s < 50; s++ {
		for _, members := range []int{3, 5} {
			sc := NewSchedule(s, members, d, nil)
			var lane0 []Fault
			for i, f := range sc.Faults {
				if f.At < 0 || f.At >= d {
					t.Fatalf("seed %d: %s outside the safety phase", s, f)
				}
				if i > 0 && f.At < sc.Faults[i-1].At {
					t.Fatalf("seed %d: faults out of order:\n%s", s, sc)
				}
				if f.Target != LeaderTarget && (f.Target < 0 || f.Target >= members) {
					t.Fatalf("seed %d: %s targets no member", s, f)
				}
				if f.Lane == 0 {
					lane0 = append(lane0, f)
				} else if members < 5 || !slices.Contains(processKinds, f.Kind) {
					t.Fatalf("seed %d, %d members: lane %d fault %s", s, members, f.Lane, f)
				}
			}
			if len(lane0) != FaultsPerSeed(d) {
				t.Fatalf("seed %d: %d lane 0 faults, want %d", s, len(lane0), FaultsPerSeed(d))
			}
			slot := d / time.Duration(len(lane0))
			for _, f := range sc.Faults {
				if f.Lane != 1 {
					continue
				}
				j := int(f.At / slot) // the lane 0 fault it overlaps, and the next
				for _, o := range lane0[j:min(j+2, len(lane0))] {
					if o.Target == f.Target {
						t.Fatalf("seed %d: lane 1 %s and lane 0 %s target the same member", s, f, o)
					}
				}
			}
		}
	}
}
