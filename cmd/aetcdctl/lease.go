package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// The lease commands: etcdctl 3.6.6's `lease grant|revoke|timetolive|list|
// keep-alive`, with its arguments, messages and exit codes. As in etcdctl,
// a format that cannot print the response fails after the request (the
// lease is granted or revoked all the same); grant and revoke failures are
// wrapped ("failed to grant lease (...)"), and timetolive, list and
// keep-alive exit 2 on a failed request.

// leaseGrantCommand is `lease grant <ttl>`.
type leaseGrantCommand struct{}

func (c *leaseGrantCommand) flags(*flagSet) {}

func (c *leaseGrantCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 1 {
		return errorf(exitBadArgs, "lease grant command needs TTL argument")
	}
	ttl, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return errorf(exitBadArgs, "bad TTL (%w)", err)
	}
	return cc.callLease(ctx, func(ctx context.Context, kv kvClient, p printer) error {
		resp, err := kv.Grant(ctx, ttl, 0)
		if err != nil {
			return fmt.Errorf("failed to grant lease (%w)", err)
		}
		return p.Grant(resp)
	})
}

// leaseRevokeCommand is `lease revoke <leaseID>`.
type leaseRevokeCommand struct{}

func (c *leaseRevokeCommand) flags(*flagSet) {}

func (c *leaseRevokeCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 1 {
		return errorf(exitBadArgs, "lease revoke command needs 1 argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	return cc.callLease(ctx, func(ctx context.Context, kv kvClient, p printer) error {
		resp, err := kv.Revoke(ctx, id)
		if err != nil {
			return fmt.Errorf("failed to revoke lease (%w)", err)
		}
		return p.Revoke(id, resp)
	})
}

// leaseTimeToLiveCommand is `lease timetolive <leaseID> [--keys]`.
type leaseTimeToLiveCommand struct {
	keys bool
}

func (c *leaseTimeToLiveCommand) flags(fs *flagSet) {
	fs.Bool(&c.keys, "keys", "", "Get keys attached to this lease")
}

func (c *leaseTimeToLiveCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 1 {
		return errorf(exitBadArgs, "lease timetolive command needs lease ID as argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	return cc.callLease(ctx, func(ctx context.Context, kv kvClient, p printer) error {
		resp, err := kv.TimeToLive(ctx, id, c.keys)
		if err != nil {
			return withCode(exitBadConnection, err)
		}
		return p.TimeToLive(resp, c.keys)
	})
}

// leaseListCommand is `lease list`; arguments are ignored, as etcdctl does.
type leaseListCommand struct{}

func (c *leaseListCommand) flags(*flagSet) {}

func (c *leaseListCommand) run(ctx context.Context, cc *cmdContext, _ []string) error {
	return cc.callLease(ctx, func(ctx context.Context, kv kvClient, p printer) error {
		resp, err := kv.Leases(ctx)
		if err != nil {
			return withCode(exitBadConnection, err)
		}
		return p.Leases(resp)
	})
}

// leaseKeepAliveCommand is `lease keep-alive [--once] <leaseID>`. Without
// --once it renews the lease until the lease is gone (then the simple
// format says so and the exit code is 0) or the command is interrupted.
type leaseKeepAliveCommand struct {
	once bool
}

func (c *leaseKeepAliveCommand) flags(fs *flagSet) {
	fs.Bool(&c.once, "once", "", "Resets the keep-alive time to its original value and exits immediately")
}

func (c *leaseKeepAliveCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 1 {
		return errorf(exitBadArgs, "lease keep-alive command needs lease ID as argument")
	}
	id, err := parseLeaseID(args[0])
	if err != nil {
		return err
	}
	if c.once {
		return cc.callLease(ctx, func(ctx context.Context, kv kvClient, p printer) error {
			resp, err := kv.KeepAliveOnce(ctx, id)
			if err != nil {
				return withCode(exitBadConnection, err)
			}
			return p.KeepAlive(resp)
		})
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	kv, err := cc.dial()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	responses, err := kv.KeepAlive(ctx, id)
	if err != nil {
		return withCode(exitBadConnection, err)
	}
	for resp := range responses {
		if err := p.KeepAlive(resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if _, ok := p.(*simplePrinter); ok {
		fmt.Fprintf(cc.m.Stdout, "lease %016x expired or revoked.\n", id)
	}
	return nil
}

// errInterrupted ends a long-running command stopped by a signal: nothing
// is printed, and the exit code is the shell's for SIGINT, which etcdctl
// (killed by the signal) gives.
var errInterrupted = &exitErr{code: exitInterrupted, err: errors.New("interrupted"), silent: true}

// parseLeaseID parses a hexadecimal lease ID, or returns etcdctl's error.
func parseLeaseID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 16, 64)
	if err != nil {
		return 0, errorf(exitBadArgs, "bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

// callLease finds the printer, dials, and runs call under the command
// timeout; call prints.
func (cc *cmdContext) callLease(ctx context.Context, call func(ctx context.Context, kv kvClient, p printer) error) error {
	p, err := cc.printer()
	if err != nil {
		return err
	}
	kv, err := cc.dial()
	if err != nil {
		return err
	}
	ctx, cancel := cc.timeout(ctx)
	defer cancel()
	return call(ctx, kv, p)
}
