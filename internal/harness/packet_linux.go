package harness

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// PacketSender is a send-only AF_PACKET socket bound to one interface: it
// puts whole, prebuilt Ethernet frames on that interface's wire, as a
// container's own stack would, without a stack or a route in between. The
// benchmark's small-frame generator sends its frames a batch per sendmmsg
// through it (Fd); the soak's churn sends one frame at a time (Send).
//
// It is opened with protocol 0, so it is never hooked into the receive
// path and costs nothing for the frames the interface receives.
type PacketSender struct {
	fd int
	to unix.SockaddrLinklayer
}

// OpenPacketSender opens a PacketSender on the interface named dev of the
// calling thread's network namespace.
func OpenPacketSender(dev string) (*PacketSender, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	// Protocol 0: a send-only socket, never hooked into the receive path.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_PACKET", err)
	}
	s := &PacketSender{fd: fd, to: unix.SockaddrLinklayer{Ifindex: ifi.Index}}
	if err := unix.Bind(fd, &s.to); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind AF_PACKET", err)
	}
	return s, nil
}

// BypassQdisc sets PACKET_QDISC_BYPASS: frames go straight to the
// driver (for a veth, to its peer), past the interface's queueing
// discipline.
func (s *PacketSender) BypassQdisc() error {
	if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return os.NewSyscallError("setsockopt PACKET_QDISC_BYPASS", err)
	}
	return nil
}

// SetSendBuffer asks for a send buffer of size bytes with SO_SNDBUFFORCE,
// falling back to SO_SNDBUF (capped by net.core.wmem_max) without it.
func (s *PacketSender) SetSendBuffer(size int) {
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
	}
}

// Send writes one frame; its own addresses say where it goes.
func (s *PacketSender) Send(frame []byte) error {
	return unix.Sendto(s.fd, frame, 0, &s.to)
}

// Fd is the socket, for batch calls (sendmmsg) made by the caller.
func (s *PacketSender) Fd() int { return s.fd }

// Close closes the socket.
func (s *PacketSender) Close() error { return unix.Close(s.fd) }
