package tap

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Device is a TAP interface attached to a bridge. One goroutine may Read
// while another Writes.
type Device struct {
	name  string
	index int
	file  *os.File
	rc    syscall.RawConn

	// State of the Read in progress, kept here so that the closure handed
	// to RawConn.Read is built once and Read does not allocate.
	rbufs  [][]byte
	rsizes []int
	roff   int
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	closeOnce sync.Once
	closeErr  error
}

// Create makes the TAP, sets its MTU, enslaves it to the bridge and brings
// it up. The bridge must exist and no interface may already carry the TAP's
// name; on any error nothing is left behind.
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
	ifce, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: cfg.Name},
	})
	if err != nil {
		return nil, fmt.Errorf("tap %q: create: %w", cfg.Name, err)
	}
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("tap %q: unexpected device type %T", cfg.Name, ifce.ReadWriteCloser)
	}
	d := &Device{name: ifce.Name(), file: f}
	d.readFn = d.readFrames
	if err := d.setup(cfg, br); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Device) setup(cfg Config, br netlink.Link) error {
	rc, err := d.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("tap %q: %w", d.name, err)
	}
	d.rc = rc
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("tap %q: %w", d.name, err)
	}
	d.index = link.Attrs().Index
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

// Name is the interface name the kernel gave the TAP.
func (d *Device) Name() string { return d.name }

// BatchSize is the largest number of frames one Read returns usefully.
func (d *Device) BatchSize() int { return DefaultBatchSize }

// Read blocks until at least one frame is available, then reads up to
// len(bufs) frames without blocking again. Frame i lands at
// bufs[i][offset:] and is sizes[i] bytes long.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.rbufs, d.rsizes, d.roff, d.rn, d.rerr = bufs, sizes, offset, 0, nil
	err := d.rc.Read(d.readFn)
	n, rerr := d.rn, d.rerr
	d.rbufs, d.rsizes = nil, nil
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
func (d *Device) readFrames(fd uintptr) bool {
	for d.rn < len(d.rbufs) {
		n, err := unix.Read(int(fd), d.rbufs[d.rn][d.roff:])
		switch err {
		case nil:
			d.rsizes[d.rn] = n
			d.rn++
		case unix.EINTR:
		case unix.EAGAIN:
			return d.rn > 0
		default:
			d.rerr = &os.SyscallError{Syscall: "read", Err: err}
			return true
		}
	}
	return true
}

// Write hands one frame to the bridge.
func (d *Device) Write(frame []byte) (int, error) {
	return d.file.Write(frame)
}

// Close closes the TAP, which deletes it, and makes sure it is gone.
// Blocked Reads return an error that satisfies errors.Is(err, os.ErrClosed).
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = d.file.Close()
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
