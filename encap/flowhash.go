package encap

import (
	"encoding/binary"
	"math/bits"

	"github.com/vtepd/vtepd/ether"
)

// Design notes on the flow hash.
//
// RFC 7348 §5 asks the encapsulator to derive the outer UDP source port from
// a hash of the inner frame, so that underlay routers spreading traffic over
// equal-cost paths (ECMP) or NIC queues (RSS) by 5-tuple see one outer flow
// per inner flow: different inner flows spread out, and one inner flow keeps
// one path and is not reordered.
//
// What is hashed. The inner destination and source MACs and the EtherType,
// found past up to ether.MaxTags VLAN tags by ether.L3, so of any TPID
// package ether knows: 802.1Q, 802.1ad or legacy 0x9100 QinQ. The tags
// themselves are not hashed: the same IP flow tagged or untagged hashes the
// same. (Until the walk moved to package ether, 0x9100 tags were not
// skipped, and all 0x9100-tagged frames hashed alike as non-IP.) A frame
// whose tags are cut short, or that has more than ether.MaxTags of them,
// hashes the TPID where the walk stopped as its EtherType. For IPv4 and
// IPv6, the two addresses and the protocol; for TCP, UDP and SCTP the two
// ports. IPv4 non-first fragments carry no ports, so their ports are left
// out; first fragments keep theirs, as the flow's unfragmented packets do.
// (The kernel's flow dissector leaves ports out of every fragment instead,
// keeping a datagram's fragments together at the cost of separating them
// from the flow; we keep the first fragment with its flow.) The IPv4 IHL is
// honoured to find the ports behind options. For IPv6, a few extension
// headers (hop-by-hop, routing, destination options, fragment) are walked to
// reach the transport header, and a non-first fragment gives no ports. The
// IPv6 flow label is not hashed: Linux changes a connection's automatic
// label after retransmission timeouts to make it try another path, and
// hashing the label would carry that into the underlay, but it would also
// move a flow's source port mid-connection; that is a choice for later. A
// field is hashed only if the frame holds all of it, so a truncated frame
// hashes the fields it does hold and never reads out of bounds; frames
// shorter than an Ethernet header are hashed as raw bytes.
//
// The function. The selected fields are fed 32 bits at a time through the
// MurmurHash3 block mix (two multiplies and two rotates per word), and the
// result goes through the MurmurHash3 finalizer so that every input bit
// affects every output bit; SourcePort's multiply-shift uses the high bits,
// which a hash without such a finalizer mixes poorly. An IPv4/TCP flow costs
// seven word mixes plus the finalizer. FNV-1a, the other obvious choice,
// works a byte at a time (the IPv6 key is 51 bytes) and would need the same
// finalizer.
//
// No random seed. The kernel seeds its flow hash randomly at boot; we use a
// fixed seed so a flow keeps its source port, and so its underlay path,
// across vtepd restarts and between vtepd instances, and so tests can pin
// hash values. The cost is that anyone who knows the hash can choose inner
// flows that share a path; they could already send all their traffic down
// one flow, so this gives them nothing new.
//
// Bytes are read with explicit byte order, so the hash is the same on every
// architecture.

// flowSeed is the initial hash state: "vtep" in ASCII.
const flowSeed = 0x76746570

// MurmurHash3 x86_32 constants.
const (
	murmurC1 = 0xcc9e2d51
	murmurC2 = 0x1b873593
	murmurN  = 0xe6546b64
	fmixM1   = 0x85ebca6b
	fmixM2   = 0xc2b2ae35
)

// IP protocol numbers and header fields the flow hash looks at; the
// Ethernet ones are package ether's.
const (
	ipProtoHopByHop = 0
	ipProtoTCP      = 6
	ipProtoUDP      = 17
	ipProtoRouting  = 43
	ipProtoFragment = 44
	ipProtoDestOpts = 60
	ipProtoSCTP     = 132

	// maxIPv6ExtHeaders bounds the extension header walk.
	maxIPv6ExtHeaders = 4
	// ipv6FragmentHeaderLen is the fixed length of the fragment header;
	// other extension headers are (HdrExtLen+1)*8 bytes, at least 8.
	ipv6FragmentHeaderLen = 8
	ipv6ExtHeaderMinLen   = 8

	// ipv4FragmentOffsetMask selects the fragment offset in the IPv4
	// flags/fragment-offset word; non-zero means a non-first fragment.
	ipv4FragmentOffsetMask = 0x1fff
	// portsLen is the source and destination ports, which TCP, UDP and
	// SCTP all put first in their headers.
	portsLen = 4
)

// scramble is MurmurHash3's per-word premix of an input word k.
func scramble(k uint32) uint32 {
	k *= murmurC1
	k = bits.RotateLeft32(k, 15)
	return k * murmurC2
}

// mix absorbs one 32-bit word k into the hash state h.
func mix(h, k uint32) uint32 {
	h ^= scramble(k)
	h = bits.RotateLeft32(h, 13)
	return h*5 + murmurN
}

// fmix is the finalizer: it makes every bit of h affect every output bit.
func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= fmixM1
	h ^= h >> 13
	h *= fmixM2
	h ^= h >> 16
	return h
}

// word reads the 32-bit word at b[0:4] in little-endian order (the byte
// order is fixed so the hash does not depend on the machine).
func word(b []byte) uint32 {
	return binary.LittleEndian.Uint32(b)
}

// FlowHash hashes the flow an Ethernet frame belongs to, for SourcePort. The
// same flow always gives the same hash, in every process; see the design
// notes above for what is hashed. It never reads outside frame and does not
// allocate.
func FlowHash(frame []byte) uint32 {
	if len(frame) < ether.HeaderLen {
		return murmur3(frame, flowSeed)
	}

	// Destination and source MACs.
	h := uint32(flowSeed)
	h = mix(h, word(frame[0:4]))
	h = mix(h, word(frame[4:8]))
	h = mix(h, word(frame[8:ether.EtherTypeOffset]))

	// EtherType, past the VLAN tags. When L3 fails, its etherType is 0,
	// neither IPv4 nor IPv6.
	l3, etherType, ok := ether.L3(frame)
	switch etherType {
	case ether.TypeIPv4:
		return fmix(hashIPv4(h, frame, l3))
	case ether.TypeIPv6:
		return fmix(hashIPv6(h, frame, l3))
	}
	if !ok {
		etherType = lastTPID(frame)
	}
	return fmix(mix(h, uint32(etherType)))
}

// lastTPID returns, for a frame of at least ether.HeaderLen bytes that
// ether.L3 refuses, the TPID of the tag it stopped at, which FlowHash hashes
// in the EtherType's place: that of the tag cut short by the end of the
// frame, or of the tag one past ether.MaxTags. Either way it is the last
// whole EtherType field the frame holds among the first ether.MaxTags+1,
// since every field before it is a TPID too.
func lastTPID(frame []byte) uint16 {
	tags := min((len(frame)-ether.HeaderLen)/ether.TagLen, ether.MaxTags)
	return binary.BigEndian.Uint16(frame[ether.EtherTypeOffset+tags*ether.TagLen:])
}

// hashIPv4 absorbs the EtherType and the IPv4 header starting at frame[l3:],
// and the ports behind it when there are any.
func hashIPv4(h uint32, frame []byte, l3 int) uint32 {
	n := len(frame)
	if l3+IPv4HeaderLen > n || frame[l3]>>4 != 4 {
		return mix(h, ether.TypeIPv4)
	}
	ip := frame[l3 : l3+IPv4HeaderLen]
	proto := ip[9]
	h = mix(h, ether.TypeIPv4|uint32(proto)<<16)
	h = mix(h, word(ip[12:16])) // source address
	h = mix(h, word(ip[16:20])) // destination address

	ihl := int(ip[0]&0x0f) * 4
	if ihl < IPv4HeaderLen || binary.BigEndian.Uint16(ip[6:8])&ipv4FragmentOffsetMask != 0 {
		return h // invalid IHL or non-first fragment: no ports
	}
	return hashPorts(h, frame, l3+ihl, proto)
}

// hashIPv6 absorbs the EtherType and the IPv6 header starting at frame[l3:],
// and the ports behind it and its extension headers when there are any.
func hashIPv6(h uint32, frame []byte, l3 int) uint32 {
	n := len(frame)
	if l3+IPv6HeaderLen > n || frame[l3]>>4 != 6 {
		return mix(h, ether.TypeIPv6)
	}
	ip := frame[l3 : l3+IPv6HeaderLen]
	for i := 8; i < IPv6HeaderLen; i += 4 {
		h = mix(h, word(ip[i:i+4])) // source, then destination address
	}

	next := ip[6]
	off := l3 + IPv6HeaderLen
	ports := true
walk:
	for range maxIPv6ExtHeaders {
		switch next {
		case ipProtoHopByHop, ipProtoRouting, ipProtoDestOpts:
			if off+ipv6ExtHeaderMinLen > n {
				ports = false
				break walk
			}
			next = frame[off]
			off += (int(frame[off+1]) + 1) * 8
		case ipProtoFragment:
			if off+ipv6FragmentHeaderLen > n {
				ports = false
				break walk
			}
			next = frame[off]
			// The offset is the top 13 bits of bytes 2 and 3.
			if binary.BigEndian.Uint16(frame[off+2:])>>3 != 0 {
				ports = false
			}
			off += ipv6FragmentHeaderLen
		default:
			break walk
		}
	}
	h = mix(h, ether.TypeIPv6|uint32(next)<<16)
	if !ports {
		return h
	}
	return hashPorts(h, frame, off, next)
}

// hashPorts absorbs the ports at frame[off:off+4] if proto has them there and
// the frame holds them.
func hashPorts(h uint32, frame []byte, off int, proto uint8) uint32 {
	switch proto {
	case ipProtoTCP, ipProtoUDP, ipProtoSCTP:
	default:
		return h
	}
	if off+portsLen > len(frame) {
		return h
	}
	return mix(h, word(frame[off:off+portsLen]))
}

// murmur3 is MurmurHash3 x86_32 of b; FlowHash uses it, with flowSeed, for
// frames too short to parse. Being the reference algorithm, it also lets the
// tests check mix and fmix against published values.
func murmur3(b []byte, seed uint32) uint32 {
	h := seed
	i := 0
	for ; i+4 <= len(b); i += 4 {
		h = mix(h, word(b[i:i+4]))
	}
	if i < len(b) {
		var k uint32
		for j := len(b) - 1; j >= i; j-- {
			k = k<<8 | uint32(b[j])
		}
		h ^= scramble(k)
	}
	return fmix(h ^ uint32(len(b)))
}

// SourcePort maps a flow hash onto a UDP source port in [lo, hi], both
// inclusive, like the kernel's udp_flow_src_port: multiply-shift, which uses
// the hash's high bits and, unlike modulo, needs no division. Configuration
// validation guarantees lo <= hi; if they are equal (or, against that
// guarantee, reversed) the result is lo.
func SourcePort(hash uint32, lo, hi uint16) uint16 {
	if hi <= lo {
		return lo
	}
	span := uint64(hi) - uint64(lo) + 1 // at most 65536
	return lo + uint16(uint64(hash)*span>>32)
}
