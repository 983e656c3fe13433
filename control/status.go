package control

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Reason classifies a control-plane error: a refused key or value, or a
// failed request. The names are the label values of
// vtep_control_errors_total{reason}.
type Reason uint8

const (
	ReasonKey       Reason = iota // a key outside the layout
	ReasonJSON                    // a value that is not the expected JSON
	ReasonMAC                     // a bad MAC, in a key or a value
	ReasonIP                      // a bad IP, in a key or a value
	ReasonFamily                  // a VTEP of another address family than ours
	ReasonGroupMAC                // a broadcast or multicast MAC where a host's is due
	ReasonVNI                     // a VNI that is not served here
	ReasonCap                     // an entry beyond the cap on entries
	ReasonRequest                 // a request to the store that failed
	ReasonLease                   // our lease was lost (expired or revoked)
	ReasonCompacted               // the watch fell behind a compaction
	ReasonPort                    // a VTEP on another UDP port than ours
	ReasonRT                      // a BGP route whose route target is not its VNI's
	ReasonRoute                   // a BGP route that cannot be read (no label, no next hop, ...)
	NumReasons
)

var reasonNames = [NumReasons]string{
	"bad_key", "bad_json", "bad_mac", "bad_ip", "wrong_family", "group_mac",
	"unknown_vni", "cap", "request", "lease_lost", "compacted", "wrong_port",
	"wrong_rt", "bad_route",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Counters are a backend's cumulative counters, safe for concurrent use; a
// metrics exporter reads them directly.
type Counters struct {
	Errors [NumReasons]atomic.Uint64
	// Syncs counts full reads handed to the sink; Events counts deltas.
	Syncs  atomic.Uint64
	Events atomic.Uint64
	// Puts, Txns and Deletes count the writes this backend sent.
	Puts    atomic.Uint64
	Txns    atomic.Uint64
	Deletes atomic.Uint64
	// Leases counts leases granted (one more after each loss).
	Leases atomic.Uint64
}

// Error counts one error of reason r.
func (c *Counters) Error(r Reason) { c.Errors[r].Add(1) }

// VNIEntries counts the entries of one VNI by kind.
type VNIEntries struct {
	VNI         uint32 `json:"vni"`
	RemoteVTEPs int    `json:"remote_vteps"`
	RemoteMACs  int    `json:"remote_macs"`
	RemoteIPs   int    `json:"remote_ips"`
	LocalMACs   int    `json:"local_macs"`
	LocalIPs    int    `json:"local_ips"`
}

// EntryTable gathers a Status's Entries, one per VNI, as a backend counts
// its local and remote entries.
type EntryTable map[uint32]*VNIEntries

// VNI returns the counts of vni, creating them.
func (t EntryTable) VNI(vni uint32) *VNIEntries {
	e := t[vni]
	if e == nil {
		e = &VNIEntries{VNI: vni}
		t[vni] = e
	}
	return e
}

// Remote sets the remote counts of every VNI of view.
func (t EntryTable) Remote(view *State) {
	for vni, v := range view.VNIs {
		e := t.VNI(vni)
		e.RemoteVTEPs, e.RemoteMACs, e.RemoteIPs = len(v.VTEPs), len(v.MACs), len(v.IPs)
	}
}

// Sorted returns the counts sorted by VNI.
func (t EntryTable) Sorted() []VNIEntries {
	out := make([]VNIEntries, 0, len(t))
	for _, e := range t {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VNI < out[j].VNI })
	return out
}

// Status is a snapshot of a backend, for `vtepctl control` and metrics.
type Status struct {
	Backend   string    `json:"backend"`
	Endpoints []string  `json:"endpoints"`
	Local     string    `json:"local"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"` // of the last connected/disconnected change
	Revision  int64     `json:"revision"`
	LeaseID   int64     `json:"lease_id"`
	// Entries is sorted by VNI and lists every joined VNI.
	Entries []VNIEntries `json:"entries"`
	// Errors holds the non-zero error counts by Reason name.
	Errors map[string]uint64 `json:"errors,omitempty"`
	// Pending is the number of local entries not yet written.
	Pending int `json:"pending"`
	// Sessions are a BGP backend's sessions, one per neighbor, in the
	// order of the configuration; nil for a store.
	Sessions []SessionStatus `json:"sessions,omitempty"`
	// RoutesReceived and RoutesAdvertised count a BGP backend's EVPN
	// routes by route type ("2", "3"): those received and kept (usable
	// or not), and those this VTEP advertises.
	RoutesReceived   map[string]int `json:"routes_received,omitempty"`
	RoutesAdvertised map[string]int `json:"routes_advertised,omitempty"`
}

// SessionStatus is one BGP session.
type SessionStatus struct {
	Neighbor string `json:"neighbor"`
	ASN      uint32 `json:"asn"`
	// State is the BGP finite state machine's: idle, connect, active,
	// opensent, openconfirm or established.
	State string    `json:"state"`
	Up    bool      `json:"up"`
	Since time.Time `json:"since"` // of the last change of Up
	// Received counts the routes kept from this neighbor, by route type.
	Received map[string]int `json:"received,omitempty"`
	// Drops counts the times an established session went down.
	Drops uint64 `json:"drops"`
	// ConnectRetry is the interval between connection attempts now: it
	// grows while the neighbor stays unreachable.
	ConnectRetry float64 `json:"connect_retry_seconds"`
}

// VNIOptions are the settings of one VNI that a backend may need besides
// its number: BGP EVPN's route target and route distinguisher, as the
// configuration spells them ("65000:200", "198.18.0.1:200").
type VNIOptions struct {
	RouteTarget        string
	RouteDistinguisher string
}

// OptionsJoiner is a Backend with per-VNI settings. The engine calls
// JoinWith instead of Join when the backend has it, so that a VNI added by
// a reload comes with its settings.
type OptionsJoiner interface {
	JoinWith(vni uint32, o VNIOptions)
}

// ErrorMap returns the non-zero error counts by reason name.
func (c *Counters) ErrorMap() map[string]uint64 {
	m := make(map[string]uint64)
	for r := Reason(0); r < NumReasons; r++ {
		if n := c.Errors[r].Load(); n > 0 {
			m[r.String()] = n
		}
	}
	return m
}

// LogLimiter lets a few log lines a second through and counts the rest:
// what a backend logs about refused keys or routes, which a hostile peer
// could send by the thousand.
type LogLimiter struct {
	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

// logsPerSecond is how many lines a LogLimiter lets through a second.
const logsPerSecond = 5

// Allow reports whether a line may be logged now, and how many were held
// back since the last one that was.
func (r *LogLimiter) Allow() (ok bool, dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.window) >= time.Second {
		r.window, r.n = now, 0
		dropped, r.dropped = r.dropped, 0
	}
	if r.n >= logsPerSecond {
		r.dropped++
		return false, 0
	}
	r.n++
	return true, dropped
}
