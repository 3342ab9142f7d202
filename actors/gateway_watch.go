package actors

import (
	"sync/atomic"
	"time"

	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
)

// RemoteWatchIdle is how long a remoting watch stream lives without a
// message from its client (clients send a heartbeat every
// RemoteWatchIdle/6).
const RemoteWatchIdle = 30 * time.Second

// remoteWatch is a watch stream of a remoting client, keyed by the
// client's stream actor.
type remoteWatch struct {
	id       uint64
	lastSeen atomic.Int64 // unix nanoseconds
}

// onWatchStream serves a remoting client's watch stream: the first message
// from a stream actor opens a stream in the registry and starts a goroutine
// that sends the client what the hub queues; requests go to the stream's
// hub; close (or RemoteWatchIdle without a message) ends it.
func (g *gateway) onWatchStream(ctx actor.Context, req *messages.WatchStreamRequest) {
	from := ctx.Sender()
	if from == nil || g.cfg.Watches == nil {
		return
	}
	key := from.Address + "/" + from.Id
	rw := g.remoteWatches[key]
	if req.Close {
		if rw != nil {
			g.closeRemoteWatch(ctx, key, rw)
		}
		return
	}
	if rw == nil {
		rw = g.openRemoteWatch(ctx, key, from)
	}
	rw.lastSeen.Store(time.Now().UnixNano())
	if req.Request != nil {
		ctx.Send(g.cfg.WatchHubs[g.cfg.Watches.Shard(rw.id)], &messages.WatchControl{Stream: rw.id, Request: req.Request})
	}
}

func (g *gateway) openRemoteWatch(ctx actor.Context, key string, to *actor.PID) *remoteWatch {
	id, sink := g.cfg.Watches.Open(g.cfg.WatchSinkEvents)
	rw := &remoteWatch{id: id}
	rw.lastSeen.Store(time.Now().UnixNano())
	if g.remoteWatches == nil {
		g.remoteWatches = map[string]*remoteWatch{}
	}
	g.remoteWatches[key] = rw
	root, self, store, maxBytes := ctx.ActorSystem().Root, ctx.Self(), g.store, g.cfg.MaxRequestBytes+512*1024
	go func() {
		idle := time.NewTicker(RemoteWatchIdle / 3)
		defer idle.Stop()
		var buf []WatchOut
		for {
			select {
			case <-sink.Done():
				return
			case <-idle.C:
				if time.Since(time.Unix(0, rw.lastSeen.Load())) > RemoteWatchIdle {
					// Closed by the gateway, as if the client had asked.
					root.RequestWithCustomSender(self, &messages.ClientRequest{Request: &messages.ClientRequest_Watch{
						Watch: &messages.WatchStreamRequest{Close: true}}}, to)
					return
				}
			case <-sink.Ready():
				buf = sink.Take(buf)
				view := store.View()
				for _, out := range buf {
					for _, resp := range ExpandWatchOut(out, view, maxBytes) {
						root.Send(to, &messages.ClientResponse{Response: &messages.ClientResponse_Watch{Watch: resp}})
					}
				}
			}
		}
	}()
	return rw
}

func (g *gateway) closeRemoteWatch(ctx actor.Context, key string, rw *remoteWatch) {
	delete(g.remoteWatches, key)
	ctx.Send(g.cfg.WatchHubs[g.cfg.Watches.Shard(rw.id)], &messages.WatchControl{Stream: rw.id, Close: true})
	g.cfg.Watches.Close(rw.id)
}
