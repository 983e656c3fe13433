package vtep

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/vtepd/vtepd/underlay"
)

// fakeTAP is an in-memory FrameQueue: frames pushed come out of its reads
// in order; frames written are kept in out.
type fakeTAP struct {
	name   string
	hdr    int           // with offloads: each frame pushed starts with this many header bytes
	ready  chan struct{} // a token when frames may be queued
	closed chan struct{}
	once   sync.Once

	mu     sync.Mutex
	queued [][]byte
	err    error // returned by the next read, as when a TAP is deleted
	out    [][]byte
}

func newFakeTAP(name string) *fakeTAP {
	return &fakeTAP{name: name, ready: make(chan struct{}, 1), closed: make(chan struct{})}
}

// push queues a frame for reading.
func (f *fakeTAP) push(frame []byte) {
	f.mu.Lock()
	f.queued = append(f.queued, frame)
	f.mu.Unlock()
	f.wake()
}

// failWith makes the next read fail with err.
func (f *fakeTAP) failWith(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	f.wake()
}

func (f *fakeTAP) wake() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

func (f *fakeTAP) ReadLocked(bufs [][]byte, sizes []int, offset int, mu sync.Locker) (int, error) {
	for {
		mu.Lock()
		n, err := f.TryRead(bufs, sizes, offset)
		if n > 0 {
			return n, nil
		}
		mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-f.ready:
		case <-f.closed:
			return 0, os.ErrClosed
		}
	}
}

func (f *fakeTAP) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		err := f.err
		f.err = nil
		return 0, err
	}
	n := 0
	for n < len(bufs) && len(f.queued) > 0 {
		sizes[n] = copy(bufs[n][offset-f.hdr:], f.queued[0]) - f.hdr
		f.queued = f.queued[1:]
		n++
	}
	return n, nil
}

func (f *fakeTAP) Write(frame []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, append([]byte(nil), frame...))
	return len(frame), nil
}

// writes is how many frames were written.
func (f *fakeTAP) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.out)
}

func (f *fakeTAP) written() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.out...)
}

func (f *fakeTAP) BatchSize() int { return 64 }
func (f *fakeTAP) Name() string   { return f.name }
func (f *fakeTAP) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// fakeConn is an in-memory underlay.Conn: datagrams pushed are received (a
// Datagram with Seg set arrives as that train); datagrams sent are
// recorded, or only counted when discard is set (so that allocation tests
// measure the engine, not the fake).
type fakeConn struct {
	ready   chan struct{} // a token when datagrams may be queued
	closed  chan struct{}
	once    sync.Once
	discard bool
	failAt  map[int]error // sent-datagram index -> error to return for it

	mu     sync.Mutex
	queued []underlay.Datagram
	sent   []underlay.Datagram
	count  int
}

func newFakeConn() *fakeConn {
	return &fakeConn{ready: make(chan struct{}, 1), closed: make(chan struct{})}
}

// push queues a datagram for receiving.
func (c *fakeConn) push(dg underlay.Datagram) {
	c.mu.Lock()
	c.queued = append(c.queued, dg)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *fakeConn) ReadBatchLocked(d []underlay.Datagram, mu sync.Locker) (int, error) {
	for {
		mu.Lock()
		if n, _ := c.TryReadBatch(d); n > 0 {
			return n, nil
		}
		mu.Unlock()
		select {
		case <-c.ready:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
}

func (c *fakeConn) TryReadBatch(d []underlay.Datagram) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(d) && len(c.queued) > 0 {
		dg := c.queued[0]
		c.queued = c.queued[1:]
		d[n].N = copy(d[n].Buf, dg.Buf)
		d[n].Addr = dg.Addr
		d[n].Seg = dg.Seg // a train when set, as UDP GRO makes them
		n++
	}
	return n, nil
}

func (c *fakeConn) NewWriter(size int) underlay.Writer { return c }

func (c *fakeConn) WriteBatch(d []underlay.Datagram) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, dg := range d {
		if err := c.failAt[c.count]; err != nil {
			delete(c.failAt, c.count)
			return i, err
		}
		c.count++
		if !c.discard {
			c.sent = append(c.sent, underlay.Datagram{Buf: append([]byte(nil), dg.Buf...), Addr: dg.Addr})
		}
	}
	return len(d), nil
}

func (c *fakeConn) sentDatagrams() []underlay.Datagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]underlay.Datagram(nil), c.sent...)
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var _ underlay.Conn = (*fakeConn)(nil)
var _ FrameQueue = (*fakeTAP)(nil)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// net is the i-th network of the test engine.
func (te *testEngine) net(i int) *network { return te.nets.Load().order[i] }

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// editDev changes network i's device.
func (te *testEngine) editDev(i int, f func(d *Device)) {
	d := *te.net(i).dev.Load()
	f(&d)
	te.net(i).dev.Store(&d)
}

// runEngine runs e until the function it returns is called, which checks
// that Run ended cleanly.
func runEngine(t *testing.T, e *Engine) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
