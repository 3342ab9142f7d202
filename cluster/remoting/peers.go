package remoting

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// WatchPeers probes each peer address (host:port) every interval with a TCP
// dial. When a peer that refused connections answers again, it publishes
// protoactor's EndpointTerminatedEvent for that address: the library drops
// its endpoint, which after a failed dial sleeps a fixed 2 s per retry, and
// the next message to the peer dials at once. So a member that restarts on
// the same address is reached again within about one interval. stop ends
// the probing and waits for it.
func WatchPeers(system *actor.ActorSystem, addrs []string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchPeer(system, addr, interval, done)
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func watchPeer(system *actor.ActorSystem, addr string, interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	reachable := true
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		c, err := net.DialTimeout("tcp", addr, max(interval, time.Second))
		if err != nil {
			// Only a refused connection says the peer is gone: a dial that
			// times out on a loaded machine may reach a live peer, whose
			// working connection must not be reset when the next dial
			// succeeds.
			if errors.Is(err, syscall.ECONNREFUSED) {
				reachable = false
			}
			continue
		}
		c.Close()
		if !reachable {
			reachable = true
			system.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: addr})
		}
	}
}
