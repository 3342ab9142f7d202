package actors

import (
	"sync"
	"sync/atomic"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"google.golang.org/protobuf/proto"
)

// WatchOut is one response a watch hub queued for a stream, with what the
// stream's sender must do to it before sending: fill each event's prev_kv
// (a read at the event's revision - 1) and split it into fragments.
type WatchOut struct {
	Resp     *messages.WatchResponse
	PrevKV   bool
	Fragment bool
}

// WatchSink is the bounded queue between the hub that owns a watch stream
// and the goroutine that sends the stream's responses to its client. The
// hub never blocks on it: PushEvents refuses once MaxEvents event responses
// wait, and the hub then moves the watcher to catch-up from the backend.
// Control responses (created, canceled, progress) are always accepted and
// keep their order with the events. Safe on any goroutine.
type WatchSink struct {
	mu        sync.Mutex
	queue     []WatchOut
	events    int // event responses in queue
	maxEvents int
	closed    bool
	ready     chan struct{} // capacity 1: something was queued
	done      chan struct{} // closed by Close
}

// NewWatchSink returns a sink holding at most maxEvents event responses.
func NewWatchSink(maxEvents int) *WatchSink {
	return &WatchSink{maxEvents: max(maxEvents, 1), ready: make(chan struct{}, 1), done: make(chan struct{})}
}

// PushEvents queues an event response unless maxEvents already wait or the
// sink is closed; it reports whether it did.
func (s *WatchSink) PushEvents(out WatchOut) bool {
	s.mu.Lock()
	if s.closed || s.events >= s.maxEvents {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, out)
	s.events++
	s.mu.Unlock()
	s.signal()
	return true
}

// PushControl queues a control response (nothing happens after Close).
func (s *WatchSink) PushControl(resp *messages.WatchResponse) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, WatchOut{Resp: resp})
	s.mu.Unlock()
	s.signal()
}

func (s *WatchSink) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled when responses may be waiting.
func (s *WatchSink) Ready() <-chan struct{} { return s.ready }

// Done is closed once the sink is closed.
func (s *WatchSink) Done() <-chan struct{} { return s.done }

// Take removes and returns everything queued, oldest first.
func (s *WatchSink) Take(buf []WatchOut) []WatchOut {
	s.mu.Lock()
	buf = append(buf[:0], s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	s.events = 0
	s.mu.Unlock()
	return buf
}

// Close drops what is queued and refuses everything later.
func (s *WatchSink) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.queue = nil
		close(s.done)
	}
}

// WatchRegistry maps stream IDs to their sinks, so that WatchControl
// messages (protobuf) can name a stream whose sink (a Go queue) the hub
// looks up. One registry per member, shared by its hubs and its gRPC and
// remoting fronts. Safe on any goroutine.
type WatchRegistry struct {
	mu      sync.Mutex
	streams map[uint64]*WatchSink
	next    atomic.Uint64
	shards  int
}

// NewWatchRegistry returns a registry for a member with shards hubs.
func NewWatchRegistry(shards int) *WatchRegistry {
	return &WatchRegistry{streams: map[uint64]*WatchSink{}, shards: max(shards, 1)}
}

// Open registers a new stream and returns its ID and sink.
func (r *WatchRegistry) Open(maxEvents int) (uint64, *WatchSink) {
	id := r.next.Add(1)
	s := NewWatchSink(maxEvents)
	r.mu.Lock()
	r.streams[id] = s
	r.mu.Unlock()
	return id, s
}

// Sink returns the sink of stream id, or nil once it is closed.
func (r *WatchRegistry) Sink(id uint64) *WatchSink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[id]
}

// Close closes and forgets stream id's sink.
func (r *WatchRegistry) Close(id uint64) {
	r.mu.Lock()
	s := r.streams[id]
	delete(r.streams, id)
	r.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// Shard returns the index of the hub that owns stream id.
func (r *WatchRegistry) Shard(id uint64) int { return int(id % uint64(r.shards)) }

// ExpandWatchOut turns a queued response into what goes on the wire: with
// PrevKV, each event that is not a creation gets the key's record as of
// the revision before it (read from view; absent if compacted), as etcd's
// watch server does; with Fragment, a response of maxBytes or more is split
// into several with fragment set on all but the last (etcd's
// sendFragments). Events are shared between watchers: they are copied, not
// modified.
func ExpandWatchOut(out WatchOut, view *mvcc.View, maxBytes int) []*messages.WatchResponse {
	resp := out.Resp
	if out.PrevKV && len(resp.Events) > 0 {
		evs := make([]*messages.Event, len(resp.Events))
		for i, ev := range resp.Events {
			evs[i] = ev
			if ev.Type == messages.Event_PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision {
				continue
			}
			evs[i] = &messages.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: view.PrevKV(ev.Kv.Key, ev.Kv.ModRevision)}
		}
		resp = &messages.WatchResponse{Header: resp.Header, WatchId: resp.WatchId, Created: resp.Created,
			Canceled: resp.Canceled, CompactRevision: resp.CompactRevision, CancelReason: resp.CancelReason, Events: evs}
	}
	if !out.Fragment || len(resp.Events) < 2 || proto.Size(resp) < maxBytes {
		return []*messages.WatchResponse{resp}
	}
	var parts []*messages.WatchResponse
	rest := resp.Events
	for len(rest) > 0 {
		part := &messages.WatchResponse{Header: resp.Header, WatchId: resp.WatchId, Fragment: true}
		n := 0
		for n < len(rest) {
			part.Events = rest[:n+1]
			if n > 0 && proto.Size(part) >= maxBytes {
				part.Events = rest[:n]
				break
			}
			n++
		}
		rest = rest[len(part.Events):]
		if len(rest) == 0 {
			part.Fragment = false
		}
		parts = append(parts, part)
	}
	return parts
}
