package neigh

import (
	"net/netip"

	"github.com/vtepd/vtepd/ether"
)

// Binding is an IP address and the MAC that has it: what the control plane
// publishes as <prefix>/v1/vni/<vni>/ip/<ip> for a host on this VTEP's TAP.
type Binding struct {
	IP  netip.Addr
	MAC [ether.AddrLen]byte
}

// Binding returns the binding p proves, if any:
//
//   - an ARP request, announcement or reply: (sender IP, sender hardware
//     address);
//   - a Neighbor Solicitation with a Source Link-Layer Address option:
//     (source, that address);
//   - a Neighbor Advertisement with a Target Link-Layer Address option
//     and the Override flag: (target, that address).
//
// ARP probes and DAD solicitations prove nothing, nor do solicitations
// without the option, advertisements without the option or the flag (an
// anycast address or a proxy speaking), a MAC that is zero or a group
// address, or an IP that is not unicast: unspecified, loopback,
// multicast, in 0.0.0.0/8, 255.255.255.255, or IPv4-mapped IPv6. The
// package documentation says why.
func (p *Packet) Binding() (Binding, bool) {
	var b Binding
	switch p.Kind {
	case ARPRequest, ARPAnnouncement, ARPReply:
		b = Binding{p.SrcIP, p.SrcMAC}
	case NeighborSolicitation:
		if !p.HasSrcMAC {
			return Binding{}, false
		}
		b = Binding{p.SrcIP, p.SrcMAC}
	case NeighborAdvertisement:
		if !p.HasTargetMAC || p.Flags&FlagOverride == 0 {
			return Binding{}, false
		}
		b = Binding{p.TargetIP, p.TargetMAC}
	default:
		return Binding{}, false
	}
	if !unicastMAC(b.MAC) || !unicastIP(b.IP) {
		return Binding{}, false
	}
	return b, true
}

// Snoop parses frame and returns the binding it proves, if any: Parse,
// then Packet.Binding. It does not allocate.
func Snoop(frame []byte) (Binding, bool) {
	p, err := Parse(frame)
	if err != nil {
		return Binding{}, false
	}
	return p.Binding()
}

// unicastIP reports whether a can be a host's address.
func unicastIP(a netip.Addr) bool {
	if a.Is4() {
		v := a.As4()
		return v[0] != 0 && v[0] != 127 && v[0]&0xf0 != 0xe0 && v != [ipv4AddrLen]byte{255, 255, 255, 255}
	}
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}
