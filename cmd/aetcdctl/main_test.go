package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/client"
	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
	"google.golang.org/protobuf/proto"
)

// fakeKV records requests and answers from canned responses.
type fakeKV struct {
	cfg      client.Config
	requests []proto.Message
	rangeR   *messages.RangeResponse
	putR     *messages.PutResponse
	delR     *messages.DeleteRangeResponse
	txnR     *messages.TxnResponse
	status   map[string]*messages.StatusResponse
	member   *messages.ClientResponse // the answer to Do
	err      error
	closed   bool
	// The lease and watch answers (lease_test.go).
	grantR     *messages.LeaseGrantResponse
	revokeR    *messages.LeaseRevokeResponse
	keepAliveR []*messages.LeaseKeepAliveResponse // KeepAlive sends them all
	ttlR       *messages.LeaseTimeToLiveResponse
	leasesR    *messages.LeaseLeasesResponse
	watchR     []client.WatchResponse
}

func (f *fakeKV) Range(_ context.Context, r *messages.RangeRequest) (*messages.RangeResponse, error) {
	f.requests = append(f.requests, r)
	return f.rangeR, f.err
}

func (f *fakeKV) Put(_ context.Context, r *messages.PutRequest) (*messages.PutResponse, error) {
	f.requests = append(f.requests, r)
	return f.putR, f.err
}

func (f *fakeKV) DeleteRange(_ context.Context, r *messages.DeleteRangeRequest) (*messages.DeleteRangeResponse, error) {
	f.requests = append(f.requests, r)
	return f.delR, f.err
}

func (f *fakeKV) Txn(_ context.Context, r *messages.TxnRequest) (*messages.TxnResponse, error) {
	f.requests = append(f.requests, r)
	return f.txnR, f.err
}

func (f *fakeKV) Compact(_ context.Context, r *messages.CompactionRequest) (*messages.CompactionResponse, error) {
	f.requests = append(f.requests, r)
	return &messages.CompactionResponse{}, f.err
}

func (f *fakeKV) StatusAt(_ context.Context, ep string) (*messages.StatusResponse, error) {
	if s, ok := f.status[ep]; ok {
		return s, nil
	}
	return nil, &client.UnreachableError{Endpoint: ep, Reason: errors.New("connection refused")}
}

func (f *fakeKV) Do(_ context.Context, r *messages.ClientRequest) (*messages.ClientResponse, error) {
	f.requests = append(f.requests, r)
	if f.err != nil {
		return nil, f.err
	}
	return f.member, nil
}

func (f *fakeKV) Close() error { f.closed = true; return nil }

type result struct {
	stdout, stderr string
	err            error
}

func runMain(t *testing.T, kv *fakeKV, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{
		Stdin:  strings.NewReader(stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
		Dial: func(cfg client.Config) (kvClient, error) {
			kv.cfg = cfg
			return kv, nil
		},
	}
	err := m.Run(context.Background(), args)
	return result{stdout.String(), stderr.String(), err}
}

func TestCommandsBuildRequests(t *testing.T) {
	tests := []struct {
		args  []string
		stdin string
		want  proto.Message
	}{
		{[]string{"get", "foo"}, "", &messages.RangeRequest{Key: []byte("foo")}},
		{[]string{"get", "foo", "--prefix", "--keys-only"}, "", &messages.RangeRequest{Key: []byte("foo"), RangeEnd: []byte("fop"), KeysOnly: true}},
		{[]string{"get", "", "--prefix"}, "", &messages.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}},
		{[]string{"get", "\xff", "--prefix"}, "", &messages.RangeRequest{Key: []byte{0xff}, RangeEnd: []byte{0}}},
		{[]string{"get", "a", "--from-key", "--limit=3", "--rev=9"}, "", &messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 3, Revision: 9}},
		{[]string{"get", "a", "z", "--consistency=s", "--sort-by=value"}, "", &messages.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Serializable: true, SortTarget: messages.RangeRequest_VALUE}},
		{[]string{"get", "a", "--sort-by=KEY", "--order=ASCEND"}, "", &messages.RangeRequest{Key: []byte("a")}},
		{[]string{"get", "a", "--order=descend"}, "", &messages.RangeRequest{Key: []byte("a"), SortOrder: messages.RangeRequest_DESCEND}},
		{[]string{"get", "a", "--min-mod-rev=2", "--max-mod-rev=5", "--min-create-rev=1", "--max-create-rev=4"}, "",
			&messages.RangeRequest{Key: []byte("a"), MinModRevision: 2, MaxModRevision: 5, MinCreateRevision: 1, MaxCreateRevision: 4}},
		{[]string{"get", "a", "--count-only", "-w", "fields"}, "", &messages.RangeRequest{Key: []byte("a"), CountOnly: true}},
		{[]string{"put", "k", "v", "--prev-kv"}, "", &messages.PutRequest{Key: []byte("k"), Value: []byte("v"), PrevKv: true}},
		{[]string{"put", "k"}, "from stdin\n", &messages.PutRequest{Key: []byte("k"), Value: []byte("from stdin\n")}},
		{[]string{"put", "k", "--ignore-value", "--ignore-lease"}, "", &messages.PutRequest{Key: []byte("k"), IgnoreValue: true, IgnoreLease: true}},
		{[]string{"put", "k", "v", "--lease", "694d77aa9e38260f"}, "", &messages.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 0x694d77aa9e38260f}},
		{[]string{"put", "--", "-k", "-v"}, "", &messages.PutRequest{Key: []byte("-k"), Value: []byte("-v")}},
		{[]string{"del", "k", "--prefix", "--prev-kv"}, "", &messages.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), PrevKv: true}},
		{[]string{"del", "a", "z", "--range"}, "", &messages.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("z")}},
		{[]string{"del", "", "--from-key"}, "", &messages.DeleteRangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}},
		{[]string{"compaction", "42", "--physical"}, "", &messages.CompactionRequest{Revision: 42, Physical: true}},
		{[]string{"txn"}, "value(\"k\") = \"v\"\n\nput k w\n\nget k\n\n", &messages.TxnRequest{
			Compare: []*messages.Compare{{Key: []byte("k"), Target: messages.Compare_VALUE, TargetUnion: &messages.Compare_Value{Value: []byte("v")}}},
			Success: []*messages.RequestOp{{Request: &messages.RequestOp_RequestPut{RequestPut: &messages.PutRequest{Key: []byte("k"), Value: []byte("w")}}}},
			Failure: []*messages.RequestOp{{Request: &messages.RequestOp_RequestRange{RequestRange: &messages.RangeRequest{Key: []byte("k")}}}},
		}},
	}
	for _, tt := range tests {
		kv := &fakeKV{rangeR: rangeEmpty, putR: putPlain, delR: delNone, txnR: txnOK}
		r := runMain(t, kv, tt.stdin, nil, tt.args...)
		if r.err != nil {
			t.Errorf("%q: %v", tt.args, r.err)
			continue
		}
		if len(kv.requests) != 1 || !proto.Equal(kv.requests[0], tt.want) {
			t.Errorf("%q sent %v, want %v", tt.args, kv.requests, tt.want)
		}
		if !kv.closed {
			t.Errorf("%q did not close the client", tt.args)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		args    []string
		stdin   string
		want    string
		code    int
		sendsOK bool // the request is sent before the error
	}{
		{[]string{"get"}, "", "get command needs one argument as key and an optional argument as range_end", exitBadArgs, false},
		{[]string{"get", "a", "--prefix", "--from-key"}, "", "`--prefix` and `--from-key` cannot be set at the same time, choose one", exitBadArgs, false},
		{[]string{"get", "a", "--keys-only", "--count-only"}, "", "`--keys-only` and `--count-only` cannot be set at the same time, choose one", exitBadArgs, false},
		{[]string{"get", "a", "--count-only"}, "", "--count-only is only for `--write-out=fields`", exitBadArgs, false},
		{[]string{"get", "a", "--print-value-only", "-w", "json"}, "", "print-value-only is only for `--write-out=simple`", exitBadArgs, false},
		{[]string{"get", "a", "-w", "table"}, "", "table not supported as output format", exitBadFeature, false},
		{[]string{"get", "a", "-w", "xml"}, "", "unsupported output format", exitBadFeature, false},
		{[]string{"get", "a", "--order=up"}, "", "bad sort order up", exitBadFeature, false},
		{[]string{"put"}, "", "put command needs 1 argument and input from stdin or 2 arguments", exitBadArgs, false},
		{[]string{"put", "k"}, "", "put command needs 1 argument and input from stdin or 2 arguments", exitBadArgs, false},
		{[]string{"put", "k", "v", "-w", "table"}, "", "table not supported as output format", exitBadFeature, false},
		{[]string{"del", "a", "b", "c"}, "", "del command needs one argument as key and an optional argument as range_end", exitBadArgs, false},
		{[]string{"compaction"}, "", "compaction command needs 1 argument", exitBadArgs, false},
		{[]string{"compaction", "abc"}, "", `strconv.ParseInt: parsing "abc": invalid syntax`, exitError, false},
		{[]string{"txn", "extra"}, "", "txn command does not accept argument", exitBadArgs, false},
		{[]string{"txn"}, "bogus\n\n\n", "malformed comparison: bogus", exitInvalidInput, false},
		{[]string{"txn"}, "\n\n", "EOF", exitInvalidInput, false},
		{[]string{"endpoint", "status", "-w", "protobuf"}, "", "protobuf not supported as output format", exitBadFeature, false},
		{[]string{"bogus"}, "", "unknown command \"bogus\" for \"aetcdctl\"\nRun 'aetcdctl --help' for usage.", exitError, false},
		{[]string{"get", "a", "--bogus"}, "", "unknown flag: --bogus", exitError, false},
		{[]string{"--bogus", "get"}, "", "unknown flag: --bogus", exitError, false},
	}
	for _, tt := range tests {
		kv := &fakeKV{rangeR: rangeEmpty, putR: putPlain, delR: delNone, txnR: txnOK}
		r := runMain(t, kv, tt.stdin, nil, tt.args...)
		if r.err == nil || r.err.Error() != tt.want || exitCode(r.err) != tt.code {
			t.Errorf("%q: error %v (exit %d), want %q (exit %d)", tt.args, r.err, exitCode(r.err), tt.want, tt.code)
		}
		if sent := len(kv.requests) > 0; sent != tt.sendsOK {
			t.Errorf("%q: request sent = %v", tt.args, sent)
		}
	}
}

func TestMemberErrorsAndOutput(t *testing.T) {
	kv := &fakeKV{err: &client.Error{Code: 3, Message: rpcerr.EmptyKey.Message}}
	r := runMain(t, kv, "", nil, "put", "", "v")
	if r.err == nil || r.err.Error() != "etcdserver: key is not provided" || exitCode(r.err) != exitError {
		t.Fatalf("member error: %v (exit %d)", r.err, exitCode(r.err))
	}

	kv = &fakeKV{rangeR: rangeTwo}
	r = runMain(t, kv, "", nil, "get", "foo", "--prefix", "--print-value-only")
	if r.err != nil || r.stdout != "bar\nbar 2\n" {
		t.Fatalf("get --print-value-only: %q, %v", r.stdout, r.err)
	}

	r = runMain(t, &fakeKV{}, "", nil, "compaction", "7", "-w", "json")
	if r.err != nil || r.stdout != "compacted revision 7\n" {
		t.Fatalf("compaction: %q, %v", r.stdout, r.err)
	}

	r = runMain(t, &fakeKV{txnR: txnFailed}, "\n\n\n", nil, "txn", "-i")
	want := "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n\nk1\nnew v1\n\nOK\n"
	if r.err != nil || r.stdout != want {
		t.Fatalf("txn -i: %q, %v; want %q", r.stdout, r.err, want)
	}
}

func TestDelRangeWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("waits etcdctl's 2 s grace")
	}
	start := time.Now()
	r := runMain(t, &fakeKV{delR: delNone}, "", nil, "del", "a", "b")
	if r.err != nil || r.stdout != "0\n" {
		t.Fatalf("del a b: %q, %v", r.stdout, r.err)
	}
	want := "Warning: Keys between \"a\" and \"b\" will be deleted. Please interrupt the command within next 2 seconds to cancel. You can provide `--range` flag to avoid the delay.\n"
	if r.stderr != want || time.Since(start) < 2*time.Second {
		t.Fatalf("stderr %q after %v, want %q after 2s", r.stderr, time.Since(start), want)
	}
}

func TestGlobalOptions(t *testing.T) {
	kv := &fakeKV{rangeR: rangeEmpty}
	r := runMain(t, kv, "", map[string]string{"AETCDCTL_ENDPOINTS": "a:1,b:2", "AETCDCTL_WRITE_OUT": "json"}, "get", "foo", "--command-timeout=3s")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Join(kv.cfg.Endpoints, ",") != "a:1,b:2" || kv.cfg.RequestTimeout != 3*time.Second {
		t.Fatalf("client config %+v", kv.cfg)
	}
	if !strings.HasPrefix(r.stdout, `{"header":`) {
		t.Fatalf("AETCDCTL_WRITE_OUT=json ignored: %q", r.stdout)
	}

	kv = &fakeKV{rangeR: rangeEmpty}
	r = runMain(t, kv, "", map[string]string{"AETCDCTL_ENDPOINTS": "a:1"}, "--endpoints", "c:3", "-w", "fields", "get", "foo")
	if r.err != nil || strings.Join(kv.cfg.Endpoints, ",") != "c:3" || !strings.HasPrefix(r.stdout, `"ClusterID"`) {
		t.Fatalf("flags before the command: %+v %q %v", kv.cfg, r.stdout, r.err)
	}
	if kv.cfg.RequestTimeout != 5*time.Second {
		t.Fatalf("default command timeout %v", kv.cfg.RequestTimeout)
	}

	r = runMain(t, &fakeKV{}, "", map[string]string{"AETCDCTL_COMMAND_TIMEOUT": "soon"}, "get", "foo")
	if r.err == nil || !strings.Contains(r.err.Error(), "AETCDCTL_COMMAND_TIMEOUT") {
		t.Fatalf("bad environment value: %v", r.err)
	}

	for _, args := range [][]string{{}, {"--help"}, {"get", "-h"}, {"-h", "put"}} {
		r = runMain(t, &fakeKV{}, "", nil, args...)
		if r.err != errHelp || !strings.Contains(r.stdout, "USAGE:") {
			t.Errorf("%q: %v, stdout %q", args, r.err, r.stdout)
		}
	}
}

func TestEndpointStatus(t *testing.T) {
	st := status[0].Status
	kv := &fakeKV{status: map[string]*messages.StatusResponse{"a:1": st}}
	r := runMain(t, kv, "", nil, "--endpoints=a:1,b:2", "endpoint", "status")
	if exitCode(r.err) != exitError {
		t.Fatalf("one endpoint down: %v (exit %d)", r.err, exitCode(r.err))
	}
	var e *exitErr
	if !errors.As(r.err, &e) || !e.silent {
		t.Fatalf("error %v is printed again after the per-endpoint message", r.err)
	}
	if want := "a:1, 628170c800dbcee, 3.6.6, 3.6.0, 20 kB, 16 kB, 20%, 2.1 GB, true, false, 2, 26, 26, , , false\n"; r.stdout != want {
		t.Fatalf("stdout %q, want %q", r.stdout, want)
	}
	if want := "Failed to get the status of endpoint b:2 (client: member b:2 is unreachable: connection refused)\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}

	kv = &fakeKV{status: map[string]*messages.StatusResponse{"a:1": st}}
	r = runMain(t, kv, "", nil, "--endpoints=a:1", "endpoint", "status", "-w", "json")
	if r.err != nil || !strings.HasPrefix(r.stdout, `[{"Endpoint":"a:1","Status":{"header"`) {
		t.Fatalf("json: %q %v", r.stdout, r.err)
	}
}
