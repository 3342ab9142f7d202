package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// etcdctl runs the unmodified etcdctl 3.6 binary named by $ETCDCTL (built by
// shared/tools/etcd-reference.sh; .ci/run sets it) against addr.
func etcdctl(t *testing.T, addr, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("ETCDCTL")
	if bin == "" {
		t.Skip("ETCDCTL is not set: build etcdctl 3.6.6 with shared/tools/etcd-reference.sh and point ETCDCTL at it")
	}
	cmd := exec.Command(bin, append([]string{"--endpoints=" + addr, "--command-timeout=10s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestEtcdctl(t *testing.T) {
	m := startMember(t, t.TempDir())
	addr := m.ClientAddrs()[0]
	steps := []struct {
		args    []string
		stdin   string
		want    string
		wantErr bool
	}{
		{args: []string{"put", "foo", "bar"}, want: "OK\n"},
		{args: []string{"put", "foo2", "baz"}, want: "OK\n"},
		{args: []string{"get", "foo"}, want: "foo\nbar\n"},
		{args: []string{"get", "foo", "--prefix"}, want: "foo\nbar\nfoo2\nbaz\n"},
		{args: []string{"get", "foo", "--prefix", "--keys-only"}, want: "foo\n\nfoo2\n\n"},
		{args: []string{"get", "foo", "--prefix", "--count-only", "-w", "fields"}, want: "\"Count\" : 2"},
		{args: []string{"put", "foo", "bar2", "--prev-kv"}, want: "OK\nfoo\nbar\n"},
		{args: []string{"get", "foo", "--rev", "2"}, want: "foo\nbar\n"},
		{args: []string{"txn"}, stdin: "value(\"foo\") = \"bar2\"\n\nput foo3 x\nget foo\n\nput nope y\n\n", want: "SUCCESS\n\nOK\n\nfoo\nbar2\n"},
		{args: []string{"del", "foo", "--prefix"}, want: "3\n"},
		{args: []string{"compaction", "3"}, want: "compacted revision 3\n"},
		{args: []string{"get", "foo", "--rev", "2"}, wantErr: true, want: "required revision has been compacted"},
		{args: []string{"get", ""}, wantErr: true, want: "key is not provided"},
		{args: []string{"endpoint", "status", "-w", "table"}, want: "IS LEADER"},
		{args: []string{"endpoint", "status"}, want: addr + ", "},
		{args: []string{"endpoint", "health"}, want: "is healthy"},
		{args: []string{"alarm", "list"}, want: ""},
		{args: []string{"member", "list"}, want: ", started, m1, "},
	}
	for _, s := range steps {
		out, err := etcdctl(t, addr, s.stdin, s.args...)
		if (err != nil) != s.wantErr {
			t.Fatalf("etcdctl %v: err %v, output:\n%s", s.args, err, out)
		}
		if s.want == "" && out != "" {
			t.Fatalf("etcdctl %v: want no output, got:\n%s", s.args, out)
		}
		if !strings.Contains(out, s.want) {
			t.Fatalf("etcdctl %v: output\n%s\ndoes not contain\n%s", s.args, out, s.want)
		}
		if strings.HasPrefix(s.want, "OK") || strings.HasSuffix(s.want, "\n") && !s.wantErr && s.args[0] != "endpoint" {
			if out != s.want {
				t.Fatalf("etcdctl %v: output\n%q\nwant exactly\n%q", s.args, out, s.want)
			}
		}
	}
}
