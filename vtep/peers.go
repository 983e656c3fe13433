package vtep

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vtepd/vtepd/admin"
)

// maxPeers bounds the per-peer table: sources beyond it (a scan, spoofed
// addresses) are counted together under the zero address.
const maxPeers = 4096

// peerStats are the counters of one remote VTEP (or group) address.
type peerStats struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	lastSeen           atomic.Int64 // engine clock of the last datagram received
	learn              rateLimiter  // limits.learn_rate
}

// peerTable maps underlay addresses to their counters. Readers load an
// immutable map; a new address copies it under mu (rare: VTEPs are few).
type peerTable struct {
	mu       sync.Mutex
	m        atomic.Pointer[map[netip.Addr]*peerStats]
	max      int
	overflow peerStats
}

func (t *peerTable) init(max int) {
	t.max = max
	t.m.Store(&map[netip.Addr]*peerStats{})
}

func (t *peerTable) get(a netip.Addr) *peerStats {
	if p := (*t.m.Load())[a]; p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := *t.m.Load()
	if p := m[a]; p != nil {
		return p
	}
	if len(m) >= t.max {
		return &t.overflow
	}
	next := make(map[netip.Addr]*peerStats, len(m)+1)
	for k, v := range m {
		next[k] = v
	}
	p := &peerStats{}
	next[a] = p
	t.m.Store(&next)
	return p
}

// snapshot lists every address with its counters, by address; now is the
// engine clock.
func (t *peerTable) snapshot(now int64) []admin.PeerStats {
	m := *t.m.Load()
	out := make([]admin.PeerStats, 0, len(m)+1)
	row := func(name string, p *peerStats) admin.PeerStats {
		r := admin.PeerStats{
			Addr:      name,
			RxPackets: p.rxPackets.Load(), RxBytes: p.rxBytes.Load(),
			TxPackets: p.txPackets.Load(), TxBytes: p.txBytes.Load(),
			LastSeen: -1,
		}
		if r.RxPackets > 0 {
			r.LastSeen = float64(now-p.lastSeen.Load()) / 1e9
		}
		return r
	}
	addrs := make([]netip.Addr, 0, len(m))
	for a := range m {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		out = append(out, row(a.String(), m[a]))
	}
	if t.overflow.rxPackets.Load()+t.overflow.txPackets.Load() > 0 {
		out = append(out, row("other", &t.overflow))
	}
	return out
}

// peerCache remembers the last address a pipeline counted, so a run of
// datagrams to or from one VTEP costs one map lookup, not one each.
type peerCache struct {
	addr netip.Addr
	p    *peerStats
}

func (c *peerCache) count(t *peerTable, a netip.Addr, bytes int, rx bool) *peerStats {
	if c.p == nil || c.addr != a {
		c.addr, c.p = a, t.get(a)
	}
	if rx {
		c.p.rxPackets.Add(1)
		c.p.rxBytes.Add(uint64(bytes))
	} else {
		c.p.txPackets.Add(1)
		c.p.txBytes.Add(uint64(bytes))
	}
	return c.p
}

// addRx counts packets datagrams of bytes bytes received from a, and
// returns a's stats.
func (c *peerCache) addRx(t *peerTable, a netip.Addr, packets, bytes int) *peerStats {
	if c.p == nil || c.addr != a {
		c.addr, c.p = a, t.get(a)
	}
	c.p.rxPackets.Add(uint64(packets))
	c.p.rxBytes.Add(uint64(bytes))
	return c.p
}

// addTx counts packets datagrams of bytes bytes sent to a.
func (c *peerCache) addTx(t *peerTable, a netip.Addr, packets, bytes int) {
	if c.p == nil || c.addr != a {
		c.addr, c.p = a, t.get(a)
	}
	c.p.txPackets.Add(uint64(packets))
	c.p.txBytes.Add(uint64(bytes))
}
