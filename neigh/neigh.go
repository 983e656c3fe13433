package neigh

import (
	"errors"
	"net/netip"

	"github.com/vtepd/vtepd/ether"
)

// Errors Parse returns. ErrNotNeigh means the frame is no business of this
// package; the others mean it is ARP or ND that a host would discard.
var (
	// ErrNotNeigh: the frame is neither ARP nor an ICMPv6 Neighbor
	// Solicitation or Advertisement that follows the IPv6 header
	// directly (or it carries more VLAN tags than ether.L3 skips, or ends
	// before the ICMPv6 type).
	ErrNotNeigh = errors.New("neigh: not ARP or neighbor discovery")
	// ErrTruncated: the frame ends before the 28 bytes of an ARP packet,
	// or before the IPv6 payload length says an ND message does.
	ErrTruncated = errors.New("neigh: truncated ARP or ND message")
	// ErrBadARP: ARP other than Ethernet/IPv4 (hardware type 1 or 6,
	// protocol 0x0800, address lengths 6 and 4) request or reply.
	ErrBadARP = errors.New("neigh: not an Ethernet/IPv4 ARP request or reply")
	// ErrBadND: a solicitation or advertisement that RFC 4861 (7.1.1,
	// 7.1.2) says to discard: code not 0, hop limit not 255, shorter than
	// 24 bytes, a multicast source or target, a DAD solicitation not sent
	// to a solicited-node address or carrying a source link-layer
	// address option, a solicited advertisement sent to a multicast
	// address.
	ErrBadND = errors.New("neigh: invalid neighbor discovery message")
	// ErrBadOption: an ND option of length 0, one that runs past the
	// message, or a link-layer address option that is not 8 bytes long.
	ErrBadOption = errors.New("neigh: invalid neighbor discovery option")
	// ErrChecksum: the ICMPv6 checksum does not verify.
	ErrChecksum = errors.New("neigh: bad ICMPv6 checksum")
)

// Errors Reply returns.
var (
	// ErrNotRequest: the packet is not something a host answers: an ARP
	// reply or announcement, a Neighbor Advertisement, or a zero Packet.
	ErrNotRequest = errors.New("neigh: not a request to answer")
	// ErrBadMAC: the known MAC, or the requester's MAC that the reply
	// would go to, is zero or a group (multicast, broadcast) address.
	ErrBadMAC = errors.New("neigh: not a unicast MAC address")
	// ErrOwnMAC: the known MAC is the requester's own. A host does not
	// answer for itself, and an answer to a probe or a DAD solicitation
	// would make the requester give up its own address.
	ErrOwnMAC = errors.New("neigh: the known MAC is the requester's own")
)

// Kind is what a parsed packet is.
type Kind uint8

// Kinds of Packet. The zero Kind is none: the Packet of a failed Parse.
const (
	// ARPRequest: "who has TargetIP? tell SrcIP", from a host with an
	// address: operation 1, sender IP neither 0.0.0.0 nor the target IP.
	ARPRequest Kind = iota + 1
	// ARPProbe: an RFC 5227 probe, operation 1 with sender IP 0.0.0.0:
	// a host checking that TargetIP is free before it takes it.
	ARPProbe
	// ARPAnnouncement: gratuitous ARP, a request or reply whose sender IP
	// is its target IP and not 0.0.0.0: a host announcing its binding.
	ARPAnnouncement
	// ARPReply: operation 2, sender IP not the target IP.
	ARPReply
	// NeighborSolicitation: ICMPv6 type 135 from a specified source.
	NeighborSolicitation
	// DADSolicitation: ICMPv6 type 135 from ::, Duplicate Address
	// Detection (RFC 4862 5.4.2) for TargetIP.
	DADSolicitation
	// NeighborAdvertisement: ICMPv6 type 136.
	NeighborAdvertisement
)

var kindNames = [...]string{
	0:                     "none",
	ARPRequest:            "ARP request",
	ARPProbe:              "ARP probe",
	ARPAnnouncement:       "ARP announcement",
	ARPReply:              "ARP reply",
	NeighborSolicitation:  "neighbor solicitation",
	DADSolicitation:       "DAD solicitation",
	NeighborAdvertisement: "neighbor advertisement",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// IsARP reports whether k is one of the ARP kinds.
func (k Kind) IsARP() bool { return k >= ARPRequest && k <= ARPReply }

// IsND reports whether k is one of the Neighbor Discovery kinds.
func (k Kind) IsND() bool { return k >= NeighborSolicitation && k <= NeighborAdvertisement }

// Flags are the flags of a Neighbor Advertisement, at their place in the
// byte that follows the ICMPv6 checksum (RFC 4861 4.4).
type Flags uint8

// Neighbor Advertisement flags.
const (
	// FlagRouter (R): the sender is a router.
	FlagRouter Flags = 0x80
	// FlagSolicited (S): the advertisement answers a solicitation.
	FlagSolicited Flags = 0x40
	// FlagOverride (O): the advertisement should replace a cached
	// link-layer address.
	FlagOverride Flags = 0x20

	flagsMask = FlagRouter | FlagSolicited | FlagOverride
)

// Tags are the VLAN tags of a frame, outer first, as they were on the
// wire: at most ether.MaxTags of them, each a TPID and a TCI.
type Tags struct {
	b [ether.MaxTags * ether.TagLen]byte
	n uint8
}

// Len returns the number of tags.
func (t *Tags) Len() int { return int(t.n) }

// At returns the TPID and TCI of tag i, 0 <= i < Len().
func (t *Tags) At(i int) (tpid, tci uint16) {
	b := t.b[i*ether.TagLen : (i+1)*ether.TagLen]
	return uint16(b[0])<<8 | uint16(b[1]), uint16(b[2])<<8 | uint16(b[3])
}

// Packet is what Parse found in a frame. The fields that do not apply to a
// Kind are zero.
type Packet struct {
	Kind Kind
	// EthDst and EthSrc are the frame's Ethernet addresses.
	EthDst, EthSrc [ether.AddrLen]byte
	// Tags are the frame's VLAN tags; a reply carries the same.
	Tags Tags

	// SrcIP is who sent it: the ARP sender protocol address (0.0.0.0 in
	// a probe), or the IPv6 source (:: in a DAD solicitation).
	SrcIP netip.Addr
	// SrcMAC is the ARP sender hardware address, or the Source
	// Link-Layer Address option of a solicitation; HasSrcMAC says
	// whether it is there (always for ARP).
	SrcMAC    [ether.AddrLen]byte
	HasSrcMAC bool
	// TargetIP is the ARP target protocol address, or the ND target.
	TargetIP netip.Addr
	// TargetMAC is the ARP target hardware address (whatever a request
	// put there, usually zero), or the Target Link-Layer Address option
	// of an advertisement; HasTargetMAC says whether it is there (always
	// for ARP).
	TargetMAC    [ether.AddrLen]byte
	HasTargetMAC bool

	// DstIP is the IPv6 destination (ND only).
	DstIP netip.Addr
	// TrafficClass is the IPv6 traffic class (ND only).
	TrafficClass uint8
	// Flags are an advertisement's flags (NeighborAdvertisement only).
	Flags Flags

	// L3 is where the ARP packet or the IPv6 header starts in the frame,
	// past the tags; End is where it ends (the IPv6 payload length says
	// where), before any Ethernet padding.
	L3, End int
}

// Requester returns the MAC a reply to p goes to: the ARP sender hardware
// address, the solicitation's source link-layer address option, or, for
// a solicitation without one, its Ethernet source.
func (p *Packet) Requester() [ether.AddrLen]byte {
	if p.HasSrcMAC {
		return p.SrcMAC
	}
	return p.EthSrc
}

// unicastMAC reports whether m is neither zero nor a group address.
func unicastMAC(m [ether.AddrLen]byte) bool {
	return m[0]&0x01 == 0 && m != [ether.AddrLen]byte{}
}
