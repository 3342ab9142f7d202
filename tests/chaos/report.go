package chaos

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one campaign did and found.
type Report struct {
	Seed     uint64
	Members  int
	Schedule *Schedule
	Command  string   // the command line that replays the campaign
	Timeline []string // what the runner did, with times from the safety phase's start

	Ops, UnknownOps      int  // client operations recorded, and those with an unknown outcome
	LinearizableOps      int  // operations porcupine checked (unknown reads dropped)
	LinearizableTimedOut bool // some key neither proven nor refuted in time
	Injected             map[FaultKind]int
	Kills                map[string]int // kill-actor: "actor/how" → count
	WatchEvents          int            // events in the full history
	WatchLogs            int            // watch streams recorded (a resumed watch is a new one)
	WatchedEvents        int            // events the watchers received
	Leases               int            // leases granted and recorded
	LeasesChecked        int
	LeasesSkipped        int
	FinalRev             int64
	// KillRecoveries is how long each actor kill took until the member
	// served again.
	KillRecoveries []time.Duration
	Violations     []Violation
	// Notes are outcomes worth knowing that break no guarantee.
	Notes []string

	Startup, Safety, Liveness, Check, Total time.Duration

	OutDir  string // on failure: member logs, data, timeline
	VisPath string // on a linearizability violation: porcupine's HTML
}

// Failed reports whether the campaign found a violation.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// FaultsInjected is the total of Injected.
func (r *Report) FaultsInjected() int {
	n := 0
	for _, c := range r.Injected {
		n += c
	}
	return n
}

// WriteTable prints the report as a table.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	status := "PASS"
	if r.Failed() {
		status = fmt.Sprintf("FAIL (%d violations)", len(r.Violations))
	}
	fmt.Fprintf(tw, "seed %d: %s\n", r.Seed, status)
	row("members", "%d", r.Members)
	row("phases", "startup %v, safety %v, liveness %v, check %v, total %v",
		r.Startup.Round(time.Millisecond), r.Safety.Round(time.Millisecond), r.Liveness.Round(time.Millisecond),
		r.Check.Round(time.Millisecond), r.Total.Round(time.Millisecond))
	lin := fmt.Sprintf("%d checked", r.LinearizableOps)
	if r.LinearizableTimedOut {
		lin += ", TIMED OUT (some key undecided)"
	}
	row("operations", "%d (%d unknown); linearizability: %s", r.Ops, r.UnknownOps, lin)
	row("final revision", "%d", r.FinalRev)
	row("watches", "%d events in the full history; %d streams received %d events", r.WatchEvents, r.WatchLogs, r.WatchedEvents)
	row("leases", "%d granted, %d checked, %d skipped", r.Leases, r.LeasesChecked, r.LeasesSkipped)
	scheduled := map[FaultKind]int{}
	if r.Schedule != nil {
		for _, f := range r.Schedule.Faults {
			scheduled[f.Kind]++
		}
	}
	for _, k := range AllFaultKinds {
		if scheduled[k] == 0 && r.Injected[k] == 0 {
			continue
		}
		extra := ""
		if k == FaultKillActor && len(r.Kills) > 0 {
			extra = " (" + joinCounts(r.Kills) + ")"
		}
		row("fault "+string(k), "%d injected of %d scheduled%s", r.Injected[k], scheduled[k], extra)
	}
	if n := len(r.KillRecoveries); n > 0 {
		ds := slices.Clone(r.KillRecoveries)
		slices.Sort(ds)
		row("kill recovery", "%d kills: median %v, max %v until the member served again", n,
			ds[n/2].Round(time.Millisecond), ds[n-1].Round(time.Millisecond))
	}
	for _, n := range r.Notes {
		row("note", "%s", firstLine(n))
	}
	for _, v := range r.Violations {
		row("VIOLATION", "%s", firstLine(v.String()))
	}
	if r.OutDir != "" {
		row("output", "%s", r.OutDir)
	}
	if r.VisPath != "" {
		row("porcupine", "%s", r.VisPath)
	}
	tw.Flush()
}

// WriteFailure prints what replays a failed campaign: the seed, every
// violation in full, the schedule, what the runner did when, the command
// line, and where the logs and porcupine's visualization are.
func (r *Report) WriteFailure(w io.Writer) {
	fmt.Fprintf(w, "FAILED: seed %d, %d violations\n", r.Seed, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(v.String(), "\n", "\n    "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if r.Schedule != nil {
		fmt.Fprint(w, r.Schedule.String())
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintf(w, "timeline:\n")
		for _, l := range r.Timeline {
			fmt.Fprintf(w, "  %s\n", firstLine(l))
		}
	}
	fmt.Fprintf(w, "replay: %s\n", r.Command)
	if r.OutDir != "" {
		fmt.Fprintf(w, "member logs and data: %s\n", r.OutDir)
	}
	if r.VisPath != "" {
		fmt.Fprintf(w, "porcupine visualization: %s\n", r.VisPath)
	}
}

// WriteSummary prints one row per report, then the faults injected by kind
// over all of them and the actor kills covered.
func WriteSummary(w io.Writer, reports []*Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seed\tmembers\tops\tunknown\tlin-checked\twatch-events\tleases-checked\tfaults\tviolations\ttime\t")
	var total Report
	injected := map[FaultKind]int{}
	kills := map[string]int{}
	failed := 0
	for _, r := range reports {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%v\t\n", r.Seed, r.Members, r.Ops, r.UnknownOps, r.LinearizableOps,
			r.WatchEvents, r.LeasesChecked, r.Leases, r.FaultsInjected(), len(r.Violations), r.Total.Round(time.Second))
		total.Ops += r.Ops
		total.UnknownOps += r.UnknownOps
		total.LinearizableOps += r.LinearizableOps
		total.WatchEvents += r.WatchEvents
		total.LeasesChecked += r.LeasesChecked
		total.Leases += r.Leases
		total.Total += r.Total
		total.Violations = append(total.Violations, r.Violations...)
		for k, n := range r.Injected {
			injected[k] += n
		}
		for k, n := range r.Kills {
			kills[k] += n
		}
		if r.Failed() {
			failed++
		}
	}
	total.Injected = injected
	fmt.Fprintf(tw, "all\t\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%v\t\n", total.Ops, total.UnknownOps, total.LinearizableOps,
		total.WatchEvents, total.LeasesChecked, total.Leases, total.FaultsInjected(), len(total.Violations), total.Total.Round(time.Second))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault kind\tinjected\t")
	for _, k := range AllFaultKinds {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, injected[k])
	}
	tw.Flush()
	var recoveries []time.Duration
	for _, r := range reports {
		recoveries = append(recoveries, r.KillRecoveries...)
	}
	if n := len(recoveries); n > 0 {
		slices.Sort(recoveries)
		fmt.Fprintf(w, "kill recovery: %d kills, median %v, max %v until the member served again\n", n,
			recoveries[n/2].Round(time.Millisecond), recoveries[n-1].Round(time.Millisecond))
	}
	combos := len(Actors) * len(KillHows)
	fmt.Fprintf(w, "actor kills: %d of %d actor/how pairs covered", len(kills), combos)
	if missing := MissingKills(kills); len(missing) > 0 && len(missing) < combos {
		fmt.Fprintf(w, " (missing %s)", strings.Join(missing, ", "))
	}
	fmt.Fprintln(w)
	for _, r := range reports {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note (seed %d): %s\n", r.Seed, n)
		}
	}
	fmt.Fprintf(w, "%d of %d campaigns failed\n", failed, len(reports))
}

// MissingKills lists the actor/how pairs kills does not hold.
func MissingKills(kills map[string]int) []string {
	var missing []string
	for _, a := range Actors {
		for _, h := range KillHows {
			if k := (ActorKill{a, h}).String(); kills[k] == 0 {
				missing = append(missing, k)
			}
		}
	}
	return missing
}

func joinCounts(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var out []string
	for _, k := range ks {
		if m[k] == 1 {
			out = append(out, k)
		} else {
			out = append(out, fmt.Sprintf("%s×%d", k, m[k]))
		}
	}
	return strings.Join(out, ", ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " [...]"
	}
	return s
}
