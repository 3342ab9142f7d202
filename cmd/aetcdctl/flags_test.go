package main

import (
	"strings"
	"testing"
	"time"
)

func TestFlagSetParse(t *testing.T) {
	type opts struct {
		prefix    bool
		limit     int64
		out       string
		timeout   time.Duration
		endpoints []string
	}
	parse := func(args ...string) (opts, []string, error) {
		var o opts
		o.out, o.endpoints = "simple", []string{"default:1"}
		fs := newFlagSet()
		fs.Bool(&o.prefix, "prefix", "", "")
		fs.Int64(&o.limit, "limit", "")
		fs.String(&o.out, "write-out", "w", "")
		fs.Duration(&o.timeout, "command-timeout", "")
		fs.StringSlice(&o.endpoints, "endpoints", "")
		pos, err := fs.parse(args)
		return o, pos, err
	}
	tests := []struct {
		args []string
		want opts
		pos  string
	}{
		{[]string{"foo", "--prefix"}, opts{prefix: true, out: "simple", endpoints: []string{"default:1"}}, "foo"},
		{[]string{"--prefix=false", "foo", "bar"}, opts{out: "simple", endpoints: []string{"default:1"}}, "foo bar"},
		{[]string{"--limit", "5", "k", "-w", "json"}, opts{limit: 5, out: "json", endpoints: []string{"default:1"}}, "k"},
		{[]string{"--limit=0x10", "-wjson"}, opts{limit: 16, out: "json", endpoints: []string{"default:1"}}, ""},
		{[]string{"-w=fields", "--command-timeout=2s"}, opts{out: "fields", timeout: 2 * time.Second, endpoints: []string{"default:1"}}, ""},
		{[]string{"--endpoints", "a:1, b:2", "--endpoints=c:3"}, opts{out: "simple", endpoints: []string{"a:1", "b:2", "c:3"}}, ""},
		{[]string{"--", "-k", "--prefix"}, opts{out: "simple", endpoints: []string{"default:1"}}, "-k --prefix"},
		{[]string{"-", "--limit=-1"}, opts{limit: -1, out: "simple", endpoints: []string{"default:1"}}, "-"},
	}
	for _, tt := range tests {
		got, pos, err := parse(tt.args...)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.args, err)
			continue
		}
		if got.prefix != tt.want.prefix || got.limit != tt.want.limit || got.out != tt.want.out ||
			got.timeout != tt.want.timeout || strings.Join(got.endpoints, ",") != strings.Join(tt.want.endpoints, ",") {
			t.Errorf("parse(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
		if strings.Join(pos, " ") != tt.pos {
			t.Errorf("parse(%q) positional = %q, want %q", tt.args, pos, tt.pos)
		}
	}

	// pflag's messages, which etcdctl prints.
	errs := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"-x"}, "unknown shorthand flag: 'x' in -x"},
		{[]string{"-prefix"}, "unknown shorthand flag: 'p' in -prefix"},
		{[]string{"--limit"}, "flag needs an argument: --limit"},
		{[]string{"-w"}, "flag needs an argument: 'w' in -w"},
		{[]string{"--limit=abc"}, `invalid argument "abc" for "--limit" flag: strconv.ParseInt: parsing "abc": invalid syntax`},
		{[]string{"--prefix=maybe"}, `invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"--command-timeout=abc"}, `invalid argument "abc" for "--command-timeout" flag: time: invalid duration "abc"`},
	}
	for _, tt := range errs {
		if _, _, err := parse(tt.args...); err == nil || err.Error() != tt.want {
			t.Errorf("parse(%q) error = %v, want %q", tt.args, err, tt.want)
		}
	}
}
