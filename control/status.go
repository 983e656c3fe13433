package control

import (
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
	NumReasons
)

var reasonNames = [NumReasons]string{
	"bad_key", "bad_json", "bad_mac", "bad_ip", "wrong_family", "group_mac",
	"unknown_vni", "cap", "request", "lease_lost", "compacted", "wrong_port",
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
