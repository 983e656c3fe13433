package config

// Validation: a decoded file becomes a Config, every default filled in,
// every mistake an Error that names the key and its line.

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
)

// validator turns a fileConfig into a Config, stopping at the first error.
type validator struct {
	file string
	loc  keyLocations
	err  *Error
}

func (v *validator) fail(key, format string, args ...any) {
	if v.err == nil {
		v.err = &Error{File: v.file, Line: v.loc.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
	}
}

func (v *validator) addr(key, s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		v.fail(key, "%q is not an IP address", s)
		return netip.Addr{}
	}
	if a.Zone() != "" {
		v.fail(key, "%q: zones are not supported", s)
	}
	return a.Unmap()
}

func (v *validator) config(fc *fileConfig) *Config {
	cfg := &Config{
		Port:               DefaultPort,
		SrcPortLow:         DefaultSrcPortLow,
		SrcPortHigh:        DefaultSrcPortHigh,
		Interface:          fc.Underlay.Interface,
		UDP6ZeroChecksumRx: fc.Underlay.UDP6ZeroRx,
		MetricsAddr:        DefaultMetricsListen,
		Queues:             min(runtime.NumCPU(), maxQueues),
		Offload:            true,
		AdminSocket:        DefaultAdminSocket,
		LogLevel:           slog.LevelInfo,
		Nice:               DefaultNice,
	}
	if fc.Nice != nil {
		if *fc.Nice < -20 || *fc.Nice > 19 {
			v.fail("nice", "%d out of range -20..19", *fc.Nice)
		} else {
			cfg.Nice = int(*fc.Nice)
		}
	}
	if fc.Admin.Socket != nil {
		cfg.AdminSocket, cfg.AdminSocketSet = *fc.Admin.Socket, true
		if s := cfg.AdminSocket; s != "" && !strings.HasPrefix(s, "/") {
			v.fail("admin.socket", "%q must be an absolute path (or \"\" for none)", s)
		}
	}
	cfg.StateDir = DefaultStateDir
	if fc.StateDir != nil {
		cfg.StateDir = *fc.StateDir
		if s := cfg.StateDir; s != "" && !strings.HasPrefix(s, "/") {
			v.fail("state_dir", "%q must be an absolute path (or \"\" for none)", s)
		}
	}
	lim := &fc.Limits
	count := func(key string, p *int64, max int64) int {
		if p == nil {
			return 0
		}
		if *p < 0 || *p > max {
			v.fail(key, "%d out of range 0..%d", *p, max)
			return 0
		}
		return int(*p)
	}
	cfg.LearnRate = count("limits.learn_rate", lim.LearnRate, 10_000_000)
	cfg.MaxLearned = count("limits.max_learned", lim.MaxLearned, 1<<26)
	cfg.MaxMoves = count("limits.max_moves", lim.MaxMoves, 1_000_000)
	cfg.MoveHold = DefaultMoveHold
	if lim.MoveHold != nil {
		d, err := time.ParseDuration(*lim.MoveHold)
		if err != nil || d <= 0 {
			v.fail("limits.move_hold", "%q is not a positive duration such as \"10s\"", *lim.MoveHold)
		}
		cfg.MoveHold = d
	}
	if fc.LogLevel != nil {
		if err := cfg.LogLevel.UnmarshalText([]byte(*fc.LogLevel)); err != nil {
			v.fail("log_level", "%q is not one of debug, info, warn, error", *fc.LogLevel)
		}
	}
	if fc.Queues != nil {
		if *fc.Queues < 1 || *fc.Queues > maxQueues {
			v.fail("queues", "%d out of range 1..%d", *fc.Queues, maxQueues)
		} else {
			cfg.Queues = int(*fc.Queues)
		}
	}
	if fc.Offload != nil {
		cfg.Offload = *fc.Offload
	}
	if fc.BusyPoll != nil {
		d, err := time.ParseDuration(*fc.BusyPoll)
		if err != nil || d < 0 || d > maxBusyPoll {
			v.fail("busy_poll", "%q is not a duration from \"0s\" (off) to %q", *fc.BusyPoll, maxBusyPoll.String())
		}
		cfg.BusyPoll = d
	}
	// udp_gso follows offload unless set: asked for without it, it is an
	// error.
	cfg.UDPGSO = cfg.Offload
	if g := fc.Underlay.UDPGSO; g != nil {
		cfg.UDPGSO = *g
		if *g && !cfg.Offload {
			v.fail("underlay.udp_gso", "needs offload = true: only super-frames from the TAP go out as trains")
		}
	}
	u := &fc.Underlay
	if u.Local == "" {
		v.fail("underlay.local", "required: this VTEP's underlay address")
	} else {
		cfg.Local = v.addr("underlay.local", u.Local)
		if cfg.Local.IsValid() && (cfg.Local.IsUnspecified() || cfg.Local.IsMulticast()) {
			v.fail("underlay.local", "%s must be a unicast address", cfg.Local)
		}
	}
	if u.Port != nil {
		if *u.Port < 1 || *u.Port > 65535 {
			v.fail("underlay.port", "%d out of range 1..65535", *u.Port)
		} else {
			cfg.Port = uint16(*u.Port)
		}
	}
	if u.SrcPortRange != nil {
		r := u.SrcPortRange
		switch {
		case len(r) != 2:
			v.fail("underlay.src_port_range", "want [low, high], got %d values", len(r))
		case r[0] < 1 || r[0] > 65535 || r[1] < 1 || r[1] > 65535:
			v.fail("underlay.src_port_range", "ports out of range 1..65535")
		case r[0] > r[1]:
			v.fail("underlay.src_port_range", "low %d above high %d", r[0], r[1])
		default:
			cfg.SrcPortLow, cfg.SrcPortHigh = uint16(r[0]), uint16(r[1])
		}
	}
	if u.Interface != "" {
		if err := checkIfName(u.Interface); err != nil {
			v.fail("underlay.interface", "%v", err)
		}
	}
	cfg.Pprof = fc.Metrics.Pprof
	if fc.Metrics.Listen != nil {
		cfg.MetricsAddr = *fc.Metrics.Listen
		if cfg.MetricsAddr != "" {
			if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil {
				v.fail("metrics.listen", "%q is not host:port", cfg.MetricsAddr)
			}
		}
	}
	v.control(&fc.Control, cfg)
	if len(fc.Network) == 0 {
		v.fail("network", "at least one [[network]] is required")
	}
	vnis := map[uint32]int{}
	taps := map[string]int{}
	bridges := map[string]int{}
	for i := range fc.Network {
		n := v.network(i, &fc.Network[i], cfg)
		if v.err != nil {
			return nil
		}
		if j, dup := vnis[n.VNI]; dup {
			v.fail(fmt.Sprintf("network[%d].vni", i), "VNI %d already used by network[%d]", n.VNI, j)
		}
		if j, dup := taps[n.TAP]; dup {
			v.fail(fmt.Sprintf("network[%d].tap", i), "TAP %q already used by network[%d]", n.TAP, j)
		}
		if j, dup := bridges[n.Bridge]; dup {
			v.fail(fmt.Sprintf("network[%d].bridge", i), "bridge %q already carries network[%d]: two VNIs on one bridge would merge them", n.Bridge, j)
		}
		vnis[n.VNI], taps[n.TAP], bridges[n.Bridge] = i, i, i
		cfg.Networks = append(cfg.Networks, n)
	}
	if v.err != nil {
		return nil
	}
	return cfg
}

// control validates the [control] section into cfg. Without a backend,
// any other key of the section is a mistake: it would be silently unused.
func (v *validator) control(fc *fileControl, cfg *Config) {
	if fc.Backend != nil {
		cfg.ControlBackend = *fc.Backend
	}
	switch cfg.ControlBackend {
	case "etcd":
		if k := fc.evpnKey(); k != "" {
			v.fail("control."+k, "only for backend \"evpn\"")
			return
		}
	case "evpn":
		v.evpn(fc, cfg)
		return
	case "":
		if fc.Backend != nil {
			v.fail("control.backend", "\"\" is not a backend; leave [control] out for none")
			return
		}
		for _, k := range []struct {
			name string
			set  bool
		}{
			{"endpoints", fc.Endpoints != nil}, {"prefix", fc.Prefix != nil},
			{"lease_ttl", fc.LeaseTTL != nil}, {"max_entries", fc.MaxEntries != nil},
			{"ca_file", fc.CAFile != nil}, {"cert_file", fc.CertFile != nil},
			{"key_file", fc.KeyFile != nil}, {"username", fc.Username != nil},
			{"password", fc.Password != nil}, {fc.evpnKey(), fc.evpnKey() != ""},
		} {
			if k.set {
				v.fail("control.backend", "required with control.%s: \"etcd\" or \"evpn\"", k.name)
				return
			}
		}
		return
	default:
		v.fail("control.backend", "%q is not a backend: \"etcd\" or \"evpn\"", cfg.ControlBackend)
		return
	}
	cfg.ControlEndpoints = []string{DefaultControlEndpoint}
	if fc.Endpoints != nil {
		if len(fc.Endpoints) == 0 {
			v.fail("control.endpoints", "empty: leave it out for %q", DefaultControlEndpoint)
		}
		for j, e := range fc.Endpoints {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
				v.fail(fmt.Sprintf("control.endpoints[%d]", j), "%q is not an http:// or https:// URL with a host and port", e)
				return
			}
		}
		cfg.ControlEndpoints = slices.Clone(fc.Endpoints)
	}
	cfg.ControlPrefix = DefaultControlPrefix
	if p := fc.Prefix; p != nil {
		if !strings.HasPrefix(*p, "/") || strings.HasSuffix(*p, "/") && *p != "/" || strings.Contains(*p, "//") {
			v.fail("control.prefix", "%q must start with / and not end with one, such as %q", *p, DefaultControlPrefix)
		}
		cfg.ControlPrefix = strings.TrimSuffix(*p, "/")
	}
	cfg.ControlLeaseTTL = DefaultControlLeaseTTL
	if s := fc.LeaseTTL; s != nil {
		d, err := time.ParseDuration(*s)
		if err != nil || d < minLeaseTTL || d > maxLeaseTTL || d%time.Second != 0 {
			v.fail("control.lease_ttl", "%q is not a whole number of seconds from %v to %v (etcd leases count seconds)", *s, minLeaseTTL, maxLeaseTTL)
		}
		cfg.ControlLeaseTTL = d
	}
	cfg.ControlMaxEntries = DefaultControlMaxEntries
	if p := fc.MaxEntries; p != nil {
		if *p < 1 || *p > 1<<24 {
			v.fail("control.max_entries", "%d out of range 1..%d", *p, 1<<24)
		}
		cfg.ControlMaxEntries = int(*p)
	}
	for _, f := range []struct {
		key string
		in  *string
		out *string
	}{
		{"control.ca_file", fc.CAFile, &cfg.ControlCAFile},
		{"control.cert_file", fc.CertFile, &cfg.ControlCertFile},
		{"control.key_file", fc.KeyFile, &cfg.ControlKeyFile},
	} {
		if f.in != nil {
			if !strings.HasPrefix(*f.in, "/") {
				v.fail(f.key, "%q must be an absolute path", *f.in)
			}
			*f.out = *f.in
		}
	}
	if (cfg.ControlCertFile == "") != (cfg.ControlKeyFile == "") {
		if cfg.ControlCertFile == "" {
			v.fail("control.key_file", "needs control.cert_file too")
		} else {
			v.fail("control.cert_file", "needs control.key_file too")
		}
	}
	if fc.Username != nil {
		cfg.ControlUsername = *fc.Username
	}
	if fc.Password != nil {
		cfg.ControlPassword = *fc.Password
		if cfg.ControlUsername == "" {
			v.fail("control.password", "needs control.username")
		}
	}
	if fc.Username != nil && cfg.ControlUsername == "" {
		v.fail("control.username", "empty: leave it out for no authentication")
	}
}

func (v *validator) network(i int, fn *fileNetwork, cfg *Config) Network {
	local := cfg.Local
	key := func(k string) string { return fmt.Sprintf("network[%d].%s", i, k) }
	n := Network{
		Name:       fn.Name,
		Bridge:     fn.Bridge,
		TAP:        fn.TAP,
		Learning:   true,
		Ageing:     DefaultAgeing,
		MaxEntries: DefaultMaxEntries,
	}
	switch {
	case fn.VNI == nil:
		v.fail(key("vni"), "required")
	case *fn.VNI < 0 || *fn.VNI > encap.MaxVNI:
		v.fail(key("vni"), "%d out of range 0..%d", *fn.VNI, encap.MaxVNI)
	default:
		n.VNI = uint32(*fn.VNI)
	}
	if n.Name == "" {
		n.Name = fmt.Sprintf("vni%d", n.VNI)
	}
	if n.Bridge == "" {
		v.fail(key("bridge"), "required: the bridge to join")
	} else if err := checkIfName(n.Bridge); err != nil {
		v.fail(key("bridge"), "%v", err)
	}
	if n.TAP == "" {
		n.TAP = fmt.Sprintf("vtep%d", n.VNI)
	}
	if err := checkIfName(n.TAP); err != nil {
		v.fail(key("tap"), "%v", err)
	}
	seen := map[netip.Addr]bool{}
	for j, s := range fn.Peers {
		k := fmt.Sprintf("network[%d].peers[%d]", i, j)
		a := v.addr(k, s)
		if v.err != nil {
			break
		}
		switch {
		case a.IsUnspecified() || a.IsMulticast():
			v.fail(k, "%s must be a unicast address", a)
		case local.IsValid() && a.Is4() != local.Is4():
			v.fail(k, "%s is not of the same address family as underlay.local %s", a, local)
		case seen[a]:
			v.fail(k, "%s listed twice", a)
		}
		seen[a] = true
		if a != local {
			n.Peers = append(n.Peers, a)
		}
	}
	if fn.Group != "" {
		g := v.addr(key("group"), fn.Group)
		switch {
		case v.err != nil:
		case !g.IsMulticast():
			v.fail(key("group"), "%s is not a multicast address", g)
		case local.IsValid() && g.Is4() != local.Is4():
			v.fail(key("group"), "%s is not of the same address family as underlay.local %s", g, local)
		}
		n.Group = g
	}
	n.TTL = DefaultMulticastTTL
	if fn.TTL != nil {
		switch {
		case *fn.TTL < 1 || *fn.TTL > 255:
			v.fail(key("ttl"), "%d out of range 1..255", *fn.TTL)
		case fn.Group == "":
			v.fail(key("ttl"), "only applies to a group; set group too")
		default:
			n.TTL = *fn.TTL
		}
	}
	if fn.Learning != nil {
		n.Learning = *fn.Learning
	}
	if fn.Ageing != nil {
		d, err := time.ParseDuration(*fn.Ageing)
		switch {
		case err != nil:
			v.fail(key("ageing"), "%q is not a duration such as \"300s\"", *fn.Ageing)
		case d <= 0:
			v.fail(key("ageing"), "%s must be positive", d)
		default:
			n.Ageing = d
		}
	}
	if fn.MaxEntries != nil {
		if *fn.MaxEntries < 1 || *fn.MaxEntries > 1<<24 {
			v.fail(key("max_entries"), "%d out of range 1..%d", *fn.MaxEntries, 1<<24)
		} else {
			n.MaxEntries = int(*fn.MaxEntries)
		}
	}
	for j, s := range fn.AcceptFrom {
		k := fmt.Sprintf("network[%d].accept_from[%d]", i, j)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Unmap().Prefix(a.Unmap().BitLen())
			}
		}
		switch {
		case err != nil:
			v.fail(k, "%q is not a CIDR prefix such as \"198.18.0.0/24\"", s)
		case p.Addr().Is4In6():
			v.fail(k, "%s: write IPv4 prefixes in IPv4 form", p)
		case local.IsValid() && p.Addr().Is4() != local.Is4():
			v.fail(k, "%s is not of the same address family as underlay.local %s", p, local)
		}
		n.AcceptFrom = append(n.AcceptFrom, p.Masked())
	}
	if fn.FloodRate != nil {
		if *fn.FloodRate < 0 || *fn.FloodRate > 100_000_000 {
			v.fail(key("flood_rate"), "%d out of range 0..100000000 frames/s", *fn.FloodRate)
		} else {
			n.FloodRate = int(*fn.FloodRate)
		}
	}
	switch fn.InnerVLAN {
	case "", "pass":
	case "drop":
		n.DropVLAN = true
	default:
		v.fail(key("inner_vlan"), "%q is not \"pass\" or \"drop\"", fn.InnerVLAN)
	}
	n.Control = cfg.ControlBackend != ""
	if fn.Control != nil {
		if *fn.Control && cfg.ControlBackend == "" {
			v.fail(key("control"), "needs a control plane: set control.backend")
		}
		n.Control = *fn.Control
	}
	n.ARPSuppress = n.Control
	if fn.ARPSuppress != nil {
		if *fn.ARPSuppress && !n.Control {
			v.fail(key("arp_suppress"), "needs the control plane: the table it answers from comes from there")
		}
		n.ARPSuppress = *fn.ARPSuppress
	}
	v.evpnNetwork(key, fn, cfg, &n)
	macs := map[fdb.MAC]bool{}
	for j, s := range fn.Static {
		k := fmt.Sprintf("network[%d].static[%d]", i, j)
		mac, err := fdb.ParseMAC(s.MAC)
		switch {
		case err != nil:
			v.fail(k+".mac", "%q is not a MAC address", s.MAC)
		case !mac.IsUnicast() || mac.IsZero():
			v.fail(k+".mac", "%s is not a unicast MAC address", mac)
		case macs[mac]:
			v.fail(k+".mac", "%s listed twice", mac)
		}
		macs[mac] = true
		if s.Remote == "" {
			v.fail(k+".remote", "required")
			break
		}
		r := v.addr(k+".remote", s.Remote)
		switch {
		case v.err != nil:
		case local.IsValid() && r.Is4() != local.Is4():
			v.fail(k+".remote", "%s is not of the same address family as underlay.local %s", r, local)
		case r == local:
			v.fail(k+".remote", "%s is this VTEP's own address", r)
		case r.IsUnspecified() || r.IsMulticast():
			v.fail(k+".remote", "%s must be a unicast address", r)
		}
		n.Static = append(n.Static, StaticEntry{MAC: mac, Remote: r})
	}
	return n
}

// checkIfName vets a Linux interface name: 1 to 15 bytes, not "." or "..",
// and none of '/', ':', white space or control characters.
func checkIfName(name string) error {
	if name == "" || len(name) > maxIfNameLen || name == "." || name == ".." {
		return fmt.Errorf("%q is not an interface name (1 to %d characters)", name, maxIfNameLen)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == ':' || r == '%' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("%q is not an interface name (no '/', ':', '%%', spaces or control characters)", name)
		}
	}
	return nil
}

// oneLine keeps a message from the TOML parser on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
}
