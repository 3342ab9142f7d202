package chaos

import (
	"fmt"
	"strings"
)

// CheckDurability checks the writes of ops against full, the complete event
// history (see CheckWatches), relying on every written value being unique in
// the history:
//
//   - every acknowledged write (a Put that is not Unknown, a CAS that
//     Succeeded) is in full as a PUT event of its key with its value;
//   - every PUT event in full of a key that some op touched carries the
//     value of a Put or CAS of that key that may have been applied (Unknown,
//     or acknowledged; not a CAS that reported failure): no phantom writes;
//   - no value is written by more than one PUT event (a write applied twice).
//
// Events of keys no op touched (lease keys, checked by CheckLeases) are
// ignored. Each problem is a Violation{Check: "durability"}.
func CheckDurability(ops []Op, full []WatchEvent) []Violation {
	touched := make(map[string]bool)
	writers := make(map[string][]Op) // by value: the Puts and CASes writing it
	for _, op := range ops {
		touched[op.Key] = true
		if op.Kind == KindPut || op.Kind == KindCAS {
			writers[op.Value] = append(writers[op.Value], op)
		}
	}
	puts := make(map[string][]WatchEvent) // by value: the PUT events of touched keys
	for _, e := range full {
		if e.Put && touched[e.Key] {
			puts[e.Value] = append(puts[e.Value], e)
		}
	}

	var vs []Violation
	report := func(format string, args ...any) {
		vs = append(vs, Violation{Check: "durability", Detail: fmt.Sprintf(format, args...)})
	}

	for _, op := range ops {
		acked := !op.Unknown && (op.Kind == KindPut || op.Kind == KindCAS && op.Succeeded)
		if !acked {
			continue
		}
		found := false
		for _, e := range puts[op.Value] {
			found = found || e.Key == op.Key
		}
		if !found {
			report("lost acknowledged write: %s is not in the history", describeWrite(op))
		}
	}

	for _, e := range full {
		if !e.Put || !touched[e.Key] {
			continue
		}
		var failedCAS *Op
		applicable := false
		for i, op := range writers[e.Value] {
			if op.Key != e.Key {
				continue
			}
			if op.Kind == KindCAS && !op.Unknown && !op.Succeeded {
				failedCAS = &writers[e.Value][i]
				continue
			}
			applicable = true
		}
		switch {
		case applicable:
		case failedCAS != nil:
			report("phantom write: %s applied at revision %d though it reported failure", describeWrite(*failedCAS), e.ModRev)
		default:
			report("phantom write: %s was written by no operation", describeWatchEvent(e))
		}
	}

	twice := make(map[string]bool)
	for _, e := range full { // in the order of full, for a stable report
		events := puts[e.Value]
		if !e.Put || !touched[e.Key] || len(events) < 2 || twice[e.Value] {
			continue
		}
		twice[e.Value] = true
		var at []string
		for _, d := range events {
			at = append(at, fmt.Sprintf("%q at revision %d", d.Key, d.ModRev))
		}
		report("value %q written %d times: %s", e.Value, len(events), strings.Join(at, ", "))
	}
	return vs
}

// describeWrite renders a Put or CAS for a report, with who sent it where.
func describeWrite(op Op) string {
	outcome := "acknowledged"
	switch {
	case op.Unknown:
		outcome = "unknown"
	case op.Kind == KindCAS && !op.Succeeded:
		outcome = "failed"
	}
	return fmt.Sprintf("%s %q=%q (%s; client %d, member %s, header revision %d)",
		op.Kind, op.Key, op.Value, outcome, op.Client, op.Member, op.Rev)
}
