package chaos

import (
	"fmt"
	"strings"
)

// maxProblemsPerSource caps the violations reported for one watcher (or for
// the full history); one more violation counts the rest.
const maxProblemsPerSource = 5

// CheckWatches checks what each watcher received against full, the complete
// event history of the whole key space from revision 1 through finalRev,
// ordered by ModRev (read after the cluster healed by a fresh watch from
// revision 1; a campaign never compacts).
//
// full itself must be ordered (ModRev non-decreasing, so each revision's
// events are contiguous), hold at most one event per (ModRev, Key), start at
// revision 2 or later, and hold at least one event at every revision from
// its first through finalRev: each write transaction that changes something
// takes exactly one revision, and a campaign writes only through such
// transactions (a txn whose compare fails takes none). Events after
// finalRev are allowed.
//
// For each WatchLog, with from = StartRev if StartRev > 0 else
// CreatedRev+1, and last = the highest ModRev it received:
//   - its events are in order (ModRev non-decreasing), each (ModRev, Key) at
//     most once, of keys under Prefix, and at revisions >= from;
//   - each event equals full's event at its (ModRev, Key): type, value,
//     create revision and version (PrevPresent is not compared);
//   - no gaps: every event of full under Prefix with from <= ModRev <= last
//     was received;
//   - if End == "" (the watcher lived to the end of the run and was waited
//     for), last reaches full's last event under Prefix with
//     from <= ModRev <= finalRev.
//
// Each problem is a Violation{Check: "watch"} naming the watcher, its member
// and the revision; at most maxProblemsPerSource are reported per watcher,
// and one more says how many were left out.
func CheckWatches(full []WatchEvent, logs []WatchLog, finalRev int64) []Violation {
	vs := capProblems("full history", checkFullHistory(full, finalRev))

	index := make(map[watchEventKey]WatchEvent, len(full))
	for _, e := range full {
		k := watchEventKey{e.ModRev, e.Key}
		if _, dup := index[k]; !dup {
			index[k] = e
		}
	}
	for _, l := range logs {
		source := fmt.Sprintf("watcher %d (member %s, prefix %q)", l.ID, l.Member, l.Prefix)
		vs = append(vs, capProblems(source, checkWatchLog(full, index, l, finalRev))...)
	}
	return vs
}

// watchEventKey identifies an event: a revision changes a key at most once.
type watchEventKey struct {
	rev int64
	key string
}

// checkFullHistory returns the problems of full (see CheckWatches).
func checkFullHistory(full []WatchEvent, finalRev int64) []string {
	var problems []string
	if len(full) == 0 {
		if finalRev > 1 {
			problems = append(problems, fmt.Sprintf("no event at all, but the final revision is %d", finalRev))
		}
		return problems
	}
	seen := make(map[watchEventKey]bool, len(full))
	revs := make(map[int64]bool)
	first := full[0].ModRev
	for i, e := range full {
		first = min(first, e.ModRev)
		if i > 0 && e.ModRev < full[i-1].ModRev {
			problems = append(problems, fmt.Sprintf("out of order: %s after revision %d", describeWatchEvent(e), full[i-1].ModRev))
		}
		k := watchEventKey{e.ModRev, e.Key}
		if seen[k] {
			problems = append(problems, fmt.Sprintf("two events of key %q at revision %d", e.Key, e.ModRev))
		}
		seen[k] = true
		revs[e.ModRev] = true
	}
	if first < 2 {
		problems = append(problems, fmt.Sprintf("an event at revision %d (writes start at revision 2)", first))
	}
	for r := first; r <= finalRev; r++ {
		if revs[r] {
			continue
		}
		hole := r
		for r+1 <= finalRev && !revs[r+1] {
			r++
		}
		if hole == r {
			problems = append(problems, fmt.Sprintf("no event at revision %d (final revision %d)", hole, finalRev))
		} else {
			problems = append(problems, fmt.Sprintf("no event at revisions %d-%d (final revision %d)", hole, r, finalRev))
		}
	}
	return problems
}

// checkWatchLog returns the problems of one watcher (see CheckWatches);
// index is full by (ModRev, Key).
func checkWatchLog(full []WatchEvent, index map[watchEventKey]WatchEvent, l WatchLog, finalRev int64) []string {
	var problems []string
	from := l.StartRev
	if from <= 0 {
		from = l.CreatedRev + 1
	}
	received := make(map[watchEventKey]bool, len(l.Events))
	var last int64
	for i, e := range l.Events {
		if i > 0 && e.ModRev < l.Events[i-1].ModRev {
			problems = append(problems, fmt.Sprintf("out of order: %s after revision %d", describeWatchEvent(e), l.Events[i-1].ModRev))
		}
		k := watchEventKey{e.ModRev, e.Key}
		if received[k] {
			problems = append(problems, fmt.Sprintf("duplicate: %s received again", describeWatchEvent(e)))
			continue
		}
		received[k] = true
		last = max(last, e.ModRev)
		if !strings.HasPrefix(e.Key, l.Prefix) {
			problems = append(problems, fmt.Sprintf("outside the prefix: %s", describeWatchEvent(e)))
		}
		if e.ModRev < from {
			problems = append(problems, fmt.Sprintf("before the start revision %d: %s", from, describeWatchEvent(e)))
		}
		want, ok := index[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("not in the full history: %s", describeWatchEvent(e)))
		case e.Put != want.Put || e.Value != want.Value || e.CreateRev != want.CreateRev || e.Version != want.Version:
			problems = append(problems, fmt.Sprintf("differs at revision %d: received %s, the full history has %s",
				e.ModRev, describeWatchEvent(e), describeWatchEvent(want)))
		}
	}

	var lastWanted int64
	for _, e := range full {
		if !strings.HasPrefix(e.Key, l.Prefix) || e.ModRev < from {
			continue
		}
		if e.ModRev <= last && !received[watchEventKey{e.ModRev, e.Key}] {
			problems = append(problems, fmt.Sprintf("gap: missed %s (received up to revision %d)", describeWatchEvent(e), last))
		}
		if e.ModRev <= finalRev {
			lastWanted = max(lastWanted, e.ModRev)
		}
	}
	switch {
	case l.End != "" || last >= lastWanted:
	case last == 0:
		problems = append(problems, fmt.Sprintf("lived to the end but received nothing from revision %d on; the last matching change is at revision %d",
			from, lastWanted))
	default:
		problems = append(problems, fmt.Sprintf("lived to the end but stopped at revision %d; the last matching change is at revision %d",
			last, lastWanted))
	}
	return problems
}

// capProblems turns the problems of source into watch violations, at most
// maxProblemsPerSource of them plus one counting the rest.
func capProblems(source string, problems []string) []Violation {
	var vs []Violation
	for i, p := range problems {
		if i == maxProblemsPerSource {
			vs = append(vs, Violation{Check: "watch", Detail: fmt.Sprintf("%s: %d more problems", source, len(problems)-i)})
			break
		}
		vs = append(vs, Violation{Check: "watch", Detail: source + ": " + p})
	}
	return vs
}

// describeWatchEvent renders e for a report, for example
// `PUT "k1"="v3" at revision 7 (created 5, version 2)`.
func describeWatchEvent(e WatchEvent) string {
	if !e.Put {
		return fmt.Sprintf("DELETE %q at revision %d", e.Key, e.ModRev)
	}
	return fmt.Sprintf("PUT %q=%q at revision %d (created %d, version %d)", e.Key, e.Value, e.ModRev, e.CreateRev, e.Version)
}
