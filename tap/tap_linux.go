package tap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Device is a TAP interface attached to a bridge, opened with one or more
// queues (IFF_MULTI_QUEUE): one descriptor each, which the kernel hands
// frames to by flow, so each queue can have its own reader.
type Device struct {
	name   string
	index  int
	mac    net.HardwareAddr
	queues []*Queue

	closeOnce sync.Once
	closeErr  error
}

// Queue is one descriptor of a Device. One goroutine may Read while
// another Writes.
type Queue struct {
	dev  *Device
	file *os.File
	rc   syscall.RawConn

	// State of the Read in progress, kept here so that the closure handed
	// to RawConn.Read is built once and Read does not allocate.
	rbufs  [][]byte
	rsizes []int
	roff   int
	rn     int
	rerr   error
	readFn func(fd uintptr) bool
}

// Create makes the TAP with cfg.Queues queues, sets its MTU, enslaves it to
// the bridge and brings it up. The bridge must exist and no interface may
// already carry the TAP's name; on any error nothing is left behind.
func Create(cfg Config) (*Device, error) {
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %q not found", cfg.Bridge)
		}
		return nil, fmt.Errorf("bridge %q: %w", cfg.Bridge, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("%q is a %s, not a bridge", cfg.Bridge, br.Type())
	}
	if _, err := netlink.LinkByName(cfg.Name); err == nil {
		return nil, fmt.Errorf("tap %q: an interface of that name already exists", cfg.Name)
	}
	nq := max(cfg.Queues, 1)
	d := &Device{name: cfg.Name}
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
	ifce, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: d.name, MultiQueue: multi},
	})
	if err != nil {
		return fmt.Errorf("tap %q: open queue %d: %w", d.name, len(d.queues), err)
	}
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return fmt.Errorf("tap %q: unexpected device type %T", d.name, ifce.ReadWriteCloser)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("tap %q: %w", d.name, err)
	}
	q := &Queue{dev: d, file: f, rc: rc}
	q.readFn = q.readFrames
	d.queues = append(d.queues, q)
	return nil
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

// BatchSize is the largest number of frames one Read returns usefully.
func (q *Queue) BatchSize() int { return DefaultBatchSize }

// Read blocks until at least one frame is available, then reads up to
// len(bufs) frames without blocking again. Frame i lands at
// bufs[i][offset:] and is sizes[i] bytes long.
func (q *Queue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	q.rbufs, q.rsizes, q.roff, q.rn, q.rerr = bufs, sizes, offset, 0, nil
	err := q.rc.Read(q.readFn)
	n, rerr := q.rn, q.rerr
	q.rbufs, q.rsizes = nil, nil
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, rerr
}

// readFrames runs under the runtime poller: returning false means "nothing
// yet, wait until the descriptor is readable and call me again".
func (q *Queue) readFrames(fd uintptr) bool {
	for q.rn < len(q.rbufs) {
		n, err := unix.Read(int(fd), q.rbufs[q.rn][q.roff:])
		switch err {
		case nil:
			q.rsizes[q.rn] = n
			q.rn++
		case unix.EINTR:
		case unix.EAGAIN:
			return q.rn > 0
		default:
			q.rerr = &os.SyscallError{Syscall: "read", Err: err}
			return true
		}
	}
	return true
}

// Write hands one frame to the bridge.
func (q *Queue) Write(frame []byte) (int, error) {
	return q.file.Write(frame)
}
