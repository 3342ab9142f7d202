package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

func (f *fakeKV) Grant(_ context.Context, ttl, id int64) (*messages.LeaseGrantResponse, error) {
	f.requests = append(f.requests, &messages.LeaseGrantRequest{TTL: ttl, ID: id})
	return f.grantR, f.err
}

func (f *fakeKV) Revoke(_ context.Context, id int64) (*messages.LeaseRevokeResponse, error) {
	f.requests = append(f.requests, &messages.LeaseRevokeRequest{ID: id})
	return f.revokeR, f.err
}

func (f *fakeKV) KeepAliveOnce(_ context.Context, id int64) (*messages.LeaseKeepAliveResponse, error) {
	f.requests = append(f.requests, &messages.LeaseKeepAliveRequest{ID: id})
	if f.err != nil {
		return nil, f.err
	}
	return f.keepAliveR[0], nil
}

func (f *fakeKV) KeepAlive(_ context.Context, id int64) (<-chan *messages.LeaseKeepAliveResponse, error) {
	f.requests = append(f.requests, &messages.LeaseKeepAliveRequest{ID: id})
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan *messages.LeaseKeepAliveResponse, len(f.keepAliveR))
	for _, r := range f.keepAliveR {
		ch <- r
	}
	close(ch)
	return ch, nil
}

func (f *fakeKV) TimeToLive(_ context.Context, id int64, keys bool) (*messages.LeaseTimeToLiveResponse, error) {
	f.requests = append(f.requests, &messages.LeaseTimeToLiveRequest{ID: id, Keys: keys})
	return f.ttlR, f.err
}

func (f *fakeKV) Leases(context.Context) (*messages.LeaseLeasesResponse, error) {
	f.requests = append(f.requests, &messages.LeaseLeasesRequest{})
	return f.leasesR, f.err
}

func (f *fakeKV) Watch(_ context.Context, req *messages.WatchCreateRequest) (<-chan client.WatchResponse, error) {
	f.requests = append(f.requests, req)
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan client.WatchResponse, len(f.watchR))
	for _, r := range f.watchR {
		ch <- r
	}
	close(ch)
	return ch, nil
}

// The expected outputs below were printed by etcdctl 3.6.6 against an aetcd
// member holding the same lease and keys.

var (
	leaseHeader = &messages.ResponseHeader{ClusterId: 15118495548433857066, MemberId: 13668033151171901709, Revision: 3, RaftTerm: 2}
	leaseID     = int64(0x390da1fd5a5ad301)
	leaseTTL    = &messages.LeaseTimeToLiveResponse{Header: leaseHeader, ID: leaseID, TTL: 97, GrantedTTL: 100, Keys: [][]byte{[]byte("k1"), []byte("k2")}}
	leaseList   = &messages.LeaseLeasesResponse{Header: leaseHeader, Leases: []*messages.LeaseStatus{{ID: leaseID}, {ID: leaseID + 4}}}
)

func TestLeasePrinters(t *testing.T) {
	const hdrJSON = `"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":3,"raft_term":2`
	const hdrFields = "\"ClusterID\" : 15118495548433857066\n\"MemberID\" : 13668033151171901709\n\"Revision\" : 3\n\"RaftTerm\" : 2\n"
	grant := &messages.LeaseGrantResponse{Header: leaseHeader, ID: leaseID, TTL: 100}
	keepAlive := &messages.LeaseKeepAliveResponse{Header: leaseHeader, ID: leaseID, TTL: 100}
	expired := &messages.LeaseTimeToLiveResponse{Header: leaseHeader, ID: 0x123, TTL: -1}
	tests := []struct {
		name   string
		format string
		hex    bool
		print  func(printer) error
		want   string
	}{
		{"grant simple", "simple", false, func(p printer) error { return p.Grant(grant) }, "lease 390da1fd5a5ad301 granted with TTL(100s)\n"},
		{"grant json", "json", false, func(p printer) error { return p.Grant(grant) },
			"{" + hdrJSON + `,"ID":4111120144373830401,"TTL":100,"Error":""}` + "\n"},
		{"grant json hex", "json", true, func(p printer) error { return p.Grant(grant) },
			"{" + hdrJSON + `,"ID":4111120144373830401,"TTL":100,"Error":""}` + "\n"},
		{"grant fields", "fields", false, func(p printer) error { return p.Grant(grant) }, hdrFields + "\"ID\" : 4111120144373830401\n\"TTL\" : 100\n"},
		{"grant fields hex", "fields", true, func(p printer) error { return p.Grant(grant) },
			"\"ClusterID\" : d1cfaf999eb97a2a\n\"MemberID\" : bdae9bbc11dd390d\n\"Revision\" : 3\n\"RaftTerm\" : 2\n\"ID\" : 390da1fd5a5ad301\n\"TTL\" : 100\n"},
		{"revoke simple", "simple", false, func(p printer) error { return p.Revoke(leaseID, &messages.LeaseRevokeResponse{Header: leaseHeader}) },
			"lease 390da1fd5a5ad301 revoked\n"},
		{"revoke json", "json", false, func(p printer) error { return p.Revoke(leaseID, &messages.LeaseRevokeResponse{Header: leaseHeader}) },
			`{"header":{` + hdrJSON + "}}\n"},
		{"revoke fields", "fields", false, func(p printer) error { return p.Revoke(leaseID, &messages.LeaseRevokeResponse{Header: leaseHeader}) },
			hdrFields},
		{"keep-alive simple", "simple", false, func(p printer) error { return p.KeepAlive(keepAlive) }, "lease 390da1fd5a5ad301 keepalived with TTL(100)\n"},
		{"keep-alive json", "json", false, func(p printer) error { return p.KeepAlive(keepAlive) },
			"{" + hdrJSON + `,"ID":4111120144373830401,"TTL":100}` + "\n"},
		{"timetolive simple", "simple", false, func(p printer) error { return p.TimeToLive(leaseTTL, false) },
			"lease 390da1fd5a5ad301 granted with TTL(100s), remaining(97s)\n"},
		{"timetolive simple keys", "simple", false, func(p printer) error { return p.TimeToLive(leaseTTL, true) },
			"lease 390da1fd5a5ad301 granted with TTL(100s), remaining(97s), attached keys([k1 k2])\n"},
		{"timetolive simple expired", "simple", false, func(p printer) error { return p.TimeToLive(expired, true) },
			"lease 0000000000000123 already expired\n"},
		{"timetolive json", "json", false, func(p printer) error { return p.TimeToLive(leaseTTL, true) },
			"{" + hdrJSON + `,"id":4111120144373830401,"ttl":97,"granted-ttl":100,"keys":["azE=","azI="]}` + "\n"},
		{"timetolive json expired", "json", false, func(p printer) error { return p.TimeToLive(expired, true) },
			"{" + hdrJSON + `,"id":291,"ttl":-1,"granted-ttl":0,"keys":null}` + "\n"},
		{"timetolive fields", "fields", false, func(p printer) error { return p.TimeToLive(leaseTTL, true) },
			hdrFields + "\"ID\" : 4111120144373830401\n\"TTL\" : 97\n\"GrantedTTL\" : 100\n\"Key\" : \"k1\"\n\"Key\" : \"k2\"\n"},
		{"list simple", "simple", false, func(p printer) error { return p.Leases(leaseList) },
			"found 2 leases\n390da1fd5a5ad301\n390da1fd5a5ad305\n"},
		{"list json", "json", false, func(p printer) error { return p.Leases(leaseList) },
			"{" + hdrJSON + `,"leases":[{"id":4111120144373830401},{"id":4111120144373830405}]}` + "\n"},
		{"list fields hex", "fields", true, func(p printer) error { return p.Leases(leaseList) },
			"\"ClusterID\" : d1cfaf999eb97a2a\n\"MemberID\" : bdae9bbc11dd390d\n\"Revision\" : 3\n\"RaftTerm\" : 2\n\"ID\" : 390da1fd5a5ad301\n\"ID\" : 390da1fd5a5ad305\n"},
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

func TestLeaseProtobufAndTable(t *testing.T) {
	var out bytes.Buffer
	p := newPrinter("protobuf", false, &out)
	if err := p.Grant(&messages.LeaseGrantResponse{Header: leaseHeader, ID: 1, TTL: 5}); err != nil {
		t.Fatal(err)
	}
	if want, _ := proto.Marshal(leaseHeader); !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("protobuf grant: %q, want the header alone %q", out.Bytes(), want)
	}
	err := p.Revoke(1, &messages.LeaseRevokeResponse{Header: leaseHeader})
	want := "marshal unsupported for type clientv3.LeaseRevokeResponse ({cluster_id:15118495548433857066 member_id:13668033151171901709 revision:3 raft_term:2  {} [] 0})"
	if err == nil || err.Error() != want || exitCode(err) != exitBadFeature {
		t.Fatalf("protobuf revoke: %v", err)
	}
	table := newPrinter("table", false, &out)
	for _, err := range []error{table.Grant(nil), table.Revoke(1, nil), table.KeepAlive(nil), table.TimeToLive(nil, false), table.Leases(nil), table.Watch(nil)} {
		if err == nil || err.Error() != "table not supported as output format" || exitCode(err) != exitBadFeature {
			t.Errorf("table: %v", err)
		}
	}
}

func TestLeaseCommands(t *testing.T) {
	tests := []struct {
		args   []string
		kv     *fakeKV
		want   proto.Message
		stdout string
	}{
		{[]string{"lease", "grant", "100"}, &fakeKV{grantR: &messages.LeaseGrantResponse{Header: leaseHeader, ID: leaseID, TTL: 100}},
			&messages.LeaseGrantRequest{TTL: 100}, "lease 390da1fd5a5ad301 granted with TTL(100s)\n"},
		{[]string{"lease", "revoke", "390da1fd5a5ad301"}, &fakeKV{revokeR: &messages.LeaseRevokeResponse{Header: leaseHeader}},
			&messages.LeaseRevokeRequest{ID: leaseID}, "lease 390da1fd5a5ad301 revoked\n"},
		{[]string{"lease", "timetolive", "390da1fd5a5ad301", "--keys"}, &fakeKV{ttlR: leaseTTL},
			&messages.LeaseTimeToLiveRequest{ID: leaseID, Keys: true}, "attached keys([k1 k2])\n"},
		{[]string{"lease", "list", "ignored"}, &fakeKV{leasesR: leaseList}, &messages.LeaseLeasesRequest{}, "found 2 leases\n390da1fd5a5ad301\n390da1fd5a5ad305\n"},
		{[]string{"lease", "keep-alive", "--once", "390da1fd5a5ad301"},
			&fakeKV{keepAliveR: []*messages.LeaseKeepAliveResponse{{Header: leaseHeader, ID: leaseID, TTL: 100}}},
			&messages.LeaseKeepAliveRequest{ID: leaseID}, "lease 390da1fd5a5ad301 keepalived with TTL(100)\n"},
		{[]string{"lease", "keep-alive", "390da1fd5a5ad301"},
			&fakeKV{keepAliveR: []*messages.LeaseKeepAliveResponse{{Header: leaseHeader, ID: leaseID, TTL: 100}, {Header: leaseHeader, ID: leaseID, TTL: 100}}},
			&messages.LeaseKeepAliveRequest{ID: leaseID},
			"lease 390da1fd5a5ad301 keepalived with TTL(100)\nlease 390da1fd5a5ad301 keepalived with TTL(100)\nlease 390da1fd5a5ad301 expired or revoked.\n"},
		{[]string{"lease", "keep-alive", "123", "-w", "json"}, &fakeKV{}, &messages.LeaseKeepAliveRequest{ID: 0x123}, ""},
	}
	for _, tt := range tests {
		r := runMain(t, tt.kv, "", nil, tt.args...)
		if r.err != nil {
			t.Errorf("%q: %v", tt.args, r.err)
			continue
		}
		if len(tt.kv.requests) != 1 || !proto.Equal(tt.kv.requests[0], tt.want) {
			t.Errorf("%q sent %v, want %v", tt.args, tt.kv.requests, tt.want)
		}
		if !strings.HasSuffix(r.stdout, tt.stdout) || (tt.stdout == "" && r.stdout != "") {
			t.Errorf("%q printed %q, want %q", tt.args, r.stdout, tt.stdout)
		}
	}
}

func TestLeaseCommandErrors(t *testing.T) {
	notFound := &client.Error{Code: 5, Message: "etcdserver: requested lease not found"}
	tests := []struct {
		args []string
		err  error // the member's answer
		want string
		code int
	}{
		{[]string{"lease", "grant"}, nil, "lease grant command needs TTL argument", exitBadArgs},
		{[]string{"lease", "grant", "x"}, nil, `bad TTL (strconv.ParseInt: parsing "x": invalid syntax)`, exitBadArgs},
		{[]string{"lease", "grant", "5", "-w", "bogus"}, nil, "unsupported output format", exitBadFeature},
		{[]string{"lease", "grant", "5"}, &client.Error{Code: 11, Message: "etcdserver: too large lease TTL"}, "failed to grant lease (etcdserver: too large lease TTL)", exitError},
		{[]string{"lease", "revoke"}, nil, "lease revoke command needs 1 argument", exitBadArgs},
		{[]string{"lease", "revoke", "zz"}, nil, `bad lease ID arg (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`, exitBadArgs},
		{[]string{"lease", "revoke", "123"}, notFound, "failed to revoke lease (etcdserver: requested lease not found)", exitError},
		{[]string{"lease", "timetolive"}, nil, "lease timetolive command needs lease ID as argument", exitBadArgs},
		{[]string{"lease", "timetolive", "1"}, client.ErrClosed, "client: closed", exitBadConnection},
		{[]string{"lease", "list"}, client.ErrClosed, "client: closed", exitBadConnection},
		{[]string{"lease", "keep-alive"}, nil, "lease keep-alive command needs lease ID as argument", exitBadArgs},
		{[]string{"lease", "keep-alive", "--once", "123"}, notFound, "etcdserver: requested lease not found", exitBadConnection},
	}
	for _, tt := range tests {
		r := runMain(t, &fakeKV{err: tt.err}, "", nil, tt.args...)
		if r.err == nil || r.err.Error() != tt.want || exitCode(r.err) != tt.code {
			t.Errorf("%q: error %v (exit %d), want %q (exit %d)", tt.args, r.err, exitCode(r.err), tt.want, tt.code)
		}
	}
}
