package vtep

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
)

// vlanFrame is frame with an 802.1Q tag after the MACs.
func vlanFrame(dst, src fdb.MAC) []byte {
	f := frame(dst, src, 50)
	copy(f[16:], f[12:])
	f[12], f[13], f[14], f[15] = 0x81, 0x00, 0x00, 0x0a
	return f
}

func TestRxAcceptFrom(t *testing.T) {
	nc := netCfg(200, peerB)
	nc.AcceptFrom = []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}
	te := newTestEngine(t, nc)
	te.receive(peerC, vxlan(200, frame(macLocal, macRemote, 46))) // outside accept_from
	te.receive(peerB, vxlan(200, frame(macLocal, fdb.MAC{2, 0, 0, 0, 0, 9}, 46)))
	if got := te.net(0).counters.Drops[metrics.Source].Load(); got != 1 {
		t.Errorf("source drops %d, want 1", got)
	}
	if _, ok := te.fdb.Lookup(200, macRemote); ok {
		t.Error("learned from a source outside accept_from")
	}
	if n := len(te.taps[0].written()); n != 1 {
		t.Errorf("%d frames delivered, want only the accepted one", n)
	}
}

func TestRxOwnMACIsALoop(t *testing.T) {
	te := newTestEngine(t)
	te.editDev(0, func(d *Device) { d.MAC = macLocal })
	te.receive(peerB, vxlan(200, frame(macBcast, macLocal, 46)))
	if got := te.net(0).counters.Drops[metrics.Loop].Load(); got != 1 {
		t.Errorf("loop drops %d, want 1", got)
	}
	if _, ok := te.fdb.Lookup(200, macLocal); ok || len(te.taps[0].written()) != 0 {
		t.Error("our own MAC was learned or delivered from the tunnel")
	}
}

func TestInnerVLAN(t *testing.T) {
	for _, drop := range []bool{false, true} {
		nc := netCfg(200, peerB)
		nc.DropVLAN = drop
		te := newTestEngine(t, nc)
		te.receive(peerB, vxlan(200, vlanFrame(macLocal, macRemote)))
		te.send(t, vlanFrame(macBcast, macLocal))
		delivered, sent := len(te.taps[0].written()), len(te.conn.sentDatagrams())
		dropped := te.net(0).counters.Drops[metrics.VLAN].Load()
		if drop && (delivered != 0 || sent != 0 || dropped != 2) {
			t.Errorf("inner_vlan=drop: delivered %d sent %d dropped %d; want 0 0 2", delivered, sent, dropped)
		}
		if !drop && (delivered != 1 || sent != 1 || dropped != 0) {
			t.Errorf("inner_vlan=pass: delivered %d sent %d dropped %d; want 1 1 0", delivered, sent, dropped)
		}
	}
}

func TestFloodRate(t *testing.T) {
	nc := netCfg(200, peerB)
	nc.FloodRate = 10
	te := newTestEngine(t, nc)
	te.Now = func() int64 { return int64(time.Hour) } // one instant: only the burst passes
	te.fdb.Learn(200, macRemote, peerB, 0)
	var frames [][]byte
	for i := 0; i < 30; i++ {
		frames = append(frames, frame(macBcast, macLocal, 46))
	}
	frames = append(frames, frame(macRemote, macLocal, 46)) // known unicast: never limited
	te.send(t, frames...)
	c := &te.net(0).counters
	if got := c.Drops[metrics.Storm].Load(); got != 20 {
		t.Errorf("storm drops %d, want 20 of 30 (a burst of 10 passes)", got)
	}
	if got := len(te.conn.sentDatagrams()); got != 11 {
		t.Errorf("sent %d, want 10 floods and the unicast frame", got)
	}
}

func TestLearnRate(t *testing.T) {
	te := newTestEngine(t)
	cfg := *te.cfg.Load()
	cfg.LearnRate = 5
	te.cfg.Store(&cfg)
	te.Now = func() int64 { return int64(time.Hour) }
	var dg [][]byte
	for i := 0; i < 20; i++ {
		dg = append(dg, vxlan(200, frame(macLocal, fdb.MAC{2, 0, 0, 0, 1, byte(i)}, 46)))
	}
	te.receive(peerB, dg...)
	st, _ := te.fdb.Stats(200)
	if st.Learned != 5 || te.net(0).counters.LearnLimited.Load() != 15 {
		t.Errorf("learned %d, limited %d; want 5 and 15", st.Learned, te.net(0).counters.LearnLimited.Load())
	}
	if n := len(te.taps[0].written()); n != 20 {
		t.Errorf("delivered %d, want all 20: the limit is on learning, not forwarding", n)
	}
	// Refreshing a known MAC costs no token; another VTEP has its own bucket.
	te.receive(peerB, dg[0])
	te.receive(peerC, vxlan(200, frame(macLocal, fdb.MAC{2, 0, 0, 0, 2, 1}, 46)))
	if st, _ := te.fdb.Stats(200); st.Learned != 6 {
		t.Errorf("learned %d, want 6: peer C has its own bucket", st.Learned)
	}
}
