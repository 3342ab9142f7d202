package bootstrap

import (
	"errors"
	"fmt"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/cluster/raft"
	"github.com/asynkron/protoactor-go/actor"
)

// InProcess runs a member inside an actor system shared with the other
// members of a test, without actor remoting. It exists for tests only: no
// flag sets it, and cmd/aetcd never does.
//
// The member registers each actor as Prefix + "/" + name (for example
// "m1/raft") and addresses a peer's actors by the prefix Peers gives for
// the host:port of that peer's first peer URL. It starts no remoting and no
// peer watch (ListenRemotingAddr is ignored), and Stop leaves System running:
// whoever created System shuts it down after every member has stopped.
// Everything else (data dir, WAL, backend, client listeners) is the
// member's own, as in production.
//
// Messages between members of one system are delivered by pointer, not
// copied: a sender must not change a message after sending it, nor a
// receiver one it received, exactly as between the actors of one member.
type InProcess struct {
	System *actor.ActorSystem
	// Prefix is unique among the members sharing System and stays the same
	// when a member is restarted on its data dir.
	Prefix string
	// Peers maps each other member's peer host:port to its Prefix.
	Peers map[string]string
}

// ErrActorStopped is wrapped by the fatal error of a member one of whose
// actors stopped outside Member.Stop.
var ErrActorStopped = errors.New("bootstrap: member actor stopped")

// ErrActorFailed is wrapped by the fatal error of a member one of whose
// actors panicked.
var ErrActorFailed = errors.New("bootstrap: member actor failed")

// localName is the name under which the member registers its actor name.
func (m *Member) localName(name string) string {
	if m.cfg.InProcess == nil {
		return name
	}
	return m.cfg.InProcess.Prefix + "/" + name
}

// peerPID returns the PID of actor name of the member whose first peer URL
// has host:port peerAddr. In process, a peer missing from InProcess.Peers
// gets a PID no actor has (messages to it are dead letters).
func (m *Member) peerPID(peerAddr, name string) *actor.PID {
	ip := m.cfg.InProcess
	if ip == nil {
		return actor.NewPID(peerAddr, name)
	}
	prefix, ok := ip.Peers[peerAddr]
	if !ok {
		return actor.NewPID(ip.System.Address(), "unknown-peer/"+peerAddr+"/"+name)
	}
	return actor.NewPID(ip.System.Address(), prefix+"/"+name)
}

// spawn spawns one of the member's actors under the guardian that
// fail-stops the member, registered as localName(name). Each such actor
// panics on a killHook (see KillActor).
func (m *Member) spawn(props *actor.Props, name string) (*actor.PID, error) {
	return m.root.SpawnNamed(props.Configure(actor.WithReceiverMiddleware(panicOnKillHook)), m.localName(name))
}

// killHook is what KillActor sends for a panic. It is not a protobuf
// message, so neither remoting nor a client API can deliver one.
type killHook struct {
	name    string
	logLost bool
}

func panicOnKillHook(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
		if k, ok := env.Message.(*killHook); ok {
			if k.logLost {
				panic(fmt.Errorf("%w: injected by KillActor(%q, \"loglost\")", raft.ErrLogLost, k.name))
			}
			panic(fmt.Sprintf("killed by KillActor(%q, \"panic\")", k.name))
		}
		next(ctx, env)
	}
}

// KillActor kills the member's actor name (actors.GatewayName, RaftName,
// WALName, ApplierName, SnapshotReceiverName, LessorName, or a watch hub:
// WatchHubPrefix followed by its index), for fault-injection tests.
// how is "stop" (protoactor Stop: queued messages are dropped), "poison"
// (queued messages are processed first), "panic" (the actor panics on its
// next message) or "loglost" (it panics as the raft node does when its log
// lost entries it had made durable: with raft.ErrLogLost). Every one makes
// the member fail-stop: Done closes and Err names the actor; Err wraps
// ErrActorStopped or ErrActorFailed, or for "loglost" raft.ErrLogLost,
// which no supervisor restart mends. KillActor returns once the kill is
// sent; it fails for an unknown name or how.
func (m *Member) KillActor(name, how string) error {
	var pid *actor.PID
	switch name {
	case actors.GatewayName:
		pid = m.gatewayPID
	case actors.RaftName:
		pid = m.raftPID
	case actors.WALName:
		pid = m.walPID
	case actors.ApplierName:
		pid = m.applierPID
	case actors.SnapshotReceiverName:
		pid = m.snapPID
	case actors.LessorName:
		pid = m.lessorPID
	default:
		for i, hub := range m.hubPIDs {
			if name == fmt.Sprintf("%s%d", actors.WatchHubPrefix, i) {
				pid = hub
			}
		}
		if pid == nil {
			return fmt.Errorf("kill actor: no actor %q", name)
		}
	}
	switch how {
	case "stop":
		m.system.Root.Stop(pid)
	case "poison":
		m.system.Root.Poison(pid)
	case "panic", "loglost":
		m.system.Root.Send(pid, &killHook{name: name, logLost: how == "loglost"})
	default:
		return fmt.Errorf("kill actor %s: how must be stop, poison, panic or loglost, not %q", name, how)
	}
	return nil
}
