package offload

import "encoding/binary"

// Offsets and values of the Ethernet, IPv4, IPv6 and TCP header fields
// this package reads or rewrites.
const (
	ethHeaderLen    = 14
	etherTypeOffset = 12
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	vlanTagLen      = 4
	maxVLANTags     = 2

	ipv4HeaderLen      = 20 // without options
	ipv4TOSOffset      = 1
	ipv4TotalLenOffset = 2
	ipv4IDOffset       = 4
	ipv4FlagsOffset    = 6 // flags and fragment offset
	ipv4ProtoOffset    = 9
	ipv4CsumOffset     = 10
	ipv4AddrsOffset    = 12 // source, then destination
	ipv4FlagMF         = 0x2000
	ipv4FragOffsetMask = 0x1fff

	ipv6HeaderLen        = 40
	ipv6PayloadLenOffset = 4
	ipv6NextHeaderOffset = 6
	ipv6AddrsOffset      = 8 // source, then destination

	protoTCP = 6
	protoUDP = 17

	udpHeaderLen = 8
	// UDPChecksumOffset is csum_offset for UDP.
	UDPChecksumOffset = 6

	tcpHeaderLen     = 20 // without options
	tcpMaxHeaderLen  = 60
	tcpSeqOffset     = 4
	tcpAckOffset     = 8
	tcpDataOffOffset = 12
	tcpFlagsOffset   = 13
	tcpWindowOffset  = 14
	// TCPChecksumOffset is csum_offset for TCP: where the checksum sits
	// in the TCP header.
	TCPChecksumOffset = 16
	tcpUrgentOffset   = 18

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
	tcpECE = 0x40
	tcpCWR = 0x80

	// maxIPLen is the largest IPv4 total length, and the largest IPv6
	// payload we make: a super-frame never carries more than 64 KiB of IP.
	maxIPLen = 65535
)

// l3Offset returns where the IP header of an Ethernet frame starts, past up
// to two 802.1Q/802.1ad tags, and the EtherType that announces it.
func l3Offset(frame []byte) (off int, etherType uint16, ok bool) {
	off = etherTypeOffset
	for tags := 0; ; tags++ {
		if len(frame) < off+2 {
			return 0, 0, false
		}
		switch et := binary.BigEndian.Uint16(frame[off:]); et {
		case 0x8100, 0x88a8, 0x9100:
			if tags == maxVLANTags {
				return 0, 0, false
			}
			off += vlanTagLen
		default:
			return off + 2, et, true
		}
	}
}

// addrs returns the source and destination addresses of the IP header ip.
func addrs(ip []byte, ipv6 bool) (src, dst []byte) {
	if ipv6 {
		return ip[ipv6AddrsOffset : ipv6AddrsOffset+16], ip[ipv6AddrsOffset+16 : ipv6AddrsOffset+32]
	}
	return ip[ipv4AddrsOffset : ipv4AddrsOffset+4], ip[ipv4AddrsOffset+4 : ipv4AddrsOffset+8]
}

// tcpSum is the pseudo-header sum of the TCP segment that starts at
// frame[l4:], over IP header ip.
func tcpSum(ip []byte, ipv6 bool, tcpLen int) uint64 {
	src, dst := addrs(ip, ipv6)
	return PseudoHeaderSum(protoTCP, src, dst, tcpLen)
}
