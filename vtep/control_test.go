package vtep

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/neigh"
	"github.com/vtepd/vtepd/offload"
)

// fakeBackend records what the engine asks of a control-plane backend.
type fakeBackend struct {
	mu     sync.Mutex
	joined map[uint32]bool
	macs   map[fdb.MAC]bool
	ips    map[netip.Addr]fdb.MAC
	calls  []string // SetMAC, DelMAC, SetIP, DelIP, Join, Leave in order
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{joined: map[uint32]bool{}, macs: map[fdb.MAC]bool{}, ips: map[netip.Addr]fdb.MAC{}}
}

// record applies change to the fake's state and appends call to its log,
// under its lock.
func (f *fakeBackend) record(call string, change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
	f.calls = append(f.calls, call)
}

func (f *fakeBackend) Run(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (f *fakeBackend) Join(vni uint32) {
	f.record("join", func() { f.joined[vni] = true })
}
func (f *fakeBackend) Leave(vni uint32) {
	f.record("leave", func() { delete(f.joined, vni) })
}
func (f *fakeBackend) SetMAC(vni uint32, mac fdb.MAC) {
	f.record("setmac "+mac.String(), func() { f.macs[mac] = true })
}
func (f *fakeBackend) DelMAC(vni uint32, mac fdb.MAC) {
	f.record("delmac "+mac.String(), func() { delete(f.macs, mac) })
}
func (f *fakeBackend) SetIP(vni uint32, ip netip.Addr, mac fdb.MAC) {
	f.record("setip "+ip.String(), func() { f.ips[ip] = mac })
}
func (f *fakeBackend) DelIP(vni uint32, ip netip.Addr) {
	f.record("delip "+ip.String(), func() { delete(f.ips, ip) })
}
func (f *fakeBackend) Status() control.Status { return control.Status{Backend: "fake"} }

func (f *fakeBackend) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var (
	vtepX   = addr("198.18.0.7")
	macX    = fdb.MAC{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0b}
	ipX     = addr("198.19.0.11")
	ip6X    = addr("2001:db8:1::b")
	hostIP  = addr("198.19.0.10")
	host6IP = addr("2001:db8:1::a")
)

// newControlEngine is a test engine whose network 200 is on a fake
// control plane.
func newControlEngine(t testing.TB) (*testEngine, *fakeBackend) {
	t.Helper()
	nc := config.Network{Name: "demo", VNI: 200, Bridge: "br0", TAP: "vtep200", Peers: []netip.Addr{peerB},
		Learning: true, Ageing: time.Minute, MaxEntries: 100, Control: true, ARPSuppress: true}
	te := newTestEngine(t, nc)
	fb := newFakeBackend()
	te.SetControl(fb)
	return te, fb
}

func remoteState() *control.State {
	s := control.NewState()
	v := s.VNI(200)
	v.VTEPs[vtepX] = 4789
	v.MACs[macX] = vtepX
	v.IPs[ipX] = macX
	v.IPs[ip6X] = macX
	return s
}

// The remote view becomes the flood list, control FDB entries and the
// neighbour table; a resync with the same view changes nothing, and
// removals undo each part.
func TestControlSinkInstallsTheRemoteView(t *testing.T) {
	te, fb := newControlEngine(t)
	if !fb.joined[200] {
		t.Fatal("network 200 not joined")
	}
	sink := te.ControlSink()
	sink.Sync(remoteState())
	if got, want := te.FloodList(200), []netip.Addr{peerB, vtepX}; !slices.Equal(got, want) {
		t.Errorf("flood list %v, want %v", got, want)
	}
	if en, ok := te.fdb.Get(200, macX, 0); !ok || en.Type != fdb.Control || en.Remote != vtepX {
		t.Errorf("fdb entry for %v: %+v %v, want control to %v", macX, en, ok, vtepX)
	}
	if got := te.NeighEntries(nil); len(got) != 2 || got[0].IP != ipX.String() || got[0].Type != "control" {
		t.Errorf("neigh entries %+v", got)
	}
	sink.Sync(remoteState()) // the same view again
	if te.fdb.GlobalStats().Control != 1 {
		t.Errorf("control entries after a resync: %d", te.fdb.GlobalStats().Control)
	}
	// Learning does not displace a route; a static entry does.
	te.fdb.Learn(200, macX, peerB, 0)
	if r, _ := te.fdb.Lookup(200, macX); r != vtepX {
		t.Errorf("after learning elsewhere, lookup %v, want %v", r, vtepX)
	}
	sink.Update([]control.Event{
		{Kind: control.VTEPLeft, VNI: 200, VTEP: vtepX, Port: 4789},
		{Kind: control.MACRemoved, VNI: 200, MAC: macX, VTEP: vtepX},
		{Kind: control.IPRemoved, VNI: 200, IP: ipX, MAC: macX},
	})
	if got := te.FloodList(200); !slices.Equal(got, []netip.Addr{peerB}) {
		t.Errorf("flood list after the VTEP left: %v", got)
	}
	if _, ok := te.fdb.Lookup(200, macX); ok {
		t.Errorf("entry for %v still there after its route went", macX)
	}
	if got := te.NeighEntries(nil); len(got) != 1 || got[0].IP != ip6X.String() {
		t.Errorf("neigh entries after a removal: %+v", got)
	}
	// A sync without the rest removes it.
	sink.Sync(control.NewState())
	if got := te.NeighEntries(nil); len(got) != 0 {
		t.Errorf("neigh entries after an empty sync: %+v", got)
	}
}

// Local MACs are published once, refreshed for free, withdrawn when they
// age out, and published again when they come back.
func TestControlPublishesLocalMACs(t *testing.T) {
	te, fb := newControlEngine(t)
	other := fdb.MAC{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0c}
	te.send(t, frame(macBcast, macLocal, 46), frame(macRemote, macLocal, 46), frame(macBcast, other, 46))
	te.send(t, frame(macBcast, macLocal, 46))
	want := []string{"join", "setmac " + macLocal.String(), "setmac " + other.String()}
	if got := fb.log(); !slices.Equal(got, want) {
		t.Fatalf("backend calls %q, want %q", got, want)
	}
	ageing := int64(time.Minute)
	te.ctl.expire(ageing - 1)
	if got := fb.log(); len(got) != 3 {
		t.Errorf("withdrawn before the ageing time: %q", got)
	}
	te.ctl.expire(ageing + int64(time.Second))
	if got := fb.log()[3:]; len(got) != 2 || fb.macs[macLocal] || fb.macs[other] {
		t.Errorf("after the ageing time: calls %q, macs %v", got, fb.macs)
	}
	// Back again, to a pipeline that reported it a moment ago: the
	// forgotten MAC is published again all the same.
	p := te.newTxPipeline(te.net(0), te.taps[0], te.conn, false)
	push := func(f []byte) {
		p.sizes[0] = copy(p.bufs[0][encap.Headroom:], f)
		p.forward(1)
	}
	push(frame(macBcast, macLocal, 46))
	te.ctl.expire(3 * ageing)
	push(frame(macBcast, macLocal, 46))
	if !fb.macs[macLocal] {
		t.Errorf("%v not published again after it came back: %q", macLocal, fb.log())
	}
	// A MAC that another VTEP now has is forgotten here, and published
	// again if it sends from this side once more.
	te.ControlSink().Update([]control.Event{{Kind: control.MACAdded, VNI: 200, MAC: macLocal, VTEP: vtepX}})
	n := len(fb.log())
	push(frame(macBcast, macLocal, 46))
	if got := fb.log()[n:]; !slices.Equal(got, []string{"setmac " + macLocal.String()}) {
		t.Errorf("after the MAC moved away and back: %q", got)
	}
}

// arpRequest is an ARP request from (srcMAC, srcIP) for target.
func arpRequest(srcMAC fdb.MAC, srcIP, target netip.Addr) []byte {
	b := make([]byte, 60)
	copy(b[0:6], macBcast[:])
	copy(b[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], srcMAC[:])
	s, d := srcIP.As4(), target.As4()
	copy(a[14:18], s[:])
	copy(a[24:28], d[:])
	return b
}

// neighborSolicitation is a multicast NS from (srcMAC, srcIP) for target,
// with a source link-layer address option.
func neighborSolicitation(srcMAC fdb.MAC, srcIP, target netip.Addr) []byte {
	t16 := target.As16()
	dst := [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: t16[13], 14: t16[14], 15: t16[15]}
	b := make([]byte, 14+40+32)
	copy(b[0:6], []byte{0x33, 0x33, 0xff, t16[13], t16[14], t16[15]})
	copy(b[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], 0x86dd)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 32)
	ip[6], ip[7] = 58, 255
	s16 := srcIP.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], dst[:])
	icmp := ip[40:]
	icmp[0] = 135
	copy(icmp[8:24], t16[:])
	icmp[24], icmp[25] = 1, 1 // source link-layer address
	copy(icmp[26:32], srcMAC[:])
	sum := offload.PseudoHeaderSum(58, s16[:], dst[:], len(icmp))
	binary.BigEndian.PutUint16(icmp[2:], offload.Checksum(icmp, sum))
	return b
}

// An ARP request or NS for an IP the control plane knows is answered into
// the TAP and not flooded; one for an unknown IP floods; the sender's
// binding is published; with arp_suppress off, everything floods.
func TestControlSuppressesARPAndND(t *testing.T) {
	for _, offloads := range []bool{false, true} {
		te, fb := newControlEngine(t)
		te.ControlSink().Sync(remoteState())
		c := &te.net(0).counters
		p := te.newTxPipeline(te.net(0), te.taps[0], te.conn, offloads)
		push := func(f []byte) {
			p.sizes[0] = copy(p.bufs[0][encap.Headroom:], f)
			p.forward(1)
		}
		push(arpRequest(macLocal, hostIP, ipX))
		push(neighborSolicitation(macLocal, host6IP, ip6X))
		out := te.taps[0].written()
		if len(out) != 2 || c.ARPSuppressed.Load() != 1 || c.NDSuppressed.Load() != 1 || len(te.conn.sentDatagrams()) != 0 {
			t.Fatalf("offload %v: %d replies, suppressed arp %d nd %d, %d datagrams sent", offloads, len(out),
				c.ARPSuppressed.Load(), c.NDSuppressed.Load(), len(te.conn.sentDatagrams()))
		}
		for i, kind := range []neigh.Kind{neigh.ARPReply, neigh.NeighborAdvertisement} {
			f := out[i]
			if offloads {
				if !bytes.Equal(f[:offload.VirtioNetHdrLen], make([]byte, offload.VirtioNetHdrLen)) {
					t.Errorf("reply %d: virtio_net_hdr % x", i, f[:offload.VirtioNetHdrLen])
				}
				f = f[offload.VirtioNetHdrLen:]
			}
			pkt, err := neigh.Parse(f)
			if err != nil || pkt.Kind != kind || pkt.EthSrc != macX || pkt.EthDst != macLocal {
				t.Errorf("reply %d: %v %+v, want %v from %v to %v", i, err, pkt, kind, macX, macLocal)
			}
		}
		if fb.ips[hostIP] != macLocal || fb.ips[host6IP] != macLocal {
			t.Errorf("bindings published: %v", fb.ips)
		}
		push(arpRequest(macLocal, hostIP, addr("198.19.0.99")))
		if got := len(te.conn.sentDatagrams()); got != 2 {
			t.Errorf("request for an unknown IP: %d datagrams, want one per VTEP (2)", got)
		}
		nc := *te.net(0).cfg.Load()
		nc.ARPSuppress = false
		te.net(0).cfg.Store(&nc)
		push(arpRequest(macLocal, hostIP, ipX))
		if got := len(te.conn.sentDatagrams()); got != 4 || c.ARPSuppressed.Load() != 1 {
			t.Errorf("arp_suppress off: %d datagrams (want 4), %d suppressed", got, c.ARPSuppressed.Load())
		}
	}
}

// The control plane's work costs no allocation per frame once the MACs
// are known.
func TestControlPipelineDoesNotAllocate(t *testing.T) {
	te, _ := newControlEngine(t)
	te.conn.discard = true
	te.ControlSink().Sync(remoteState())
	te.taps[0].out = nil
	tx := te.newTxPipeline(te.net(0), discardTAP{}, te.conn, false)
	frames := [][]byte{frame(macX, macLocal, 1000), frame(macBcast, macLocal, 46), arpRequest(macLocal, hostIP, ipX)}
	for i := range tx.bufs {
		tx.sizes[i] = copy(tx.bufs[i][encap.Headroom:], frames[i%len(frames)])
	}
	if a := testing.AllocsPerRun(100, func() { tx.forward(len(tx.bufs)) }); a != 0 {
		t.Errorf("TX with the control plane: %v allocations per batch", a)
	}
	if te.net(0).counters.ARPSuppressed.Load() == 0 {
		t.Error("no ARP request answered")
	}
}

// Reload: a network removed leaves the control plane; one added joins;
// one replaced (same VNI) gets its routes back.
func TestControlReload(t *testing.T) {
	te, fb := newControlEngine(t)
	te.ControlSink().Sync(remoteState())
	cfg := *te.Config()
	nc := cfg.Networks[0]
	nc.Bridge = "br1" // replaces the network
	cfg.Networks = []config.Network{nc}
	tp := newFakeTAP("again")
	te.openTAP = func(config.Network) (Device, error) { return Device{Queues: []FrameQueue{tp}, Closer: tp}, nil }
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if r, ok := te.fdb.Lookup(200, macX); !ok || r != vtepX {
		t.Errorf("after the network was replaced: lookup %v %v, want %v", r, ok, vtepX)
	}
	if got := te.FloodList(200); !slices.Contains(got, vtepX) {
		t.Errorf("flood list after the network was replaced: %v", got)
	}
	nc.Control, nc.ARPSuppress = false, false
	cfg.Networks = []config.Network{nc}
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if fb.joined[200] || slices.Contains(te.FloodList(200), vtepX) {
		t.Errorf("control off: joined %v, flood list %v", fb.joined, te.FloodList(200))
	}
	// The routes go at once, without waiting for the backend's Sync (the
	// store may be unreachable), and events it sent before it left are
	// not applied.
	if en, ok := te.fdb.Get(200, macX, 0); ok {
		t.Errorf("control off: fdb entry for %v %+v", macX, en)
	}
	if got := te.NeighEntries(nil); len(got) != 0 {
		t.Errorf("control off: neigh entries %+v", got)
	}
	macY := fdb.MAC{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0e}
	te.ControlSink().Update([]control.Event{{Kind: control.MACAdded, VNI: 200, MAC: macY, VTEP: vtepX}})
	if en, ok := te.fdb.Get(200, macY, 0); ok {
		t.Errorf("control off: a late event installed %+v", en)
	}
	nc.Control = true
	cfg.Networks = []config.Network{nc}
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if !fb.joined[200] {
		t.Error("control back on: not joined")
	}
	// Back from the view kept meanwhile, before any Sync.
	for _, m := range []fdb.MAC{macX, macY} {
		if en, ok := te.fdb.Get(200, m, 0); !ok || en.Type != fdb.Control || en.Remote != vtepX {
			t.Errorf("control back on: fdb entry for %v %+v %v, want control to %v", m, en, ok, vtepX)
		}
	}
	if got := te.FloodList(200); !slices.Contains(got, vtepX) {
		t.Errorf("control back on: flood list %v", got)
	}
	cfg.Networks = nil
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if got := fb.log(); got[len(got)-1] != "leave" || fb.joined[200] {
		t.Errorf("network removed: calls %q", got)
	}
}
