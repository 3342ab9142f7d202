//go:build !linux

package chaos

import "syscall"

// procAttr: without Linux's parent-death signal, Close is what kills the
// member processes.
func procAttr() *syscall.SysProcAttr { return nil }
