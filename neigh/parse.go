package neigh

import (
	"encoding/binary"
	"net/netip"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/offload"
)

// An Ethernet/IPv4 ARP packet (RFC 826), as it follows the EtherType:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Hardware type          |        Protocol type          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HW length    | Proto length  |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Sender hardware address (6 bytes)                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |  Sender protocol address ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  ... (4 bytes)                | Target hardware address ...   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                       ... (6 bytes)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Target protocol address (4 bytes)                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpLen             = 28
	arpHTypeOffset     = 0
	arpPTypeOffset     = 2
	arpHLenOffset      = 4
	arpPLenOffset      = 5
	arpOpOffset        = 6
	arpSenderMACOffset = 8
	arpSenderIPOffset  = 14
	arpTargetMACOffset = 18
	arpTargetIPOffset  = 24

	arpHTypeEthernet = 1 // ARPHRD_ETHER
	arpHTypeIEEE802  = 6 // ARPHRD_IEEE802, which the kernel takes as Ethernet too
	ipv4AddrLen      = 4
	arpOpRequest     = 1
	arpOpReply       = 2
)

// arpHeader is a view of an ARP packet; len >= arpLen.
type arpHeader []byte

func (a arpHeader) op() uint16 { return binary.BigEndian.Uint16(a[arpOpOffset:]) }

func (a arpHeader) senderMAC() [ether.AddrLen]byte {
	return [ether.AddrLen]byte(a[arpSenderMACOffset : arpSenderMACOffset+ether.AddrLen])
}

func (a arpHeader) senderIP() [ipv4AddrLen]byte {
	return [ipv4AddrLen]byte(a[arpSenderIPOffset : arpSenderIPOffset+ipv4AddrLen])
}

func (a arpHeader) targetMAC() [ether.AddrLen]byte {
	return [ether.AddrLen]byte(a[arpTargetMACOffset : arpTargetMACOffset+ether.AddrLen])
}

func (a arpHeader) targetIP() [ipv4AddrLen]byte {
	return [ipv4AddrLen]byte(a[arpTargetIPOffset : arpTargetIPOffset+ipv4AddrLen])
}

// ethernetIPv4 reports whether a is Ethernet/IPv4 ARP.
func (a arpHeader) ethernetIPv4() bool {
	ht := binary.BigEndian.Uint16(a[arpHTypeOffset:])
	return (ht == arpHTypeEthernet || ht == arpHTypeIEEE802) &&
		binary.BigEndian.Uint16(a[arpPTypeOffset:]) == ether.TypeIPv4 &&
		a[arpHLenOffset] == ether.AddrLen && a[arpPLenOffset] == ipv4AddrLen
}

// encode writes an Ethernet/IPv4 ARP packet with operation op.
func (a arpHeader) encode(op uint16, senderMAC [ether.AddrLen]byte, senderIP [ipv4AddrLen]byte, targetMAC [ether.AddrLen]byte, targetIP [ipv4AddrLen]byte) {
	binary.BigEndian.PutUint16(a[arpHTypeOffset:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(a[arpPTypeOffset:], ether.TypeIPv4)
	a[arpHLenOffset] = ether.AddrLen
	a[arpPLenOffset] = ipv4AddrLen
	binary.BigEndian.PutUint16(a[arpOpOffset:], op)
	copy(a[arpSenderMACOffset:], senderMAC[:])
	copy(a[arpSenderIPOffset:], senderIP[:])
	copy(a[arpTargetMACOffset:], targetMAC[:])
	copy(a[arpTargetIPOffset:], targetIP[:])
}

// The IPv6 header (RFC 8200), and a Neighbor Solicitation or Advertisement
// (RFC 4861 4.3, 4.4) as the ICMPv6 message that follows it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Source Address (16 bytes)                    |
//	|                Destination Address (16 bytes)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Target Address (16 bytes)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...  (Type, Length in units of 8 bytes, value)
//	+-+-+-+-+-+-+-+-+-+-+-+-+-
//
// A solicitation has no flags: the whole word after the checksum is
// reserved. A link-layer address option for Ethernet is 8 bytes: type 1
// (source) or 2 (target), length 1, the MAC.
const (
	ipv6HeaderLen        = 40
	ipv6AddrLen          = 16
	ipv6PayloadLenOffset = 4
	ipv6NextHeaderOffset = 6
	ipv6HopLimitOffset   = 7
	ipv6SrcOffset        = 8
	ipv6DstOffset        = 24

	protoICMPv6 = 58
	ndHopLimit  = 255

	icmpTypeNS = 135
	icmpTypeNA = 136

	ndTypeOffset     = 0
	ndCodeOffset     = 1
	ndChecksumOffset = 2
	ndFlagsOffset    = 4
	ndTargetOffset   = 8
	ndOptionsOffset  = 24
	// ndMinLen is the shortest solicitation or advertisement.
	ndMinLen = ndOptionsOffset

	ndOptSourceLLA  = 1
	ndOptTargetLLA  = 2
	ndOptUnit       = 8 // an option's length counts 8-byte units
	ndOptLLALen     = 8 // an Ethernet link-layer address option
	ndOptAddrOffset = 2 // where its MAC starts
	// naLen is the length of the advertisements Reply writes: the fixed
	// part and a Target Link-Layer Address option.
	naLen = ndMinLen + ndOptLLALen
)

// ipv6Header is a view of an IPv6 header; len >= ipv6HeaderLen.
type ipv6Header []byte

func (h ipv6Header) src() []byte { return h[ipv6SrcOffset : ipv6SrcOffset+ipv6AddrLen] }
func (h ipv6Header) dst() []byte { return h[ipv6DstOffset : ipv6DstOffset+ipv6AddrLen] }

// trafficClass returns the 8 bits between the version and the flow label.
func (h ipv6Header) trafficClass() uint8 { return h[0]<<4 | h[1]>>4 }

// ndMessage is a view of a solicitation or advertisement; len >= ndMinLen.
type ndMessage []byte

func (m ndMessage) target() []byte { return m[ndTargetOffset : ndTargetOffset+ipv6AddrLen] }

// solicitedNode reports whether a is a solicited-node multicast address,
// ff02::1:ffXX:XXXX (RFC 4291 2.7.1).
func solicitedNode(a []byte) bool {
	return a[0] == 0xff && a[1] == 0x02 &&
		binary.BigEndian.Uint64(a[2:10]) == 0 && a[10] == 0 && a[11] == 0x01 && a[12] == 0xff
}

// Candidate reports whether frame may be ARP or ND, looking no further
// than the EtherType past the VLAN tags and, for IPv6, the next header and
// the ICMPv6 type. Parse refuses every frame Candidate rejects with
// ErrNotNeigh. Candidate costs a few nanoseconds: the pipeline can ask it
// of every frame, and Parse, which validates and fills a Packet, only of
// the few it lets through.
func Candidate(frame []byte) bool {
	l3, et, ok := ether.L3(frame)
	switch {
	case !ok:
		return false
	case et == ether.TypeARP:
		return true
	case et == ether.TypeIPv6 && len(frame) > l3+ipv6HeaderLen:
		typ := frame[l3+ipv6HeaderLen+ndTypeOffset]
		return frame[l3+ipv6NextHeaderOffset] == protoICMPv6 && (typ == icmpTypeNS || typ == icmpTypeNA)
	}
	return false
}

// Parse reads an ARP packet or a Neighbor Solicitation or Advertisement
// from an Ethernet frame, as the TAP delivers it (no FCS), behind up to
// ether.MaxTags VLAN tags, and validates it (see the package
// documentation for what is accepted). It returns ErrNotNeigh for any
// other frame, one of the other errors of this package for ARP or ND that
// a host would discard, and a zero Packet with any error. It reads the
// frame only, does not keep it, and does not allocate.
func Parse(frame []byte) (p Packet, err error) {
	l3, et, ok := ether.L3(frame)
	switch {
	case !ok:
		return Packet{}, ErrNotNeigh
	case et == ether.TypeARP:
		err = p.parseARP(frame, l3)
	case et == ether.TypeIPv6:
		err = p.parseND(frame, l3)
	default:
		return Packet{}, ErrNotNeigh
	}
	if err != nil {
		return Packet{}, err
	}
	h := ether.Header(frame)
	p.EthDst, p.EthSrc = h.Dst(), h.Src()
	p.Tags.n = uint8((l3 - ether.HeaderLen) / ether.TagLen)
	copy(p.Tags.b[:], frame[ether.EtherTypeOffset:l3-ether.EtherTypeLen])
	p.L3 = l3
	return p, nil
}

// parseARP fills p from the ARP packet at frame[l3:].
func (p *Packet) parseARP(frame []byte, l3 int) error {
	if len(frame)-l3 < arpLen {
		return ErrTruncated
	}
	a := arpHeader(frame[l3 : l3+arpLen])
	if !a.ethernetIPv4() {
		return ErrBadARP
	}
	sip, tip := a.senderIP(), a.targetIP()
	switch a.op() {
	case arpOpRequest:
		switch {
		case sip == [ipv4AddrLen]byte{}:
			p.Kind = ARPProbe
		case sip == tip:
			p.Kind = ARPAnnouncement
		default:
			p.Kind = ARPRequest
		}
	case arpOpReply:
		if sip == tip && sip != [ipv4AddrLen]byte{} {
			p.Kind = ARPAnnouncement
		} else {
			p.Kind = ARPReply
		}
	default:
		return ErrBadARP
	}
	p.SrcIP, p.TargetIP = netip.AddrFrom4(sip), netip.AddrFrom4(tip)
	p.SrcMAC, p.TargetMAC = a.senderMAC(), a.targetMAC()
	p.HasSrcMAC, p.HasTargetMAC = true, true
	p.End = l3 + arpLen
	return nil
}

// parseND fills p from the IPv6 packet at frame[l3:] if it is a Neighbor
// Solicitation or Advertisement.
func (p *Packet) parseND(frame []byte, l3 int) error {
	if len(frame)-l3 <= ipv6HeaderLen {
		return ErrNotNeigh // no ICMPv6 type to look at
	}
	ip := ipv6Header(frame[l3 : l3+ipv6HeaderLen])
	plen := int(binary.BigEndian.Uint16(ip[ipv6PayloadLenOffset:]))
	if ip[0]>>4 != 6 || ip[ipv6NextHeaderOffset] != protoICMPv6 || plen == 0 {
		return ErrNotNeigh
	}
	l4 := l3 + ipv6HeaderLen
	typ := frame[l4+ndTypeOffset]
	if typ != icmpTypeNS && typ != icmpTypeNA {
		return ErrNotNeigh
	}
	end := l4 + plen
	if end > len(frame) {
		return ErrTruncated
	}
	if plen < ndMinLen {
		return ErrBadND
	}
	m := ndMessage(frame[l4:end])
	src, dst, target := ip.src(), ip.dst(), m.target()
	if m[ndCodeOffset] != 0 || ip[ipv6HopLimitOffset] != ndHopLimit || src[0] == 0xff || target[0] == 0xff {
		return ErrBadND
	}

	// The options: every one well formed (ndisc_parse_options), and the
	// first link-layer address option of the kind this message uses.
	want := byte(ndOptSourceLLA)
	if typ == icmpTypeNA {
		want = ndOptTargetLLA
	}
	var lla [ether.AddrLen]byte
	var hasLLA bool
	for o := m[ndOptionsOffset:]; len(o) > 0; {
		if len(o) < 2 {
			return ErrBadOption
		}
		n := int(o[1]) * ndOptUnit
		if n == 0 || n > len(o) {
			return ErrBadOption
		}
		if o[0] == want && !hasLLA {
			if n != ndOptLLALen {
				return ErrBadOption
			}
			lla = [ether.AddrLen]byte(o[ndOptAddrOffset : ndOptAddrOffset+ether.AddrLen])
			hasLLA = true
		}
		o = o[n:]
	}

	srcIP, dstIP := netip.AddrFrom16([ipv6AddrLen]byte(src)), netip.AddrFrom16([ipv6AddrLen]byte(dst))
	if typ == icmpTypeNS {
		if srcIP.IsUnspecified() {
			// RFC 4861 7.1.1: DAD goes to the solicited-node address
			// and says nothing of a link-layer address.
			if !solicitedNode(dst) || hasLLA {
				return ErrBadND
			}
			p.Kind = DADSolicitation
		} else {
			p.Kind = NeighborSolicitation
			p.SrcMAC, p.HasSrcMAC = lla, hasLLA
		}
	} else {
		flags := Flags(m[ndFlagsOffset]) & flagsMask
		if dst[0] == 0xff && flags&FlagSolicited != 0 {
			return ErrBadND // RFC 4861 7.1.2
		}
		p.Kind = NeighborAdvertisement
		p.Flags = flags
		p.TargetMAC, p.HasTargetMAC = lla, hasLLA
	}

	// Last, as it costs the most: the checksum over the pseudo-header and
	// the message, field included, must fold to all ones.
	if offload.Checksum(m, offload.PseudoHeaderSum(protoICMPv6, src, dst, plen)) != 0 {
		return ErrChecksum
	}
	p.SrcIP, p.DstIP = srcIP, dstIP
	p.TargetIP = netip.AddrFrom16([ipv6AddrLen]byte(target))
	p.TrafficClass = ip.trafficClass()
	p.End = end
	return nil
}
