package vtep

import (
	"bytes"
	"net"
	"net/netip"
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
	s := socks.get(sport)
	if s == nil {
		t.Fatal("no socket for a free port")
	}
	if socks.get(sport) != s {
		t.Error("a second get opened another socket")
	}
	if socks.get(sport-1) != nil {
		t.Error("a port outside the range got a socket")
	}

	const segSize, segs, last = 1000, 5, 300
	train := make([]byte, segSize*(segs-1)+last)
	for i := range train {
		train[i] = byte(i / segSize)
	}
	w := newGSOWriter(dstPort)
	if err := w.send(s, train, segSize, lo); err != nil {
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
