package main

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// txnCommand is `txn [options]`: it reads a transaction from standard input
// in etcdctl's format, three sections each ended by an empty line:
//
//	compares, one per line:   mod("key") > "5"
//	                          (targets c/create, m/mod, ver/version,
//	                          val/value, lease; operators = != > <)
//	success requests:         put k v | get k ... | del k ... (with flags)
//	failure requests:         the same
type txnCommand struct {
	interactive bool
}

func (c *txnCommand) flags(fs *flagSet) {
	fs.Bool(&c.interactive, "interactive", "i", "Input transaction in interactive mode")
}

func (c *txnCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) != 0 {
		return errorf(exitBadArgs, "txn command does not accept argument")
	}
	p, err := cc.printer()
	if err != nil {
		return err
	}
	var prompt func(string)
	if c.interactive {
		prompt = func(s string) { fmt.Fprintln(cc.m.Stdout, s) }
	}
	req, err := readTxn(bufio.NewReader(cc.m.Stdin), prompt, rangeDeleteWarning(ctx, cc))
	if err != nil {
		return err
	}
	return cc.callKV(ctx, func(ctx context.Context, kv kvClient) error {
		resp, err := kv.Txn(ctx, req)
		if err != nil {
			return err
		}
		return p.Txn(resp)
	})
}

// readTxn reads the three sections; prompt, if not nil, is called before
// each with etcdctl's interactive prompt; warn, if not nil, before a del of
// an explicit range (etcdctl's 2 s grace applies inside txn too).
func readTxn(r *bufio.Reader, prompt func(string), warn func(key, end string)) (*messages.TxnRequest, error) {
	if prompt == nil {
		prompt = func(string) {}
	}
	req := &messages.TxnRequest{}
	prompt("compares:")
	err := readSection(r, func(line string) error {
		cmp, err := parseCompare(line)
		if err == nil {
			req.Compare = append(req.Compare, cmp)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	prompt("success requests (get, put, del):")
	if req.Success, err = readOps(r, warn); err != nil {
		return nil, err
	}
	prompt("failure requests (get, put, del):")
	if req.Failure, err = readOps(r, warn); err != nil {
		return nil, err
	}
	return req, nil
}

// readSection calls parse for each line, trimmed, up to an empty line.
// Input that ends before the empty line is an error (etcdctl's "EOF").
func readSection(r *bufio.Reader, parse func(string) error) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return withCode(exitInvalidInput, err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return nil
		}
		if err := parse(line); err != nil {
			return err
		}
	}
}

func readOps(r *bufio.Reader, warn func(key, end string)) ([]*messages.RequestOp, error) {
	var ops []*messages.RequestOp
	err := readSection(r, func(line string) error {
		op, err := parseRequestOp(line, warn)
		if err == nil {
			ops = append(ops, op)
		}
		return err
	})
	return ops, err
}

// parseCompare parses one compare line as etcdctl's ParseCompare does,
// with its messages. Unlike etcdctl it reports an unknown operator (etcdctl
// panics) and reads a lease compare's value as a hexadecimal lease ID (as
// `put --lease` takes it; etcdctl 3.6 panics, fixed upstream the same way).
func parseCompare(line string) (*messages.Compare, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return nil, errorf(exitInvalidInput, "malformed comparison: %s", line)
	}
	var key, op, val string
	n, serr := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
	if n != 3 {
		return nil, errorf(exitInvalidInput, "malformed comparison: %s; got %s(%q) %s %q", line, target, key, op, val)
	}
	if serr != nil {
		return nil, errorf(exitInvalidInput, "malformed comparison: %s (%w)", line, serr)
	}

	cmp := &messages.Compare{Key: []byte(key)}
	switch op {
	case "=":
		cmp.Result = messages.Compare_EQUAL
	case "!=":
		cmp.Result = messages.Compare_NOT_EQUAL
	case ">":
		cmp.Result = messages.Compare_GREATER
	case "<":
		cmp.Result = messages.Compare_LESS
	default:
		return nil, errorf(exitInvalidInput, "malformed comparison: %s (unknown operator %s)", line, op)
	}

	var (
		v   int64
		err error
	)
	switch target {
	case "ver", "version":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp.Target, cmp.TargetUnion = messages.Compare_VERSION, &messages.Compare_Version{Version: v}
		}
	case "c", "create":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp.Target, cmp.TargetUnion = messages.Compare_CREATE, &messages.Compare_CreateRevision{CreateRevision: v}
		}
	case "m", "mod":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp.Target, cmp.TargetUnion = messages.Compare_MOD, &messages.Compare_ModRevision{ModRevision: v}
		}
	case "val", "value":
		cmp.Target, cmp.TargetUnion = messages.Compare_VALUE, &messages.Compare_Value{Value: []byte(val)}
	case "lease":
		if v, err = strconv.ParseInt(val, 16, 64); err == nil {
			cmp.Target, cmp.TargetUnion = messages.Compare_LEASE, &messages.Compare_Lease{Lease: v}
		}
	default:
		return nil, errorf(exitInvalidInput, "malformed comparison: %s (unknown target %s)", line, target)
	}
	if err != nil {
		return nil, errorf(exitInvalidInput, "invalid txn compare request: %s", line)
	}
	return cmp, nil
}

// parseRequestOp parses one request line: a get, put or del command line
// with that command's flags (not the global ones), as etcdctl does.
func parseRequestOp(line string, warn func(key, end string)) (*messages.RequestOp, error) {
	args, err := argify(line)
	if err != nil {
		return nil, err
	}
	if len(args) < 2 {
		return nil, errorf(exitInvalidInput, "invalid txn compare request: %s", line)
	}
	var cmd interface{ flags(*flagSet) }
	switch args[0] {
	case "get":
		cmd = &getCommand{}
	case "put":
		cmd = &putCommand{}
	case "del":
		cmd = &delCommand{warn: warn}
	default:
		return nil, errorf(exitInvalidInput, "invalid txn request: %s", line)
	}
	fs := newFlagSet()
	cmd.flags(fs)
	positional, err := fs.parse(args[1:])
	if err != nil || fs.help {
		return nil, errorf(exitInvalidInput, "invalid txn request: %s", line)
	}
	switch c := cmd.(type) {
	case *getCommand:
		req, err := c.request(positional)
		if err != nil {
			return nil, err
		}
		return &messages.RequestOp{Request: &messages.RequestOp_RequestRange{RequestRange: req}}, nil
	case *putCommand:
		req, err := c.request(positional, nil) // stdin holds the txn itself
		if err != nil {
			return nil, err
		}
		return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: req}}, nil
	default:
		req, err := cmd.(*delCommand).request(positional)
		if err != nil {
			return nil, err
		}
		return &messages.RequestOp{Request: &messages.RequestOp_RequestDeleteRange{RequestDeleteRange: req}}, nil
	}
}

// argsRegexp is etcdctl's: double-quoted strings with escapes, single-quoted
// strings, or runs of non-space characters.
var argsRegexp = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`)

// argify splits a request line into arguments: a double-quoted argument is
// unquoted with Go's rules, a single-quoted one taken literally.
func argify(s string) ([]string, error) {
	args := argsRegexp.FindAllString(s, -1)
	for i, a := range args {
		switch a[0] {
		case '\'':
			args[i] = a[1 : len(a)-1]
		case '"':
			u, err := strconv.Unquote(a)
			if err != nil {
				return nil, withCode(exitInvalidInput, fmt.Errorf("bad quoted argument %s: %w", a, err))
			}
			args[i] = u
		}
	}
	return args, nil
}
