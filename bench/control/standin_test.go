package main

import (
	"net/netip"
	"testing"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/control/etcd"
	"github.com/vtepd/vtepd/fdb"
)

// TestStandinSink checks that the stand-in programs its table as the
// engine does: a Sync applies the difference, Updates their events.
func TestStandinSink(t *testing.T) {
	const vni = 200
	tbl := fdb.New()
	tbl.SetNetwork(vni, fdb.Network{})
	s := &fdbSink{tbl: tbl}
	a, b := vtepAddr(0), vtepAddr(1)
	m1, m2, m3 := fleetMAC(0, 1), fleetMAC(0, 2), fleetMAC(1, 1)

	st := control.NewState()
	st.VNI(vni).VTEPs[a] = 4789
	st.VNI(vni).MACs[m1] = a
	st.VNI(vni).MACs[m2] = a
	s.Sync(st)
	s.Update([]control.Event{
		{Kind: control.MACAdded, VNI: vni, MAC: m3, VTEP: b},
		{Kind: control.MACAdded, VNI: vni, MAC: m1, VTEP: b}, // moved
	})
	// A resync without m2: only m2 goes.
	st2 := control.NewState()
	st2.VNI(vni).MACs[m1] = b
	st2.VNI(vni).MACs[m3] = b
	s.Sync(st2)

	want := map[fdb.MAC]netip.Addr{m1: b, m3: b}
	for _, m := range []fdb.MAC{m1, m2, m3} {
		en, ok := tbl.Get(vni, m, 0)
		remote, want := want[m]
		if ok != want || (ok && (en.Remote != remote || en.Type != fdb.Control)) {
			t.Errorf("%v: %+v, %v; want behind %v: %v", m, en, ok, remote, want)
		}
	}
	if st, _ := tbl.Stats(vni); st.Control != 2 {
		t.Errorf("%d control entries, want 2", st.Control)
	}
}

// TestStandinAnswer checks the admin commands the harness sends to the
// stand-in, on a backend that has not run.
func TestStandinAnswer(t *testing.T) {
	const vni = 200
	tbl := fdb.New()
	tbl.SetNetwork(vni, fdb.Network{})
	if _, err := tbl.AddControl(vni, fleetMAC(3, 4), vtepAddr(3)); err != nil {
		t.Fatal(err)
	}
	b, err := etcd.New(etcd.Config{Local: localPrefix.Addr(), Sink: &fdbSink{tbl: tbl}})
	if err != nil {
		t.Fatal(err)
	}
	b.Join(vni)
	v := uint32(vni)
	resp := standinAnswer(admin.Request{Cmd: admin.CmdFDBShow, VNI: &v, MAC: fleetMAC(3, 4).String()}, tbl, b, 0)
	if len(resp.FDB) != 1 || resp.FDB[0].Type != "control" || resp.FDB[0].Remote != vtepAddr(3).String() {
		t.Errorf("fdb show of a MAC held: %+v", resp)
	}
	resp = standinAnswer(admin.Request{Cmd: admin.CmdFDBShow, VNI: &v, MAC: fleetMAC(3, 5).String()}, tbl, b, 0)
	if resp.Error != "" || resp.FDB == nil || len(resp.FDB) != 0 {
		t.Errorf("fdb show of a MAC not held: %+v", resp)
	}
	resp = standinAnswer(admin.Request{Cmd: admin.CmdControl}, tbl, b, 0)
	if resp.Control == nil || resp.Control.Backend != "etcd" || resp.Control.Connected || len(resp.Control.Entries) != 1 {
		t.Errorf("control: %+v", resp.Control)
	}
	if resp := standinAnswer(admin.Request{Cmd: admin.CmdStats}, tbl, b, 0); resp.Error == "" {
		t.Error("stats answered")
	}
}
