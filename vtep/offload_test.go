package vtep

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/underlay"
)

// tcpFrame builds an IPv4 TCP frame from src to dst with every checksum
// right.
func tcpFrame(t testing.TB, dst, src fdb.MAC, seq uint32, flags string, pl []byte) []byte {
	t.Helper()
	return tcpFrameFrom(t, dst, src, 40000, seq, flags, pl)
}

// tcpFrameFrom is tcpFrame from TCP source port sport: another flow.
func tcpFrameFrom(t testing.TB, dst, src fdb.MAC, sport uint16, seq uint32, flags string, pl []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, Id: 1, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IPv4(198, 19, 0, 1).To4(), DstIP: net.IPv4(198, 19, 0, 2).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 5201, Seq: seq, Ack: 1, Window: 500, ACK: true,
		PSH: bytes.ContainsRune([]byte(flags), 'P'), FIN: bytes.ContainsRune([]byte(flags), 'F')}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{DstMAC: net.HardwareAddr(dst[:]), SrcMAC: net.HardwareAddr(src[:]), EthernetType: layers.EthernetTypeIPv4},
		ip, tcp, gopacket.Payload(pl))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

const tcpL4 = encap.EthernetHeaderLen + encap.IPv4HeaderLen // TCP header offset of tcpFrame's frames

// gsoFrame is tcpFrame as a TAP with offloads hands it over: a
// virtio_net_hdr asking for segments of mss bytes, then the frame with
// its TCP checksum left partial.
func gsoFrame(t testing.TB, dst, src fdb.MAC, payload, mss int) []byte {
	t.Helper()
	return gsoFrameAt(t, dst, src, 1000, "P", payload, mss)
}

// gsoFrameAt is gsoFrame with the first sequence number seq and the TCP
// flags: consecutive super-frames of one flow.
func gsoFrameAt(t testing.TB, dst, src fdb.MAC, seq uint32, flags string, payload, mss int) []byte {
	t.Helper()
	f := tcpFrame(t, dst, src, seq, flags, pattern(payload))
	binary.BigEndian.PutUint16(f[tcpL4+offload.TCPChecksumOffset:],
		offload.Fold(offload.PseudoHeaderSum(6, f[26:30], f[30:34], len(f)-tcpL4)))
	h := offload.VirtioNetHdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, GSOSize: uint16(mss),
		HdrLen: tcpL4 + 20, CsumStart: tcpL4, CsumOffset: offload.TCPChecksumOffset}
	b := make([]byte, offload.VirtioNetHdrLen, offload.VirtioNetHdrLen+len(f))
	h.Encode(b)
	return append(b, f...)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 13)
	}
	return b
}

// sendOffload runs header-and-frame buffers through network 0's TX
// pipeline with offloads on.
func (te *testEngine) sendOffload(t testing.TB, pkts ...[]byte) {
	t.Helper()
	p := te.newTxPipeline(te.net(0), te.taps[0], te.conn, true)
	for i, f := range pkts {
		p.sizes[i] = copy(p.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:], f) - offload.VirtioNetHdrLen
	}
	p.forward(len(pkts))
}

// innerTCP decapsulates a sent datagram and returns the inner frame and
// its TCP layer, failing unless the IPv4 and TCP checksums verify.
func innerTCP(t *testing.T, d underlay.Datagram) ([]byte, *layers.TCP) {
	t.Helper()
	_, inner, err := encap.Decap(d.Buf[encap.UDPHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if offload.Checksum(inner[14:34], 0) != 0 {
		t.Error("inner IPv4 header checksum does not verify")
	}
	tcpLen := len(inner) - tcpL4
	if offload.Checksum(inner[tcpL4:], offload.PseudoHeaderSum(6, inner[26:30], inner[30:34], tcpLen)) != 0 {
		t.Error("inner TCP checksum does not verify")
	}
	p := gopacket.NewPacket(inner, layers.LayerTypeEthernet, gopacket.Default)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		t.Fatalf("no TCP in the inner frame: %v", p)
	}
	return inner, tcp
}

// A super-frame from the TAP leaves as MSS-sized VXLAN datagrams with
// complete checksums, all with the flow's one UDP source port, to the VTEP
// the FDB names.
func TestTxOffloadSegments(t *testing.T) {
	te := newTestEngine(t)
	te.fdb.Learn(200, macRemote, peerC, 0)
	te.sendOffload(t, gsoFrame(t, macRemote, macLocal, 5000, 1398))
	sent := te.conn.sentDatagrams()
	if len(sent) != 4 {
		t.Fatalf("sent %d datagrams, want 4", len(sent))
	}
	var got []byte
	var innerBytes int
	for i, d := range sent {
		if d.Addr != peerC {
			t.Errorf("datagram %d to %s, want %s", i, d.Addr, peerC)
		}
		if sp := encap.UDP(d.Buf).SourcePort(); sp != encap.UDP(sent[0].Buf).SourcePort() {
			t.Errorf("datagram %d: source port %d, the first had %d", i, sp, encap.UDP(sent[0].Buf).SourcePort())
		}
		inner, tcp := innerTCP(t, d)
		innerBytes += len(inner)
		if want := uint32(1000 + i*1398); tcp.Seq != want {
			t.Errorf("segment %d: seq %d, want %d", i, tcp.Seq, want)
		}
		if tcp.PSH != (i == 3) {
			t.Errorf("segment %d: PSH %v", i, tcp.PSH)
		}
		got = append(got, tcp.Payload...)
	}
	if !bytes.Equal(got, pattern(5000)) {
		t.Error("the segments do not carry the super-frame's payload in order")
	}
	c := &te.net(0).counters
	if c.TxPackets.Load() != 4 || c.TxBytes.Load() != uint64(innerBytes) || c.TxSegmented.Load() != 1 {
		t.Errorf("tx %d packets %d bytes %d segmented, want 4, %d and 1", c.TxPackets.Load(), c.TxBytes.Load(), c.TxSegmented.Load(), innerBytes)
	}
}

// Flooded, every segment goes to every peer; a super-frame cut into more
// segments than the pipeline has buffers for goes out whole and in order.
func TestTxOffloadFloodAndManySegments(t *testing.T) {
	te := newTestEngine(t)
	te.sendOffload(t, gsoFrame(t, macRemote, macLocal, 3000, 1000))
	if sent := te.conn.sentDatagrams(); len(sent) != 6 || sent[0].Addr != peerB || sent[1].Addr != peerC {
		t.Fatalf("flood: %d datagrams (want 6, 3 segments to 2 peers)", len(sent))
	}
	if got := te.net(0).counters.FloodPackets.Load(); got != 6 {
		t.Errorf("flood counter %d, want 6", got)
	}

	te = newTestEngine(t)
	te.fdb.Learn(200, macRemote, peerB, 0)
	const payload, mss = 60000, 100 // 600 segments, over txSegments
	te.sendOffload(t, gsoFrame(t, macRemote, macLocal, payload, mss))
	sent := te.conn.sentDatagrams()
	if len(sent) != payload/mss {
		t.Fatalf("sent %d datagrams, want %d", len(sent), payload/mss)
	}
	for i, d := range sent {
		if _, tcp := innerTCP(t, d); tcp.Seq != uint32(1000+i*mss) {
			t.Fatalf("datagram %d: seq %d, want %d", i, tcp.Seq, 1000+i*mss)
		}
	}
}

// An ordinary frame whose checksum the kernel left partial leaves with it
// completed; super-frames that cannot be honoured are dropped and counted.
func TestTxOffloadChecksumsAndDrops(t *testing.T) {
	te := newTestEngine(t)
	te.fdb.Learn(200, macRemote, peerB, 0)
	partial := gsoFrame(t, macRemote, macLocal, 500, 1398)
	partial[1] = offload.GSONone // flags keep NEEDS_CSUM
	badType := gsoFrame(t, macRemote, macLocal, 3000, 1398)
	badType[1] = offload.GSOUDPL4
	tooBig := gsoFrame(t, macRemote, macLocal, 5000, 2000) // over the TAP MTU
	badCsum := gsoFrame(t, macRemote, macLocal, 500, 1398)
	badCsum[1] = offload.GSONone
	badCsum[6], badCsum[7] = 0xff, 0xff // csum_start past the frame
	te.sendOffload(t, partial, badType, tooBig, badCsum)
	sent := te.conn.sentDatagrams()
	if len(sent) != 1 {
		t.Fatalf("sent %d datagrams, want the 1 ordinary frame", len(sent))
	}
	innerTCP(t, sent[0])
	c := &te.net(0).counters
	if c.Drops[metrics.Offload].Load() != 2 || c.Drops[metrics.TooBig].Load() != 1 {
		t.Errorf("drops: offload %d too_big %d, want 2 and 1", c.Drops[metrics.Offload].Load(), c.Drops[metrics.TooBig].Load())
	}
}

// withOffloadTAPs marks every network's device as having offloads.
func (te *testEngine) withOffloadTAPs() {
	for i := range te.taps {
		te.taps[i].hdr = offload.VirtioNetHdrLen
		te.editDev(i, func(d *Device) { d.Offload = true })
	}
}

// Received segments of one flow reach the TAP as one super-frame with a
// GSO header; other frames come through as they were, behind a header of
// zeros; counters count datagrams.
func TestRxOffloadCoalesces(t *testing.T) {
	te := newTestEngine(t)
	te.withOffloadTAPs()
	var dgs [][]byte
	var want []byte
	var bytesIn int
	for i := 0; i < 10; i++ {
		f := tcpFrame(t, macLocal, macRemote, uint32(1000+i*1398), "", pattern(1398))
		want = append(want, f[tcpL4+20:]...)
		bytesIn += len(f)
		dgs = append(dgs, vxlan(200, f))
	}
	arp := frame(macBcast, macRemote, 46)
	arp[12], arp[13] = 0x08, 0x06
	dgs = append(dgs, vxlan(200, arp))
	bytesIn += len(arp)
	te.receive(peerB, dgs...)

	got := te.taps[0].written()
	if len(got) != 2 {
		t.Fatalf("TAP got %d writes, want 2 (a super-frame and the ARP frame)", len(got))
	}
	var h offload.VirtioNetHdr
	h.Decode(got[0])
	wantHdr := offload.VirtioNetHdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, HdrLen: tcpL4 + 20,
		GSOSize: 1398, CsumStart: tcpL4, CsumOffset: offload.TCPChecksumOffset}
	if h != wantHdr {
		t.Errorf("virtio_net_hdr %+v, want %+v", h, wantHdr)
	}
	super := got[0][offload.VirtioNetHdrLen:]
	if !bytes.Equal(super[tcpL4+20:], want) || int(binary.BigEndian.Uint16(super[16:18])) != len(super)-14 {
		t.Errorf("super-frame: %d payload bytes, IP length %d (frame %d)", len(super)-tcpL4-20, binary.BigEndian.Uint16(super[16:18]), len(super))
	}
	if !bytes.Equal(got[1], append(make([]byte, offload.VirtioNetHdrLen), arp...)) {
		t.Error("the ARP frame did not come through as it was, behind a zero header")
	}
	c := &te.net(0).counters
	if c.RxPackets.Load() != 11 || c.RxBytes.Load() != uint64(bytesIn) || c.RxCoalesced.Load() != 1 {
		t.Errorf("rx %d packets %d bytes %d coalesced, want 11, %d and 1", c.RxPackets.Load(), c.RxBytes.Load(), c.RxCoalesced.Load(), bytesIn)
	}
	if r, ok := te.fdb.Lookup(200, macRemote); !ok || r != peerB {
		t.Errorf("learned %v %v, want %s", r, ok, peerB)
	}
}

// The same flow in two VNIs (overlapping addresses) is never merged across
// them, and each VNI's TAP gets its own super-frame.
func TestRxOffloadKeepsVNIsApart(t *testing.T) {
	te := newTestEngine(t,
		config.Network{Name: "a", VNI: 200, TAP: "t200", Learning: true, Ageing: 60e9, MaxEntries: 10},
		config.Network{Name: "b", VNI: 300, TAP: "t300", Learning: true, Ageing: 60e9, MaxEntries: 10},
	)
	te.withOffloadTAPs()
	var dgs [][]byte
	for i := 0; i < 4; i++ {
		f := tcpFrame(t, macLocal, macRemote, uint32(1000+i*1000), "", pattern(1000))
		dgs = append(dgs, vxlan(200, f), vxlan(300, f))
	}
	te.receive(peerB, dgs...)
	for i, tp := range te.taps {
		got := tp.written()
		if len(got) != 1 || len(got[0]) != offload.VirtioNetHdrLen+tcpL4+20+4000 {
			t.Errorf("TAP %d: %d writes, want one super-frame of the 4 segments", i, len(got))
		}
	}
}

// With offloads the pipelines still allocate nothing per frame or batch.
func TestOffloadPipelinesDoNotAllocate(t *testing.T) {
	te := newTestEngine(t)
	te.conn.discard = true
	te.fdb.Learn(200, macRemote, peerB, 0)
	tx := te.newTxPipeline(te.net(0), te.taps[0], te.conn, true)
	pkts := [][]byte{gsoFrame(t, macRemote, macLocal, 30000, 1398), gsoFrame(t, macBcast, macLocal, 3000, 1398)}
	for i := range tx.bufs {
		tx.sizes[i] = copy(tx.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:], pkts[i%2]) - offload.VirtioNetHdrLen
	}
	if a := testing.AllocsPerRun(20, func() { tx.forward(len(tx.bufs)) }); a != 0 {
		t.Errorf("TX: %v allocations per batch", a)
	}
	te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}}; d.Offload = true })
	rx := te.newRxPipeline(0, te.conn)
	seg := func(i int) []byte {
		return vxlan(200, tcpFrame(t, macLocal, macRemote, uint32(1000+i*1398), "", pattern(1398)))
	}
	frames := make([][]byte, len(rx.dg))
	for i := range frames {
		frames[i] = seg(i)
	}
	if a := testing.AllocsPerRun(20, func() {
		for i := range rx.dg {
			rx.dg[i].N = copy(rx.dg[i].Buf, frames[i])
			rx.dg[i].Addr = peerB
		}
		rx.deliver(len(rx.dg))
	}); a != 0 {
		t.Errorf("RX: %v allocations per batch", a)
	}
}

// A kernel peer whose datagrams never met a NIC (a veth in the same
// kernel, a VM's virtio NIC) sends inner checksums left partial: a TAP
// without offloads gets them finished, a TAP with offloads gets them with
// NEEDS_CSUM.
func TestRxPartialChecksums(t *testing.T) {
	good := tcpFrame(t, macLocal, macRemote, 7, "", pattern(300))
	partial := bytes.Clone(good)
	binary.BigEndian.PutUint16(partial[tcpL4+offload.TCPChecksumOffset:],
		offload.Fold(offload.PseudoHeaderSum(6, partial[26:30], partial[30:34], len(partial)-tcpL4)))

	te := newTestEngine(t)
	te.receive(peerB, vxlan(200, partial))
	if got := te.taps[0].written(); len(got) != 1 || !bytes.Equal(got[0], good) {
		t.Errorf("plain TAP: the partial checksum was not finished")
	}

	te = newTestEngine(t)
	te.withOffloadTAPs()
	te.receive(peerB, vxlan(200, partial))
	got := te.taps[0].written()
	if len(got) != 1 || !bytes.Equal(got[0][offload.VirtioNetHdrLen:], partial) {
		t.Fatalf("offload TAP: %d writes, or the frame changed", len(got))
	}
	var h offload.VirtioNetHdr
	h.Decode(got[0])
	if h.Flags != offload.FlagNeedsCsum || h.GSOType != offload.GSONone || h.CsumStart != tcpL4 || h.CsumOffset != offload.TCPChecksumOffset {
		t.Errorf("offload TAP: header %+v, want NEEDS_CSUM at %d+%d", h, tcpL4, offload.TCPChecksumOffset)
	}
}

// A kernel peer's TCP super-frame that crossed whole, as one datagram
// (checksum partial), is cut to the TAP's MTU: by vtepd for a TAP without
// offloads, by the kernel after one write with a GSO header for a TAP
// with them. It counts as the one datagram it came in.
func TestRxFramesOverTheMTU(t *testing.T) {
	big := tcpFrame(t, macLocal, macRemote, 1000, "P", pattern(5000))
	binary.BigEndian.PutUint16(big[tcpL4+offload.TCPChecksumOffset:],
		offload.Fold(offload.PseudoHeaderSum(6, big[26:30], big[30:34], len(big)-tcpL4)))
	const mss = 1450 - 20 - 20

	te := newTestEngine(t)
	te.receive(peerB, vxlan(200, big))
	got := te.taps[0].written()
	if len(got) != 4 {
		t.Fatalf("plain TAP: %d writes, want 4 segments", len(got))
	}
	var payload []byte
	for i, f := range got {
		if len(f) > 14+1450 || offload.CheckL4(f).State != offload.L4Good {
			t.Errorf("segment %d: %d bytes, checksum %v", i, len(f), offload.CheckL4(f).State)
		}
		if seq := binary.BigEndian.Uint32(f[tcpL4+4:]); seq != uint32(1000+i*mss) {
			t.Errorf("segment %d: seq %d, want %d", i, seq, 1000+i*mss)
		}
		payload = append(payload, f[tcpL4+20:]...)
	}
	if !bytes.Equal(payload, pattern(5000)) {
		t.Error("the segments do not carry the frame's payload")
	}
	if c := &te.net(0).counters; c.RxPackets.Load() != 1 || c.RxBytes.Load() != uint64(len(big)) {
		t.Errorf("rx %d packets %d bytes, want 1 and %d", c.RxPackets.Load(), c.RxBytes.Load(), len(big))
	}

	te = newTestEngine(t)
	te.withOffloadTAPs()
	te.receive(peerB, vxlan(200, big))
	got = te.taps[0].written()
	if len(got) != 1 || !bytes.Equal(got[0][offload.VirtioNetHdrLen:], big) {
		t.Fatalf("offload TAP: %d writes, want the frame once", len(got))
	}
	var h offload.VirtioNetHdr
	h.Decode(got[0])
	want := offload.VirtioNetHdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, HdrLen: tcpL4 + 20,
		GSOSize: mss, CsumStart: tcpL4, CsumOffset: offload.TCPChecksumOffset}
	if h != want {
		t.Errorf("offload TAP: header %+v, want %+v", h, want)
	}
}
