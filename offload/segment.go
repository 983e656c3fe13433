package offload

import (
	"encoding/binary"
	"errors"

	"github.com/vtepd/vtepd/ether"
)

// Errors of Segmenter.Reset and CompleteChecksum. The frame cannot be
// sent; the caller drops and counts it.
var (
	// ErrGSOType means a GSO type other than TCPv4, TCPv6 or UDP_L4,
	// which vtepd never asks the kernel for.
	ErrGSOType = errors.New("offload: unsupported GSO type")
	// ErrBadFrame means the frame does not hold what its virtio_net_hdr
	// says: no IPv4 or IPv6 TCP segment, or a checksum position outside
	// the frame.
	ErrBadFrame = errors.New("offload: frame does not match its virtio_net_hdr")
)

// MaxSegmentHeaderLen is the longest run of headers a segment repeats:
// Ethernet with two tags, then IP and TCP headers of 60 bytes each (an
// IPv4 header with options is 60 at most, an IPv6 one 40, and TCP with
// options 60).
const (
	MaxSegmentHeaderLen = ether.HeaderLen + ether.MaxTags*ether.TagLen + ipv4MaxHeaderLen + tcpMaxHeaderLen
	ipv4MaxHeaderLen    = 60
)

// Segmenter cuts a TCP or UDP super-frame (a frame with a GSO
// virtio_net_hdr) into frames of at most gso_size payload bytes, as the
// kernel's tcp_gso_segment and __udp_gso_segment would. A UDP super-frame
// (VIRTIO_NET_HDR_GSO_UDP_L4, from a sender's UDP_SEGMENT, with a TAP that
// has TUN_F_USO4/6) becomes datagrams that repeat its headers, each with
// its own IP and UDP lengths, IPv4 ID and checksums. For TCP, every segment repeats the Ethernet (with its
// VLAN tags), IP and TCP headers; IPv4 segments get their total length, an
// incremented ID and a new header checksum, IPv6 segments their payload
// length; each TCP sequence number is advanced by the payload before it;
// FIN and PSH stay only on the last segment and CWR only on the first; and
// every TCP checksum is computed in full, since the kernel left only the
// pseudo-header sum in the super-frame (CHECKSUM_PARTIAL) and nothing after
// vtepd would finish it.
//
// Use Reset once per super-frame, then Next until Done. A Segmenter holds
// the super-frame by reference and never allocates.
type Segmenter struct {
	frame  []byte
	l3, l4 int // offsets of the IP and TCP headers
	hdrLen int // every header, Ethernet to TCP options
	mss    int
	ipv6   bool
	udp    bool
	next   int // offset in frame of the next segment's payload
	index  int // of the next segment
	seq    uint32
	id     uint16
	flags  uint8
}

// Reset prepares s to cut frame, the super-frame that h describes. The
// header's hdr_len, csum_start and csum_offset are not trusted: the
// headers are found by parsing the frame, which must be an IPv4 (TCPv4,
// not a fragment) or IPv6 without extension headers (TCPv6) TCP segment
// with at least one payload byte. Segments whose IP length would exceed
// 65535 are refused.
func (s *Segmenter) Reset(frame []byte, h *VirtioNetHdr) error {
	*s = Segmenter{}
	var ipv6, udp bool
	l3, et, ok := ether.L3(frame)
	switch h.GSOType &^ GSOECN {
	case GSOTCPv4:
	case GSOTCPv6:
		ipv6 = true
	case GSOUDPL4:
		udp, ipv6 = true, et == ether.TypeIPv6
	default:
		return ErrGSOType
	}
	if h.GSOSize == 0 || !ok {
		return ErrBadFrame
	}
	proto := uint8(protoTCP)
	if udp {
		proto = protoUDP
	}
	var l4 int
	if ipv6 {
		if et != ether.TypeIPv6 || len(frame) < l3+ipv6HeaderLen {
			return ErrBadFrame
		}
		ip := frame[l3:]
		if ip[0]>>4 != 6 || ip[ipv6NextHeaderOffset] != proto {
			return ErrBadFrame
		}
		l4 = l3 + ipv6HeaderLen
	} else {
		if et != ether.TypeIPv4 || len(frame) < l3+ipv4HeaderLen {
			return ErrBadFrame
		}
		ip := frame[l3:]
		ihl := int(ip[0]&0x0f) * 4
		frag := binary.BigEndian.Uint16(ip[ipv4FlagsOffset:])
		if ip[0]>>4 != 4 || ihl < ipv4HeaderLen || ip[ipv4ProtoOffset] != proto || frag&(ipv4FlagMF|ipv4FragOffsetMask) != 0 {
			return ErrBadFrame
		}
		l4 = l3 + ihl
	}
	hdrLen := l4 + udpHeaderLen
	if !udp {
		if len(frame) < l4+tcpHeaderLen {
			return ErrBadFrame
		}
		doff := int(frame[l4+tcpDataOffOffset]>>4) * 4
		if doff < tcpHeaderLen || len(frame) < l4+doff {
			return ErrBadFrame
		}
		hdrLen = l4 + doff
	}
	if len(frame) < hdrLen {
		return ErrBadFrame
	}
	payload := len(frame) - hdrLen
	mss := int(h.GSOSize)
	if payload == 0 || hdrLen-l3+min(mss, payload) > maxIPLen {
		return ErrBadFrame
	}
	*s = Segmenter{
		frame:  frame,
		l3:     l3,
		l4:     l4,
		hdrLen: hdrLen,
		mss:    mss,
		ipv6:   ipv6,
		udp:    udp,
		next:   hdrLen,
	}
	if !udp {
		tcp := frame[l4:]
		s.seq = binary.BigEndian.Uint32(tcp[tcpSeqOffset:])
		s.flags = tcp[tcpFlagsOffset]
	}
	if !ipv6 {
		s.id = binary.BigEndian.Uint16(frame[l3+ipv4IDOffset:])
	}
	return nil
}

// Done reports whether every segment has been produced.
func (s *Segmenter) Done() bool { return s.next >= len(s.frame) }

// Segments is how many segments are still to come.
func (s *Segmenter) Segments() int {
	if s.Done() {
		return 0
	}
	return (len(s.frame) - s.next + s.mss - 1) / s.mss
}

// HeaderLen is the length of the headers NextHeader writes.
func (s *Segmenter) HeaderLen() int { return s.hdrLen }

// MaxSegmentLen is the length of the longest segment Next will write:
// the buffers handed to Next must be at least this long.
func (s *Segmenter) MaxSegmentLen() int {
	return s.hdrLen + min(s.mss, len(s.frame)-s.hdrLen)
}

// Next writes the next segment, a complete Ethernet frame, to the start of
// dst and returns its length; 0 once Done. dst must hold MaxSegmentLen
// bytes and must not overlap the super-frame.
func (s *Segmenter) Next(dst []byte) int {
	n, payload := s.next1(dst, true)
	return n + len(payload)
}

// NextHeader is Next without the copy of the payload: it writes the next
// segment's headers (checksums included) to dst and returns their length
// and the segment's payload, a slice of the super-frame, valid as long as
// the super-frame is. Headers and payload sent one after the other (a
// writev, a sendmsg with two iovecs) are the segment Next would write.
func (s *Segmenter) NextHeader(dst []byte) (int, []byte) {
	return s.next1(dst, false)
}

// next1 writes the next segment's headers to dst, and its payload after
// them if copyPayload; it returns the headers' length and the payload in
// the super-frame.
func (s *Segmenter) next1(dst []byte, copyPayload bool) (int, []byte) {
	if s.Done() {
		return 0, nil
	}
	end := min(s.next+s.mss, len(s.frame))
	size := s.hdrLen + end - s.next
	out := dst[:s.hdrLen]
	if copyPayload {
		out = dst[:size]
	}
	copy(out, s.frame[:s.hdrLen])

	ip := out[s.l3:s.l4]
	if s.ipv6 {
		binary.BigEndian.PutUint16(ip[ipv6PayloadLenOffset:], uint16(size-s.l3-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(ip[ipv4TotalLenOffset:], uint16(size-s.l3))
		binary.BigEndian.PutUint16(ip[ipv4IDOffset:], s.id+uint16(s.index))
		ip[ipv4CsumOffset], ip[ipv4CsumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(ip[ipv4CsumOffset:], Checksum(ip, 0))
	}

	payload := s.frame[s.next:end]
	if s.udp {
		s.next = end
		s.index++
		return s.hdrLen, s.udpSegment(out, ip, size, payload, copyPayload)
	}
	tcp := out[s.l4:]
	tcpLen := size - s.l4
	binary.BigEndian.PutUint32(tcp[tcpSeqOffset:], s.seq+uint32(s.next-s.hdrLen))
	flags := s.flags
	if end != len(s.frame) {
		flags &^= tcpFIN | tcpPSH
	}
	if s.index > 0 {
		flags &^= tcpCWR
	}
	tcp[tcpFlagsOffset] = flags
	tcp[TCPChecksumOffset], tcp[TCPChecksumOffset+1] = 0, 0
	// The TCP header is a whole number of 32-bit words, so its sum and
	// the payload's add up.
	sum := Sum(tcp[:s.hdrLen-s.l4], tcpSum(ip, s.ipv6, tcpLen))
	if copyPayload {
		_, sum = CopySum(out[s.hdrLen:], payload, sum)
	} else {
		sum = Sum(payload, sum)
	}
	binary.BigEndian.PutUint16(tcp[TCPChecksumOffset:], ^Fold(sum))

	s.next = end
	s.index++
	return s.hdrLen, payload
}

// udpSegment finishes the UDP header of a datagram of size bytes whose
// headers next1 wrote to out (the IP header is ip): its length, and its
// checksum over payload, which it copies after the header if copyPayload.
// It returns payload.
func (s *Segmenter) udpSegment(out, ip []byte, size int, payload []byte, copyPayload bool) []byte {
	udp := out[s.l4:s.hdrLen]
	udpLen := size - s.l4
	binary.BigEndian.PutUint16(udp[udpLengthOffset:], uint16(udpLen))
	udp[UDPChecksumOffset], udp[UDPChecksumOffset+1] = 0, 0
	src, dst := addrs(ip, s.ipv6)
	sum := Sum(udp, PseudoHeaderSum(protoUDP, src, dst, udpLen))
	if copyPayload {
		_, sum = CopySum(out[s.hdrLen:], payload, sum)
	} else {
		sum = Sum(payload, sum)
	}
	c := ^Fold(sum)
	if c == 0 {
		c = 0xffff // zero means "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(udp[UDPChecksumOffset:], c)
	return payload
}

// CompleteChecksum finishes the checksum of an ordinary frame whose header
// has FlagNeedsCsum (the kernel's CHECKSUM_PARTIAL): the field at
// csum_start+csum_offset holds the pseudo-header sum, and the ones'
// complement of the sum of everything from csum_start to the end of the
// frame goes there. A result of zero is sent as 0xffff, which means the
// same and is what UDP requires.
func CompleteChecksum(frame []byte, h *VirtioNetHdr) error {
	start := int(h.CsumStart)
	field := start + int(h.CsumOffset)
	if field+2 > len(frame) {
		return ErrBadFrame
	}
	c := Checksum(frame[start:], 0)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
	return nil
}

// GSOFor returns the virtio_net_hdr that cuts frame into segments whose
// IP packets are at most mtu bytes long, if frame is a TCP segment longer
// than that: IPv4 or IPv6 without extension headers (past up to
// ether.MaxTags VLAN tags), IP lengths matching the frame, payload, none of
// SYN, RST or URG. ok is false for anything else, and for frames that fit
// mtu.
//
// Such frames come from a kernel vxlan peer whose datagrams never met a
// NIC (see CheckL4): its 64 KiB TCP segment crosses a veth still whole,
// and reaches vtepd as one datagram. The caller checks the checksum
// (CheckL4) before it has the frame cut or written with this header: the
// segments' checksums are computed anew.
func GSOFor(frame []byte, mtu int) (h VirtioNetHdr, ok bool) {
	l3, et, ok := ether.L3(frame)
	if !ok {
		return h, false
	}
	ipLen := len(frame) - l3
	if ipLen <= mtu {
		return h, false
	}
	var l4 int
	switch et {
	case ether.TypeIPv4:
		if ipLen < ipv4HeaderLen {
			return h, false
		}
		ip := frame[l3:]
		ihl := int(ip[0]&0x0f) * 4
		frag := binary.BigEndian.Uint16(ip[ipv4FlagsOffset:])
		if ip[0]>>4 != 4 || ihl < ipv4HeaderLen || ip[ipv4ProtoOffset] != protoTCP || frag&(ipv4FlagMF|ipv4FragOffsetMask) != 0 ||
			int(binary.BigEndian.Uint16(ip[ipv4TotalLenOffset:])) != ipLen {
			return h, false
		}
		l4, h.GSOType = l3+ihl, GSOTCPv4
	case ether.TypeIPv6:
		if ipLen < ipv6HeaderLen {
			return h, false
		}
		ip := frame[l3:]
		if ip[0]>>4 != 6 || ip[ipv6NextHeaderOffset] != protoTCP ||
			int(binary.BigEndian.Uint16(ip[ipv6PayloadLenOffset:])) != ipLen-ipv6HeaderLen {
			return h, false
		}
		l4, h.GSOType = l3+ipv6HeaderLen, GSOTCPv6
	default:
		return h, false
	}
	if len(frame) < l4+tcpHeaderLen {
		return h, false
	}
	tcp := frame[l4:]
	doff := int(tcp[tcpDataOffOffset]>>4) * 4
	mss := mtu - (l4 - l3) - doff
	if doff < tcpHeaderLen || len(frame) <= l4+doff || mss <= 0 || tcp[tcpFlagsOffset]&(tcpSYN|tcpRST|tcpURG) != 0 {
		return VirtioNetHdr{}, false
	}
	h.Flags = FlagNeedsCsum
	h.HdrLen = uint16(l4 + doff)
	h.GSOSize = uint16(mss)
	h.CsumStart = uint16(l4)
	h.CsumOffset = TCPChecksumOffset
	return h, true
}
