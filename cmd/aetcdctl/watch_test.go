package main

import (
	"testing"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

// The events of etcdctl 3.6.6's `watch w --prefix --prev-kv` while w/a is
// put, put again and deleted, and what it printed.
var (
	watchHeader = func(rev int64) *messages.ResponseHeader {
		return &messages.ResponseHeader{ClusterId: 15118495548433857066, MemberId: 13668033151171901709, Revision: rev, RaftTerm: 2}
	}
	kvA1      = &messages.KeyValue{Key: []byte("w/a"), Value: []byte("1"), CreateRevision: 4, ModRevision: 4, Version: 1}
	kvA2      = &messages.KeyValue{Key: []byte("w/a"), Value: []byte("2"), CreateRevision: 4, ModRevision: 5, Version: 2}
	watchResp = []client.WatchResponse{
		{Response: &messages.WatchResponse{Header: watchHeader(3), Created: true}},
		{Response: &messages.WatchResponse{Header: watchHeader(4), Events: []*messages.Event{{Kv: kvA1}}}},
		{Response: &messages.WatchResponse{Header: watchHeader(5), Events: []*messages.Event{{Kv: kvA2, PrevKv: kvA1}}}},
		{Response: &messages.WatchResponse{Header: watchHeader(6), Events: []*messages.Event{{Type: messages.Event_DELETE,
			Kv: &messages.KeyValue{Key: []byte("w/a"), ModRevision: 6}, PrevKv: kvA2}}}},
	}
)

func TestWatchOutput(t *testing.T) {
	tests := []struct {
		format, stdout string
	}{
		{"simple", "PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nDELETE\nw/a\n2\nw/a\n\n"},
		{"json", `{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":4,"raft_term":2},"Events":[{"kv":{"key":"dy9h","create_revision":4,"mod_revision":4,"version":1,"value":"MQ=="}}],"CompactRevision":0,"Canceled":false,"Created":false}
{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2},"Events":[{"kv":{"key":"dy9h","create_revision":4,"mod_revision":5,"version":2,"value":"Mg=="},"prev_kv":{"key":"dy9h","create_revision":4,"mod_revision":4,"version":1,"value":"MQ=="}}],"CompactRevision":0,"Canceled":false,"Created":false}
{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":6,"raft_term":2},"Events":[{"type":1,"kv":{"key":"dy9h","mod_revision":6},"prev_kv":{"key":"dy9h","create_revision":4,"mod_revision":5,"version":2,"value":"Mg=="}}],"CompactRevision":0,"Canceled":false,"Created":false}
`},
	}
	for _, tt := range tests {
		kv := &fakeKV{watchR: watchResp}
		r := runMain(t, kv, "", nil, "watch", "w", "--prefix", "--prev-kv", "-w", tt.format)
		if r.stdout != tt.stdout {
			t.Errorf("%s: stdout\n%s\nwant\n%s", tt.format, r.stdout, tt.stdout)
		}
		// The channel closing without an error is the member ending the watch.
		if r.err == nil || r.err.Error() != "watch is canceled by the server" || exitCode(r.err) != exitWatchCanceled {
			t.Errorf("%s: %v (exit %d)", tt.format, r.err, exitCode(r.err))
		}
		want := &messages.WatchCreateRequest{Key: []byte("w"), RangeEnd: []byte("x"), PrevKv: true}
		if len(kv.requests) != 1 || !proto.Equal(kv.requests[0], want) {
			t.Errorf("sent %v, want %v", kv.requests, want)
		}
	}

	// Canceled watches, progress notifications and lost members.
	compacted := []client.WatchResponse{
		{Response: &messages.WatchResponse{Header: watchHeader(7), Created: true}},
		{Response: &messages.WatchResponse{Header: watchHeader(7), Canceled: true, CompactRevision: 5}},
	}
	r := runMain(t, &fakeKV{watchR: compacted}, "", nil, "watch", "w", "--rev", "2", "-w", "json")
	if want := `{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2},"Events":[],"CompactRevision":5,"Canceled":true,"Created":false}` + "\n"; r.stdout != want {
		t.Errorf("compacted: stdout %q, want %q", r.stdout, want)
	}
	if want := "watch was canceled (etcdserver: mvcc: required revision has been compacted)\n"; r.stderr != want || exitCode(r.err) != exitWatchCanceled {
		t.Errorf("compacted: stderr %q (exit %d)", r.stderr, exitCode(r.err))
	}
	refused := []client.WatchResponse{{Response: &messages.WatchResponse{Header: watchHeader(7), WatchId: -1, Created: true, Canceled: true, CancelReason: "mvcc: watcher range is empty"}}}
	r = runMain(t, &fakeKV{watchR: refused}, "", nil, "watch", "b", "a")
	if r.stdout != "" || r.stderr != "watch was canceled (mvcc: watcher range is empty)\n" || r.err.Error() != "watch is canceled by the server" {
		t.Errorf("refused: %q %q %v", r.stdout, r.stderr, r.err)
	}
	progress := []client.WatchResponse{{Response: &messages.WatchResponse{Header: watchHeader(9)}}, {Err: &client.WatchLostError{Endpoint: "a:1", Reason: client.ErrWatchMemberLost}}}
	r = runMain(t, &fakeKV{watchR: progress}, "", nil, "watch", "w", "--progress-notify")
	if r.stdout != "progress notify: 9\n" || exitCode(r.err) != exitWatchCanceled || r.err.Error() != "client: watch stream to member a:1 lost: connection to the member closed" {
		t.Errorf("progress and lost: %q %v", r.stdout, r.err)
	}

	for _, tt := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"watch"}, "bad number of arguments", exitBadArgs},
		{[]string{"watch", "--prefix"}, "bad number of arguments", exitBadArgs},
		{[]string{"watch", "a", "b", "--prefix"}, "`range_end` and `--prefix` are mutually exclusive", exitBadArgs},
		{[]string{"watch", "a", "-w", "table"}, "table not supported as output format", exitBadFeature},
	} {
		r := runMain(t, &fakeKV{watchR: watchResp}, "", nil, tt.args...)
		if r.err == nil || r.err.Error() != tt.want || exitCode(r.err) != tt.code {
			t.Errorf("%q: %v (exit %d), want %q (exit %d)", tt.args, r.err, exitCode(r.err), tt.want, tt.code)
		}
	}
}
