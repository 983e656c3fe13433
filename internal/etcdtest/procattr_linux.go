package etcdtest

import "syscall"

// procAttr kills etcd with the test binary, should the test die before
// its cleanup.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
