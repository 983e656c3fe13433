package underlay

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgBatch is the scratch space of one recvmmsg or sendmmsg caller: the
// message headers, their iovecs and their addresses, allocated once and
// pointed at the caller's buffers on every call.
type mmsgBatch struct {
	rc    syscall.RawConn
	trap  uintptr // SYS_RECVMMSG or SYS_SENDMMSG
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	ctrl  []byte                  // receives: groControlLen bytes a message

	// The call in progress, for the closures built once in fn, lockedFn
	// and tryFn.
	count    int
	done     int
	errno    unix.Errno
	d        []Datagram  // readLocked's
	lock     sync.Locker // readLocked's
	fn       func(fd uintptr) bool
	lockedFn func(fd uintptr) bool
	tryFn    func(fd uintptr)
}

func newMmsgBatch(size int, rc syscall.RawConn, trap uintptr) *mmsgBatch {
	b := &mmsgBatch{
		rc:    rc,
		trap:  trap,
		msgs:  make([]unix.Mmsghdr, size),
		iovs:  make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size),
	}
	for i := range b.msgs {
		h := &b.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
	}
	if trap == unix.SYS_RECVMMSG {
		b.ctrl = make([]byte, size*groControlLen)
		for i := range b.msgs {
			b.msgs[i].Hdr.Control = &b.ctrl[i*groControlLen]
		}
	}
	b.fn = b.syscall
	b.lockedFn = b.lockedRead
	b.tryFn = func(fd uintptr) { b.syscall(fd) }
	return b
}

// groSegmentLen is the size of the UDP_GRO control message's value, a C
// int; groControlLen is the control buffer of one received message, room
// for that message.
const groSegmentLen = 4

var groControlLen = unix.CmsgSpace(groSegmentLen)

// groSegment returns the datagram size of a train from the control
// messages in ctrl, or 0 when there is none (a single datagram) or ctrl
// is malformed. ParseOneSocketControlMessage reads a header without
// checking that ctrl holds one, so that is checked first.
func groSegment(ctrl []byte) int {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(ctrl)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= groSegmentLen {
			return int(int32(binary.NativeEndian.Uint32(data)))
		}
		ctrl = rest
	}
	return 0
}

func (b *mmsgBatch) syscall(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall6(b.trap, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(b.count), 0, 0, 0)
		switch errno {
		case 0:
			b.done = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // park on the poller until ready
		default:
			b.errno = errno
			return true
		}
	}
}

// WriteBatch implements Writer.
func (b *mmsgBatch) WriteBatch(d []Datagram) (int, error) {
	sent := 0
	for sent < len(d) {
		n := b.load(d[sent:], true)
		if err := b.run(b.rc.Write); err != nil {
			return sent, err
		}
		sent += b.done
		if b.done < n {
			// The kernel stopped early: the next datagram failed and the
			// next call reports why.
			continue
		}
	}
	return sent, nil
}

// readLocked implements ReadBatchLocked. The messages are loaded anew in
// each attempt, under the lock: a try between two attempts rewrites them.
func (b *mmsgBatch) readLocked(d []Datagram, mu sync.Locker) (int, error) {
	b.d, b.lock = d, mu
	err := b.rc.Read(b.lockedFn)
	b.d, b.lock = nil, nil
	if err != nil {
		return 0, err // not held
	}
	if b.errno != 0 {
		return 0, b.errno // not held
	}
	return b.results(d), nil
}

func (b *mmsgBatch) lockedRead(fd uintptr) bool {
	b.lock.Lock()
	b.load(b.d, false)
	if !b.syscall(fd) || b.errno == 0 && b.done == 0 {
		b.lock.Unlock()
		return false // nothing yet: park until readable
	}
	if b.errno != 0 {
		b.lock.Unlock()
	}
	return true
}

// try implements TryReadBatch: one recvmmsg, off the runtime poller, so
// that it can run while readLocked waits.
func (b *mmsgBatch) try(d []Datagram) (int, error) {
	b.load(d, false)
	if err := b.rc.Control(b.tryFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.results(d), nil
}

// results fills in d from the messages received.
func (b *mmsgBatch) results(d []Datagram) int {
	for i := 0; i < b.done; i++ {
		d[i].N = int(b.msgs[i].Len)
		d[i].Addr = addrFromRaw(&b.names[i])
		d[i].Seg = 0
		if c := int(b.msgs[i].Hdr.Controllen); c > 0 {
			d[i].Seg = groSegment(b.ctrl[i*groControlLen : i*groControlLen+min(c, groControlLen)])
		}
	}
	return b.done
}

// load points the message headers at d's buffers; for sends it also writes
// the destination addresses. It returns how many messages it prepared.
func (b *mmsgBatch) load(d []Datagram, send bool) int {
	n := min(len(d), len(b.msgs))
	for i := 0; i < n; i++ {
		buf := d[i].Buf
		iov := &b.iovs[i]
		iov.Base = unsafe.SliceData(buf)
		iov.SetLen(len(buf))
		h := &b.msgs[i].Hdr
		h.Flags = 0
		if send {
			h.Namelen = putRaw(&b.names[i], d[i].Addr)
		} else {
			h.Namelen = unix.SizeofSockaddrInet6
			if b.ctrl != nil {
				h.SetControllen(groControlLen)
			}
		}
	}
	b.count, b.done, b.errno = n, 0, 0
	return n
}

func (b *mmsgBatch) run(op func(func(uintptr) bool) error) error {
	if err := op(b.fn); err != nil {
		return err
	}
	if b.errno != 0 {
		return b.errno
	}
	return nil
}

// putRaw writes a as a raw socket destination (port zero: a raw socket
// ignores it, or takes it as the protocol for IPv6, where zero means "the
// socket's own").
func putRaw(sa *unix.RawSockaddrInet6, a netip.Addr) uint32 {
	if a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = 0
		sa4.Addr = a.As4()
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	return unix.SizeofSockaddrInet6
}

func addrFromRaw(sa *unix.RawSockaddrInet6) netip.Addr {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}
