package neigh_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
)

// The hosts of the tests: A asks, B is the one whose MAC the table knows.
var (
	macA  = [ether.AddrLen]byte{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0a}
	macB  = [ether.AddrLen]byte{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0b}
	bcast = [ether.AddrLen]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zero  = [ether.AddrLen]byte{}
	// mcastB is 33:33:ff:00:00:0b, the MAC of ipB6's solicited-node
	// address.
	mcastB = [ether.AddrLen]byte{0x33, 0x33, 0xff, 0x00, 0x00, 0x0b}

	ipA4 = netip.MustParseAddr("198.19.0.10")
	ipB4 = netip.MustParseAddr("198.19.0.11")
	ipA6 = netip.MustParseAddr("2001:db8::a")
	ipB6 = netip.MustParseAddr("2001:db8::b")
	// snB is ipB6's solicited-node multicast address.
	snB      = netip.MustParseAddr("ff02::1:ff00:b")
	allNodes = netip.IPv6LinkLocalAllNodes()
	unspec6  = netip.IPv6Unspecified()
	unspec4  = netip.IPv4Unspecified()
)

// tag is a VLAN tag for the builders: its TPID and VLAN ID.
type tag struct {
	tpid uint16
	vid  uint16
}

var (
	dot1q  = []tag{{ether.TPID8021Q, 100}}
	qinq   = []tag{{ether.TPID8021AD, 10}, {ether.TPID8021Q, 100}}
	legacy = []tag{{ether.TPIDLegacyQinQ, 7}}
)

// ethLayers returns the Ethernet layer and any Dot1Q layers of a frame
// from src to dst of EtherType et behind tags.
func ethLayers(src, dst [ether.AddrLen]byte, tags []tag, et layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(src[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: et}
	ls := []gopacket.SerializableLayer{eth}
	next := &eth.EthernetType
	for _, tg := range tags {
		q := &layers.Dot1Q{VLANIdentifier: tg.vid, Type: *next}
		*next = layers.EthernetType(tg.tpid)
		next = &q.Type
		ls = append(ls, q)
	}
	return ls
}

// serialize builds a frame with gopacket, lengths and checksums right, and
// caps it so that a read past its end panics.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return b[:len(b):len(b)]
}

// arpSpec describes an ARP frame.
type arpSpec struct {
	tags     []tag
	src, dst [ether.AddrLen]byte // Ethernet
	hrd      layers.LinkType     // 0: Ethernet
	op       uint16
	sha, tha [ether.AddrLen]byte
	spa, tpa netip.Addr
}

func buildARP(t testing.TB, s arpSpec) []byte {
	t.Helper()
	if s.hrd == 0 {
		s.hrd = layers.LinkTypeEthernet
	}
	spa, tpa := s.spa.As4(), s.tpa.As4()
	arp := &layers.ARP{
		AddrType: s.hrd, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation:       s.op,
		SourceHwAddress: s.sha[:], SourceProtAddress: spa[:],
		DstHwAddress: s.tha[:], DstProtAddress: tpa[:],
	}
	return serialize(t, append(ethLayers(s.src, s.dst, s.tags, layers.EthernetTypeARP), arp)...)
}

// request is "who has ipB4? tell ipA4" from A, broadcast, behind tags.
func request(tags []tag) arpSpec {
	return arpSpec{tags: tags, src: macA, dst: bcast, op: 1, sha: macA, spa: ipA4, tpa: ipB4}
}

func arpRequest(t testing.TB, tags []tag) []byte { return buildARP(t, request(tags)) }

// ndSpec describes a Neighbor Solicitation or Advertisement.
type ndSpec struct {
	tags     []tag
	src, dst [ether.AddrLen]byte // Ethernet
	typ      uint8               // 135 or 136
	tc       uint8
	hopLimit uint8 // 0: 255
	ipSrc    netip.Addr
	ipDst    netip.Addr
	flags    uint8 // advertisements: R 0x80, S 0x40, O 0x20
	target   netip.Addr
	opts     []layers.ICMPv6Option // in wire order
}

// Link-layer address options.
func slla(m [ether.AddrLen]byte) layers.ICMPv6Option {
	return layers.ICMPv6Option{Type: layers.ICMPv6OptSourceAddress, Data: m[:]}
}

func tlla(m [ether.AddrLen]byte) layers.ICMPv6Option {
	return layers.ICMPv6Option{Type: layers.ICMPv6OptTargetAddress, Data: m[:]}
}

// nonce is an RFC 7527 Nonce option (type 14), as Linux puts in DAD.
var nonce = layers.ICMPv6Option{Type: 14, Data: []byte{1, 2, 3, 4, 5, 6}}

func buildND(t testing.TB, s ndSpec) []byte {
	t.Helper()
	if s.hopLimit == 0 {
		s.hopLimit = 255
	}
	ip := &layers.IPv6{
		Version: 6, TrafficClass: s.tc, NextHeader: layers.IPProtocolICMPv6, HopLimit: s.hopLimit,
		SrcIP: s.ipSrc.AsSlice(), DstIP: s.ipDst.AsSlice(),
	}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	// gopacket writes options last to first.
	opts := make(layers.ICMPv6Options, len(s.opts))
	for i, o := range s.opts {
		opts[len(opts)-1-i] = o
	}
	var msg gopacket.SerializableLayer
	if s.typ == layers.ICMPv6TypeNeighborSolicitation {
		msg = &layers.ICMPv6NeighborSolicitation{TargetAddress: s.target.AsSlice(), Options: opts}
	} else {
		msg = &layers.ICMPv6NeighborAdvertisement{Flags: s.flags, TargetAddress: s.target.AsSlice(), Options: opts}
	}
	return serialize(t, append(ethLayers(s.src, s.dst, s.tags, layers.EthernetTypeIPv6), ip, icmp, msg)...)
}

// solicit is A asking for ipB6 at its solicited-node address, with its
// link-layer address, behind tags.
func solicit(tags []tag) ndSpec {
	return ndSpec{
		tags: tags, src: macA, dst: mcastB, typ: layers.ICMPv6TypeNeighborSolicitation,
		ipSrc: ipA6, ipDst: snB, target: ipB6, opts: []layers.ICMPv6Option{slla(macA)},
	}
}

func nsFrame(t testing.TB, tags []tag) []byte { return buildND(t, solicit(tags)) }

// dad is A checking, before taking it, that nobody has ipB6.
func dad(tags []tag) ndSpec {
	return ndSpec{
		tags: tags, src: macA, dst: mcastB, typ: layers.ICMPv6TypeNeighborSolicitation,
		ipSrc: unspec6, ipDst: snB, target: ipB6,
	}
}

// advert is B answering A's solicitation.
func advert(tags []tag) ndSpec {
	return ndSpec{
		tags: tags, src: macB, dst: macA, typ: layers.ICMPv6TypeNeighborAdvertisement,
		ipSrc: ipB6, ipDst: ipA6, flags: 0x60, target: ipB6, opts: []layers.ICMPv6Option{tlla(macB)},
	}
}

// l3 is where the network header of f starts.
func l3(t testing.TB, f []byte) int {
	t.Helper()
	off, _, ok := ether.L3(f)
	if !ok {
		t.Fatalf("no L3 in % x", f)
	}
	return off
}

// refChecksum is the ICMPv6 checksum of msg from src to dst, RFC 1071
// written out plainly, independent of package offload: 0 over a message
// whose checksum field is right.
func refChecksum(src, dst []byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i < len(b); i += 2 {
			w := uint32(b[i]) << 8
			if i+1 < len(b) {
				w |= uint32(b[i+1])
			}
			sum += w
		}
	}
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[:4], uint32(len(msg)))
	tail[7] = 58
	add(src)
	add(dst)
	add(tail[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ndParts returns the IPv6 header and the ICMPv6 message of an ND frame
// (as far as the payload length and the frame allow).
func ndParts(t testing.TB, f []byte) (ip, msg []byte) {
	t.Helper()
	off := l3(t, f)
	ip = f[off : off+40]
	end := min(off+40+int(binary.BigEndian.Uint16(ip[4:])), len(f))
	return ip, f[off+40 : end]
}

// mutateND copies an ND frame, lets mut change its IPv6 packet (header
// and message: ip is the frame from the IPv6 header on), and, if fix,
// makes the checksum right again for what mut made.
func mutateND(t testing.TB, f []byte, fix bool, mut func(ip []byte) []byte) []byte {
	t.Helper()
	off := l3(t, f)
	g := append([]byte(nil), f[:off]...)
	g = append(g, mut(append([]byte(nil), f[off:]...))...)
	if ip, msg := ndParts(t, g); fix && len(msg) >= 4 {
		msg[2], msg[3] = 0, 0
		binary.BigEndian.PutUint16(msg[2:], refChecksum(ip[8:24], ip[24:40], msg))
	}
	return g[:len(g):len(g)]
}

// mutateARP copies an ARP frame and lets mut change its ARP packet.
func mutateARP(t testing.TB, f []byte, mut func(arp []byte)) []byte {
	t.Helper()
	g := append([]byte(nil), f...)
	mut(g[l3(t, g):])
	return g
}
