package main

import (
	"context"
	"errors"
	"fmt"
)

// endpointCommand is `endpoint status`: the status of every member in
// --endpoints, each asked directly.
type endpointCommand struct{}

func (c *endpointCommand) flags(*flagSet) {}

func (c *endpointCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) == 0 {
		cc.m.commandUsage("endpoint", newFlagSet())
		return nil
	}
	if args[0] != "status" {
		return fmt.Errorf("unknown command %q for \"aetcdctl endpoint\"", args[0])
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	if !supports(cc.g.writeOut, outStatus) {
		return errUnsupported(cc.g.writeOut)
	}
	kv, err := cc.dial()
	if err != nil {
		return err
	}
	var (
		statuses []endpointStatus
		failed   bool
	)
	for _, ep := range cc.g.endpoints {
		sctx, cancel := cc.timeout(ctx)
		st, err := kv.StatusAt(sctx, ep)
		cancel()
		if err != nil {
			failed = true
			fmt.Fprintf(cc.m.Stderr, "Failed to get the status of endpoint %s (%v)\n", ep, err)
			continue
		}
		statuses = append(statuses, endpointStatus{Endpoint: ep, Status: st})
	}
	if err := p.EndpointStatus(statuses); err != nil {
		return err
	}
	if failed {
		return &exitErr{code: exitError, err: errors.New("some endpoints failed"), silent: true}
	}
	return nil
}
