package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// sendRepeatedly sends msg to the actor of ctx every interval until the
// returned cancel is called; after cancel returns, nothing more is sent.
// It replaces protoactor's scheduler SendRepeatedly, whose timer reads its
// stop flag without synchronization (a data race with cancel, reported by
// -race when an actor stops while its timer fires).
func sendRepeatedly(ctx actor.Context, interval time.Duration, msg any) scheduler.CancelFunc {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		root.Send(self, msg)
		t.Reset(interval)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
