package client

import (
	"net"
	"testing"
)

func TestDefaultListenAddr(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:2380", "localhost:2380", "[::1]:2380", "127.0.0.5:1"} {
		if got := defaultListenAddr(ep); got != "127.0.0.1:0" {
			t.Errorf("defaultListenAddr(%s) = %s, want 127.0.0.1:0", ep, got)
		}
	}
	// A remote member needs an address it can dial back: the local one
	// that routes to it (or loopback when there is no route).
	got := defaultListenAddr("192.0.2.1:2380")
	host, port, err := net.SplitHostPort(got)
	if err != nil || port != "0" || net.ParseIP(host) == nil {
		t.Errorf("defaultListenAddr(192.0.2.1:2380) = %s", got)
	}
}
