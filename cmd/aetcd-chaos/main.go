// Command aetcd-chaos runs seeded fault-injection campaigns against a
// cluster of aetcd processes and checks what the clients saw: a
// linearizability check of the key-value history, watch, durability and
// lease guarantees, and that the members converge after healing.
//
//	aetcd-chaos --seed 7 --members 3 --duration 30s
//	aetcd-chaos --seed 1 --seeds 20 --faults pause,partition,isolate-leader
//	aetcd-chaos --soak 2h --members 5
//
// A seed reproduces its fault schedule (printed before the run); a failed
// campaign prints the command line that replays it. The exit status is 1 if
// any campaign found a violation.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aetcd/aetcd/tests/chaos"
)

// errViolations is returned when some campaign found a violation.
var errViolations = errors.New("violations found")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "aetcd-chaos:", err)
		if !errors.Is(err, errViolations) && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "hint: run 'aetcd-chaos --help' for the flags")
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aetcd-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("aetcd", "", "aetcd binary (default: built from ./cmd/aetcd inside the module, else aetcd in PATH)")
	seed := fs.Uint64("seed", 1, "seed of the first campaign's fault schedule")
	seeds := fs.Int("seeds", 1, "number of campaigns, seeds seed .. seed+seeds-1")
	soak := fs.Duration("soak", 0, "a long soak: campaigns of consecutive seeds from --seed until this much time is spent (overrides --seeds)")
	members := fs.Int("members", 3, "cluster size: 3 or 5")
	duration := fs.Duration("duration", 30*time.Second, "safety phase (faults injected) of each campaign")
	faults := fs.String("faults", "all", "comma-separated fault kinds: "+chaos.JoinKinds(chaos.AllFaultKinds))
	clients := fs.Int("clients", 6, "key-value clients, each pinned to one member")
	out := fs.String("out", "", "output directory (default: a new temporary directory)")
	verbose := fs.Bool("v", false, "print each step and fault as it happens")
	keep := fs.Bool("keep", false, "keep member logs and data of campaigns that pass too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *members != 3 && *members != 5 {
		return fmt.Errorf("--members must be 3 or 5, not %d", *members)
	}
	if *seeds < 1 {
		return fmt.Errorf("--seeds must be at least 1")
	}
	if *soak < 0 {
		return fmt.Errorf("--soak must not be negative")
	}
	kinds, err := chaos.ParseFaultKinds(*faults)
	if err != nil {
		return err
	}
	if *out == "" {
		if *out, err = os.MkdirTemp("", "aetcd-chaos-"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "output directory: %s\n", *out)
	if *binary == "" {
		if *binary, err = findBinary(ctx, *out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "aetcd binary: %s\n", *binary)

	var reports []*chaos.Report
	soakEnd := time.Now().Add(*soak)
	more := func(i int) bool {
		if *soak > 0 {
			return time.Now().Before(soakEnd)
		}
		return i < *seeds
	}
	for i := 0; more(i); i++ {
		cfg := chaos.Config{
			Binary: *binary, Seed: *seed + uint64(i), Members: *members, Duration: *duration,
			Faults: kinds, Clients: *clients, OutDir: *out, KeepOutput: *keep,
		}
		if *verbose {
			cfg.Progress = stdout
		}
		fmt.Fprintf(stdout, "\n%s", chaos.NewSchedule(cfg.Seed, cfg.Members, cfg.Duration, cfg.Faults))
		rep, err := chaos.Run(ctx, cfg)
		if err != nil {
			if rep != nil && rep.OutDir != "" {
				fmt.Fprintf(stdout, "member logs: %s\n", rep.OutDir)
			}
			return fmt.Errorf("seed %d: %w (replay: %s)", cfg.Seed, err, cfg.ReplayCommand())
		}
		reports = append(reports, rep)
		rep.WriteTable(stdout)
		if rep.Failed() {
			rep.WriteFailure(stdout)
		}
	}
	if len(reports) > 1 {
		fmt.Fprintln(stdout)
		chaos.WriteSummary(stdout, reports)
	}
	var failed []uint64
	for _, r := range reports {
		if r.Failed() {
			failed = append(failed, r.Seed)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: seeds %v", errViolations, failed)
	}
	return nil
}

// findBinary builds ./cmd/aetcd into dir when run inside the aetcd module,
// or else finds aetcd in PATH.
func findBinary(ctx context.Context, dir string) (string, error) {
	if root := moduleRoot(); root != "" {
		bin := filepath.Join(dir, "aetcd")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/aetcd")
		build.Dir = root
		if outp, err := build.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building aetcd: %v\n%s", err, outp)
		}
		return bin, nil
	}
	bin, err := exec.LookPath("aetcd")
	if err != nil {
		return "", fmt.Errorf("no --aetcd given, not inside the aetcd module, and %w", err)
	}
	return bin, nil
}

// moduleRoot returns the directory of the aetcd module's go.mod above the
// working directory, or "".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if bytes.HasPrefix(b, []byte("module github.com/aetcd/aetcd\n")) {
				return dir
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
