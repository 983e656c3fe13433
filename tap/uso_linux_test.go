package tap_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/tap"
)

// UDP segmentation offload on a real TAP: a train of datagrams written as
// one GSO_UDP_L4 super-frame reaches a container's socket as the same
// datagrams, and a container's UDP_SEGMENT send comes out of the TAP as one
// super-frame. With NoUSO (a kernel before 6.2) the TAP says so, and the
// same send comes out cut into datagrams.
func TestIntegrationTAPUDPSegmentation(t *testing.T) {
	for _, uso := range []bool{true, false} {
		t.Run(fmt.Sprintf("uso=%v", uso), func(t *testing.T) { testTAPUSO(t, uso) })
	}
}

func testTAPUSO(t *testing.T, uso bool) {
	host, ctr, dev := tapLab(t, "tu", tap.Config{Queues: 1, Offload: true, NoUSO: !uso})
	if dev.USO() != uso {
		var u unix.Utsname
		unix.Uname(&u)
		t.Fatalf("USO() = %v on Linux %s, want %v", dev.USO(), bytes.TrimRight(u.Release[:], "\x00"), uso)
	}
	ctrMAC, err := ctr.MAC()
	if err != nil {
		t.Fatal(err)
	}
	ghost := netip.MustParseAddr("198.19.0.99")
	ghostMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	if out, err := ctr.Exec("ip", "neigh", "replace", ghost.String(), "lladdr", ghostMAC.String(), "dev", "eth0", "nud", "permanent"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var sock int
	if err := ctr.Do(func() (err error) {
		sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Bind(sock, &unix.SockaddrInet4{Port: 9000, Addr: ctr.Addr.Addr().As4()})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})

	// Frames that come out of the TAP, read in the background.
	q := dev.Queues()[0]
	frames := make(chan []byte, 256)
	var reader sync.WaitGroup
	reader.Go(func() {
		bufs := [][]byte{make([]byte, 70000)}
		sizes := []int{0}
		var mu sync.Mutex
		for {
			n, err := q.ReadLocked(bufs, sizes, offload.VirtioNetHdrLen, &mu)
			if err != nil {
				return
			}
			mu.Unlock()
			if n == 1 {
				select {
				case frames <- bytes.Clone(bufs[0][:offload.VirtioNetHdrLen+sizes[0]]):
				default:
				}
			}
		}
	})
	defer func() { host.Do(dev.Close); reader.Wait() }()

	// In: 20 datagrams of 64 bytes, merged as RX does, in one write.
	const count, size = 20, 64
	var dgs [][]byte
	for i := range count {
		dgs = append(dgs, udpFrame(t, ghostMAC, ctrMAC, ghost, ctr.Addr.Addr(), bytes.Repeat([]byte{byte(i)}, size)))
	}
	c := offload.NewCoalescer(count, 1450, 0)
	c.MergeUDP(uso)
	for i, d := range dgs {
		buf := make([]byte, offload.VirtioNetHdrLen+4096)
		copy(buf[offload.VirtioNetHdrLen:], d)
		c.Add(buf, offload.VirtioNetHdrLen, len(d), i, 0)
	}
	c.Finish()
	outs := c.Outputs()
	if want := map[bool]int{true: 1, false: count}[uso]; len(outs) != want {
		t.Fatalf("%d writes, want %d", len(outs), want)
	}
	for i := range outs {
		if _, err := q.Write(outs[i].Packet()); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	buf := make([]byte, 2048)
	for i := range count {
		n, _, err := unix.Recvfrom(sock, buf, 0)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], bytes.Repeat([]byte{byte(i)}, size)) {
			t.Fatalf("datagram %d: got % x", i, buf[:n])
		}
	}

	// Out: 1000 bytes sent with UDP_SEGMENT of 100.
	if err := unix.SetsockoptInt(sock, unix.SOL_UDP, unix.UDP_SEGMENT, 100); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	if err := unix.Sendto(sock, payload, 0, &unix.SockaddrInet4{Port: 7777, Addr: ghost.As4()}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	deadline := time.After(3 * time.Second)
	for len(got) < len(payload) {
		var f []byte
		select {
		case f = <-frames:
		case <-deadline:
			t.Fatalf("%d of %d bytes came out of the TAP", len(got), len(payload))
		}
		var h offload.VirtioNetHdr
		h.Decode(f)
		p := gopacket.NewPacket(f[offload.VirtioNetHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil || udp.DstPort != 7777 {
			continue // the container's own chatter
		}
		switch {
		case uso && (h.GSOType != offload.GSOUDPL4 || h.GSOSize != 100 || len(udp.Payload) != 1000):
			t.Fatalf("with USO: a frame with %d bytes, header %+v; want the whole send, GSO_UDP_L4 of 100", len(udp.Payload), h)
		case !uso && (h.IsGSO() || len(udp.Payload) != 100):
			t.Fatalf("without USO: a frame with %d bytes, header %+v; want datagrams of 100", len(udp.Payload), h)
		}
		got = append(got, udp.Payload...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("what came out of the TAP is not what was sent")
	}
}

// udpFrame is an IPv4 UDP datagram from src to dst (port 5555 to 9000),
// checksums good.
func udpFrame(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, pl []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Flags: layers.IPv4DontFragment,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: 5555, DstPort: 9000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
