package underlay

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/encap"
)

// A train sent through a port socket arrives as its datagrams, each from
// the socket's source port, over loopback.
func TestGSOWriterSendsTrains(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := listenLoopback(t, lo)
	dstPort := uint16(rx.LocalAddr().(*net.UDPAddr).Port)

	sport := freePort(t, lo)

	socks := NewTrains(lo, sport, sport, nil)
	defer socks.Close()
	s := socks.Port(sport, 0)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	if socks.Port(sport, 0) != s {
		t.Error("a second get opened another socket")
	}
	if socks.Port(sport-1, 0) != nil {
		t.Error("a port outside the range got a socket")
	}

	const segSize, segs, last = 1000, 5, 300
	train := make([]byte, segSize*(segs-1)+last)
	for i := range train {
		train[i] = byte(i / segSize)
	}
	w := socks.NewWriter(dstPort, nil)
	// The train goes as parts that need not fall on datagram boundaries:
	// the kernel cuts their concatenation.
	parts := [][]byte{train[:300], train[300:1000], train[1000:2500], train[2500:]}
	if n, err := w.WriteTrain(s, lo, parts, segSize); n != segs || err != nil {
		t.Fatalf("WriteTrain: %d datagrams, %v; want %d", n, err, segs)
	}
	rx.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2*segSize)
	for i := 0; i < segs; i++ {
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := train[i*segSize : min((i+1)*segSize, len(train))]
		if from.Port() != sport || !bytes.Equal(buf[:n], want) {
			t.Errorf("datagram %d: %d bytes from port %d, want %d bytes from %d", i, n, from.Port(), len(want), sport)
		}
	}
}

// freePort finds a free UDP port on lo: bind one, release it.
func freePort(t *testing.T, lo netip.Addr) uint16 {
	t.Helper()
	probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	return uint16(probe.LocalAddr().(*net.UDPAddr).Port)
}

// canBind reports whether local:port is free again.
func canBind(lo netip.Addr, port uint16) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// A socket unused for portIdle is retired by a sweep and closed by the
// next, freeing its port; one wanted again in between is taken back.
func TestPortSocketsAgeOut(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	sport := freePort(t, lo)
	socks := NewTrains(lo, sport, sport, nil)
	defer socks.Close()
	now := int64(0)
	s := socks.Port(sport, now)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	now += portSweep
	if socks.Sweep(now); socks.socks[0].Load() != s {
		t.Fatal("a socket in use was retired")
	}
	now += portIdle
	socks.Sweep(now)
	if socks.socks[0].Load() != nil || len(socks.retired) != 1 {
		t.Fatal("an idle socket was not retired")
	}
	if got := socks.Port(sport, now); got != s {
		t.Fatal("a retired socket was not taken back")
	}
	if n := socks.Sockets(); n != 1 {
		t.Fatalf("Sockets() = %d with one socket taken back, want 1", n)
	}
	now += portIdle + portSweep
	socks.Sweep(now)
	if canBind(lo, sport) {
		t.Fatal("the port is free while retired")
	}
	now += portSweep
	if n := socks.Sweep(now); n != 1 || !canBind(lo, sport) {
		t.Fatalf("second sweep closed %d sockets, port free %v", n, canBind(lo, sport))
	}
	if n := socks.Sockets(); n != 0 {
		t.Fatalf("Sockets() = %d with every socket closed, want 0", n)
	}
	if got := socks.Port(sport, now); got == nil || got == s {
		t.Fatal("a closed port was not opened anew")
	}
	if n := socks.Sockets(); n != 1 {
		t.Fatalf("Sockets() = %d after opening one again, want 1", n)
	}
}

// Senders racing with sweeps that retire and close their sockets never
// send on a descriptor closed under them: a send either goes or fails
// with os.ErrClosed (and the pipeline falls back to the raw socket).
func TestPortSocketsSweepRacesSenders(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := listenLoopback(t, lo)
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	dst := uint16(rx.LocalAddr().(*net.UDPAddr).Port)
	sport := freePort(t, lo)
	socks := NewTrains(lo, sport, sport, nil)
	defer socks.Close()
	var clock sync.Mutex
	now := int64(0)
	tick := func(d int64) int64 {
		clock.Lock()
		defer clock.Unlock()
		now += d
		return now
	}
	stop := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	var sent, failed int
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := socks.NewWriter(dst, nil)
			train := make([]byte, 3000)
			for time.Now().Before(stop) {
				s := socks.Port(sport, tick(0))
				if s == nil {
					continue
				}
				err := w.send(s, [][]byte{train}, 1000, lo)
				mu.Lock()
				if err == nil {
					sent++
				} else if errors.Is(err, os.ErrClosed) {
					failed++
				} else {
					mu.Unlock()
					t.Errorf("send: %v", err)
					return
				}
				mu.Unlock()
			}
		}()
	}
	for time.Now().Before(stop) {
		socks.Sweep(tick(portIdle + portSweep))
	}
	wg.Wait()
	if sent == 0 {
		t.Errorf("no train sent (%d failed)", failed)
	}
	t.Logf("%d trains sent, %d found their socket closed", sent, failed)
}

// recordingWriter is a Writer that records what it is given, until told
// to discard it.
type recordingWriter struct {
	got     []Datagram
	discard bool
}

func (w *recordingWriter) WriteBatch(d []Datagram) (int, error) {
	if w.discard {
		return len(d), nil
	}
	for _, dg := range d {
		w.got = append(w.got, Datagram{Buf: bytes.Clone(dg.Buf), Addr: dg.Addr})
	}
	return len(d), nil
}

// A train whose socket is gone leaves through the fallback writer, cut
// into datagrams with UDP headers of the train's ports, whatever the parts'
// boundaries.
func TestWriteTrainFallsBack(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	sport := freePort(t, lo)
	socks := NewTrains(lo, sport, sport, nil)
	s := socks.Port(sport, 0)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	socks.Close() // s's descriptor with it
	const dport, segSize, segs, last = 4789, 1000, 4, 10
	train := make([]byte, segSize*(segs-1)+last)
	for i := range train {
		train[i] = byte(i/segSize + 1)
	}
	var fb recordingWriter
	w := socks.NewWriter(dport, &fb)
	to := netip.MustParseAddr("198.18.0.2")
	parts := [][]byte{train[:10], train[10:1500], train[1500:]}
	if n, err := w.WriteTrain(s, to, parts, segSize); n != segs || err != nil {
		t.Fatalf("WriteTrain: %d datagrams, %v; want %d", n, err, segs)
	}
	if len(fb.got) != segs {
		t.Fatalf("fallback got %d datagrams, want %d", len(fb.got), segs)
	}
	for i, d := range fb.got {
		want := train[i*segSize : min((i+1)*segSize, len(train))]
		u := encap.UDP(d.Buf)
		if d.Addr != to || u.SourcePort() != sport || u.DestinationPort() != dport || int(u.Length()) != len(d.Buf) ||
			!bytes.Equal(d.Buf[encap.UDPHeaderLen:], want) {
			t.Errorf("datagram %d: to %s, ports %d->%d, length %d of %d, payload equal %t",
				i, d.Addr, u.SourcePort(), u.DestinationPort(), u.Length(), len(d.Buf), bytes.Equal(d.Buf[encap.UDPHeaderLen:], want))
		}
	}
	fb.discard = true
	if a := testing.AllocsPerRun(50, func() { w.WriteTrain(s, to, parts, segSize) }); a != 0 {
		t.Errorf("a fallen-back train: %v allocations", a)
	}
	if _, err := w.WriteTrain(s, to, [][]byte{make([]byte, MaxTrainBytes+1)}, segSize); err == nil {
		t.Error("a train over MaxTrainBytes was taken")
	}
}

// listenLoopback is a UDP socket on a free port of lo, closed when the
// test ends.
func listenLoopback(t *testing.T, lo netip.Addr) *net.UDPConn {
	t.Helper()
	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return rx
}
