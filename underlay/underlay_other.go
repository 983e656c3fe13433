//go:build !linux

package underlay

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
)

// errNotLinux is what every constructor says on other systems.
var errNotLinux = fmt.Errorf("underlay: not supported on %s", runtime.GOOS)

// Interface is not supported on this system.
func Interface(netip.Addr, string) (index, mtu int, err error) { return 0, 0, errNotLinux }

// Listen is not supported on this system.
func Listen(netip.Addr, uint16, int, int, bool) ([]Conn, error) { return nil, errNotLinux }

// ListenGroup is not supported on this system.
func ListenGroup(netip.Addr, uint16, int, int, bool) (Conn, error) { return nil, errNotLinux }

// GroupSender is not supported on this system.
func GroupSender(netip.Addr, int, int) (Conn, error) { return nil, errNotLinux }

// Trains never has a port socket on this system: every super-frame leaves
// as datagrams.
type Trains struct{}

// Port is a source port's socket; there are none on this system.
type Port struct{}

// TrainWriter sends nothing on this system.
type TrainWriter struct{}

// NewTrains returns Trains without sockets.
func NewTrains(netip.Addr, uint16, uint16, *slog.Logger) *Trains { return &Trains{} }

// Port returns nil: no trains here.
func (*Trains) Port(uint16, int64) *Port { return nil }

// Failed reports true: there are no trains here.
func (*Trains) Failed() bool { return true }

// Sweep has nothing to close.
func (*Trains) Sweep(int64) int { return 0 }

// Close has nothing to close.
func (*Trains) Close() {}

// Sockets is always 0.
func (*Trains) Sockets() int64 { return 0 }

// NewWriter returns a writer that refuses every train.
func (*Trains) NewWriter(uint16, Writer) *TrainWriter { return &TrainWriter{} }

// WriteTrain refuses: Port never hands out a port to send from.
func (*TrainWriter) WriteTrain(*Port, netip.Addr, [][]byte, int) (int, error) {
	return 0, errNotLinux
}
