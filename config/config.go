package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
)

// Defaults for keys a config file may leave out.
const (
	DefaultPort          = encap.Port
	DefaultSrcPortLow    = 49152 // RFC 7348 §5: the dynamic/private port range
	DefaultSrcPortHigh   = 65535
	DefaultMetricsListen = "127.0.0.1:9476"
	DefaultAdminSocket   = admin.DefaultSocket
	DefaultStateDir      = "/var/lib/vtepd"
	DefaultMoveHold      = 10 * time.Second
	DefaultAgeing        = 300 * time.Second // the kernel's vxlan ageing default
	DefaultMaxEntries    = 16384
	DefaultMulticastTTL  = 1  // BUM traffic stays on the underlay segment unless told otherwise
	maxIfNameLen         = 15 // IFNAMSIZ - 1
	maxQueues            = 64
	maxBusyPoll          = 10 * time.Second
)

// Config is a validated configuration: every address parsed, every default
// filled in. Build one with Load or Parse.
//
// Every field carries two tags for reloads (reload.go): reload, how a
// running vtepd takes a change of it ("live", "restart", or "networks" for
// the list of networks, compared network by network), and key, the TOML key
// that sets it, for messages. A field that is not a setting is tagged
// reload:"-" and listed as such in the tests.
type Config struct {
	Local       netip.Addr `reload:"restart" key:"underlay.local"`
	Port        uint16     `reload:"restart" key:"underlay.port"`
	SrcPortLow  uint16     `reload:"restart" key:"underlay.src_port_range"`
	SrcPortHigh uint16     `reload:"restart" key:"underlay.src_port_range"`
	// Interface holds Local; empty: whichever interface has it.
	Interface string `reload:"restart" key:"underlay.interface"`
	// UDP6ZeroChecksumRx accepts IPv6 datagrams with a zero UDP checksum
	// (RFC 6935), like the kernel's udp6zerocsumrx; off by default.
	UDP6ZeroChecksumRx bool `reload:"restart" key:"underlay.udp6_zero_checksum_rx"`
	// UDPGSO sends each super-frame to a VTEP as trains of datagrams, one
	// sendmsg each (UDP_SEGMENT), from a UDP socket bound to the flow's
	// source port; needs Offload. On by default with Offload.
	UDPGSO bool `reload:"restart" key:"underlay.udp_gso"`
	// MetricsAddr is the HTTP listener's host:port; empty: none.
	MetricsAddr string `reload:"restart" key:"metrics.listen"`
	// Queues is the number of TAP queues and receive sockets, one
	// pipeline each.
	Queues int `reload:"restart" key:"queues"`
	// Offload opens the TAPs with checksum and TCP segmentation offloads
	// (IFF_VNET_HDR): vtepd segments the kernel's TCP super-frames itself
	// and coalesces received TCP segments into super-frames. On by default.
	Offload bool `reload:"restart" key:"offload"`
	// BusyPoll keeps a goroutine polling the TAP queues and the receive
	// sockets for this long after traffic, before they go back to
	// sleeping on the poller: CPU traded for latency, as the kernel's
	// net.core.busy_poll does. 0: off, the default.
	BusyPoll time.Duration `reload:"live" key:"busy_poll"`
	// Pprof serves /debug/pprof/ on the metrics listener.
	Pprof bool `reload:"restart" key:"metrics.pprof"`
	// AdminSocket is the unix socket for vtepctl; empty: none.
	AdminSocket string `reload:"restart" key:"admin.socket"`
	// AdminSocketSet says the file named AdminSocket: if it is taken, that
	// is an error; the default socket being taken only disables vtepctl.
	// It only matters when the socket is opened, at start.
	AdminSocketSet bool       `reload:"-" key:"admin.socket"`
	LogLevel       slog.Level `reload:"live" key:"log_level"`
	// StateDir holds the learned FDB across restarts; empty: none.
	StateDir string `reload:"live" key:"state_dir"`
	// LearnRate caps new MACs learned per second from one remote VTEP,
	// across networks (a token bucket with a second's worth of burst);
	// 0: no limit.
	LearnRate int `reload:"live" key:"limits.learn_rate"`
	// MaxLearned caps learned entries across all networks; 0: no cap.
	MaxLearned int `reload:"live" key:"limits.max_learned"`
	// MaxMoves and MoveHold damp MAC flapping: a MAC that moves between
	// VTEPs more than MaxMoves times within a second stays where it is for
	// MoveHold. MaxMoves 0: no damping.
	MaxMoves int           `reload:"live" key:"limits.max_moves"`
	MoveHold time.Duration `reload:"live" key:"limits.move_hold"`
	// Networks are the [[network]] sections, in file order. A reload
	// matches them by VNI and compares each pair with DiffNetwork.
	Networks     []Network `reload:"networks" key:"network"`
	configSource string    `reload:"-"`
}

// Network is one VNI carried between one local bridge and the peers.
//
// Its fields are tagged like those of Config, with keys relative to the
// [[network]] section. A field tagged reload:"replace" is part of the
// network's identity, its TAP, bridge and group: a reload that changes it
// replaces the network, which loses its learned entries.
type Network struct {
	// Name labels the network in logs and vtepctl stats; default "vni<VNI>".
	Name   string `reload:"live" key:"name"`
	VNI    uint32 `reload:"replace" key:"vni"`
	Bridge string `reload:"replace" key:"bridge"`
	TAP    string `reload:"replace" key:"tap"`
	// Peers is the flood list, this VTEP's own address already removed.
	Peers []netip.Addr `reload:"live" key:"peers"`
	// Group is the multicast group for BUM traffic; invalid when unset.
	Group netip.Addr `reload:"replace" key:"group"`
	// TTL is the hop limit of datagrams sent to Group.
	TTL        int           `reload:"replace" key:"ttl"`
	Learning   bool          `reload:"live" key:"learning"`
	Ageing     time.Duration `reload:"live" key:"ageing"`
	MaxEntries int           `reload:"live" key:"max_entries"`
	Static     []StaticEntry `reload:"live" key:"static"`
	// AcceptFrom lists the underlay prefixes datagrams may come from;
	// empty accepts every source, like the kernel (for labs only).
	AcceptFrom []netip.Prefix `reload:"live" key:"accept_from"`
	// FloodRate caps the BUM frames per second sent to the tunnel; 0: no
	// limit.
	FloodRate int `reload:"live" key:"flood_rate"`
	// DropVLAN (inner_vlan = "drop") discards 802.1Q/802.1ad-tagged inner
	// frames.
	DropVLAN bool `reload:"live" key:"inner_vlan"`
}

// Source is the file the configuration was read from (the name given to
// Parse); a reload reads it again.
func (c *Config) Source() string { return c.configSource }

// StaticEntry pins one MAC of a network to a remote VTEP.
type StaticEntry struct {
	MAC    fdb.MAC
	Remote netip.Addr
}

// The file's shape, as BurntSushi/toml decodes it. Pointers tell "absent"
// from "zero" where a zero value is not the default.
type fileConfig struct {
	Queues   *int64  `toml:"queues"`
	Offload  *bool   `toml:"offload"`
	BusyPoll *string `toml:"busy_poll"`
	LogLevel *string `toml:"log_level"`
	StateDir *string `toml:"state_dir"`
	Limits   struct {
		LearnRate  *int64  `toml:"learn_rate"`
		MaxLearned *int64  `toml:"max_learned"`
		MaxMoves   *int64  `toml:"max_moves"`
		MoveHold   *string `toml:"move_hold"`
	} `toml:"limits"`
	Admin struct {
		Socket *string `toml:"socket"`
	} `toml:"admin"`
	Underlay struct {
		Local        string `toml:"local"`
		Port         *int   `toml:"port"`
		SrcPortRange []int  `toml:"src_port_range"`
		Interface    string `toml:"interface"`
		UDP6ZeroRx   bool   `toml:"udp6_zero_checksum_rx"`
		UDPGSO       *bool  `toml:"udp_gso"`
	} `toml:"underlay"`
	Metrics struct {
		Listen *string `toml:"listen"`
		Pprof  bool    `toml:"pprof"`
	} `toml:"metrics"`
	Network []fileNetwork `toml:"network"`
}

type fileNetwork struct {
	Name       string       `toml:"name"`
	VNI        *int64       `toml:"vni"`
	Bridge     string       `toml:"bridge"`
	TAP        string       `toml:"tap"`
	Peers      []string     `toml:"peers"`
	Group      string       `toml:"group"`
	TTL        *int         `toml:"ttl"`
	Learning   *bool        `toml:"learning"`
	Ageing     *string      `toml:"ageing"`
	MaxEntries *int64       `toml:"max_entries"`
	AcceptFrom []string     `toml:"accept_from"`
	FloodRate  *int64       `toml:"flood_rate"`
	InnerVLAN  string       `toml:"inner_vlan"`
	Static     []fileStatic `toml:"static"`
}

type fileStatic struct {
	MAC    string `toml:"mac"`
	Remote string `toml:"remote"`
}

// Error is a configuration mistake, located in the file.
type Error struct {
	File string
	Line int    // 0 when the key is absent from the file
	Key  string // dotted path, e.g. network[1].vni
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return oneLine(b.String()) // keys and values may hold any character
}

// Load reads and validates the TOML file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a TOML document; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var fc fileConfig
	loc := locateKeys(data)
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: oneLine(pe.Message)}
		}
		return nil, &Error{File: name, Msg: oneLine(err.Error())}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, &Error{File: name, Line: loc.firstLine(k), Key: k, Msg: "unknown key"}
	}
	v := validator{file: name, loc: loc}
	cfg := v.config(&fc)
	if v.err != nil {
		return nil, v.err
	}
	cfg.configSource = name
	return cfg, nil
}

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
	if len(fc.Network) == 0 {
		v.fail("network", "at least one [[network]] is required")
	}
	vnis := map[uint32]int{}
	taps := map[string]int{}
	bridges := map[string]int{}
	for i := range fc.Network {
		n := v.network(i, &fc.Network[i], cfg.Local)
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

func (v *validator) network(i int, fn *fileNetwork, local netip.Addr) Network {
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
