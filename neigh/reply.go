package neigh

import (
	"encoding/binary"
	"io"
	"net/netip"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/offload"
)

// Lengths of the frames Reply writes.
const (
	// MinFrameLen is the shortest Ethernet frame without its FCS: Reply
	// pads ARP replies to it.
	MinFrameLen = 60
	// MaxReplyLen is the longest frame Reply writes: a Neighbor
	// Advertisement behind ether.MaxTags tags. A buffer this long takes
	// any reply.
	MaxReplyLen = ether.HeaderLen + ether.MaxTags*ether.TagLen + ipv6HeaderLen + naLen
)

// allNodes is ff02::1, where an answer to DAD goes (RFC 4861 7.2.4).
var allNodes = [ipv6AddrLen]byte{0: 0xff, 1: 0x02, 15: 0x01}

// Answerable reports whether the Linux bridge with neigh_suppress answers
// p from its table when it knows the target (br_do_proxy_suppress_arp,
// br_do_suppress_nd): an ARP request from a sender outside 0.0.0.0/8 for a
// target that is not loopback, multicast or 0.0.0.0, or a Neighbor
// Solicitation whose source is not its destination. Probes, announcements
// and DAD solicitations are not answered. Whether the known MAC is one the
// VTEP should answer for (the kernel answers only for one behind its
// VXLAN port) is the caller's to decide.
func (p *Packet) Answerable() bool {
	switch p.Kind {
	case ARPRequest:
		t := p.TargetIP
		return !t.IsLoopback() && !t.IsMulticast() && !t.IsUnspecified() && !zeroNet(p.SrcIP)
	case NeighborSolicitation:
		return p.SrcIP != p.DstIP && !p.DstIP.IsLoopback()
	}
	return false
}

// Reply writes into buf the frame the owner of p.TargetIP, whose MAC is
// mac, would send in answer to p, and returns its length:
//
//   - for an ARP request or probe, an ARP reply from mac to the
//     requester's sender hardware address, with sender (mac, target IP)
//     and target (requester's MAC, requester's IP: 0.0.0.0 for a probe),
//     zero-padded to MinFrameLen;
//   - for a Neighbor Solicitation, a Neighbor Advertisement from mac to
//     p.Requester(), from the target to the solicitation's source, flags
//     Solicited and Override, with a Target Link-Layer Address option
//     holding mac; for a DAD solicitation the same to ff02::1 with
//     Solicited clear (RFC 4861 7.2.4), still to the requester's MAC as
//     Ethernet destination (RFC 6085 allows a unicast link-layer
//     destination under a multicast IPv6 one).
//
// The reply carries p's VLAN tags. It returns ErrNotRequest for any other
// Kind, ErrBadMAC if mac or the requester's MAC is zero or a group
// address, ErrOwnMAC if they are the same, and io.ErrShortBuffer if buf
// is too short (MaxReplyLen always fits); buf is unchanged on error, and
// past the returned length in any case. Reply does not allocate.
func (p *Packet) Reply(buf []byte, mac [ether.AddrLen]byte) (int, error) {
	arp := false
	switch p.Kind {
	case ARPRequest, ARPProbe:
		if !p.SrcIP.Is4() || !p.TargetIP.Is4() {
			return 0, ErrNotRequest
		}
		arp = true
	case NeighborSolicitation, DADSolicitation:
		if !p.SrcIP.Is6() || !p.TargetIP.Is6() {
			return 0, ErrNotRequest
		}
	default:
		return 0, ErrNotRequest
	}
	to := p.Requester()
	if !unicastMAC(mac) || !unicastMAC(to) {
		return 0, ErrBadMAC
	}
	if mac == to {
		return 0, ErrOwnMAC
	}
	l3 := ether.HeaderLen + p.Tags.Len()*ether.TagLen
	if arp {
		n := max(l3+arpLen, MinFrameLen)
		if len(buf) < n {
			return 0, io.ErrShortBuffer
		}
		b := buf[:n]
		p.putEthernet(b, to, mac, ether.TypeARP)
		arpHeader(b[l3:l3+arpLen]).encode(arpOpReply, mac, p.TargetIP.As4(), to, p.SrcIP.As4())
		clear(b[l3+arpLen:])
		return n, nil
	}

	n := l3 + ipv6HeaderLen + naLen
	if len(buf) < n {
		return 0, io.ErrShortBuffer
	}
	b := buf[:n]
	p.putEthernet(b, to, mac, ether.TypeIPv6)
	target := p.TargetIP.As16()
	dst, flags := allNodes, FlagOverride
	if p.Kind == NeighborSolicitation {
		dst, flags = p.SrcIP.As16(), FlagSolicited|FlagOverride
	}

	ip := b[l3 : l3+ipv6HeaderLen]
	// Version 6; of the traffic class, the four bits the kernel copies
	// (struct ipv6hdr's priority); no flow label.
	ip[0] = 6<<4 | p.TrafficClass>>4
	ip[1], ip[2], ip[3] = 0, 0, 0
	binary.BigEndian.PutUint16(ip[ipv6PayloadLenOffset:], naLen)
	ip[ipv6NextHeaderOffset] = protoICMPv6
	ip[ipv6HopLimitOffset] = ndHopLimit
	copy(ip[ipv6SrcOffset:], target[:])
	copy(ip[ipv6DstOffset:], dst[:])

	m := b[l3+ipv6HeaderLen:]
	m[ndTypeOffset] = icmpTypeNA
	m[ndCodeOffset] = 0
	binary.BigEndian.PutUint16(m[ndChecksumOffset:], 0)
	binary.BigEndian.PutUint32(m[ndFlagsOffset:], uint32(flags)<<24)
	copy(m[ndTargetOffset:], target[:])
	o := m[ndOptionsOffset:]
	o[0], o[1] = ndOptTargetLLA, ndOptLLALen/ndOptUnit
	copy(o[ndOptAddrOffset:], mac[:])
	sum := offload.PseudoHeaderSum(protoICMPv6, target[:], dst[:], naLen)
	binary.BigEndian.PutUint16(m[ndChecksumOffset:], offload.Checksum(m, sum))
	return n, nil
}

// putEthernet writes an Ethernet header from src to dst with p's tags and
// etherType at the start of b.
func (p *Packet) putEthernet(b []byte, dst, src [ether.AddrLen]byte, etherType uint16) {
	copy(b[ether.DstOffset:], dst[:])
	copy(b[ether.SrcOffset:], src[:])
	tags := p.Tags.Len() * ether.TagLen
	copy(b[ether.EtherTypeOffset:], p.Tags.b[:tags])
	binary.BigEndian.PutUint16(b[ether.EtherTypeOffset+tags:], etherType)
}

// zeroNet reports whether a is in 0.0.0.0/8, "this network", which no
// host has as its address (the kernel's ipv4_is_zeronet).
func zeroNet(a netip.Addr) bool {
	return a.Is4() && a.As4()[0] == 0
}
