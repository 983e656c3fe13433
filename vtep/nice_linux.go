package vtep

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setNice gives every thread of the process the scheduling priority nice
// (setpriority(2) on Linux sets one thread's). A thread the runtime starts
// later inherits the priority of the one that started it; one started
// while the threads were being walked may have missed it, so the walk is
// repeated until a pass finds nothing to change.
func setNice(nice int) error {
	for range 5 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// getpriority returns 20-nice through the system call.
			p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
			if err == nil && 20-p == nice {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}
