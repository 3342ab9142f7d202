package actors

import (
	"bytes"
	"math/rand/v2"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"github.com/aetcd/aetcd/persistence/mvcc"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// WatchHubPrefix begins the names of a member's watch hubs
// (WatchHubPrefix + shard index).
const WatchHubPrefix = "watchhub-"

// etcd's watch errors (storage/mvcc/watcher.go), sent as cancel_reason.
const (
	errWatcherRange       = "mvcc: watcher range is empty"
	errWatcherDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
)

// invalidWatchID is clientv3.InvalidWatchID: the watch_id of a create that
// failed and of a stream-wide progress notification.
const invalidWatchID = -1

// watchHub owns the watch streams of one shard (a stream belongs to the
// shard registry.Shard(id)) and every watcher on them. It receives the
// events of every applied batch (WatchEvents, from the applier, after the
// read view holding them is published) and hands each synced watcher the
// events it matches, one response per batch, to its stream's sink. It never
// blocks: a watcher whose sink is full leaves the synced group and catches
// up from the backend (View.Events) on WatchSync, as do watchers created
// with a start revision in the past. A watcher's minRev is the first
// revision it has not been sent; it only grows, so events reach a watcher in
// revision order, once each, with the events of one revision in one
// response.
type watchHub struct {
	env      *Env
	cfg      WatchHubConfig
	store    *mvcc.Store
	registry *WatchRegistry

	rev        int64 // revision through which events have been handed out
	compactRev int64
	streams    map[uint64]*hubStream
	single     map[string]map[*watcher]struct{} // synced single-key watchers
	ranges     map[*watcher]struct{}            // synced range watchers
	unsynced   map[*watcher]struct{}
	// progressWait: streams with a progress request waiting for all their
	// watchers to be synced.
	progressWait map[*hubStream]struct{}
	syncQueued   bool
	nextProgress time.Time
	cancelTick   scheduler.CancelFunc
}

// hubStream is one client watch stream.
type hubStream struct {
	id       uint64
	sink     *WatchSink
	watchers map[int64]*watcher
	nextID   int64
}

// watcher is one watch on a stream.
type watcher struct {
	stream   *hubStream
	id       int64
	key      []byte
	end      []byte // nil: the single key; empty: every key >= key
	startRev int64
	// minRev is the first revision the watcher may need: an unsynced
	// watcher's next revision to read; a synced watcher has been sent
	// everything through the hub's revision, and minRev only holds back a
	// start revision in the future.
	minRev   int64
	noPut    bool
	noDelete bool
	prevKV   bool
	fragment bool
	progress bool
	synced   bool
	// sent: events went out since the last progress notification.
	sent bool
}

// WatchHubConfig tunes the watch hubs.
type WatchHubConfig struct {
	// SyncInterval is how often unsynced watchers catch up. Default 100 ms.
	SyncInterval time.Duration
	// SyncEvents bounds the events read from the backend per catch-up
	// round (whole revisions are never split). Default 10000.
	SyncEvents int
	// ProgressInterval is how often watchers created with progress_notify
	// that got no events hear the current revision (etcd's
	// --watch-progress-notify-interval, default 10 min, plus up to 10 %
	// jitter).
	ProgressInterval time.Duration
}

// NewWatchHubProps returns the props of one watch hub over store.
func NewWatchHubProps(env *Env, cfg WatchHubConfig, store *mvcc.Store, registry *WatchRegistry) *actor.Props {
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 100 * time.Millisecond
	}
	if cfg.SyncEvents <= 0 {
		cfg.SyncEvents = 10000
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 10 * time.Minute
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &watchHub{env: env, cfg: cfg, store: store, registry: registry,
			streams: map[uint64]*hubStream{}, single: map[string]map[*watcher]struct{}{},
			ranges: map[*watcher]struct{}{}, unsynced: map[*watcher]struct{}{},
			progressWait: map[*hubStream]struct{}{}}
	})
}

func (h *watchHub) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		h.onStarted(ctx)
	case *messages.WatchEvents:
		h.onEvents(ctx, msg)
	case *messages.WatchRestore:
		h.onRestore(ctx, msg)
	case *messages.WatchControl:
		h.onControl(ctx, msg)
	case *messages.WatchSync:
		h.onSync(ctx)
	case *actor.Stopping:
		h.onStopping()
	}
}

func (h *watchHub) onStarted(ctx actor.Context) {
	v := h.store.View()
	h.rev, h.compactRev = v.Rev(), v.CompactRev()
	h.nextProgress = time.Now().Add(h.progressInterval())
	h.cancelTick = sendRepeatedly(ctx, h.cfg.SyncInterval, &messages.WatchSync{})
}

// onEvents hands a batch of events to the synced watchers. Events at or
// below the hub's revision were handed out already (dropped); a batch that
// skips revisions moves every synced watcher to catch-up.
func (h *watchHub) onEvents(ctx actor.Context, msg *messages.WatchEvents) {
	evs := msg.Events
	for len(evs) > 0 && evs[0].GetKv().GetModRevision() <= h.rev {
		evs = evs[1:]
	}
	first := h.rev + 1
	if msg.CompactRevision > h.compactRev {
		h.compactRev = msg.CompactRevision
	}
	if msg.Revision <= h.rev {
		return
	}
	if len(evs) == 0 || evs[0].Kv.ModRevision != first {
		h.env.Logger.Warn().Int64("hub-revision", h.rev).Int64("batch-revision", msg.Revision).
			Msg("watch hub: events skip revisions; synced watchers catch up from the backend")
		h.unsyncAll(first)
		h.rev = msg.Revision
		h.scheduleSync(ctx)
		return
	}
	h.rev = msg.Revision
	matched := map[*watcher][]*messages.Event{}
	for _, ev := range evs {
		for w := range h.single[string(ev.Kv.Key)] {
			if w.wants(ev) {
				matched[w] = append(matched[w], ev)
			}
		}
		for w := range h.ranges {
			if w.contains(ev.Kv.Key) && w.wants(ev) {
				matched[w] = append(matched[w], ev)
			}
		}
	}
	hdr := h.header()
	for w, wevs := range matched {
		if !h.send(w, hdr, wevs) {
			h.unsync(w, first)
			h.scheduleSync(ctx)
			continue
		}
	}
	h.answerProgress()
}

// onRestore: the backend now holds a snapshot at msg.Revision; every synced
// watcher catches up from it, from the first revision it has not been
// sent (or is canceled if the snapshot compacted that away).
func (h *watchHub) onRestore(ctx actor.Context, msg *messages.WatchRestore) {
	h.unsyncAll(h.rev + 1)
	h.rev = max(h.rev, msg.Revision)
	h.compactRev = max(h.compactRev, msg.CompactRevision)
	h.scheduleSync(ctx)
}

func (h *watchHub) onControl(ctx actor.Context, msg *messages.WatchControl) {
	s := h.streams[msg.Stream]
	if msg.Close {
		if s != nil {
			h.closeStream(s)
		}
		return
	}
	if s == nil {
		sink := h.registry.Sink(msg.Stream)
		if sink == nil {
			return // closed meanwhile
		}
		s = &hubStream{id: msg.Stream, sink: sink, watchers: map[int64]*watcher{}}
		h.streams[msg.Stream] = s
	}
	switch r := msg.GetRequest().GetRequestUnion().(type) {
	case *messages.WatchRequest_CreateRequest:
		h.create(ctx, s, r.CreateRequest)
	case *messages.WatchRequest_CancelRequest:
		if w := s.watchers[r.CancelRequest.GetWatchId()]; w != nil {
			h.remove(w)
			s.sink.PushControl(&messages.WatchResponse{Header: h.header(), WatchId: w.id, Canceled: true})
		}
	case *messages.WatchRequest_ProgressRequest:
		h.progressWait[s] = struct{}{}
		h.answerProgress()
	}
}

// create adds a watcher as etcd's watchStream.Watch: key and range as a
// Range (an empty key is "\x00"; range_end "\x00" means every key >= key);
// start_revision 0 or above the current revision starts synced.
func (h *watchHub) create(ctx actor.Context, s *hubStream, cr *messages.WatchCreateRequest) {
	fail := func(reason string) {
		s.sink.PushControl(&messages.WatchResponse{Header: h.header(), WatchId: invalidWatchID,
			Created: true, Canceled: true, CancelReason: reason})
	}
	if cr == nil {
		return
	}
	if cr.StartRevision < 0 {
		fail(rpcerr.Compacted.Message)
		return
	}
	w := &watcher{stream: s, key: cr.Key, startRev: cr.StartRevision, prevKV: cr.PrevKv,
		fragment: cr.Fragment, progress: cr.ProgressNotify}
	if len(w.key) == 0 {
		w.key = []byte{0}
	}
	switch {
	case len(cr.RangeEnd) == 1 && cr.RangeEnd[0] == 0:
		w.end = []byte{}
	case len(cr.RangeEnd) > 0:
		w.end = cr.RangeEnd
		if bytes.Compare(w.key, w.end) >= 0 {
			fail(errWatcherRange)
			return
		}
	}
	for _, f := range cr.Filters {
		switch f {
		case messages.WatchCreateRequest_NOPUT:
			w.noPut = true
		case messages.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	switch id := cr.WatchId; {
	case id == 0: // clientv3.AutoWatchID
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		w.id = s.nextID
		s.nextID++
	case s.watchers[id] != nil:
		fail(errWatcherDuplicateID)
		return
	default:
		w.id = id
	}
	s.watchers[w.id] = w
	s.sink.PushControl(&messages.WatchResponse{Header: h.header(), WatchId: w.id, Created: true})
	if w.startRev == 0 || w.startRev > h.rev {
		w.minRev = max(w.startRev, h.rev+1)
		h.addSynced(w)
		return
	}
	w.minRev = w.startRev
	h.unsynced[w] = struct{}{}
	h.scheduleSync(ctx)
}

// onSync catches up unsynced watchers from the backend and sends due
// progress notifications.
func (h *watchHub) onSync(ctx actor.Context) {
	h.syncQueued = false
	h.catchUp()
	h.answerProgress()
	if now := time.Now(); !now.Before(h.nextProgress) {
		h.nextProgress = now.Add(h.progressInterval())
		h.notifyProgress()
	}
}

// catchUp reads events from the backend, from the lowest revision an
// unsynced watcher needs through the hub's revision, and hands each its
// share. Watchers whose first needed revision is compacted are canceled
// with the compaction revision. A watcher whose sink is full keeps waiting.
func (h *watchHub) catchUp() {
	for round := 0; round < 4 && len(h.unsynced) > 0; round++ {
		minRev := int64(-1)
		for w := range h.unsynced {
			if w.minRev > h.rev {
				h.addSynced(w)
				continue
			}
			if minRev < 0 || w.minRev < minRev {
				minRev = w.minRev
			}
		}
		if minRev < 0 {
			return
		}
		res, err := h.store.View().Events(minRev, h.rev, h.cfg.SyncEvents)
		if err != nil {
			if !rpcerr.Is(err, rpcerr.Compacted) {
				h.env.Logger.Warn().Str("error", err.GetMessage()).Msg("watch hub: reading events for catch-up failed; retrying")
				return
			}
			h.compactRev = max(h.compactRev, res.CompactRev)
			// etcd's cancel of a compacted watcher carries header
			// revision 0 (its mvcc response has no revision).
			hdr := h.header()
			hdr.Revision = 0
			for w := range h.unsynced {
				if w.minRev < res.CompactRev {
					h.remove(w)
					w.stream.sink.PushControl(&messages.WatchResponse{Header: hdr, WatchId: w.id,
						Canceled: true, CompactRevision: res.CompactRev})
				}
			}
			continue
		}
		hdr := h.header()
		blocked := 0
		for w := range h.unsynced {
			if w.minRev > res.Last {
				continue
			}
			var wevs []*messages.Event
			for _, ev := range res.Events {
				if ev.Kv.ModRevision >= w.minRev && w.contains(ev.Kv.Key) && w.wants(ev) {
					wevs = append(wevs, ev)
				}
			}
			if len(wevs) > 0 && !h.send(w, hdr, wevs) {
				blocked++
				continue
			}
			w.minRev = res.Last + 1
			if w.minRev > h.rev {
				h.addSynced(w)
			}
		}
		if blocked > 0 && blocked == len(h.unsynced) {
			return
		}
	}
}

// send queues one response with a watcher's events.
func (h *watchHub) send(w *watcher, hdr *messages.ResponseHeader, evs []*messages.Event) bool {
	ok := w.stream.sink.PushEvents(WatchOut{
		Resp:   &messages.WatchResponse{Header: hdr, WatchId: w.id, Events: evs},
		PrevKV: w.prevKV, Fragment: w.fragment,
	})
	if ok {
		w.sent = true
	}
	return ok
}

// answerProgress answers the waiting progress requests of streams whose
// watchers are all synced (etcd's progressIfSync; a stream without
// watchers gets nothing, as etcd's).
func (h *watchHub) answerProgress() {
	for s := range h.progressWait {
		if len(s.watchers) == 0 {
			delete(h.progressWait, s)
			continue
		}
		all := true
		for _, w := range s.watchers {
			if !w.synced || h.rev < w.startRev {
				all = false
				break
			}
		}
		if all {
			delete(h.progressWait, s)
			s.sink.PushControl(&messages.WatchResponse{Header: h.header(), WatchId: invalidWatchID})
		}
	}
}

// notifyProgress sends the current revision to every synced watcher with
// progress_notify that got no events since the last notification.
func (h *watchHub) notifyProgress() {
	hdr := h.header()
	for _, s := range h.streams {
		for _, w := range s.watchers {
			if !w.progress {
				continue
			}
			if w.synced && !w.sent {
				w.stream.sink.PushEvents(WatchOut{Resp: &messages.WatchResponse{Header: hdr, WatchId: w.id}})
			}
			w.sent = false
		}
	}
}

func (h *watchHub) progressInterval() time.Duration {
	return h.cfg.ProgressInterval + time.Duration(rand.Int64N(int64(h.cfg.ProgressInterval)/10+1))
}

func (h *watchHub) scheduleSync(ctx actor.Context) {
	if !h.syncQueued {
		h.syncQueued = true
		ctx.Send(ctx.Self(), &messages.WatchSync{})
	}
}

func (h *watchHub) addSynced(w *watcher) {
	delete(h.unsynced, w)
	w.synced = true
	if w.end == nil {
		set := h.single[string(w.key)]
		if set == nil {
			set = map[*watcher]struct{}{}
			h.single[string(w.key)] = set
		}
		set[w] = struct{}{}
		return
	}
	h.ranges[w] = struct{}{}
}

// unsync moves a synced watcher to catch-up from revision from (or its own
// minRev, if later).
func (h *watchHub) unsync(w *watcher, from int64) {
	h.dropSynced(w)
	w.synced = false
	w.minRev = max(w.minRev, from)
	h.unsynced[w] = struct{}{}
}

func (h *watchHub) unsyncAll(from int64) {
	for _, s := range h.streams {
		for _, w := range s.watchers {
			if w.synced {
				h.unsync(w, from)
			}
		}
	}
}

func (h *watchHub) dropSynced(w *watcher) {
	if w.end == nil {
		if set := h.single[string(w.key)]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.single, string(w.key))
			}
		}
		return
	}
	delete(h.ranges, w)
}

// remove forgets a watcher entirely.
func (h *watchHub) remove(w *watcher) {
	h.dropSynced(w)
	delete(h.unsynced, w)
	delete(w.stream.watchers, w.id)
}

func (h *watchHub) closeStream(s *hubStream) {
	for _, w := range s.watchers {
		h.remove(w)
	}
	delete(h.progressWait, s)
	delete(h.streams, s.id)
}

func (h *watchHub) header() *messages.ResponseHeader {
	return &messages.ResponseHeader{ClusterId: h.env.State.ClusterID, MemberId: h.env.State.MemberID,
		Revision: h.rev, RaftTerm: h.env.State.Term.Load()}
}

func (h *watchHub) onStopping() {
	if h.cancelTick != nil {
		h.cancelTick()
	}
	for _, s := range h.streams {
		s.sink.Close()
	}
}

// contains reports whether key is in the watcher's range.
func (w *watcher) contains(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	return bytes.Compare(key, w.key) >= 0 && (len(w.end) == 0 || bytes.Compare(key, w.end) < 0)
}

// wants applies the watcher's filters and start revision to an event in
// its range.
func (w *watcher) wants(ev *messages.Event) bool {
	if ev.Kv.ModRevision < w.minRev {
		return false
	}
	if ev.Type == messages.Event_PUT {
		return !w.noPut
	}
	return !w.noDelete
}
