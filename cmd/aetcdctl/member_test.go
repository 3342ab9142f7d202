package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

// The expected outputs below were produced by etcdctl 3.6.6 against a
// member holding the same members: m1 and an unstarted learner.

var (
	memberHeader = &messages.ResponseHeader{ClusterId: 0xcdf818194e3a8c32, MemberId: 0x8e9e05c52164694d, RaftTerm: 2}
	memberM1     = &messages.Member{ID: 0x8e9e05c52164694d, Name: "m1", PeerURLs: []string{"http://localhost:2380"}, ClientURLs: []string{"http://127.0.0.1:23791"}}
	memberL1     = &messages.Member{ID: 0x4b931359a54dbf87, PeerURLs: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, IsLearner: true}
	memberL2     = &messages.Member{ID: 0x22cdfafbbc62a35f, PeerURLs: []string{"http://127.0.0.1:4"}, IsLearner: true}
	memberListed = &messages.MemberListResponse{Header: memberHeader, Members: []*messages.Member{memberL1, memberM1}}
	memberAdded  = &messages.MemberAddResponse{Header: memberHeader, Member: memberL2, Members: []*messages.Member{memberL2, memberM1}}
)

func TestMemberPrinters(t *testing.T) {
	const m1JSON = `{"ID":10276657743932975437,"name":"m1","peerURLs":["http://localhost:2380"],"clientURLs":["http://127.0.0.1:23791"]}`
	const headerJSON = `{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"raft_term":2}`
	tests := []struct {
		name   string
		format string
		hex    bool
		print  func(printer) error
		want   string
	}{
		{"list simple", "simple", false, func(p printer) error { return p.MemberList(memberListed) },
			"4b931359a54dbf87, unstarted, , http://127.0.0.1:1,http://127.0.0.1:2, , true\n" +
				"8e9e05c52164694d, started, m1, http://localhost:2380, http://127.0.0.1:23791, false\n"},
		{"list json", "json", false, func(p printer) error { return p.MemberList(memberListed) },
			headerJSON + `,"members":[{"ID":5445717650167414663,"peerURLs":["http://127.0.0.1:1","http://127.0.0.1:2"],"isLearner":true},` + m1JSON + "]}\n"},
		{"list json hex", "json", true, func(p printer) error { return p.MemberList(memberListed) },
			`{"header":{"cluster_id":"cdf818194e3a8c32","member_id":"8e9e05c52164694d","raft_term":2},"members":[{"ID":"4b931359a54dbf87","name":"","peerURLs":["http://127.0.0.1:1","http://127.0.0.1:2"],"clientURLs":null},{"ID":"8e9e05c52164694d","name":"m1","peerURLs":["http://localhost:2380"],"clientURLs":["http://127.0.0.1:23791"]}]}` + "\n"},
		{"list json hex no members", "json", true, func(p printer) error { return p.MemberList(&messages.MemberListResponse{}) },
			`{"header":{"cluster_id":"0","member_id":"0","raft_term":0}}` + "\n"},
		{"list fields", "fields", false, func(p printer) error { return p.MemberList(memberListed) },
			`"ClusterID" : 14841639068965178418
"MemberID" : 10276657743932975437
"RaftTerm" : 2
"ID" : 5445717650167414663
"Name" : ""
"PeerURL" : "http://127.0.0.1:1"
"PeerURL" : "http://127.0.0.1:2"
"IsLearner" : true

"ID" : 10276657743932975437
"Name" : "m1"
"PeerURL" : "http://localhost:2380"
"ClientURL" : "http://127.0.0.1:23791"
"IsLearner" : false

`},
		{"list fields hex", "fields", true, func(p printer) error { return p.MemberList(memberListed) },
			`"ClusterID" : cdf818194e3a8c32
"MemberID" : 8e9e05c52164694d
"RaftTerm" : 2
"ID" : 4b931359a54dbf87
"Name" : ""
"PeerURL" : "http://127.0.0.1:1"
"PeerURL" : "http://127.0.0.1:2"
"IsLearner" : true

"ID" : 8e9e05c52164694d
"Name" : "m1"
"PeerURL" : "http://localhost:2380"
"ClientURL" : "http://127.0.0.1:23791"
"IsLearner" : false

`},
		{"list table", "table", false, func(p printer) error { return p.MemberList(memberListed) },
			`+------------------+-----------+------+---------------------------------------+------------------------+------------+
|        ID        |  STATUS   | NAME |              PEER ADDRS               |      CLIENT ADDRS      | IS LEARNER |
+------------------+-----------+------+---------------------------------------+------------------------+------------+
| 4b931359a54dbf87 | unstarted |      | http://127.0.0.1:1,http://127.0.0.1:2 |                        |       true |
| 8e9e05c52164694d |   started |   m1 |                 http://localhost:2380 | http://127.0.0.1:23791 |      false |
+------------------+-----------+------+---------------------------------------+------------------------+------------+
`},
		{"add simple", "simple", false, func(p printer) error { return p.MemberAdd(memberAdded) },
			"Member 22cdfafbbc62a35f added as learner to cluster cdf818194e3a8c32\n"},
		{"add simple voter", "simple", false, func(p printer) error {
			return p.MemberAdd(&messages.MemberAddResponse{Header: memberHeader, Member: &messages.Member{ID: 0x5a}})
		}, "Member               5a added to cluster cdf818194e3a8c32\n"},
		{"add json", "json", false, func(p printer) error { return p.MemberAdd(memberAdded) },
			headerJSON + `,"member":{"ID":2507936526619550559,"peerURLs":["http://127.0.0.1:4"],"isLearner":true},"members":[{"ID":2507936526619550559,"peerURLs":["http://127.0.0.1:4"],"isLearner":true},` + m1JSON + "]}\n"},
		{"remove simple", "simple", false, func(p printer) error {
			return p.MemberRemove(0x4b931359a54dbf87, &messages.MemberRemoveResponse{Header: memberHeader})
		}, "Member 4b931359a54dbf87 removed from cluster cdf818194e3a8c32\n"},
		{"remove json", "json", false, func(p printer) error {
			return p.MemberRemove(0x4b931359a54dbf87, &messages.MemberRemoveResponse{Header: memberHeader, Members: []*messages.Member{memberM1}})
		}, headerJSON + `,"members":[` + m1JSON + "]}\n"},
		{"update simple", "simple", false, func(p printer) error {
			return p.MemberUpdate(0x4b931359a54dbf87, &messages.MemberUpdateResponse{Header: memberHeader})
		}, "Member 4b931359a54dbf87 updated in cluster cdf818194e3a8c32\n"},
		{"update json", "json", false, func(p printer) error {
			l1 := &messages.Member{ID: memberL1.ID, PeerURLs: []string{"http://127.0.0.1:3"}, IsLearner: true}
			return p.MemberUpdate(l1.ID, &messages.MemberUpdateResponse{Header: memberHeader, Members: []*messages.Member{l1, memberM1}})
		}, headerJSON + `,"members":[{"ID":5445717650167414663,"peerURLs":["http://127.0.0.1:3"],"isLearner":true},` + m1JSON + "]}\n"},
		{"promote simple", "simple", false, func(p printer) error {
			return p.MemberPromote(0x4b931359a54dbf87, &messages.MemberPromoteResponse{Header: memberHeader})
		}, "Member 4b931359a54dbf87 promoted in cluster cdf818194e3a8c32\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.print(newPrinter(tt.format, tt.hex, &out)); err != nil {
				t.Fatalf("print: %v", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestMemberPrinterFormats(t *testing.T) {
	remove := &messages.MemberRemoveResponse{Header: memberHeader, Members: []*messages.Member{memberM1}}
	prints := map[string]func(printer) error{
		"list":   func(p printer) error { return p.MemberList(memberListed) },
		"add":    func(p printer) error { return p.MemberAdd(memberAdded) },
		"remove": func(p printer) error { return p.MemberRemove(1, remove) },
		"update": func(p printer) error { return p.MemberUpdate(1, &messages.MemberUpdateResponse{Header: memberHeader}) },
		"promote": func(p printer) error {
			return p.MemberPromote(1, &messages.MemberPromoteResponse{Header: memberHeader})
		},
	}
	for _, format := range []string{"simple", "json", "protobuf", "fields", "table"} {
		for cmd, print := range prints {
			err := print(newPrinter(format, false, &bytes.Buffer{}))
			supported := cmd == "list" || format == "simple" || format == "json" || format == "protobuf"
			if supported != (err == nil) {
				t.Errorf("%s printer for member %s: %v", format, cmd, err)
			}
			var e *exitErr
			if err != nil && (!errors.As(err, &e) || e.code != exitBadFeature || err.Error() != format+" not supported as output format") {
				t.Errorf("%s printer error = %v, want etcdctl's", format, err)
			}
		}
	}

	var out bytes.Buffer
	if err := newPrinter("protobuf", false, &out).MemberRemove(1, remove); err != nil {
		t.Fatal(err)
	}
	got := &messages.MemberRemoveResponse{}
	if err := proto.Unmarshal(out.Bytes(), got); err != nil || !proto.Equal(got, remove) {
		t.Fatalf("protobuf decoded %v (%v), want %v", got, err, remove)
	}
}

func memberAnswer(r any) *messages.ClientResponse {
	switch r := r.(type) {
	case *messages.MemberAddResponse:
		return &messages.ClientResponse{Response: &messages.ClientResponse_MemberAdd{MemberAdd: r}}
	case *messages.MemberRemoveResponse:
		return &messages.ClientResponse{Response: &messages.ClientResponse_MemberRemove{MemberRemove: r}}
	case *messages.MemberUpdateResponse:
		return &messages.ClientResponse{Response: &messages.ClientResponse_MemberUpdate{MemberUpdate: r}}
	case *messages.MemberPromoteResponse:
		return &messages.ClientResponse{Response: &messages.ClientResponse_MemberPromote{MemberPromote: r}}
	case *messages.MemberListResponse:
		return &messages.ClientResponse{Response: &messages.ClientResponse_MemberList{MemberList: r}}
	}
	panic("not a member response")
}

func TestMemberCommands(t *testing.T) {
	tests := []struct {
		args   []string
		answer any
		want   proto.Message
		stdout string
	}{
		{[]string{"member", "list"}, memberListed,
			&messages.MemberListRequest{Linearizable: true}, "4b931359a54dbf87, unstarted"},
		{[]string{"member", "list", "--consistency=s", "-w", "table"}, memberListed,
			&messages.MemberListRequest{}, "| IS LEARNER |"},
		{[]string{"member", "-w", "json", "list", "extra"}, memberListed,
			&messages.MemberListRequest{Linearizable: true}, `{"header":`},
		{[]string{"member", "add", "l2", "--peer-urls=http://127.0.0.1:4", "--learner"}, memberAdded,
			&messages.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:4"}, IsLearner: true},
			"Member 22cdfafbbc62a35f added as learner to cluster cdf818194e3a8c32\n\nETCD_NAME=\"l2\"\n" +
				"ETCD_INITIAL_CLUSTER=\"l2=http://127.0.0.1:4,m1=http://localhost:2380\"\n" +
				"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:4\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"},
		// The URLs are sent as given and printed as given.
		{[]string{"member", "add", "l1", "--peer-urls", "http://127.0.0.1:1, http://127.0.0.1:2"},
			&messages.MemberAddResponse{Header: memberHeader, Member: memberL1, Members: []*messages.Member{memberL1, memberM1}},
			&messages.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:1", " http://127.0.0.1:2"}},
			"ETCD_INITIAL_CLUSTER=\"l1=http://127.0.0.1:1,l1=http://127.0.0.1:2,m1=http://localhost:2380\"\n" +
				"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:1, http://127.0.0.1:2\"\n"},
		{[]string{"member", "add", "l2", "--peer-urls=http://127.0.0.1:4", "--learner", "-w", "json"}, memberAdded,
			&messages.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:4"}, IsLearner: true}, `"member":{"ID":2507936526619550559,`},
		{[]string{"member", "remove", "4b931359a54dbf87"}, &messages.MemberRemoveResponse{Header: memberHeader},
			&messages.MemberRemoveRequest{ID: 0x4b931359a54dbf87}, "Member 4b931359a54dbf87 removed from cluster cdf818194e3a8c32\n"},
		{[]string{"member", "update", "5a", "--peer-urls=unix://x"}, &messages.MemberUpdateResponse{Header: memberHeader},
			&messages.MemberUpdateRequest{ID: 0x5a, PeerURLs: []string{"unix://x"}}, "Member               5a updated in cluster cdf818194e3a8c32\n"},
		{[]string{"member", "promote", "4B931359A54DBF87"}, &messages.MemberPromoteResponse{Header: memberHeader},
			&messages.MemberPromoteRequest{ID: 0x4b931359a54dbf87}, "Member 4b931359a54dbf87 promoted in cluster cdf818194e3a8c32\n"},
	}
	for _, tt := range tests {
		kv := &fakeKV{member: memberAnswer(tt.answer)}
		r := runMain(t, kv, "", nil, tt.args...)
		if r.err != nil {
			t.Errorf("%q: %v", tt.args, r.err)
			continue
		}
		if len(kv.requests) != 1 {
			t.Errorf("%q sent %v", tt.args, kv.requests)
			continue
		}
		var got proto.Message
		switch req := kv.requests[0].(*messages.ClientRequest).GetRequest().(type) {
		case *messages.ClientRequest_MemberList:
			got = req.MemberList
		case *messages.ClientRequest_MemberAdd:
			got = req.MemberAdd
		case *messages.ClientRequest_MemberRemove:
			got = req.MemberRemove
		case *messages.ClientRequest_MemberUpdate:
			got = req.MemberUpdate
		case *messages.ClientRequest_MemberPromote:
			got = req.MemberPromote
		}
		if !proto.Equal(got, tt.want) {
			t.Errorf("%q sent %v, want %v", tt.args, got, tt.want)
		}
		if !strings.Contains(r.stdout, tt.stdout) {
			t.Errorf("%q printed %q, want it to contain %q", tt.args, r.stdout, tt.stdout)
		}
		if !kv.closed {
			t.Errorf("%q did not close the client", tt.args)
		}
	}
}

func TestMemberCommandErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
		code int
		sent bool // the request is sent before the error
	}{
		{[]string{"member", "add"}, "member name not provided", exitBadArgs, false},
		{[]string{"member", "add", "a", "http://x:1", "HTTP://y:2"}, "too many arguments, did you mean --peer-urls=http://x:1, did you mean --peer-urls=HTTP://y:2", exitBadArgs, false},
		{[]string{"member", "add", "a", "b"}, "too many arguments", exitBadArgs, false},
		{[]string{"member", "add", "a"}, "member peer urls not provided", exitBadArgs, false},
		{[]string{"member", "add", "a", "--peer-urls=http://x:1", "-w", "xml"}, "unsupported output format", exitBadFeature, false},
		{[]string{"member", "add", "a", "--peer-urls=foo"}, "URL scheme must be http, https, unix, or unixs: foo", exitError, false},
		{[]string{"member", "add", "a", "--peer-urls=http://x:1,http://x"}, `URL address does not have the form "host:port": http://x`, exitError, false},
		{[]string{"member", "add", "a", "--peer-urls=https://x:1/p"}, "URL must not contain a path: https://x:1/p", exitError, false},
		{[]string{"member", "add", "a", "--peer-urls=http://[::1"}, `parse "http://[::1": missing ']' in host`, exitError, false},
		{[]string{"member", "add", "a", "--peer-urls=http://x:1", "-w", "fields"}, "fields not supported as output format", exitBadFeature, true},
		{[]string{"member", "add", "a", "--peer-urls=http://x:1", "--consistency=s"}, "unknown flag: --consistency", exitError, false},
		{[]string{"member", "remove"}, "member ID is not provided", exitBadArgs, false},
		{[]string{"member", "remove", "zz"}, `bad member ID arg (strconv.ParseUint: parsing "zz": invalid syntax), expecting ID in Hex`, exitBadArgs, false},
		{[]string{"member", "remove", "1", "-w", "table"}, "table not supported as output format", exitBadFeature, true},
		{[]string{"member", "update", "1"}, "member peer urls not provided", exitBadArgs, false},
		{[]string{"member", "update", "x", "--peer-urls=http://x:1"}, `bad member ID arg (strconv.ParseUint: parsing "x": invalid syntax), expecting ID in Hex`, exitBadArgs, false},
		{[]string{"member", "update", "1", "--peer-urls=ftp://x:1"}, "URL scheme must be http, https, unix, or unixs: ftp://x:1", exitError, false},
		{[]string{"member", "promote", "1", "2"}, "member ID is not provided", exitBadArgs, false},
		{[]string{"member", "promote", "1", "-w", "fields"}, "fields not supported as output format", exitBadFeature, true},
		{[]string{"member", "list", "--consistency=x"}, `unknown consistency flag "l"`, exitBadFeature, false},
	}
	answers := map[string]any{
		"add":     memberAdded,
		"remove":  &messages.MemberRemoveResponse{Header: memberHeader},
		"promote": &messages.MemberPromoteResponse{Header: memberHeader},
		"update":  &messages.MemberUpdateResponse{Header: memberHeader},
		"list":    memberListed,
	}
	for _, tt := range tests {
		kv := &fakeKV{member: memberAnswer(answers[tt.args[1]])}
		r := runMain(t, kv, "", nil, tt.args...)
		if r.err == nil || r.err.Error() != tt.want || exitCode(r.err) != tt.code {
			t.Errorf("%q: error %v (exit %d), want %q (exit %d)", tt.args, r.err, exitCode(r.err), tt.want, tt.code)
		}
		if sent := len(kv.requests) > 0; sent != tt.sent {
			t.Errorf("%q: request sent = %v", tt.args, sent)
		}
	}

	// A member's error is printed as etcdctl prints it.
	kv := &fakeKV{err: &client.Error{Code: 9, Message: "etcdserver: can only promote a learner member which is in sync with leader"}}
	r := runMain(t, kv, "", nil, "member", "promote", "1")
	if r.err == nil || r.err.Error() != kv.err.Error() || exitCode(r.err) != exitError || r.stdout != "" {
		t.Fatalf("member error: %v (exit %d), stdout %q", r.err, exitCode(r.err), r.stdout)
	}
	// An answer of another kind is an error.
	kv = &fakeKV{member: memberAnswer(memberListed)}
	if r := runMain(t, kv, "", nil, "member", "remove", "1"); r.err == nil || r.stdout != "" {
		t.Fatalf("a list answer to remove: %v, stdout %q", r.err, r.stdout)
	}
}

func TestMemberGroupUsage(t *testing.T) {
	for _, args := range [][]string{{"member"}, {"member", "bogus"}, {"member", "-h"}} {
		r := runMain(t, &fakeKV{}, "", nil, args...)
		if r.err != nil || !strings.Contains(r.stdout, "member <subcommand>") || !strings.Contains(r.stdout, "promote") {
			t.Errorf("%q: %v, stdout %q", args, r.err, r.stdout)
		}
	}
	r := runMain(t, &fakeKV{}, "", nil, "member", "add", "-h")
	if r.err != errHelp || !strings.Contains(r.stdout, "--peer-urls") || !strings.Contains(r.stdout, "member add <memberName>") {
		t.Errorf("member add -h: %v, stdout %q", r.err, r.stdout)
	}
	r = runMain(t, &fakeKV{}, "", nil, "--help")
	if !strings.Contains(r.stdout, "member       Membership related commands") || strings.Contains(r.stdout, "member add") {
		t.Errorf("usage lists groups, not their subcommands: %q", r.stdout)
	}
}
