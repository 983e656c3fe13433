//go:build !linux

package tap

import (
	"fmt"
	"runtime"
)

// Device is a TAP device; only Linux has them here.
type Device struct{}

// Create reports that TAP devices are not supported on this system.
func Create(cfg Config) (*Device, error) {
	return nil, fmt.Errorf("tap: not supported on %s", runtime.GOOS)
}

func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) { return 0, errUnsupported }
func (d *Device) Write(frame []byte) (int, error)                         { return 0, errUnsupported }
func (d *Device) BatchSize() int                                           { return 1 }
func (d *Device) Name() string                                             { return "" }
func (d *Device) Close() error                                             { return nil }

var errUnsupported = fmt.Errorf("tap: not supported on %s", runtime.GOOS)
