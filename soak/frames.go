package main

// What the soak's own processes put on the wire: the sequence-numbered
// datagrams of the legitimate flows, the Ethernet frames of the FDB churn
// and the hostile VXLAN datagrams. All of it is built here, by pure
// functions tested without root in frames_test.go.

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
)

// Legitimate flows: UDP between every ordered pair of containers. Each
// payload carries the sender's index and a sequence number, so that the
// receiver can count exactly which datagrams arrived.
//
//	 0      4      5      6              8                      16
//	+------+------+------+--------------+-----------------------+---------
//	| VSOK | from | 0    | 0            | seq (big-endian)      | padding
//	+------+------+------+--------------+-----------------------+---------
const (
	flowMagic      = "VSOK"
	flowFromOffset = 4
	flowSeqOffset  = 8
	flowHeaderLen  = 16
	// flowMaxPayload is the largest UDP payload that fits a 1450-byte
	// container MTU without fragmenting: 1450 - IPv4 20 - UDP 8.
	flowMaxPayload = 1422
)

// flowSizes are the payload sizes the flows cycle through by sequence
// number: small datagrams, middling ones and full-size ones, so that each
// pair sends a mix of frame sizes whatever its rate.
var flowSizes = [...]int{flowHeaderLen, 64, 256, 512, 1024, flowMaxPayload}

// flowSize is the payload size of datagram seq.
func flowSize(seq uint64) int { return flowSizes[seq%uint64(len(flowSizes))] }

// putFlow writes the payload of datagram seq from sender from into b and
// returns it, flowSize(seq) bytes long. b must hold flowMaxPayload bytes;
// the padding is whatever b held before.
func putFlow(b []byte, from uint8, seq uint64) []byte {
	b = b[:flowSize(seq)]
	copy(b, flowMagic)
	b[flowFromOffset] = from
	b[flowFromOffset+1] = 0
	b[flowFromOffset+2] = 0
	b[flowFromOffset+3] = 0
	binary.BigEndian.PutUint64(b[flowSeqOffset:], seq)
	return b
}

// parseFlow reads a flow payload; ok is false for anything else.
func parseFlow(b []byte) (from uint8, seq uint64, ok bool) {
	if len(b) < flowHeaderLen || string(b[:len(flowMagic)]) != flowMagic {
		return 0, 0, false
	}
	seq = binary.BigEndian.Uint64(b[flowSeqOffset:])
	if len(b) != flowSize(seq) {
		return 0, 0, false
	}
	return b[flowFromOffset], seq, true
}

// FDB churn. Time is cut into epochs. In epoch e, perEpoch MACs appear,
// MAC slot s behind container (e+s) mod hosts; in epoch e+1, every
// moveEvery-th of them (s mod moveEvery == 0) is sent once more, from the
// next container, so that the remote VTEPs see it move; after that nobody
// sends from it again and it ages out. Every churn process computes the
// same plan from the shared start time, so they need not talk.
//
// A churn MAC is 02:5c:EE:EE:SS:PP: locally administered, unicast, with the
// epoch (16 bits, wrapping), the slot and the phase, so that the MACs of
// the kernel phase and of the vtepd phase never meet.
const churnMACPrefix = 0x5c

// churnMAC is the MAC of slot s of epoch e in phase phase.
func churnMAC(phase uint8, epoch uint32, slot int) net.HardwareAddr {
	return net.HardwareAddr{0x02, churnMACPrefix, byte(epoch >> 8), byte(epoch), byte(slot), phase}
}

// isChurnMAC reports whether mac is one of churnMAC's.
func isChurnMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x02 && mac[1] == churnMACPrefix
}

// churnPlan is what churn process index (of hosts) sends in epoch e: the
// MACs that appear behind it and the MACs that move to it.
type churnPlan struct {
	Appear, Move []net.HardwareAddr
}

// planEpoch computes churnPlan for one process and epoch. perEpoch must be
// at most 256 (the slot is one byte of the MAC).
func planEpoch(phase uint8, epoch uint32, index, hosts, perEpoch, moveEvery int) churnPlan {
	var p churnPlan
	owner := func(e uint32, s int) int { return int((uint64(e) + uint64(s)) % uint64(hosts)) }
	for s := range perEpoch {
		if owner(epoch, s) == index {
			p.Appear = append(p.Appear, churnMAC(phase, epoch, s))
		}
		if epoch > 0 && moveEvery > 0 && s%moveEvery == 0 && (owner(epoch-1, s)+1)%hosts == index {
			p.Move = append(p.Move, churnMAC(phase, epoch-1, s))
		}
	}
	return p
}

// etherTypeExperimental is the IEEE "local experimental" EtherType: no
// stack has a handler for it, so churn and attacker frames that reach a
// container are dropped there without a reply.
const etherTypeExperimental = 0x88b5

// minFrame is the shortest Ethernet frame without FCS.
const minFrame = 60

// ethernetFrame is a minimal frame from src to dst with the experimental
// EtherType and a zero payload.
func ethernetFrame(dst, src net.HardwareAddr) []byte {
	f := make([]byte, minFrame)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], etherTypeExperimental)
	return f
}

// broadcastMAC is where churn frames go: a broadcast is flooded to every
// VTEP, so every remote VTEP learns its source.
var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Hostile datagrams. Each kind is built to fail exactly one receive check
// of vtepd, so that the drop counter it must land in is known:
//
//	kind             VXLAN payload                               counter (reason, vni)
//	too_short        0..7 random bytes                          too_short, unknown
//	bad_flags        8..71 random bytes, I flag clear           bad_flags, unknown
//	unknown_vni      I set, a VNI other than ours, 0..63 bytes  unknown_vni, unknown
//	inner_too_short  I set, our VNI, 0..13 bytes inner          inner_too_short, <vni>
//	source           I set, our VNI, a whole frame, but sent    source, <vni>
//	                 from outside accept_from
//
// The reserved bits are random wherever they are not the I flag: RFC 7348
// says to ignore them, so they must not change the verdict.
const (
	vxlanHeaderLen = 8
	vxlanFlagI     = 0x08
	innerHeaderLen = 14
)

// hostileKind is one kind of hostile datagram.
type hostileKind struct {
	Reason     string // the vtep_drops_total reason it must be counted under
	UnknownVNI bool   // counted under vni="unknown" rather than the network's
	build      func(r *rand.Rand, vni uint32, src, dst net.HardwareAddr) []byte
}

// attackerMACPrefix marks the inner source MACs of the attacker's frames,
// 02:ad:xx:xx:xx:xx: a VTEP that learned one has let the attacker in.
const attackerMACPrefix = 0xad

// isAttackerMAC reports whether mac is one the attacker sends from.
func isAttackerMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x02 && mac[1] == attackerMACPrefix
}

// attackerMAC is a random attacker MAC.
func attackerMAC(r *rand.Rand) net.HardwareAddr {
	m := net.HardwareAddr{0x02, attackerMACPrefix, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(m[2:], r.Uint32())
	return m
}

var hostileKinds = []hostileKind{
	{Reason: "too_short", UnknownVNI: true, build: func(r *rand.Rand, _ uint32, _, _ net.HardwareAddr) []byte {
		return randomBytes(r, r.IntN(vxlanHeaderLen))
	}},
	{Reason: "bad_flags", UnknownVNI: true, build: func(r *rand.Rand, _ uint32, _, _ net.HardwareAddr) []byte {
		b := randomBytes(r, vxlanHeaderLen+r.IntN(64))
		b[0] &^= vxlanFlagI
		return b
	}},
	{Reason: "unknown_vni", UnknownVNI: true, build: func(r *rand.Rand, vni uint32, _, _ net.HardwareAddr) []byte {
		other := vni
		for other == vni {
			other = r.Uint32N(1 << 24)
		}
		return vxlanDatagram(r, other, randomBytes(r, r.IntN(64)))
	}},
	{Reason: "inner_too_short", build: func(r *rand.Rand, vni uint32, _, _ net.HardwareAddr) []byte {
		return vxlanDatagram(r, vni, randomBytes(r, r.IntN(innerHeaderLen)))
	}},
	{Reason: "source", build: func(r *rand.Rand, vni uint32, src, dst net.HardwareAddr) []byte {
		return vxlanDatagram(r, vni, ethernetFrame(dst, src))
	}},
}

// vxlanDatagram is a VXLAN header with the I flag, vni and random reserved
// bits, followed by inner.
func vxlanDatagram(r *rand.Rand, vni uint32, inner []byte) []byte {
	b := randomBytes(r, vxlanHeaderLen)
	b[0] |= vxlanFlagI
	binary.BigEndian.PutUint32(b[4:8], vni<<8|uint32(b[7]))
	return append(b, inner...)
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
