// Command aetcd runs one aetcd member. With no flags it serves a single
// member on 127.0.0.1:2379 (etcd gRPC API) and 127.0.0.1:2380 (actor
// remoting) with its data in ./default.aetcd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/aetcd/aetcd/bootstrap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "aetcd:", err)
		if errors.Is(err, bootstrap.ErrBadConfig) {
			fmt.Fprintln(os.Stderr, "hint: run 'aetcd --help' for the flags")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, version, err := bootstrap.ParseFlags(args, stderr)
	if err != nil {
		return err
	}
	if version {
		fmt.Fprintf(stdout, "aetcd Version: %s\netcd API Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			bootstrap.Version, bootstrap.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := bootstrap.NewLogger(stderr, cfg.LogLevel)
	return bootstrap.Run(ctx, cfg, log, nil)
}
