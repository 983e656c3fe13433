package neigh_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/neigh"
)

// Golden replies, checked against gopacket's decoder and an independent
// checksum (TestGoldenGopacket). Each is written once, as an annotated hex
// dump that hexDump reads.

// goldenARPReply answers arpRequest(nil), "who has 198.19.0.11? tell
// 198.19.0.10" from 02:42:c6:13:00:0a, with the known MAC
// 02:42:c6:13:00:0b: "198.19.0.11 is at 02:42:c6:13:00:0b", padded to 60
// bytes. Ethernet: to 02:42:c6:13:00:0a, from 02:42:c6:13:00:0b, type ARP.
// ARP: Ethernet/IPv4, reply; sender 02:42:c6:13:00:0b 198.19.0.11, target
// 02:42:c6:13:00:0a 198.19.0.10. Then zeros to 60 bytes.
var goldenARPReply = hexDump(`
0000  02 42 c6 13 00 0a 02 42  c6 13 00 0b 08 06 00 01  Ethernet | ARP
0010  08 00 06 04 00 02 02 42  c6 13 00 0b c6 13 00 0b  ARP
0020  02 42 c6 13 00 0a c6 13  00 0a 00 00 00 00 00 00  ARP | padding
0030  00 00 00 00 00 00 00 00  00 00 00 00              padding
`)

// goldenNA answers nsFrame(dot1q), 2001:db8::a (02:42:c6:13:00:0a) asking
// for 2001:db8::b on VLAN 100, with the known MAC 02:42:c6:13:00:0b: a
// Neighbor Advertisement on VLAN 100, flags S and O, with a Target
// Link-Layer Address option; ICMPv6 checksum 0xc3f7. Ethernet: to
// 02:42:c6:13:00:0a, from 02:42:c6:13:00:0b, 802.1Q tag VLAN 100, type
// IPv6. IPv6: traffic class 0, flow label 0, payload length 32, ICMPv6,
// hop limit 255, from 2001:db8::b to 2001:db8::a. ICMPv6 Neighbor
// Advertisement, code 0, checksum 0xc3f7, flags S O, target 2001:db8::b.
// Target Link-Layer Address option: 02:42:c6:13:00:0b.
var goldenNA = hexDump(`
0000  02 42 c6 13 00 0a 02 42  c6 13 00 0b 81 00 00 64  Ethernet | 802.1Q
0010  86 dd 60 00 00 00 00 20  3a ff 20 01 0d b8 00 00  IPv6
0020  00 00 00 00 00 00 00 00  00 0b 20 01 0d b8 00 00  IPv6
0030  00 00 00 00 00 00 00 00  00 0a 88 00 c3 f7 60 00  IPv6 | NA
0040  00 00 20 01 0d b8 00 00  00 00 00 00 00 00 00 00  NA
0050  00 0b 02 01 02 42 c6 13  00 0b                    NA | TLLA
`)

// hexDump returns the bytes of dump: lines of a 4-digit hex offset, two
// spaces, up to 16 bytes in hex (an extra space after the eighth), and a
// note from column 56 that it ignores. A golden is a literal, so it panics
// on a line that is not in that layout, an offset that is not the count
// of the bytes before it, or a short line that is not the last: a
// mistyped golden cannot pass for a different frame.
func hexDump(dump string) []byte {
	const hexEnd = 6 + 16*3 // the column after the 16th byte
	var b []byte
	lines := strings.Split(strings.TrimSpace(dump), "\n")
	for i, line := range lines {
		off, err := strconv.ParseUint(line[:min(4, len(line))], 16, 16)
		if err != nil || len(line) < 8 || line[4:6] != "  " || int(off) != len(b) {
			panic(fmt.Sprintf("hexDump: line %d, %q: want offset %04x and two spaces", i+1, line, len(b)))
		}
		if len(line) > hexEnd && !strings.HasPrefix(line[hexEnd:], "  ") {
			panic(fmt.Sprintf("hexDump: line %d, %q: no two spaces before the note", i+1, line))
		}
		words := strings.Fields(line[6:min(hexEnd, len(line))])
		if len(words) > 16 || len(words) < 16 && i != len(lines)-1 {
			panic(fmt.Sprintf("hexDump: line %d, %q: %d bytes", i+1, line, len(words)))
		}
		for _, w := range words {
			x, err := strconv.ParseUint(w, 16, 8)
			if err != nil || len(w) != 2 {
				panic(fmt.Sprintf("hexDump: line %d, %q: %q is not a byte", i+1, line, w))
			}
			b = append(b, byte(x))
		}
	}
	return b[:len(b):len(b)]
}

// reply parses request and answers it with mac, failing on any error.
func reply(t testing.TB, request []byte, mac [ether.AddrLen]byte) (neigh.Packet, []byte) {
	t.Helper()
	p, err := neigh.Parse(request)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	buf := make([]byte, neigh.MaxReplyLen)
	n, err := p.Reply(buf, mac)
	if err != nil {
		t.Fatalf("Reply: %v", err)
	}
	return p, buf[:n:n]
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		request []byte
		want    []byte
	}{
		{"ARP reply", arpRequest(t, nil), goldenARPReply},
		{"NA", nsFrame(t, dot1q), goldenNA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := reply(t, tc.request, macB); !bytes.Equal(got, tc.want) {
				t.Errorf("Reply =\n% x\nwant\n% x", got, tc.want)
			}
		})
	}
}

func TestGoldenGopacket(t *testing.T) {
	p := gopacket.NewPacket(goldenARPReply, layers.LayerTypeEthernet, gopacket.Default)
	arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok || p.ErrorLayer() != nil {
		t.Fatalf("goldenARPReply: no ARP layer: %v", p)
	}
	if arp.Operation != layers.ARPReply || !bytes.Equal(arp.SourceHwAddress, macB[:]) ||
		!bytes.Equal(arp.SourceProtAddress, ipB4.AsSlice()) || !bytes.Equal(arp.DstHwAddress, macA[:]) ||
		!bytes.Equal(arp.DstProtAddress, ipA4.AsSlice()) {
		t.Errorf("goldenARPReply decodes as %+v", arp)
	}

	p = gopacket.NewPacket(goldenNA, layers.LayerTypeEthernet, gopacket.Default)
	na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok || p.ErrorLayer() != nil {
		t.Fatalf("goldenNA: no NA layer: %v", p)
	}
	if q := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); q.VLANIdentifier != 100 {
		t.Errorf("goldenNA: VLAN %d, want 100", q.VLANIdentifier)
	}
	if !na.Solicited() || !na.Override() || na.Router() || !na.TargetAddress.Equal(ipB6.AsSlice()) {
		t.Errorf("goldenNA decodes as %+v", na)
	}
	ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if refChecksum(ip.SrcIP, ip.DstIP, ip.Payload) != 0 {
		t.Error("goldenNA: the ICMPv6 checksum does not verify")
	}
}

// requests are frames a host answers: ARP requests and probes, and
// solicitations, ordinary and DAD.
func requests(t testing.TB) []struct {
	name  string
	frame []byte
} {
	return []struct {
		name  string
		frame []byte
	}{
		{"ARP request", arpRequest(t, nil)},
		{"ARP request, unpadded", arpRequest(t, nil)[:42]},
		{"ARP request, 802.1Q", arpRequest(t, dot1q)},
		{"ARP request, 802.1ad + 802.1Q", arpRequest(t, qinq)},
		{"ARP request, legacy QinQ", arpRequest(t, legacy)},
		{"ARP request, IEEE 802", buildARP(t, with(request(nil), func(s *arpSpec) { s.hrd = 6 }))},
		{"ARP request, sender MAC not the Ethernet source", buildARP(t, with(request(nil), func(s *arpSpec) { s.sha = [6]byte{0x02, 0, 0, 0, 0, 0x99} }))},
		{"ARP probe", buildARP(t, with(request(dot1q), func(s *arpSpec) { s.spa = unspec4 }))},
		{"NS", nsFrame(t, nil)},
		{"NS, 802.1Q", nsFrame(t, dot1q)},
		{"NS, 802.1ad + 802.1Q, traffic class", buildND(t, with(solicit(qinq), func(s *ndSpec) { s.tc = 0xb8 }))},
		{"NS, unicast, no SLLA", buildND(t, with(solicit(nil), func(s *ndSpec) { s.dst, s.ipDst, s.opts = macB, ipB6, nil }))},
		{"NS, SLLA not the Ethernet source", buildND(t, with(solicit(nil), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{nonce, slla([6]byte{0x02, 0, 0, 0, 0, 0x99})} }))},
		{"NS, link-local", buildND(t, with(solicit(nil), func(s *ndSpec) { s.ipSrc, s.target = netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b") }))},
		{"DAD", buildND(t, dad(nil))},
		{"DAD, 802.1Q", buildND(t, dad(dot1q))},
	}
}

// TestReplyGopacket decodes every reply with gopacket: the right layers,
// addresses, tags, flags, options, lengths and checksum.
func TestReplyGopacket(t *testing.T) {
	for _, tc := range requests(t) {
		t.Run(tc.name, func(t *testing.T) {
			req, got := reply(t, tc.frame, macB)
			if tpid, _ := req.Tags.At(0); req.Tags.Len() > 0 && tpid == ether.TPIDLegacyQinQ {
				t.Skip("gopacket does not decode the 0x9100 TPID; TestRoundTrip covers this reply")
			}
			pkt := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			to := req.Requester()
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(eth.DstMAC, to[:]) || !bytes.Equal(eth.SrcMAC, macB[:]) {
				t.Errorf("Ethernet %v -> %v, want %v -> %v", eth.SrcMAC, eth.DstMAC, net.HardwareAddr(macB[:]), net.HardwareAddr(to[:]))
			}
			// The tags, outer first, TPID and TCI as in the request.
			var want, have []uint32
			for i := range req.Tags.Len() {
				tpid, tci := req.Tags.At(i)
				want = append(want, uint32(tpid)<<16|uint32(tci))
			}
			tpid := eth.EthernetType
			for _, l := range pkt.Layers() {
				if q, ok := l.(*layers.Dot1Q); ok {
					have = append(have, uint32(tpid)<<16|uint32(q.Priority)<<13|uint32(q.VLANIdentifier))
					tpid = q.Type
				}
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("tags (-request +reply):\n%s", diff)
			}

			if req.Kind.IsARP() {
				if len(got) != neigh.MinFrameLen {
					t.Errorf("length %d, want %d", len(got), neigh.MinFrameLen)
				}
				arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
				if !ok {
					t.Fatalf("no ARP layer in %v", pkt)
				}
				if arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
					arp.HwAddressSize != 6 || arp.ProtAddressSize != 4 || arp.Operation != layers.ARPReply {
					t.Errorf("ARP header %+v", arp)
				}
				if !bytes.Equal(arp.SourceHwAddress, macB[:]) || !bytes.Equal(arp.SourceProtAddress, req.TargetIP.AsSlice()) ||
					!bytes.Equal(arp.DstHwAddress, req.SrcMAC[:]) || !bytes.Equal(arp.DstProtAddress, req.SrcIP.AsSlice()) {
					t.Errorf("ARP addresses %v %v -> %v %v", net.HardwareAddr(arp.SourceHwAddress), net.IP(arp.SourceProtAddress),
						net.HardwareAddr(arp.DstHwAddress), net.IP(arp.DstProtAddress))
				}
				if pad := arp.Payload; !bytes.Equal(pad, make([]byte, len(pad))) {
					t.Errorf("padding % x, want zeros", pad)
				}
				return
			}

			ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			wantDst := req.SrcIP
			if req.Kind == neigh.DADSolicitation {
				wantDst = allNodes
			}
			if ip.HopLimit != 255 || ip.NextHeader != layers.IPProtocolICMPv6 || ip.Length != 32 ||
				ip.FlowLabel != 0 || ip.TrafficClass != req.TrafficClass&0xf0 ||
				!ip.SrcIP.Equal(req.TargetIP.AsSlice()) || !ip.DstIP.Equal(wantDst.AsSlice()) {
				t.Errorf("IPv6 header %+v", ip)
			}
			icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if icmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0) {
				t.Errorf("ICMPv6 %v", icmp.TypeCode)
			}
			if refChecksum(ip.SrcIP, ip.DstIP, ip.Payload) != 0 {
				t.Errorf("checksum %#04x does not verify", icmp.Checksum)
			}
			// gopacket's own checksum of the same message agrees.
			again := *icmp
			if err := again.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, &again, gopacket.Payload(icmp.Payload)); err != nil {
				t.Fatal(err)
			}
			if again.Checksum != icmp.Checksum {
				t.Errorf("checksum %#04x, gopacket computes %#04x", icmp.Checksum, again.Checksum)
			}
			na := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			wantFlags := uint8(0x60)
			if req.Kind == neigh.DADSolicitation {
				wantFlags = 0x20
			}
			if na.Flags != wantFlags || !na.TargetAddress.Equal(req.TargetIP.AsSlice()) {
				t.Errorf("NA flags %#02x target %v, want %#02x %v", na.Flags, na.TargetAddress, wantFlags, req.TargetIP)
			}
			if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, macB[:]) {
				t.Errorf("NA options %v, want a TLLA %v", na.Options, net.HardwareAddr(macB[:]))
			}
		})
	}
}

// TestRoundTrip parses every reply back: the answer to what was asked.
func TestRoundTrip(t *testing.T) {
	for _, tc := range requests(t) {
		t.Run(tc.name, func(t *testing.T) {
			req, got := reply(t, tc.frame, macB)
			r, err := neigh.Parse(got)
			if err != nil {
				t.Fatalf("Parse(reply): %v", err)
			}
			to := req.Requester()
			var want neigh.Packet
			if req.Kind.IsARP() {
				want = neigh.Packet{
					Kind: neigh.ARPReply, EthDst: to, EthSrc: macB,
					SrcIP: req.TargetIP, SrcMAC: macB, HasSrcMAC: true,
					TargetIP: req.SrcIP, TargetMAC: to, HasTargetMAC: true,
					L3: req.L3, End: req.L3 + 28,
				}
			} else {
				want = neigh.Packet{
					Kind: neigh.NeighborAdvertisement, EthDst: to, EthSrc: macB,
					SrcIP: req.TargetIP, DstIP: req.SrcIP, TrafficClass: req.TrafficClass & 0xf0,
					TargetIP: req.TargetIP, TargetMAC: macB, HasTargetMAC: true,
					Flags: neigh.FlagSolicited | neigh.FlagOverride,
					L3:    req.L3, End: req.L3 + 40 + 32,
				}
				if req.Kind == neigh.DADSolicitation {
					want.DstIP, want.Flags = allNodes, neigh.FlagOverride
				}
			}
			if diff := cmp.Diff(want, r, cmpPacket); diff != "" {
				t.Errorf("Parse(reply) mismatch (-want +got):\n%s", diff)
			}
			if r.Tags != req.Tags {
				t.Errorf("reply tags %v, request tags %v", tagsOf(&r), tagsOf(&req))
			}
			// The reply proves the binding the table knew.
			b, ok := r.Binding()
			if wantB := (neigh.Binding{IP: req.TargetIP, MAC: macB}); !ok || b != wantB {
				t.Errorf("Binding() of the reply = %v, %t; want %v", b, ok, wantB)
			}
			// And the reply is nothing to answer.
			if r.Answerable() {
				t.Error("the reply is Answerable")
			}
			if _, err := r.Reply(make([]byte, neigh.MaxReplyLen), macA); !errors.Is(err, neigh.ErrNotRequest) {
				t.Errorf("Reply to the reply: %v, want ErrNotRequest", err)
			}
		})
	}
}

// TestReplyBuffer: Reply writes its n bytes and nothing else, clears the
// padding whatever the buffer held, and takes any buffer of MaxReplyLen.
func TestReplyBuffer(t *testing.T) {
	for _, tc := range requests(t) {
		t.Run(tc.name, func(t *testing.T) {
			p, err := neigh.Parse(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			const guard = 32
			buf := bytes.Repeat([]byte{0xa5}, neigh.MaxReplyLen+guard)
			n, err := p.Reply(buf[:neigh.MaxReplyLen], macB)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, len(buf)-n)) {
				t.Errorf("Reply wrote past its %d bytes", n)
			}
			_, want := reply(t, tc.frame, macB)
			if !bytes.Equal(buf[:n], want) {
				t.Errorf("Reply into a dirty buffer =\n% x\nwant\n% x", buf[:n], want)
			}
			// One byte short: an error, and the buffer untouched.
			short := bytes.Repeat([]byte{0x5a}, n-1)
			if m, err := p.Reply(short, macB); !errors.Is(err, io.ErrShortBuffer) || m != 0 {
				t.Errorf("Reply into %d bytes = %d, %v; want io.ErrShortBuffer", n-1, m, err)
			}
			if !bytes.Equal(short, bytes.Repeat([]byte{0x5a}, n-1)) {
				t.Error("Reply changed a buffer it refused")
			}
		})
	}
}

func TestReplyErrors(t *testing.T) {
	parse := func(f []byte) neigh.Packet {
		p, err := neigh.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	arpReq := parse(arpRequest(t, nil))
	ns := parse(nsFrame(t, nil))
	mcast := [ether.AddrLen]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	tests := []struct {
		name string
		p    neigh.Packet
		mac  [ether.AddrLen]byte
		want error
	}{
		{"zero Packet", neigh.Packet{}, macB, neigh.ErrNotRequest},
		{"ARP reply", parse(buildARP(t, arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: ipB4, tha: macA, tpa: ipA4})), macA, neigh.ErrNotRequest},
		{"ARP announcement", parse(buildARP(t, with(request(nil), func(s *arpSpec) { s.tpa = ipA4 }))), macB, neigh.ErrNotRequest},
		{"NA", parse(buildND(t, advert(nil))), macA, neigh.ErrNotRequest},
		{"Kind without addresses", neigh.Packet{Kind: neigh.ARPRequest, SrcMAC: macA, HasSrcMAC: true}, macB, neigh.ErrNotRequest},
		{"ARP Kind, IPv6 addresses", neigh.Packet{Kind: neigh.ARPRequest, SrcIP: ipA6, TargetIP: ipB6, SrcMAC: macA, HasSrcMAC: true}, macB, neigh.ErrNotRequest},
		{"NS Kind, IPv4 addresses", neigh.Packet{Kind: neigh.NeighborSolicitation, SrcIP: ipA4, TargetIP: ipB4, EthSrc: macA}, macB, neigh.ErrNotRequest},
		{"ARP, zero MAC", arpReq, zero, neigh.ErrBadMAC},
		{"ARP, broadcast MAC", arpReq, bcast, neigh.ErrBadMAC},
		{"NS, multicast MAC", ns, mcast, neigh.ErrBadMAC},
		{"ARP from a multicast sender MAC", parse(buildARP(t, with(request(nil), func(s *arpSpec) { s.sha = mcast }))), macB, neigh.ErrBadMAC},
		{"ARP from a zero sender MAC", parse(buildARP(t, with(request(nil), func(s *arpSpec) { s.sha = zero }))), macB, neigh.ErrBadMAC},
		{"NS with a broadcast SLLA", parse(buildND(t, with(solicit(nil), func(s *ndSpec) { s.opts = []layers.ICMPv6Option{slla(bcast)} }))), macB, neigh.ErrBadMAC},
		{"NS without SLLA from a multicast Ethernet source", parse(buildND(t, with(solicit(nil), func(s *ndSpec) { s.src, s.opts = mcast, nil }))), macB, neigh.ErrBadMAC},
		{"ARP, own MAC", arpReq, macA, neigh.ErrOwnMAC},
		{"ARP probe, own MAC", parse(buildARP(t, with(request(nil), func(s *arpSpec) { s.spa = unspec4 }))), macA, neigh.ErrOwnMAC},
		{"NS, own MAC", ns, macA, neigh.ErrOwnMAC},
		{"DAD, own MAC", parse(buildND(t, dad(nil))), macA, neigh.ErrOwnMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, neigh.MaxReplyLen)
			n, err := tt.p.Reply(buf, tt.mac)
			if !errors.Is(err, tt.want) || n != 0 {
				t.Fatalf("Reply = %d, %v; want 0, %v", n, err, tt.want)
			}
			if !bytes.Equal(buf, make([]byte, len(buf))) {
				t.Error("Reply wrote into the buffer and failed")
			}
		})
	}
}

func TestAnswerable(t *testing.T) {
	arp := func(f func(*arpSpec)) []byte { return buildARP(t, with(request(nil), f)) }
	ns := func(f func(*ndSpec)) []byte { return buildND(t, with(solicit(nil), f)) }
	none := func(*arpSpec) {}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"ARP request", arp(none), true},
		{"ARP request, unicast", arp(func(s *arpSpec) { s.dst = macB }), true},
		{"ARP request for a loopback IP", arp(func(s *arpSpec) { s.tpa = netip.MustParseAddr("127.0.0.1") }), false},
		{"ARP request for a multicast IP", arp(func(s *arpSpec) { s.tpa = netip.MustParseAddr("239.1.1.1") }), false},
		{"ARP request for 0.0.0.0", arp(func(s *arpSpec) { s.tpa = unspec4 }), false},
		{"ARP request from 0.1.2.3", arp(func(s *arpSpec) { s.spa = netip.MustParseAddr("0.1.2.3") }), false},
		{"ARP probe", arp(func(s *arpSpec) { s.spa = unspec4 }), false},
		{"ARP announcement", arp(func(s *arpSpec) { s.tpa = ipA4 }), false},
		{"ARP reply", buildARP(t, arpSpec{src: macB, dst: macA, op: 2, sha: macB, spa: ipB4, tha: macA, tpa: ipA4}), false},
		{"NS", ns(func(*ndSpec) {}), true},
		{"NS, unicast, no SLLA", ns(func(s *ndSpec) { s.dst, s.ipDst, s.opts = macB, ipB6, nil }), true},
		{"NS, source is destination", ns(func(s *ndSpec) { s.ipDst = ipA6 }), false},
		{"DAD", buildND(t, dad(nil)), false},
		{"NA", buildND(t, advert(nil)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := neigh.Parse(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Answerable(); got != tt.want {
				t.Errorf("Answerable() = %t, want %t", got, tt.want)
			}
		})
	}
	if (&neigh.Packet{}).Answerable() {
		t.Error("the zero Packet is Answerable")
	}
}
