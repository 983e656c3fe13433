package neigh_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/neigh"
)

// cmpPacket compares Packets but for their Tags, which tagsOf compares.
var cmpPacket = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.IgnoreFields(neigh.Packet{}, "Tags"),
}

// tagsOf lists a Packet's tags as the builders describe them.
func tagsOf(p *neigh.Packet) []tag {
	var ts []tag
	for i := range p.Tags.Len() {
		tpid, tci := p.Tags.At(i)
		ts = append(ts, tag{tpid, tci & 0x0fff})
	}
	return ts
}

// arpPacket is the Packet of an ARP frame from s, unpadded length aside.
func arpPacket(s arpSpec, kind neigh.Kind) neigh.Packet {
	l3 := ether.HeaderLen + len(s.tags)*ether.TagLen
	return neigh.Packet{
		Kind: kind, EthDst: s.dst, EthSrc: s.src,
		SrcIP: s.spa, SrcMAC: s.sha, HasSrcMAC: true,
		TargetIP: s.tpa, TargetMAC: s.tha, HasTargetMAC: true,
		L3: l3, End: l3 + 28,
	}
}

// ndPacket is the Packet of an ND frame from s with the given
// link-layer address option (nil: none).
func ndPacket(s ndSpec, kind neigh.Kind, lla *[ether.AddrLen]byte) neigh.Packet {
	l3 := ether.HeaderLen + len(s.tags)*ether.TagLen
	plen := 24
	for _, o := range s.opts {
		plen += len(o.Data) + 2
	}
	p := neigh.Packet{
		Kind: kind, EthDst: s.dst, EthSrc: s.src,
		SrcIP: s.ipSrc, TargetIP: s.target, DstIP: s.ipDst, TrafficClass: s.tc,
		L3: l3, End: l3 + 40 + plen,
	}
	if kind == neigh.NeighborAdvertisement {
		p.Flags = neigh.Flags(s.flags) & (neigh.FlagRouter | neigh.FlagSolicited | neigh.FlagOverride)
		if lla != nil {
			p.TargetMAC, p.HasTargetMAC = *lla, true
		}
	} else if lla != nil {
		p.SrcMAC, p.HasSrcMAC = *lla, true
	}
	return p
}

// with returns s changed by f: a shorthand for table entries.
func with[S any](s S, f func(*S)) S {
	f(&s)
	return s
}

type parseCase struct {
	name  string
	frame []byte
	want  neigh.Packet
	tags  []tag
}

// validCases are frames Parse accepts, and what it should find.
func validCases(t testing.TB) []parseCase {
	mac := func(m [ether.AddrLen]byte) *[ether.AddrLen]byte { return &m }
	var cs []parseCase
	arp := func(name string, s arpSpec, kind neigh.Kind) {
		cs = append(cs, parseCase{name, buildARP(t, s), arpPacket(s, kind), s.tags})
	}
	nd := func(name string, s ndSpec, kind neigh.Kind, lla *[ether.AddrLen]byte) {
		cs = append(cs, parseCase{name, buildND(t, s), ndPacket(s, kind, lla), s.tags})
	}

	arp("ARP request", request(nil), neigh.ARPRequest)
	arp("ARP request, 802.1Q", request(dot1q), neigh.ARPRequest)
	arp("ARP request, 802.1ad + 802.1Q", request(qinq), neigh.ARPRequest)
	arp("ARP request, legacy QinQ", request(legacy), neigh.ARPRequest)
	arp("ARP request, IEEE 802 hardware type", with(request(nil), func(s *arpSpec) { s.hrd = 6 }), neigh.ARPRequest)
	arp("ARP request, unicast, with a target MAC", with(request(nil), func(s *arpSpec) { s.dst, s.tha = macB, macB }), neigh.ARPRequest)
	arp("ARP request, sender MAC not the Ethernet source", with(request(nil), func(s *arpSpec) { s.sha = macB }), neigh.ARPRequest)
	arp("ARP request for a multicast IP", with(request(nil), func(s *arpSpec) { s.tpa = netip.MustParseAddr("224.0.0.1") }), neigh.ARPRequest)
	arp("ARP probe", with(request(nil), func(s *arpSpec) { s.spa = unspec4 }), neigh.ARPProbe)
	arp("ARP probe for 0.0.0.0", with(request(nil), func(s *arpSpec) { s.spa, s.tpa = unspec4, unspec4 }), neigh.ARPProbe)
	arp("ARP announcement", with(request(nil), func(s *arpSpec) { s.tpa = ipA4 }), neigh.ARPAnnouncement)
	arp("gratuitous ARP reply", with(request(nil), func(s *arpSpec) { s.op, s.tpa, s.tha = 2, ipA4, macA }), neigh.ARPAnnouncement)
	arp("ARP reply", arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: ipB4, tha: macA, tpa: ipA4}, neigh.ARPReply)
	arp("ARP reply from 0.0.0.0", arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: unspec4, tha: macA, tpa: unspec4}, neigh.ARPReply)

	// The padding gopacket adds is not part of the ARP packet; neither is
	// its absence a problem.
	unpadded := arpRequest(t, nil)[:14+28]
	cs = append(cs, parseCase{"ARP request, unpadded", unpadded, arpPacket(request(nil), neigh.ARPRequest), nil})

	nd("NS", solicit(nil), neigh.NeighborSolicitation, mac(macA))
	nd("NS, 802.1Q, traffic class", with(solicit(dot1q), func(s *ndSpec) { s.tc = 0xc1 }), neigh.NeighborSolicitation, mac(macA))
	nd("NS, 802.1ad + 802.1Q", solicit(qinq), neigh.NeighborSolicitation, mac(macA))
	nd("NS, unicast, no SLLA", with(solicit(nil), func(s *ndSpec) { s.dst, s.ipDst, s.opts = macB, ipB6, nil }), neigh.NeighborSolicitation, nil)
	nd("NS, link-local", with(solicit(nil), func(s *ndSpec) { s.ipSrc = netip.MustParseAddr("fe80::a") }), neigh.NeighborSolicitation, mac(macA))
	nd("NS, SLLA after a nonce", with(solicit(nil), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{nonce, slla(macA)} }), neigh.NeighborSolicitation, mac(macA))
	nd("NS, the first of two SLLAs counts", with(solicit(nil), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(macA), slla(macB)} }), neigh.NeighborSolicitation, mac(macA))
	nd("NS, a TLLA of any size is ignored", with(solicit(nil), func(s *ndSpec) {
		s.opts = []layers.ICMPv6Option{{Type: layers.ICMPv6OptTargetAddress, Data: make([]byte, 14)}, slla(macA)}
	}), neigh.NeighborSolicitation, mac(macA))
	nd("NS, source is destination", with(solicit(nil), func(s *ndSpec) { s.ipDst = ipA6 }), neigh.NeighborSolicitation, mac(macA))
	nd("DAD", dad(nil), neigh.DADSolicitation, nil)
	nd("DAD, 802.1Q, nonce", with(dad(dot1q), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{nonce} }), neigh.DADSolicitation, nil)
	nd("NA", advert(nil), neigh.NeighborAdvertisement, mac(macB))
	nd("NA, 802.1Q", advert(dot1q), neigh.NeighborAdvertisement, mac(macB))
	nd("NA, unsolicited, to all nodes", with(advert(nil), func(s *ndSpec) { s.dst, s.ipDst, s.flags = bcast, allNodes, 0x20 }), neigh.NeighborAdvertisement, mac(macB))
	nd("NA, no TLLA", with(advert(nil), func(s *ndSpec) { s.opts = nil }), neigh.NeighborAdvertisement, nil)
	nd("NA, router, reserved bits set", with(advert(nil), func(s *ndSpec) { s.flags = 0xff }), neigh.NeighborAdvertisement, mac(macB))
	nd("NA, an SLLA of any size is ignored", with(advert(nil), func(s *ndSpec) {
		s.opts = []layers.ICMPv6Option{{Type: layers.ICMPv6OptSourceAddress, Data: make([]byte, 6+8)}, tlla(macB)}
	}), neigh.NeighborAdvertisement, mac(macB))
	return cs
}

func TestParse(t *testing.T) {
	for _, tc := range validCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := neigh.Parse(tc.frame)
			if err != nil {
				t.Fatalf("Parse(% x): %v", tc.frame, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpPacket); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.tags, tagsOf(&got), cmp.AllowUnexported(tag{})); diff != "" {
				t.Errorf("tags mismatch (-want +got):\n%s", diff)
			}
			if !got.Kind.IsARP() && !got.Kind.IsND() || got.Kind.IsARP() == got.Kind.IsND() {
				t.Errorf("Kind %v: IsARP %t, IsND %t", got.Kind, got.Kind.IsARP(), got.Kind.IsND())
			}
		})
	}
}

func TestTags(t *testing.T) {
	p, err := neigh.Parse(arpRequest(t, []tag{{ether.TPID8021AD, 0x0abc}, {ether.TPID8021Q, 0x0123}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tags.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", p.Tags.Len())
	}
	for i, want := range [][2]uint16{{0x88a8, 0x0abc}, {0x8100, 0x0123}} {
		if tpid, tci := p.Tags.At(i); tpid != want[0] || tci != want[1] {
			t.Errorf("At(%d) = %#04x, %#04x, want %#04x, %#04x", i, tpid, tci, want[0], want[1])
		}
	}
}

func TestParseErrors(t *testing.T) {
	arp := arpRequest(t, nil)
	ns := nsFrame(t, nil)
	na := buildND(t, advert(nil))
	setU16 := func(off int, v uint16) func([]byte) { return func(a []byte) { binary.BigEndian.PutUint16(a[off:], v) } }
	// nd changes an NS or NA and makes its checksum right again.
	nd := func(f []byte, mut func(ip []byte)) []byte {
		return mutateND(t, f, true, func(ip []byte) []byte { mut(ip); return ip })
	}
	// grow appends extra to the message and raises the payload length.
	grow := func(f []byte, extra ...byte) []byte {
		return mutateND(t, f, true, func(ip []byte) []byte {
			binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(ip[4:])+uint16(len(extra)))
			return append(ip, extra...)
		})
	}
	ipv4 := append(append(append([]byte{}, macB[:]...), macA[:]...), 0x08, 0x00, 0x45, 0, 0, 20)

	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, neigh.ErrNotNeigh},
		{"13 bytes", arp[:13], neigh.ErrNotNeigh},
		{"IPv4", ipv4, neigh.ErrNotNeigh},
		{"RARP", append(append([]byte{}, arp[:12]...), append([]byte{0x80, 0x35}, arp[14:]...)...), neigh.ErrNotNeigh},
		{"three tags", arpRequest(t, []tag{{0x88a8, 1}, {0x8100, 2}, {0x8100, 3}}), neigh.ErrNotNeigh},
		{"EtherType ARP, nothing after", arp[:14], neigh.ErrTruncated},
		{"ARP cut short", arp[:14+27], neigh.ErrTruncated},
		{"tagged ARP cut short", arpRequest(t, dot1q)[:18+27], neigh.ErrTruncated},
		{"ARP hardware type 2", mutateARP(t, arp, setU16(0, 2)), neigh.ErrBadARP},
		{"ARP protocol IPv6", mutateARP(t, arp, setU16(2, 0x86dd)), neigh.ErrBadARP},
		{"ARP hardware length 8", mutateARP(t, arp, func(a []byte) { a[4] = 8 }), neigh.ErrBadARP},
		{"ARP protocol length 16", mutateARP(t, arp, func(a []byte) { a[5] = 16 }), neigh.ErrBadARP},
		{"ARP operation 0", mutateARP(t, arp, setU16(6, 0)), neigh.ErrBadARP},
		{"ARP operation 3 (RARP request)", mutateARP(t, arp, setU16(6, 3)), neigh.ErrBadARP},
		{"ARP operation 8 (InARP)", mutateARP(t, arp, setU16(6, 8)), neigh.ErrBadARP},

		{"IPv6 header only", mutateND(t, ns, false, func(ip []byte) []byte { return ip[:40] }), neigh.ErrNotNeigh},
		{"IPv6 version 4", nd(ns, func(ip []byte) { ip[0] = 0x40 }), neigh.ErrNotNeigh},
		{"IPv6 UDP", nd(ns, func(ip []byte) { ip[6] = 17 }), neigh.ErrNotNeigh},
		{"IPv6 hop-by-hop header first", nd(ns, func(ip []byte) { ip[6] = 0 }), neigh.ErrNotNeigh},
		{"payload length 0", nd(ns, func(ip []byte) { ip[4], ip[5] = 0, 0 }), neigh.ErrNotNeigh},
		{"ICMPv6 echo request", nd(ns, func(ip []byte) { ip[40] = 128 }), neigh.ErrNotNeigh},
		{"router solicitation", nd(ns, func(ip []byte) { ip[40] = 133 }), neigh.ErrNotNeigh},
		{"redirect", nd(ns, func(ip []byte) { ip[40] = 137 }), neigh.ErrNotNeigh},

		{"NS cut short", ns[:len(ns)-1], neigh.ErrTruncated},
		{"NS type only", ns[:14+41], neigh.ErrTruncated},
		{"NS payload length past the frame", nd(ns, func(ip []byte) { ip[5]++ }), neigh.ErrTruncated},
		{"NS of 20 bytes", mutateND(t, ns, true, func(ip []byte) []byte { ip[4], ip[5] = 0, 20; return ip[:60] }), neigh.ErrBadND},
		{"NS code 1", nd(ns, func(ip []byte) { ip[41] = 1 }), neigh.ErrBadND},
		{"NS hop limit 64", nd(ns, func(ip []byte) { ip[7] = 64 }), neigh.ErrBadND},
		{"NS hop limit 254", mutateND(t, ns, false, func(ip []byte) []byte { ip[7] = 254; return ip }), neigh.ErrBadND},
		{"NS multicast target", nd(ns, func(ip []byte) { ip[48] = 0xff }), neigh.ErrBadND},
		{"NS multicast source", nd(ns, func(ip []byte) { ip[8] = 0xff }), neigh.ErrBadND},
		{"DAD to a unicast address", buildND(t, with(dad(nil), func(s *ndSpec) { s.ipDst = ipB6 })), neigh.ErrBadND},
		{"DAD to all nodes", buildND(t, with(dad(nil), func(s *ndSpec) { s.ipDst = allNodes })), neigh.ErrBadND},
		{"DAD with an SLLA", buildND(t, with(dad(nil), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(macA)} })), neigh.ErrBadND},
		{"NA multicast target", nd(na, func(ip []byte) { ip[48] = 0xff }), neigh.ErrBadND},
		{"solicited NA to all nodes", buildND(t, with(advert(nil), func(s *ndSpec) { s.ipDst = allNodes })), neigh.ErrBadND},
		{"NA code 2", nd(na, func(ip []byte) { ip[41] = 2 }), neigh.ErrBadND},

		{"option of length 0", grow(ns, 14, 0, 0, 0, 0, 0, 0, 0), neigh.ErrBadOption},
		{"option past the message", grow(ns, 14, 2, 0, 0, 0, 0, 0, 0), neigh.ErrBadOption},
		{"a byte after the options", grow(ns, 0), neigh.ErrBadOption},
		{"SLLA of 16 bytes", buildND(t, with(solicit(nil), func(s *ndSpec) {
			s.opts = []layers.ICMPv6Option{{Type: layers.ICMPv6OptSourceAddress, Data: append(macA[:], make([]byte, 8)...)}}
		})), neigh.ErrBadOption},
		{"TLLA of 16 bytes", buildND(t, with(advert(nil), func(s *ndSpec) {
			s.opts = []layers.ICMPv6Option{{Type: layers.ICMPv6OptTargetAddress, Data: append(macB[:], make([]byte, 8)...)}}
		})), neigh.ErrBadOption},

		{"NS checksum", mutateND(t, ns, false, func(ip []byte) []byte { ip[42] ^= 1; return ip }), neigh.ErrChecksum},
		{"NS target changed", mutateND(t, ns, false, func(ip []byte) []byte { ip[63] ^= 1; return ip }), neigh.ErrChecksum},
		{"NS source changed", mutateND(t, ns, false, func(ip []byte) []byte { ip[23] ^= 1; return ip }), neigh.ErrChecksum},
		{"NA flags changed", mutateND(t, na, false, func(ip []byte) []byte { ip[44] ^= 0x80; return ip }), neigh.ErrChecksum},
		{"NA checksum zero", mutateND(t, na, false, func(ip []byte) []byte { ip[42], ip[43] = 0, 0; return ip }), neigh.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.frame[:len(tt.frame):len(tt.frame)]
			p, err := neigh.Parse(f)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(% x) = %v, %v; want error %v", f, p.Kind, err, tt.want)
			}
			if p != (neigh.Packet{}) {
				t.Errorf("Parse returned %+v with its error", p)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[neigh.Kind]string{
		0:                           "none",
		neigh.ARPRequest:            "ARP request",
		neigh.ARPProbe:              "ARP probe",
		neigh.ARPAnnouncement:       "ARP announcement",
		neigh.ARPReply:              "ARP reply",
		neigh.NeighborSolicitation:  "neighbor solicitation",
		neigh.DADSolicitation:       "DAD solicitation",
		neigh.NeighborAdvertisement: "neighbor advertisement",
		200:                         "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestCandidate(t *testing.T) {
	for _, tc := range validCases(t) {
		if !neigh.Candidate(tc.frame) {
			t.Errorf("%s: Candidate = false for a frame Parse accepts", tc.name)
		}
	}
	ns := nsFrame(t, nil)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"empty", nil, false},
		{"ARP, cut short", arpRequest(t, nil)[:15], true},
		{"ARP behind three tags", arpRequest(t, []tag{{0x88a8, 1}, {0x8100, 2}, {0x8100, 3}}), false},
		{"IPv4", append(append(append([]byte{}, macB[:]...), macA[:]...), 0x08, 0x00, 0x45), false},
		{"NS", ns, true},
		{"NS, bad checksum", mutateND(t, ns, false, func(ip []byte) []byte { ip[42] ^= 1; return ip }), true},
		{"IPv6 header only", ns[:14+40], false},
		{"IPv6 and one byte", ns[:14+41], true},
		{"IPv6 TCP", mutateND(t, ns, false, func(ip []byte) []byte { ip[6] = 6; return ip }), false},
		{"ICMPv6 echo", mutateND(t, ns, false, func(ip []byte) []byte { ip[40] = 128; return ip }), false},
		{"router advertisement", mutateND(t, ns, false, func(ip []byte) []byte { ip[40] = 134; return ip }), false},
		{"NA", buildND(t, advert(dot1q)), true},
	} {
		if got := neigh.Candidate(tc.frame); got != tc.want {
			t.Errorf("%s: Candidate = %t, want %t", tc.name, got, tc.want)
		}
	}
}
