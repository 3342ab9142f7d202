package client_test

import (
	"bytes"
	"testing"

	"github.com/aetcd/aetcd/client"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"foo", "fop"},
		{"a", "b"},
		{"a\xff", "b"},
		{"a\xff\xff", "b"},
		{"a\xfe\xff", "a\xff"},
		{"\xff", "\x00"},
		{"\xff\xff", "\x00"},
		{"", "\x00"},
		{"\x00", "\x01"},
	}
	for _, tt := range tests {
		key := []byte(tt.key)
		got := client.PrefixEnd(key)
		if !bytes.Equal(got, []byte(tt.want)) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tt.key, got, tt.want)
		}
		if string(key) != tt.key {
			t.Errorf("PrefixEnd(%q) modified its argument to %q", tt.key, key)
		}
	}
}
