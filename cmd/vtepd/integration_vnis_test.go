//go:build linux

package main

// Several networks in one vtepd: each VNI on its own bridge, with
// overlapping container addresses and MACs, kept apart end to end.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// TestIntegrationManyVNIs: two hosts, each with br0 carrying VNI 200 and
// br1 carrying VNI 300, one vtepd per host for both. The segments overlap
// on purpose:
//
//	VNI 200 (br0):  a1 198.19.0.1 MAC m    b1 198.19.0.2
//	VNI 300 (br1):  a2 198.19.0.1 MAC m    b2 198.19.0.3
//
// a1 and a2 share address and MAC. Each segment works on its own; a2
// cannot reach 198.19.0.2 nor b1 198.19.0.3, which exist only in the other
// VNI; and the FDB, /fdb and the metrics keep the VNIs apart.
//
// The VNIs flood either to their peers or, in "shared-group", both to one
// multicast group, which vtepd joins once and demultiplexes by VNI.
func TestIntegrationManyVNIs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		group netip.Addr
	}{
		{"peers", netip.Addr{}},
		{"shared-group", netip.MustParseAddr("239.1.1.1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testManyVNIs(t, tc.group)
		})
	}
}

func testManyVNIs(t *testing.T, group netip.Addr) {
	const vniA, vniB = 200, 300
	lab := topo.NewT(t, "vmv")
	var hosts [2]*topo.Host
	for i := range hosts {
		h, err := lab.AddHost(string(rune('a'+i)), v4Underlay(i), 1500)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddBridge("br1"); err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	a, b := hosts[0], hosts[1]
	addCtr := func(h *topo.Host, bridge, name, addr string) *topo.Container {
		t.Helper()
		c, err := h.AddContainerOn(bridge, name, netip.MustParsePrefix(addr), innerMTU)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a1 := addCtr(a, "br0", "c1", "198.19.0.1/24")
	b1 := addCtr(b, "br0", "c1", "198.19.0.2/24")
	a2 := addCtr(a, "br1", "c2", "198.19.0.1/24")
	b2 := addCtr(b, "br1", "c2", "198.19.0.3/24")
	shared, err := a1.MAC()
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.SetMAC(shared); err != nil {
		t.Fatal(err)
	}
	macs := map[*topo.Container]net.HardwareAddr{}
	for _, c := range []*topo.Container{a1, b1, a2, b2} {
		if macs[c], err = c.MAC(); err != nil {
			t.Fatal(err)
		}
	}

	var daemons [2]*node
	for i, h := range hosts {
		var peers []netip.Addr
		if !group.IsValid() {
			peers = []netip.Addr{hosts[1-i].Underlay}
		}
		n := &node{host: h}
		daemons[i] = n
		n.runVtepd(t, configNets(h.Underlay, false,
			netSpec{vni: vniA, bridge: "br0", peers: peers, group: group},
			netSpec{vni: vniB, bridge: "br1", peers: peers, group: group},
		))
	}
	if group.IsValid() {
		expectGroup(t, a, group, true)
		expectGroup(t, b, group, true)
	}

	// Each segment on its own, both ways.
	for _, p := range []struct{ from, to *topo.Container }{{a1, b1}, {b1, a1}, {a2, b2}, {b2, a2}} {
		dst := p.to.Addr.Addr()
		if err := p.from.WaitReachable(dst, 5*time.Second); err != nil {
			t.Fatalf("%s/%s -> %v: %v", p.from.Host.Name, p.from.Name, dst, err)
		}
		if err := p.from.Ping(dst, 3, 56, false); err != nil {
			t.Errorf("%s/%s -> %v: %v", p.from.Host.Name, p.from.Name, dst, err)
		}
	}
	// Nothing crosses: 198.19.0.2 lives only in VNI 200, .3 only in 300.
	for _, p := range []struct {
		from *topo.Container
		dst  string
	}{{a2, "198.19.0.2"}, {b1, "198.19.0.3"}} {
		if err := p.from.Ping(netip.MustParseAddr(p.dst), 3, 56, false); err == nil {
			t.Errorf("%s/%s reached %s of the other VNI", p.from.Host.Name, p.from.Name, p.dst)
		}
	}

	// b has learned the shared MAC twice, once per VNI; a has learned b1
	// in VNI 200 only and b2 in VNI 300 only.
	expectFDBIn(t, b, vniA, shared, "learned", a.Underlay)
	expectFDBIn(t, b, vniB, shared, "learned", a.Underlay)
	expectFDBIn(t, a, vniA, macs[b1], "learned", b.Underlay)
	expectFDBIn(t, a, vniB, macs[b2], "learned", b.Underlay)
	entries, err := getFDB(a)
	if err != nil {
		t.Fatal(err)
	}
	if rows := fdbRows(entries, vniB, macs[b1]); len(rows) != 0 {
		t.Errorf("a: b1's MAC (VNI %d) learned in VNI %d: %+v", vniA, vniB, rows)
	}
	if rows := fdbRows(entries, vniA, macs[b2]); len(rows) != 0 {
		t.Errorf("a: b2's MAC (VNI %d) learned in VNI %d: %+v", vniB, vniA, rows)
	}
	// /fdb?vni=N keeps to its VNI.
	for _, vni := range []uint32{vniA, vniB} {
		body, err := b.HTTPGet(fmt.Sprintf("http://%s/fdb?vni=%d", metricsAddr, vni))
		if err != nil {
			t.Fatal(err)
		}
		var rows []fdbEntry
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatal(err)
		}
		if len(fdbRows(rows, vni, shared)) != 1 {
			t.Errorf("b: /fdb?vni=%d lacks the shared MAC %s: %+v", vni, shared, rows)
		}
		for _, r := range rows {
			if r.VNI != vni {
				t.Errorf("b: /fdb?vni=%d returned a row of VNI %d: %+v", vni, r.VNI, r)
			}
		}
	}

	for _, h := range hosts {
		samples, err := scrape(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, vni := range []uint32{vniA, vniB} {
			label := strconv.Itoa(int(vni))
			for _, name := range []string{"vtep_rx_packets_total", "vtep_tx_packets_total"} {
				if v, _ := metricValue(samples, name, "vni", label); v <= 0 {
					t.Errorf("%s: %s{vni=%q} = %v, want > 0", h.Name, name, label, v)
				}
			}
			if v, _ := metricValue(samples, "vtep_fdb_entries", "vni", label, "type", "learned"); v < 1 {
				t.Errorf(`%s: vtep_fdb_entries{type="learned",vni=%q} = %v, want >= 1`, h.Name, label, v)
			}
		}
		if v, _ := metricValue(samples, "vtep_drops_total", "reason", "unknown_vni"); v != 0 {
			t.Errorf(`%s: vtep_drops_total{reason="unknown_vni"} = %v, want 0`, h.Name, v)
		}
	}

	// Both networks shut down cleanly, and the group, joined once for
	// both, is left.
	for _, n := range daemons {
		n.stopVtepd(t)
		if group.IsValid() {
			expectGroup(t, n.host, group, false)
		}
	}
}
