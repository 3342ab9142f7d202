package bootstrap

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// watchdogName is the name of the actor that watches the member's actors.
const watchdogName = "watchdog"

// watchdog fail-stops the member when one of the actors it watches
// terminates: the member cannot serve correctly without any of them.
// Member shutdown stops the watchdog before the actors it watches, so a
// clean stop is not reported as fatal.
type watchdog struct {
	fatal   func(error)
	watched map[string]string // PID ID -> actor name
	pids    []*actor.PID
}

// newWatchdogProps watches pids, keyed by actor name, and calls fatal with
// an error wrapping ErrActorStopped for the first one that terminates.
func newWatchdogProps(fatal func(error), pids map[string]*actor.PID) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		w := &watchdog{fatal: fatal, watched: map[string]string{}}
		for name, pid := range pids {
			w.watched[pid.Id] = name
			w.pids = append(w.pids, pid)
		}
		return w
	})
}

func (w *watchdog) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		w.onStarted(ctx)
	case *actor.Terminated:
		w.onTerminated(msg)
	}
}

// onStarted watches every actor; one already gone is reported as
// terminated at once.
func (w *watchdog) onStarted(ctx actor.Context) {
	for _, pid := range w.pids {
		ctx.Watch(pid)
	}
}

func (w *watchdog) onTerminated(msg *actor.Terminated) {
	name, ok := w.watched[msg.Who.GetId()]
	if !ok {
		return
	}
	w.fatal(fmt.Errorf("%w: %s (%s)", ErrActorStopped, name, msg.Who.GetId()))
}
