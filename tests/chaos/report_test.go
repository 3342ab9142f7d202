package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestWriteFailure: a failed campaign's report names the seed, every
// violation, the whole fault schedule, the command that replays it and
// where porcupine's visualization and the member logs are.
func TestWriteFailure(t *testing.T) {
	cfg := Config{Seed: 7, Members: 3, Duration: 20 * time.Second, Faults: AllFaultKinds}
	sched := NewSchedule(cfg.Seed, cfg.Members, cfg.Duration, cfg.Faults)
	rep := &Report{
		Seed: 7, Members: 3, Schedule: sched, Command: cfg.ReplayCommand(),
		Violations: []Violation{{Check: "linearizable", Detail: "key /kv/03: not linearizable"}},
		OutDir:     "/tmp/out/seed-7", VisPath: "/tmp/out/seed-7/porcupine.html",
	}
	if !rep.Failed() {
		t.Fatal("a report with a violation is not Failed")
	}
	var b bytes.Buffer
	rep.WriteFailure(&b)
	out := b.String()
	for _, want := range []string{
		"FAILED: seed 7, 1 violations",
		"linearizable: key /kv/03: not linearizable",
		strings.TrimSpace(strings.SplitN(sched.String(), "\n", 2)[0]),
		"replay: go run ./cmd/aetcd-chaos --seed 7 --members 3 --duration 20s",
		"member logs and data: /tmp/out/seed-7",
		"porcupine visualization: /tmp/out/seed-7/porcupine.html",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("failure report lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(sched.String()), "\n")[1:] {
		if !strings.Contains(out, strings.TrimSpace(line)) {
			t.Errorf("failure report lacks schedule line %q", line)
		}
	}
}
