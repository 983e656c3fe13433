package evpn

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

var (
	local = netip.MustParseAddr("198.18.0.1")
	peerA = netip.MustParseAddr("198.18.0.2")
	peerB = netip.MustParseAddr("198.18.0.3")
	mac1  = fdb.MAC{0x02, 0, 0, 0, 0, 1}

	vniOpts = control.VNIOptions{RouteTarget: "65000:200", RouteDistinguisher: "198.18.0.2:200"}
)

func params(t *testing.T, rt, rd string) vniParams {
	t.Helper()
	p, err := parseParams(control.VNIOptions{RouteTarget: rt, RouteDistinguisher: rd})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wire encodes a route as gobgp would send it and decodes it back from
// the bytes, as a peer's UPDATE arrives.
func wire(t *testing.T, nlri bgp.AddrPrefixInterface, attrs []bgp.PathAttributeInterface) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	t.Helper()
	b, err := nlri.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	n := &bgp.EVPNNLRI{}
	if err := n.DecodeFromBytes(b); err != nil {
		t.Fatal(err)
	}
	var out []bgp.PathAttributeInterface
	for _, a := range attrs {
		ab, err := a.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		da, err := bgp.GetPathAttribute(ab)
		if err != nil {
			t.Fatal(err)
		}
		if err := da.DecodeFromBytes(ab); err != nil {
			t.Fatal(err)
		}
		out = append(out, da)
	}
	return n, out
}

// Our routes, read back as a peer reads them: the VNI as label and PMSI
// label, our address as next hop and tunnel endpoint, the route target,
// the MAC mobility sequence number.
func TestRoundTrip(t *testing.T) {
	p := params(t, "65000:200", "198.18.0.1:200")
	nlri, attrs := encodeIMET(local, 200, p)
	r, err := decodeWire(wire(t, nlri, attrs))
	if err != nil {
		t.Fatal(err)
	}
	if r.typ != typeIMET || r.vni != 200 || r.vtep != local || !slices.Contains(r.rts, p.rtID) {
		t.Errorf("type 3: %+v", r)
	}
	ip := netip.MustParseAddr("198.19.0.1")
	nlri, attrs = encodeMACIP(local, 200, p, mac1, ip, 3)
	r, err = decodeWire(wire(t, nlri, attrs))
	if err != nil {
		t.Fatal(err)
	}
	if r.typ != typeMACIP || r.vni != 200 || r.vtep != local || r.mac != mac1 || r.ip != ip || r.seq != 3 {
		t.Errorf("type 2: %+v", r)
	}
	var encap bool
	for _, a := range attrs {
		if ec, ok := a.(*bgp.PathAttributeExtendedCommunities); ok {
			for _, c := range ec.Value {
				if e, ok := c.(*bgp.EncapExtended); ok && e.TunnelType == bgp.TUNNEL_TYPE_VXLAN {
					encap = true
				}
			}
		}
	}
	if !encap {
		t.Error("no VXLAN encapsulation extended community")
	}
}

func decodeWire(nlri bgp.AddrPrefixInterface, attrs []bgp.PathAttributeInterface) (route, error) {
	return decode(nlri, attrs, local)
}

// Bad routes are refused with their reason.
func TestDecodeRefuses(t *testing.T) {
	p := params(t, "65000:200", "198.18.0.2:200")
	v6 := netip.MustParseAddr("2001:db8::2")
	mk := func(mac string, ip string, nexthop netip.Addr, labels []uint32) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
		nlri := bgp.NewEVPNMacIPAdvertisementRoute(p.rd, bgp.EthernetSegmentIdentifier{}, 0, mac, ip, labels)
		return nlri, baseAttrs(nexthop, nlri, []bgp.ExtendedCommunityInterface{p.rt})
	}
	for _, tt := range []struct {
		name string
		nlri bgp.AddrPrefixInterface
		attr []bgp.PathAttributeInterface
		want control.Reason
	}{
		{"group MAC", nil, nil, control.ReasonGroupMAC},
		{"zero MAC", nil, nil, control.ReasonGroupMAC},
		{"IPv6 next hop", nil, nil, control.ReasonFamily},
		{"no label", nil, nil, control.ReasonRoute},
		{"multicast IP", nil, nil, control.ReasonIP},
	} {
		switch tt.name {
		case "group MAC":
			tt.nlri, tt.attr = mk("01:00:5e:00:00:01", "", peerA, []uint32{200})
		case "zero MAC":
			tt.nlri, tt.attr = mk("00:00:00:00:00:00", "", peerA, []uint32{200})
		case "IPv6 next hop":
			tt.nlri, tt.attr = mk("02:00:00:00:00:01", "", v6, []uint32{200})
		case "no label":
			tt.nlri, tt.attr = mk("02:00:00:00:00:01", "", peerA, nil)
		case "multicast IP":
			tt.nlri, tt.attr = mk("02:00:00:00:00:01", "224.0.0.1", peerA, []uint32{200})
		}
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "no label" {
				// gobgp cannot encode it; build the decoded form.
				_, err := decodeWire(tt.nlri, tt.attr)
				if reasonOf(err) != tt.want {
					t.Errorf("err %v, reason %v, want %v", err, reasonOf(err), tt.want)
				}
				return
			}
			_, err := decodeWire(wire(t, tt.nlri, tt.attr))
			if err == nil || reasonOf(err) != tt.want {
				t.Errorf("err %v, reason %v, want %v", err, reasonOf(err), tt.want)
			}
		})
	}
	// Other route types are not errors.
	nlri := bgp.NewEVPNIPPrefixRoute(p.rd, bgp.EthernetSegmentIdentifier{}, 0, 24, "198.19.0.0", "0.0.0.0", 200)
	if _, err := decodeWire(nlri, baseAttrs(peerA, nlri, nil)); !errors.Is(err, errNotOurs) {
		t.Errorf("type 5: %v", err)
	}
}

// put adds a type-2 route from vtep to rb.
func putMAC(rb *rib, tch *touched, rt uint64, vtep netip.Addr, mac fdb.MAC, ip netip.Addr, seq uint32) string {
	id := vtep.String() + mac.String() + ip.String()
	rb.put(id, &route{typ: typeMACIP, vni: 200, vtep: vtep, mac: mac, ip: ip, seq: seq, rts: []uint64{rt}, peer: "198.18.0.4"}, tch)
	return id
}

// The view: the highest sequence number wins, then the lower VTEP; a
// local MAC keeps its own unless beaten; a route without the VNI's route
// target or for another VNI counts for nothing; IPs follow their MAC.
func TestSelect(t *testing.T) {
	p := params(t, "65000:200", "198.18.0.1:200")
	ours := map[macKey]int64{}
	sel := &selector{local: local, port: 4789, params: map[uint32]vniParams{200: p},
		localSeq: func(k macKey) (int64, bool) { s, ok := ours[k]; return s, ok }}
	rb := newRIB()
	view := control.NewState()
	step := func(f func(*touched)) []control.Event {
		tch := newTouched()
		f(tch)
		return sel.update(rb, tch, view)
	}
	ip := netip.MustParseAddr("198.19.0.9")

	evs := step(func(tch *touched) {
		putMAC(rb, tch, p.rtID, peerB, mac1, netip.Addr{}, 0)
		putMAC(rb, tch, p.rtID, peerB, mac1, ip, 0)
		rb.put("imet", &route{typ: typeIMET, vni: 200, vtep: peerB, rts: []uint64{p.rtID}}, tch)
		rb.put("bad-rt", &route{typ: typeIMET, vni: 200, vtep: peerA, rts: []uint64{1}}, tch)
		rb.put("other-vni", &route{typ: typeIMET, vni: 201, vtep: peerA, rts: []uint64{p.rtID}}, tch)
	})
	want := []control.Event{
		{Kind: control.VTEPJoined, VNI: 200, VTEP: peerB, Port: 4789},
		{Kind: control.MACAdded, VNI: 200, MAC: mac1, VTEP: peerB},
		{Kind: control.IPAdded, VNI: 200, IP: ip, MAC: mac1},
	}
	if !slices.Equal(evs, want) {
		t.Errorf("first: %v, want %v", evs, want)
	}

	// Equal sequence numbers: the lower address; a higher one beats it.
	evs = step(func(tch *touched) { putMAC(rb, tch, p.rtID, peerA, mac1, netip.Addr{}, 0) })
	if !slices.Equal(evs, []control.Event{{Kind: control.MACAdded, VNI: 200, MAC: mac1, VTEP: peerA}, {Kind: control.IPRemoved, VNI: 200, IP: ip, MAC: mac1}}) {
		t.Errorf("lower address: %v", evs)
	}
	evs = step(func(tch *touched) { putMAC(rb, tch, p.rtID, peerB, mac1, netip.Addr{}, 1) })
	if !slices.Equal(evs, []control.Event{{Kind: control.MACAdded, VNI: 200, MAC: mac1, VTEP: peerB}, {Kind: control.IPAdded, VNI: 200, IP: ip, MAC: mac1}}) {
		t.Errorf("higher sequence: %v", evs)
	}
	if seq, ok := rb.maxSeq(macKey{200, mac1}); !ok || seq != 1 {
		t.Errorf("maxSeq %d %v", seq, ok)
	}

	// The MAC becomes ours with sequence 2: the view drops it.
	ours[macKey{200, mac1}] = 2
	tch := newTouched()
	tch.macs[macKey{200, mac1}] = true
	evs = sel.update(rb, tch, view)
	if !slices.Equal(evs, []control.Event{{Kind: control.MACRemoved, VNI: 200, MAC: mac1, VTEP: peerB}, {Kind: control.IPRemoved, VNI: 200, IP: ip, MAC: mac1}}) {
		t.Errorf("ours: %v", evs)
	}
	// A route with sequence 3 takes it back.
	evs = step(func(tch *touched) { putMAC(rb, tch, p.rtID, peerA, mac1, netip.Addr{}, 3) })
	if !slices.Equal(evs, []control.Event{{Kind: control.MACAdded, VNI: 200, MAC: mac1, VTEP: peerA}}) {
		t.Errorf("taken back: %v", evs)
	}

	// Leaving the VNI removes everything it had.
	sel.params = map[uint32]vniParams{}
	tch = newTouched()
	rb.touchVNI(200, tch)
	sel.update(rb, tch, view)
	if view.Len() != 0 {
		t.Errorf("after leaving: %+v", view.VNIs[200])
	}
	if got := rb.count["198.18.0.4"]; got[0] != 3 {
		t.Errorf("count %v", got)
	}
}

// The connect-retry interval doubles after a few attempts at each, up to
// its cap, and starts again from the first once a session is up.
func TestNextRetry(t *testing.T) {
	s := time.Second
	for _, tt := range []struct {
		retry   time.Duration
		up      bool
		changed time.Duration
		want    time.Duration
	}{
		{s, false, 0, s},
		{s, false, 9 * s, s},
		{s, false, 10 * s, 2 * s},
		{2 * s, false, 13 * s, 2 * s},
		{2 * s, false, 14 * s, 4 * s},
		{16 * s, false, time.Hour, 32 * s},
		{32 * s, false, time.Hour, 32 * s},
		{32 * s, true, 0, s},
		{s, true, time.Hour, s},
	} {
		if got := nextRetry(tt.retry, tt.up, tt.changed); got != tt.want {
			t.Errorf("nextRetry(%v, up %v, changed %v ago) = %v, want %v", tt.retry, tt.up, tt.changed, got, tt.want)
		}
	}
}
