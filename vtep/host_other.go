//go:build !linux

package vtep

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vtepd/vtepd/config"
)

// errNotLinux is what New says on other systems: TAPs, bridges and the
// underlay sockets are Linux's.
var errNotLinux = fmt.Errorf("vtepd runs on Linux only, not %s", runtime.GOOS)

func underlayLink(*config.Config) (index, mtu int, err error) { return 0, 0, errNotLinux }

func checkBridge(string) error { return errNotLinux }

func (e *Engine) watchLinks(context.Context) {}

// yield gives up the processor, as sched_yield(2) does on Linux.
func yield() { runtime.Gosched() }
