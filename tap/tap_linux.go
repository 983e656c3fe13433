package tap

// Design notes.
//
// The TAP is opened with our own TUNSETIFF ioctl rather than through
// songgao/water, which vtepd used at first: water cannot set IFF_VNET_HDR,
// nor IFF_MULTI_QUEUE and IFF_VNET_HDR together, and the offloads need
// both. One code path opens every queue, with or without the header.
//
// With Offload the kernel treats the TAP like a virtio NIC that can take
// partial checksums and TCP segmentation (TUNSETOFFLOAD with TUN_F_CSUM,
// TUN_F_TSO4, TUN_F_TSO6 and TUN_F_TSO_ECN): the bridge stops cutting a
// container's TCP stream into MTU-sized frames before the TAP, and hands
// over super-frames of up to 64 KiB with a virtio_net_hdr that says how to
// cut them. In the other direction the kernel takes such super-frames from
// us. Reads and writes are raw system calls on the non-blocking
// descriptor, for the reason package underlay gives: a write runs the
// bridge and the container's whole receive path within the call. Since
// Linux 6.2 the TAP also takes UDP segmentation (TUN_F_USO4,
// TUN_F_USO6): a train of small datagrams of one flow goes in as one
// super-frame (VIRTIO_NET_HDR_GSO_UDP_L4), and a container's UDP_SEGMENT
// sends come out whole. Every queue asks for it; on a kernel that refuses
// it (EINVAL) the TAP keeps the TCP offloads only, and USO reports false.
// The header is the kernel's default size (TUNSETVNETHDRSZ 10: struct
// virtio_net_hdr, no num_buffers field), set explicitly all the same.

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/offload"
)

// cloneDevice is the TUN/TAP clone device.
const cloneDevice = "/dev/net/tun"

// tunOffloads are what Offload asks the kernel for: partial checksums and
// TCP segmentation over IPv4 and IPv6, including segments that carry ECN's
// CWR (offload.Segmenter keeps it on the first segment only).
const tunOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN

// tunUSO are the UDP segmentation offloads (linux/if_tun.h, Linux 6.2),
// asked for beside tunOffloads where the kernel has them.
const (
	tunFUSO4 = 0x20 // TUN_F_USO4
	tunFUSO6 = 0x40 // TUN_F_USO6
	tunUSO   = tunFUSO4 | tunFUSO6
)

// Device is a TAP interface attached to a bridge, opened with one or more
// queues (IFF_MULTI_QUEUE): one descriptor each, which the kernel hands
// frames to by flow, so each queue can have its own reader.
type Device struct {
	name    string
	index   int
	mac     net.HardwareAddr
	offload bool
	uso     bool // every queue took tunUSO
	queues  []*Queue

	closeOnce sync.Once
	closeErr  error
}

// Queue is one descriptor of a Device. One goroutine may read while
// another writes.
type Queue struct {
	dev  *Device
	file *os.File
	rc   syscall.RawConn
	hdr  int // bytes of virtio_net_hdr before each frame: 0 or offload.VirtioNetHdrLen

	// The reads in progress, kept here so that the closures handed to
	// RawConn are built once and reading does not allocate: r for
	// ReadLocked, t for TryRead, which may run while r waits.
	r, t     reading
	lock     sync.Locker // ReadLocked's
	lockedFn func(fd uintptr) bool
	tryFn    func(fd uintptr)

	// The write in progress, under wmu (writes to one descriptor are
	// serialized by the runtime anyway), and its closure, built once.
	wmu     sync.Mutex
	wframe  []byte
	wn      int
	werrno  unix.Errno
	writeFn func(fd uintptr) bool
}

// reading is the state of one batch read: frame i goes to
// bufs[i][off-hdr:], n frames so far, err the error that ended it.
type reading struct {
	bufs  [][]byte
	sizes []int
	off   int
	hdr   int
	n     int
	err   error
}

func (r *reading) start(bufs [][]byte, sizes []int, offset, hdr int) {
	*r = reading{bufs: bufs, sizes: sizes, off: offset, hdr: hdr}
}

// finish returns what the read came to, given err from RawConn, and lets
// go of the caller's buffers.
func (r *reading) finish(err error) (int, error) {
	n, rerr := r.n, r.err
	r.bufs, r.sizes, r.err = nil, nil, nil
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, rerr
}

// Create makes the TAP with cfg.Queues queues, sets its MTU, enslaves it to
// the bridge and brings it up. The bridge must exist and no interface may
// already carry the TAP's name; on any error nothing is left behind.
func Create(cfg Config) (*Device, error) {
	br, err := bridgeLink(cfg.Bridge)
	if err != nil {
		return nil, err
	}
	if _, err := netlink.LinkByName(cfg.Name); err == nil {
		return nil, fmt.Errorf("tap %q: an interface of that name already exists", cfg.Name)
	}
	nq := max(cfg.Queues, 1)
	d := &Device{name: cfg.Name, offload: cfg.Offload, uso: cfg.Offload && !cfg.NoUSO}
	for i := 0; i < nq; i++ {
		if err := d.openQueue(nq > 1); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.setup(cfg, br); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Device) openQueue(multi bool) error {
	f, err := d.open(multi)
	if err != nil {
		return fmt.Errorf("tap %q: open queue %d: %w", d.name, len(d.queues), err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("tap %q: %w", d.name, err)
	}
	q := &Queue{dev: d, file: f, rc: rc}
	if d.offload {
		q.hdr = offload.VirtioNetHdrLen
	}
	q.lockedFn = q.readFramesLocked
	q.tryFn = func(fd uintptr) { q.t.frames(fd) }
	q.writeFn = q.write
	d.queues = append(d.queues, q)
	return nil
}

// open attaches a new descriptor to the TAP, creating it with the first.
// The descriptor is non-blocking, so that os.NewFile puts it on the
// runtime's poller.
func (d *Device) open(multi bool) (*os.File, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: cloneDevice, Err: err}
	}
	fail := func(op string, err error) (*os.File, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(op, err)
	}
	ifr, err := unix.NewIfreq(d.name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if multi {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if d.offload {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fail("ioctl TUNSETIFF", err)
	}
	if d.offload {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, offload.VirtioNetHdrLen); err != nil {
			return fail("ioctl TUNSETVNETHDRSZ", err)
		}
		var err error = unix.ENOTSUP
		if d.uso {
			err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunOffloads|tunUSO)
		}
		if err != nil {
			d.uso = false // the queues opened before keep it; only the flag matters
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunOffloads); err != nil {
				return fail("ioctl TUNSETOFFLOAD", err)
			}
		}
	}
	return os.NewFile(uintptr(fd), cloneDevice), nil
}

func (d *Device) setup(cfg Config, br netlink.Link) error {
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("tap %q: %w", d.name, err)
	}
	d.index = link.Attrs().Index
	d.mac = link.Attrs().HardwareAddr
	if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("tap %q: set MTU %d: %w", d.name, cfg.MTU, err)
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("tap %q: attach to bridge %q: %w", d.name, cfg.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tap %q: set up: %w", d.name, err)
	}
	return nil
}

// Name is the interface name of the TAP.
func (d *Device) Name() string { return d.name }

// Index is the TAP's interface index.
func (d *Device) Index() int { return d.index }

// MAC is the TAP's own hardware address.
func (d *Device) MAC() net.HardwareAddr { return d.mac }

// USO reports whether the TAP takes and gives UDP super-frames
// (VIRTIO_NET_HDR_GSO_UDP_L4): with Offload, on Linux 6.2 and later.
func (d *Device) USO() bool { return d.uso }

// Offload reports whether the TAP carries a virtio_net_hdr before every
// frame, with checksum and TCP segmentation offloads (Config.Offload).
func (d *Device) Offload() bool { return d.offload }

// Queues returns the device's queues; there is at least one.
func (d *Device) Queues() []*Queue { return d.queues }

// Close closes every queue, which deletes the TAP, and makes sure it is
// gone. Blocked Reads return an error satisfying errors.Is(err, os.ErrClosed).
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		for _, q := range d.queues {
			if err := q.file.Close(); err != nil && d.closeErr == nil {
				d.closeErr = err
			}
		}
		if d.index == 0 {
			return
		}
		// A non-persistent TAP dies with its last descriptor; delete it
		// anyway if something else kept it alive.
		if link, err := netlink.LinkByIndex(d.index); err == nil && link.Attrs().Name == d.name {
			if err := netlink.LinkDel(link); err != nil && d.closeErr == nil {
				d.closeErr = fmt.Errorf("tap %q: delete: %w", d.name, err)
			}
		}
	})
	return d.closeErr
}

// Name is the interface name of the queue's TAP.
func (q *Queue) Name() string { return q.dev.name }

// BatchSize is the largest number of frames one read returns usefully.
func (q *Queue) BatchSize() int { return DefaultBatchSize }

// ReadLocked blocks until at least one frame is available, then reads up
// to len(bufs) frames without blocking again. Frame i lands at
// bufs[i][offset:] and is sizes[i] bytes long. With Offload, its
// virtio_net_hdr lands just before it, in
// bufs[i][offset-offload.VirtioNetHdrLen:offset] (offset must leave room
// for it), and the frame may be a super-frame of up to 64 KiB.
//
// Another goroutine may drain the queue with TryRead between two of our
// reads: every attempt to read holds mu, and
// when ReadLocked returns frames it returns with mu still held, for the
// caller to release once it has dealt with them. Holding mu from the read
// to the end of their handling keeps frames read by either goroutine in
// the order they were read. On error mu is not held.
//
// Each attempt runs under the runtime poller, after it has forgotten
// older readiness, so a frame queued after an attempt found none always
// wakes us: no frame is left behind because the other goroutine had the
// lock when it came.
func (q *Queue) ReadLocked(bufs [][]byte, sizes []int, offset int, mu sync.Locker) (int, error) {
	if err := q.checkOffset(offset); err != nil {
		return 0, err
	}
	q.r.start(bufs, sizes, offset, q.hdr)
	q.lock = mu
	n, err := q.r.finish(q.rc.Read(q.lockedFn))
	q.lock = nil
	return n, err
}

func (q *Queue) readFramesLocked(fd uintptr) bool {
	q.lock.Lock()
	if q.r.frames(fd) && q.r.n > 0 {
		return true // the caller unlocks
	}
	q.lock.Unlock()
	return q.r.err != nil
}

// TryRead reads the frames queued now, up to len(bufs), and never waits:
// with none queued it returns 0 and no error. It stays off the runtime
// poller, so it can run while a ReadLocked of another goroutine waits;
// its caller holds the lock that ReadLocked was given.
func (q *Queue) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := q.checkOffset(offset); err != nil {
		return 0, err
	}
	q.t.start(bufs, sizes, offset, q.hdr)
	return q.t.finish(q.rc.Control(q.tryFn))
}

func (q *Queue) checkOffset(offset int) error {
	if offset < q.hdr {
		return fmt.Errorf("tap %q: read offset %d leaves no room for the %d-byte virtio_net_hdr", q.dev.name, offset, q.hdr)
	}
	return nil
}

// frames reads until the batch is full or the queue empty. Under the
// runtime poller, false means "nothing yet: wait until the descriptor is
// readable and call me again".
func (r *reading) frames(fd uintptr) bool {
	for r.n < len(r.bufs) {
		b := r.bufs[r.n][r.off-r.hdr:]
		m, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		n := int(m)
		var err error
		if errno != 0 {
			err = errno
		}
		switch err {
		case nil:
			if n < r.hdr {
				continue // the kernel always writes the header; never seen
			}
			r.sizes[r.n] = n - r.hdr
			r.n++
		case unix.EINTR:
		case unix.EAGAIN:
			return r.n > 0
		default:
			r.err = &os.SyscallError{Syscall: "read", Err: err}
			return true
		}
	}
	return true
}

// Write hands one frame to the bridge. With Offload, frame starts with its
// virtio_net_hdr (all zeros for an ordinary frame with complete checksums).
func (q *Queue) Write(frame []byte) (int, error) {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.wframe, q.wn, q.werrno = frame, 0, 0
	err := q.rc.Write(q.writeFn)
	q.wframe = nil
	switch {
	case err != nil:
		return 0, err // closed
	case q.werrno != 0:
		return 0, &os.SyscallError{Syscall: "write", Err: q.werrno}
	}
	return q.wn, nil
}

// write is Write's system call, made raw: the descriptor is non-blocking,
// so the call never waits, and the runtime need not hand the thread's P
// to another thread meanwhile (see the package's design notes).
func (q *Queue) write(fd uintptr) bool {
	b := q.wframe
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch errno {
		case 0:
			q.wn = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until writable
		}
		q.werrno = errno
		return true
	}
}
