package evpn

import (
	"net"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// FuzzDecode hands decode routes whose every field a hostile peer
// controls, as gobgp's decoder would deliver them (any lengths, any label
// count, any next hop, PMSI and communities): decode must refuse or read
// them, never panic, and what it reads must be a usable route.
func FuzzDecode(f *testing.F) {
	f.Add(true, byte(48), []byte{2, 0, 0, 0, 0, 1}, byte(32), []byte{198, 19, 0, 1}, uint32(200), byte(1), []byte{198, 18, 0, 2}, byte(6), []byte{0, 2, 0xfd, 0xe8, 0, 0, 0, 200})
	f.Add(false, byte(0), []byte{}, byte(32), []byte{198, 18, 0, 2}, uint32(200), byte(0), []byte{198, 18, 0, 2}, byte(6), []byte{6, 0, 0, 0, 0, 0, 0, 1})
	f.Add(true, byte(48), []byte{1, 0, 0x5e, 0, 0, 1}, byte(128), make([]byte, 16), uint32(1<<24), byte(2), []byte{}, byte(0), []byte{3, 0xc, 0, 0, 0, 0, 0, 8})
	f.Fuzz(func(t *testing.T, macip bool, macLen byte, mac []byte, ipLen byte, ip []byte, label uint32, nLabels byte, nexthop []byte, pmsiType byte, ec []byte) {
		p, err := parseParams(vniOpts)
		if err != nil {
			t.Fatal(err)
		}
		var nlri *bgp.EVPNNLRI
		if macip {
			labels := make([]uint32, int(nLabels)%3)
			for i := range labels {
				labels[i] = label
			}
			nlri = &bgp.EVPNNLRI{RouteType: typeMACIP, RouteTypeData: &bgp.EVPNMacIPAdvertisementRoute{
				RD: p.rd, MacAddressLength: macLen, MacAddress: net.HardwareAddr(mac),
				IPAddressLength: ipLen, IPAddress: net.IP(ip), Labels: labels,
			}}
		} else {
			nlri = &bgp.EVPNNLRI{RouteType: typeIMET, RouteTypeData: &bgp.EVPNMulticastEthernetTagRoute{
				RD: p.rd, ETag: label, IPAddressLength: ipLen, IPAddress: net.IP(ip),
			}}
		}
		attrs := []bgp.PathAttributeInterface{&bgp.PathAttributeMpReachNLRI{Nexthop: net.IP(nexthop)}}
		if pmsiType != 0 {
			attrs = append(attrs, &bgp.PathAttributePmsiTunnel{TunnelType: bgp.PmsiTunnelType(pmsiType), Label: label,
				TunnelID: &bgp.IngressReplTunnelID{Value: net.IP(nexthop)}})
		}
		if len(ec) >= 8 {
			if c, err := bgp.ParseExtended(ec[:8]); err == nil {
				attrs = append(attrs, bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{c}))
			}
		}
		r, err := decode(nlri, attrs, local)
		if err != nil {
			return
		}
		if !r.vtep.IsValid() || r.vtep.Is4() != local.Is4() || r.vni > 0xffffff {
			t.Errorf("accepted an unusable route: %+v", r)
		}
		if r.typ == typeMACIP && (!r.mac.IsUnicast() || r.mac.IsZero() || r.ip.IsValid() && r.ip != r.ip.Unmap()) {
			t.Errorf("accepted a bad type-2 route: %+v", r)
		}
	})
}
