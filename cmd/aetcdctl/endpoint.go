package main

import (
	"context"
	"errors"
	"fmt"
)

// endpointStatusCommand is `endpoint status`: the status of every member
// in --endpoints, each asked directly. Arguments are ignored, as etcdctl
// does.
type endpointStatusCommand struct{}

func (c *endpointStatusCommand) flags(*flagSet) {}

func (c *endpointStatusCommand) run(ctx context.Context, cc *cmdContext, _ []string) error {
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
