package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
)

// DefaultWatchHeartbeat is how often a watch stream tells its member it is
// alive when Config.WatchHeartbeat is zero. A member ends a stream it has
// heard nothing from for 30 s (actors.RemoteWatchIdle).
const DefaultWatchHeartbeat = 5 * time.Second

var (
	// ErrWatchMemberLost is the reason of the *WatchLostError that ends a
	// watch whose member's connection closed.
	ErrWatchMemberLost = errors.New("connection to the member closed")
)

// WatchLostError ends a watch whose member can no longer be relied on to
// send its events: its connection closed, it did not answer a liveness
// check (Reason is then that request's error), or it has no gateway. The
// watcher may have missed events; a new watch from the last revision seen
// resumes it.
type WatchLostError struct {
	Endpoint string
	Reason   error
}

func (e *WatchLostError) Error() string {
	return fmt.Sprintf("client: watch stream to member %s lost: %v", e.Endpoint, e.Reason)
}

// Unwrap returns the reason.
func (e *WatchLostError) Unwrap() error { return e.Reason }

// WatchResponse is one value of a watch's channel: a member's response, or
// the error that ended the watch (then Response is nil and the channel is
// closed after it).
type WatchResponse struct {
	Response *messages.WatchResponse
	Err      error
}

// Watch opens a watch stream to a member and creates the watcher req
// describes (key, range_end, start_revision, prev_kv, progress_notify,
// filters) on it. It returns once the member answered the create: the
// channel's first value is that answer (Created set; also Canceled, with
// CancelReason, when the member refused the watcher, and then the channel
// is closed after it). Every later response of the watcher follows, in
// order.
//
// The watch lives until ctx is done (the member is then told to close the
// stream, and the channel is closed without an error value), the member
// cancels the watcher (a response with Canceled, after which the channel is
// closed), or it ends with an error value: a *WatchLostError when the
// member is lost, ErrClosed when the client is closed, or an *Error the
// member answered.
//
// The caller must read the channel until it is closed, or cancel ctx.
//
// Endpoints are tried as by Do until one answers the create: Watch returns
// a *TimeoutError or *UnreachableError when none does, ErrClosed on a
// closed client, and the context's error when it is canceled first. While
// the watch lives, its member is sent a heartbeat and asked for its status
// every Config.WatchHeartbeat; an answer missing for the request timeout
// ends the watch with a *WatchLostError.
func (c *Client) Watch(ctx context.Context, req *messages.WatchCreateRequest) (<-chan WatchResponse, error) {
	if req == nil {
		return nil, errors.New("client: watch: no create request")
	}
	create := &messages.WatchStreamRequest{Request: &messages.WatchRequest{
		RequestUnion: &messages.WatchRequest_CreateRequest{CreateRequest: req}}}
	start := int(c.preferred.Load())
	var failures []error
	for i := range c.endpoints {
		idx := (start + i) % len(c.endpoints)
		ep := c.endpoints[idx]
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
		s, first, err := c.openWatch(ctx, ep, create, wait, byDeadline)
		if err != nil {
			var (
				te *TimeoutError
				ue *UnreachableError
			)
			if errors.As(err, &te) || errors.As(err, &ue) {
				failures = append(failures, err)
				continue
			}
			return nil, err
		}
		if i > 0 {
			c.preferred.Store(int32(idx))
		}
		go s.run(ctx, first)
		return s.out, nil
	}
	return nil, combine(failures)
}

// watchStream is one watch stream: a local actor the member sends the
// stream's responses to, and the goroutine (run) that forwards them.
type watchStream struct {
	c        *Client
	endpoint string
	gateway  *actor.PID
	pid      *actor.PID         // the stream actor; the member's key for the stream
	in       chan any           // what the actor received
	stopped  chan struct{}      // closed when run ends; unblocks the actor
	lost     chan struct{}      // closed when the member's connection closes
	lostOnce sync.Once          // guards lost
	out      chan WatchResponse // the caller's channel
}

// openWatch spawns a stream actor, sends the create request to endpoint's
// gateway and waits up to wait for the first answer.
func (c *Client) openWatch(ctx context.Context, endpoint string, create *messages.WatchStreamRequest, wait time.Duration, byDeadline bool) (*watchStream, *messages.WatchResponse, error) {
	select {
	case <-c.done:
		return nil, nil, ErrClosed
	default:
	}
	budget, started := wait, time.Now()
	if !c.isConnected(endpoint) {
		if err := c.probe(ctx, endpoint, wait, byDeadline); err != nil {
			return nil, nil, err
		}
		wait -= time.Since(started)
	}
	s := &watchStream{
		c: c, endpoint: endpoint, gateway: actor.NewPID(endpoint, GatewayName),
		in: make(chan any), stopped: make(chan struct{}), lost: make(chan struct{}),
		out: make(chan WatchResponse),
	}
	s.pid = c.system.Root.Spawn(actor.PropsFromFunc(s.receive))
	c.addWatch(s)
	fail := func(err error) (*watchStream, *messages.WatchResponse, error) {
		s.end(false)
		return nil, nil, err
	}
	if !c.sendStream(s, create) {
		return fail(ErrClosed)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case m := <-s.in:
		switch m := m.(type) {
		case *messages.ClientResponse:
			if e := m.GetError(); e != nil {
				return fail(errorFrom(e))
			}
			if w := m.GetWatch(); w != nil {
				return s, w, nil
			}
			return fail(&UnexpectedResponseError{Endpoint: endpoint, Want: "watch", Got: fmt.Sprintf("%T", m.GetResponse())})
		default: // *actor.DeadLetterResponse
			return fail(&UnreachableError{Endpoint: endpoint, Reason: ErrNoGateway})
		}
	case <-s.lost:
		return fail(&UnreachableError{Endpoint: endpoint, Reason: ErrWatchMemberLost})
	case <-timer.C:
		var cause error
		if byDeadline {
			cause = context.DeadlineExceeded
		}
		return fail(&TimeoutError{Endpoints: []string{endpoint}, Timeout: budget.Round(time.Millisecond), Cause: cause})
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(&TimeoutError{Endpoints: []string{endpoint}, Timeout: budget.Round(time.Millisecond), Cause: ctx.Err()})
		}
		return fail(fmt.Errorf("client: %w", ctx.Err()))
	case <-c.done:
		return fail(ErrClosed)
	}
}

// receive is the stream actor: it hands the member's messages to run, in
// order, until the stream ends.
func (s *watchStream) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.ClientResponse, *actor.DeadLetterResponse:
		select {
		case s.in <- m:
		case <-s.stopped:
		}
	}
}

// run forwards the stream's responses to the caller, sends heartbeats and
// liveness checks, and ends the stream.
func (s *watchStream) run(ctx context.Context, first *messages.WatchResponse) {
	c := s.c
	defer close(s.out)
	probeCtx, cancelProbe := context.WithCancel(ctx)
	var probes sync.WaitGroup
	defer probes.Wait()
	defer cancelProbe()

	tellMember := true // close the member's stream when run ends
	defer func() { s.end(tellMember) }()

	// finish delivers the error that ends the stream, unless the caller
	// is gone.
	finish := func(err error) {
		select {
		case s.out <- WatchResponse{Err: err}:
		case <-ctx.Done():
		}
	}

	deliver := func(r WatchResponse) bool {
		select {
		case s.out <- r:
			return true
		case <-ctx.Done():
		case <-c.done:
			tellMember = false
			finish(ErrClosed)
		}
		return false
	}
	if !deliver(WatchResponse{Response: first}) || first.GetCanceled() {
		return
	}

	heartbeat := time.NewTicker(c.heartbeat)
	defer heartbeat.Stop()
	probeResult := make(chan error, 1)
	probing := false
	for {
		select {
		case m := <-s.in:
			resp, _ := m.(*messages.ClientResponse)
			switch {
			case resp.GetWatch() != nil:
				if !deliver(WatchResponse{Response: resp.GetWatch()}) {
					return
				}
				if resp.GetWatch().GetCanceled() {
					return
				}
			case resp.GetError() != nil:
				finish(errorFrom(resp.GetError()))
				return
			case resp == nil: // a dead letter: the gateway is gone
				tellMember = false
				finish(&WatchLostError{Endpoint: s.endpoint, Reason: ErrNoGateway})
				return
			}
		case <-heartbeat.C:
			if !c.sendStream(s, &messages.WatchStreamRequest{}) {
				continue // closing: c.done is next
			}
			if !probing {
				probing = true
				probes.Go(func() {
					_, err := c.StatusAt(probeCtx, s.endpoint)
					probeResult <- err
				})
			}
		case err := <-probeResult:
			probing = false
			if err != nil && ctx.Err() == nil {
				finish(&WatchLostError{Endpoint: s.endpoint, Reason: err})
				return
			}
		case <-s.lost:
			tellMember = false
			finish(&WatchLostError{Endpoint: s.endpoint, Reason: ErrWatchMemberLost})
			return
		case <-ctx.Done():
			return
		case <-c.done:
			tellMember = false
			finish(ErrClosed)
			return
		}
	}
}

// end closes the member's stream (when tell) and stops the stream actor.
func (s *watchStream) end(tell bool) {
	close(s.stopped)
	if tell {
		s.c.sendStream(s, &messages.WatchStreamRequest{Close: true})
	}
	s.c.removeWatch(s)
	s.c.stopActor(s.pid)
}

// sendStream sends a stream message to the member with the stream actor as
// sender; false when the client is closing.
func (c *Client) sendStream(s *watchStream, m *messages.WatchStreamRequest) bool {
	return c.send(s.gateway, &messages.ClientRequest{Request: &messages.ClientRequest_Watch{Watch: m}}, s.pid)
}

// stopActor stops a local actor unless the system is shutting down (which
// stops it anyway).
func (c *Client) stopActor(pid *actor.PID) {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if !c.closing {
		c.system.Root.Stop(pid)
	}
}

func (c *Client) addWatch(s *watchStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watches == nil {
		c.watches = map[*watchStream]struct{}{}
	}
	c.watches[s] = struct{}{}
}

func (c *Client) removeWatch(s *watchStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.watches, s)
}

// watchesLost tells the streams to the member at address that its
// connection closed. Called with c.mu held.
func (c *Client) watchesLost(address string) {
	for s := range c.watches {
		if s.endpoint == address {
			s.lostOnce.Do(func() { close(s.lost) })
		}
	}
}
