package vtep

// Design notes on UDP GSO (underlay.udp_gso).
//
// With offloads, a TAP read brings a 64 KiB TCP super-frame, but the raw
// send socket still costs one trip through IP output, the underlay device
// and everything behind it per 1.5 KB datagram. A UDP socket with
// UDP_SEGMENT takes a train of equal-sized datagram payloads in one
// sendmsg and the kernel carries it as one packet as far as it can (to the
// NIC, or through veths and bridges to the receiving socket), cutting it
// into datagrams only there.
//
// The price is the source port: a UDP socket sends from the port it is
// bound to, where the raw socket writes any port into its own UDP header.
// To keep every inner flow on its own hashed source port (RFC 7348 §5,
// and the README's contract), vtepd binds one UDP socket per source port
// in use, lazily, shared by every pipeline: a super-frame goes out as a
// train from the socket of its flow's port. A port some other socket holds
// cannot be bound; its flows keep the raw socket. A UDP socket that sends
// GSO trains must checksum them (the kernel refuses SO_NO_CHECK with
// UDP_SEGMENT), so over IPv4 these datagrams carry a UDP checksum, which
// the NIC computes where it can; and if the device cannot, the kernel
// refuses the train (EIO) and vtepd falls back to the raw socket.
//
// Ageing. A flow's port socket lives as long as the flow sends: one not
// used for portIdle is taken out of the table by a sweep (the engine's
// ager calls sweep) and closed by the next sweep, portSweep later, unless
// a sender wanted its port again in between and took it back. Senders
// never lock: they load the socket from an atomic pointer and use it at
// once, so one that loaded it just before it was retired has a whole
// sweep interval to finish. Even a sender slower than that is safe: the
// os.File counts the calls in flight on its descriptor and closes it only
// once they return, and a later call fails with os.ErrClosed, after which
// the train goes out by the raw socket like any refused one. A port that
// could not be bound is tried again after portIdle.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/encap"
)

// gsoMaxSegments is the most datagrams in one train (the kernel's
// UDP_MAX_SEGMENTS is 64 or more).
const gsoMaxSegments = 64

// gsoMaxTrain is the most payload bytes one UDP_SEGMENT sendmsg takes: an
// IP packet's worth less the UDP and an IPv6 header.
const gsoMaxTrain = 65535 - encap.UDPHeaderLen - encap.IPv6HeaderLen

// Port socket ageing, in engine nanoseconds (see Ageing above).
const (
	portIdle  = int64(60 * time.Second) // unused this long: retired
	portSweep = int64(10 * time.Second) // between sweeps: retired to closed
	portTouch = int64(time.Second)      // granularity of the last-use stamp
)

// portSockets are the UDP send sockets, one per source port, of the range
// [lo, lo+len(socks)).
type portSockets struct {
	local netip.Addr
	lo    uint16
	socks []atomic.Pointer[portSocket]

	mu        sync.Mutex // held while a socket is opened, by sweep and by close
	closed    bool
	retired   []*portSocket // out of socks since the last sweep; closed by the next
	lastSweep int64
	failed    atomic.Bool  // a train was refused for good (no checksum offload): stop
	open      atomic.Int64 // sockets open now, retired ones included
}

// opened is how many port sockets are open now.
func (s *portSockets) opened() int64 {
	if s == nil {
		return 0
	}
	return s.open.Load()
}

// portSocket is one bound UDP socket; f is nil for a port that could not
// be bound at tried.
type portSocket struct {
	f     *os.File
	rc    syscall.RawConn
	port  uint16
	used  atomic.Int64 // last use, to within portTouch
	tried int64
}

// touch stamps ps as used at now. Every pipeline shares ps: the stamp is
// written only when it is a portTouch old, so it stays read-mostly.
func (ps *portSocket) touch(now int64) {
	if now-ps.used.Load() >= portTouch {
		ps.used.Store(now)
	}
}

func newPortSockets(local netip.Addr, lo, hi uint16) *portSockets {
	return &portSockets{local: local, lo: lo, socks: make([]atomic.Pointer[portSocket], int(hi)-int(lo)+1)}
}

// get returns the socket of port at time now, opening it on first use
// (or taking it back from retirement); nil when the port cannot be had.
func (s *portSockets) get(port uint16, now int64) *portSocket {
	i := int(port) - int(s.lo)
	if i < 0 || i >= len(s.socks) || s.failed.Load() {
		return nil
	}
	if ps := s.socks[i].Load(); ps != nil {
		if ps.f != nil {
			ps.touch(now)
			return ps
		}
		if now-ps.tried < portIdle {
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if ps := s.socks[i].Load(); ps != nil && (ps.f != nil || now-ps.tried < portIdle) {
		if ps.f == nil {
			return nil
		}
		ps.touch(now)
		return ps
	}
	for k, r := range s.retired {
		if r.port == port {
			s.retired = append(s.retired[:k], s.retired[k+1:]...)
			r.used.Store(now)
			s.socks[i].Store(r)
			return r
		}
	}
	ps := &portSocket{port: port, tried: now}
	ps.used.Store(now)
	if f, err := openPortSocket(s.local, port); err == nil {
		if rc, err := f.SyscallConn(); err == nil {
			ps.f, ps.rc = f, rc
			s.open.Add(1)
		} else {
			f.Close()
		}
	}
	s.socks[i].Store(ps)
	if ps.f == nil {
		return nil
	}
	return ps
}

// sweep, at time now, closes the sockets the last sweep retired and
// retires those unused for portIdle; it does nothing until portSweep
// after the last one. It returns how many sockets it closed.
func (s *portSockets) sweep(now int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || now-s.lastSweep < portSweep {
		return 0
	}
	s.lastSweep = now
	closed := len(s.retired)
	for _, r := range s.retired {
		r.f.Close()
	}
	s.open.Add(int64(-closed))
	clear(s.retired)
	s.retired = s.retired[:0]
	for i := range s.socks {
		ps := s.socks[i].Load()
		switch {
		case ps == nil:
		case ps.f == nil:
			if now-ps.tried >= portIdle {
				s.socks[i].Store(nil)
			}
		case now-ps.used.Load() >= portIdle:
			s.socks[i].Store(nil)
			s.retired = append(s.retired, ps)
		}
	}
	return closed
}

func (s *portSockets) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i := range s.socks {
		if ps := s.socks[i].Load(); ps != nil && ps.f != nil {
			ps.f.Close()
		}
	}
	for _, r := range s.retired {
		r.f.Close()
	}
	s.retired = nil
	s.open.Store(0)
}

// openPortSocket opens a UDP socket bound to local:port that sends with DF
// set and never receives (a drop-all filter, as on the raw socket).
func openPortSocket(local netip.Addr, port uint16) (*os.File, error) {
	fd, err := unix.Socket(family(local), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	fail := func(what string, err error) (*os.File, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(what, err)
	}
	if local.Is6() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt IPV6_V6ONLY", err)
		}
	}
	if what, err := sendOnly(fd, local); err != nil {
		return fail(what, err)
	}
	setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, socketSendBuffer)
	if err := unix.Bind(fd, sockaddr(local, port)); err != nil {
		return fail("bind", err)
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("vxlan-tx-%d", port)), nil
}

// gsoWriter sends trains: the scratch space of one pipeline's sendmsg.
type gsoWriter struct {
	port  uint16 // destination port
	msg   unix.Msghdr
	iovs  [2 * gsoMaxSegments]unix.Iovec
	name  unix.RawSockaddrInet6
	cmsg  [unix.SizeofCmsghdr + 8]byte
	errno unix.Errno
	fn    func(fd uintptr) bool
}

func newGSOWriter(port uint16) *gsoWriter {
	w := &gsoWriter{port: port}
	w.msg.Name = (*byte)(unsafe.Pointer(&w.name))
	w.msg.Iov = &w.iovs[0]
	w.msg.Control = &w.cmsg[0]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&w.cmsg[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	w.msg.SetControllen(unix.CmsgSpace(2))
	w.fn = w.sendmsg
	return w
}

func (w *gsoWriter) sendmsg(fd uintptr) bool {
	for {
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&w.msg)), 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.errno = errno
		return true
	}
}

// errGSORefused is a train the kernel will never take from this socket.
var errGSORefused = errors.New("UDP GSO refused")

// send sends a train, datagrams of segSize payload bytes (the last may be
// shorter), from s to the VTEP at to. The train is parts one after the
// other (a segment's headers, then its payload where the TAP read it:
// the kernel copies it once, from there); at most 2*gsoMaxSegments.
func (w *gsoWriter) send(s *portSocket, parts [][]byte, segSize int, to netip.Addr) error {
	for i, b := range parts {
		w.iovs[i].Base = unsafe.SliceData(b)
		w.iovs[i].SetLen(len(b))
	}
	w.msg.SetIovlen(len(parts))
	*(*uint16)(unsafe.Pointer(&w.cmsg[unix.CmsgLen(0)])) = uint16(segSize)
	w.msg.Namelen = putSockaddr(&w.name, to, w.port)
	w.errno = 0
	if err := s.rc.Write(w.fn); err != nil {
		// The only way this fails: the socket was closed (poll's "use
		// of closed file", which is not os.ErrClosed: make it one).
		return fmt.Errorf("%w: %w", os.ErrClosed, err)
	}
	switch w.errno {
	case 0:
		return nil
	case unix.EIO, unix.EINVAL, unix.ENOPROTOOPT:
		return fmt.Errorf("%w: %w", errGSORefused, w.errno)
	}
	return w.errno
}

// putSockaddr writes a:port as a socket address.
func putSockaddr(sa *unix.RawSockaddrInet6, a netip.Addr, port uint16) uint32 {
	var p uint16 // the port in network byte order, as the kernel reads it
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p))[:], port)
	if a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = p
		sa4.Addr = a.As4()
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: p, Addr: a.As16()}
	return unix.SizeofSockaddrInet6
}
