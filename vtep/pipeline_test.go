package vtep

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/underlay"
)

var (
	macLocal  = fdb.MAC{0x02, 0, 0, 0, 0, 0x01}
	macRemote = fdb.MAC{0x02, 0, 0, 0, 0, 0x02}
	macBcast  = fdb.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	peerB     = addr("198.18.0.2")
	peerC     = addr("198.18.0.3")
)

// frame builds an Ethernet frame: dst, src, EtherType IPv4, payload.
func frame(dst, src fdb.MAC, payloadLen int) []byte {
	b := make([]byte, encap.EthernetHeaderLen+payloadLen)
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	b[12], b[13] = 0x08, 0x00
	for i := encap.EthernetHeaderLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// vxlan builds a received UDP payload: a VXLAN header and the frame.
func vxlan(vni uint32, inner []byte) []byte {
	b := make([]byte, encap.HeaderLen+len(inner))
	encap.Header(b).Encode(vni)
	copy(b[encap.HeaderLen:], inner)
	return b
}

type testEngine struct {
	*Engine
	conn *fakeConn
	taps []*fakeTAP
}

func newTestEngine(t testing.TB, nets ...config.Network) *testEngine {
	t.Helper()
	if len(nets) == 0 {
		nets = []config.Network{{Name: "demo", VNI: 200, Bridge: "br0", TAP: "vtep200",
			Peers: []netip.Addr{peerB, peerC}, Learning: true, Ageing: time.Minute, MaxEntries: 100}}
	}
	cfg := &config.Config{Local: addr("198.18.0.1"), Port: 4789, SrcPortLow: 49152, SrcPortHigh: 65535, Networks: nets}
	te := &testEngine{conn: newFakeConn()}
	devs := make([]Device, len(nets))
	for i, n := range nets {
		tap := newFakeTAP(n.TAP)
		te.taps = append(te.taps, tap)
		devs[i] = Device{Queues: []FrameQueue{tap}, Closer: tap}
	}
	te.Engine = NewWithDevices(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), []underlay.Conn{te.conn}, devs, 1450)
	return te
}

// send runs frames through network 0's TX pipeline.
func (te *testEngine) send(t testing.TB, frames ...[]byte) {
	t.Helper()
	p := te.newTxPipeline(te.net(0), te.taps[0], te.conn, false)
	for i, f := range frames {
		p.sizes[i] = copy(p.bufs[i][encap.Headroom:], f)
	}
	p.forward(len(frames))
}

// receive runs datagrams through the RX pipeline.
func (te *testEngine) receive(from netip.Addr, payloads ...[]byte) {
	p := te.newRxPipeline(0, te.conn)
	for i, pl := range payloads {
		p.dg[i].N = copy(p.dg[i].Buf, pl)
		p.dg[i].Addr = from
	}
	p.deliver(len(payloads))
}

func TestTxKnownUnicastGoesToItsVTEP(t *testing.T) {
	te := newTestEngine(t)
	if r := te.fdb.Learn(200, macRemote, peerC, 0); r != fdb.Added {
		t.Fatalf("learn: %v", r)
	}
	f := frame(macRemote, macLocal, 100)
	te.send(t, f)
	sent := te.conn.sentDatagrams()
	if len(sent) != 1 || sent[0].Addr != peerC {
		t.Fatalf("sent %d datagrams, want 1 to %s: %+v", len(sent), peerC, sent)
	}
	pkt := sent[0].Buf
	udp := encap.UDP(pkt)
	if udp.DestinationPort() != 4789 || udp.SourcePort() < 49152 || int(udp.Length()) != len(pkt) {
		t.Errorf("UDP header: dst %d src %d len %d (datagram %d)", udp.DestinationPort(), udp.SourcePort(), udp.Length(), len(pkt))
	}
	vni, inner, err := encap.Decap(pkt[encap.UDPHeaderLen:])
	if err != nil || vni != 200 || !bytes.Equal(inner, f) {
		t.Errorf("decap: vni %d err %v, inner equal %v", vni, err, bytes.Equal(inner, f))
	}
	c := &te.net(0).counters
	if c.TxPackets.Load() != 1 || c.TxBytes.Load() != uint64(len(f)) || c.FloodPackets.Load() != 0 {
		t.Errorf("counters: tx %d bytes %d flood %d", c.TxPackets.Load(), c.TxBytes.Load(), c.FloodPackets.Load())
	}
}

func TestTxFloodsBUMToEveryPeer(t *testing.T) {
	for _, tt := range []struct {
		name string
		dst  fdb.MAC
	}{
		{"broadcast", macBcast},
		{"multicast", fdb.MAC{0x01, 0x00, 0x5e, 0, 0, 1}},
		{"unknown unicast", macRemote},
	} {
		t.Run(tt.name, func(t *testing.T) {
			te := newTestEngine(t)
			te.send(t, frame(tt.dst, macLocal, 46))
			sent := te.conn.sentDatagrams()
			if len(sent) != 2 || sent[0].Addr != peerB || sent[1].Addr != peerC {
				t.Fatalf("flood went to %v, want [%s %s]", sent, peerB, peerC)
			}
			if !bytes.Equal(sent[0].Buf, sent[1].Buf) {
				t.Error("flooded copies differ")
			}
			if got := te.net(0).counters.FloodPackets.Load(); got != 2 {
				t.Errorf("flood counter %d, want 2", got)
			}
		})
	}
}

func TestTxFlowsKeepTheirSourcePort(t *testing.T) {
	te := newTestEngine(t)
	te.fdb.Learn(200, macRemote, peerB, 0)
	a := frame(macRemote, macLocal, 46)
	b := frame(macRemote, fdb.MAC{0x02, 0, 0, 0, 0, 0x09}, 46)
	te.send(t, a, b, a)
	s := te.conn.sentDatagrams()
	pa1, pb, pa2 := encap.UDP(s[0].Buf).SourcePort(), encap.UDP(s[1].Buf).SourcePort(), encap.UDP(s[2].Buf).SourcePort()
	if pa1 != pa2 {
		t.Errorf("same flow, ports %d and %d", pa1, pa2)
	}
	if pa1 == pb {
		t.Errorf("different flows share port %d (possible but unlikely for these MACs)", pa1)
	}
}

func TestTxDrops(t *testing.T) {
	te := newTestEngine(t, config.Network{Name: "lonely", VNI: 7, TAP: "t7", Learning: true, Ageing: time.Minute, MaxEntries: 10})
	te.send(t, []byte{1, 2, 3}, frame(macBcast, macLocal, 46))
	c := &te.net(0).counters
	if c.Drops[metrics.Runt].Load() != 1 || c.Drops[metrics.NoDestination].Load() != 1 || len(te.conn.sentDatagrams()) != 0 {
		t.Errorf("runt %d, no_destination %d, sent %d", c.Drops[metrics.Runt].Load(), c.Drops[metrics.NoDestination].Load(), len(te.conn.sentDatagrams()))
	}
}

func TestTxSendErrorsAreCountedAndSkipped(t *testing.T) {
	te := newTestEngine(t)
	te.conn.failAt = map[int]error{0: syscall.EMSGSIZE, 1: syscall.EHOSTUNREACH}
	te.send(t, frame(macBcast, macLocal, 46), frame(macBcast, macLocal, 46))
	c := &te.net(0).counters
	if got := len(te.conn.sentDatagrams()); got != 2 {
		t.Errorf("sent %d datagrams, want the 2 after the failures", got)
	}
	if c.Drops[metrics.TooBig].Load() != 1 || c.Drops[metrics.SendError].Load() != 1 || c.TxPackets.Load() != 2 {
		t.Errorf("too_big %d send_error %d tx %d", c.Drops[metrics.TooBig].Load(), c.Drops[metrics.SendError].Load(), c.TxPackets.Load())
	}
}

func TestRxDeliversAndLearns(t *testing.T) {
	te := newTestEngine(t)
	f := frame(macLocal, macRemote, 64)
	te.receive(peerB, vxlan(200, f))
	got := te.taps[0].written()
	if len(got) != 1 || !bytes.Equal(got[0], f) {
		t.Fatalf("TAP got %d frames, want the inner frame", len(got))
	}
	if r, ok := te.fdb.Lookup(200, macRemote); !ok || r != peerB {
		t.Errorf("learned %v %v, want %s", r, ok, peerB)
	}
	// The MAC moves to another VTEP.
	te.receive(peerC, vxlan(200, f))
	if r, _ := te.fdb.Lookup(200, macRemote); r != peerC {
		t.Errorf("after move: %s, want %s", r, peerC)
	}
	st, _ := te.fdb.Stats(200)
	c := &te.net(0).counters
	if st.Moves != 1 || c.RxPackets.Load() != 2 || c.RxBytes.Load() != uint64(2*len(f)) {
		t.Errorf("moves %d rx %d bytes %d", st.Moves, c.RxPackets.Load(), c.RxBytes.Load())
	}
}

func TestRxLearningRules(t *testing.T) {
	te := newTestEngine(t,
		config.Network{Name: "learns", VNI: 200, TAP: "t200", Learning: true, Ageing: time.Minute, MaxEntries: 10,
			Static: []config.StaticEntry{{MAC: macLocal, Remote: peerC}}},
		config.Network{Name: "quiet", VNI: 300, TAP: "t300", Learning: false, Ageing: time.Minute, MaxEntries: 10},
	)
	te.receive(peerB,
		vxlan(200, frame(macBcast, macBcast, 46)),  // group source: not learned
		vxlan(200, frame(macBcast, fdb.MAC{}, 46)), // zero source: not learned
		vxlan(200, frame(macBcast, macLocal, 46)),  // static entry: not moved
		vxlan(300, frame(macBcast, macRemote, 46)), // learning off
	)
	te.receive(te.cfg.Load().Local, vxlan(200, frame(macBcast, macRemote, 46))) // our own address: not learned
	entries := te.fdb.Entries(0)
	if len(entries) != 1 || entries[0].Type != fdb.Static || entries[0].Remote != peerC {
		t.Errorf("FDB %+v, want only the static entry -> %s", entries, peerC)
	}
	if n := len(te.taps[0].written()) + len(te.taps[1].written()); n != 5 {
		t.Errorf("%d frames delivered, want all 5", n)
	}
	if n := len(te.taps[1].written()); n != 1 {
		t.Errorf("VNI 300 TAP got %d frames, want 1: VNIs must stay apart", n)
	}
}

func TestRxDropsByReason(t *testing.T) {
	te := newTestEngine(t)
	good := vxlan(200, frame(macLocal, macRemote, 46))
	badFlags := vxlan(200, frame(macLocal, macRemote, 46))
	badFlags[0] = 0
	reserved := vxlan(200, frame(macLocal, macRemote, 46))
	reserved[1], reserved[7] = 0xff, 0xff // reserved bits: ignored on receipt (RFC 7348 §5)
	te.receive(peerB,
		[]byte{8, 0, 0},             // too short
		badFlags,                    // I flag clear
		vxlan(999, good[8:]),        // unknown VNI
		vxlan(200, make([]byte, 5)), // inner too short
		vxlan(999, make([]byte, 5)), // inner too short, and nobody's VNI
		reserved,
		good,
	)
	u, c := &te.unknown, &te.net(0).counters
	for _, tt := range []struct {
		c      *metrics.Counters
		reason metrics.Reason
		want   uint64
	}{
		{u, metrics.TooShort, 1}, {u, metrics.BadFlags, 1}, {u, metrics.UnknownVNI, 2}, {c, metrics.InnerTooShort, 1},
	} {
		if got := tt.c.Drops[tt.reason].Load(); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.reason, got, tt.want)
		}
	}
	if got := c.RxPackets.Load(); got != 2 {
		t.Errorf("delivered %d, want the 2 good datagrams", got)
	}
}

// The pipelines must not allocate per frame or per batch.
func TestPipelinesDoNotAllocate(t *testing.T) {
	te := newTestEngine(t)
	te.conn.discard = true
	te.fdb.Learn(200, macRemote, peerB, 0)
	tx := te.newTxPipeline(te.net(0), te.taps[0], te.conn, false)
	frames := [][]byte{frame(macRemote, macLocal, 1000), frame(macBcast, macLocal, 46)}
	for i := range tx.bufs {
		tx.sizes[i] = copy(tx.bufs[i][encap.Headroom:], frames[i%2])
	}
	// AllocsPerRun runs the function once more than it is told, to warm up.
	const runs = 100
	c := &te.net(0).counters
	sentBefore := c.TxPackets.Load()
	if a := testing.AllocsPerRun(runs, func() { tx.forward(len(tx.bufs)) }); a != 0 {
		t.Errorf("TX: %v allocations per batch", a)
	}
	// Half the frames to the one known VTEP, half flooded to every peer.
	perBatch := len(tx.bufs)/2 + len(tx.bufs)/2*len(te.net(0).cfg.Load().Peers)
	if sent := c.TxPackets.Load() - sentBefore; sent != uint64((runs+1)*perBatch) {
		t.Errorf("TX: %d datagrams sent while measured, want %d", sent, (runs+1)*perBatch)
	}
	// Keep the fake's recording out of it: use a discarding device.
	te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}} })
	idle := te.newTxPipeline(te.net(0), discardTAP{}, te.conn, false) // polled after each batch
	te.net(0).txp.Store(&[]*txPipeline{idle})
	rx := te.newRxPipeline(0, te.conn)
	for i := range rx.dg {
		rx.dg[i].N = copy(rx.dg[i].Buf, vxlan(200, frame(macLocal, macRemote, 1000)))
		rx.dg[i].Addr = peerB
	}
	rxBefore := c.RxPackets.Load()
	if a := testing.AllocsPerRun(runs, func() { rx.deliver(len(rx.dg)) }); a != 0 {
		t.Errorf("RX: %v allocations per batch", a)
	}
	if got := c.RxPackets.Load() - rxBefore; got != uint64((runs+1)*len(rx.dg)) {
		t.Errorf("RX: %d frames delivered while measured, want %d", got, (runs+1)*len(rx.dg))
	}
}

type discardTAP struct{}

func (discardTAP) ReadLocked([][]byte, []int, int, sync.Locker) (int, error) { select {} }
func (discardTAP) TryRead([][]byte, []int, int) (int, error)                 { return 0, nil }
func (discardTAP) Write(b []byte) (int, error)                               { return len(b), nil }
func (discardTAP) BatchSize() int                                            { return 64 }
func (discardTAP) Name() string                                              { return "discard" }

// Run over fakes: frames cross both ways, and shutdown leaves no goroutine.
func TestRunForwardsAndStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	te := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- te.Run(ctx) }()

	te.taps[0].push(frame(macBcast, macLocal, 46))
	te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
	deadline := time.Now().Add(5 * time.Second)
	for len(te.conn.sentDatagrams()) < 2 || len(te.taps[0].written()) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, delivered %d", len(te.conn.sentDatagrams()), len(te.taps[0].written()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for time.Now().Before(deadline) && runtime.NumGoroutine() > before {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left over:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
}

// With a group, a flood goes to the peers and once to the group, through
// the network's multicast sender; known unicast never goes to the group.
func TestTxFloodsToGroup(t *testing.T) {
	group := addr("239.1.1.1")
	te := newTestEngine(t, config.Network{Name: "mc", VNI: 300, TAP: "t300", Peers: []netip.Addr{peerB},
		Group: group, TTL: 1, Learning: true, Ageing: time.Minute, MaxEntries: 10})
	mc := newFakeConn()
	te.editDev(0, func(d *Device) { d.Multicast = mc })
	te.fdb.Learn(300, macRemote, peerC, 0)
	te.send(t, frame(macBcast, macLocal, 46), frame(macRemote, macLocal, 46))

	uni, multi := te.conn.sentDatagrams(), mc.sentDatagrams()
	if len(multi) != 1 || multi[0].Addr != group {
		t.Errorf("group got %v, want one datagram to %s", multi, group)
	}
	if len(uni) != 2 || uni[0].Addr != peerB || uni[1].Addr != peerC {
		t.Errorf("unicast got %v, want the flood to %s and the known unicast to %s", uni, peerB, peerC)
	}
	if got := te.net(0).counters.FloodPackets.Load(); got != 2 {
		t.Errorf("flood counter %d, want 2 (peer and group)", got)
	}
	if got := te.net(0).counters.TxPackets.Load(); got != 3 {
		t.Errorf("tx counter %d, want 3", got)
	}
}

// A frame the receive pipeline writes to a TAP often causes a reply at
// once (an echo reply, an ACK): the receive pipeline sends on what the
// TAP queue holds after its batch, unless the queue's TX goroutine holds
// the queue; then that goroutine does.
func TestRxPollsTheTAPItWroteTo(t *testing.T) {
	te := newTestEngine(t)
	n := te.net(0)
	tx := te.newTxPipeline(n, te.taps[0], te.conn, false)
	n.txp.Store(&[]*txPipeline{tx})
	te.fdb.Learn(200, macRemote, peerB, 0)

	reply := frame(macRemote, macLocal, 64)
	te.taps[0].push(reply)
	tx.mu.Lock() // the TX goroutine is reading: hands off
	te.receive(peerB, vxlan(200, frame(macLocal, macRemote, 64)))
	tx.mu.Unlock()
	if sent := te.conn.sentDatagrams(); len(sent) != 0 {
		t.Fatalf("sent %d datagrams while the TX pipeline held its queue", len(sent))
	}

	te.receive(peerB, vxlan(200, frame(macLocal, macRemote, 64)))
	sent := te.conn.sentDatagrams()
	if len(sent) != 1 || sent[0].Addr != peerB {
		t.Fatalf("sent %+v, want the queued reply to %s", sent, peerB)
	}
	if _, inner, err := encap.Decap(sent[0].Buf[encap.UDPHeaderLen:]); err != nil || !bytes.Equal(inner, reply) {
		t.Errorf("sent something else than the queued reply (err %v)", err)
	}
	if got := len(te.taps[0].written()); got != 2 {
		t.Errorf("TAP got %d frames, want the 2 received", got)
	}

	// A batch that wrote nothing polls nothing.
	te.taps[0].push(reply)
	te.receive(peerB, vxlan(999, frame(macLocal, macRemote, 64)))
	if got := len(te.conn.sentDatagrams()); got != 1 {
		t.Errorf("a batch that wrote to no TAP polled one: %d datagrams sent", got)
	}
}
