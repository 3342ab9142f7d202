package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

func TestParseCompare(t *testing.T) {
	cmp := func(key string, result messages.Compare_CompareResult, target messages.Compare_CompareTarget, union any) *messages.Compare {
		c := &messages.Compare{Key: []byte(key), Result: result, Target: target}
		switch u := union.(type) {
		case *messages.Compare_Version:
			c.TargetUnion = u
		case *messages.Compare_CreateRevision:
			c.TargetUnion = u
		case *messages.Compare_ModRevision:
			c.TargetUnion = u
		case *messages.Compare_Value:
			c.TargetUnion = u
		case *messages.Compare_Lease:
			c.TargetUnion = u
		}
		return c
	}
	valid := []struct {
		line string
		want *messages.Compare
	}{
		{`mod("key1") > "0"`, cmp("key1", messages.Compare_GREATER, messages.Compare_MOD, &messages.Compare_ModRevision{ModRevision: 0})},
		{`m("k") = "5"`, cmp("k", messages.Compare_EQUAL, messages.Compare_MOD, &messages.Compare_ModRevision{ModRevision: 5})},
		{`create("k") != "3"`, cmp("k", messages.Compare_NOT_EQUAL, messages.Compare_CREATE, &messages.Compare_CreateRevision{CreateRevision: 3})},
		{`c("k") < "-1"`, cmp("k", messages.Compare_LESS, messages.Compare_CREATE, &messages.Compare_CreateRevision{CreateRevision: -1})},
		{`version("k") = "2"`, cmp("k", messages.Compare_EQUAL, messages.Compare_VERSION, &messages.Compare_Version{Version: 2})},
		{`ver("k") > "10"`, cmp("k", messages.Compare_GREATER, messages.Compare_VERSION, &messages.Compare_Version{Version: 10})},
		{`value("k") = "v 1"`, cmp("k", messages.Compare_EQUAL, messages.Compare_VALUE, &messages.Compare_Value{Value: []byte("v 1")})},
		{`val("k") != ""`, cmp("k", messages.Compare_NOT_EQUAL, messages.Compare_VALUE, &messages.Compare_Value{Value: []byte{}})},
		{`value("k\"q") = "a\tb"`, cmp(`k"q`, messages.Compare_EQUAL, messages.Compare_VALUE, &messages.Compare_Value{Value: []byte("a\tb")})},
		{`lease("k") = "694d77aa9e38260f"`, cmp("k", messages.Compare_EQUAL, messages.Compare_LEASE, &messages.Compare_Lease{Lease: 0x694d77aa9e38260f})},
		{`lease("k") > "0"`, cmp("k", messages.Compare_GREATER, messages.Compare_LEASE, &messages.Compare_Lease{Lease: 0})},
		// etcdctl's Sscanf ignores what follows the value.
		{`value("k5") = "a b" extra`, cmp("k5", messages.Compare_EQUAL, messages.Compare_VALUE, &messages.Compare_Value{Value: []byte("a b")})},
	}
	for _, tt := range valid {
		got, err := parseCompare(tt.line)
		if err != nil {
			t.Errorf("parseCompare(%s): %v", tt.line, err)
			continue
		}
		if !proto.Equal(got, tt.want) {
			t.Errorf("parseCompare(%s) = %v, want %v", tt.line, got, tt.want)
		}
	}

	invalid := []struct{ line, want string }{
		{`bogus`, `malformed comparison: bogus`},
		{`mod(k1) > "0"`, `malformed comparison: mod(k1) > "0"; got mod("")  ""`},
		{`mod("k1") > 0`, `malformed comparison: mod("k1") > 0; got mod("k1") > ""`},
		{`value("k5")="a b"`, `malformed comparison: value("k5")="a b"; got value("k5")  ""`},
		{`mod("k1") > "x"`, `invalid txn compare request: mod("k1") > "x"`},
		{`version("k1") = "1.5"`, `invalid txn compare request: version("k1") = "1.5"`},
		{`lease("k1") = "xyz"`, `invalid txn compare request: lease("k1") = "xyz"`},
		{`foo("k1") > "0"`, `malformed comparison: foo("k1") > "0" (unknown target foo)`},
		{`mod("k1") >> "0"`, `malformed comparison: mod("k1") >> "0" (unknown operator >>)`},
		{`mod("k1") ~ "0"`, `malformed comparison: mod("k1") ~ "0" (unknown operator ~)`},
	}
	for _, tt := range invalid {
		_, err := parseCompare(tt.line)
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseCompare(%s) error = %v, want %q", tt.line, err, tt.want)
		}
		if exitCode(err) != exitInvalidInput {
			t.Errorf("parseCompare(%s) exit code = %d, want %d", tt.line, exitCode(err), exitInvalidInput)
		}
	}
}

func TestParseRequestOp(t *testing.T) {
	rangeOp := func(r *messages.RangeRequest) *messages.RequestOp {
		return &messages.RequestOp{Request: &messages.RequestOp_RequestRange{RequestRange: r}}
	}
	putOp := func(r *messages.PutRequest) *messages.RequestOp {
		return &messages.RequestOp{Request: &messages.RequestOp_RequestPut{RequestPut: r}}
	}
	delOp := func(r *messages.DeleteRangeRequest) *messages.RequestOp {
		return &messages.RequestOp{Request: &messages.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
	}
	valid := []struct {
		line string
		want *messages.RequestOp
	}{
		{`put k1 v1`, putOp(&messages.PutRequest{Key: []byte("k1"), Value: []byte("v1")})},
		{`put key1 "overwrote-key1"`, putOp(&messages.PutRequest{Key: []byte("key1"), Value: []byte("overwrote-key1")})},
		{`put 'k 4' "v\t4" --prev-kv`, putOp(&messages.PutRequest{Key: []byte("k 4"), Value: []byte("v\t4"), PrevKv: true})},
		{`put k --ignore-value --lease=1f`, putOp(&messages.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 0x1f})},
		{`get k1`, rangeOp(&messages.RangeRequest{Key: []byte("k1")})},
		{`get k --prefix --keys-only --limit=2`, rangeOp(&messages.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), KeysOnly: true, Limit: 2})},
		{`get a z --rev 7 --consistency=s`, rangeOp(&messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 7, Serializable: true})},
		{`get k --sort-by=MODIFY --order=DESCEND`, rangeOp(&messages.RangeRequest{Key: []byte("k"), SortTarget: messages.RangeRequest_MOD, SortOrder: messages.RangeRequest_DESCEND})},
		{`get k --count-only`, rangeOp(&messages.RangeRequest{Key: []byte("k"), CountOnly: true})},
		{`del k`, delOp(&messages.DeleteRangeRequest{Key: []byte("k")})},
		{`del k --prefix --prev-kv`, delOp(&messages.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), PrevKv: true})},
		{`del a --from-key`, delOp(&messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}})},
		{`del a b`, delOp(&messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")})},
	}
	for _, tt := range valid {
		got, err := parseRequestOp(tt.line, nil)
		if err != nil {
			t.Errorf("parseRequestOp(%s): %v", tt.line, err)
			continue
		}
		if !proto.Equal(got, tt.want) {
			t.Errorf("parseRequestOp(%s) = %v, want %v", tt.line, got, tt.want)
		}
	}

	invalid := []struct {
		line, want string
		code       int
	}{
		{`get`, `invalid txn compare request: get`, exitInvalidInput},
		{`put`, `invalid txn compare request: put`, exitInvalidInput},
		{`foo k1`, `invalid txn request: foo k1`, exitInvalidInput},
		{`get k1 --bogus`, `invalid txn request: get k1 --bogus`, exitInvalidInput},
		{`put k -w json`, `invalid txn request: put k -w json`, exitInvalidInput},
		{`put k1`, `put command needs 1 argument and input from stdin or 2 arguments`, exitBadArgs},
		{`put k v --ignore-value`, `put command needs only 1 argument when 'ignore-value' is set`, exitBadArgs},
		{`put k v --lease=zz`, `bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`, exitBadArgs},
		{`get k --prefix --from-key`, "`--prefix` and `--from-key` cannot be set at the same time, choose one", exitBadArgs},
		{`get a b --prefix`, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set", exitBadArgs},
		{`get k --sort-by=x`, `bad sort target x`, exitBadFeature},
		{`get k --consistency=x`, `unknown consistency flag "x"`, exitBadFeature},
		{`del a b c`, `del command needs one argument as key and an optional argument as range_end`, exitBadArgs},
		{`put "bad\q" v`, `bad quoted argument "bad\q": invalid syntax`, exitInvalidInput},
	}
	for _, tt := range invalid {
		_, err := parseRequestOp(tt.line, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseRequestOp(%s) error = %v, want %q", tt.line, err, tt.want)
		}
		if exitCode(err) != tt.code {
			t.Errorf("parseRequestOp(%s) exit code = %d, want %d", tt.line, exitCode(err), tt.code)
		}
	}
}

func TestReadTxn(t *testing.T) {
	input := "mod(\"key1\") > \"0\"\n  value(\"key2\") = \"x\"  \n\nput key1 \"overwrote-key1\"\n\nput key1 \"created-key1\"\nput key2 \"some extra key\"\n\n"
	var prompts []string
	got, err := readTxn(bufio.NewReader(strings.NewReader(input)), func(s string) { prompts = append(prompts, s) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &messages.TxnRequest{
		Compare: []*messages.Compare{
			{Key: []byte("key1"), Result: messages.Compare_GREATER, Target: messages.Compare_MOD, TargetUnion: &messages.Compare_ModRevision{}},
			{Key: []byte("key2"), Result: messages.Compare_EQUAL, Target: messages.Compare_VALUE, TargetUnion: &messages.Compare_Value{Value: []byte("x")}},
		},
		Success: []*messages.RequestOp{
			{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte("key1"), Value: []byte("overwrote-key1")}}},
		},
		Failure: []*messages.RequestOp{
			{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte("key1"), Value: []byte("created-key1")}}},
			{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte("key2"), Value: []byte("some extra key")}}},
		},
	}
	if !proto.Equal(got, want) {
		t.Fatalf("readTxn = %v, want %v", got, want)
	}
	wantPrompts := []string{"compares:", "success requests (get, put, del):", "failure requests (get, put, del):"}
	if strings.Join(prompts, "|") != strings.Join(wantPrompts, "|") {
		t.Fatalf("prompts = %q, want %q", prompts, wantPrompts)
	}

	empty, err := readTxn(bufio.NewReader(strings.NewReader("\n\n\n")), nil, nil)
	if err != nil || !proto.Equal(empty, &messages.TxnRequest{}) {
		t.Fatalf("empty txn = %v, %v", empty, err)
	}

	// Every section must end with an empty line, as in etcdctl.
	for _, truncated := range []string{"", `mod("k") > "0"`, "mod(\"k\") > \"0\"\n\nput k v\n", "mod(\"k\") > \"0\"\n\nput k v\n\n", "\n\nput k v"} {
		_, err := readTxn(bufio.NewReader(strings.NewReader(truncated)), nil, nil)
		if err == nil || err.Error() != "EOF" || exitCode(err) != exitInvalidInput {
			t.Errorf("readTxn(%q) error = %v (exit %d), want EOF (exit 3)", truncated, err, exitCode(err))
		}
	}

	// The first bad line is reported.
	_, err = readTxn(bufio.NewReader(strings.NewReader("\nput k v\nbogus line\n\n\n")), nil, nil)
	if err == nil || err.Error() != "invalid txn request: bogus line" {
		t.Errorf("bad request line: %v", err)
	}
	var e *exitErr
	if !errors.As(err, &e) {
		t.Errorf("error %T carries no exit code", err)
	}
}

func TestArgify(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`put k v`, []string{"put", "k", "v"}},
		{`put  k   "a b"  `, []string{"put", "k", "a b"}},
		{`put 'k 4' "v\t4"`, []string{"put", "k 4", "v\t4"}},
		{`put k "say \"hi\""`, []string{"put", "k", `say "hi"`}},
		{`get k --prefix --limit=2`, []string{"get", "k", "--prefix", "--limit=2"}},
		{`put k ''`, []string{"put", "k", ""}},
	}
	for _, tt := range tests {
		got, err := argify(tt.line)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("argify(%s) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}
