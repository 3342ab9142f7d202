package remoting_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/aetcd/aetcd/cluster/remoting"
	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
)

func benchSystem(b *testing.B) (*actor.ActorSystem, string) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	r, err := remoting.Start(sys, remoting.Config{Address: addr})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Shutdown(false) })
	return sys, addr
}

// BenchmarkRoundTrip measures one RaftMessage sent to an actor of another
// actor system over remoting and one sent back, one round trip at a time
// (the latency a heartbeat round or a replicated append pays).
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{0, 256, 4096} {
		b.Run(fmt.Sprintf("entry=%dB", size), func(b *testing.B) {
			sysA, addrA := benchSystem(b)
			sysB, addrB := benchSystem(b)
			done := make(chan struct{}, 1)
			if _, err := sysA.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*messages.RaftMessage); ok {
					done <- struct{}{}
				}
			}), "pong"); err != nil {
				b.Fatal(err)
			}
			pong := actor.NewPID(addrA, "pong")
			if _, err := sysB.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*messages.RaftMessage); ok {
					ctx.Send(pong, &messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP_RESP, From: m.To, To: m.From, Index: m.Index})
				}
			}), "echo"); err != nil {
				b.Fatal(err)
			}
			echo := actor.NewPID(addrB, "echo")
			msg := &messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, From: 1, To: 2}
			if size > 0 {
				msg.Entries = []*messages.Entry{{Index: 1, Term: 1, Data: make([]byte, size)}}
			}
			// Warm up the connections.
			sysA.Root.Send(echo, msg)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.Fatal("no round trip")
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sysA.Root.Send(echo, msg)
				<-done
			}
		})
	}
}
