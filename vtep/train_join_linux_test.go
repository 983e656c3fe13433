package vtep

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/underlay"
)

// Super-frames of one flow read in one batch leave in full trains: a
// 46-segment super-frame alone is a train of 44 and one of 2, but the
// next super-frame's segments fill the second. Every datagram arrives in
// order, as the segment it must be.
func TestTrainsJoinTheSuperFramesOfABatch(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	fd, dstPort := groReceiver(t, lo)
	// A free source port: bind one, release it, let the trains take it.
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	sport := uint16(probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()

	te, p := trainPipeline(t, lo, dstPort, sport, sport)
	const mss, segs, frames = 1398, 46, 3
	for i := range frames {
		f := gsoFrameAt(t, macRemote, macLocal, uint32(1000+i*segs*mss), "", segs*mss, mss)
		p.sizes[i] = copy(p.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:], f) - offload.VirtioNetHdrLen
	}
	p.forward(frames)
	if sent := te.conn.sentDatagrams(); len(sent) != 0 {
		t.Fatalf("%d datagrams went by the raw socket", len(sent))
	}

	seq := uint32(1000)
	trains := recvTrains(t, fd, frames*segs, func(got int, dg []byte) {
		d := underlay.Datagram{Buf: append(make([]byte, encap.UDPHeaderLen), dg...)}
		_, tcp := innerTCP(t, d)
		if tcp.Seq != seq || len(tcp.Payload) != mss {
			t.Fatalf("datagram %d: seq %d with %d bytes, want seq %d with %d", got, tcp.Seq, len(tcp.Payload), seq, mss)
		}
		seq += mss
	})
	// 138 segments: three full trains of 44, then 6.
	want := []int{44, 44, 44, 6}
	if len(trains) != len(want) {
		t.Fatalf("trains of %v datagrams, want %v", trains, want)
	}
	for i := range want {
		if trains[i] != want[i] {
			t.Fatalf("trains of %v datagrams, want %v", trains, want)
		}
	}
	if c := te.net(0).counters.TxPackets.Load(); c != frames*segs {
		t.Errorf("vtep_tx_packets_total = %d, want %d", c, frames*segs)
	}
}

// trainPipeline is a test engine whose trains leave local address lo from
// source ports portLo to portHi for port dstPort, with macRemote behind lo,
// and a TX pipeline of its network, with offloads.
func trainPipeline(t *testing.T, lo netip.Addr, dstPort, portLo, portHi uint16) (*testEngine, *txPipeline) {
	t.Helper()
	te := newTestEngine(t)
	cfg := te.cfg.Load()
	cfg.Port, cfg.SrcPortLow, cfg.SrcPortHigh = dstPort, portLo, portHi
	te.trains = underlay.NewTrains(lo, portLo, portHi, nil)
	t.Cleanup(te.trains.Close)
	te.fdb.Learn(200, macRemote, lo, 0)
	return te, te.newTxPipeline(te.net(0), te.taps[0], te.conn, true)
}

// groReceiver opens a UDP socket on a, with UDP_GRO so that it sees each
// train as one message, and returns it and its port; the test closes it.
func groReceiver(t *testing.T, a netip.Addr) (int, uint16) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
		t.Skipf("no UDP_GRO: %v", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: a.As4()}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	sa, _ := unix.Getsockname(fd)
	return fd, uint16(sa.(*unix.SockaddrInet4).Port)
}

// recvTrains receives count datagrams on fd, handing each (its VXLAN
// header first) to check with its number, and returns how many datagrams
// each message held.
func recvTrains(t *testing.T, fd, count int, check func(n int, dg []byte)) []int {
	t.Helper()
	var trains []int
	buf := make([]byte, 1<<16)
	oob := make([]byte, 64)
	for got := 0; got < count; {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			t.Fatalf("after %d datagrams in trains %v: %v", got, trains, err)
		}
		seg := groSize(t, oob[:oobn])
		if seg == 0 {
			seg = n
		}
		trains = append(trains, (n+seg-1)/seg)
		for off := 0; off < n; off += seg {
			check(got, buf[off:min(off+seg, n)])
			got++
		}
	}
	return trains
}

// groSize is the segment size in a received message's UDP_GRO control
// message, 0 without one.
func groSize(t *testing.T, oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 4 {
			return int(binary.NativeEndian.Uint32(m.Data))
		}
	}
	return 0
}

// Ordinary frames of a few flows, interleaved in a batch, leave as one
// train per flow, each in order; a flow with one frame in the batch goes
// by the raw socket's sendmmsg instead of a sendmsg of its own, and opens
// no port socket.
func TestTrainsOfOrdinaryFrames(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	fd, dstPort := groReceiver(t, lo)

	// Source ports from a range the test hopes is free; a flow whose
	// port is taken would leave by the raw socket, and the test says so.
	const portLo, portHi = 47100, 47163
	te, p := trainPipeline(t, lo, dstPort, portLo, portHi)

	// Three flows (by source MAC) on three different source ports.
	var flows []fdb.MAC
	seen := map[uint16]bool{}
	for k := byte(1); len(flows) < 3; k++ {
		src := fdb.MAC{2, 0, 0, 0, 9, k}
		sport := encap.SourcePort(encap.FlowHash(frame(macRemote, src, 100)), portLo, portHi)
		if !seen[sport] {
			seen[sport] = true
			flows = append(flows, src)
		}
	}
	// A and B alternate, 15 frames each, of 100 and 120 bytes; C has one.
	const each = 15
	var n int
	add := func(src fdb.MAC, size int, seq byte) {
		f := frame(macRemote, src, size)
		f[encap.EthernetHeaderLen] = seq
		offload.ClearVirtioNetHdr(p.bufs[n][encap.Headroom-offload.VirtioNetHdrLen:])
		p.sizes[n] = copy(p.bufs[n][encap.Headroom:], f)
		n++
	}
	for i := range each {
		add(flows[0], 100, byte(i))
		add(flows[1], 120, byte(i))
	}
	add(flows[2], 80, 0)
	p.forward(n)
	if sent := te.conn.sentDatagrams(); len(sent) != 1 {
		t.Fatalf("%d datagrams went by the raw socket, want 1 (flow C's)", len(sent))
	}
	if n := te.trains.Sockets(); n != 2 {
		t.Errorf("%d port sockets open, want 2: flow C's lone frame needs none", n)
	}

	next := map[fdb.MAC]byte{}
	trains := recvTrains(t, fd, 2*each, func(got int, dg []byte) {
		vni, inner, err := encap.Decap(dg)
		if err != nil || vni != 200 {
			t.Fatalf("datagram %d: vni %d, %v", got, vni, err)
		}
		src := fdb.MAC(inner[6:12])
		if inner[encap.EthernetHeaderLen] != next[src] {
			t.Fatalf("flow %v: frame %d came where %d was due", src, inner[encap.EthernetHeaderLen], next[src])
		}
		next[src]++
	})
	if len(trains) != 2 || trains[0] != each || trains[1] != each {
		t.Errorf("trains of %v datagrams, want two of %d", trains, each)
	}
	if c := te.net(0).counters.TxPackets.Load(); c != 2*each+1 {
		t.Errorf("vtep_tx_packets_total = %d, want %d", c, 2*each+1)
	}

	// The same trains again cost no allocation (flow C's frame is left
	// out: the fake raw socket records what it sends). The receiver's
	// buffer takes them.
	m := n - 1
	frames := make([][]byte, m)
	for i := range m {
		frames[i] = bytes.Clone(p.bufs[i][:encap.Headroom+p.sizes[i]])
	}
	if a := testing.AllocsPerRun(20, func() {
		for i := range m {
			copy(p.bufs[i], frames[i])
			offload.ClearVirtioNetHdr(p.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:])
		}
		p.forward(m)
	}); a != 0 {
		t.Errorf("%v allocations per batch", a)
	}
}

// A flow whose source port something else holds goes by the raw socket,
// every frame of it, in order.
func TestTrainsWithoutTheirPort(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, dstPort := groReceiver(t, lo)
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	sport := uint16(held.LocalAddr().(*net.UDPAddr).Port)

	te, p := trainPipeline(t, lo, dstPort, sport, sport)
	const n = 5
	for i := range n {
		f := frame(macRemote, macLocal, 100)
		f[encap.EthernetHeaderLen] = byte(i)
		offload.ClearVirtioNetHdr(p.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:])
		p.sizes[i] = copy(p.bufs[i][encap.Headroom:], f)
	}
	p.forward(n)
	sent := te.conn.sentDatagrams()
	if len(sent) != n {
		t.Fatalf("%d datagrams by the raw socket, want %d", len(sent), n)
	}
	for i, d := range sent {
		if got := d.Buf[encap.Headroom+encap.EthernetHeaderLen]; got != byte(i) {
			t.Fatalf("datagram %d carries frame %d", i, got)
		}
	}
	if s := te.trains.Sockets(); s != 0 {
		t.Errorf("%d port sockets open, want 0", s)
	}
}
