package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// The member commands: etcdctl 3.6.6's `member add|remove|update|list|
// promote`, with its flags, checks (in its order), output and exit codes.
// A membership change is sent to any member; one that is not the leader
// forwards it. As in etcdctl, a change is made before its output format is
// found unable to print it (fields and table print only `member list`).

// memberAddCommand is `member add <memberName> --peer-urls=... [--learner]`.
type memberAddCommand struct {
	peerURLs string
	learner  bool
}

func (c *memberAddCommand) flags(fs *flagSet) {
	fs.String(&c.peerURLs, "peer-urls", "", "comma separated peer URLs for the new member.")
	fs.Bool(&c.learner, "learner", "", "indicates if the new member is raft learner")
}

func (c *memberAddCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	if len(args) < 1 {
		return errorf(exitBadArgs, "member name not provided")
	}
	if len(args) > 1 {
		msg := "too many arguments"
		for _, a := range args {
			if strings.HasPrefix(strings.ToLower(a), "http") {
				msg += ", did you mean --peer-urls=" + a
			}
		}
		return withCode(exitBadArgs, errors.New(msg))
	}
	name := args[0]
	if c.peerURLs == "" {
		return errorf(exitBadArgs, "member peer urls not provided")
	}
	// Sent as given: clientv3 trims the URLs only to check them.
	urls := strings.Split(c.peerURLs, ",")
	var resp *messages.MemberAddResponse
	p, err := cc.callMember(ctx, func(ctx context.Context, kv kvClient) (err error) {
		if err := checkPeerURLs(urls); err != nil {
			return err
		}
		req := &messages.MemberAddRequest{PeerURLs: urls, IsLearner: c.learner}
		resp, err = doMember(ctx, kv, &messages.ClientRequest{Request: &messages.ClientRequest_MemberAdd{MemberAdd: req}},
			"member_add", (*messages.ClientResponse).GetMemberAdd)
		return err
	})
	if err != nil {
		return err
	}
	if err := p.MemberAdd(resp); err != nil {
		return err
	}
	if _, ok := p.(*simplePrinter); ok {
		c.printEnv(cc, name, resp)
	}
	return nil
}

// printEnv prints the environment that starts the new member, as etcdctl
// does after the simple format's line: every member's name=peerURL pairs
// (the new member under its given name) and the --peer-urls text as given.
func (c *memberAddCommand) printEnv(cc *cmdContext, name string, resp *messages.MemberAddResponse) {
	newID := resp.GetMember().GetID()
	var initialCluster []string
	for _, m := range resp.GetMembers() {
		n := m.GetName()
		if m.GetID() == newID {
			n = name
		}
		for _, u := range m.GetPeerURLs() {
			initialCluster = append(initialCluster, n+"="+u)
		}
	}
	w := cc.m.Stdout
	fmt.Fprint(w, "\n")
	fmt.Fprintf(w, "ETCD_NAME=%q\n", name)
	fmt.Fprintf(w, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(initialCluster, ","))
	fmt.Fprintf(w, "ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", c.peerURLs)
	fmt.Fprint(w, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
}

// memberRemoveCommand is `member remove <memberID>`.
type memberRemoveCommand struct{}

func (c *memberRemoveCommand) flags(*flagSet) {}

func (c *memberRemoveCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	var resp *messages.MemberRemoveResponse
	p, err := cc.callMember(ctx, func(ctx context.Context, kv kvClient) (err error) {
		req := &messages.MemberRemoveRequest{ID: id}
		resp, err = doMember(ctx, kv, &messages.ClientRequest{Request: &messages.ClientRequest_MemberRemove{MemberRemove: req}},
			"member_remove", (*messages.ClientResponse).GetMemberRemove)
		return err
	})
	if err != nil {
		return err
	}
	return p.MemberRemove(id, resp)
}

// memberUpdateCommand is `member update <memberID> --peer-urls=...`.
type memberUpdateCommand struct {
	peerURLs string
}

func (c *memberUpdateCommand) flags(fs *flagSet) {
	fs.String(&c.peerURLs, "peer-urls", "", "comma separated peer URLs for the updated member.")
}

func (c *memberUpdateCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	if c.peerURLs == "" {
		return errorf(exitBadArgs, "member peer urls not provided")
	}
	urls := strings.Split(c.peerURLs, ",")
	var resp *messages.MemberUpdateResponse
	p, err := cc.callMember(ctx, func(ctx context.Context, kv kvClient) (err error) {
		if err := checkPeerURLs(urls); err != nil {
			return err
		}
		req := &messages.MemberUpdateRequest{ID: id, PeerURLs: urls}
		resp, err = doMember(ctx, kv, &messages.ClientRequest{Request: &messages.ClientRequest_MemberUpdate{MemberUpdate: req}},
			"member_update", (*messages.ClientResponse).GetMemberUpdate)
		return err
	})
	if err != nil {
		return err
	}
	return p.MemberUpdate(id, resp)
}

// memberListCommand is `member list [--consistency=l|s]`; arguments are
// ignored, as etcdctl does.
type memberListCommand struct {
	consistency string
}

func (c *memberListCommand) flags(fs *flagSet) {
	c.consistency = "l"
	fs.String(&c.consistency, "consistency", "", "Linearizable(l) or Serializable(s)")
}

func (c *memberListCommand) run(ctx context.Context, cc *cmdContext, _ []string) error {
	var linearizable bool
	switch c.consistency {
	case "l":
		linearizable = true
	case "s":
	default:
		// etcdctl's message names the value of get's --consistency, which
		// is its default "l" when member list runs.
		return errorf(exitBadFeature, "unknown consistency flag %q", "l")
	}
	var resp *messages.MemberListResponse
	p, err := cc.callMember(ctx, func(ctx context.Context, kv kvClient) (err error) {
		req := &messages.MemberListRequest{Linearizable: linearizable}
		resp, err = doMember(ctx, kv, &messages.ClientRequest{Request: &messages.ClientRequest_MemberList{MemberList: req}},
			"member_list", (*messages.ClientResponse).GetMemberList)
		return err
	})
	if err != nil {
		return err
	}
	return p.MemberList(resp)
}

// memberPromoteCommand is `member promote <memberID>`.
type memberPromoteCommand struct{}

func (c *memberPromoteCommand) flags(*flagSet) {}

func (c *memberPromoteCommand) run(ctx context.Context, cc *cmdContext, args []string) error {
	id, err := parseMemberID(args)
	if err != nil {
		return err
	}
	var resp *messages.MemberPromoteResponse
	p, err := cc.callMember(ctx, func(ctx context.Context, kv kvClient) (err error) {
		req := &messages.MemberPromoteRequest{ID: id}
		resp, err = doMember(ctx, kv, &messages.ClientRequest{Request: &messages.ClientRequest_MemberPromote{MemberPromote: req}},
			"member_promote", (*messages.ClientResponse).GetMemberPromote)
		return err
	})
	if err != nil {
		return err
	}
	return p.MemberPromote(id, resp)
}

// parseMemberID returns the one argument as a hexadecimal member ID, or
// etcdctl's error.
func parseMemberID(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, errorf(exitBadArgs, "member ID is not provided")
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, errorf(exitBadArgs, "bad member ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

// checkPeerURLs fails, with clientv3's messages, on URLs that clientv3
// refuses to send in a member add or update (go.etcd.io/etcd/client/pkg
// types.NewURLs): unparsable, another scheme than http, https, unix or
// unixs, or an http(s) URL without a port or with a path.
func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("no valid URLs given")
	}
	for _, s := range urls {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		switch u.Scheme {
		case "http", "https":
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				return fmt.Errorf("URL address does not have the form \"host:port\": %s", s)
			}
			if u.Path != "" {
				return fmt.Errorf("URL must not contain a path: %s", s)
			}
		case "unix", "unixs":
		default:
			return fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
		}
	}
	return nil
}

// callMember returns the printer for --write-out after dialing and running
// call under the command timeout. Unlike callKV it does not check that the
// format can print the command's response: etcdctl finds that out only
// after the request.
func (cc *cmdContext) callMember(ctx context.Context, call func(ctx context.Context, kv kvClient) error) (printer, error) {
	p, err := cc.printer()
	if err != nil {
		return nil, err
	}
	kv, err := cc.dial()
	if err != nil {
		return nil, err
	}
	ctx, cancel := cc.timeout(ctx)
	defer cancel()
	if err := call(ctx, kv); err != nil {
		return nil, err
	}
	return p, nil
}

// doMember sends req and returns the response get picks out of the
// answer; an answer of another kind is an error naming want.
func doMember[T comparable](ctx context.Context, kv kvClient, req *messages.ClientRequest, want string, get func(*messages.ClientResponse) T) (T, error) {
	var zero T
	resp, err := kv.Do(ctx, req)
	if err != nil {
		return zero, err
	}
	if r := get(resp); r != zero {
		return r, nil
	}
	return zero, fmt.Errorf("member answered %T to a %s request", resp.GetResponse(), want)
}
