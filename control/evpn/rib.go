package evpn

// The import side: the best paths gobgp hands over, kept by NLRI, and the
// remote view they make (control.State), changed key by key.

import (
	"net/netip"
	"slices"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

type macKey struct {
	vni uint32
	mac fdb.MAC
}

type ipKey struct {
	vni uint32
	ip  netip.Addr
}

// rib is every usable route received, by NLRI (its text form, which
// includes the route distinguisher, so that two VTEPs' routes for one MAC
// are two entries), with indexes by what they teach. Routes of VNIs we do
// not serve, or whose route target is not the VNI's, are kept too: a Join
// (or a reload that fixes a route target) makes them count without asking
// the peers again. The cap (Config.MaxEntries) bounds them all.
type rib struct {
	routes map[string]*route
	macs   map[macKey]map[string]*route
	ips    map[ipKey]map[string]*route
	imets  map[uint32]map[string]*route
	// count is the routes kept by neighbor, of types 2 and 3.
	count map[string][2]int
}

func newRIB() *rib {
	return &rib{
		routes: map[string]*route{},
		macs:   map[macKey]map[string]*route{},
		ips:    map[ipKey]map[string]*route{},
		imets:  map[uint32]map[string]*route{},
		count:  map[string][2]int{},
	}
}

func addIndex[K comparable](m map[K]map[string]*route, k K, id string, r *route) {
	s := m[k]
	if s == nil {
		s = map[string]*route{}
		m[k] = s
	}
	s[id] = r
}

func delIndex[K comparable](m map[K]map[string]*route, k K, id string) {
	if s := m[k]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// touched collects the keys of the view that a batch may have changed.
type touched struct {
	macs  map[macKey]bool
	ips   map[ipKey]bool
	vteps map[uint32]bool
}

func newTouched() *touched {
	return &touched{macs: map[macKey]bool{}, ips: map[ipKey]bool{}, vteps: map[uint32]bool{}}
}

func (t *touched) empty() bool { return len(t.macs) == 0 && len(t.ips) == 0 && len(t.vteps) == 0 }

// touch marks what r teaches.
func (t *touched) touch(r *route) {
	switch r.typ {
	case typeIMET:
		t.vteps[r.vni] = true
	case typeMACIP:
		t.macs[macKey{r.vni, r.mac}] = true
		if r.ip.IsValid() {
			t.ips[ipKey{r.vni, r.ip}] = true
		}
	}
}

// put stores r under id, replacing what id held.
func (rb *rib) put(id string, r *route, t *touched) {
	rb.del(id, t)
	rb.routes[id] = r
	rb.counted(r, 1)
	switch r.typ {
	case typeIMET:
		addIndex(rb.imets, r.vni, id, r)
	case typeMACIP:
		addIndex(rb.macs, macKey{r.vni, r.mac}, id, r)
		if r.ip.IsValid() {
			addIndex(rb.ips, ipKey{r.vni, r.ip}, id, r)
		}
	}
	t.touch(r)
}

// del forgets the route under id, if any.
func (rb *rib) del(id string, t *touched) {
	r := rb.routes[id]
	if r == nil {
		return
	}
	delete(rb.routes, id)
	rb.counted(r, -1)
	switch r.typ {
	case typeIMET:
		delIndex(rb.imets, r.vni, id)
	case typeMACIP:
		delIndex(rb.macs, macKey{r.vni, r.mac}, id)
		if r.ip.IsValid() {
			delIndex(rb.ips, ipKey{r.vni, r.ip}, id)
		}
	}
	t.touch(r)
}

func (rb *rib) counted(r *route, d int) {
	n := rb.count[r.peer]
	if r.typ == typeMACIP {
		n[0] += d
	} else {
		n[1] += d
	}
	if n == [2]int{} {
		delete(rb.count, r.peer)
	} else {
		rb.count[r.peer] = n
	}
}

// touchVNI marks every key of vni, for a VNI joined or left.
func (rb *rib) touchVNI(vni uint32, t *touched) {
	t.vteps[vni] = true
	for k := range rb.macs {
		if k.vni == vni {
			t.macs[k] = true
		}
	}
	for k := range rb.ips {
		if k.vni == vni {
			t.ips[k] = true
		}
	}
}

// better orders two routes for one MAC (RFC 7432 §15.1): the higher MAC
// mobility sequence number wins; between equal ones, the lower VTEP
// address, so that every VTEP picks the same one.
func better(a, b *route) bool {
	if a.seq != b.seq {
		return a.seq > b.seq
	}
	return a.vtep.Less(b.vtep)
}

// maxSeq is the highest sequence number of the routes for k, and whether
// there is any: a MAC that moves here is advertised with one more.
func (rb *rib) maxSeq(k macKey) (uint32, bool) {
	var seq uint32
	any := false
	for _, r := range rb.macs[k] {
		if !any || r.seq > seq {
			seq = r.seq
		}
		any = true
	}
	return seq, any
}

// selector decides what of the rib counts, given what the backend serves
// and owns: see Backend.recompute.
type selector struct {
	local netip.Addr
	port  uint16 // the VXLAN port of every VTEP: ours
	// params of the joined VNIs.
	params map[uint32]vniParams
	// localSeq is the sequence number of a MAC we advertise (or are about
	// to: -1 until its first advertisement picks one); absent: not ours.
	localSeq func(macKey) (int64, bool)
}

func (s *selector) usable(r *route) bool {
	p, ok := s.params[r.vni]
	return ok && r.vtep != s.local && slices.Contains(r.rts, p.rtID)
}

// macWinner is the route that the view holds for k, if any: the best
// usable one, unless the MAC is ours and its route does not beat ours.
func (s *selector) macWinner(rb *rib, k macKey) (*route, bool) {
	var best *route
	for _, r := range rb.macs[k] {
		if s.usable(r) && (best == nil || better(r, best)) {
			best = r
		}
	}
	if best == nil {
		return nil, false
	}
	if seq, ours := s.localSeq(k); ours && (seq < 0 || int64(best.seq) <= seq) {
		return nil, false
	}
	return best, true
}

// ipWinner is the MAC+IP route that binds k's IP in the view: the best
// usable one whose MAC the view holds behind the same VTEP.
func (s *selector) ipWinner(rb *rib, k ipKey, view *control.State) (*route, bool) {
	var best *route
	v := view.VNIs[k.vni]
	for _, r := range rb.ips[k] {
		if !s.usable(r) || v == nil || v.MACs[r.mac] != r.vtep {
			continue
		}
		if best == nil || better(r, best) {
			best = r
		}
	}
	return best, best != nil
}

// update recomputes the touched keys of view, changes it, and returns the
// events that did: removals first, so that the sink sees a MAC leave one
// VTEP before its IP binds elsewhere.
func (s *selector) update(rb *rib, t *touched, view *control.State) []control.Event {
	var evs []control.Event
	// An IP follows its MAC: a MAC that changed hands may make or unmake
	// the bindings of every route that names it.
	for k := range t.macs {
		for _, r := range rb.macs[k] {
			if r.ip.IsValid() {
				t.ips[ipKey{k.vni, r.ip}] = true
			}
		}
	}
	for vni := range t.vteps {
		want := map[netip.Addr]bool{}
		if _, ok := s.params[vni]; ok {
			for _, r := range rb.imets[vni] {
				if s.usable(r) {
					want[r.vtep] = true
				}
			}
		}
		if v := view.VNIs[vni]; v != nil {
			for vtep, port := range v.VTEPs {
				if !want[vtep] {
					evs = append(evs, control.Event{Kind: control.VTEPLeft, VNI: vni, VTEP: vtep, Port: port})
				}
			}
		}
		for vtep := range want {
			if v := view.VNIs[vni]; v == nil || !hasVTEP(v, vtep) {
				evs = append(evs, control.Event{Kind: control.VTEPJoined, VNI: vni, VTEP: vtep, Port: s.port})
			}
		}
	}
	for k := range t.macs {
		cur, had := netip.Addr{}, false
		if v := view.VNIs[k.vni]; v != nil {
			cur, had = v.MACs[k.mac]
		}
		r, ok := s.macWinner(rb, k)
		switch {
		case ok && (!had || cur != r.vtep):
			evs = append(evs, control.Event{Kind: control.MACAdded, VNI: k.vni, MAC: k.mac, VTEP: r.vtep})
		case !ok && had:
			evs = append(evs, control.Event{Kind: control.MACRemoved, VNI: k.vni, MAC: k.mac, VTEP: cur})
		}
	}
	view.Apply(evs)
	n := len(evs)
	for k := range t.ips {
		cur, had := fdb.MAC{}, false
		if v := view.VNIs[k.vni]; v != nil {
			cur, had = v.IPs[k.ip]
		}
		r, ok := s.ipWinner(rb, k, view)
		switch {
		case ok && (!had || cur != r.mac):
			evs = append(evs, control.Event{Kind: control.IPAdded, VNI: k.vni, IP: k.ip, MAC: r.mac})
		case !ok && had:
			evs = append(evs, control.Event{Kind: control.IPRemoved, VNI: k.vni, IP: k.ip, MAC: cur})
		}
	}
	view.Apply(evs[n:])
	return evs
}

func hasVTEP(v *control.VNIState, vtep netip.Addr) bool {
	_, ok := v.VTEPs[vtep]
	return ok
}
