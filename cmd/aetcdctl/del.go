package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aetcd/aetcd/messages"
)

// delCommand is `del [options] <key> [range_end]`.
type delCommand struct {
	prefix  bool
	prevKV  bool
	fromKey bool
	isRange bool

	// warn, when set, is told about an explicit range before it is
	// deleted, and returns after etcdctl's 2 s grace.
	warn func(key, end string)
}

func (c *delCommand) flags(fs *flagSet) {
	fs.Bool(&c.prefix, "prefix", "", "delete keys with matching prefix")
	fs.Bool(&c.prevKV, "prev-kv", "", "return deleted key-value pairs")
	fs.Bool(&c.fromKey, "from-key", "", "delete keys that are greater than or equal to the given key using byte compare")
	fs.Bool(&c.isRange, "range", "", "delete range of keys")
}

func (c *delCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	c.warn = rangeDeleteWarning(ctx, cc)
	req, err := c.request(args)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	return cc.callKV(ctx, func(ctx context.Context, kv kvClient) error {
		resp, err := kv.DeleteRange(ctx, req)
		if err != nil {
			return err
		}
		return p.Del(resp)
	})
}

// request builds the DeleteRangeRequest as etcdctl's getDelOp does.
func (c *delCommand) request(args []string) (*messages.DeleteRangeRequest, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, errorf(exitBadArgs, "del command needs one argument as key and an optional argument as range_end")
	}
	if c.prefix && c.fromKey {
		return nil, errorf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	req := &messages.DeleteRangeRequest{Key: []byte(args[0])}
	if len(args) > 1 {
		if c.prefix || c.fromKey {
			return nil, errorf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		req.RangeEnd = []byte(args[1])
		if !c.isRange && c.warn != nil {
			c.warn(args[0], args[1])
		}
	}
	if c.prefix {
		req.Key, req.RangeEnd = prefixRange(req.Key)
	}
	req.PrevKv = c.prevKV
	if c.fromKey {
		req.Key, req.RangeEnd = fromKeyRange(req.Key)
	}
	return req, nil
}

// rangeDeleteWarning is etcdctl's warning before deleting an explicit range
// without --range: it prints, then waits 2 s (or until ctx ends).
func rangeDeleteWarning(ctx context.Context, cc *cmdContext) func(key, end string) {
	return func(key, end string) {
		fmt.Fprintf(cc.m.Stderr, "Warning: Keys between %q and %q will be deleted. Please interrupt the command within next 2 seconds to cancel. "+
			"You can provide `--range` flag to avoid the delay.\n", key, end)
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
}
