package vtep

// The engine's side of the control plane (package control): it is the
// backend's Sink, turning remote VTEPs into flood lists, remote MACs into
// control FDB entries and remote IP bindings into the table that ARP and
// ND suppression answers from; and it feeds the backend this host's own
// MACs and IP bindings, seen in what the TAPs hand over.
//
// Design notes.
//
// The data path must not take the backend's mutex per frame. Each TX
// pipeline keeps a small direct-mapped cache of the source MACs it has
// reported (localCache); a MAC goes to its network's local table (and from
// there, the first time, to the backend) only when the cache misses, when
// the report is older than localRefresh, or when the table's generation
// changed because a MAC was forgotten. The local table ages MACs and IPs
// out with the network's ageing time and withdraws them then: a MAC is
// published once when first seen and again only if it moves or goes.
//
// The remote view is kept whole (installed): when a network is opened
// again (a reload that replaces it, with the same VNI) or a static entry
// that hid a route goes, its routes are installed again from it.

import (
	"cmp"
	"context"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/neigh"
)

// localRefresh is how often a pipeline tells its network's local table
// that a MAC is still there: a fraction of any sensible ageing time.
const localRefresh = int64(2 * time.Second)

// controlPlane connects the engine to a control.Backend.
type controlPlane struct {
	e *Engine
	b control.Backend

	mu        sync.Mutex
	installed *control.State // the remote view, as last synced and updated
	joined    map[uint32]bool
}

// SetControl connects the engine to a control-plane backend, whose Sink
// must be the engine's (ControlSink). Call it once, before Run; Run runs
// the backend and stops it on shutdown, when it withdraws this VTEP.
func (e *Engine) SetControl(b control.Backend) {
	e.ctl.b = b
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.nets.Load().order {
		e.ctl.join(n)
	}
}

// ControlSink is the Sink a backend for this engine delivers to.
func (e *Engine) ControlSink() control.Sink { return &e.ctl }

// ControlStatus is the state of the control plane, for vtepctl.
func (e *Engine) ControlStatus() admin.ControlStatus {
	if e.ctl.b == nil {
		return admin.ControlStatus{Entries: []admin.ControlEntries{}}
	}
	st := e.ctl.b.Status()
	out := admin.ControlStatus{
		Backend: st.Backend, Endpoints: st.Endpoints, Local: st.Local,
		Connected: st.Connected, Since: st.Since, Revision: st.Revision,
		LeaseID: st.LeaseID, Pending: st.Pending, Errors: st.Errors,
		LeaseTTL: e.cfg.Load().ControlLeaseTTL.Seconds(),
		Entries:  make([]admin.ControlEntries, 0, len(st.Entries)),
	}
	for _, v := range st.Entries {
		out.Entries = append(out.Entries, admin.ControlEntries(v))
	}
	out.RoutesReceived, out.RoutesAdvertised = st.RoutesReceived, st.RoutesAdvertised
	for _, s := range st.Sessions {
		out.Sessions = append(out.Sessions, admin.ControlSession(s))
	}
	return out
}

// join registers a network with the backend if it is on the control plane,
// and withdraws it if it is not (any more). Callers hold e.mu.
func (c *controlPlane) join(n *network) {
	if c.b == nil {
		return
	}
	on := n.cfg.Load().Control
	c.mu.Lock()
	was := c.joined[n.vni]
	if on {
		c.joined[n.vni] = true
	} else {
		delete(c.joined, n.vni)
	}
	c.mu.Unlock()
	switch {
	case on && !was:
		if j, ok := c.b.(control.OptionsJoiner); ok {
			nc := n.cfg.Load()
			j.JoinWith(n.vni, control.VNIOptions{RouteTarget: nc.RouteTarget, RouteDistinguisher: nc.RouteDistinguisher})
		} else {
			c.b.Join(n.vni)
		}
		c.restore(n) // the routes of the view kept meanwhile
	case !on && was:
		c.b.Leave(n.vni)
		n.local.forget()
		c.withdraw(n)
	}
}

// withdraw takes a network that leaves the control plane off its routes,
// remote VTEPs and IP bindings at once. The backend's next Sync, which
// no longer has the VNI, would do it too, but only once the store answers:
// until then the routes, which outrank learned entries, would still steer
// a network that is meant to flood and learn. The view is kept, so that
// control turned on again during an outage restores it.
func (c *controlPlane) withdraw(n *network) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.installed.VNIs[n.vni]; v != nil {
		for mac, vtep := range v.MACs {
			c.e.fdb.DeleteControl(n.vni, mac, vtep)
		}
	}
	clear(n.remote.vteps)
	n.remote.mu.Lock()
	clear(n.remote.ips)
	n.remote.mu.Unlock()
	c.floodListLocked(n)
}

// leave withdraws a network that is removed. Callers hold e.mu.
func (c *controlPlane) leave(vni uint32) {
	if c.b == nil {
		return
	}
	c.mu.Lock()
	was := c.joined[vni]
	delete(c.joined, vni)
	c.mu.Unlock()
	if was {
		c.b.Leave(vni)
	}
}

// bigSync is the size of a full read after which the memory it took is
// given back to the system: the read itself, and the views decoded from
// it, are garbage once the sink has applied it, but an idle vtepd would
// not collect them for minutes.
const bigSync = 10000

// Sync implements control.Sink.
func (c *controlPlane) Sync(s *control.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyLocked(control.Diff(c.installed, s))
	c.installed = s
	if s.Len() >= bigSync {
		// After the backend has dropped the read, too.
		time.AfterFunc(time.Second, debug.FreeOSMemory)
	}
}

// Update implements control.Sink.
func (c *controlPlane) Update(evs []control.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyLocked(evs)
	c.installed.Apply(evs)
}

// applyLocked carries events into the engine's tables; c.mu is held.
// Events of a VNI that no network has (it is being removed) are dropped:
// the network that replaces it is restored from c.installed. So are those
// of a network off the control plane (events the backend sent before it
// left), which is restored from c.installed if it comes back.
func (c *controlPlane) applyLocked(evs []control.Event) {
	tbl := c.e.nets.Load()
	floods := map[*network]bool{}
	for _, ev := range evs {
		n := tbl.byVNI[ev.VNI]
		if n == nil || !n.cfg.Load().Control {
			continue
		}
		switch ev.Kind {
		case control.VTEPJoined:
			n.remote.vteps[ev.VTEP] = ev.Port
			floods[n] = true
		case control.VTEPLeft:
			delete(n.remote.vteps, ev.VTEP)
			floods[n] = true
		case control.MACAdded:
			c.addMAC(n, ev.MAC, ev.VTEP)
			n.local.dropMAC(ev.MAC) // it moved away from us, if it was ours
		case control.MACRemoved:
			c.e.fdb.DeleteControl(n.vni, ev.MAC, ev.VTEP)
		case control.IPAdded:
			n.remote.mu.Lock()
			n.remote.ips[ev.IP] = ev.MAC
			n.remote.mu.Unlock()
			n.local.dropIP(ev.IP)
		case control.IPRemoved:
			n.remote.mu.Lock()
			delete(n.remote.ips, ev.IP)
			n.remote.mu.Unlock()
		}
	}
	for n := range floods {
		c.floodListLocked(n)
	}
}

func (c *controlPlane) addMAC(n *network, mac fdb.MAC, vtep netip.Addr) {
	if _, err := c.e.fdb.AddControl(n.vni, mac, vtep); err != nil {
		// A static entry outranks the route; the cap is counted by the
		// FDB; a network being removed has no entries to add to.
		c.e.log.Debug("control route not installed", "vni", n.vni, "mac", mac, "vtep", vtep, "err", err)
	}
}

// restore installs the remote view of n's VNI into n and the FDB: for a
// network just opened, or one whose static entries changed. Callers hold
// e.mu; n need not be published yet.
func (c *controlPlane) restore(n *network) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.installed.VNIs[n.vni]
	if v == nil || !n.cfg.Load().Control {
		return
	}
	for vtep, port := range v.VTEPs {
		n.remote.vteps[vtep] = port
	}
	for mac, vtep := range v.MACs {
		c.addMAC(n, mac, vtep)
	}
	n.remote.mu.Lock()
	for ip, mac := range v.IPs {
		n.remote.ips[ip] = mac
	}
	n.remote.mu.Unlock()
	c.floodListLocked(n)
}

// run runs the backend until ctx ends; it withdraws this VTEP then.
func (c *controlPlane) run(ctx context.Context) {
	if err := c.b.Run(ctx); err != nil && ctx.Err() == nil {
		c.e.log.Error("control plane stopped", "err", err)
	}
}

// expire ages out the local MACs and IPs of every network.
func (c *controlPlane) expire(now int64) {
	if c.b == nil {
		return
	}
	for _, n := range c.e.nets.Load().order {
		n.local.expire(c.b, n.vni, now, int64(n.cfg.Load().Ageing))
	}
}

// remoteView is what the control plane says about one network: the other
// VTEPs (guarded by the controlPlane's mu) and the IP bindings that ARP
// and ND suppression answer from (guarded by its own mu, which the TX
// pipelines take, for ARP and ND only).
type remoteView struct {
	vteps map[netip.Addr]uint16
	mu    sync.RWMutex
	ips   map[netip.Addr]fdb.MAC
}

func (r *remoteView) init() {
	r.vteps = map[netip.Addr]uint16{}
	r.ips = map[netip.Addr]fdb.MAC{}
}

// lookup returns the MAC the control plane knows for ip.
func (r *remoteView) lookup(ip netip.Addr) (fdb.MAC, bool) {
	r.mu.RLock()
	mac, ok := r.ips[ip]
	r.mu.RUnlock()
	return mac, ok
}

// setFloodList makes n's flood list, after its configuration changed.
func (c *controlPlane) setFloodList(n *network) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.floodListLocked(n)
}

// floodListLocked makes the flood list: the static peers and, on the
// control plane, every VTEP it has for the network but this one. c.mu
// guards n.remote.vteps, and makes the last list stored the one built
// from the latest configuration and VTEPs.
func (c *controlPlane) floodListLocked(n *network) {
	nc := n.cfg.Load()
	local := c.e.cfg.Load().Local
	list := slices.Clone(nc.Peers)
	if nc.Control {
		for vtep := range n.remote.vteps {
			if vtep != local && !slices.Contains(list, vtep) {
				list = append(list, vtep)
			}
		}
		slices.SortFunc(list, netip.Addr.Compare)
	}
	n.floodList.Store(&list)
}

// localTable is a network's own MACs and IP bindings, as published.
type localTable struct {
	// gen changes when a MAC is forgotten, so that the pipelines' caches
	// report it again when it shows up.
	gen  atomic.Uint32
	mu   sync.Mutex
	macs map[fdb.MAC]int64 // last seen
	ips  map[netip.Addr]localIP
	max  int
}

// setMax changes the cap on MACs (and on IPs) published; what is
// published already stays.
func (l *localTable) setMax(max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max
}

type localIP struct {
	mac  fdb.MAC
	seen int64
}

func (l *localTable) init(max int) {
	l.macs = map[fdb.MAC]int64{}
	l.ips = map[netip.Addr]localIP{}
	l.max = max
}

// seenMAC records that mac is behind the TAP at now, publishing it the
// first time. Beyond max MACs, new ones are not published (a host that
// sprays source MACs must not flood the store).
func (l *localTable) seenMAC(b control.Backend, vni uint32, mac fdb.MAC, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.macs[mac]; !ok {
		if len(l.macs) >= l.max {
			return
		}
		b.SetMAC(vni, mac)
	}
	l.macs[mac] = now
}

// seenIP records a binding snooped from the TAP, publishing it when it is
// new or its MAC changed.
func (l *localTable) seenIP(b control.Backend, vni uint32, ip netip.Addr, mac fdb.MAC, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.ips[ip]; !ok || old.mac != mac {
		if !ok && len(l.ips) >= l.max {
			return
		}
		b.SetIP(vni, ip, mac)
	}
	l.ips[ip] = localIP{mac, now}
}

// dropMAC forgets mac, which another VTEP now has; the backend has
// forgotten it already. If it comes back, it is published again.
func (l *localTable) dropMAC(mac fdb.MAC) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.macs[mac]; ok {
		delete(l.macs, mac)
		l.gen.Add(1)
	}
}

func (l *localTable) dropIP(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ips, ip)
}

// forget drops everything, for a network leaving the control plane (the
// backend withdraws it all on Leave).
func (l *localTable) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.macs)
	clear(l.ips)
	l.gen.Add(1)
}

// expire withdraws what has not been seen for ageing.
func (l *localTable) expire(b control.Backend, vni uint32, now, ageing int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gone := false
	for mac, seen := range l.macs {
		if now-seen >= ageing {
			delete(l.macs, mac)
			b.DelMAC(vni, mac)
			gone = true
		}
	}
	for ip, r := range l.ips {
		if now-r.seen >= ageing {
			delete(l.ips, ip)
			b.DelIP(vni, ip)
		}
	}
	if gone {
		l.gen.Add(1)
	}
}

// localCache is a TX pipeline's memory of the source MACs it reported
// lately, so that a frame from a known MAC costs a few loads.
type localCache struct {
	slots [localCacheSlots]localSlot
}

const localCacheSlots = 256

type localSlot struct {
	mac      fdb.MAC
	gen      uint32
	reported int64
}

// seen reports mac to n's local table unless it did so lately.
func (lc *localCache) seen(b control.Backend, n *network, mac fdb.MAC, gen uint32, now int64) {
	h := uint(mac[3]) ^ uint(mac[4])<<1 ^ uint(mac[5])*31 ^ uint(mac[2])<<3
	s := &lc.slots[h%localCacheSlots]
	if s.mac == mac && s.gen == gen && now-s.reported < localRefresh && s.reported != 0 {
		return
	}
	n.local.seenMAC(b, n.vni, mac, now)
	*s = localSlot{mac: mac, gen: gen, reported: max(now, 1)}
}

// controlFrame does the control plane's work on a frame read from the TAP:
// it reports the source MAC, snoops ARP and ND for bindings, and answers
// what it can for the network (arp_suppress). It returns true when the
// frame was answered and must not be sent on.
func (p *txPipeline) controlFrame(frame []byte, arpSuppress bool, gen uint32, now int64) bool {
	b := p.e.ctl.b
	n := p.n
	src := fdb.MAC(ether.Header(frame).Src())
	if src.IsUnicast() && !src.IsZero() {
		p.local.seen(b, n, src, gen, now)
	}
	if !neigh.Candidate(frame) {
		return false
	}
	pkt, err := neigh.Parse(frame)
	if err != nil {
		return false
	}
	if bd, ok := pkt.Binding(); ok {
		n.local.seenIP(b, n.vni, bd.IP, fdb.MAC(bd.MAC), now)
	}
	if !arpSuppress || !pkt.Answerable() {
		return false
	}
	mac, ok := n.remote.lookup(pkt.TargetIP)
	if !ok {
		return false
	}
	buf := p.reply[:]
	hdr := 0
	if p.offload {
		hdr = len(p.reply) - neigh.MaxReplyLen
		clear(buf[:hdr]) // a virtio_net_hdr that asks nothing
	}
	size, err := pkt.Reply(buf[hdr:], mac)
	if err != nil {
		return false // e.g. the requester asks for its own MAC: let it flood
	}
	if _, err := p.dev.Write(buf[:hdr+size]); err != nil {
		n.counters.Drop(metrics.TAPError, 1)
		return true
	}
	if pkt.Kind.IsARP() {
		n.counters.ARPSuppressed.Add(1)
	} else {
		n.counters.NDSuppressed.Add(1)
	}
	return true
}

// NeighEntries lists the IP bindings: this host's, snooped, and the other
// VTEPs', from the control plane; of vni only if it is not nil.
func (e *Engine) NeighEntries(vni *uint32) []admin.NeighEntry {
	type row struct {
		vni uint32
		ip  netip.Addr
		mac fdb.MAC
		typ string
	}
	var rows []row
	for _, n := range e.nets.Load().order {
		if vni != nil && n.vni != *vni {
			continue
		}
		n.local.mu.Lock()
		for ip, r := range n.local.ips {
			rows = append(rows, row{n.vni, ip, r.mac, "local"})
		}
		n.local.mu.Unlock()
		n.remote.mu.RLock()
		for ip, mac := range n.remote.ips {
			rows = append(rows, row{n.vni, ip, mac, "control"})
		}
		n.remote.mu.RUnlock()
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.vni, b.vni), a.ip.Compare(b.ip))
	})
	out := make([]admin.NeighEntry, len(rows))
	for i, r := range rows {
		out[i] = admin.NeighEntry{VNI: r.vni, IP: r.ip.String(), MAC: r.mac.String(), Type: r.typ}
	}
	return out
}
