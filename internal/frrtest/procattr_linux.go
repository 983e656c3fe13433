package frrtest

import "syscall"

// procAttr kills a daemon with the test binary, should the test die
// before its cleanup.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
