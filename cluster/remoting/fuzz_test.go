package remoting

import (
	"errors"
	"testing"

	"github.com/aetcd/aetcd/actors"
	"github.com/aetcd/aetcd/messages"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// seedBatch is a corpus batch and whether checkBatch accepts it under
// AllowAetcd alone (plain) and with a member's AllowTarget (member).
type seedBatch struct {
	name          string
	batch         *remote.MessageBatch
	plain, member bool
}

// seedBatches returns well-formed and malformed batches for the corpus.
func seedBatches(tb testing.TB) []seedBatch {
	request := mustMarshal(tb, &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: &messages.PutRequest{Key: []byte("k"), Value: []byte("v")}}})
	raftMsg := mustMarshal(tb, &messages.RaftMessage{Type: messages.RaftMessageType_MSG_APP, To: 2, From: 1, Term: 3, Index: 7,
		Entries: []*messages.Entry{{Term: 3, Index: 8, Data: []byte("e")}}, Commit: 7})
	gateway := &actor.PID{Address: "127.0.0.1:1", Id: actors.GatewayName}
	raft := &actor.PID{Address: "127.0.0.1:1", Id: actors.RaftName}
	sender := &actor.PID{Address: "127.0.0.1:2", Id: "future$e1"}
	good := &remote.MessageBatch{
		TypeNames: []string{"aetcd.ClientRequest", "aetcd.RaftMessage"},
		Targets:   []*actor.PID{gateway, raft},
		Senders:   []*actor.PID{sender},
		Envelopes: []*remote.MessageEnvelope{
			{TypeId: 0, Target: 0, Sender: 1, MessageData: request},
			{TypeId: 1, Target: 1, MessageData: raftMsg},
			{TypeId: 0, Target: 0, MessageData: request, TargetRequestId: 3, SenderRequestId: 4},
		},
	}
	with := func(edit func(b *remote.MessageBatch)) *remote.MessageBatch {
		b := proto.Clone(good).(*remote.MessageBatch)
		edit(b)
		return b
	}
	return []seedBatch{
		{"well formed", good, true, true},
		{"empty", &remote.MessageBatch{}, true, true},
		{"unknown type", with(func(b *remote.MessageBatch) { b.TypeNames[1] = "aetcd.NoSuchMessage" }), false, false},
		{"type outside aetcd", with(func(b *remote.MessageBatch) { b.TypeNames[1] = "google.protobuf.Empty" }), false, false},
		{"type index past the end", with(func(b *remote.MessageBatch) { b.Envelopes[1].TypeId = 2 }), false, false},
		{"negative type index", with(func(b *remote.MessageBatch) { b.Envelopes[1].TypeId = -1 }), false, false},
		{"target index past the end", with(func(b *remote.MessageBatch) { b.Envelopes[1].Target = 2 }), false, false},
		{"negative target index", with(func(b *remote.MessageBatch) { b.Envelopes[1].Target = -1 }), false, false},
		{"sender index past the end", with(func(b *remote.MessageBatch) { b.Envelopes[0].Sender = 2 }), false, false},
		{"negative sender index", with(func(b *remote.MessageBatch) { b.Envelopes[0].Sender = -1 }), false, false},
		{"JSON serializer", with(func(b *remote.MessageBatch) { b.Envelopes[1].SerializerId = 1 }), false, false},
		{"unknown serializer", with(func(b *remote.MessageBatch) { b.Envelopes[1].SerializerId = 7 }), false, false},
		{"truncated message data", with(func(b *remote.MessageBatch) { b.Envelopes[0].MessageData = request[:len(request)-2] }), false, false},
		{"empty target", with(func(b *remote.MessageBatch) { b.Targets[0].Id = "" }), false, false},
		{"request to the WAL writer", with(func(b *remote.MessageBatch) { b.Targets[0].Id = actors.WALName }), true, false},
		{"raft message to the gateway", with(func(b *remote.MessageBatch) { b.Envelopes[1].Target = 0 }), true, false},
		{"system messages", with(func(b *remote.MessageBatch) {
			b.TypeNames = append(b.TypeNames, "actor.Stop", "actor.PoisonPill", "actor.Watch")
			b.Envelopes = append(b.Envelopes,
				&remote.MessageEnvelope{TypeId: 2, MessageData: mustMarshal(tb, &actor.Stop{})},
				&remote.MessageEnvelope{TypeId: 3, MessageData: mustMarshal(tb, &actor.PoisonPill{})},
				&remote.MessageEnvelope{TypeId: 4, MessageData: mustMarshal(tb, &actor.Watch{Watcher: sender})})
		}), false, false},
		{"no targets", &remote.MessageBatch{TypeNames: []string{"aetcd.ClientRequest"}, Envelopes: []*remote.MessageEnvelope{{MessageData: request}}}, false, false},
	}
}

// FuzzCheckBatch feeds arbitrary bytes, decoded as a RemoteMessage and as a
// bare MessageBatch, to checkBatch under the default allow list and under a
// member's AllowTarget. checkBatch must not panic, must reject with
// ErrBadBatch, must give the same answer twice, and a batch it accepts must
// be one protoactor's endpoint reader can process: every index in range,
// serializer 0, an allowed type and target, and every envelope decoding
// (through protoactor's own Deserialize) to its named type, none of them a
// system or auto-receive message.
func FuzzCheckBatch(f *testing.F) {
	seeds := seedBatches(f)
	for _, s := range seeds {
		data := mustMarshal(f, s.batch)
		f.Add(data)
		f.Add(data[:len(data)*2/3]) // a truncated frame
		f.Add(mustMarshal(f, &remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: s.batch}}))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})

	system := actor.NewActorSystem()
	guards := []*guard{
		{system: system, allow: AllowAetcd},
		{system: system, allow: AllowAetcd, allowTarget: actors.AllowRemote},
	}
	// The seeds reach both outcomes under both guards, so the properties
	// below are not checked on rejections alone.
	for _, s := range seeds {
		for i, want := range []bool{s.plain, s.member} {
			if err := guards[i].checkBatch(proto.Clone(s.batch).(*remote.MessageBatch)); (err == nil) != want {
				f.Fatalf("seed %q, guard %d: checkBatch = %v, want accepted %v", s.name, i, err, want)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var batches []*remote.MessageBatch
		var rm remote.RemoteMessage
		if proto.Unmarshal(data, &rm) == nil && rm.GetMessageBatch() != nil {
			batches = append(batches, rm.GetMessageBatch())
		}
		var mb remote.MessageBatch
		if proto.Unmarshal(data, &mb) == nil {
			batches = append(batches, &mb)
		}
		for _, b := range batches {
			for _, g := range guards {
				checkOne(t, g, b)
			}
		}
	})
}

func checkOne(t *testing.T, g *guard, in *remote.MessageBatch) {
	t.Helper()
	b := proto.Clone(in).(*remote.MessageBatch)
	err := g.checkBatch(b)
	again := g.checkBatch(proto.Clone(in).(*remote.MessageBatch))
	if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
		t.Fatalf("checkBatch is not deterministic: %v, then %v", err, again)
	}
	if err != nil {
		if !errors.Is(err, ErrBadBatch) {
			t.Fatalf("rejected with %v, which does not wrap ErrBadBatch", err)
		}
		return
	}
	for i, name := range b.TypeNames {
		if !g.allow(name) {
			t.Fatalf("accepted type %d %q that allow refuses", i, name)
		}
	}
	for i, target := range b.Targets {
		if target.GetId() == "" || target.Address != g.system.Address() {
			t.Fatalf("accepted target %d %v (local address %s)", i, target, g.system.Address())
		}
	}
	for i, env := range b.Envelopes {
		switch {
		case env == nil:
			t.Fatalf("accepted a nil envelope %d", i)
		case env.TypeId < 0 || int(env.TypeId) >= len(b.TypeNames):
			t.Fatalf("accepted envelope %d with type index %d of %d", i, env.TypeId, len(b.TypeNames))
		case env.Target < 0 || int(env.Target) >= len(b.Targets):
			t.Fatalf("accepted envelope %d with target index %d of %d", i, env.Target, len(b.Targets))
		case env.Sender < 0 || int(env.Sender) > len(b.Senders):
			// Sender is 1-based; 0 means none.
			t.Fatalf("accepted envelope %d with sender index %d of %d", i, env.Sender, len(b.Senders))
		case env.Sender > 0 && b.Senders[env.Sender-1] == nil:
			t.Fatalf("accepted envelope %d with a nil sender", i)
		case env.SerializerId != 0:
			t.Fatalf("accepted envelope %d with serializer %d", i, env.SerializerId)
		}
		name := b.TypeNames[env.TypeId]
		if g.allowTarget != nil && !g.allowTarget(b.Targets[env.Target].Id, name) {
			t.Fatalf("accepted envelope %d: %s to %q", i, name, b.Targets[env.Target].Id)
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("accepted envelope %d of unknown type %q", i, name)
		}
		if err := proto.Unmarshal(env.MessageData, mt.New().Interface()); err != nil {
			t.Fatalf("accepted envelope %d whose data does not decode as %s: %v", i, name, err)
		}
		// What the endpoint reader does next, with the library's code.
		msg, err := remote.Deserialize(env.MessageData, name, env.SerializerId)
		if err != nil {
			t.Fatalf("accepted envelope %d that protoactor fails to deserialize: %v", i, err)
		}
		pm, ok := msg.(proto.Message)
		if !ok || string(pm.ProtoReflect().Descriptor().FullName()) != name {
			t.Fatalf("envelope %d deserialized to %T, want %s", i, msg, name)
		}
		switch msg.(type) {
		case actor.SystemMessage, actor.AutoReceiveMessage, *actor.Terminated, remote.RootSerialized:
			t.Fatalf("accepted envelope %d carrying %T, which the endpoint reader treats specially", i, msg)
		}
	}
}
