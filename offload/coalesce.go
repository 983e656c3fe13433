package offload

import (
	"bytes"
	"encoding/binary"
	"os"

	"github.com/vtepd/vtepd/ether"
)

// Design notes on coalescing.
//
// The receive pipeline gets up to a batch of decapsulated frames at a
// time, in arrival order. Coalescer gathers the TCP segments among them
// into super-frames, written to the TAP with a GSO virtio_net_hdr, so that
// the kernel runs the bridge, the veth and TCP once per super-frame rather
// than once per segment. The rules follow the kernel's tcp_gro_receive and
// inet_gro_receive, and are a little stricter:
//
//   - Only untagged IPv4 (no options, not a fragment, header checksum
//     good) and IPv6 (no extension headers) TCP segments with payload, IP
//     lengths matching the frame, ACK set and none of SYN, FIN, RST, URG,
//     CWR are candidates. PSH may be set on the last segment of a
//     super-frame, and closes it.
//   - A segment joins a super-frame only if every header byte matches the
//     super-frame's first segment except the IP length, IPv4 ID and header
//     checksum, the TCP sequence number and checksum (and PSH): same
//     Ethernet header, TOS/traffic class, flow label, TTL, addresses,
//     ports, ACK number, window and TCP options (timestamps included). Its
//     sequence number must follow the super-frame's last byte, its payload
//     must not exceed the first segment's (the MSS), and after a shorter
//     segment nothing may follow. The IP length stays within 65535 bytes.
//   - Every TCP and UDP checksum is verified (CheckL4) as the frame is
//     added: the super-frame's checksum is left for the kernel to treat as
//     already good (CHECKSUM_PARTIAL), so a corrupt segment must never be
//     laundered into it. A segment that fails is delivered as it came, and
//     the kernel drops it. One whose sender left the checksum partial is
//     as good as the kernel would take it, and merges; alone, it is
//     written with NEEDS_CSUM.
//   - The checksum of a segment that may merge is verified in the pass
//     that copies its payload into the super-frame (CopySum): the copy
//     goes past the super-frame's end, where nothing is yet, and the
//     super-frame grows over it only once the checksum holds. A segment
//     that does not reach the copy is checked on its own (CheckL4), and a
//     segment that needs the super-frame moved to a spare first is checked
//     before the move, so a corrupt one never takes a spare.
//
// UDP. For a TAP that takes UDP segmentation offload (TUN_F_USO4/6,
// Linux 6.2), MergeUDP lets consecutive datagrams of one UDP flow merge
// too, as the kernel's udp_gro_receive_segment merges them: the same
// headers but for the lengths, the IPv4 ID (which must count up by one a
// datagram, or may stay put when DF is set) and the checksums; every
// payload as long as the first, but the last, which may be shorter and
// then closes the super-frame; at most maxUDPSegments of them. Each one's
// checksum is verified as for TCP, and a datagram without one (IPv4, zero)
// is written alone. The super-frame goes out with VIRTIO_NET_HDR_GSO_UDP_L4,
// and the kernel cuts it back into the same datagrams (new IPv4 IDs
// counting up from the first's) where it must: at the receiving socket,
// at the latest. One write then carries a whole train of small datagrams
// through the TAP, the bridge and the veth.
//
// Trusted frames. A datagram that reached the caller as part of a UDP GRO
// train had a UDP checksum, which the receiving kernel verified: the
// kernel merges only datagrams that carry one (udp_gro_receive_segment),
// and UDP_SEGMENT refuses to send without. That checksum covers the VXLAN
// header and the whole inner frame, so the inner frame is what the sending
// VTEP checksummed. For such frames (Trust) the Coalescer skips verifying
// each merged segment's checksum, as the kernel's vxlan relies on the
// outer one: it only copies the payload, and the super-frame goes out
// with NEEDS_CSUM as always. A trusted frame that ends up alone is still
// verified (at Finish), since it goes out with its own checksum as it came.
//
// Frames too long for the TAP. A kernel vxlan peer whose datagrams never
// met a NIC sends its TCP super-frames whole (see GSOFor). Such a segment,
// if its checksum is good or partial, goes out alone as a super-frame with
// a GSO header that cuts it to the TAP's MTU, and closes its flow's open
// super-frame. (A VLAN-tagged one goes as it came: the kernel takes no GSO
// frame with a tag in it.)
//
// Trains. With UDP GRO the caller may receive a train of datagrams laid
// end to end in one buffer: the frame after another sits where the room to
// merge into would be, and the bytes in front of a frame, where its
// virtio_net_hdr goes, are the tail of the frame before. The caller gives
// such frames no room (buf capped at the frame's end), and two rules keep
// every byte of a frame still to be written intact:
//
//   - Relocation. When a segment may join an open super-frame whose
//     buffer has no room left, the super-frame moves first into a spare
//     buffer from a pool the Coalescer was made with (a copy of what it
//     holds so far, usually its first frame), and grows there. With no
//     spare left, the super-frame is closed instead and the segment
//     starts a new one. Spares return to the pool at Reset.
//   - Headers last. Finish edits only each super-frame's own headers;
//     Packet writes the virtio_net_hdr in front of the frame. Taken in
//     order, each output written before the next one's Packet, a header
//     only ever covers bytes of an earlier frame that has been written,
//     merged elsewhere or moved out already.
//
// Order. Frames are delivered in the order of the first frame of each
// output. A flow is its addresses, ports and the caller's tag (the
// network); when a segment of a flow cannot join that flow's open
// super-frame, or any other TCP frame of the flow comes by (a pure ACK, a
// FIN), the open super-frame is closed for good, so a flow's bytes are
// never reordered. Frames of different flows may pass each other, which
// is what the kernel's own GRO does across flows.

// maxOpenFlows bounds the super-frames a batch keeps open at once; the
// oldest is closed when another flow needs a slot.
const maxOpenFlows = 16

// maxUDPSegments bounds the datagrams of one UDP super-frame: the most the
// kernel's own UDP GRO puts in one (UDP_GRO_CNT_MAX), and what a sender's
// UDP_SEGMENT takes at least (UDP_MAX_SEGMENTS).
const maxUDPSegments = 64

// Output is one frame to write to the TAP: a received frame as it came,
// or a super-frame that several were merged into. After Finish, Packet
// returns the virtio_net_hdr and the frame, ready for one write().
type Output struct {
	Buf    []byte // the buffer of the output's first frame, or the spare it moved to
	Offset int    // where the frame starts in Buf
	Size   int    // its length, grown by merged payloads
	Index  int    // the caller's index of the first frame
	Frames int    // received frames in it
	Bytes  int    // their lengths, summed

	tag     uint32
	csum    L4Info // of the first frame
	split   bool   // a single frame over the MTU, written as a super-frame
	ipv6    bool
	udp     bool
	trusted bool   // its checksum is not verified yet: Finish does, if alone
	ipID    uint16 // UDP over IPv4: the first datagram's IP ID
	fixedID bool   // UDP over IPv4: DF, and every ID the same so far
	l3, l4  int
	hdrLen  int
	mss     int
	nextSeq uint32
	hdr     VirtioNetHdr // set by Finish
}

// Packet is what to write to the TAP once Finish has run: it writes the
// virtio_net_hdr in front of the frame and returns both. With trains, take
// the outputs in order and write each before calling the next one's
// Packet (the header may cover the tail of an earlier frame).
func (o *Output) Packet() []byte {
	o.hdr.Encode(o.Buf[o.Offset-VirtioNetHdrLen : o.Offset])
	return o.Buf[o.Offset-VirtioNetHdrLen : o.Offset+o.Size]
}

// Coalescer merges the TCP segments of a batch of received frames into
// super-frames. For each batch: Reset, Add every frame in arrival order,
// Finish, then write each of Outputs. It never allocates once made.
type Coalescer struct {
	out    []Output
	open   []int // indices into out of super-frames that may grow, oldest first
	mtu    int
	spares [][]byte // buffers super-frames move into; spares[:free] are free
	free   int
	udp    bool // MergeUDP
	trust  bool // Trust
}

// Trust says whether the frames added from now on came with a verified
// outer checksum (see Trusted frames above): their own checksums are then
// not verified before they merge.
func (c *Coalescer) Trust(on bool) { c.trust = on }

// MergeUDP says whether the frames added from now on may merge if they are
// UDP datagrams (see UDP above): only for a TAP that was given
// TUN_F_USO4 and TUN_F_USO6. Frames added with it off never merge.
func (c *Coalescer) MergeUDP(on bool) { c.udp = on }

// SpareLen is the size of each spare buffer: a virtio_net_hdr and the
// longest super-frame.
const SpareLen = VirtioNetHdrLen + ether.HeaderLen + maxIPLen

// NewCoalescer returns a Coalescer for batches of up to batch frames, for
// a TAP of MTU mtu: no super-frame it makes has segments longer than that.
// It keeps spares buffers of SpareLen bytes for super-frames that outgrow
// their first frame's buffer (see Trains above); zero is fine for callers
// that give every frame its own room.
func NewCoalescer(batch, mtu, spares int) *Coalescer {
	c := &Coalescer{out: make([]Output, 0, batch), open: make([]int, 0, maxOpenFlows), mtu: mtu}
	slab := make([]byte, spares*SpareLen)
	for i := 0; i < len(slab); i += os.Getpagesize() {
		slab[i] = 0 // resident from the start: no page fault when first used
	}
	c.spares = make([][]byte, spares)
	for i := range c.spares {
		c.spares[i] = slab[i*SpareLen : (i+1)*SpareLen : (i+1)*SpareLen]
	}
	c.free = spares
	return c
}

// Reset empties the coalescer for a new batch; the spares return to the
// pool, so every output must have been written by then.
func (c *Coalescer) Reset() {
	clear(c.out) // hold no caller's buffer past its batch
	c.out = c.out[:0]
	c.open = c.open[:0]
	c.free = len(c.spares)
}

// Outputs are the frames to write, in order; valid until the next Reset.
func (c *Coalescer) Outputs() []Output { return c.out }

// Room is how many more frames Add takes before the next Reset.
func (c *Coalescer) Room() int { return cap(c.out) - len(c.out) }

// FreeSpares is how many spare buffers are left until the next Reset.
func (c *Coalescer) FreeSpares() int { return c.free }

// Add takes the received frame buf[offset:offset+size]. The caller owns
// buf and guarantees offset >= VirtioNetHdrLen: the header is written in
// front of the frame. The rest of buf, past the frame, is room for the
// payloads of later segments; it must not overlap another frame's buffer.
// index is the caller's name for the frame, reported in Output.Index;
// frames with different tags never merge. At most the batch size given to
// NewCoalescer frames may be added between Resets (Add panics beyond it).
func (c *Coalescer) Add(buf []byte, offset, size, index int, tag uint32) {
	if len(c.out) == cap(c.out) {
		panic("offload: more frames added than the Coalescer's batch")
	}
	frame := buf[offset : offset+size]
	o := Output{Buf: buf, Offset: offset, Size: size, Index: index, Frames: 1, Bytes: size, tag: tag}
	var seg segment
	kind := parseSegment(frame, &seg, c.udp)
	// A candidate that fits the MTU has its checksum verified by merge,
	// or below when it does not merge; every other frame's here.
	checked := kind != candidate || size-ether.HeaderLen > c.mtu
	if !checked && c.trust {
		// Good as far as merging goes; verified at Finish if alone.
		checked, o.trusted = true, true
		o.csum = L4Info{State: L4Good, Start: seg.l4, Offset: TCPChecksumOffset, End: size}
		if seg.udp {
			o.csum.Offset = UDPChecksumOffset
		}
	} else if checked {
		o.csum = CheckL4(frame)
		if kind == candidate && !o.csum.ok() {
			kind = flowOther // corrupt: delivered alone, for the kernel to drop
		}
	}
	if size-ether.HeaderLen > c.mtu && kind != noFlow {
		if h, ok := GSOFor(frame, c.mtu); ok && o.csum.ok() && seg.l3 == ether.HeaderLen && !seg.udp {
			o.split, o.mss = true, int(h.GSOSize)
		}
		kind = flowOther
	}
	if kind != noFlow {
		o.ipv6, o.udp, o.l3, o.l4, o.hdrLen = seg.ipv6, seg.udp, seg.l3, seg.l4, seg.hdrLen
		for j := len(c.open) - 1; j >= 0; j-- {
			p := &c.out[c.open[j]]
			if !sameFlow(p, frame, &seg, tag) {
				continue
			}
			if kind == candidate {
				switch c.merge(p, frame, &seg, &o.csum, &checked) {
				case merged:
					return
				case mergedLast:
					c.closeOpen(j)
					return
				}
			}
			// Same flow, and this frame cannot join: nothing after it
			// may join the open super-frame either.
			c.closeOpen(j)
			break
		}
	}
	if !checked {
		o.csum = CheckL4(frame)
	}
	if kind == candidate && !o.csum.ok() {
		kind = flowOther // corrupt
	}
	c.out = append(c.out, o)
	if kind == candidate && (seg.udp || seg.flags&tcpPSH == 0) {
		c.openLast(&seg)
	}
}

// openLast opens the output just added as a super-frame of its flow.
func (c *Coalescer) openLast(seg *segment) {
	i := len(c.out) - 1
	o := &c.out[i]
	o.mss = seg.payload
	o.nextSeq = seg.seq + uint32(seg.payload)
	o.ipID, o.fixedID = seg.ipID, seg.df
	if len(c.open) == cap(c.open) {
		c.closeOpen(0)
	}
	c.open = append(c.open, i)
}

// closeOpen closes the open super-frame c.open[j] for good.
func (c *Coalescer) closeOpen(j int) {
	c.open = append(c.open[:j], c.open[j+1:]...)
}

type mergeResult int

const (
	refused    mergeResult = iota // kept apart; the super-frame is closed
	merged                        // joined; more may follow
	mergedLast                    // joined as the last segment (short, or PSH)
)

// merge appends seg's payload to the open super-frame p if the rules
// allow it and its checksum holds. Unless *checked, merge verifies the
// checksum as it copies the payload, or before it moves p to a spare, and
// sets *csum and *checked; it refuses a segment whose checksum fails.
func (c *Coalescer) merge(p *Output, frame []byte, seg *segment, csum *L4Info, checked *bool) mergeResult {
	head := p.Buf[p.Offset : p.Offset+p.Size]
	switch {
	case seg.udp != p.udp || seg.l4 != p.l4 || seg.hdrLen != p.hdrLen:
	case !seg.udp && seg.seq != p.nextSeq:
	case seg.udp && (p.Frames == maxUDPSegments || !p.nextID(seg)):
	case seg.payload > p.mss:
	case p.Size-p.l3+seg.payload > maxIPLen:
	case !headersMatch(head, frame, p.ipv6, p.udp, p.l4, p.hdrLen):
	case p.Size+seg.payload > len(p.Buf)-p.Offset && (!verify(frame, csum, checked) || !c.relocate(p)):
	default:
		tail := p.Buf[p.Offset+p.Size:]
		if *checked {
			copy(tail, frame[seg.hdrLen:])
		} else {
			*csum, *checked = copyVerify(tail, frame, seg), true
		}
		if !csum.ok() {
			return refused // the copy past p.Size is left as garbage
		}
		head = p.Buf[p.Offset : p.Offset+p.Size]
		p.Size += seg.payload
		p.nextSeq += uint32(seg.payload)
		p.Frames++
		p.Bytes += len(frame)
		if p.udp {
			p.fixedID = p.fixedID && seg.ipID == p.ipID
		}
		if !seg.udp && seg.flags&tcpPSH != 0 {
			head[p.l4+tcpFlagsOffset] |= tcpPSH
			return mergedLast
		}
		if seg.payload < p.mss || (p.udp && p.Frames == maxUDPSegments) {
			return mergedLast
		}
		return merged
	}
	return refused
}

// nextID reports whether the UDP datagram seg may follow the super-frame
// p as far as its IPv4 ID goes: one more than the datagram before, or, with
// DF set on all of them, the same as all of them (inet_gro_flush).
func (p *Output) nextID(seg *segment) bool {
	if p.ipv6 {
		return true
	}
	return seg.ipID == p.ipID+uint16(p.Frames) || (p.fixedID && seg.df && seg.ipID == p.ipID)
}

// verify checks the checksum of frame unless *checked already, and
// reports whether it is good or partial.
func verify(frame []byte, csum *L4Info, checked *bool) bool {
	if !*checked {
		*csum, *checked = CheckL4(frame), true
	}
	return csum.ok()
}

// copyVerify copies the payload of the candidate segment seg (as
// parseTCP found it in frame) to dst, and returns what CheckL4(frame)
// would, reading the segment once: parseTCP has checked everything CheckL4
// looks at but the checksum, and the TCP segment is the rest of the frame.
func copyVerify(dst, frame []byte, seg *segment) L4Info {
	l4 := frame[seg.l4:]
	proto, off := uint8(protoTCP), TCPChecksumOffset
	if seg.udp {
		proto, off = protoUDP, UDPChecksumOffset
	}
	src, dstAddr := addrs(frame[seg.l3:seg.l4], seg.ipv6)
	pseudo := PseudoHeaderSum(proto, src, dstAddr, len(l4))
	// The TCP and UDP headers are whole numbers of 32-bit words, so their
	// sum and the payload's add up.
	sum := Sum(l4[:seg.hdrLen-seg.l4], pseudo)
	_, sum = CopySum(dst, frame[seg.hdrLen:], sum)
	return L4Info{State: l4State(l4[off:], pseudo, sum), Start: seg.l4, Offset: off, End: len(frame)}
}

// relocate moves the super-frame p into a spare buffer, where it has room
// to grow to the longest IP packet; false when no spare is left.
func (c *Coalescer) relocate(p *Output) bool {
	if c.free == 0 {
		return false
	}
	c.free--
	b := c.spares[c.free]
	copy(b[VirtioNetHdrLen:], p.Buf[p.Offset:p.Offset+p.Size])
	p.Buf, p.Offset = b, VirtioNetHdrLen
	return true
}

// Finish decides each output's virtio_net_hdr (Packet writes it), and
// turns each super-frame's headers into the first segment's with the IP
// length of the whole (a new IPv4 header checksum) and the TCP checksum
// field holding the pseudo-header sum, as the kernel expects with
// NEEDS_CSUM. A frame over the MTU is such a super-frame of one.
// Outputs of one frame are otherwise untouched; their header is zeros, or
// NEEDS_CSUM if their checksum was left partial (see CheckL4).
func (c *Coalescer) Finish() {
	for i := range c.out {
		o := &c.out[i]
		if o.Frames == 1 && !o.split {
			if o.trusted {
				o.csum = CheckL4(o.Buf[o.Offset : o.Offset+o.Size])
			}
			o.hdr = VirtioNetHdr{}
			if o.csum.State == L4Partial {
				o.hdr = o.csum.NeedsCsumHdr()
			}
			continue
		}
		f := o.Buf[o.Offset : o.Offset+o.Size]
		ip := f[o.l3:o.l4]
		h := VirtioNetHdr{
			Flags:      FlagNeedsCsum,
			GSOType:    GSOTCPv4,
			HdrLen:     uint16(o.hdrLen),
			GSOSize:    uint16(o.mss),
			CsumStart:  uint16(o.l4),
			CsumOffset: TCPChecksumOffset,
		}
		proto := uint8(protoTCP)
		if o.udp {
			h.GSOType, h.CsumOffset, proto = GSOUDPL4, UDPChecksumOffset, protoUDP
			binary.BigEndian.PutUint16(f[o.l4+udpLengthOffset:], uint16(o.Size-o.l4))
		}
		if o.ipv6 {
			if !o.udp {
				h.GSOType = GSOTCPv6
			}
			binary.BigEndian.PutUint16(ip[ipv6PayloadLenOffset:], uint16(o.Size-o.l4))
		} else {
			binary.BigEndian.PutUint16(ip[ipv4TotalLenOffset:], uint16(o.Size-o.l3))
			ip[ipv4CsumOffset], ip[ipv4CsumOffset+1] = 0, 0
			binary.BigEndian.PutUint16(ip[ipv4CsumOffset:], Checksum(ip, 0))
		}
		src, dst := addrs(ip, o.ipv6)
		binary.BigEndian.PutUint16(f[o.l4+int(h.CsumOffset):], Fold(PseudoHeaderSum(proto, src, dst, o.Size-o.l4)))
		o.hdr = h
	}
}

// segment is what parseTCP found in a frame.
type segment struct {
	ipv6    bool
	udp     bool
	df      bool // IPv4 Don't Fragment
	l3, l4  int
	hdrLen  int // through the TCP options, or the UDP header
	payload int
	seq     uint32
	ipID    uint16
	flags   uint8
}

type frameKind int

const (
	noFlow    frameKind = iota // no TCP (or, merging UDP, UDP) header to read
	flowOther                  // a segment or datagram of some flow, not to be merged
	candidate                  // may be merged
)

// parseSegment classifies frame and, unless it is noFlow, fills seg. UDP
// datagrams are flows, and may be candidates, only if udp is set.
func parseSegment(frame []byte, seg *segment, udp bool) frameKind {
	l3, et, ok := ether.L3(frame)
	if !ok {
		return noFlow
	}
	var l4 int
	var proto uint8
	var lengthOK bool
	switch et {
	case ether.TypeIPv4:
		if len(frame) < l3+ipv4HeaderLen {
			return noFlow
		}
		ip := frame[l3:]
		ihl := int(ip[0]&0x0f) * 4
		frag := binary.BigEndian.Uint16(ip[ipv4FlagsOffset:])
		proto = ip[ipv4ProtoOffset]
		if ip[0]>>4 != 4 || ihl < ipv4HeaderLen || frag&ipv4FragOffsetMask != 0 {
			return noFlow
		}
		l4 = l3 + ihl
		lengthOK = ihl == ipv4HeaderLen && frag&ipv4FlagMF == 0 &&
			int(binary.BigEndian.Uint16(ip[ipv4TotalLenOffset:])) == len(frame)-l3 &&
			Checksum(ip[:ipv4HeaderLen], 0) == 0
		seg.ipID = binary.BigEndian.Uint16(ip[ipv4IDOffset:])
		seg.df = frag&ipv4FlagDF != 0
	case ether.TypeIPv6:
		if len(frame) < l3+ipv6HeaderLen {
			return noFlow
		}
		ip := frame[l3:]
		proto = ip[ipv6NextHeaderOffset]
		if ip[0]>>4 != 6 {
			return noFlow
		}
		l4 = l3 + ipv6HeaderLen
		lengthOK = int(binary.BigEndian.Uint16(ip[ipv6PayloadLenOffset:])) == len(frame)-l4
	default:
		return noFlow
	}
	seg.ipv6 = et == ether.TypeIPv6
	switch {
	case proto == protoTCP:
		return parseTCP(frame, seg, l3, l4, lengthOK)
	case proto == protoUDP && udp:
		return parseUDP(frame, seg, l3, l4, lengthOK)
	}
	return noFlow
}

// parseTCP is parseSegment's for a TCP segment at frame[l4:].
func parseTCP(frame []byte, seg *segment, l3, l4 int, lengthOK bool) frameKind {
	if len(frame) < l4+tcpHeaderLen {
		return noFlow
	}
	tcp := frame[l4:]
	doff := int(tcp[tcpDataOffOffset]>>4) * 4
	if doff < tcpHeaderLen || len(frame) < l4+doff {
		return noFlow
	}
	seg.l3, seg.l4, seg.hdrLen = l3, l4, l4+doff
	seg.payload = len(frame) - seg.hdrLen
	seg.seq = binary.BigEndian.Uint32(tcp[tcpSeqOffset:])
	seg.flags = tcp[tcpFlagsOffset]
	switch {
	case l3 != ether.HeaderLen, !lengthOK, seg.payload == 0:
		return flowOther
	case seg.flags&tcpACK == 0, seg.flags&(tcpSYN|tcpFIN|tcpRST|tcpURG|tcpCWR) != 0:
		return flowOther
	}
	return candidate
}

// parseUDP is parseSegment's for a UDP datagram at frame[l4:]. Only one
// that carries a checksum is a candidate: merging must not give a
// datagram that had none one that vouches for it.
func parseUDP(frame []byte, seg *segment, l3, l4 int, lengthOK bool) frameKind {
	if len(frame) < l4+udpHeaderLen {
		return noFlow
	}
	udp := frame[l4:]
	seg.udp = true
	seg.l3, seg.l4, seg.hdrLen = l3, l4, l4+udpHeaderLen
	seg.payload = len(frame) - seg.hdrLen
	switch {
	case l3 != ether.HeaderLen, !lengthOK, seg.payload == 0:
		return flowOther
	case int(binary.BigEndian.Uint16(udp[udpLengthOffset:])) != len(frame)-l4:
		return flowOther
	case binary.BigEndian.Uint16(udp[UDPChecksumOffset:]) == 0:
		return flowOther
	}
	return candidate
}

// sameFlow reports whether the frame seg was parsed from belongs to the
// flow of output p: same tag, protocol, IP version, addresses and ports.
func sameFlow(p *Output, frame []byte, seg *segment, tag uint32) bool {
	if p.tag != tag || p.ipv6 != seg.ipv6 || p.udp != seg.udp {
		return false
	}
	head := p.Buf[p.Offset:]
	ps, pd := addrs(head[p.l3:], p.ipv6)
	fs, fd := addrs(frame[seg.l3:], seg.ipv6)
	return bytes.Equal(head[p.l4:p.l4+4], frame[seg.l4:seg.l4+4]) &&
		bytes.Equal(ps, fs) && bytes.Equal(pd, fd)
}

// headersMatch reports whether two candidate segments of one flow, with
// the same header lengths, differ only where segments of one super-frame
// may: IP length, IPv4 ID and header checksum, TCP sequence number, PSH
// and checksum, or UDP length and checksum (the ports are the flow's).
func headersMatch(a, b []byte, ipv6, udp bool, l4, hdrLen int) bool {
	if !bytes.Equal(a[:ether.HeaderLen], b[:ether.HeaderLen]) {
		return false
	}
	ia, ib := a[ether.HeaderLen:l4], b[ether.HeaderLen:l4]
	if ipv6 {
		// version, traffic class, flow label; next header, hop limit
		if !bytes.Equal(ia[:ipv6PayloadLenOffset], ib[:ipv6PayloadLenOffset]) ||
			!bytes.Equal(ia[ipv6NextHeaderOffset:ipv6AddrsOffset], ib[ipv6NextHeaderOffset:ipv6AddrsOffset]) {
			return false
		}
	} else {
		// version, IHL, TOS; flags, TTL, protocol
		if !bytes.Equal(ia[:ipv4TotalLenOffset], ib[:ipv4TotalLenOffset]) ||
			!bytes.Equal(ia[ipv4FlagsOffset:ipv4CsumOffset], ib[ipv4FlagsOffset:ipv4CsumOffset]) {
			return false
		}
	}
	if udp {
		return true
	}
	ta, tb := a[l4:hdrLen], b[l4:hdrLen]
	// ports, ACK number, data offset; window; urgent pointer and options
	return bytes.Equal(ta[tcpAckOffset:tcpFlagsOffset], tb[tcpAckOffset:tcpFlagsOffset]) &&
		ta[tcpFlagsOffset]&^tcpPSH == tb[tcpFlagsOffset]&^tcpPSH &&
		bytes.Equal(ta[tcpWindowOffset:TCPChecksumOffset], tb[tcpWindowOffset:TCPChecksumOffset]) &&
		bytes.Equal(ta[tcpUrgentOffset:], tb[tcpUrgentOffset:])
}
