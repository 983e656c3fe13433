package vtep

import "golang.org/x/sys/unix"

// yield gives the CPU to another thread, if one is ready, without parking
// the goroutine: what the busy poller does between rounds that found
// nothing (runtime.Gosched would only switch goroutines).
func yield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
