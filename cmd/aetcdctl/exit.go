package main

import (
	"errors"
	"fmt"
)

// Exit codes, as etcdctl (go.etcd.io/etcd/pkg/v3/cobrautl) uses them.
const (
	exitError         = 1   // a request failed, or the command line is malformed
	exitBadConnection = 2   // the client could not be created
	exitInvalidInput  = 3   // malformed txn input
	exitBadFeature    = 4   // a valid flag with an unsupported value
	exitWatchCanceled = 5   // cobrautl.ExitInterrupted: a watch ended by the member
	exitInterrupted   = 130 // stopped by SIGINT or SIGTERM (the shell's code for SIGINT)
	exitBadArgs       = 128 // wrong arguments for a command
)

// exitErr is an error with the process exit code it calls for. Its
// message is printed as "Error: <message>"; a silent one prints nothing
// (the command already reported what went wrong).
type exitErr struct {
	code   int
	err    error
	silent bool
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

// withCode wraps err with an exit code.
func withCode(code int, err error) error { return &exitErr{code: code, err: err} }

// errorf is withCode with a formatted message.
func errorf(code int, format string, args ...any) error {
	return &exitErr{code: code, err: fmt.Errorf(format, args...)}
}

// exitCode returns the exit code err calls for: its own, else exitError.
func exitCode(err error) int {
	var e *exitErr
	if errors.As(err, &e) {
		return e.code
	}
	return exitError
}

// errHelp is returned when -h/--help was given and the usage was printed.
var errHelp = errors.New("help requested")
