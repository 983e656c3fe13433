//go:build !linux

package tap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"
)

// Device is a TAP device; only Linux has them here.
type Device struct{}

// Create reports that TAP devices are not supported on this system.
func Create(cfg Config) (*Device, error) {
	return nil, fmt.Errorf("tap: not supported on %s", runtime.GOOS)
}

// Queue is one descriptor of a Device.
type Queue struct{}

func (d *Device) Name() string                             { return "" }
func (d *Device) Queues() []*Queue                         { return nil }
func (d *Device) Index() int                               { return 0 }
func (d *Device) MAC() net.HardwareAddr                    { return nil }
func (d *Device) Offload() bool                            { return false }
func (d *Device) USO() bool                                { return false }
func (d *Device) Close() error                             { return nil }
func (q *Queue) Name() string                              { return "" }
func (q *Queue) BatchSize() int                            { return 1 }
func (q *Queue) Write([]byte) (int, error)                 { return 0, errUnsupported }
func (q *Queue) TryRead([][]byte, []int, int) (int, error) { return 0, errUnsupported }
func (q *Queue) ReadLocked([][]byte, []int, int, sync.Locker) (int, error) {
	return 0, errUnsupported
}

var errUnsupported = fmt.Errorf("tap: not supported on %s", runtime.GOOS)

// CheckBridge reports that bridges are not supported on this system.
func CheckBridge(string) error { return errUnsupported }

// Check finds nothing to mend on this system.
func (d *Device) Check(string) (Health, error) { return Healthy, nil }

// WatchLinks has no links to watch on this system: it returns at once.
func WatchLinks(context.Context, time.Duration, time.Duration, func(), *slog.Logger) {}
