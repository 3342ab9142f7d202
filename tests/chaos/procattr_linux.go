package chaos

import "syscall"

// procAttr makes a member process die with the runner: the kernel sends it
// SIGKILL when the thread that started it exits.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
