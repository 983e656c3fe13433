package offload

// Offsets and values of the IPv4, IPv6 and TCP header fields this package
// reads or rewrites; the Ethernet ones, and the VLAN tag walk (ether.L3),
// are package ether's.
const (
	ipv4HeaderLen      = 20 // without options
	ipv4TOSOffset      = 1
	ipv4TotalLenOffset = 2
	ipv4IDOffset       = 4
	ipv4FlagsOffset    = 6 // flags and fragment offset
	ipv4ProtoOffset    = 9
	ipv4CsumOffset     = 10
	ipv4AddrsOffset    = 12 // source, then destination
	ipv4FlagMF         = 0x2000
	ipv4FlagDF         = 0x4000
	ipv4FragOffsetMask = 0x1fff

	ipv6HeaderLen        = 40
	ipv6PayloadLenOffset = 4
	ipv6NextHeaderOffset = 6
	ipv6AddrsOffset      = 8 // source, then destination

	protoTCP = 6
	protoUDP = 17

	udpHeaderLen    = 8
	udpLengthOffset = 4
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
