package evpn

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// Defaults of Config.
const (
	DefaultListenPort = 179
	// DefaultHoldTime is the hold time we offer (the session uses the
	// lower of the two offered): FRR's datacenter profile's, so that a
	// peer that vanishes without closing its session is given up within
	// seconds, not BGP's traditional 90 s.
	DefaultHoldTime = 9 * time.Second
	// connectRetry is the first interval of GoBGP's connection attempts,
	// which it jitters between one and two of them; maxConnectRetry the
	// last, as backoff doubles it for a neighbor that stays unreachable
	// (backoff.go). Before the first attempt, a session that went down
	// waits out GoBGP's idle hold time, 5 s (RFC 4271's IdleHoldTimer,
	// which damps a flapping peer); only an operator's reset uses the
	// configurable one.
	connectRetry    = time.Second
	maxConnectRetry = 32 * time.Second
)

// Neighbor is a BGP peer.
type Neighbor struct {
	Address netip.Addr
	Port    uint16 // 0: 179 (tests run speakers side by side)
	ASN     uint32 // 0: Config.ASN (iBGP)
	// Password turns on TCP MD5 signatures (RFC 2385).
	Password string
}

// Config configures a Backend.
type Config struct {
	ASN uint32
	// RouterID is the BGP identifier (default: Local, if IPv4).
	RouterID netip.Addr
	// ListenPort accepts sessions on that TCP port; 0: only connect out,
	// -1: DefaultListenPort.
	ListenPort int
	// ListenAddresses are those to listen on (default: every address,
	// IPv4 and IPv6).
	ListenAddresses []string
	Neighbors       []Neighbor
	HoldTime        time.Duration // default DefaultHoldTime

	// Local is this VTEP's underlay address: the next hop and tunnel
	// endpoint of our routes. Port is every VTEP's VXLAN port (EVPN does
	// not carry one; default control.DefaultPort).
	Local netip.Addr
	Port  uint16
	// MaxEntries caps the routes kept (default control.DefaultMaxEntries).
	MaxEntries int

	Sink control.Sink
	Log  *slog.Logger
}

// Backend is the BGP EVPN control.Backend.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	badLog control.LogLimiter

	// C holds the counters that Status and package metrics read.
	C control.Counters

	// mu guards the desired local state, which the engine's calls change
	// and the writer reads.
	mu      sync.Mutex
	vnis    map[uint32]vniParams
	macs    map[macKey]int64                   // our MACs: sequence number, -1 until advertised
	ips     map[ipKey]fdb.MAC                  // our IP bindings
	ipsOf   map[macKey]map[netip.Addr]struct{} // ips by MAC
	dirty   map[advKey]struct{}                // what the writer must look at again
	wake    chan struct{}                      // writer
	in      chan struct{}                      // importer: paths queued, or VNIs changed
	queue   []pathEvent                        // paths from gobgp, not yet imported
	rejoin  map[uint32]bool                    // VNIs joined or left since the importer's last pass
	advN    [2]int                             // routes advertised now, of types 2 and 3
	pending int                                // len(dirty), for Status

	// ribMu guards the received routes and the view made of them. Lock
	// order: ribMu, then mu.
	ribMu sync.Mutex
	rib   *rib
	view  *control.State

	stMu     sync.Mutex
	sessions []sessionState
	since    time.Time // of the last change of Connected

	// started, when set, is called once the BGP server has started
	// (tests: GoBGP's StartBgp sets package globals, so that two servers
	// in one process must not start at once).
	started func()
}

// advKey names one route of ours: the type-3 route of a VNI, the type-2
// route of a MAC, or the type-2 route binding an IP to its MAC.
type advKey struct {
	typ uint8
	vni uint32
	mac fdb.MAC
	ip  netip.Addr
}

type sessionState struct {
	n     Neighbor
	state string
	up    bool
	since time.Time
	drops uint64
	retry time.Duration // the connect-retry interval in force
}

var (
	_ control.Backend       = (*Backend)(nil)
	_ control.OptionsJoiner = (*Backend)(nil)
)

// New checks cfg; it does not connect.
func New(cfg Config) (*Backend, error) {
	if cfg.ASN == 0 {
		return nil, errors.New("control: evpn: no AS number")
	}
	if !cfg.Local.IsValid() {
		return nil, errors.New("control: evpn: no local underlay address")
	}
	cfg.Local = cfg.Local.Unmap()
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = cfg.Local
	}
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("control: evpn: router id %v is not IPv4", cfg.RouterID)
	}
	if cfg.ListenPort < 0 {
		cfg.ListenPort = DefaultListenPort
	}
	if cfg.ListenPort == 0 && len(cfg.Neighbors) == 0 {
		return nil, errors.New("control: evpn: no neighbor and no listening port")
	}
	if cfg.HoldTime == 0 {
		cfg.HoldTime = DefaultHoldTime
	}
	if cfg.HoldTime < 3*time.Second {
		return nil, fmt.Errorf("control: evpn: hold time %v below 3s (RFC 4271)", cfg.HoldTime)
	}
	if cfg.Port == 0 {
		cfg.Port = control.DefaultPort
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = control.DefaultMaxEntries
	}
	if cfg.Sink == nil {
		return nil, errors.New("control: no sink")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{
		cfg:    cfg,
		log:    cfg.Log.With("control", "evpn"),
		vnis:   map[uint32]vniParams{},
		macs:   map[macKey]int64{},
		ips:    map[ipKey]fdb.MAC{},
		ipsOf:  map[macKey]map[netip.Addr]struct{}{},
		dirty:  map[advKey]struct{}{},
		wake:   make(chan struct{}, 1),
		in:     make(chan struct{}, 1),
		rejoin: map[uint32]bool{},
		rib:    newRIB(),
		view:   control.NewState(),
		since:  time.Now(),
	}
	for _, n := range cfg.Neighbors {
		if n.ASN == 0 {
			n.ASN = cfg.ASN
		}
		b.sessions = append(b.sessions, sessionState{n: n, state: "idle", since: time.Now(), retry: connectRetry})
	}
	return b, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// markLocked makes the writer look at k again. b.mu is held.
func (b *Backend) markLocked(k advKey) {
	b.dirty[k] = struct{}{}
	b.pending = len(b.dirty)
	signal(b.wake)
}

// Join implements control.Backend, with the default route target and
// distinguisher (asn:vni, router_id:vni); vtepd's engine calls JoinWith.
func (b *Backend) Join(vni uint32) {
	b.JoinWith(vni, control.VNIOptions{
		RouteTarget:        fmt.Sprintf("%d:%d", b.cfg.ASN, vni),
		RouteDistinguisher: b.cfg.RouterID.String() + ":" + strconv.FormatUint(uint64(vni), 10),
	})
}

// JoinWith implements control.OptionsJoiner. Options that do not parse
// (the configuration checks them first) leave the VNI out, and say so.
func (b *Backend) JoinWith(vni uint32, o control.VNIOptions) {
	p, err := parseParams(o)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.log.Error("control: VNI not joined", "vni", vni, "err", err)
		return
	}
	if old, ok := b.vnis[vni]; ok && old.rtID == p.rtID && old.rd.String() == p.rd.String() {
		return
	}
	b.vnis[vni] = p
	// Every route of ours in the VNI changes (its RD or RT did, or it is
	// new).
	b.markLocked(advKey{typ: typeIMET, vni: vni})
	for k := range b.macs {
		if k.vni == vni {
			b.markLocked(advKey{typ: typeMACIP, vni: vni, mac: k.mac})
		}
	}
	for k := range b.ips {
		if k.vni == vni {
			b.markLocked(advKey{typ: typeMACIP, vni: vni, ip: k.ip})
		}
	}
	b.rejoin[vni] = true
	signal(b.in)
}

// Leave implements control.Backend.
func (b *Backend) Leave(vni uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.vnis[vni]; !ok {
		return
	}
	delete(b.vnis, vni)
	b.markLocked(advKey{typ: typeIMET, vni: vni})
	for k := range b.macs {
		if k.vni == vni {
			delete(b.macs, k)
			b.markLocked(advKey{typ: typeMACIP, vni: vni, mac: k.mac})
		}
	}
	for k := range b.ips {
		if k.vni == vni {
			b.unbindLocked(k)
			b.markLocked(advKey{typ: typeMACIP, vni: vni, ip: k.ip})
		}
	}
	b.rejoin[vni] = true
	signal(b.in)
}

// SetMAC implements control.Backend. The sequence number is picked when
// the writer advertises it, from the routes received for it then.
func (b *Backend) SetMAC(vni uint32, mac fdb.MAC) {
	k := macKey{vni, mac}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.macs[k]; ok {
		return
	}
	b.macs[k] = -1
	b.markLocked(advKey{typ: typeMACIP, vni: vni, mac: mac})
	b.markIPsLocked(k)
}

// markIPsLocked marks the IP routes that name k's MAC: they are advertised
// only while the MAC is ours.
func (b *Backend) markIPsLocked(k macKey) {
	for ip := range b.ipsOf[k] {
		b.markLocked(advKey{typ: typeMACIP, vni: k.vni, ip: ip})
	}
}

// bindLocked and unbindLocked keep ips and its index ipsOf together.
func (b *Backend) bindLocked(k ipKey, mac fdb.MAC) {
	b.unbindLocked(k)
	b.ips[k] = mac
	mk := macKey{k.vni, mac}
	if b.ipsOf[mk] == nil {
		b.ipsOf[mk] = map[netip.Addr]struct{}{}
	}
	b.ipsOf[mk][k.ip] = struct{}{}
}

func (b *Backend) unbindLocked(k ipKey) {
	mac, ok := b.ips[k]
	if !ok {
		return
	}
	delete(b.ips, k)
	mk := macKey{k.vni, mac}
	delete(b.ipsOf[mk], k.ip)
	if len(b.ipsOf[mk]) == 0 {
		delete(b.ipsOf, mk)
	}
}

// DelMAC implements control.Backend.
func (b *Backend) DelMAC(vni uint32, mac fdb.MAC) {
	k := macKey{vni, mac}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropMACLocked(k)
}

func (b *Backend) dropMACLocked(k macKey) {
	if _, ok := b.macs[k]; !ok {
		return
	}
	delete(b.macs, k)
	b.markLocked(advKey{typ: typeMACIP, vni: k.vni, mac: k.mac})
	b.markIPsLocked(k)
}

// SetIP implements control.Backend.
func (b *Backend) SetIP(vni uint32, ip netip.Addr, mac fdb.MAC) {
	k := ipKey{vni, ip.Unmap()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.ips[k]; ok && old == mac {
		return
	}
	b.bindLocked(k, mac)
	b.markLocked(advKey{typ: typeMACIP, vni: vni, ip: k.ip})
}

// DelIP implements control.Backend.
func (b *Backend) DelIP(vni uint32, ip netip.Addr) {
	k := ipKey{vni, ip.Unmap()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ips[k]; !ok {
		return
	}
	b.unbindLocked(k)
	b.markLocked(advKey{typ: typeMACIP, vni: vni, ip: k.ip})
}

// Status implements control.Backend.
func (b *Backend) Status() control.Status {
	st := control.Status{
		Backend:          "evpn",
		Local:            b.cfg.Local.String(),
		Errors:           b.C.ErrorMap(),
		RoutesReceived:   map[string]int{"2": 0, "3": 0},
		RoutesAdvertised: map[string]int{},
	}
	for _, n := range b.cfg.Neighbors {
		st.Endpoints = append(st.Endpoints, n.Address.String())
	}
	per := control.EntryTable{}
	b.mu.Lock()
	for vni := range b.vnis {
		per.VNI(vni)
	}
	for k := range b.macs {
		per.VNI(k.vni).LocalMACs++
	}
	for k := range b.ips {
		per.VNI(k.vni).LocalIPs++
	}
	st.Pending = b.pending
	st.RoutesAdvertised["2"], st.RoutesAdvertised["3"] = b.advN[0], b.advN[1]
	b.mu.Unlock()
	recv := map[string][2]int{}
	b.ribMu.Lock()
	per.Remote(b.view)
	for peer, n := range b.rib.count {
		recv[peer] = n
		st.RoutesReceived["2"] += n[0]
		st.RoutesReceived["3"] += n[1]
	}
	b.ribMu.Unlock()
	b.stMu.Lock()
	for _, s := range b.sessions {
		n := recv[s.n.Address.String()]
		st.Sessions = append(st.Sessions, control.SessionStatus{
			Neighbor: s.n.Address.String(), ASN: s.n.ASN, State: s.state, Up: s.up,
			Since: s.since, Drops: s.drops, ConnectRetry: s.retry.Seconds(),
			Received: map[string]int{"2": n[0], "3": n[1]},
		})
		st.Connected = st.Connected || s.up
	}
	st.Since = b.since
	b.stMu.Unlock()
	st.Entries = per.Sorted()
	return st
}

// refuse counts and logs (at a limited rate) a refused route.
func (b *Backend) refuse(err error, peer string) {
	r := reasonOf(err)
	b.C.Error(r)
	if ok, dropped := b.badLog.Allow(); ok {
		b.log.Warn("control: route refused", "reason", r.String(), "neighbor", peer, "err", err, "unlogged", dropped)
	}
}
