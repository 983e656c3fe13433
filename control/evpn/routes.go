package evpn

// The EVPN routes this backend speaks, as RFC 7432 and RFC 8365 define
// them for VXLAN: what we advertise (encode*) and how a received path is
// read and vetted (decode). Only route types 2 and 3 are read; the others
// (1, 4: multihoming; 5: IP prefixes) are not an error, just not ours.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// Route types (RFC 7432 §7).
const (
	typeMACIP = bgp.EVPN_ROUTE_TYPE_MAC_IP_ADVERTISEMENT  // 2
	typeIMET  = bgp.EVPN_INCLUSIVE_MULTICAST_ETHERNET_TAG // 3
)

// vniParams are what a joined VNI's routes carry besides the VNI: its
// route target, as the 8 bytes of the extended community (which is how a
// received one is compared), and its route distinguisher.
type vniParams struct {
	rt   bgp.ExtendedCommunityInterface
	rtID uint64
	rd   bgp.RouteDistinguisherInterface
}

func parseParams(o control.VNIOptions) (vniParams, error) {
	rt, err := bgp.ParseRouteTarget(o.RouteTarget)
	if err != nil {
		return vniParams{}, fmt.Errorf("route_target %q: %w", o.RouteTarget, err)
	}
	id, err := extID(rt)
	if err != nil {
		return vniParams{}, fmt.Errorf("route_target %q: %w", o.RouteTarget, err)
	}
	rd, err := bgp.ParseRouteDistinguisher(o.RouteDistinguisher)
	if err != nil {
		return vniParams{}, fmt.Errorf("route_distinguisher %q: %w", o.RouteDistinguisher, err)
	}
	return vniParams{rt: rt, rtID: id, rd: rd}, nil
}

// extID is an extended community's 8 bytes as one number, to compare and
// keep route targets cheaply.
func extID(ec bgp.ExtendedCommunityInterface) (uint64, error) {
	b, err := ec.Serialize()
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("extended community: %v", err)
	}
	var id uint64
	for _, x := range b {
		id = id<<8 | uint64(x)
	}
	return id, nil
}

var evpnFamily = bgp.RF_EVPN

// attrs are the path attributes our routes share: origin IGP, the next
// hop (our underlay address) in MP_REACH_NLRI, the route target and the
// VXLAN encapsulation (RFC 8365 §5.1.3: tunnel type 8).
func baseAttrs(local netip.Addr, nlri bgp.AddrPrefixInterface, ecs []bgp.ExtendedCommunityInterface) []bgp.PathAttributeInterface {
	return []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeMpReachNLRI(local.String(), []bgp.AddrPrefixInterface{nlri}),
		bgp.NewPathAttributeExtendedCommunities(ecs),
	}
}

// encodeIMET is our type-3 route for a VNI: Ethernet tag 0 (VLAN-based
// service, RFC 8365 §5.1.1, as FRR sends it), our address as originator,
// and a PMSI tunnel attribute of type ingress replication whose label is
// the VNI and whose tunnel endpoint is our address (RFC 8365 §5.1.3).
func encodeIMET(local netip.Addr, vni uint32, p vniParams) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	nlri := bgp.NewEVPNMulticastEthernetTagRoute(p.rd, 0, local.String())
	attrs := baseAttrs(local, nlri, []bgp.ExtendedCommunityInterface{p.rt, bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN)})
	attrs = append(attrs, bgp.NewPathAttributePmsiTunnel(bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL, false, vni, bgp.NewIngressReplTunnelID(local.String())))
	return nlri, attrs
}

// encodeMACIP is our type-2 route for a MAC, with ip when it is valid: the
// VNI as label 1 (RFC 8365 §5.1.2), no ESI, Ethernet tag 0, and a MAC
// mobility extended community when seq is not 0 (RFC 7432 §7.7: a MAC
// advertised for the first time carries none).
func encodeMACIP(local netip.Addr, vni uint32, p vniParams, mac fdb.MAC, ip netip.Addr, seq uint32) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	ipStr := ""
	if ip.IsValid() {
		ipStr = ip.String()
	}
	nlri := bgp.NewEVPNMacIPAdvertisementRoute(p.rd, bgp.EthernetSegmentIdentifier{}, 0, net.HardwareAddr(mac[:]).String(), ipStr, []uint32{vni})
	ecs := []bgp.ExtendedCommunityInterface{p.rt, bgp.NewEncapExtended(bgp.TUNNEL_TYPE_VXLAN)}
	if seq > 0 {
		ecs = append(ecs, bgp.NewMacMobilityExtended(seq, false))
	}
	return nlri, baseAttrs(local, nlri, ecs)
}

// route is a received type-2 or type-3 route, read and vetted.
type route struct {
	typ  uint8
	vni  uint32
	vtep netip.Addr // the next hop (type 2), the tunnel endpoint (type 3)
	mac  fdb.MAC    // type 2
	ip   netip.Addr // type 2, when it binds an IP
	seq  uint32     // MAC mobility sequence number (type 2)
	rts  []uint64   // route targets
	peer string     // the neighbor it came from
}

// errNotOurs marks a route of a type we do not read: not counted.
var errNotOurs = errors.New("evpn: route type not used")

// routeError is a route refused for a reason, counted by it.
type routeError struct {
	reason control.Reason
	msg    string
}

func (e *routeError) Error() string { return e.msg }

func refuse(r control.Reason, format string, args ...any) error {
	return &routeError{reason: r, msg: fmt.Sprintf(format, args...)}
}

// reasonOf is the reason to count err under.
func reasonOf(err error) control.Reason {
	var re *routeError
	if errors.As(err, &re) {
		return re.reason
	}
	return control.ReasonRoute
}

// decode reads one EVPN path: its NLRI and attributes as gobgp decoded
// them from the wire. It checks only what does not depend on the VNIs we
// serve (see rib.accept for the rest): the MAC, the IP, the VNI label,
// and the next hop's family against local's.
func decode(nlri bgp.AddrPrefixInterface, attrs []bgp.PathAttributeInterface, local netip.Addr) (route, error) {
	n, ok := nlri.(*bgp.EVPNNLRI)
	if !ok {
		return route{}, refuse(control.ReasonRoute, "not an EVPN NLRI: %T", nlri)
	}
	var r route
	var nexthop netip.Addr
	var pmsi *bgp.PathAttributePmsiTunnel
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			nexthop, _ = netip.AddrFromSlice(a.Nexthop)
		case *bgp.PathAttributeNextHop:
			if !nexthop.IsValid() {
				nexthop, _ = netip.AddrFromSlice(a.Value)
			}
		case *bgp.PathAttributePmsiTunnel:
			pmsi = a
		case *bgp.PathAttributeExtendedCommunities:
			for _, ec := range a.Value {
				switch ec := ec.(type) {
				case *bgp.MacMobilityExtended:
					r.seq = ec.Sequence
				default:
					if _, sub := ec.GetTypes(); sub == bgp.EC_SUBTYPE_ROUTE_TARGET {
						if id, err := extID(ec); err == nil {
							r.rts = append(r.rts, id)
						}
					}
				}
			}
		}
	}
	switch d := n.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		r.typ = typeMACIP
		if d.MacAddressLength != 48 || len(d.MacAddress) != 6 {
			return route{}, refuse(control.ReasonMAC, "MAC of %d bits", d.MacAddressLength)
		}
		r.mac = fdb.MAC(d.MacAddress)
		if !r.mac.IsUnicast() || r.mac.IsZero() {
			return route{}, refuse(control.ReasonGroupMAC, "MAC %v is not a host's", r.mac)
		}
		switch d.IPAddressLength {
		case 0:
		case 32, 128:
			ip, ok := netip.AddrFromSlice(d.IPAddress)
			if !ok || ip.Unmap().BitLen() != int(d.IPAddressLength) || !ip.Unmap().IsGlobalUnicast() && !ip.Unmap().IsLinkLocalUnicast() {
				return route{}, refuse(control.ReasonIP, "IP %v is not a host's", d.IPAddress)
			}
			r.ip = ip.Unmap()
		default:
			return route{}, refuse(control.ReasonIP, "IP of %d bits", d.IPAddressLength)
		}
		if len(d.Labels) == 0 {
			return route{}, refuse(control.ReasonRoute, "type-2 route without a label")
		}
		r.vni = d.Labels[0]
		r.vtep = nexthop.Unmap()
	case *bgp.EVPNMulticastEthernetTagRoute:
		r.typ = typeIMET
		orig, _ := netip.AddrFromSlice(d.IPAddress)
		r.vtep = orig.Unmap()
		r.vni = d.ETag
		if pmsi != nil {
			if pmsi.TunnelType != bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL {
				return route{}, refuse(control.ReasonRoute, "PMSI tunnel type %v: only ingress replication is served", pmsi.TunnelType)
			}
			r.vni = pmsi.Label
			if id, ok := pmsi.TunnelID.(*bgp.IngressReplTunnelID); ok {
				if a, ok := netip.AddrFromSlice(id.Value); ok {
					r.vtep = a.Unmap()
				}
			}
		}
	default:
		return route{}, errNotOurs
	}
	switch {
	case !r.vtep.IsValid() || r.vtep.IsUnspecified() || r.vtep.IsMulticast():
		return route{}, refuse(control.ReasonRoute, "type-%d route without a usable next hop (%v)", r.typ, r.vtep)
	case r.vtep.Is4() != local.Is4():
		return route{}, refuse(control.ReasonFamily, "next hop %v is not of the family of %v", r.vtep, local)
	case r.vni > 0xffffff:
		return route{}, refuse(control.ReasonVNI, "VNI %d out of range", r.vni)
	}
	return r, nil
}
