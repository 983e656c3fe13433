package offload

import (
	"encoding/binary"

	"github.com/vtepd/vtepd/ether"
)

// Design notes on received checksums.
//
// A sender that offloads its checksums (the kernel's CHECKSUM_PARTIAL)
// writes only the pseudo-header sum into the TCP or UDP checksum field and
// leaves the rest to the NIC. When the datagram never meets a NIC, the
// checksum is never finished: the kernel's vxlan sending over a veth to
// another namespace of the same kernel (vtepd's test lab), or a VM's
// virtio NIC fed by a kernel vxlan on its own hypervisor. The kernel at
// the receiving end keeps the skb's CHECKSUM_PARTIAL and trusts it; vtepd
// reads the datagram through a UDP socket, which passes no such flag, so
// the inner frame arrives with a checksum that does not verify and whose
// field is exactly the pseudo-header sum. Written to the TAP as it is, the
// container's kernel drops it, and TCP through such a peer never opens.
//
// CheckL4 tells that case ("partial") from a good and a bad checksum. A
// partial frame goes to a TAP with offloads with NEEDS_CSUM, as the
// sender's kernel meant it, and gets its checksum completed in software
// for a TAP without. A corrupt frame whose checksum field happens to equal
// the pseudo-header sum is taken for partial: a chance of about 1 in 65536
// per corrupt frame, the same odds by which corruption escapes the TCP
// checksum anyway.

// L4Checksum is the state of a frame's TCP or UDP checksum.
type L4Checksum uint8

// States of L4Info.State.
const (
	// L4None: no checksum to check: not TCP or UDP (or behind IPv6
	// extension headers), an IP fragment, UDP over IPv4 without a
	// checksum, or IP lengths that do not fit the frame.
	L4None L4Checksum = iota
	// L4Good: the checksum verifies.
	L4Good
	// L4Partial: the field holds only the pseudo-header sum: the sender
	// left the checksum to an offload that never ran.
	L4Partial
	// L4Bad: anything else; the receiving kernel will drop the frame.
	L4Bad
)

// L4Info is what CheckL4 found: the state, and where the checksummed
// region starts (Start, from the start of the frame), where its checksum
// field is in it (Offset: 16 for TCP, 6 for UDP) and where it ends (End:
// the IP packet's end, before any Ethernet padding). Start, Offset and End
// are set unless the state is L4None.
type L4Info struct {
	State              L4Checksum
	Start, Offset, End int
}

// ok reports whether the checksum is good or partial: as good as the
// kernel would take it.
func (i L4Info) ok() bool { return i.State == L4Good || i.State == L4Partial }

// CheckL4 verifies the TCP or UDP checksum of an Ethernet frame (past up
// to ether.MaxTags VLAN tags). It reads the frame only.
func CheckL4(frame []byte) L4Info {
	l3, et, ok := ether.L3(frame)
	if !ok {
		return L4Info{}
	}
	var ipv6 bool
	var proto uint8
	var l4, end int
	switch et {
	case ether.TypeIPv4:
		if len(frame) < l3+ipv4HeaderLen {
			return L4Info{}
		}
		ip := frame[l3:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[ipv4TotalLenOffset:]))
		frag := binary.BigEndian.Uint16(ip[ipv4FlagsOffset:])
		if ip[0]>>4 != 4 || ihl < ipv4HeaderLen || total < ihl || l3+total > len(frame) || frag&(ipv4FlagMF|ipv4FragOffsetMask) != 0 {
			return L4Info{}
		}
		proto, l4, end = ip[ipv4ProtoOffset], l3+ihl, l3+total
	case ether.TypeIPv6:
		if len(frame) < l3+ipv6HeaderLen {
			return L4Info{}
		}
		ip := frame[l3:]
		end = l3 + ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[ipv6PayloadLenOffset:]))
		if ip[0]>>4 != 6 || end > len(frame) {
			return L4Info{}
		}
		ipv6, proto, l4 = true, ip[ipv6NextHeaderOffset], l3+ipv6HeaderLen
	default:
		return L4Info{}
	}
	seg := frame[l4:end]
	var off int
	switch proto {
	case protoTCP:
		if len(seg) < tcpHeaderLen {
			return L4Info{}
		}
		off = TCPChecksumOffset
	case protoUDP:
		if len(seg) < udpHeaderLen {
			return L4Info{}
		}
		off = UDPChecksumOffset
		if !ipv6 && binary.BigEndian.Uint16(seg[off:]) == 0 {
			return L4Info{} // "no checksum" (RFC 768)
		}
	default:
		return L4Info{}
	}
	src, dst := addrs(frame[l3:l4], ipv6)
	pseudo := PseudoHeaderSum(proto, src, dst, len(seg))
	return L4Info{State: l4State(seg[off:], pseudo, Sum(seg, pseudo)), Start: l4, Offset: off, End: end}
}

// l4State tells a good checksum from a partial and a bad one: field is
// where the checksum field starts, pseudo the pseudo-header sum and sum
// that of the pseudo-header and the whole TCP or UDP segment.
func l4State(field []byte, pseudo, sum uint64) L4Checksum {
	switch {
	case ^Fold(sum) == 0:
		return L4Good
	case onesEqual(binary.BigEndian.Uint16(field), Fold(pseudo)):
		return L4Partial
	}
	return L4Bad
}

// NeedsCsumHdr is the virtio_net_hdr of an ordinary frame whose checksum
// CheckL4 found partial: the kernel finishes it, or trusts it, as it does
// for its own CHECKSUM_PARTIAL frames.
func (i L4Info) NeedsCsumHdr() VirtioNetHdr {
	return VirtioNetHdr{
		Flags:      FlagNeedsCsum,
		HdrLen:     uint16(i.Start + i.Offset + 2),
		CsumStart:  uint16(i.Start),
		CsumOffset: uint16(i.Offset),
	}
}

// onesEqual reports whether two 16-bit ones' complement numbers are equal,
// 0x0000 and 0xffff both being zero.
func onesEqual(a, b uint16) bool {
	return a == b || a|b == 0xffff && (a == 0 || b == 0)
}
