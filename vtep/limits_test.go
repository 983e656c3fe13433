package vtep

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/underlay"
)

// A MAC flapping between two VTEPs is damped by limits.max_moves, set by a
// reload: it stays behind the first VTEP for limits.move_hold, its frames
// are still delivered, and the damped moves are counted and exported.
func TestRxMoveDamping(t *testing.T) {
	te := newTestEngine(t)
	cfg := *te.cfg.Load()
	cfg.MaxMoves, cfg.MoveHold = 2, 10*time.Second
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	clock := int64(time.Hour)
	te.Now = func() int64 { return clock }
	dg := vxlan(200, frame(macLocal, macRemote, 46))
	for _, from := range []netip.Addr{peerB, peerC, peerB, peerC, peerB} {
		te.receive(from, dg) // added, moved, moved, damped, refreshed
	}
	clock += int64(5 * time.Second)
	te.receive(peerC, dg) // still held
	if a, _ := te.fdb.Lookup(200, macRemote); a != peerB {
		t.Errorf("flapping MAC behind %v, want it held behind %v", a, peerB)
	}
	st, _ := te.fdb.Stats(200)
	if st.Moves != 2 || st.Damped != 2 {
		t.Errorf("moves %d, damped %d; want 2 and 2", st.Moves, st.Damped)
	}
	if n := len(te.taps[0].written()); n != 6 {
		t.Errorf("delivered %d, want all 6: damping is on learning, not forwarding", n)
	}
	if got := te.Snapshot()[0].FDB.Damped; got != 2 {
		t.Errorf("snapshot: damped %d, want 2", got)
	}
	want := `
# HELP vtep_fdb_moves_damped_total Moves of learned MACs refused because the MAC was flapping (limits.max_moves, limits.move_hold).
# TYPE vtep_fdb_moves_damped_total counter
vtep_fdb_moves_damped_total{vni="200"} 2
`
	if err := testutil.CollectAndCompare(metrics.NewCollector(te.Snapshot), strings.NewReader(want), "vtep_fdb_moves_damped_total"); err != nil {
		t.Error(err)
	}

	clock += int64(5 * time.Second) // the hold is over
	te.receive(peerC, dg)
	if a, _ := te.fdb.Lookup(200, macRemote); a != peerC {
		t.Errorf("after the hold, MAC behind %v, want %v", a, peerC)
	}
}

// limits.max_learned caps learning across networks, from the start and
// after a reload.
func TestMaxLearned(t *testing.T) {
	cfg := reloadConfig(netCfg(200, peerB), netCfg(300, peerB))
	cfg.MaxLearned = 1
	taps := []*fakeTAP{newFakeTAP("t200"), newFakeTAP("t300")}
	devs := []Device{{Queues: []FrameQueue{taps[0]}, Closer: taps[0]}, {Queues: []FrameQueue{taps[1]}, Closer: taps[1]}}
	e := NewWithDevices(cfg, testLogger(), []underlay.Conn{newFakeConn()}, devs, 1450)
	if r := e.fdb.Learn(200, fdb.MAC{2, 0, 0, 0, 0, 1}, peerB, 0); r != fdb.Added {
		t.Errorf("first MAC: %v, want added", r)
	}
	if r := e.fdb.Learn(300, fdb.MAC{2, 0, 0, 0, 0, 2}, peerB, 0); r != fdb.Refused {
		t.Errorf("second MAC, in another network: %v, want refused", r)
	}
	next := *cfg
	next.MaxLearned = 0
	if _, err := e.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if r := e.fdb.Learn(300, fdb.MAC{2, 0, 0, 0, 0, 2}, peerB, 0); r != fdb.Added {
		t.Errorf("after lifting the cap: %v, want added", r)
	}
	if g := e.fdb.GlobalStats(); g.Learned != 2 || g.Refused != 1 {
		t.Errorf("global stats %+v, want 2 learned, 1 refused", g)
	}
}
