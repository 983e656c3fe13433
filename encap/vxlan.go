package encap

import (
	"encoding/binary"
	"errors"

	"github.com/vtepd/vtepd/ether"
)

// Wire sizes. The overheads are what an encapsulated frame costs on the
// underlay link, so the TAP MTU is the underlay MTU minus OverheadIPv4 (or
// OverheadIPv6); nothing outside this package should spell them as numbers.
const (
	// Port is the IANA-assigned VXLAN UDP port (RFC 7348 §5).
	Port = 4789

	// HeaderLen is the length of the VXLAN header.
	HeaderLen = 8
	// UDPHeaderLen is the length of the UDP header.
	UDPHeaderLen = 8
	// IPv4HeaderLen is the length of an IPv4 header without options, as the
	// kernel writes it for a raw socket.
	IPv4HeaderLen = 20
	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40
	// MaxIPLen is the most an IPv4 total length or an IPv6 payload length
	// can say (16 bits): no datagram's UDP payload is longer.
	MaxIPLen = 65535
	// EthernetHeaderLen is the length of an untagged Ethernet header (no
	// FCS), ether.HeaderLen: the inner header the overheads count.
	EthernetHeaderLen = ether.HeaderLen
	// VLANTagLen is the length of one VLAN tag, ether.TagLen.
	VLANTagLen = ether.TagLen

	// OverheadIPv4 is how much smaller the TAP MTU must be than the MTU
	// of an IPv4 underlay: the inner Ethernet header plus the outer IPv4,
	// UDP and VXLAN headers (50 bytes).
	OverheadIPv4 = EthernetHeaderLen + IPv4HeaderLen + UDPHeaderLen + HeaderLen
	// OverheadIPv6 is OverheadIPv4 for an IPv6 underlay (70 bytes).
	OverheadIPv6 = EthernetHeaderLen + IPv6HeaderLen + UDPHeaderLen + HeaderLen

	// Headroom is how many bytes vtepd leaves free in front of an inner
	// frame for Encap to write the UDP and VXLAN headers into (16 bytes).
	// The kernel writes the IP header itself on the raw send socket.
	Headroom = UDPHeaderLen + HeaderLen

	// MaxVNI is the largest VXLAN Network Identifier (24 bits).
	MaxVNI = 1<<24 - 1

	// FlagI is the "VNI valid" flag, the only flag RFC 7348 defines. It
	// must be set on send; it is the only flag checked on receipt.
	FlagI = 0x08
)

// VXLAN header (RFC 7348 §5). Bit 0 is the most significant bit of byte 0.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|                  Reserved                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          VXLAN Network Identifier (VNI)       |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Fields, in order:
//   - Flags (8 bits): I (0x08) is 1 on send; the seven R bits are 0 on send
//     and ignored on receipt.
//   - Reserved (24 bits): 0 on send, ignored on receipt (the group-policy
//     and GPE extensions put things here).
//   - VNI (24 bits, big-endian): the VXLAN Network Identifier.
//   - Reserved (8 bits): 0 on send, ignored on receipt.
const (
	// flagsOffset starts the first word: flags and 24 reserved bits.
	flagsOffset = 0
	// vniOffset starts the second word: the VNI in the top 24 bits, a
	// reserved byte in the low 8.
	vniOffset = 4
)

// Header is a view of an 8-byte VXLAN header. Its methods assume
// len(h) >= HeaderLen; Decap checks that at the boundary.
type Header []byte

// Flags returns the flags byte. Only FlagI has a meaning.
func (h Header) Flags() uint8 {
	return h[flagsOffset]
}

// VNI returns the 24-bit VXLAN Network Identifier.
func (h Header) VNI() uint32 {
	return binary.BigEndian.Uint32(h[vniOffset:]) >> 8
}

// Encode writes a complete header for vni: flags set to FlagI, every
// reserved bit zero. Bits of vni above MaxVNI are dropped; configuration
// validation keeps VNIs in range.
func (h Header) Encode(vni uint32) {
	_ = h[HeaderLen-1] // one bounds check for both stores
	binary.BigEndian.PutUint32(h[flagsOffset:], FlagI<<24)
	// The shift drops bits above MaxVNI and zeroes the reserved byte.
	binary.BigEndian.PutUint32(h[vniOffset:], vni<<8)
}

// UDP header (RFC 768), all fields big-endian.
const (
	udpSrcPortOffset = 0
	udpDstPortOffset = 2
	udpLengthOffset  = 4
	// UDPChecksumOffset is the offset of the checksum in the UDP header.
	// It is exported for IPv6 raw sockets: setting IPV6_CHECKSUM to this
	// offset makes the kernel fill in the checksum that Encap leaves zero.
	UDPChecksumOffset = 6
)

// UDP is a view of an 8-byte UDP header. Its methods assume
// len(u) >= UDPHeaderLen.
type UDP []byte

// SourcePort returns the source port.
func (u UDP) SourcePort() uint16 {
	return binary.BigEndian.Uint16(u[udpSrcPortOffset:])
}

// DestinationPort returns the destination port.
func (u UDP) DestinationPort() uint16 {
	return binary.BigEndian.Uint16(u[udpDstPortOffset:])
}

// Length returns the length field: header plus payload, in bytes.
func (u UDP) Length() uint16 {
	return binary.BigEndian.Uint16(u[udpLengthOffset:])
}

// Checksum returns the checksum field; zero means "not computed".
func (u UDP) Checksum() uint16 {
	return binary.BigEndian.Uint16(u[UDPChecksumOffset:])
}

// Encode writes a UDP header with the given ports, length (header plus
// payload; the caller keeps it within 65535, which any MTU does) and a zero
// checksum.
//
// A zero checksum is what RFC 7348 §5 recommends for VXLAN over IPv4 and
// what the kernel's vxlan driver sends by default. Over IPv6 a zero checksum
// is only allowed for tunnels under RFC 6935/6936, and Linux drops such
// datagrams unless the receiver opted in (udp6zerocsumrx on a vxlan device,
// UDP_NO_CHECK6_RX on a socket); the IPv6 sender should therefore set
// IPV6_CHECKSUM to UDPChecksumOffset on its raw socket.
func (u UDP) Encode(src, dst uint16, length int) {
	_ = u[UDPChecksumOffset+1] // one bounds check for the four stores
	binary.BigEndian.PutUint16(u[udpSrcPortOffset:], src)
	binary.BigEndian.PutUint16(u[udpDstPortOffset:], dst)
	binary.BigEndian.PutUint16(u[udpLengthOffset:], uint16(length))
	binary.BigEndian.PutUint16(u[UDPChecksumOffset:], 0)
}

// Encap turns an inner frame into the UDP datagram vtepd hands to its raw
// socket, in place. The inner frame must already sit at
// b[Headroom:Headroom+innerLen]; Encap writes the UDP header into
// b[0:UDPHeaderLen] and the VXLAN header for vni into
// b[UDPHeaderLen:Headroom], and returns b[:Headroom+innerLen].
//
// The caller guarantees 0 <= innerLen and Headroom+innerLen <= len(b); the
// engine sizes its buffers so that this always holds (Encap panics
// otherwise, like any out-of-range slice expression). srcPort normally comes
// from SourcePort(FlowHash(inner), lo, hi) and dstPort is normally Port.
func Encap(b []byte, vni uint32, srcPort, dstPort uint16, innerLen int) []byte {
	n := Headroom + innerLen
	b = b[:n]
	UDP(b[:UDPHeaderLen]).Encode(srcPort, dstPort, n)
	Header(b[UDPHeaderLen:Headroom]).Encode(vni)
	return b
}

// Errors returned by Decap. They are sentinels: the receive loop counts
// them per kind and drops the datagram, it never logs per packet.
var (
	// ErrTooShort means the datagram is shorter than a VXLAN header.
	ErrTooShort = errors.New("encap: datagram shorter than a VXLAN header")
	// ErrBadFlags means the I flag is clear, so the VNI is not valid.
	ErrBadFlags = errors.New("encap: VXLAN I flag not set")
	// ErrInnerTooShort means the inner frame is shorter than an Ethernet
	// header.
	ErrInnerTooShort = errors.New("encap: inner frame shorter than an Ethernet header")
)

// Decap validates the payload of a received UDP datagram (a VXLAN header
// followed by an inner Ethernet frame) and returns the VNI and the inner
// frame, which is payload[HeaderLen:], not a copy.
//
// Checks, in this order: the payload holds a VXLAN header (ErrTooShort), the
// I flag is set (ErrBadFlags), and the inner frame holds an Ethernet header
// (ErrInnerTooShort). Reserved bits and flags other than I are ignored, as
// RFC 7348 §5 requires of a receiver. (The kernel's vxlan driver instead
// drops datagrams with unknown flags unless an extension claims them; we
// follow the RFC, so a peer sending group-policy or GPE bits still gets its
// frames through, without the extension's meaning.)
func Decap(payload []byte) (vni uint32, inner []byte, err error) {
	if len(payload) < HeaderLen {
		return 0, nil, ErrTooShort
	}
	h := Header(payload[:HeaderLen])
	if h.Flags()&FlagI == 0 {
		return 0, nil, ErrBadFlags
	}
	if len(payload)-HeaderLen < EthernetHeaderLen {
		return 0, nil, ErrInnerTooShort
	}
	return h.VNI(), payload[HeaderLen:], nil
}
