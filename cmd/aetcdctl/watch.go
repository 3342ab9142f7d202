package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aetcd/aetcd/messages"
)

// watchCommand is etcdctl 3.6.6's `watch [options] <key or prefix>
// [range_end]` (without its interactive mode, exec command and
// ETCDCTL_WATCH_* variables). It prints every response of the watcher as
// etcdctl does until the member cancels the watch (then it says why on
// stderr and exits 5, "watch is canceled by the server"), the watch is lost
// (exit 5 with the reason) or it is interrupted.
type watchCommand struct {
	prefix         bool
	rev            int64
	prevKV         bool
	progressNotify bool
}

func (c *watchCommand) flags(fs *flagSet) {
	fs.Bool(&c.prefix, "prefix", "", "Watch on a prefix if prefix is set")
	fs.Int64(&c.rev, "rev", "Revision to start watching")
	fs.Bool(&c.prevKV, "prev-kv", "", "get the previous key-value pair before the event happens")
	fs.Bool(&c.progressNotify, "progress-notify", "", "get periodic watch progress notification from server")
}

// Error messages as etcdctl's.
var (
	errWatchArgs     = errors.New("bad number of arguments")
	errWatchCanceled = errors.New("watch is canceled by the server")
)

// request builds the create request as etcdctl's getWatchChan does: a
// third argument and beyond are ignored.
func (c *watchCommand) request(args []string) (*messages.WatchCreateRequest, error) {
	if len(args) < 1 {
		return nil, withCode(exitBadArgs, errWatchArgs)
	}
	req := &messages.WatchCreateRequest{Key: []byte(args[0]), StartRevision: c.rev, PrevKv: c.prevKV, ProgressNotify: c.progressNotify}
	if len(args) == 2 {
		if c.prefix {
			return nil, errorf(exitBadArgs, "`range_end` and `--prefix` are mutually exclusive")
		}
		req.RangeEnd = []byte(args[1])
	}
	if c.prefix {
		req.Key, req.RangeEnd = prefixRange(req.Key)
	}
	return req, nil
}

func (c *watchCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	req, err := c.request(args)
	if err != nil {
		return err
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
	responses, err := kv.Watch(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	for r := range responses {
		if r.Err != nil {
			if ctx.Err() != nil {
				break
			}
			return withCode(exitWatchCanceled, r.Err)
		}
		resp := r.Response
		if resp.GetCanceled() {
			fmt.Fprintf(cc.m.Stderr, "watch was canceled (%s)\n", cancelReason(resp))
		}
		if resp.GetCreated() {
			// clientv3 delivers no created response, and no failed create.
			continue
		}
		if isProgressNotify(resp) {
			fmt.Fprintf(cc.m.Stdout, "progress notify: %d\n", resp.GetHeader().GetRevision())
		}
		if err := p.Watch(resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	return withCode(exitWatchCanceled, errWatchCanceled)
}

// cancelReason is clientv3's WatchResponse.Err for a canceled response.
func cancelReason(r *messages.WatchResponse) string {
	switch {
	case r.GetCompactRevision() != 0:
		return "etcdserver: mvcc: required revision has been compacted"
	case r.GetCancelReason() != "":
		return r.GetCancelReason()
	}
	return "etcdserver: mvcc: required revision is a future revision"
}

// isProgressNotify is clientv3's WatchResponse.IsProgressNotify.
func isProgressNotify(r *messages.WatchResponse) bool {
	return len(r.GetEvents()) == 0 && !r.GetCanceled() && !r.GetCreated() && r.GetCompactRevision() == 0 && r.GetHeader().GetRevision() != 0
}
