package neigh_test

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/neigh"
)

func TestSnoop(t *testing.T) {
	arp := func(f func(*arpSpec)) []byte { return buildARP(t, with(request(nil), f)) }
	ns := func(f func(*ndSpec)) []byte { return buildND(t, with(solicit(nil), f)) }
	na := func(f func(*ndSpec)) []byte { return buildND(t, with(advert(nil), f)) }
	ip := netip.MustParseAddr
	mcast := [ether.AddrLen]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	macX := [ether.AddrLen]byte{0x02, 0, 0, 0, 0, 0x99}
	bind := func(a netip.Addr, m [ether.AddrLen]byte) *neigh.Binding { return &neigh.Binding{IP: a, MAC: m} }

	tests := []struct {
		name  string
		frame []byte
		want  *neigh.Binding // nil: none
	}{
		// ARP: the sender, from anything but a probe.
		{"ARP request", arp(func(*arpSpec) {}), bind(ipA4, macA)},
		{"ARP request, 802.1Q", arpRequest(t, dot1q), bind(ipA4, macA)},
		{"ARP request, the sender MAC counts, not the Ethernet source", arp(func(s *arpSpec) { s.sha = macX }), bind(ipA4, macX)},
		{"ARP probe", arp(func(s *arpSpec) { s.spa = unspec4 }), nil},
		{"ARP announcement", arp(func(s *arpSpec) { s.tpa = ipA4 }), bind(ipA4, macA)},
		{"gratuitous ARP reply", arp(func(s *arpSpec) { s.op, s.tpa, s.tha = 2, ipA4, macA }), bind(ipA4, macA)},
		{"ARP reply", buildARP(t, arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: ipB4, tha: macA, tpa: ipA4}), bind(ipB4, macB)},
		{"ARP reply from 0.0.0.0", buildARP(t, arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: unspec4, tha: macA, tpa: ipA4}), nil},
		{"ARP link-local sender", arp(func(s *arpSpec) { s.spa = ip("169.254.7.1") }), bind(ip("169.254.7.1"), macA)},
		{"ARP class E sender", arp(func(s *arpSpec) { s.spa = ip("240.0.0.1") }), bind(ip("240.0.0.1"), macA)},
		{"ARP sender in 0.0.0.0/8", arp(func(s *arpSpec) { s.spa = ip("0.1.2.3") }), nil},
		{"ARP loopback sender", arp(func(s *arpSpec) { s.spa = ip("127.0.0.1") }), nil},
		{"ARP multicast sender", arp(func(s *arpSpec) { s.spa = ip("224.0.0.251") }), nil},
		{"ARP broadcast sender", arp(func(s *arpSpec) { s.spa = ip("255.255.255.255") }), nil},
		{"ARP multicast sender MAC", arp(func(s *arpSpec) { s.sha = mcast }), nil},
		{"ARP broadcast sender MAC", arp(func(s *arpSpec) { s.sha = bcast }), nil},
		{"ARP zero sender MAC", arp(func(s *arpSpec) { s.sha = zero }), nil},

		// NS: the source, with its link-layer address option.
		{"NS", ns(func(*ndSpec) {}), bind(ipA6, macA)},
		{"NS, 802.1ad + 802.1Q", nsFrame(t, qinq), bind(ipA6, macA)},
		{"NS, the SLLA counts, not the Ethernet source", ns(func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(macX)} }), bind(ipA6, macX)},
		{"NS, link-local", ns(func(s *ndSpec) { s.ipSrc = ip("fe80::a") }), bind(ip("fe80::a"), macA)},
		{"NS, no SLLA", ns(func(s *ndSpec) { s.opts = nil }), nil},
		{"NS, multicast SLLA", ns(func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(mcast)} }), nil},
		{"NS, zero SLLA", ns(func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(zero)} }), nil},
		{"NS from ::1", ns(func(s *ndSpec) { s.ipSrc = ip("::1") }), nil},
		{"NS from an IPv4-mapped address", ns(func(s *ndSpec) { s.ipSrc = ip("::ffff:198.19.0.10") }), nil},
		{"DAD", buildND(t, dad(nil)), nil},

		// NA: the target, with its link-layer address option and O.
		{"NA", na(func(*ndSpec) {}), bind(ipB6, macB)},
		{"NA, unsolicited", na(func(s *ndSpec) { s.ipDst, s.flags = allNodes, 0x20 }), bind(ipB6, macB)},
		{"NA, router", na(func(s *ndSpec) { s.flags = 0xe0 }), bind(ipB6, macB)},
		{"NA, the TLLA counts, not the Ethernet source", na(func(s *ndSpec) { s.opts = []layers.ICMPv6Option{tlla(macX)} }), bind(ipB6, macX)},
		{"NA, target not the source", na(func(s *ndSpec) { s.target = ip("2001:db8::c") }), bind(ip("2001:db8::c"), macB)},
		{"NA without O (anycast, proxy)", na(func(s *ndSpec) { s.flags = 0x40 }), nil},
		{"NA without TLLA", na(func(s *ndSpec) { s.opts = nil }), nil},
		{"NA, multicast TLLA", na(func(s *ndSpec) { s.opts = []layers.ICMPv6Option{tlla(mcast)} }), nil},
		{"NA for ::", na(func(s *ndSpec) { s.target = unspec6 }), nil},
		{"NA for ::1", na(func(s *ndSpec) { s.target = ip("::1") }), nil},

		// Not ARP or ND, or not valid.
		{"empty", nil, nil},
		{"ARP cut short", arpRequest(t, nil)[:41], nil},
		{"NS, bad checksum", mutateND(t, nsFrame(t, nil), false, func(ip []byte) []byte { ip[42] ^= 1; return ip }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := neigh.Snoop(tt.frame)
			switch {
			case tt.want == nil && ok:
				t.Errorf("Snoop = %v, want none", b)
			case tt.want != nil && (!ok || b != *tt.want):
				t.Errorf("Snoop = %v, %t; want %v", b, ok, *tt.want)
			case !ok && b != (neigh.Binding{}):
				t.Errorf("Snoop = %v with false", b)
			}
			// Snoop is Parse and Binding.
			if p, err := neigh.Parse(tt.frame); err == nil {
				if pb, pok := p.Binding(); pb != b || pok != ok {
					t.Errorf("Binding() = %v, %t; Snoop %v, %t", pb, pok, b, ok)
				}
			}
		})
	}
}
