package main

import (
	"context"
	"io"
	"strconv"

	"github.com/aetcd/aetcd/messages"
)

// putCommand is `put [options] <key> <value>`; without a value argument
// the value is read from standard input.
type putCommand struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func (c *putCommand) flags(fs *flagSet) {
	c.lease = "0"
	fs.String(&c.lease, "lease", "", "lease ID (in hexadecimal) to attach to the key")
	fs.Bool(&c.prevKV, "prev-kv", "", "return the previous key-value pair before modification")
	fs.Bool(&c.ignoreValue, "ignore-value", "", "updates the key using its current value")
	fs.Bool(&c.ignoreLease, "ignore-lease", "", "updates the key using its current lease")
}

func (c *putCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	req, err := c.request(args, cc.m.Stdin)
	if err != nil {
		return err
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	return cc.callKV(ctx, func(ctx context.Context, kv kvClient) error {
		resp, err := kv.Put(ctx, req)
		if err != nil {
			return err
		}
		return p.Put(resp)
	})
}

// request builds the PutRequest as etcdctl's getPutOp does; the value is
// read from stdin (nil: not available) when not given.
func (c *putCommand) request(args []string, stdin io.Reader) (*messages.PutRequest, error) {
	const needArgs = "put command needs 1 argument and input from stdin or 2 arguments"
	if len(args) == 0 {
		return nil, errorf(exitBadArgs, needArgs)
	}
	if c.ignoreValue && len(args) > 1 {
		return nil, errorf(exitBadArgs, "put command needs only 1 argument when 'ignore-value' is set")
	}
	req := &messages.PutRequest{Key: []byte(args[0])}
	if !c.ignoreValue {
		switch {
		case len(args) > 1:
			req.Value = []byte(args[1])
		case stdin != nil:
			b, err := io.ReadAll(stdin)
			if err != nil || len(b) == 0 {
				return nil, errorf(exitBadArgs, needArgs)
			}
			req.Value = b
		default:
			return nil, errorf(exitBadArgs, needArgs)
		}
	}
	id, err := strconv.ParseInt(c.lease, 16, 64)
	if err != nil {
		return nil, errorf(exitBadArgs, "bad lease ID (%w), expecting ID in Hex", err)
	}
	req.Lease = id
	req.PrevKv = c.prevKV
	req.IgnoreValue = c.ignoreValue
	req.IgnoreLease = c.ignoreLease
	return req, nil
}
