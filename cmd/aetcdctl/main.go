// Command aetcdctl is a command line client for aetcd in the manner of
// etcdctl v3: the same commands, flags, output formats and exit codes, but
// it talks to a member's gateway actor over protoactor remoting (package
// client), so --endpoints are members' remoting addresses.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Dial:   dialClient,
	}
	err := m.Run(ctx, os.Args[1:])
	stop()
	if err == nil || err == errHelp {
		return
	}
	var e *exitErr
	if !errors.As(err, &e) || !e.silent {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(exitCode(err))
}

// kvClient is what the commands need of a client; *client.Client has it,
// and tests substitute a fake.
type kvClient interface {
	Range(context.Context, *messages.RangeRequest) (*messages.RangeResponse, error)
	Put(context.Context, *messages.PutRequest) (*messages.PutResponse, error)
	DeleteRange(context.Context, *messages.DeleteRangeRequest) (*messages.DeleteRangeResponse, error)
	Txn(context.Context, *messages.TxnRequest) (*messages.TxnResponse, error)
	Compact(context.Context, *messages.CompactionRequest) (*messages.CompactionResponse, error)
	StatusAt(ctx context.Context, endpoint string) (*messages.StatusResponse, error)
	// Do sends any request; the member commands use it (member.go).
	Do(context.Context, *messages.ClientRequest) (*messages.ClientResponse, error)
	// The lease commands (lease.go).
	Grant(ctx context.Context, ttl, id int64) (*messages.LeaseGrantResponse, error)
	Revoke(ctx context.Context, id int64) (*messages.LeaseRevokeResponse, error)
	KeepAliveOnce(ctx context.Context, id int64) (*messages.LeaseKeepAliveResponse, error)
	KeepAlive(ctx context.Context, id int64) (<-chan *messages.LeaseKeepAliveResponse, error)
	TimeToLive(ctx context.Context, id int64, keys bool) (*messages.LeaseTimeToLiveResponse, error)
	Leases(ctx context.Context) (*messages.LeaseLeasesResponse, error)
	// Watch opens a watch (watch.go).
	Watch(ctx context.Context, req *messages.WatchCreateRequest) (<-chan client.WatchResponse, error)
	Close() error
}

func dialClient(cfg client.Config) (kvClient, error) { return client.New(cfg) }

// Main is the program: its streams, environment and way to reach members.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Dial   func(client.Config) (kvClient, error)
}

// globalOptions are the flags every command accepts.
type globalOptions struct {
	endpoints      []string
	commandTimeout time.Duration
	writeOut       string
	hex            bool
}

// envPrefix prefixes the environment variables that set global flags'
// defaults, as ETCDCTL_ does for etcdctl (AETCDCTL_ENDPOINTS, ...).
const envPrefix = "AETCDCTL_"

func (g *globalOptions) register(fs *flagSet) {
	fs.StringSlice(&g.endpoints, "endpoints", "member remoting addresses (host:port), comma-separated")
	fs.Duration(&g.commandTimeout, "command-timeout", "timeout for a member to answer a command's request (then the next endpoint is tried)")
	fs.String(&g.writeOut, "write-out", "w", "set the output format (fields, json, protobuf, simple, table)")
	fs.Bool(&g.hex, "hex", "", "print byte strings as hex encoded strings")
}

// defaults sets the defaults, then the environment's values.
func (g *globalOptions) defaults(getenv func(string) string) error {
	g.endpoints = []string{"127.0.0.1:2380"}
	g.commandTimeout = 5 * time.Second
	g.writeOut = "simple"
	fs := newFlagSet()
	g.register(fs)
	for _, d := range fs.defs {
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(d.name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := d.value.Set(v); err != nil {
				return fmt.Errorf("invalid value %q of %s: %v", v, env, err)
			}
		}
	}
	return nil
}

// command is one subcommand.
type command interface {
	// flags registers the command's own flags.
	flags(fs *flagSet)
	// run runs the command with its positional arguments.
	run(ctx context.Context, cc *cmdContext, args []string) error
}

// commands maps names to constructors. A subcommand's name is its group's
// name, a space and its own ("member add"); a group has no constructor.
var commands = map[string]func() command{
	"get":              func() command { return &getCommand{} },
	"put":              func() command { return &putCommand{} },
	"del":              func() command { return &delCommand{} },
	"txn":              func() command { return &txnCommand{} },
	"compaction":       func() command { return &compactionCommand{} },
	"endpoint status":  func() command { return &endpointStatusCommand{} },
	"member add":       func() command { return &memberAddCommand{} },
	"member remove":    func() command { return &memberRemoveCommand{} },
	"member update":    func() command { return &memberUpdateCommand{} },
	"member list":      func() command { return &memberListCommand{} },
	"member promote":   func() command { return &memberPromoteCommand{} },
	"lease grant":      func() command { return &leaseGrantCommand{} },
	"lease revoke":     func() command { return &leaseRevokeCommand{} },
	"lease timetolive": func() command { return &leaseTimeToLiveCommand{} },
	"lease list":       func() command { return &leaseListCommand{} },
	"lease keep-alive": func() command { return &leaseKeepAliveCommand{} },
	"watch":            func() command { return &watchCommand{} },
}

// commandUsage lists commands and groups in the order usage prints them.
var commandUsage = []struct{ name, use, short string }{
	{"get", "get [options] <key> [range_end]", "Gets the key or a range of keys"},
	{"put", "put [options] <key> <value> (<value> can also be given from stdin)", "Puts the given key into the store"},
	{"del", "del [options] <key> [range_end]", "Removes the specified key or range of keys [key, range_end)"},
	{"txn", "txn [options]", "Txn processes all the requests in one transaction"},
	{"compaction", "compaction [options] <revision>", "Compacts the event history in aetcd"},
	{"watch", "watch [options] <key or prefix> [range_end]", "Watches events stream on keys or prefixes"},
	{"lease", "lease <subcommand>", "Lease related commands"},
	{"lease grant", "lease grant <ttl>", "Creates leases"},
	{"lease revoke", "lease revoke <leaseID>", "Revokes leases"},
	{"lease timetolive", "lease timetolive <leaseID> [options]", "Get lease information"},
	{"lease list", "lease list", "List all active leases"},
	{"lease keep-alive", "lease keep-alive [options] <leaseID>", "Keeps leases alive (renew)"},
	{"endpoint", "endpoint <subcommand>", "Endpoint related commands"},
	{"endpoint status", "endpoint status", "Prints out the status of the endpoints in --endpoints"},
	{"member", "member <subcommand>", "Membership related commands"},
	{"member add", "member add <memberName> [options]", "Adds a member into the cluster"},
	{"member remove", "member remove <memberID>", "Removes a member from the cluster"},
	{"member update", "member update <memberID> [options]", "Updates a member in the cluster"},
	{"member list", "member list", "Lists all members in the cluster"},
	{"member promote", "member promote <memberID>", "Promotes a non-voting member in the cluster"},
}

// isGroup reports whether name is a group of subcommands.
func isGroup(name string) bool {
	for n := range commands {
		if strings.HasPrefix(n, name+" ") {
			return true
		}
	}
	return false
}

// Run parses args (without the program name) and runs the command.
func (m *Main) Run(ctx context.Context, args []string) error {
	g := &globalOptions{}
	if err := g.defaults(m.Getenv); err != nil {
		return err
	}
	// Global flags may come before the command name; find it.
	pre := newFlagSet()
	g.register(pre)
	name, rest, err := splitCommand(pre, args)
	if err != nil {
		return err
	}
	if name == "" {
		m.usage(pre)
		if pre.help || len(args) == 0 {
			return errHelp
		}
		return nil
	}
	if isGroup(name) {
		sub, subArgs, err := splitCommand(pre, rest)
		if err != nil {
			return err
		}
		if _, ok := commands[name+" "+sub]; !ok {
			// etcdctl prints the group's usage for a missing or unknown
			// subcommand and exits 0.
			m.groupUsage(name, pre)
			return nil
		}
		name, rest = name+" "+sub, subArgs
	}
	newCmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("unknown command %q for \"aetcdctl\"\nRun 'aetcdctl --help' for usage.", name)
	}
	cmd := newCmd()
	fs := newFlagSet()
	cmd.flags(fs)
	g.register(fs)
	positional, err := fs.parse(rest)
	if err != nil {
		return err
	}
	if fs.help || pre.help {
		m.commandUsage(name, fs)
		return errHelp
	}
	cc := &cmdContext{m: m, g: g}
	defer cc.close()
	return cmd.run(ctx, cc, positional)
}

// splitCommand parses the global flags before the first positional
// argument, which it returns as the command name with the arguments after.
func splitCommand(fs *flagSet, args []string) (string, []string, error) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			if _, err := fs.parse(args[:i]); err != nil || i+1 == len(args) {
				return "", nil, err
			}
			return args[i+1], args[i+2:], nil
		case len(arg) > 1 && arg[0] == '-':
			if flagTakingValue(fs, arg) != nil {
				i++ // the flag's value is not a command name
			}
		default:
			if _, err := fs.parse(args[:i]); err != nil {
				return "", nil, err
			}
			return arg, args[i+1:], nil
		}
	}
	_, err := fs.parse(args)
	return "", nil, err
}

func flagTakingValue(fs *flagSet, arg string) *flagDef {
	var d *flagDef
	switch {
	case strings.HasPrefix(arg, "--") && !strings.Contains(arg, "="):
		d = fs.lookup(arg[2:])
	case len(arg) == 2 && arg[0] == '-':
		d = fs.lookupShort(arg[1:])
	}
	if d == nil || d.isBool {
		return nil
	}
	return d
}

func (m *Main) usage(fs *flagSet) {
	fmt.Fprint(m.Stdout, "NAME:\n  aetcdctl - A simple command line client for aetcd.\n\nUSAGE:\n  aetcdctl [global options] <command> [options] [arguments...]\n\nCOMMANDS:\n")
	for _, c := range commandUsage {
		if !strings.Contains(c.name, " ") {
			fmt.Fprintf(m.Stdout, "  %-12s %s\n", c.name, c.short)
		}
	}
	fmt.Fprintf(m.Stdout, "\nGLOBAL OPTIONS:\n%s\nEnvironment variables %sENDPOINTS, %sCOMMAND_TIMEOUT, %sWRITE_OUT and %sHEX set the defaults.\n",
		fs.usage(), envPrefix, envPrefix, envPrefix, envPrefix)
}

func (m *Main) commandUsage(name string, fs *flagSet) {
	for _, c := range commandUsage {
		if c.name == name {
			fmt.Fprintf(m.Stdout, "NAME:\n  %s - %s\n\nUSAGE:\n  aetcdctl %s\n\nOPTIONS (and global options):\n%s", c.name, c.short, c.use, fs.usage())
		}
	}
}

func (m *Main) groupUsage(group string, fs *flagSet) {
	m.commandUsage(group, fs)
	fmt.Fprint(m.Stdout, "\nCOMMANDS:\n")
	for _, c := range commandUsage {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			fmt.Fprintf(m.Stdout, "  %-12s %s\n", sub, c.short)
		}
	}
}

// cmdContext is what a running command uses: options, streams, and the
// client, created on first use.
type cmdContext struct {
	m      *Main
	g      *globalOptions
	client kvClient
}

// printer returns the printer for --write-out, or the error etcdctl gives
// for an unknown format.
func (cc *cmdContext) printer() (printer, error) {
	p := newPrinter(cc.g.writeOut, cc.g.hex, cc.m.Stdout)
	if p == nil {
		return nil, errorf(exitBadFeature, "unsupported output format")
	}
	return p, nil
}

// dial returns the client, creating it on first use.
func (cc *cmdContext) dial() (kvClient, error) {
	if cc.client != nil {
		return cc.client, nil
	}
	c, err := cc.m.Dial(client.Config{Endpoints: cc.g.endpoints, RequestTimeout: cc.g.commandTimeout})
	if err != nil {
		return nil, withCode(exitBadConnection, err)
	}
	cc.client = c
	return c, nil
}

// timeout returns the context for one command's request: each member in
// --endpoints may take --command-timeout to answer before the next is
// tried, so the request as a whole is bounded by that many timeouts.
// callKV refuses output formats that cannot print KV responses (before any
// request is sent), dials, and runs call under the command timeout.
func (cc *cmdContext) callKV(ctx context.Context, call func(ctx context.Context, kv kvClient) error) error {
	if !supports(cc.g.writeOut, outKV) {
		return errUnsupported(cc.g.writeOut)
	}
	kv, err := cc.dial()
	if err != nil {
		return err
	}
	ctx, cancel := cc.timeout(ctx)
	defer cancel()
	return call(ctx, kv)
}

func (cc *cmdContext) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cc.g.commandTimeout*time.Duration(max(len(cc.g.endpoints), 1)))
}

func (cc *cmdContext) close() {
	if cc.client != nil {
		cc.client.Close()
	}
}
