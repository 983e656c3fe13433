package evpn

// The BGP speaker: a gobgp server in the process, its sessions, the writer
// that turns the desired local state into paths of gobgp's RIB, and the
// importer that turns gobgp's best paths into the remote view.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/vtepd/vtepd/control"
)

var apiFamily = &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}

// pathEvent is a path as gobgp's watch hands it over.
type pathEvent struct {
	p *api.Path
}

// Run implements control.Backend. It returns early only when the BGP
// server cannot start (the listening port is taken).
func (b *Backend) Run(ctx context.Context) error {
	s := server.NewBgpServer(server.LoggerOption(newLogger(b.log)))
	go s.Serve()
	defer s.Stop()
	port := int32(b.cfg.ListenPort)
	if port == 0 {
		port = -1 // gobgp: do not listen
	}
	global := &api.Global{Asn: b.cfg.ASN, RouterId: b.cfg.RouterID.String(), ListenPort: port, ListenAddresses: b.cfg.ListenAddresses}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		return fmt.Errorf("control: evpn: start BGP: %w", err)
	}
	if b.started != nil {
		b.started()
	}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, b.onPeer); err != nil {
		return fmt.Errorf("control: evpn: watch peers: %w", err)
	}
	best := &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
	}}
	if err := s.WatchEvent(wctx, &api.WatchEventRequest{Table: best}, b.onTable); err != nil {
		return fmt.Errorf("control: evpn: watch the RIB: %w", err)
	}
	for _, n := range b.cfg.Neighbors {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: b.peer(n)}); err != nil {
			return fmt.Errorf("control: evpn: neighbor %v: %w", n.Address, err)
		}
	}
	b.log.Info("control: BGP started", "asn", b.cfg.ASN, "router_id", b.cfg.RouterID, "listen_port", b.cfg.ListenPort, "neighbors", len(b.cfg.Neighbors))
	done := make(chan struct{}, 2)
	go func() { defer func() { done <- struct{}{} }(); b.writer(ctx, s) }()
	go func() { defer func() { done <- struct{}{} }(); b.backoff(ctx, s) }()
	b.importer(ctx)
	<-done
	<-done
	// Stopping sends every peer a Cease: they withdraw our routes at
	// once, which is how BGP withdraws a speaker that leaves.
	s.StopBgp(context.Background(), &api.StopBgpRequest{})
	cancel()
	b.stMu.Lock()
	for i := range b.sessions {
		b.sessions[i].up, b.sessions[i].state = false, "idle"
	}
	b.stMu.Unlock()
	return ctx.Err()
}

// peer is a neighbor as gobgp takes it: l2vpn evpn only, our timers, and
// our underlay address as the session's source when the families match,
// since that is the address the fabric knows us by.
func (b *Backend) peer(n Neighbor) *api.Peer {
	asn := n.ASN
	if asn == 0 {
		asn = b.cfg.ASN
	}
	hold := uint64(b.cfg.HoldTime / time.Second)
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: asn, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      uint64(connectRetry / time.Second),
			HoldTime:          hold,
			KeepaliveInterval: max(hold/3, 1),
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: apiFamily, Enabled: true}}},
	}
	p.Transport = &api.Transport{RemotePort: uint32(n.Port)}
	if n.Address.Is4() == b.cfg.Local.Is4() {
		p.Transport.LocalAddress = b.cfg.Local.String()
	}
	if asn != b.cfg.ASN {
		// Our routes name their own next hop; an eBGP peer is a route
		// server or a spine a hop away at most.
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	return p
}

// onPeer follows the sessions' states (gobgp's watch goroutine).
func (b *Backend) onPeer(r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.Peer == nil || pe.Peer.State == nil {
		return
	}
	addr, err := netip.ParseAddr(pe.Peer.State.NeighborAddress)
	if err != nil {
		return
	}
	state := strings.ToLower(pe.Peer.State.SessionState.String())
	up := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
	b.stMu.Lock()
	defer b.stMu.Unlock()
	was := false
	for _, s := range b.sessions {
		was = was || s.up
	}
	now := false
	for i := range b.sessions {
		s := &b.sessions[i]
		if s.n.Address != addr.Unmap() {
			now = now || s.up
			continue
		}
		s.state = state
		if s.up != up {
			s.since = time.Now()
			if up {
				b.log.Info("control: BGP session up", "neighbor", addr, "router_id", pe.Peer.State.RouterId)
			} else {
				s.drops++
				b.log.Warn("control: BGP session down", "neighbor", addr, "state", state)
			}
		}
		s.up = up
		now = now || up
	}
	if now != was {
		b.since = time.Now()
	}
}

// onTable queues best paths for the importer (gobgp's watch goroutine,
// which must not wait on the sink).
func (b *Backend) onTable(r *api.WatchEventResponse) {
	t := r.GetTable()
	if t == nil || len(t.Paths) == 0 {
		return
	}
	b.mu.Lock()
	for _, p := range t.Paths {
		if p.Family != nil && p.Family.Afi == api.Family_AFI_L2VPN && p.Family.Safi == api.Family_SAFI_EVPN && !p.IsNexthopInvalid {
			b.queue = append(b.queue, pathEvent{p})
		}
	}
	b.mu.Unlock()
	signal(b.in)
}

// importer applies the queued paths and the VNIs joined or left to the
// rib and the view, and hands the changes to the sink.
func (b *Backend) importer(ctx context.Context) {
	b.cfg.Sink.Sync(control.NewState())
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.in:
		}
		b.mu.Lock()
		q := b.queue
		b.queue = nil
		rejoin := b.rejoin
		b.rejoin = map[uint32]bool{}
		params := make(map[uint32]vniParams, len(b.vnis))
		for vni, p := range b.vnis {
			params[vni] = p
		}
		b.mu.Unlock()
		evs := b.importPaths(q, rejoin, params)
		if len(evs) > 0 {
			b.C.Events.Add(uint64(len(evs)))
			b.cfg.Sink.Update(evs)
		}
	}
}

func (b *Backend) importPaths(q []pathEvent, rejoin map[uint32]bool, params map[uint32]vniParams) []control.Event {
	b.ribMu.Lock()
	defer b.ribMu.Unlock()
	t := newTouched()
	for vni := range rejoin {
		b.rib.touchVNI(vni, t)
	}
	for _, pe := range q {
		b.importPath(pe.p, params, t)
	}
	if t.empty() {
		return nil
	}
	sel := &selector{local: b.cfg.Local, port: b.cfg.Port, params: params, localSeq: b.localSeq}
	evs := sel.update(b.rib, t, b.view)
	// A MAC of ours that a route with a higher sequence number took over
	// has moved away: stop advertising it (the engine forgets it too).
	b.mu.Lock()
	for _, e := range evs {
		if e.Kind == control.MACAdded {
			b.dropMACLocked(macKey{e.VNI, e.MAC})
		}
	}
	b.mu.Unlock()
	return evs
}

func (b *Backend) localSeq(k macKey) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq, ok := b.macs[k]
	return seq, ok
}

// importPath applies one best path (or its withdrawal) to the rib. b.ribMu
// is held.
func (b *Backend) importPath(p *api.Path, params map[uint32]vniParams, t *touched) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		b.refuse(refuse(control.ReasonRoute, "NLRI: %v", err), p.NeighborIp)
		return
	}
	id := nlri.String()
	if p.IsWithdraw {
		b.rib.del(id, t)
		return
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		b.rib.del(id, t)
		b.refuse(refuse(control.ReasonRoute, "attributes: %v", err), p.NeighborIp)
		return
	}
	r, err := decode(nlri, attrs, b.cfg.Local)
	if err != nil {
		b.rib.del(id, t) // a bad replacement takes the old route with it
		if err != errNotOurs {
			b.refuse(err, p.NeighborIp)
		}
		return
	}
	if r.vtep == b.cfg.Local {
		return // ours, reflected back or our own best path
	}
	r.peer = p.NeighborIp
	if pp, ok := params[r.vni]; !ok {
		b.refuse(refuse(control.ReasonVNI, "type-%d route for VNI %d, not served here", r.typ, r.vni), r.peer)
	} else if !containsRT(r.rts, pp.rtID) {
		b.refuse(refuse(control.ReasonRT, "type-%d route for VNI %d without its route target %v", r.typ, r.vni, pp.rt), r.peer)
	}
	if _, had := b.rib.routes[id]; !had && len(b.rib.routes) >= b.cfg.MaxEntries {
		b.refuse(refuse(control.ReasonCap, "more than %d routes", b.cfg.MaxEntries), r.peer)
		return
	}
	b.rib.put(id, &r, t)
}

func containsRT(rts []uint64, id uint64) bool {
	for _, x := range rts {
		if x == id {
			return true
		}
	}
	return false
}

// advertised is a route of ours in gobgp's RIB.
type advertised struct {
	path *api.Path
	sig  string // what it says: NLRI, sequence number, route target
}

// writer reconciles gobgp's RIB with the desired local state: it adds,
// replaces and deletes our paths, and gobgp sends the updates.
func (b *Backend) writer(ctx context.Context, s *server.BgpServer) {
	adv := map[advKey]advertised{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		// Sequence numbers for the MACs that have none yet: one more
		// than any route for them has, if there is one (RFC 7432 §15.1).
		b.mu.Lock()
		var fresh []macKey
		for k := range b.dirty {
			if k.typ == typeMACIP && !k.ip.IsValid() && b.macs[macKey{k.vni, k.mac}] < 0 {
				if _, ok := b.macs[macKey{k.vni, k.mac}]; ok {
					fresh = append(fresh, macKey{k.vni, k.mac})
				}
			}
		}
		b.mu.Unlock()
		seqs := make([]int64, len(fresh))
		b.ribMu.Lock()
		for i, k := range fresh {
			if seq, any := b.rib.maxSeq(k); any {
				seqs[i] = int64(seq) + 1
			}
		}
		b.ribMu.Unlock()

		type change struct {
			k     advKey
			nlri  bgp.AddrPrefixInterface
			attrs []bgp.PathAttributeInterface
			sig   string
		}
		b.mu.Lock()
		for i, k := range fresh {
			if b.macs[k] < 0 {
				b.macs[k] = seqs[i]
			}
		}
		changes := make([]change, 0, len(b.dirty))
		for k := range b.dirty {
			c := change{k: k}
			c.nlri, c.attrs, c.sig = b.desiredLocked(k)
			changes = append(changes, c)
		}
		clear(b.dirty)
		b.pending = 0
		b.mu.Unlock()

		failed := false
		for _, c := range changes {
			old, had := adv[c.k]
			if had && old.sig == c.sig {
				continue
			}
			if had && (c.nlri == nil || !strings.HasPrefix(c.sig, sigNLRI(old.sig))) {
				if err := s.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: apiFamily, Path: old.path}); err != nil && ctx.Err() == nil {
					b.log.Warn("control: withdraw failed", "err", err)
					b.C.Error(control.ReasonRequest)
				}
				b.C.Deletes.Add(1)
				delete(adv, c.k)
			}
			if c.nlri == nil {
				continue
			}
			p, err := apiutil.NewPath(c.nlri, false, c.attrs, time.Now())
			if err == nil {
				_, err = s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				b.log.Warn("control: advertise failed", "err", err)
				b.C.Error(control.ReasonRequest)
				b.mu.Lock()
				b.markLocked(c.k)
				b.mu.Unlock()
				failed = true
				continue
			}
			b.C.Puts.Add(1)
			adv[c.k] = advertised{path: p, sig: c.sig}
		}
		var n [2]int
		for k := range adv {
			if k.typ == typeMACIP {
				n[0]++
			} else {
				n[1]++
			}
		}
		b.mu.Lock()
		b.advN = n
		b.mu.Unlock()
		if failed {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// sigNLRI is the NLRI part of a signature.
func sigNLRI(sig string) string {
	nlri, _, _ := strings.Cut(sig, "|")
	return nlri + "|"
}

// desiredLocked is the route of ours that k stands for now, or a nil NLRI
// for none. b.mu is held.
func (b *Backend) desiredLocked(k advKey) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface, string) {
	p, ok := b.vnis[k.vni]
	if !ok {
		return nil, nil, ""
	}
	local := b.cfg.Local
	var nlri bgp.AddrPrefixInterface
	var attrs []bgp.PathAttributeInterface
	var seq int64
	switch {
	case k.typ == typeIMET:
		nlri, attrs = encodeIMET(local, k.vni, p)
	case !k.ip.IsValid():
		s, ok := b.macs[macKey{k.vni, k.mac}]
		if !ok {
			return nil, nil, ""
		}
		seq = max(s, 0)
		nlri, attrs = encodeMACIP(local, k.vni, p, k.mac, netip.Addr{}, uint32(seq))
	default:
		mac, ok := b.ips[ipKey{k.vni, k.ip}]
		if !ok {
			return nil, nil, ""
		}
		s, ok := b.macs[macKey{k.vni, mac}]
		if !ok {
			return nil, nil, "" // only while the MAC is ours
		}
		seq = max(s, 0)
		nlri, attrs = encodeMACIP(local, k.vni, p, mac, k.ip, uint32(seq))
	}
	return nlri, attrs, fmt.Sprintf("%s|%d|%x", nlri.String(), seq, p.rtID)
}
