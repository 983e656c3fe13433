package control

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/fdb"
)

// Diff turns one State into another, and applying it gives the other.
func TestDiff(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ip := netip.MustParseAddr("10.0.0.1")
	m1, m2 := fdb.MAC{2, 0, 0, 0, 0, 1}, fdb.MAC{2, 0, 0, 0, 0, 2}
	prev := NewState()
	prev.VNI(1).VTEPs[a1] = 4789
	prev.VNI(1).MACs[m1] = a1
	prev.VNI(1).MACs[m2] = a1
	prev.VNI(2).IPs[ip] = m1
	next := NewState()
	next.VNI(1).VTEPs[a1] = 4790
	next.VNI(1).VTEPs[a2] = 4789
	next.VNI(1).MACs[m1] = a2
	next.VNI(3).IPs[ip] = m2

	got := Diff(prev, next)
	want := []Event{
		{Kind: MACRemoved, VNI: 1, MAC: m2, VTEP: a1},
		{Kind: VTEPJoined, VNI: 1, VTEP: a1, Port: 4790},
		{Kind: VTEPJoined, VNI: 1, VTEP: a2, Port: 4789},
		{Kind: MACAdded, VNI: 1, MAC: m1, VTEP: a2},
		{Kind: IPRemoved, VNI: 2, IP: ip, MAC: m1},
		{Kind: IPAdded, VNI: 3, IP: ip, MAC: m2},
	}
	eq := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(want, got, eq); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	s := prev.Clone()
	s.Apply(got)
	if diff := cmp.Diff(next, s, eq); diff != "" {
		t.Errorf("Apply(Diff) -want +got:\n%s", diff)
	}
	if len(Diff(next, next.Clone())) != 0 {
		t.Error("Diff of equal states is not empty")
	}
	if got := Diff(nil, nil); len(got) != 0 {
		t.Error("Diff(nil, nil)")
	}
}
