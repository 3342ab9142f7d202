package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aetcd/aetcd/cluster/remoting"
	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
)

// GatewayName is the name a member registers its gateway actor under.
const GatewayName = "gateway"

// DefaultRequestTimeout is how long a member is waited for when
// Config.RequestTimeout is zero.
const DefaultRequestTimeout = 5 * time.Second

// Config configures a Client.
type Config struct {
	// Endpoints are members' remoting addresses (host:port), tried in order.
	Endpoints []string
	// RequestTimeout bounds the wait for one member's answer; the caller's
	// context deadline bounds it further. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ListenAddr is the local host:port members dial to deliver answers.
	// Empty means port 0 on 127.0.0.1 when the first endpoint is a loopback
	// address, else on the local address that routes to it.
	ListenAddr string
	// Logger receives protoactor's logs; nil discards them.
	Logger *slog.Logger
	// WatchHeartbeat is how often a watch stream sends its member a
	// heartbeat and checks that it answers. Zero means
	// DefaultWatchHeartbeat.
	WatchHeartbeat time.Duration
}

// Client sends requests to members' gateway actors. Create it with New and
// release it with Close.
type Client struct {
	endpoints []string
	timeout   time.Duration
	heartbeat time.Duration
	system    *actor.ActorSystem
	remote    *remote.Remote

	preferred atomic.Int32 // index of the endpoint that answered last

	mu        sync.Mutex
	connected map[string]bool // endpoints protoactor holds a connection to
	watches   map[*watchStream]struct{}
	sub       *eventstream.Subscription
	sendMu    sync.RWMutex
	closing   bool // under sendMu: no more sends
	done      chan struct{}
	closeOnce sync.Once
}

// New starts a client's actor system and remoting listener. It returns
// ErrNoEndpoints without endpoints, and an error when an endpoint is not
// host:port or the listener cannot be started.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, ErrNoEndpoints
	}
	c := &Client{
		timeout:   cfg.RequestTimeout,
		done:      make(chan struct{}),
		connected: make(map[string]bool),
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	c.heartbeat = cfg.WatchHeartbeat
	if c.heartbeat <= 0 {
		c.heartbeat = DefaultWatchHeartbeat
	}
	for _, ep := range cfg.Endpoints {
		ep = strings.TrimSpace(ep)
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return nil, fmt.Errorf("client: endpoint %q: %w", ep, err)
		}
		c.endpoints = append(c.endpoints, ep)
	}
	listen := cfg.ListenAddr
	if listen == "" {
		listen = defaultListenAddr(c.endpoints[0])
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	r, err := remoting.Start(c.system, remoting.Config{Address: listen, Allow: allowReply})
	if err != nil {
		c.system.Shutdown()
		return nil, fmt.Errorf("client: %w", err)
	}
	c.remote = r
	c.sub = c.system.EventStream.Subscribe(c.trackEndpoints)
	return c, nil
}

// allowReply admits aetcd's messages and protoactor's dead-letter answer,
// which a member sends when the request's target does not exist there.
func allowReply(name string) bool {
	return remoting.AllowAetcd(name) || name == "actor.DeadLetterResponse"
}

// defaultListenAddr picks loopback for a loopback endpoint, else the local
// address the system routes to endpoint from (no packet is sent).
func defaultListenAddr(endpoint string) string {
	host, port, err := net.SplitHostPort(endpoint)
	if err == nil {
		if ip := net.ParseIP(host); (ip != nil && !ip.IsLoopback()) || (ip == nil && host != "localhost") {
			if conn, err := net.Dial("udp", net.JoinHostPort(host, port)); err == nil {
				local := conn.LocalAddr().(*net.UDPAddr).IP
				conn.Close()
				if !local.IsUnspecified() {
					return net.JoinHostPort(local.String(), "0")
				}
			}
		}
	}
	return "127.0.0.1:0"
}

// Endpoints returns the members the client talks to.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// ListenAddr returns the address members dial to answer this client.
func (c *Client) ListenAddr() string { return c.system.Address() }

// Close stops the client's listener and actor system. Requests in flight
// return ErrClosed. Close is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.sendMu.Lock()
		c.closing = true
		c.sendMu.Unlock()
		close(c.done)
		// Shutdown(true) would also stop the endpoint actors, but it panics
		// (send on a closed channel) once any incoming stream has ended with
		// an error, so stop the server and then the endpoint actors, which
		// close the outgoing connections.
		c.remote.Shutdown(false)
		c.stopActors("EndpointSupervisor", "activator")
		c.system.EventStream.Unsubscribe(c.sub)
		c.system.Shutdown()
	})
	return nil
}

// closeWait bounds how long Close waits for protoactor's endpoint actors.
// An endpoint writer still retrying a dead member sleeps between attempts
// (5 × 2 s) and stops only after; Close does not wait for that.
const closeWait = 500 * time.Millisecond

// stopActors stops protoactor's named system actors and waits for them, at
// most closeWait in all.
func (c *Client) stopActors(names ...string) {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for _, name := range names {
			_ = c.system.Root.StopFuture(actor.NewPID(c.system.Address(), name)).Wait()
		}
	}()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
	}
}

// Do sends req to a member and returns its answer. An error answered by the
// member is returned as *Error. Endpoints are tried in order, starting from
// the one that answered last: a member that refuses the connection or has no
// gateway (*UnreachableError), or does not answer within the request timeout
// or the context's deadline, if sooner (*TimeoutError), is skipped. When no
// member answers, the error names them: a *TimeoutError when all timed out.
// A request that timed out may still have been executed by its member. Do
// returns ErrClosed after Close, and wraps the context's error when it is
// canceled.
func (c *Client) Do(ctx context.Context, req *messages.ClientRequest) (*messages.ClientResponse, error) {
	resp, _, err := c.roundTrip(ctx, req, nil)
	return resp, err
}

// DoAt is Do addressed to the member at endpoint only (which need not be
// one of Config.Endpoints); no other member is tried.
func (c *Client) DoAt(ctx context.Context, endpoint string, req *messages.ClientRequest) (*messages.ClientResponse, error) {
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return nil, fmt.Errorf("client: endpoint %q: %w", endpoint, err)
	}
	resp, _, err := c.roundTrip(ctx, req, []string{endpoint})
	return resp, err
}

// roundTrip asks the members at endpoints in order (nil: the configured
// endpoints, from the preferred one) and returns the first answer and the
// endpoint that gave it. A member that cannot be reached or does not answer
// in time is skipped.
func (c *Client) roundTrip(ctx context.Context, req *messages.ClientRequest, endpoints []string) (*messages.ClientResponse, string, error) {
	if req.GetRequest() == nil {
		return nil, "", errors.New("client: empty request")
	}
	start, failover := 0, endpoints == nil
	if failover {
		endpoints = c.endpoints
		start = int(c.preferred.Load())
	}
	var failures []error
	for i := range endpoints {
		idx := (start + i) % len(endpoints)
		ep := endpoints[idx]
		wait, byDeadline := c.timeout, false
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait, byDeadline = time.Until(dl), true
		}
		if wait <= 0 {
			if len(failures) == 0 {
				failures = append(failures, &TimeoutError{Endpoints: []string{ep}, Cause: context.DeadlineExceeded})
			}
			break
		}
		resp, err := c.ask(ctx, ep, req, wait, byDeadline)
		if err != nil {
			var (
				te *TimeoutError
				ue *UnreachableError
			)
			if errors.As(err, &te) || errors.As(err, &ue) {
				failures = append(failures, err)
				continue
			}
			return nil, ep, err
		}
		if failover && i > 0 {
			c.preferred.Store(int32(idx))
		}
		if e := resp.GetError(); e != nil {
			return nil, ep, errorFrom(e)
		}
		return resp, ep, nil
	}
	return nil, "", combine(failures)
}

// combine reports the failures of several members as one error: one
// *TimeoutError when every member timed out.
func combine(failures []error) error {
	if len(failures) == 1 {
		return failures[0]
	}
	merged := &TimeoutError{}
	for _, err := range failures {
		te, ok := err.(*TimeoutError)
		if !ok {
			return joinedError(failures)
		}
		merged.Endpoints = append(merged.Endpoints, te.Endpoints...)
		merged.Timeout = max(merged.Timeout, te.Timeout)
		if te.Cause != nil {
			merged.Cause = te.Cause
		}
	}
	return merged
}

// ask sends req to the gateway at endpoint and waits up to wait for the
// answer; byDeadline says that wait ends at ctx's deadline. A member this
// client holds no connection to is first probed with a TCP dial, so that a
// member that is down is reported at once, and protoactor's endpoint writer
// (which retries a dead address 5 × 2 s, blocking its mailbox, and leaks a
// gRPC connection per failed attempt) is not started for it.
func (c *Client) ask(ctx context.Context, endpoint string, req *messages.ClientRequest, wait time.Duration, byDeadline bool) (*messages.ClientResponse, error) {
	select {
	case <-c.done:
		return nil, ErrClosed
	default:
	}
	budget, start := wait, time.Now()
	if !c.isConnected(endpoint) {
		if err := c.probe(ctx, endpoint, wait, byDeadline); err != nil {
			return nil, err
		}
		wait -= time.Since(start)
	}

	reply := &replyProcess{answer: make(chan any, 1)}
	pid, ok := c.system.ProcessRegistry.Add(reply, "client"+c.system.ProcessRegistry.NextId())
	if !ok {
		panic("client: reply process id already registered")
	}
	defer c.system.ProcessRegistry.Remove(pid)
	if !c.send(actor.NewPID(endpoint, GatewayName), req, pid) {
		return nil, ErrClosed
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	timedOut := func() error {
		var cause error
		if byDeadline {
			cause = context.DeadlineExceeded
		}
		return &TimeoutError{Endpoints: []string{endpoint}, Timeout: budget.Round(time.Millisecond), Cause: cause}
	}
	select {
	case m := <-reply.answer:
		switch m := m.(type) {
		case *messages.ClientResponse:
			return m, nil
		case *actor.DeadLetterResponse:
			return nil, &UnreachableError{Endpoint: endpoint, Reason: ErrNoGateway}
		default:
			return nil, fmt.Errorf("client: member %s answered with unexpected message %T", endpoint, m)
		}
	case <-timer.C:
		return nil, timedOut()
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, timedOut()
		}
		return nil, fmt.Errorf("client: %w", ctx.Err())
	case <-c.done:
		return nil, ErrClosed
	}
}

// send sends req to target with replies to sender, unless the client is
// closing: protoactor's endpoint manager must not be asked for a new
// endpoint once Close has stopped its actors (it would panic).
func (c *Client) send(target *actor.PID, req *messages.ClientRequest, sender *actor.PID) bool {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.closing {
		return false
	}
	c.system.Root.RequestWithCustomSender(target, req, sender)
	return true
}

// probe dials endpoint over TCP and hangs up. A dial that does not finish
// within wait is a timeout.
func (c *Client) probe(ctx context.Context, endpoint string, wait time.Duration, byDeadline bool) error {
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", endpoint)
	switch {
	case err == nil:
		return conn.Close()
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("client: %w", ctx.Err())
	case dctx.Err() != nil:
		te := &TimeoutError{Endpoints: []string{endpoint}, Timeout: wait.Round(time.Millisecond)}
		if byDeadline {
			te.Cause = context.DeadlineExceeded
		}
		return te
	}
	return &UnreachableError{Endpoint: endpoint, Reason: err}
}

// trackEndpoints follows protoactor's endpoint events, so that ask knows
// which members it is connected to.
func (c *Client) trackEndpoints(evt any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := evt.(type) {
	case *remote.EndpointConnectedEvent:
		c.connected[e.Address] = true
	case *remote.EndpointTerminatedEvent:
		delete(c.connected, e.Address)
		c.watchesLost(e.Address)
	}
}

func (c *Client) isConnected(endpoint string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected[endpoint]
}

// replyProcess is a registry entry that receives one answer; it is cheaper
// than an actor and, unlike a Future, can be waited on with a context.
type replyProcess struct {
	answer chan any
}

func (p *replyProcess) SendUserMessage(_ *actor.PID, message any) {
	_, m, _ := actor.UnwrapEnvelope(message)
	select {
	case p.answer <- m:
	default: // a second answer to one request is dropped
	}
}

func (p *replyProcess) SendSystemMessage(*actor.PID, any) {}
func (p *replyProcess) Stop(*actor.PID)                   {}

// joinedError reports several members' failures on one line.
type joinedError []error

func (e joinedError) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = strings.TrimPrefix(err.Error(), "client: ")
	}
	return "client: no member answered: " + strings.Join(parts, "; ")
}

func (e joinedError) Unwrap() []error { return e }
