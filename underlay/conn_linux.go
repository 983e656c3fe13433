package underlay

// Design notes.
//
// Receiving is an ordinary UDP socket bound to local:port, read with
// recvmmsg into preallocated mmsghdrs: the kernel checks IP and UDP for us
// and we see VXLAN header plus inner frame.
//
// Sending is a raw socket of protocol IPPROTO_UDP. The kernel writes the IP
// header (source = local, DF set through IP_PMTUDISC_DO, so nothing is ever
// fragmented) and we write the UDP header ourselves. That is what lets every
// inner flow leave with its own hashed source port (RFC 7348 §5, ECMP
// entropy) from a single socket, where a UDP socket could only use the port
// it is bound to. Over IPv4 the UDP checksum is sent as zero, as RFC 7348
// recommends and the kernel's vxlan does by default; over IPv6 the kernel
// fills it in (IPV6_CHECKSUM). A raw socket would also get a copy of every
// UDP datagram the host receives, so a one-instruction BPF filter makes it
// drop them all.
//
// Both sockets are non-blocking descriptors wrapped in os.File, so blocked
// calls park on the runtime's poller and Close wakes them.
//
// Raw system calls. The batch calls (recvmmsg, sendmmsg, and the trains'
// sendmsg) are made with RawSyscall, which skips the runtime's
// entersyscall/exitsyscall. On a non-blocking descriptor they never wait;
// but a send carries the frame through the underlay device, a bridge and
// the receiving host's stack within the call, often for more than the
// 20 µs after which the runtime's sysmon takes the P of a thread in a
// system call and starts another thread to run it, which finds nothing to
// do and sleeps again. Issue #12's profile counted about 10,000 such hand-
// offs a second per vtepd under TCP load (14% of its CPU, with the context
// switches they cost). A raw call keeps the P: nothing else of ours was
// waiting for it. The price is that a stop-the-world pause waits for the
// call to return, some tens of microseconds.
//
// UDP GRO. Receive sockets ask for UDP_GRO. A train sent with UDP_SEGMENT
// (a vtepd peer with underlay.udp_gso) then reaches us as it was sent, one
// message of equal-sized datagrams end to end, instead of being cut in
// software into one socket-buffer entry each; the kernel also merges
// datagrams of one sender that arrive back to back through GRO. Each
// message of a train carries a SOL_UDP/UDP_GRO control message with the
// datagram size, read into a control buffer of its own per message and
// reported as Datagram.Seg. A kernel that refuses the option leaves us
// with datagrams, as before.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/encap"
)

// Socket buffer sizes asked for with SO_RCVBUFFORCE/SO_SNDBUFFORCE: a few
// batches of full-size datagrams at line rate.
const (
	socketRecvBuffer = 8 << 20
	socketSendBuffer = 8 << 20
)

// udpConn implements Conn on Linux. A unicast conn has both sockets;
// a group receiver only rx, a multicast sender only tx.
type udpConn struct {
	local   netip.Addr
	rx, tx  *os.File
	rxRC    syscall.RawConn
	txRC    syscall.RawConn
	reader  *mmsgBatch
	group   netip.Addr // joined on rx, left again by Close
	ifindex int
}

// Listen opens queues socket pairs on local:port: receive sockets
// sharing the port through SO_REUSEPORT, so the kernel spreads datagrams
// over them by flow, and a raw send socket each. batch is the most
// datagrams one ReadBatch returns.
func Listen(local netip.Addr, port uint16, batch, queues int, zeroCsum6 bool) (conns []Conn, err error) {
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			conns = nil
		}
	}()
	// SO_REUSEPORT would let us share the port with another process of
	// the same user, and the kernel's vxlan binds without it: take the
	// port alone for a moment first, so that "in use" is caught here.
	probe, err := openRecvSocket(local, port, false, false, 0)
	if err != nil {
		return nil, err
	}
	probe.Close()
	for i := 0; i < max(queues, 1); i++ {
		c, err := openConn(local, port, batch, queues > 1, zeroCsum6)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func openConn(local netip.Addr, port uint16, batch int, reuse, zeroCsum6 bool) (c *udpConn, err error) {
	c = &udpConn{local: local}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.rx, err = openRecvSocket(local, port, reuse, zeroCsum6, 0); err != nil {
		return nil, err
	}
	if c.tx, err = openSendSocket(local, nil); err != nil {
		return nil, err
	}
	if c.rxRC, err = c.rx.SyscallConn(); err != nil {
		return nil, err
	}
	if c.txRC, err = c.tx.SyscallConn(); err != nil {
		return nil, err
	}
	c.reader = newMmsgBatch(batch, c.rxRC, unix.SYS_RECVMMSG)
	return c, nil
}

// socket opens a non-blocking UDP or raw (typ) socket of local's family;
// fail closes it again and names the option that failed.
func socket(local netip.Addr, typ int) (fd int, fail func(what string, err error) (*os.File, error), err error) {
	fd, err = unix.Socket(family(local), typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	return fd, func(what string, err error) (*os.File, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(what, err)
	}, nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func sockaddr(a netip.Addr, port uint16) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}
}

// openRecvSocket binds a UDP socket to local:port. Over IPv6, zeroCsum
// accepts datagrams without a UDP checksum (UDP_NO_CHECK6_RX), and scope
// is the interface of a link-local group.
func openRecvSocket(local netip.Addr, port uint16, reuse, zeroCsum bool, scope int) (*os.File, error) {
	fd, fail, err := socket(local, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt SO_REUSEPORT", err)
		}
	}
	if local.Is6() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt IPV6_V6ONLY", err)
		}
		if zeroCsum {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_RX, 1); err != nil {
				return fail("setsockopt UDP_NO_CHECK6_RX", err)
			}
		}
	} else {
		// Only groups this socket joined, not every group of the host.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
			return fail("setsockopt IP_MULTICAST_ALL", err)
		}
	}
	setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, socketRecvBuffer)
	// Trains when the kernel has UDP GRO (4.18 and later); datagrams if not.
	_ = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1)
	sa := sockaddr(local, port)
	if sa6, ok := sa.(*unix.SockaddrInet6); ok && local.IsMulticast() {
		sa6.ZoneId = uint32(scope)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("underlay.port: UDP %s already in use", netip.AddrPortFrom(local, port))
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("underlay.local: %s is not an address of this host", local)
		}
		return nil, fmt.Errorf("bind UDP %s: %w", netip.AddrPortFrom(local, port), err)
	}
	return os.NewFile(uintptr(fd), "vxlan-rx"), nil
}

// multicastOpts configures a send socket for a group: the interface it
// leaves by, its TTL (hop limit), and no loopback to ourselves.
type multicastOpts struct {
	ifindex int
	ttl     int
}

// sendOnly readies a socket that only sends: a filter that drops every
// packet it would receive, and DF on all it sends (never fragmented). It
// names the option that failed.
func sendOnly(fd int, local netip.Addr) (string, error) {
	drop := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	prog := unix.SockFprog{Len: uint16(len(drop)), Filter: &drop[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return "setsockopt SO_ATTACH_FILTER", err
	}
	if local.Is4() {
		return "setsockopt IP_MTU_DISCOVER", unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	}
	return "setsockopt IPV6_MTU_DISCOVER", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO)
}

func openSendSocket(local netip.Addr, mc *multicastOpts) (*os.File, error) {
	fd, fail, err := socket(local, unix.SOCK_RAW)
	if err != nil {
		return nil, err
	}
	if what, err := sendOnly(fd, local); err != nil {
		return fail(what, err)
	}
	if local.Is6() {
		// Offset of the checksum in the UDP header: the kernel computes it.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, encap.UDPChecksumOffset); err != nil {
			return fail("setsockopt IPV6_CHECKSUM", err)
		}
	}
	if mc != nil {
		opts := []struct {
			level, opt, value int
			name              string
		}{
			{unix.IPPROTO_IP, unix.IP_MULTICAST_IF, 0, ""}, // set below with ip_mreqn
			{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, mc.ttl, "IP_MULTICAST_TTL"},
			{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP"},
		}
		if local.Is6() {
			opts = []struct {
				level, opt, value int
				name              string
			}{
				{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, mc.ifindex, "IPV6_MULTICAST_IF"},
				{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, mc.ttl, "IPV6_MULTICAST_HOPS"},
				{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP"},
			}
		} else {
			mreq := unix.IPMreqn{Ifindex: int32(mc.ifindex)}
			if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &mreq); err != nil {
				return fail("setsockopt IP_MULTICAST_IF", err)
			}
			opts = opts[1:]
		}
		for _, o := range opts {
			if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
				return fail("setsockopt "+o.name, err)
			}
		}
	}
	setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, socketSendBuffer)
	if err := unix.Bind(fd, sockaddr(local, 0)); err != nil {
		return fail("bind raw", err)
	}
	return os.NewFile(uintptr(fd), "vxlan-tx"), nil
}

// setBuffer asks for size with the privileged option and falls back to the
// one capped by net.core.{r,w}mem_max.
func setBuffer(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

// ListenGroup binds a receive socket to group:port and joins the group on
// the interface ifindex; Close leaves it. It only receives.
func ListenGroup(group netip.Addr, port uint16, ifindex, batch int, zeroCsum6 bool) (Conn, error) {
	c, err := listenGroup(group, port, ifindex, batch, zeroCsum6)
	if err != nil {
		return nil, err // not a nil *udpConn in a non-nil Conn
	}
	return c, nil
}

func listenGroup(group netip.Addr, port uint16, ifindex, batch int, zeroCsum6 bool) (c *udpConn, err error) {
	c = &udpConn{local: group, ifindex: ifindex}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.rx, err = openRecvSocket(group, port, false, zeroCsum6, ifindex); err != nil {
		return nil, fmt.Errorf("group %s: %w", group, err)
	}
	if c.rxRC, err = c.rx.SyscallConn(); err != nil {
		return nil, err
	}
	if err = c.membership(group, true); err != nil {
		return nil, err
	}
	c.group = group
	c.reader = newMmsgBatch(batch, c.rxRC, unix.SYS_RECVMMSG)
	return c, nil
}

// membership joins or leaves group on the receive socket.
func (c *udpConn) membership(group netip.Addr, join bool) error {
	var serr error
	err := c.rxRC.Control(func(fd uintptr) {
		if group.Is4() {
			opt := unix.IP_ADD_MEMBERSHIP
			if !join {
				opt = unix.IP_DROP_MEMBERSHIP
			}
			mreq := unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(c.ifindex)}
			serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, opt, &mreq)
			return
		}
		opt := unix.IPV6_JOIN_GROUP
		if !join {
			opt = unix.IPV6_LEAVE_GROUP
		}
		mreq := unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(c.ifindex)}
		serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, opt, &mreq)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		verb := "join"
		if !join {
			verb = "leave"
		}
		return fmt.Errorf("%s group %s on interface %d: %w", verb, group, c.ifindex, err)
	}
	return nil
}

// GroupSender opens a raw send socket for flooding to a group, leaving by
// the interface ifindex with hop limit ttl. It only sends.
func GroupSender(local netip.Addr, ifindex, ttl int) (Conn, error) {
	c := &udpConn{local: local}
	var err error
	if c.tx, err = openSendSocket(local, &multicastOpts{ifindex: ifindex, ttl: ttl}); err != nil {
		return nil, err
	}
	if c.txRC, err = c.tx.SyscallConn(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *udpConn) ReadBatchLocked(d []Datagram, mu sync.Locker) (int, error) {
	return c.reader.readLocked(d, mu)
}

func (c *udpConn) TryReadBatch(d []Datagram) (int, error) { return c.reader.try(d) }

func (c *udpConn) NewWriter(size int) Writer {
	return newMmsgBatch(size, c.txRC, unix.SYS_SENDMMSG)
}

func (c *udpConn) Close() error {
	var errs []error
	if c.group.IsValid() {
		errs = append(errs, c.membership(c.group, false))
		c.group = netip.Addr{}
	}
	for _, f := range []*os.File{c.rx, c.tx} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}
