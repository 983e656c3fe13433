package config

// Validation of the BGP EVPN backend's keys: [control] with backend =
// "evpn", its [[control.neighbor]] sections, and the route_target and
// route_distinguisher of each [[network]].

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// evpnKey names the first BGP EVPN key set in [control], or "".
func (fc *fileControl) evpnKey() string {
	switch {
	case fc.ASN != nil:
		return "asn"
	case fc.RouterID != nil:
		return "router_id"
	case fc.ListenPort != nil:
		return "listen_port"
	case fc.Neighbor != nil:
		return "neighbor"
	}
	return ""
}

// evpn validates [control] with backend = "evpn".
func (v *validator) evpn(fc *fileControl, cfg *Config) {
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"endpoints", fc.Endpoints != nil}, {"prefix", fc.Prefix != nil},
		{"lease_ttl", fc.LeaseTTL != nil}, {"ca_file", fc.CAFile != nil},
		{"cert_file", fc.CertFile != nil}, {"key_file", fc.KeyFile != nil},
		{"username", fc.Username != nil}, {"password", fc.Password != nil},
	} {
		if k.set {
			msg := "only for backend \"etcd\""
			if k.name == "password" {
				msg += "; a BGP session's goes in its [[control.neighbor]]"
			}
			v.fail("control."+k.name, "%s", msg)
			return
		}
	}
	cfg.ControlMaxEntries = DefaultControlMaxEntries
	if p := fc.MaxEntries; p != nil {
		if *p < 1 || *p > 1<<24 {
			v.fail("control.max_entries", "%d out of range 1..%d", *p, 1<<24)
		}
		cfg.ControlMaxEntries = int(*p)
	}
	switch {
	case fc.ASN == nil:
		v.fail("control.asn", "required with backend \"evpn\": this VTEP's autonomous system")
	case *fc.ASN < 1 || *fc.ASN > math.MaxUint32:
		v.fail("control.asn", "%d out of range 1..%d", *fc.ASN, uint32(math.MaxUint32))
	default:
		cfg.ControlASN = uint32(*fc.ASN)
	}
	if fc.RouterID != nil {
		cfg.ControlRouterID = v.addr("control.router_id", *fc.RouterID)
		if v.err == nil && !cfg.ControlRouterID.Is4() {
			v.fail("control.router_id", "%s is not an IPv4 address (a BGP identifier is 32 bits)", cfg.ControlRouterID)
		}
	} else if cfg.Local.IsValid() {
		if !cfg.Local.Is4() {
			v.fail("control.router_id", "required: underlay.local %s is not IPv4, and a BGP identifier is 32 bits", cfg.Local)
		}
		cfg.ControlRouterID = cfg.Local
	}
	cfg.ControlListenPort = DefaultControlListenPort
	if p := fc.ListenPort; p != nil {
		if *p < 0 || *p > 65535 {
			v.fail("control.listen_port", "%d out of range 0..65535 (0: only connect out)", *p)
		}
		cfg.ControlListenPort = int(*p)
	}
	seen := map[netip.Addr]int{}
	for i, fn := range fc.Neighbor {
		key := func(k string) string { return fmt.Sprintf("control.neighbor[%d].%s", i, k) }
		var n Neighbor
		if fn.Address == "" {
			v.fail(key("address"), "required: the neighbor's IP address")
			return
		}
		n.Address = v.addr(key("address"), fn.Address)
		if v.err != nil {
			return
		}
		if n.Address.IsUnspecified() || n.Address.IsMulticast() {
			v.fail(key("address"), "%s must be a unicast address", n.Address)
		}
		if n.Address == cfg.Local {
			v.fail(key("address"), "%s is this VTEP's own address", n.Address)
		}
		if j, dup := seen[n.Address]; dup {
			v.fail(key("address"), "%s already listed by control.neighbor[%d]", n.Address, j)
		}
		seen[n.Address] = i
		n.ASN = cfg.ControlASN
		if fn.ASN != nil {
			if *fn.ASN < 1 || *fn.ASN > math.MaxUint32 {
				v.fail(key("asn"), "%d out of range 1..%d", *fn.ASN, uint32(math.MaxUint32))
			}
			n.ASN = uint32(*fn.ASN)
		}
		if fn.Password != nil {
			// TCP MD5 keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN).
			if *fn.Password == "" || len(*fn.Password) > 80 {
				v.fail(key("password"), "must be 1 to 80 bytes (leave it out for none)")
			}
			n.Password = *fn.Password
		}
		cfg.ControlNeighbors = append(cfg.ControlNeighbors, n)
	}
	if len(cfg.ControlNeighbors) == 0 && cfg.ControlListenPort == 0 {
		v.fail("control.listen_port", "0 with no [[control.neighbor]]: no session could ever come up")
	}
}

// evpnNetwork fills in a network's route target and distinguisher (evpn
// backend only).
func (v *validator) evpnNetwork(key func(string) string, fn *fileNetwork, cfg *Config, n *Network) {
	if cfg.ControlBackend != "evpn" {
		for _, k := range []struct {
			name string
			set  bool
		}{{"route_target", fn.RouteTarget != nil}, {"route_distinguisher", fn.RouteDist != nil}} {
			if k.set {
				v.fail(key(k.name), "only for control.backend \"evpn\"")
			}
		}
		return
	}
	switch {
	case fn.RouteTarget != nil:
		if err := checkTwoPart(*fn.RouteTarget); err != nil {
			v.fail(key("route_target"), "%q: %v", *fn.RouteTarget, err)
		}
		n.RouteTarget = *fn.RouteTarget
	case cfg.ControlASN <= math.MaxUint16:
		n.RouteTarget = fmt.Sprintf("%d:%d", cfg.ControlASN, n.VNI)
	case n.VNI <= math.MaxUint16:
		n.RouteTarget = fmt.Sprintf("%d:%d", cfg.ControlASN, n.VNI)
	default:
		v.fail(key("route_target"), "required: a 4-byte control.asn and a VNI above 65535 do not fit in one (asn:vni)")
	}
	switch {
	case fn.RouteDist != nil:
		if err := checkTwoPart(*fn.RouteDist); err != nil {
			v.fail(key("route_distinguisher"), "%q: %v", *fn.RouteDist, err)
		}
		n.RouteDistinguisher = *fn.RouteDist
	case n.VNI <= math.MaxUint16:
		n.RouteDistinguisher = fmt.Sprintf("%s:%d", cfg.ControlRouterID, n.VNI)
	default:
		v.fail(key("route_distinguisher"), "required: VNI %d does not fit in the default router_id:vni (at most 65535)", n.VNI)
	}
}

// checkTwoPart vets a route target or distinguisher, whose three forms
// (RFC 4360, RFC 4364) share one grammar: a 2-byte AS and a 4-byte number,
// an IPv4 address and a 2-byte number, or a 4-byte AS and a 2-byte number.
func checkTwoPart(s string) error {
	admin, num, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("not of the form asn:number or a.b.c.d:number")
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not a number", num)
	}
	if a, err := netip.ParseAddr(admin); err == nil {
		if !a.Is4() {
			return fmt.Errorf("%s: only an IPv4 address fits", a)
		}
		if n > math.MaxUint16 {
			return fmt.Errorf("%d: after an IPv4 address, at most 65535", n)
		}
		return nil
	}
	as, err := strconv.ParseUint(admin, 10, 32)
	switch {
	case err != nil || as == 0 && admin != "0":
		return fmt.Errorf("%q is neither an AS number nor an IPv4 address", admin)
	case as > math.MaxUint16 && n > math.MaxUint16:
		return fmt.Errorf("after a 4-byte AS, at most 65535")
	}
	return nil
}
