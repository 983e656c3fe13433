package main

import (
	"fmt"
	"net/netip"

	"github.com/vtepd/vtepd/control/etcd"
	"github.com/vtepd/vtepd/fdb"
)

// maxTxnOps is etcd's default --max-txn-ops: no transaction of the fleet
// holds more operations, as none of vtepd's does.
const maxTxnOps = 128

// The lab's addresses, all in 198.18.0.0/15 (RFC 2544): the vtepd under
// test is 198.18.0.1; the simulated VTEPs count up from 198.18.4.1 and
// their inner IPs from 198.19.0.1. Only the keys carry the simulated
// ones: no interface holds them and no datagram reaches them.
var (
	localPrefix = netip.MustParsePrefix("198.18.0.1/24")
	vtepBase    = netip.MustParseAddr("198.18.4.1")
	vtepEnd     = netip.MustParseAddr("198.19.0.0") // first address past the VTEPs
	innerBase   = netip.MustParseAddr("198.19.0.1")
	innerEnd    = netip.MustParseAddr("198.19.255.255")
)

// MAC prefixes: unicast, locally administered (02:...). The fleet's own
// MACs are 02:b0:<vtep>:<mac>, the convergence phase's new ones
// 02:b1:<sequence>.
const (
	macFleet = 0xb0
	macNew   = 0xb1
)

// layout is what the simulated fleet publishes: vteps VTEPs in one VNI,
// each with macs MACs and ips IP bindings (the first ips of its MACs),
// under prefix, as vtepd writes its own.
type layout struct {
	prefix string
	vni    uint32
	vteps  int
	macs   int
	ips    int
	port   uint16
}

// check refuses a layout that does not fit the address plan.
func (l layout) check() error {
	maxVTEPs := int(addrOffset(vtepBase, vtepEnd))
	maxIPs := int(addrOffset(innerBase, innerEnd))
	switch {
	case l.vteps < 1 || l.vteps > maxVTEPs:
		return fmt.Errorf("-vteps %d: want 1..%d (198.18.4.1 up to 198.18.255.255)", l.vteps, maxVTEPs)
	case l.macs < 1 || l.macs > 1<<16:
		return fmt.Errorf("-macs %d: want 1..%d", l.macs, 1<<16)
	case l.ips < 0 || l.ips > l.macs:
		return fmt.Errorf("-ips %d: want 0..-macs (%d)", l.ips, l.macs)
	case l.vteps*l.ips > maxIPs:
		return fmt.Errorf("-vteps × -ips = %d: more inner IPs than 198.19.0.0/16 holds (%d)", l.vteps*l.ips, maxIPs)
	case l.vni > 1<<24-1:
		return fmt.Errorf("-vni %d: out of range 0..16777215", l.vni)
	}
	return nil
}

// entries is the number of remote entries a vtepd serving the VNI holds
// once it has them all: MACs, VTEPs and IP bindings.
func (l layout) entries() (macs, vteps, ips int) { return l.vteps * l.macs, l.vteps, l.vteps * l.ips }

func addrOffset(from, to netip.Addr) uint32 {
	a, b := from.As4(), to.As4()
	return be32(b) - be32(a)
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrAt(base netip.Addr, off int) netip.Addr {
	v := be32(base.As4()) + uint32(off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// vtepAddr is the underlay address of simulated VTEP i.
func vtepAddr(i int) netip.Addr { return addrAt(vtepBase, i) }

// fleetMAC is MAC j behind VTEP i.
func fleetMAC(i, j int) fdb.MAC {
	return fdb.MAC{0x02, macFleet, byte(i >> 8), byte(i), byte(j >> 8), byte(j)}
}

// newMAC is the seq-th MAC the convergence phase adds.
func newMAC(seq int) fdb.MAC {
	return fdb.MAC{0x02, macNew, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

// innerIP is the IP bound to MAC j of VTEP i (j < ips).
func (l layout) innerIP(i, j int) netip.Addr { return addrAt(innerBase, i*l.ips+j) }

// kv is one key and value to put.
type kv struct{ key, value string }

func (l layout) vtepKV(i int) kv {
	k := etcd.Key{VNI: l.vni, Kind: etcd.KindVTEP, VTEP: vtepAddr(i)}
	return kv{etcd.FormatKey(l.prefix, k), etcd.EncodeValue(etcd.KindVTEP, l.port, netip.Addr{}, fdb.MAC{})}
}

// macKV is the key of mac in the VNI, with vtep as its value.
func (l layout) macKV(mac fdb.MAC, vtep netip.Addr) kv {
	k := etcd.Key{VNI: l.vni, Kind: etcd.KindMAC, MAC: mac}
	return kv{etcd.FormatKey(l.prefix, k), etcd.EncodeValue(etcd.KindMAC, 0, vtep, fdb.MAC{})}
}

func (l layout) ipKV(ip netip.Addr, mac fdb.MAC) kv {
	k := etcd.Key{VNI: l.vni, Kind: etcd.KindIP, IP: ip}
	return kv{etcd.FormatKey(l.prefix, k), etcd.EncodeValue(etcd.KindIP, 0, netip.Addr{}, mac)}
}

// vtepKVs is everything simulated VTEP i publishes, in the order a vtepd
// that starts publishes it: its registration first, then its MACs and IP
// bindings.
func (l layout) vtepKVs(i int) []kv {
	out := make([]kv, 0, 1+l.macs+l.ips)
	out = append(out, l.vtepKV(i))
	for j := 0; j < l.macs; j++ {
		out = append(out, l.macKV(fleetMAC(i, j), vtepAddr(i)))
	}
	for j := 0; j < l.ips; j++ {
		out = append(out, l.ipKV(l.innerIP(i, j), fleetMAC(i, j)))
	}
	return out
}

// chunks cuts xs into consecutive pieces of at most n.
func chunks[T any](xs []T, n int) [][]T {
	var out [][]T
	for len(xs) > n {
		out = append(out, xs[:n:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}

// Change kinds of the convergence phase.
const (
	changeNew   = "new"   // a MAC never seen, on a VTEP's lease
	changeMove  = "move"  // a fleet MAC put again by another VTEP
	changeMixed = "mixed" // new and move alternately
)

// change is one put of the convergence phase and what the vtepd under
// test must then hold: MAC behind Remote.
type change struct {
	seq    int
	kind   string
	owner  int // the VTEP whose lease the key goes on
	mac    fdb.MAC
	remote netip.Addr
	kv     kv
}

// changeAt is the seq-th change of a run of kind. Moves go through the
// fleet's MACs in an order that moves none twice within vteps*macs
// changes: MAC j of VTEP a goes to VTEP a+1.
func (l layout) changeAt(kind string, seq int) change {
	k := kind
	if kind == changeMixed {
		k = changeNew
		if seq%2 == 1 {
			k = changeMove
		}
	}
	c := change{seq: seq, kind: k}
	if k == changeNew {
		c.owner = seq % l.vteps
		c.mac = newMAC(seq)
	} else {
		m := seq % (l.vteps * l.macs)
		from, j := m%l.vteps, (m/l.vteps)%l.macs
		c.owner = (from + 1) % l.vteps
		c.mac = fleetMAC(from, j)
		if l.vteps == 1 {
			// Nowhere to move to: put it again, as a refresh would.
			c.owner = from
		}
	}
	c.remote = vtepAddr(c.owner)
	c.kv = l.macKV(c.mac, c.remote)
	return c
}

// decoder is how a vtepd at localPrefix serving l.vni reads the keys:
// the tests check that every key the fleet writes is one it accepts.
func (l layout) decoder() *etcd.Decoder {
	return &etcd.Decoder{Prefix: l.prefix, Local: localPrefix.Addr(), Serves: func(v uint32) bool { return v == l.vni }}
}
