package admin

import "time"

// DefaultSocket is where vtepd listens and vtepctl calls when the
// configuration's admin.socket is not set.
const DefaultSocket = "/run/vtepd.sock"

// The commands, the values of Request.Cmd.
const (
	CmdFDBShow = "fdb show"   // the FDB, of Request.VNI if set; one entry if MAC is set too
	CmdFDBAdd  = "fdb add"    // a static entry: VNI, MAC, Remote
	CmdFDBDel  = "fdb del"    // an entry, static or learned: VNI, MAC
	CmdStats   = "stats"      // the counters of every VNI
	CmdPeers   = "peers"      // the counters of every remote VTEP
	CmdReload  = "reload"     // re-read the configuration file
	CmdControl = "control"    // the control plane's state
	CmdNeigh   = "neigh show" // the IP-to-MAC table, of Request.VNI if set
)

// Limits both ends keep to.
const (
	// Timeout bounds one exchange on the server's side; the client
	// waits twice as long.
	Timeout = 5 * time.Second
	// MaxRequest is the longest request the server reads.
	MaxRequest = 64 << 10
)

// Request is one command on the admin socket.
type Request struct {
	Cmd    string  `json:"cmd"`
	VNI    *uint32 `json:"vni,omitempty"`
	MAC    string  `json:"mac,omitempty"`
	Remote string  `json:"remote,omitempty"`
}

// Response answers one Request; Error is set when it failed and nothing
// changed (or, for reload, only what Message says).
type Response struct {
	Error   string         `json:"error,omitempty"`
	Message string         `json:"message,omitempty"`
	FDB     []FDBEntry     `json:"fdb,omitempty"`
	Stats   []VNIStats     `json:"stats,omitempty"`
	Peers   []PeerStats    `json:"peers,omitempty"`
	Control *ControlStatus `json:"control,omitempty"`
	Neigh   []NeighEntry   `json:"neigh,omitempty"`
}

// FDBEntry is one row of `vtepctl fdb show`, and of vtepd's GET /fdb.
type FDBEntry struct {
	VNI        uint32  `json:"vni"`
	MAC        string  `json:"mac"`
	Remote     string  `json:"remote"`
	Type       string  `json:"type"`        // "learned", "static" or "control"
	AgeSeconds float64 `json:"age_seconds"` // since last seen; 0 for static entries
}

// VNIStats is one row of `vtepctl stats`.
type VNIStats struct {
	VNI          string            `json:"vni"` // or "unknown" for drops no network owns
	Name         string            `json:"name,omitempty"`
	RxPackets    uint64            `json:"rx_packets"`
	RxBytes      uint64            `json:"rx_bytes"`
	TxPackets    uint64            `json:"tx_packets"`
	TxBytes      uint64            `json:"tx_bytes"`
	FloodPackets uint64            `json:"flood_packets"`
	Drops        map[string]uint64 `json:"drops"` // by reason, those above 0
	FDBLearned   int               `json:"fdb_learned"`
	FDBStatic    int               `json:"fdb_static"`
	FDBMoves     uint64            `json:"fdb_moves"`
	FDBRefused   uint64            `json:"fdb_refused"`
}

// PeerStats is one row of `vtepctl peers`: a remote VTEP or group
// address, or "other" for the sources beyond the table's bound.
type PeerStats struct {
	Addr      string  `json:"addr"`
	RxPackets uint64  `json:"rx_packets"`
	RxBytes   uint64  `json:"rx_bytes"`
	TxPackets uint64  `json:"tx_packets"`
	TxBytes   uint64  `json:"tx_bytes"`
	LastSeen  float64 `json:"last_seen_seconds_ago"` // -1: never heard from
}

// ControlStatus is `vtepctl control`: the control plane's state.
type ControlStatus struct {
	Backend   string    `json:"backend"` // "" when none is configured
	Endpoints []string  `json:"endpoints,omitempty"`
	Local     string    `json:"local,omitempty"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"` // of the last change of Connected
	Revision  int64     `json:"revision"`
	LeaseID   int64     `json:"lease_id"`
	LeaseTTL  float64   `json:"lease_ttl_seconds"`
	Pending   int       `json:"pending"` // local entries not yet written
	// Entries has a row per VNI the control plane serves, sorted.
	Entries []ControlEntries `json:"entries"`
	// Errors holds the non-zero counts of vtep_control_errors_total.
	Errors map[string]uint64 `json:"errors,omitempty"`
	// Sessions are the BGP sessions of the evpn backend, in the order
	// of the configuration.
	Sessions []ControlSession `json:"sessions,omitempty"`
	// RoutesReceived and RoutesAdvertised count the evpn backend's
	// routes by EVPN route type ("2", "3").
	RoutesReceived   map[string]int `json:"routes_received,omitempty"`
	RoutesAdvertised map[string]int `json:"routes_advertised,omitempty"`
}

// ControlSession is one BGP session of the evpn backend.
type ControlSession struct {
	Neighbor string    `json:"neighbor"`
	ASN      uint32    `json:"asn"`
	State    string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Up       bool      `json:"up"`
	Since    time.Time `json:"since"` // of the last change of Up
	// Received counts the neighbor's routes in use, by route type.
	Received map[string]int `json:"received,omitempty"`
	Drops    uint64         `json:"drops"` // times the session went down
	// ConnectRetry is the interval between connection attempts now,
	// which grows while the neighbor stays unreachable.
	ConnectRetry float64 `json:"connect_retry_seconds"`
}

// ControlEntries counts one VNI's control-plane entries by kind: remote
// ones are other VTEPs' (they make the flood list, the control FDB
// entries and the neighbour table), local ones are this VTEP's own.
type ControlEntries struct {
	VNI         uint32 `json:"vni"`
	RemoteVTEPs int    `json:"remote_vteps"`
	RemoteMACs  int    `json:"remote_macs"`
	RemoteIPs   int    `json:"remote_ips"`
	LocalMACs   int    `json:"local_macs"`
	LocalIPs    int    `json:"local_ips"`
}

// NeighEntry is one row of `vtepctl neigh show`: an IP bound to a MAC,
// which vtepd answers ARP or Neighbor Solicitation for.
type NeighEntry struct {
	VNI uint32 `json:"vni"`
	IP  string `json:"ip"`
	MAC string `json:"mac"`
	// Type is "local" (snooped from this host's TAP) or "control" (from
	// another VTEP through the control plane).
	Type string `json:"type"`
}
