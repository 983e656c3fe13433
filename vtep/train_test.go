package vtep

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/underlay"
)

// train lays datagrams end to end as UDP GRO hands them over: one
// message, every datagram but the last exactly seg bytes long.
func train(t testing.TB, dgs ...[]byte) underlay.Datagram {
	t.Helper()
	var b []byte
	seg := len(dgs[0])
	for i, d := range dgs {
		if len(d) != seg && (i != len(dgs)-1 || len(d) > seg) {
			t.Fatalf("datagram %d: %d bytes in a train of %d", i, len(d), seg)
		}
		b = append(b, d...)
	}
	return underlay.Datagram{Buf: b, N: len(b), Seg: seg}
}

// receiveTrains runs messages (datagrams or trains) through the RX
// pipeline as one batch.
func (te *testEngine) receiveTrains(from netip.Addr, msgs ...underlay.Datagram) {
	p := te.newRxPipeline(0, te.conn)
	for i, m := range msgs {
		p.dg[i].N = copy(p.dg[i].Buf, m.Buf[:m.N])
		p.dg[i].Addr = from
		p.dg[i].Seg = m.Seg
	}
	p.deliver(len(msgs))
}

// segments builds n VXLAN datagrams of consecutive TCP segments of one
// flow (source port sport) with mss bytes each, and the stream they carry.
func segments(t testing.TB, vni uint32, sport uint16, n, mss int) (dgs [][]byte, stream []byte) {
	t.Helper()
	// gopacket builds the first; the others are it with their sequence
	// number, payload and checksum rewritten (gopacket is slow).
	first := tcpFrameFrom(t, macLocal, macRemote, sport, 1000, "", make([]byte, mss))
	for i := 0; i < n; i++ {
		f := bytes.Clone(first)
		tcp := f[tcpL4:]
		binary.BigEndian.PutUint32(tcp[4:], uint32(1000+i*mss))
		for k := range tcp[20:] {
			tcp[20+k] = byte((i*mss + k) * 13)
		}
		tcp[offload.TCPChecksumOffset], tcp[offload.TCPChecksumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(tcp[offload.TCPChecksumOffset:],
			offload.Checksum(tcp, offload.PseudoHeaderSum(6, f[26:30], f[30:34], len(tcp))))
		dgs = append(dgs, vxlan(vni, f))
		stream = append(stream, tcp[20:]...)
	}
	return dgs, stream
}

// streams cuts what a TAP with offloads got back into segments and
// returns each TCP flow's payload, by source port, in the order written.
func streams(t testing.TB, writes [][]byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for _, w := range writes {
		var h offload.VirtioNetHdr
		h.Decode(w)
		frames := [][]byte{w[offload.VirtioNetHdrLen:]}
		if h.IsGSO() {
			var s offload.Segmenter
			if err := s.Reset(w[offload.VirtioNetHdrLen:], &h); err != nil {
				t.Fatalf("a super-frame does not segment: %v", err)
			}
			frames = nil
			for !s.Done() {
				buf := make([]byte, s.MaxSegmentLen())
				frames = append(frames, buf[:s.Next(buf)])
			}
		}
		for _, f := range frames {
			sport := binary.BigEndian.Uint16(f[tcpL4:])
			out[sport] = append(out[sport], f[tcpL4+20:]...)
		}
	}
	return out
}

func (te *testEngine) peerRx(a netip.Addr) uint64 {
	return te.peers.get(a).rxPackets.Load()
}

// A train of one flow's segments becomes one TAP write, the very one the
// same datagrams make when they come one by one; counters count
// datagrams, and the train once.
func TestRxTrainCoalesces(t *testing.T) {
	dgs, stream := segments(t, 200, 40000, 10, 1398)
	one := newTestEngine(t)
	one.withOffloadTAPs()
	one.receive(peerB, dgs...)

	te := newTestEngine(t)
	te.withOffloadTAPs()
	te.receiveTrains(peerB, train(t, dgs...))
	got := te.taps[0].written()
	if len(got) != 1 || !bytes.Equal(got[0], one.taps[0].written()[0]) {
		t.Fatalf("TAP got %d writes, want the one super-frame the datagrams make alone", len(got))
	}
	if s := streams(t, got)[40000]; !bytes.Equal(s, stream) {
		t.Errorf("stream of %d bytes, want %d", len(s), len(stream))
	}
	c := &te.net(0).counters
	if c.RxPackets.Load() != 10 || c.RxCoalesced.Load() != 1 || c.RxGROTrains.Load() != 1 || te.peerRx(peerB) != 10 {
		t.Errorf("rx %d packets, %d coalesced, %d trains, peer %d; want 10, 1, 1, 10",
			c.RxPackets.Load(), c.RxCoalesced.Load(), c.RxGROTrains.Load(), te.peerRx(peerB))
	}
}

// A bad datagram in the middle of a train is dropped alone and counted by
// its reason; the datagrams around it are delivered.
func TestRxTrainDropsOneBadDatagram(t *testing.T) {
	for _, tt := range []struct {
		name   string
		spoil  func(d []byte) []byte
		unk    bool
		reason metrics.Reason
	}{
		{"bad flags", func(d []byte) []byte { d[0] = 0; return d }, true, metrics.BadFlags},
		{"unknown vni", func(d []byte) []byte { encap.Header(d).Encode(999); return d }, true, metrics.UnknownVNI},
		{"vlan tagged", func(d []byte) []byte { d[8+12], d[8+13] = 0x81, 0x00; return d }, false, metrics.VLAN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEngine(t, config.Network{Name: "a", VNI: 200, TAP: "t200", Learning: true, Ageing: 60e9, MaxEntries: 10, DropVLAN: true})
			te.withOffloadTAPs()
			dgs, stream := segments(t, 200, 40000, 5, 1000)
			dgs[2] = tt.spoil(dgs[2])
			te.receiveTrains(peerB, train(t, dgs...))
			got := te.taps[0].written()
			if len(got) != 2 {
				t.Errorf("TAP got %d writes, want 2 super-frames around the dropped datagram", len(got))
			}
			want := append(append([]byte(nil), stream[:2000]...), stream[3000:]...)
			if s := streams(t, got)[40000]; !bytes.Equal(s, want) {
				t.Errorf("stream of %d bytes, want %d", len(s), len(want))
			}
			c := &te.net(0).counters
			dc := c
			if tt.unk {
				dc = &te.unknown
			}
			if dc.Drops[tt.reason].Load() != 1 || c.RxPackets.Load() != 4 || te.peerRx(peerB) != 5 {
				t.Errorf("%s drops %d, rx %d, peer %d; want 1, 4, 5", tt.reason, dc.Drops[tt.reason].Load(), c.RxPackets.Load(), te.peerRx(peerB))
			}
		})
	}
}

// A train mixing two flows keeps each flow's bytes in order.
func TestRxTrainTwoFlows(t *testing.T) {
	te := newTestEngine(t)
	te.withOffloadTAPs()
	a, sa := segments(t, 200, 40000, 6, 1000)
	b, sb := segments(t, 200, 40001, 6, 1000)
	var mixed [][]byte
	for i := range a {
		mixed = append(mixed, a[i], b[i])
	}
	te.receiveTrains(peerB, train(t, mixed...))
	got := te.taps[0].written()
	s := streams(t, got)
	if !bytes.Equal(s[40000], sa) || !bytes.Equal(s[40001], sb) {
		t.Errorf("streams of %d and %d bytes, want %d and %d in order", len(s[40000]), len(s[40001]), len(sa), len(sb))
	}
	if len(got) != 2 {
		t.Errorf("TAP got %d writes, want a super-frame per flow", len(got))
	}
}

// A train for a TAP without offloads is written datagram by datagram.
func TestRxTrainWithoutOffloads(t *testing.T) {
	te := newTestEngine(t)
	dgs, _ := segments(t, 200, 40000, 3, 700)
	last := tcpFrame(t, macLocal, macRemote, 1000+3*700, "P", pattern(100))
	dgs = append(dgs, vxlan(200, last))
	te.receiveTrains(peerB, train(t, dgs...))
	got := te.taps[0].written()
	if len(got) != len(dgs) {
		t.Fatalf("TAP got %d writes, want %d", len(got), len(dgs))
	}
	for i := range dgs {
		if !bytes.Equal(got[i], dgs[i][encap.HeaderLen:]) {
			t.Errorf("write %d is not datagram %d's frame", i, i)
		}
	}
	if c := &te.net(0).counters; c.RxPackets.Load() != 4 || c.RxGROTrains.Load() != 1 {
		t.Errorf("rx %d, trains %d; want 4, 1", c.RxPackets.Load(), c.RxGROTrains.Load())
	}
}

// A full batch of long trains of short datagrams (64 × 128) fills the
// coalescer and its spares many times over: everything still arrives, in
// order.
func TestRxTrainsFillTheCoalescer(t *testing.T) {
	te := newTestEngine(t)
	te.withOffloadTAPs()
	const per, mss = 128, 400
	all, stream := segments(t, 200, 40000, rxBatch*per, mss)
	var msgs []underlay.Datagram
	for i := 0; i < rxBatch; i++ {
		msgs = append(msgs, train(t, all[i*per:(i+1)*per]...))
	}
	te.receiveTrains(peerB, msgs...)
	got := te.taps[0].written()
	if s := streams(t, got)[40000]; !bytes.Equal(s, stream) {
		t.Errorf("stream of %d bytes, want %d", len(s), len(stream))
	}
	c := &te.net(0).counters
	if c.RxPackets.Load() != rxBatch*per || c.RxGROTrains.Load() != rxBatch {
		t.Errorf("rx %d, trains %d; want %d, %d", c.RxPackets.Load(), c.RxGROTrains.Load(), rxBatch*per, rxBatch)
	}
	// About one super-frame per 64 KiB: (65535-40)/400 segments each.
	if want := rxBatch*per/((65535-40)/mss) + 1; len(got) > 2*want {
		t.Errorf("%d TAP writes, want about %d", len(got), want)
	}
}

// Whatever Seg the kernel reports, a message is cut into datagrams that
// cover it exactly, never past N: 0 or N or more is one datagram, 1 makes
// datagrams of a byte, a size that does not divide N a shorter last one.
func TestRxTrainOddSegmentSizes(t *testing.T) {
	dgs, _ := segments(t, 200, 40000, 3, 500)
	msg := train(t, dgs...)
	for _, tt := range []struct {
		seg       int
		datagrams uint64
	}{
		{0, 1}, // one datagram holding all three: a frame with trailing bytes
		{-5, 1},
		{msg.N, 1},
		{msg.N + 100, 1},
		{1, uint64(msg.N)},
		{len(dgs[0]), 3},
		{len(dgs[0]) + 1, 3}, // the first is a frame with a byte to spare
		{len(dgs[0]) - 1, 4},
	} {
		for _, offloads := range []bool{false, true} {
			te := newTestEngine(t)
			if offloads {
				te.withOffloadTAPs()
			}
			m := msg
			m.Seg = tt.seg
			te.receiveTrains(peerB, m)
			if got := te.peerRx(peerB); got != tt.datagrams {
				t.Errorf("seg %d: %d datagrams counted, want %d", tt.seg, got, tt.datagrams)
			}
			// Each is delivered or dropped, once.
			fate := te.net(0).counters.RxPackets.Load()
			for r := range metrics.NumReasons {
				fate += te.net(0).counters.Drops[r].Load() + te.unknown.Drops[r].Load()
			}
			if fate != tt.datagrams {
				t.Errorf("seg %d, offload %v: %d datagrams delivered or dropped, want %d", tt.seg, offloads, fate, tt.datagrams)
			}
		}
	}
}

// Trains cost no allocations either, with or without offloads.
func TestTrainPipelinesDoNotAllocate(t *testing.T) {
	for _, offloads := range []bool{false, true} {
		te := newTestEngine(t)
		te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}}; d.Offload = offloads })
		rx := te.newRxPipeline(0, te.conn)
		dgs, _ := segments(t, 200, 40000, 40, 1398)
		trains := make([]underlay.Datagram, len(rx.dg))
		for i := range trains {
			a, _ := segments(t, 200, 40001, 3, 500)
			trains[i] = train(t, dgs...)
			if i%4 == 3 {
				trains[i] = train(t, a...)
			}
		}
		if a := testing.AllocsPerRun(10, func() {
			for i := range rx.dg {
				rx.dg[i].N = copy(rx.dg[i].Buf, trains[i].Buf)
				rx.dg[i].Seg = trains[i].Seg
				rx.dg[i].Addr = peerB
			}
			rx.deliver(len(rx.dg))
		}); a != 0 {
			t.Errorf("offload %v: %v allocations per batch of trains", offloads, a)
		}
	}
}

// FuzzRxTrain: no message and no segment size the kernel could report
// makes the receive pipeline fail, and every datagram is counted once.
func FuzzRxTrain(f *testing.F) {
	dgs, _ := segments(f, 200, 40000, 3, 300)
	f.Add(train(f, dgs...).Buf, len(dgs[0]), true)
	f.Add(train(f, dgs...).Buf, 0, true)
	f.Add(train(f, dgs...).Buf, 1, false)
	f.Add(train(f, dgs...).Buf, 7, true)
	f.Add([]byte{}, 3, true)
	f.Add([]byte{8, 0, 0, 0, 0, 0, 200, 0}, 100000, false)
	te := newTestEngine(f)
	te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}} })
	rx := te.newRxPipeline(0, te.conn)
	f.Fuzz(func(t *testing.T, msg []byte, seg int, offloads bool) {
		te.editDev(0, func(d *Device) { d.Offload = offloads })
		msg = msg[:min(len(msg), len(rx.dg[0].Buf))]
		for i := 0; i < 2; i++ {
			rx.dg[i].N = copy(rx.dg[i].Buf, msg)
			rx.dg[i].Seg = seg
			rx.dg[i].Addr = peerB
		}
		before := te.peerRx(peerB)
		rx.deliver(2)
		d := underlay.Datagram{N: len(msg), Seg: seg}
		var want uint64
		for o := 0; ; {
			want++
			if o = d.Next(o); o >= d.N {
				break
			}
		}
		if got := te.peerRx(peerB) - before; got != 2*want {
			t.Fatalf("%d datagrams counted, want %d", got, 2*want)
		}
	})
}

// udpFrame builds an IPv4 UDP datagram of one flow, checksums good.
func udpFrame(t testing.TB, id uint16, pl []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, Id: id, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(198, 19, 0, 1).To4(), DstIP: net.IPv4(198, 19, 0, 2).To4()}
	udp := &layers.UDP{SrcPort: 5555, DstPort: 9000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{DstMAC: net.HardwareAddr(macLocal[:]), SrcMAC: net.HardwareAddr(macRemote[:]), EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// A train of small UDP datagrams reaches a TAP that takes USO as one
// GSO_UDP_L4 super-frame, which cuts back into the same datagrams; one
// that does not take USO gets them one by one. Neither allocates.
func TestRxTrainOfUDPDatagrams(t *testing.T) {
	const count, size = 40, 64
	var dgs, want [][]byte
	for i := range count {
		f := udpFrame(t, uint16(100+i), bytes.Repeat([]byte{byte(i)}, size))
		want = append(want, f)
		dgs = append(dgs, vxlan(200, f))
	}
	for _, uso := range []bool{true, false} {
		te := newTestEngine(t)
		te.editDev(0, func(d *Device) { d.Offload, d.USO = true, uso })
		te.receiveTrains(peerB, train(t, dgs...))
		writes := te.taps[0].written()
		if n := map[bool]int{true: 1, false: count}[uso]; len(writes) != n {
			t.Fatalf("uso %v: %d writes, want %d", uso, len(writes), n)
		}
		var got [][]byte
		for _, w := range writes {
			var h offload.VirtioNetHdr
			h.Decode(w)
			if !h.IsGSO() {
				got = append(got, w[offload.VirtioNetHdrLen:])
				continue
			}
			var s offload.Segmenter
			if err := s.Reset(w[offload.VirtioNetHdrLen:], &h); err != nil {
				t.Fatal(err)
			}
			for !s.Done() {
				b := make([]byte, s.MaxSegmentLen())
				got = append(got, b[:s.Next(b)])
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("uso %v: datagrams (-want +got):\n%s", uso, diff)
		}

		te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}} })
		rx := te.newRxPipeline(0, te.conn)
		tr := train(t, dgs...)
		if a := testing.AllocsPerRun(10, func() {
			rx.dg[0].N = copy(rx.dg[0].Buf, tr.Buf)
			rx.dg[0].Seg, rx.dg[0].Addr = tr.Seg, peerB
			rx.deliver(1)
		}); a != 0 {
			t.Errorf("uso %v: %v allocations per train", uso, a)
		}
	}
}
