package main

import (
	"context"
	"strings"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
)

// getCommand is `get [options] <key> [range_end]`.
type getCommand struct {
	consistency    string
	order          string
	sortBy         string
	limit          int64
	prefix         bool
	fromKey        bool
	rev            int64
	keysOnly       bool
	countOnly      bool
	printValueOnly bool
	minCreateRev   int64
	maxCreateRev   int64
	minModRev      int64
	maxModRev      int64
}

func (c *getCommand) flags(fs *flagSet) {
	c.consistency = "l"
	fs.String(&c.consistency, "consistency", "", "Linearizable(l) or Serializable(s)")
	fs.String(&c.order, "order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)")
	fs.String(&c.sortBy, "sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
	fs.Int64(&c.limit, "limit", "Maximum number of results")
	fs.Bool(&c.prefix, "prefix", "", "Get keys with matching prefix")
	fs.Bool(&c.fromKey, "from-key", "", "Get keys that are greater than or equal to the given key using byte compare")
	fs.Int64(&c.rev, "rev", "Specify the kv revision")
	fs.Bool(&c.keysOnly, "keys-only", "", "Get only the keys")
	fs.Bool(&c.countOnly, "count-only", "", "Get only the count")
	fs.Bool(&c.printValueOnly, "print-value-only", "", `Only write values when using the "simple" output format`)
	fs.Int64(&c.minCreateRev, "min-create-rev", "Minimum create revision")
	fs.Int64(&c.maxCreateRev, "max-create-rev", "Maximum create revision")
	fs.Int64(&c.minModRev, "min-mod-rev", "Minimum modification revision")
	fs.Int64(&c.maxModRev, "max-mod-rev", "Maximum modification revision")
}

func (c *getCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	req, err := c.request(args)
	if err != nil {
		return err
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	// etcdctl checks these after the request; the output is the same.
	if c.countOnly && cc.g.writeOut != "fields" {
		return errorf(exitBadArgs, "--count-only is only for `--write-out=fields`")
	}
	if c.printValueOnly {
		sp, ok := p.(*simplePrinter)
		if !ok {
			return errorf(exitBadArgs, "print-value-only is only for `--write-out=simple`")
		}
		sp.valueOnly = true
	}
	return cc.callKV(ctx, func(ctx context.Context, kv kvClient) error {
		resp, err := kv.Range(ctx, req)
		if err != nil {
			return err
		}
		return p.Get(resp)
	})
}

// request builds the RangeRequest as etcdctl's getGetOp and clientv3's
// OpGet do, with etcdctl's errors.
func (c *getCommand) request(args []string) (*messages.RangeRequest, error) {
	if len(args) == 0 {
		return nil, errorf(exitBadArgs, "get command needs one argument as key and an optional argument as range_end")
	}
	if c.prefix && c.fromKey {
		return nil, errorf(exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	if c.keysOnly && c.countOnly {
		return nil, errorf(exitBadArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}
	req := &messages.RangeRequest{Key: []byte(args[0])}
	switch c.consistency {
	case "s":
		req.Serializable = true
	case "l":
	default:
		return nil, errorf(exitBadFeature, "unknown consistency flag %q", c.consistency)
	}
	if len(args) > 1 {
		if c.prefix || c.fromKey {
			return nil, errorf(exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		req.RangeEnd = []byte(args[1])
	}
	req.Limit = c.limit
	if c.rev > 0 {
		req.Revision = c.rev
	}

	order := messages.RangeRequest_NONE
	switch strings.ToUpper(c.order) {
	case "ASCEND":
		order = messages.RangeRequest_ASCEND
	case "DESCEND":
		order = messages.RangeRequest_DESCEND
	case "":
	default:
		return nil, errorf(exitBadFeature, "bad sort order %v", c.order)
	}
	target := messages.RangeRequest_KEY
	switch strings.ToUpper(c.sortBy) {
	case "CREATE":
		target = messages.RangeRequest_CREATE
	case "KEY":
		target = messages.RangeRequest_KEY
	case "MODIFY":
		target = messages.RangeRequest_MOD
	case "VALUE":
		target = messages.RangeRequest_VALUE
	case "VERSION":
		target = messages.RangeRequest_VERSION
	case "":
	default:
		return nil, errorf(exitBadFeature, "bad sort target %v", c.sortBy)
	}
	// Keys come back in ascending key order anyway; clientv3 drops the
	// order so that the server need not sort.
	if target == messages.RangeRequest_KEY && order == messages.RangeRequest_ASCEND {
		order = messages.RangeRequest_NONE
	}
	req.SortOrder, req.SortTarget = order, target

	if c.prefix {
		req.Key, req.RangeEnd = prefixRange(req.Key)
	}
	if c.fromKey {
		req.Key, req.RangeEnd = fromKeyRange(req.Key)
	}
	req.KeysOnly = c.keysOnly
	req.CountOnly = c.countOnly
	req.MinCreateRevision = max(c.minCreateRev, 0)
	if c.maxCreateRev > 0 {
		if c.minCreateRev > c.maxCreateRev {
			return nil, errorf(exitBadFeature, "getMinCreateRev(=%v) > getMaxCreateRev(=%v)", c.minCreateRev, c.maxCreateRev)
		}
		req.MaxCreateRevision = c.maxCreateRev
	}
	req.MinModRevision = max(c.minModRev, 0)
	if c.maxModRev > 0 {
		if c.minModRev > c.maxModRev {
			return nil, errorf(exitBadFeature, "getMinModRev(=%v) > getMaxModRev(=%v)", c.minModRev, c.maxModRev)
		}
		req.MaxModRevision = c.maxModRev
	}
	return req, nil
}

// prefixRange is clientv3's WithPrefix: the empty prefix is every key.
func prefixRange(key []byte) ([]byte, []byte) {
	if len(key) == 0 {
		return []byte{0}, []byte{0}
	}
	return key, client.PrefixEnd(key)
}

// fromKeyRange is clientv3's WithFromKey: every key ≥ key.
func fromKeyRange(key []byte) ([]byte, []byte) {
	if len(key) == 0 {
		key = []byte{0}
	}
	return key, []byte{0}
}
