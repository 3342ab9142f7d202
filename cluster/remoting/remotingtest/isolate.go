// Package remotingtest helps tests that start protoactor remoting. Its
// remote.Start writes gRPC's global logger (grpclog.SetLoggerV2) without
// synchronisation, which the race detector reports against the gRPC
// goroutines of any remote started earlier in the same process; such tests
// run alone in a child process.
package remotingtest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// isolatedEnv names, in a child process, the one test it runs.
const isolatedEnv = "AETCD_REMOTING_TEST_ISOLATED"

// Isolate reruns the calling test alone in a child process of the test
// binary and fails t unless it passes there. It returns true in the parent,
// which then returns at once, and false in the child, which runs the
// test's body.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == t.Name() {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), isolatedEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("isolated run of %s: %v\n%s", t.Name(), err, out)
	}
	if testing.Verbose() {
		t.Logf("isolated run:\n%s", out)
	}
	return true
}
