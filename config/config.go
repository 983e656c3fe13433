package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
)

// Defaults for keys a config file may leave out.
const (
	DefaultPort              = encap.Port
	DefaultSrcPortLow        = 49152 // RFC 7348 §5: the dynamic/private port range
	DefaultSrcPortHigh       = 65535
	DefaultMetricsListen     = "127.0.0.1:9476"
	DefaultAdminSocket       = admin.DefaultSocket
	DefaultStateDir          = "/var/lib/vtepd"
	DefaultMoveHold          = 10 * time.Second
	DefaultAgeing            = 300 * time.Second // the kernel's vxlan ageing default
	DefaultMaxEntries        = 16384
	DefaultMulticastTTL      = 1 // BUM traffic stays on the underlay segment unless told otherwise
	DefaultControlEndpoint   = "http://127.0.0.1:2379"
	DefaultControlPrefix     = "/vtepd"
	DefaultControlLeaseTTL   = 10 * time.Second
	DefaultControlMaxEntries = 262144
	DefaultControlListenPort = 179 // BGP (RFC 4271)
	minLeaseTTL              = 2 * time.Second
	maxLeaseTTL              = time.Hour
	maxIfNameLen             = 15 // IFNAMSIZ - 1
	maxQueues                = 64
	maxBusyPoll              = 10 * time.Second
	// DefaultNice is Nice's default.
	DefaultNice = -10
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
	// Nice is the scheduling priority of every vtepd thread (-20..19). A
	// userspace data plane competes for the CPU with the applications
	// whose frames it carries, where the kernel's vxlan runs in softirq
	// ahead of all of them: under overload, at equal weight, the senders
	// take the CPU and vtepd drops what they send. DefaultNice (-10) is
	// what ovs-ctl gives ovs-vswitchd.
	Nice int `reload:"live" key:"nice"`
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
	// ControlBackend is the control plane: "" (none: flood and learn
	// only) or "etcd". The other Control fields are its [control] keys;
	// a change of any of them needs a restart.
	ControlBackend   string        `reload:"restart" key:"control.backend"`
	ControlEndpoints []string      `reload:"restart" key:"control.endpoints"`
	ControlPrefix    string        `reload:"restart" key:"control.prefix"`
	ControlLeaseTTL  time.Duration `reload:"restart" key:"control.lease_ttl"`
	// ControlMaxEntries caps the entries learned from the control plane
	// (VTEPs, MACs and IPs of every VNI).
	ControlMaxEntries int `reload:"restart" key:"control.max_entries"`
	// TLS with a client certificate, and etcd's own authentication.
	ControlCAFile   string `reload:"restart" key:"control.ca_file"`
	ControlCertFile string `reload:"restart" key:"control.cert_file"`
	ControlKeyFile  string `reload:"restart" key:"control.key_file"`
	ControlUsername string `reload:"restart" key:"control.username"`
	ControlPassword string `reload:"restart" key:"control.password"`
	// ControlASN, ControlRouterID and ControlListenPort are BGP EVPN's
	// (backend "evpn"): our AS, the BGP identifier (default: underlay.local,
	// which must then be IPv4) and the TCP port to accept sessions on (0:
	// only connect out).
	ControlASN        uint32     `reload:"restart" key:"control.asn"`
	ControlRouterID   netip.Addr `reload:"restart" key:"control.router_id"`
	ControlListenPort int        `reload:"restart" key:"control.listen_port"`
	// ControlNeighbors are the [[control.neighbor]] sections: the BGP
	// peers (route reflectors, usually) vtepd connects to.
	ControlNeighbors []Neighbor `reload:"restart" key:"control.neighbor"`
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
	// Control puts the network on the control plane: its VTEPs, local
	// MACs and IP bindings are published and the other VTEPs' are
	// installed. Default: on when a control backend is configured.
	Control bool `reload:"live" key:"control"`
	// ARPSuppress answers ARP requests and Neighbor Solicitations read
	// from the TAP for IPs the control plane knows, instead of flooding
	// them. Default: Control.
	ARPSuppress bool `reload:"live" key:"arp_suppress"`
	// RouteTarget and RouteDistinguisher are the network's BGP EVPN route
	// target (default "asn:vni", as FRR derives it) and route
	// distinguisher (default "router_id:vni"), in their text forms; empty
	// without the evpn backend.
	RouteTarget        string `reload:"replace" key:"route_target"`
	RouteDistinguisher string `reload:"replace" key:"route_distinguisher"`
}

// Neighbor is one BGP peer of the evpn backend.
type Neighbor struct {
	Address netip.Addr
	// ASN defaults to control.asn (iBGP).
	ASN uint32
	// Password turns on TCP MD5 signatures (RFC 2385); empty: none.
	Password string
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
	Nice     *int64  `toml:"nice"`
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
	Control fileControl   `toml:"control"`
	Network []fileNetwork `toml:"network"`
}

type fileControl struct {
	Backend    *string  `toml:"backend"`
	Endpoints  []string `toml:"endpoints"`
	Prefix     *string  `toml:"prefix"`
	LeaseTTL   *string  `toml:"lease_ttl"`
	MaxEntries *int64   `toml:"max_entries"`
	CAFile     *string  `toml:"ca_file"`
	CertFile   *string  `toml:"cert_file"`
	KeyFile    *string  `toml:"key_file"`
	Username   *string  `toml:"username"`
	Password   *string  `toml:"password"`
	// BGP EVPN.
	ASN        *int64         `toml:"asn"`
	RouterID   *string        `toml:"router_id"`
	ListenPort *int64         `toml:"listen_port"`
	Neighbor   []fileNeighbor `toml:"neighbor"`
}

type fileNeighbor struct {
	Address  string  `toml:"address"`
	ASN      *int64  `toml:"asn"`
	Password *string `toml:"password"`
}

type fileNetwork struct {
	Name        string       `toml:"name"`
	VNI         *int64       `toml:"vni"`
	Bridge      string       `toml:"bridge"`
	TAP         string       `toml:"tap"`
	Peers       []string     `toml:"peers"`
	Group       string       `toml:"group"`
	TTL         *int         `toml:"ttl"`
	Learning    *bool        `toml:"learning"`
	Ageing      *string      `toml:"ageing"`
	MaxEntries  *int64       `toml:"max_entries"`
	AcceptFrom  []string     `toml:"accept_from"`
	FloodRate   *int64       `toml:"flood_rate"`
	InnerVLAN   string       `toml:"inner_vlan"`
	Control     *bool        `toml:"control"`
	ARPSuppress *bool        `toml:"arp_suppress"`
	RouteTarget *string      `toml:"route_target"`
	RouteDist   *string      `toml:"route_distinguisher"`
	Static      []fileStatic `toml:"static"`
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
