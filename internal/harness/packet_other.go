//go:build !linux

package harness

import (
	"fmt"
	"runtime"
)

// PacketSender needs Linux's AF_PACKET; see packet_linux.go.
type PacketSender struct{}

// OpenPacketSender fails: AF_PACKET is Linux's.
func OpenPacketSender(dev string) (*PacketSender, error) {
	return nil, fmt.Errorf("AF_PACKET socket on %s: not supported on %s", dev, runtime.GOOS)
}

func (s *PacketSender) BypassQdisc() error { return fmt.Errorf("not supported on %s", runtime.GOOS) }
func (s *PacketSender) SetSendBuffer(int)  {}
func (s *PacketSender) Send([]byte) error  { return fmt.Errorf("not supported on %s", runtime.GOOS) }
func (s *PacketSender) Fd() int            { return -1 }
func (s *PacketSender) Close() error       { return nil }
