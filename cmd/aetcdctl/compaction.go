package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aetcd/aetcd/messages"
)

// compactionCommand is `compaction [options] <revision>`.
type compactionCommand struct {
	physical bool
}

func (c *compactionCommand) flags(fs *flagSet) {
	fs.Bool(&c.physical, "physical", "", "'true' to wait for compaction to physically remove all old revisions (aetcd always does)")
}

func (c *compactionCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 1 {
		return errorf(exitBadArgs, "compaction command needs 1 argument")
	}
	rev, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return withCode(exitError, err)
	}
	if _, err := cc.printer(); err != nil {
		return err
	}
	kv, err := cc.dial()
	if err != nil {
		return err
	}
	ctx, cancel := cc.timeout(ctx)
	defer cancel()
	if _, err := kv.Compact(ctx, &messages.CompactionRequest{Revision: rev, Physical: c.physical}); err != nil {
		return err
	}
	// etcdctl prints this whatever the output format.
	fmt.Fprintln(cc.m.Stdout, "compacted revision", rev)
	return nil
}
