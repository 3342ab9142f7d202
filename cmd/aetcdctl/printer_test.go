package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

// The expected outputs below were produced by etcdctl 3.6.6 against
// etcd 3.6.6 holding the same data.

var testHeader = &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 11, RaftTerm: 2}

func kv(key, value string, create, mod, version int64) *messages.KeyValue {
	return &messages.KeyValue{Key: []byte(key), Value: []byte(value), CreateRevision: create, ModRevision: mod, Version: version}
}

var (
	rangeTwo = &messages.RangeResponse{
		Header: testHeader,
		Kvs:    []*messages.KeyValue{kv("foo", "bar", 2, 11, 8), kv("foo2", "bar 2", 3, 3, 1)},
		Count:  2,
	}
	rangeLimited = &messages.RangeResponse{
		Header: testHeader,
		Kvs:    []*messages.KeyValue{kv("foo", "bar", 2, 11, 8)},
		More:   true,
		Count:  2,
	}
	rangeEmpty = &messages.RangeResponse{Header: testHeader}
	putPlain   = &messages.PutResponse{Header: &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 5, RaftTerm: 2}}
	putPrev    = &messages.PutResponse{
		Header: &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 8, RaftTerm: 2},
		PrevKv: kv("foo", "baz", 2, 7, 5),
	}
	delPrev = &messages.DeleteRangeResponse{
		Header:  &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 13, RaftTerm: 2},
		Deleted: 1,
		PrevKvs: []*messages.KeyValue{kv("k1", "from stdin\n", 10, 10, 1)},
	}
	delNone = &messages.DeleteRangeResponse{Header: &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 12, RaftTerm: 2}}
	txnOK   = &messages.TxnResponse{
		Header:    &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 20, RaftTerm: 2},
		Succeeded: true,
		Responses: []*messages.ResponseOp{
			{Response: &messages.ResponseOp_ResponsePut{ResponsePut: &messages.PutResponse{
				Header: &messages.ResponseHeader{Revision: 20}, PrevKv: kv("k1", "new v1", 15, 19, 3)}}},
			{Response: &messages.ResponseOp_ResponseRange{ResponseRange: &messages.RangeResponse{
				Header: &messages.ResponseHeader{Revision: 20}, Kvs: []*messages.KeyValue{kv("k1", "new v1", 15, 20, 4)}, Count: 1}}},
			{Response: &messages.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &messages.DeleteRangeResponse{
				Header: &messages.ResponseHeader{Revision: 20}, Deleted: 1, PrevKvs: []*messages.KeyValue{kv("k2", "v2", 16, 18, 2)}}}},
		},
	}
	txnFailed = &messages.TxnResponse{
		Header: &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 21, RaftTerm: 2},
		Responses: []*messages.ResponseOp{
			{Response: &messages.ResponseOp_ResponseRange{ResponseRange: &messages.RangeResponse{
				Header: &messages.ResponseHeader{Revision: 20}, Kvs: []*messages.KeyValue{kv("k1", "new v1", 15, 20, 4)}, Count: 1}}},
			{Response: &messages.ResponseOp_ResponsePut{ResponsePut: &messages.PutResponse{Header: &messages.ResponseHeader{Revision: 21}}}},
		},
	}
	status = []endpointStatus{{Endpoint: "127.0.0.1:32379", Status: &messages.StatusResponse{
		Header:  &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 14, RaftTerm: 2},
		Version: "3.6.6", DbSize: 20480, Leader: 443629905751424238, RaftIndex: 26, RaftTerm: 2, RaftAppliedIndex: 26,
		DbSizeInUse: 16384, StorageVersion: "3.6.0", DbSizeQuota: 2147483648, DowngradeInfo: &messages.DowngradeInfo{},
	}}}
)

func TestPrinters(t *testing.T) {
	tests := []struct {
		name      string
		format    string
		hex       bool
		valueOnly bool
		print     func(printer) error
		want      string
	}{
		{"get simple", "simple", false, false, func(p printer) error { return p.Get(rangeTwo) },
			"foo\nbar\nfoo2\nbar 2\n"},
		{"get simple value only", "simple", false, true, func(p printer) error { return p.Get(rangeTwo) },
			"bar\nbar 2\n"},
		{"get simple hex", "simple", true, false, func(p printer) error { return p.Get(rangeLimited) },
			`\x66\x6f\x6f` + "\n" + `\x62\x61\x72` + "\n"},
		{"get simple empty", "simple", false, false, func(p printer) error { return p.Get(rangeEmpty) }, ""},
		{"get simple keys only", "simple", false, false, func(p printer) error {
			return p.Get(&messages.RangeResponse{Header: testHeader, Kvs: []*messages.KeyValue{{Key: []byte("foo")}, {Key: []byte("foo2")}}, Count: 2})
		}, "foo\n\nfoo2\n\n"},
		{"get json", "json", false, false, func(p printer) error { return p.Get(rangeTwo) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":11,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":11,"version":8,"value":"YmFy"},{"key":"Zm9vMg==","create_revision":3,"mod_revision":3,"version":1,"value":"YmFyIDI="}],"count":2}` + "\n"},
		{"get json more", "json", false, false, func(p printer) error { return p.Get(rangeLimited) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":11,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":11,"version":8,"value":"YmFy"}],"more":true,"count":2}` + "\n"},
		{"get json empty", "json", false, false, func(p printer) error { return p.Get(rangeEmpty) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":11,"raft_term":2}}` + "\n"},
		{"get fields", "fields", false, false, func(p printer) error { return p.Get(rangeLimited) },
			`"ClusterID" : 13455796455940752355
"MemberID" : 443629905751424238
"Revision" : 11
"RaftTerm" : 2
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 11
"Version" : 8
"Value" : "bar"
"Lease" : 0
"More" : true
"Count" : 2
`},
		{"get fields count only hex", "fields", true, false, func(p printer) error {
			return p.Get(&messages.RangeResponse{Header: &messages.ResponseHeader{ClusterId: 13455796455940752355, MemberId: 443629905751424238, Revision: 10, RaftTerm: 2}})
		}, `"ClusterID" : babc9795b64f03e3
"MemberID" : 628170c800dbcee
"Revision" : 10
"RaftTerm" : 2
"More" : false
"Count" : 0
`},
		{"put simple", "simple", false, false, func(p printer) error { return p.Put(putPlain) }, "OK\n"},
		{"put simple prev", "simple", false, false, func(p printer) error { return p.Put(putPrev) }, "OK\nfoo\nbaz\n"},
		{"put json", "json", false, false, func(p printer) error { return p.Put(putPlain) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":5,"raft_term":2}}` + "\n"},
		{"put json prev", "json", false, false, func(p printer) error {
			return p.Put(&messages.PutResponse{Header: putPrev.Header, PrevKv: kv("foo", "baz", 2, 6, 4)})
		}, `{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":8,"raft_term":2},"prev_kv":{"key":"Zm9v","create_revision":2,"mod_revision":6,"version":4,"value":"YmF6"}}` + "\n"},
		{"put fields prev", "fields", false, false, func(p printer) error { return p.Put(putPrev) },
			`"ClusterID" : 13455796455940752355
"MemberID" : 443629905751424238
"Revision" : 8
"RaftTerm" : 2
"PrevKey" : "foo"
"PrevCreateRevision" : 2
"PrevModRevision" : 7
"PrevVersion" : 5
"PrevValue" : "baz"
"PrevLease" : 0
`},
		{"del simple prev", "simple", false, false, func(p printer) error { return p.Del(delPrev) }, "1\nk1\nfrom stdin\n\n"},
		{"del simple none", "simple", false, false, func(p printer) error { return p.Del(delNone) }, "0\n"},
		{"del json none", "json", false, false, func(p printer) error { return p.Del(delNone) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":12,"raft_term":2}}` + "\n"},
		{"del fields", "fields", false, false, func(p printer) error { return p.Del(delPrev) },
			`"ClusterID" : 13455796455940752355
"MemberID" : 443629905751424238
"Revision" : 13
"RaftTerm" : 2
"Deleted" : 1
"PrevKey" : "k1"
"PrevCreateRevision" : 10
"PrevModRevision" : 10
"PrevVersion" : 1
"PrevValue" : "from stdin\n"
"PrevLease" : 0
`},
		{"txn simple", "simple", false, false, func(p printer) error { return p.Txn(txnOK) },
			"SUCCESS\n\nOK\nk1\nnew v1\n\nk1\nnew v1\n\n1\nk2\nv2\n"},
		{"txn simple failure", "simple", false, false, func(p printer) error { return p.Txn(txnFailed) },
			"FAILURE\n\nk1\nnew v1\n\nOK\n"},
		{"txn simple empty", "simple", false, false, func(p printer) error { return p.Txn(&messages.TxnResponse{Succeeded: true}) },
			"SUCCESS\n"},
		{"txn json", "json", false, false, func(p printer) error { return p.Txn(txnOK) },
			`{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":20,"raft_term":2},"succeeded":true,"responses":[{"Response":{"response_put":{"header":{"revision":20},"prev_kv":{"key":"azE=","create_revision":15,"mod_revision":19,"version":3,"value":"bmV3IHYx"}}}},{"Response":{"response_range":{"header":{"revision":20},"kvs":[{"key":"azE=","create_revision":15,"mod_revision":20,"version":4,"value":"bmV3IHYx"}],"count":1}}},{"Response":{"response_delete_range":{"header":{"revision":20},"deleted":1,"prev_kvs":[{"key":"azI=","create_revision":16,"mod_revision":18,"version":2,"value":"djI="}]}}}]}` + "\n"},
		{"txn fields", "fields", false, false, func(p printer) error { return p.Txn(txnFailed) },
			`"ClusterID" : 13455796455940752355
"MemberID" : 443629905751424238
"Revision" : 21
"RaftTerm" : 2
"Succeeded" : false
"ClusterID" : 0
"MemberID" : 0
"Revision" : 20
"RaftTerm" : 0
"Key" : "k1"
"CreateRevision" : 15
"ModRevision" : 20
"Version" : 4
"Value" : "new v1"
"Lease" : 0
"More" : false
"Count" : 1
"ClusterID" : 0
"MemberID" : 0
"Revision" : 21
"RaftTerm" : 0
`},
		{"status simple", "simple", false, false, func(p printer) error { return p.EndpointStatus(status) },
			"127.0.0.1:32379, 628170c800dbcee, 3.6.6, 3.6.0, 20 kB, 16 kB, 20%, 2.1 GB, true, false, 2, 26, 26, , , false\n"},
		{"status json", "json", false, false, func(p printer) error { return p.EndpointStatus(status) },
			`[{"Endpoint":"127.0.0.1:32379","Status":{"header":{"cluster_id":13455796455940752355,"member_id":443629905751424238,"revision":14,"raft_term":2},"version":"3.6.6","dbSize":20480,"leader":443629905751424238,"raftIndex":26,"raftTerm":2,"raftAppliedIndex":26,"dbSizeInUse":16384,"storageVersion":"3.6.0","dbSizeQuota":2147483648,"downgradeInfo":{}}}]` + "\n"},
		{"status json none", "json", false, false, func(p printer) error { return p.EndpointStatus(nil) }, "null\n"},
		{"status table", "table", false, false, func(p printer) error { return p.EndpointStatus(status) },
			`+-----------------+-----------------+---------+-----------------+---------+--------+-----------------------+--------+-----------+------------+-----------+------------+--------------------+--------+--------------------------+-------------------+
|    ENDPOINT     |       ID        | VERSION | STORAGE VERSION | DB SIZE | IN USE | PERCENTAGE NOT IN USE | QUOTA  | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS | DOWNGRADE TARGET VERSION | DOWNGRADE ENABLED |
+-----------------+-----------------+---------+-----------------+---------+--------+-----------------------+--------+-----------+------------+-----------+------------+--------------------+--------+--------------------------+-------------------+
| 127.0.0.1:32379 | 628170c800dbcee |   3.6.6 |           3.6.0 |   20 kB |  16 kB |                   20% | 2.1 GB |      true |      false |         2 |         26 |                 26 |        |                          |             false |
+-----------------+-----------------+---------+-----------------+---------+--------+-----------------------+--------+-----------+------------+-----------+------------+--------------------+--------+--------------------------+-------------------+
`},
		{"status fields", "fields", false, false, func(p printer) error { return p.EndpointStatus(status) },
			`"ClusterID" : 13455796455940752355
"MemberID" : 443629905751424238
"Revision" : 14
"RaftTerm" : 2
"Version" : "3.6.6"
"StorageVersion" : "3.6.0"
"DBSize" : 20480
"DBSizeInUse" : 16384
"DBSizeQuota" : 2147483648
"Leader" : 443629905751424238
"IsLearner" : false
"RaftIndex" : 26
"RaftTerm" : 2
"RaftAppliedIndex" : 26
"Errors" : []
"Endpoint" : "127.0.0.1:32379"
"DowngradeTargetVersion" : ""
"DowngradeEnabled" : false

`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := newPrinter(tt.format, tt.hex, &out)
			if sp, ok := p.(*simplePrinter); ok {
				sp.valueOnly = tt.valueOnly
			}
			if err := tt.print(p); err != nil {
				t.Fatalf("print: %v", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestProtobufPrinterWritesWireBytes(t *testing.T) {
	var out bytes.Buffer
	if err := newPrinter("protobuf", false, &out).Get(rangeLimited); err != nil {
		t.Fatal(err)
	}
	got := &messages.RangeResponse{}
	if err := proto.Unmarshal(out.Bytes(), got); err != nil || !proto.Equal(got, rangeLimited) {
		t.Fatalf("decoded %v (%v), want %v", got, err, rangeLimited)
	}
}

func TestUnsupportedFormats(t *testing.T) {
	tests := []struct {
		format, kind string
		supported    bool
		print        func(printer) error
	}{
		{"table", outKV, false, func(p printer) error { return p.Get(rangeTwo) }},
		{"table", outKV, false, func(p printer) error { return p.Txn(txnOK) }},
		{"table", outStatus, true, func(p printer) error { return p.EndpointStatus(status) }},
		{"protobuf", outKV, true, func(p printer) error { return p.Put(putPlain) }},
		{"protobuf", outStatus, false, func(p printer) error { return p.EndpointStatus(status) }},
		{"json", outKV, true, func(p printer) error { return p.Del(delNone) }},
		{"fields", outStatus, true, func(p printer) error { return p.EndpointStatus(status) }},
	}
	for _, tt := range tests {
		if got := supports(tt.format, tt.kind); got != tt.supported {
			t.Errorf("supports(%s, %s) = %v, want %v", tt.format, tt.kind, got, tt.supported)
		}
		err := tt.print(newPrinter(tt.format, false, &bytes.Buffer{}))
		if tt.supported != (err == nil) {
			t.Errorf("%s printer for %s: %v", tt.format, tt.kind, err)
		}
		var e *exitErr
		if err != nil && (!errors.As(err, &e) || e.code != exitBadFeature || err.Error() != tt.format+" not supported as output format") {
			t.Errorf("%s printer error = %v, want etcdctl's", tt.format, err)
		}
	}
	if newPrinter("xml", false, &bytes.Buffer{}) != nil {
		t.Error("unknown format xml has a printer")
	}
}

func TestHumanizeBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"}, {9, "9 B"}, {10, "10 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {1049, "1.0 kB"},
		{1050, "1.1 kB"}, {9999, "10 kB"}, {16384, "16 kB"}, {20480, "20 kB"}, {2147483648, "2.1 GB"},
		{8589934592, "8.6 GB"}, {1 << 62, "4.6 EB"},
	}
	for _, tt := range tests {
		if got := humanizeBytes(tt.in); got != tt.want {
			t.Errorf("humanizeBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRenderTable compares with tables that tablewriter v0.0.5 (etcdctl's)
// rendered with etcdctl's settings.
func TestRenderTable(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{"wrapping", []string{"endpoint", "errors"}, [][]string{
			{"10.0.0.1:2380", "memberID:1234 alarm:NOSPACE, memberID:5678 alarm:CORRUPT"},
			{"10.0.0.2:2380", ""},
			{"a-very-long-endpoint-name-without-spaces.example.com:2380", "x"},
			{"two\nlines", "a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6"},
		}, `+-----------------------------------------------------------+--------------------------------+
|                         ENDPOINT                          |             ERRORS             |
+-----------------------------------------------------------+--------------------------------+
|                                             10.0.0.1:2380 |   memberID:1234 alarm:NOSPACE, |
|                                                           |    memberID:5678 alarm:CORRUPT |
|                                             10.0.0.2:2380 |                                |
| a-very-long-endpoint-name-without-spaces.example.com:2380 |                              x |
|                                                       two |  a b c d e f g h i j k l m n o |
|                                                     lines |  p q r s t u v w x y z 0 1 2 3 |
|                                                           |                          4 5 6 |
+-----------------------------------------------------------+--------------------------------+
`},
		{"no rows", []string{"endpoint", "ID"}, nil, `+----------+----+
| ENDPOINT | ID |
+----------+----+
+----------+----+
`},
	}
	for _, tt := range tests {
		if got := renderTable(tt.header, tt.rows); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

func TestNotInUse(t *testing.T) {
	tests := []struct {
		size, inUse int64
		want        string
	}{{20480, 16384, "20%"}, {100, 100, "0%"}, {3, 1, "67%"}, {0, 0, "0%"}}
	for _, tt := range tests {
		if got := notInUse(tt.size, tt.inUse); got != tt.want {
			t.Errorf("notInUse(%d, %d) = %s, want %s", tt.size, tt.inUse, got, tt.want)
		}
	}
}
