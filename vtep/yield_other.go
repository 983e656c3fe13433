//go:build !linux

package vtep

import "runtime"

// yield gives up the processor, as sched_yield(2) does on Linux.
func yield() { runtime.Gosched() }
