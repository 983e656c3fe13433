package vtep

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// A train sent through a port socket arrives as its datagrams, each from
// the socket's source port, over loopback.
func TestGSOWriterSendsTrains(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	dstPort := uint16(rx.LocalAddr().(*net.UDPAddr).Port)

	// A free port for the source: bind one, release it, use it.
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	sport := uint16(probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()

	socks := newPortSockets(lo, sport, sport)
	defer socks.close()
	s := socks.get(sport, 0)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	if socks.get(sport, 0) != s {
		t.Error("a second get opened another socket")
	}
	if socks.get(sport-1, 0) != nil {
		t.Error("a port outside the range got a socket")
	}

	const segSize, segs, last = 1000, 5, 300
	train := make([]byte, segSize*(segs-1)+last)
	for i := range train {
		train[i] = byte(i / segSize)
	}
	w := newGSOWriter(dstPort)
	// The train goes as parts that need not fall on datagram boundaries:
	// the kernel cuts their concatenation.
	parts := [][]byte{train[:300], train[300:1000], train[1000:2500], train[2500:]}
	if err := w.send(s, parts, segSize, lo); err != nil {
		t.Fatalf("send: %v", err)
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
	socks := newPortSockets(lo, sport, sport)
	defer socks.close()
	now := int64(0)
	s := socks.get(sport, now)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	now += portSweep
	if socks.sweep(now); socks.socks[0].Load() != s {
		t.Fatal("a socket in use was retired")
	}
	now += portIdle
	socks.sweep(now)
	if socks.socks[0].Load() != nil || len(socks.retired) != 1 {
		t.Fatal("an idle socket was not retired")
	}
	if got := socks.get(sport, now); got != s {
		t.Fatal("a retired socket was not taken back")
	}
	if n := socks.opened(); n != 1 {
		t.Fatalf("opened() = %d with one socket taken back, want 1", n)
	}
	now += portIdle + portSweep
	socks.sweep(now)
	if canBind(lo, sport) {
		t.Fatal("the port is free while retired")
	}
	now += portSweep
	if n := socks.sweep(now); n != 1 || !canBind(lo, sport) {
		t.Fatalf("second sweep closed %d sockets, port free %v", n, canBind(lo, sport))
	}
	if n := socks.opened(); n != 0 {
		t.Fatalf("opened() = %d with every socket closed, want 0", n)
	}
	if got := socks.get(sport, now); got == nil || got == s {
		t.Fatal("a closed port was not opened anew")
	}
	if n := socks.opened(); n != 1 {
		t.Fatalf("opened() = %d after opening one again, want 1", n)
	}
}

// Senders racing with sweeps that retire and close their sockets never
// send on a descriptor closed under them: a send either goes or fails
// with os.ErrClosed (and the pipeline falls back to the raw socket).
func TestPortSocketsSweepRacesSenders(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
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
	socks := newPortSockets(lo, sport, sport)
	defer socks.close()
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
			w := newGSOWriter(dst)
			train := make([]byte, 3000)
			for time.Now().Before(stop) {
				s := socks.get(sport, tick(0))
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
		socks.sweep(tick(portIdle + portSweep))
	}
	wg.Wait()
	if sent == 0 {
		t.Errorf("no train sent (%d failed)", failed)
	}
	t.Logf("%d trains sent, %d found their socket closed", sent, failed)
}
