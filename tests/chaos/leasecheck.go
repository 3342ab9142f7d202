package chaos

import (
	"fmt"
	"slices"
	"time"
)

// LeaseStats counts the leases CheckLeases checked and those it skipped
// because nothing bounded when their keys could legitimately go.
type LeaseStats struct{ Checked, Skipped int }

// CheckLeases checks that a lease kept alive keeps its keys, against full,
// the complete event history (see CheckWatches). Each lease's keys are
// assumed to be attached to it alone.
//
// A lease was continuously kept alive when no gap between consecutive times
// of [Granted, Acks..., end] reaches its TTL, where end is Revoked if the
// runner revoked the lease (acks after it are ignored) and otherwise the
// run's last keep-alive answer: the latest ack or revoke time of all leases
// (so a lease whose answers stopped a TTL before the run's did may have
// expired). A lease that was not, or that was revoked with an unknown
// outcome (Revoked != 0, RevokedRev == 0), is skipped.
//
// For each lease checked, each of its Keys has a PUT event (the attach) and
// no DELETE event at a revision below RevokedRev (at any revision when the
// lease was kept alive to the end). Each problem is a
// Violation{Check: "lease"}.
func CheckLeases(full []WatchEvent, leases []LeaseLog) ([]Violation, LeaseStats) {
	var runEnd int64
	for _, l := range leases {
		runEnd = max(runEnd, l.Granted, l.Revoked)
		for _, a := range l.Acks {
			runEnd = max(runEnd, a)
		}
	}
	byKey := make(map[string][]WatchEvent)
	for _, e := range full {
		byKey[e.Key] = append(byKey[e.Key], e)
	}

	var vs []Violation
	var stats LeaseStats
	for _, l := range leases {
		if (l.Revoked != 0 && l.RevokedRev == 0) || !keptAlive(l, runEnd) {
			stats.Skipped++
			continue
		}
		stats.Checked++
		lease := fmt.Sprintf("lease %x (TTL %v, kept alive %s)", l.ID, l.TTL, describeKeptAlive(l))
		for _, k := range l.Keys {
			attached := false
			for _, e := range byKey[k] {
				attached = attached || e.Put
				if !e.Put && (l.Revoked == 0 || e.ModRev < l.RevokedRev) {
					vs = append(vs, Violation{Check: "lease", Detail: fmt.Sprintf("%s: key %q deleted at revision %d", lease, k, e.ModRev)})
				}
			}
			if !attached {
				vs = append(vs, Violation{Check: "lease", Detail: fmt.Sprintf("%s: key %q was never attached (no PUT)", lease, k)})
			}
		}
	}
	return vs, stats
}

// keptAlive reports whether no gap between consecutive times of [Granted,
// Acks..., end] reaches l.TTL; end is l.Revoked, or runEnd if 0.
func keptAlive(l LeaseLog, runEnd int64) bool {
	end := runEnd
	if l.Revoked != 0 {
		end = l.Revoked
	}
	times := []int64{l.Granted}
	for _, a := range l.Acks {
		if a <= end {
			times = append(times, a)
		}
	}
	times = append(times, end)
	slices.Sort(times)
	for i := 1; i < len(times); i++ {
		if time.Duration(times[i]-times[i-1]) >= l.TTL {
			return false
		}
	}
	return true
}

// describeKeptAlive renders how long l was kept alive, for a report.
func describeKeptAlive(l LeaseLog) string {
	if l.Revoked == 0 {
		return fmt.Sprintf("to the end, %d acks", len(l.Acks))
	}
	return fmt.Sprintf("for %v, %d acks, revoked at revision %d", time.Duration(l.Revoked-l.Granted), len(l.Acks), l.RevokedRev)
}
