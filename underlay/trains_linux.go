package underlay

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
// ager calls Sweep) and closed by the next sweep, portSweep later, unless
// a sender wanted its port again in between and took it back. Senders
// never lock: they load the socket from an atomic pointer and use it at
// once, so one that loaded it just before it was retired has a whole
// sweep interval to finish. Even a sender slower than that is safe: the
// os.File counts the calls in flight on its descriptor and closes it only
// once they return, and a later call fails with os.ErrClosed, after which
// the train goes out by the raw socket like any refused one. A port that
// could not be bound is tried again after portIdle.

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Port socket ageing, in engine nanoseconds (see Ageing above).
const (
	portIdle  = int64(60 * time.Second) // unused this long: retired
	portSweep = int64(10 * time.Second) // between sweeps: retired to closed
	portTouch = int64(time.Second)      // granularity of the last-use stamp
)

// Trains are the UDP send sockets, one per source port, of the range
// [lo, lo+len(socks)), shared by every pipeline; each pipeline sends
// through a TrainWriter of its own.
type Trains struct {
	local netip.Addr
	lo    uint16
	log   *slog.Logger
	socks []atomic.Pointer[Port]

	mu        sync.Mutex // held while a socket is opened, by sweep and by close
	closed    bool
	retired   []*Port // out of socks since the last sweep; closed by the next
	lastSweep int64
	failed    atomic.Bool  // a train was refused for good (no checksum offload): stop
	open      atomic.Int64 // sockets open now, retired ones included
}

// Sockets is how many port sockets are open now, retired ones included.
func (s *Trains) Sockets() int64 {
	if s == nil {
		return 0
	}
	return s.open.Load()
}

// Port is the UDP socket of one source port; f is nil for a port that
// could not be bound at tried.
type Port struct {
	f     *os.File
	rc    syscall.RawConn
	port  uint16
	used  atomic.Int64 // last use, to within portTouch
	tried int64
}

// touch stamps ps as used at now. Every pipeline shares ps: the stamp is
// written only when it is a portTouch old, so it stays read-mostly.
func (ps *Port) touch(now int64) {
	if now-ps.used.Load() >= portTouch {
		ps.used.Store(now)
	}
}

// Failed reports whether the underlay refused a train for good: Port
// returns nil from then on, and callers may skip gathering trains.
func (s *Trains) Failed() bool { return s.failed.Load() }

// NewTrains makes the (still closed) port sockets of source ports lo to
// hi on local. log hears, once, that the underlay refused a train for good.
func NewTrains(local netip.Addr, lo, hi uint16, log *slog.Logger) *Trains {
	return &Trains{local: local, lo: lo, log: log, socks: make([]atomic.Pointer[Port], int(hi)-int(lo)+1)}
}

// Port returns the socket of port at time now, opening it on first use
// (or taking it back from retirement); nil when the port cannot be had,
// or trains were refused for good: the caller sends datagrams instead.
func (s *Trains) Port(port uint16, now int64) *Port {
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
	ps := &Port{port: port, tried: now}
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

// Sweep, at time now, closes the sockets the last sweep retired and
// retires those unused for portIdle; it does nothing until portSweep
// after the last one. It returns how many sockets it closed.
func (s *Trains) Sweep(now int64) int {
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

// Close closes every port socket; Port returns nil from then on.
func (s *Trains) Close() {
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
	fd, fail, err := socket(local, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
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
