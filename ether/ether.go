package ether

import "encoding/binary"

// Ethernet II header (no FCS), and a VLAN tag as it sits between the source
// address and the EtherType:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Destination address (6 bytes)                 |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                   Source address (6 bytes)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      EtherType or TPID        |   (payload, or TCI if TPID)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A tag is the TPID (tag protocol identifier, in the EtherType's place)
// and a 2-byte TCI (priority, drop eligible, VLAN ID); the real EtherType,
// or the next tag, follows it.
const (
	// AddrLen is the length of a MAC address.
	AddrLen = 6
	// DstOffset is where the destination address starts.
	DstOffset = 0
	// SrcOffset is where the source address starts.
	SrcOffset = 6
	// EtherTypeOffset is where the EtherType, or the TPID of the outer
	// tag, starts.
	EtherTypeOffset = 12
	// EtherTypeLen is the length of an EtherType or a TPID.
	EtherTypeLen = 2
	// HeaderLen is the length of an untagged Ethernet header.
	HeaderLen = 14
	// TagLen is the length of one VLAN tag: TPID and TCI.
	TagLen = 4
	// MaxTags is how many VLAN tags L3 skips: an 802.1ad (or legacy
	// QinQ) service tag and an 802.1Q customer tag.
	MaxTags = 2
)

// EtherTypes the data path looks at.
const (
	TypeIPv4 = 0x0800
	TypeARP  = 0x0806
	TypeIPv6 = 0x86dd
)

// TPIDs: the EtherType values that announce a VLAN tag.
const (
	// TPID8021Q is the IEEE 802.1Q customer tag (C-tag).
	TPID8021Q = 0x8100
	// TPID8021AD is the IEEE 802.1ad service tag (S-tag).
	TPID8021AD = 0x88a8
	// TPIDLegacyQinQ is the service tag of pre-802.1ad QinQ equipment.
	TPIDLegacyQinQ = 0x9100
)

// Header is a view of an Ethernet header at the start of a frame. The
// caller guarantees len(h) >= HeaderLen; the accessors do not check again.
type Header []byte

// Dst returns the destination address.
func (h Header) Dst() [AddrLen]byte {
	return [AddrLen]byte(h[DstOffset : DstOffset+AddrLen])
}

// Src returns the source address.
func (h Header) Src() [AddrLen]byte {
	return [AddrLen]byte(h[SrcOffset : SrcOffset+AddrLen])
}

// EtherType returns the EtherType field: the EtherType of an untagged
// frame, the TPID of the outer tag of a tagged one.
func (h Header) EtherType() uint16 {
	return binary.BigEndian.Uint16(h[EtherTypeOffset:])
}

// IsTPID reports whether etherType announces a VLAN tag.
func IsTPID(etherType uint16) bool {
	switch etherType {
	case TPID8021Q, TPID8021AD, TPIDLegacyQinQ:
		return true
	}
	return false
}

// Tagged reports whether an Ethernet frame carries a VLAN tag: whether its
// outer EtherType is a TPID. The caller guarantees len(frame) >= HeaderLen.
func Tagged(frame []byte) bool {
	return IsTPID(Header(frame).EtherType())
}

// L3 finds the network-layer header of an Ethernet frame: it skips up to
// MaxTags VLAN tags of any TPID and returns the offset just past the
// EtherType, where the payload starts, and that EtherType. It returns
// ok == false, with a zero offset and EtherType, only if the frame ends
// before an EtherType (it is shorter than HeaderLen, or a tag is cut
// short) or carries more than MaxTags tags. When ok, offset <= len(frame),
// and etherType is the two bytes before offset and is not a TPID; the
// payload may be empty. It never reads outside frame and does not
// allocate.
//
// L3 runs for every frame in both directions, so it is written to be
// inlined: its cost is 76 of the compiler's budget of 80 (see
// go build -gcflags=-m=2 ./ether); a change that pushes it over turns it
// into a call on every frame.
func L3(frame []byte) (offset int, etherType uint16, ok bool) {
	if len(frame) < HeaderLen {
		return 0, 0, false
	}
	// The first EtherType is read at constant offsets, with no bounds
	// check once the caller has checked the length: an untagged frame,
	// the common case, costs that read and the TPID compares.
	et := binary.BigEndian.Uint16(frame[EtherTypeOffset:HeaderLen])
	off := HeaderLen // just past et
	for tags := 0; IsTPID(et); tags++ {
		off += TagLen
		if tags == MaxTags || len(frame) < off {
			return 0, 0, false
		}
		et = binary.BigEndian.Uint16(frame[off-EtherTypeLen : off])
	}
	return off, et, true
}
