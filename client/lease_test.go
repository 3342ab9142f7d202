package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/cluster/remoting/remotingtest"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestLeaseRoundTrip(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	ctx := context.Background()

	g, err := c.Grant(ctx, 60, 0)
	if err != nil || g.GetID() == 0 || g.GetTTL() != 60 {
		t.Fatalf("Grant = %v, %v", g, err)
	}
	if g2, err := c.Grant(ctx, 30, 0x7a); err != nil || g2.GetID() != 0x7a {
		t.Fatalf("Grant with an ID = %v, %v", g2, err)
	}
	if _, err := c.Grant(ctx, 30, 0x7a); status.Code(err) != codes.FailedPrecondition || err.Error() != "etcdserver: lease already exists" {
		t.Fatalf("Grant of a used ID: %v", err)
	}
	if _, err := c.Put(ctx, &messages.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: g.ID}); err != nil {
		t.Fatal(err)
	}

	ttl, err := c.TimeToLive(ctx, g.ID, true)
	if err != nil || ttl.GetTTL() != 60 || ttl.GetGrantedTTL() != 60 || len(ttl.GetKeys()) != 1 || string(ttl.Keys[0]) != "k" {
		t.Fatalf("TimeToLive = %v, %v", ttl, err)
	}
	if ttl, err := c.TimeToLive(ctx, 0x999, false); err != nil || ttl.GetTTL() != -1 {
		t.Fatalf("TimeToLive of an unknown lease = %v, %v; want TTL -1", ttl, err)
	}

	ka, err := c.KeepAliveOnce(ctx, g.ID)
	if err != nil || ka.GetID() != g.ID || ka.GetTTL() != 60 {
		t.Fatalf("KeepAliveOnce = %v, %v", ka, err)
	}
	if _, err := c.KeepAliveOnce(ctx, 0x999); !errors.Is(err, client.ErrLeaseNotFound) || err.Error() != "etcdserver: requested lease not found" {
		t.Fatalf("KeepAliveOnce of an unknown lease: %v", err)
	}

	list, err := c.Leases(ctx)
	if err != nil || len(list.GetLeases()) != 2 {
		t.Fatalf("Leases = %v, %v", list, err)
	}

	if _, err := c.Revoke(ctx, g.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := c.Revoke(ctx, g.ID); !errors.Is(err, client.ErrLeaseNotFound) {
		t.Fatalf("second Revoke: %v, want lease not found", err)
	}
}

func TestKeepAlive(t *testing.T) {
	if remotingtest.Isolate(t) {
		return
	}
	m := kvMember(t)
	c := newClient(t, 5*time.Second, m.addr)
	ctx := context.Background()
	g, err := c.Grant(ctx, 2, 0) // renewed every 666 ms
	if err != nil {
		t.Fatal(err)
	}

	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 3 {
		select {
		case r, ok := <-ch:
			if !ok || r.GetID() != g.ID || r.GetTTL() != 2 {
				t.Fatalf("keep-alive %d: %v, %v", i, r, ok)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("keep-alive %d did not come", i)
		}
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Fatalf("3 keep-alives in %v: not every TTL/3", elapsed)
	}

	// A revoked lease closes the channel.
	if _, err := c.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("the channel of a revoked lease stayed open")
		}
	}

	// Canceling the context closes the channel.
	g, err = c.Grant(ctx, 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	kctx2, cancel2 := context.WithCancel(ctx)
	ch, err = c.KeepAlive(kctx2, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.GetTTL() != 60 {
		t.Fatalf("first keep-alive %v", r)
	}
	cancel2()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a response after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not close the channel")
	}

	// So does closing the client.
	ch, err = c.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	c.Close()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not close the channel")
	}
	if _, err := c.KeepAlive(ctx, g.ID); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("KeepAlive after Close: %v", err)
	}
}
