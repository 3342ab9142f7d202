package tests

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/tests/chaos"
)

var chaosSoak = flag.Duration("chaos.soak", 0, "run fault campaigns of many seeds for this long instead of the CI campaign (also AETCD_CHAOS_SOAK)")

// ciCampaigns is the CI campaign: five consecutive seeds of a 3-member
// cluster, whose schedules rotate through every fault kind and every
// actor/how kill (chaos.FaultsPerSeed faults each, continuing the rotation
// where the previous seed stopped), and one seed of a 5-member cluster
// with two faults at a time.
var ciCampaigns = []struct {
	seed     uint64
	members  int
	duration time.Duration
}{
	{1, 3, 25 * time.Second},
	{2, 3, 25 * time.Second},
	{3, 3, 25 * time.Second},
	{4, 3, 25 * time.Second},
	{5, 3, 25 * time.Second},
	{6, 5, 16 * time.Second},
}

// TestChaosCampaign runs seeded fault campaigns against clusters of aetcd
// processes: faults during a safety phase, then healing and a liveness
// phase; the histories the clients, watchers and leases recorded must be
// linearizable, durable and consistent, and the members must converge.
// A failure prints the seed, its schedule and the command that replays it.
func TestChaosCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault campaign takes minutes")
	}
	soak := *chaosSoak
	if s := os.Getenv("AETCD_CHAOS_SOAK"); s != "" && soak == 0 {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("AETCD_CHAOS_SOAK=%q: %v", s, err)
		}
		soak = d
	}
	if soak > 0 {
		chaosSoakRun(t, soak)
		return
	}
	var reports []*chaos.Report
	for _, cc := range ciCampaigns {
		rep := runCampaign(t, chaos.Config{Seed: cc.seed, Members: cc.members, Duration: cc.duration})
		if rep == nil {
			break
		}
		reports = append(reports, rep)
	}
	var b strings.Builder
	chaos.WriteSummary(&b, reports)
	t.Logf("fault campaign summary:\n%s", b.String())
	if len(reports) < len(ciCampaigns) {
		return
	}
	// The CI campaign covers every fault kind and every actor kill.
	injected := map[chaos.FaultKind]int{}
	kills := map[string]int{}
	for _, r := range reports {
		for k, n := range r.Injected {
			injected[k] += n
		}
		for k, n := range r.Kills {
			kills[k] += n
		}
	}
	for _, k := range chaos.AllFaultKinds {
		if injected[k] == 0 {
			t.Errorf("the CI campaign injected no %s fault", k)
		}
	}
	if missing := chaos.MissingKills(kills); len(missing) > 0 {
		t.Errorf("the CI campaign killed no actor as %s", strings.Join(missing, ", "))
	}
}

// chaosSoakRun runs campaigns of consecutive seeds, every fourth with five
// members, until d is spent.
func chaosSoakRun(t *testing.T, d time.Duration) {
	start := uint64(time.Now().Unix())
	t.Logf("soak for %v from seed %d", d, start)
	deadline := time.Now().Add(d)
	var reports []*chaos.Report
	for seed := start; time.Now().Before(deadline); seed++ {
		members := 3
		if seed%4 == 0 {
			members = 5
		}
		rep := runCampaign(t, chaos.Config{Seed: seed, Members: members, Duration: 30 * time.Second})
		if rep == nil {
			break
		}
		reports = append(reports, rep)
	}
	var b strings.Builder
	chaos.WriteSummary(&b, reports)
	t.Logf("soak summary:\n%s", b.String())
}

// runCampaign runs one campaign with the test's aetcd binary, logs its
// report and fails the test with the seed, schedule and replay command on
// a violation. It returns nil if the campaign could not run.
func runCampaign(t *testing.T, cfg chaos.Config) *chaos.Report {
	t.Helper()
	cfg.Binary = aetcdBin
	out, err := os.MkdirTemp("", "aetcd-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.OutDir = out
	if testing.Verbose() {
		cfg.Progress = testWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+3*time.Minute)
	defer cancel()
	t.Logf("\n%s", chaos.NewSchedule(cfg.Seed, cfg.Members, cfg.Duration, cfg.Faults))
	rep, err := chaos.Run(ctx, cfg)
	var b strings.Builder
	if rep != nil {
		rep.WriteTable(&b)
	}
	if err != nil {
		t.Errorf("seed %d: %v\n%s", cfg.Seed, err, b.String())
		return nil
	}
	t.Logf("\n%s", b.String())
	if rep.Failed() {
		b.Reset()
		rep.WriteFailure(&b)
		t.Errorf("\n%s", b.String())
	} else {
		os.RemoveAll(out)
	}
	return rep
}

// testWriter writes lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
