package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vtepd/vtepd/control/etcd"
	"github.com/vtepd/vtepd/fdb"
)

var labRange = netip.MustParsePrefix("198.18.0.0/15")

func testLayout() layout {
	return layout{prefix: "/vtepd", vni: 200, vteps: 300, macs: 100, ips: 30, port: 4789}
}

// TestFleetKeysDecode checks that every key the fleet writes is one a
// vtepd serving the VNI accepts, with the value meant, and that no key is
// written twice.
func TestFleetKeysDecode(t *testing.T) {
	l := testLayout()
	dec := l.decoder()
	seen := map[string]bool{}
	var macs, vteps, ips int
	for i := 0; i < l.vteps; i++ {
		for _, p := range l.vtepKVs(i) {
			if seen[p.key] {
				t.Fatalf("key %s written twice", p.key)
			}
			seen[p.key] = true
			e, err := dec.Decode(p.key, []byte(p.value))
			if err != nil {
				t.Fatalf("%s = %s: %v", p.key, p.value, err)
			}
			switch e.Kind {
			case etcd.KindVTEP:
				vteps++
				if e.VTEP != vtepAddr(i) || e.Port != l.port {
					t.Errorf("%s: %v port %d, want %v port %d", p.key, e.VTEP, e.Port, vtepAddr(i), l.port)
				}
			case etcd.KindMAC:
				macs++
				if e.VTEP != vtepAddr(i) {
					t.Errorf("%s: behind %v, want %v", p.key, e.VTEP, vtepAddr(i))
				}
				if e.MAC[0] != 0x02 {
					t.Errorf("%s: not a locally administered unicast MAC", p.key)
				}
			case etcd.KindIP:
				ips++
				if !labRange.Contains(e.IP) {
					t.Errorf("%s: inner IP outside %v", p.key, labRange)
				}
			}
		}
		if a := vtepAddr(i); !labRange.Contains(a) || a == localPrefix.Addr() || localPrefix.Contains(a) {
			t.Errorf("vtep %d at %v: outside %v or on the vtepd's own subnet", i, a, labRange)
		}
	}
	wm, wv, wi := l.entries()
	if macs != wm || vteps != wv || ips != wi {
		t.Errorf("wrote %d MACs, %d VTEPs, %d IPs; entries() says %d, %d, %d", macs, vteps, ips, wm, wv, wi)
	}
}

func TestLayoutCheck(t *testing.T) {
	ok := []layout{
		{prefix: "/v", vni: 200, vteps: 1000, macs: 100},
		{prefix: "/v", vni: 1<<24 - 1, vteps: 1, macs: 1},
		{prefix: "/v", vteps: 64511, macs: 1},
		{prefix: "/v", vteps: 1000, macs: 100, ips: 65},
	}
	for _, l := range ok {
		if err := l.check(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	bad := []layout{
		{vteps: 0, macs: 1},
		{vteps: 64512, macs: 1},
		{vteps: 1, macs: 0},
		{vteps: 1, macs: 1 << 17},
		{vteps: 1, macs: 10, ips: 11},
		{vteps: 1000, macs: 100, ips: 66},
		{vteps: 1, macs: 1, vni: 1 << 24},
	}
	for _, l := range bad {
		if err := l.check(); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	// The last VTEP the check allows is still in the range.
	if a := vtepAddr(64510); !labRange.Contains(a) {
		t.Errorf("vtep 64510 at %v", a)
	}
}

func TestChunks(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 129, 256, 1001} {
		xs := make([]int, n)
		for i := range xs {
			xs[i] = i
		}
		cs := chunks(xs, maxTxnOps)
		var joined []int
		for i, c := range cs {
			if len(c) == 0 || len(c) > maxTxnOps || (i < len(cs)-1 && len(c) != maxTxnOps) {
				t.Errorf("n %d: chunk %d has %d", n, i, len(c))
			}
			joined = append(joined, c...)
		}
		if !slices.Equal(joined, xs) {
			t.Errorf("n %d: chunks do not add up", n)
		}
		if len(cs) > 0 {
			// Appending to a chunk must not overwrite the next one.
			_ = append(cs[0], -1)
			if len(cs) > 1 && cs[1][0] != maxTxnOps {
				t.Errorf("n %d: chunks share their tails", n)
			}
		}
	}
	// A VTEP of the fleet publishes in one transaction.
	l := layout{prefix: "/vtepd", vni: 200, vteps: 1, macs: 100}
	if cs := chunks(l.vtepKVs(0), maxTxnOps); len(cs) != 1 || len(cs[0]) != 101 {
		t.Errorf("1 VTEP key + 100 MACs: %d transactions", len(cs))
	}
}

// TestChanges checks the convergence phase's puts: new MACs are new,
// moves move fleet MACs to another VTEP, and none is moved twice.
func TestChanges(t *testing.T) {
	l := testLayout()
	fleetMACs := map[fdb.MAC]int{}
	for i := 0; i < l.vteps; i++ {
		for j := 0; j < l.macs; j++ {
			fleetMACs[fleetMAC(i, j)] = i
		}
	}
	dec := l.decoder()
	moved := map[fdb.MAC]bool{}
	added := map[fdb.MAC]bool{}
	n := l.vteps * l.macs
	for seq := 0; seq < n; seq++ {
		c := l.changeAt(changeMixed, seq)
		want := changeNew
		if seq%2 == 1 {
			want = changeMove
		}
		if c.kind != want {
			t.Fatalf("change %d: %s, want %s", seq, c.kind, want)
		}
		e, err := dec.Decode(c.kv.key, []byte(c.kv.value))
		if err != nil || e.MAC != c.mac || e.VTEP != c.remote || c.remote != vtepAddr(c.owner) {
			t.Fatalf("change %d: %s = %s decodes to %+v, %v", seq, c.kv.key, c.kv.value, e, err)
		}
		from, isFleet := fleetMACs[c.mac]
		switch c.kind {
		case changeNew:
			if isFleet || added[c.mac] {
				t.Fatalf("change %d: new MAC %v not new", seq, c.mac)
			}
			added[c.mac] = true
		case changeMove:
			if !isFleet || from == c.owner || moved[c.mac] {
				t.Fatalf("change %d: move of %v from %d to %d (fleet %v, moved before %v)", seq, c.mac, from, c.owner, isFleet, moved[c.mac])
			}
			moved[c.mac] = true
		}
	}
	for _, kind := range []string{changeNew, changeMove} {
		if c := l.changeAt(kind, 7); c.kind != kind {
			t.Errorf("changeAt(%s) made a %s", kind, c.kind)
		}
	}
}
