package control

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/vtepd/vtepd/fdb"
)

// DefaultPort is the VXLAN UDP port a VTEP listens on unless it says
// otherwise (IANA, RFC 7348).
const DefaultPort = 4789

// DefaultMaxEntries is the default cap on remote entries of one backend.
const DefaultMaxEntries = 262144

// VNIState is the remote view of one VNI.
type VNIState struct {
	// VTEPs maps each remote VTEP that joined the VNI to its UDP port.
	VTEPs map[netip.Addr]uint16
	// MACs maps an inner MAC to the VTEP it sits behind.
	MACs map[fdb.MAC]netip.Addr
	// IPs maps an inner IP to its MAC (the ARP/ND suppression table).
	IPs map[netip.Addr]fdb.MAC
}

func newVNIState() *VNIState {
	return &VNIState{
		VTEPs: make(map[netip.Addr]uint16),
		MACs:  make(map[fdb.MAC]netip.Addr),
		IPs:   make(map[netip.Addr]fdb.MAC),
	}
}

// Len is the number of entries of all kinds.
func (v *VNIState) Len() int { return len(v.VTEPs) + len(v.MACs) + len(v.IPs) }

// State is a complete remote view: every entry of every served VNI that
// another VTEP (or an operator) published. This VTEP's own entries are not
// in it.
type State struct {
	VNIs map[uint32]*VNIState
}

// NewState returns an empty State.
func NewState() *State { return &State{VNIs: make(map[uint32]*VNIState)} }

// VNI returns the state of vni, creating it.
func (s *State) VNI(vni uint32) *VNIState {
	v := s.VNIs[vni]
	if v == nil {
		v = newVNIState()
		s.VNIs[vni] = v
	}
	return v
}

// Len is the number of entries of all VNIs and kinds.
func (s *State) Len() int {
	n := 0
	for _, v := range s.VNIs {
		n += v.Len()
	}
	return n
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := NewState()
	for vni, v := range s.VNIs {
		cv := c.VNI(vni)
		for k, x := range v.VTEPs {
			cv.VTEPs[k] = x
		}
		for k, x := range v.MACs {
			cv.MACs[k] = x
		}
		for k, x := range v.IPs {
			cv.IPs[k] = x
		}
	}
	return c
}

// Apply applies events in order, as a Sink that keeps a State would.
func (s *State) Apply(evs []Event) {
	for _, e := range evs {
		switch e.Kind {
		case VTEPJoined:
			s.VNI(e.VNI).VTEPs[e.VTEP] = e.Port
		case VTEPLeft:
			if v := s.VNIs[e.VNI]; v != nil {
				delete(v.VTEPs, e.VTEP)
			}
		case MACAdded:
			s.VNI(e.VNI).MACs[e.MAC] = e.VTEP
		case MACRemoved:
			if v := s.VNIs[e.VNI]; v != nil {
				delete(v.MACs, e.MAC)
			}
		case IPAdded:
			s.VNI(e.VNI).IPs[e.IP] = e.MAC
		case IPRemoved:
			if v := s.VNIs[e.VNI]; v != nil {
				delete(v.IPs, e.IP)
			}
		}
		if v := s.VNIs[e.VNI]; v != nil && v.Len() == 0 {
			delete(s.VNIs, e.VNI)
		}
	}
}

// EventKind says what changed.
type EventKind uint8

const (
	// VTEPJoined: VTEP (at Port) serves VNI; also sent when its port changes.
	VTEPJoined EventKind = iota + 1
	// VTEPLeft: VTEP no longer serves VNI.
	VTEPLeft
	// MACAdded: MAC sits behind VTEP. A MAC that moved is added again with
	// its new VTEP, without a MACRemoved first.
	MACAdded
	// MACRemoved: MAC is no longer known (VTEP is the one it had).
	MACRemoved
	// IPAdded: IP belongs to MAC; also sent when the MAC changes.
	IPAdded
	// IPRemoved: IP is no longer known.
	IPRemoved
)

var kindNames = [...]string{"", "vtep-joined", "vtep-left", "mac-added", "mac-removed", "ip-added", "ip-removed"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// Event is one change of the remote view. Which fields are set depends on
// Kind: VTEP and Port for VTEP events, MAC and VTEP for MAC events, IP and
// MAC for IP events.
type Event struct {
	Kind EventKind
	VNI  uint32
	VTEP netip.Addr
	Port uint16
	MAC  fdb.MAC
	IP   netip.Addr
}

func (e Event) String() string {
	switch e.Kind {
	case VTEPJoined, VTEPLeft:
		return fmt.Sprintf("%v vni %d vtep %v port %d", e.Kind, e.VNI, e.VTEP, e.Port)
	case MACAdded, MACRemoved:
		return fmt.Sprintf("%v vni %d mac %v vtep %v", e.Kind, e.VNI, e.MAC, e.VTEP)
	default:
		return fmt.Sprintf("%v vni %d ip %v mac %v", e.Kind, e.VNI, e.IP, e.MAC)
	}
}

// Diff returns the events that turn prev into next, removals before
// additions within each VNI, in a stable order. A nil prev is empty.
func Diff(prev, next *State) []Event {
	if prev == nil {
		prev = NewState()
	}
	if next == nil {
		next = NewState()
	}
	empty := newVNIState()
	vnis := make(map[uint32]bool)
	for v := range prev.VNIs {
		vnis[v] = true
	}
	for v := range next.VNIs {
		vnis[v] = true
	}
	order := make([]uint32, 0, len(vnis))
	for v := range vnis {
		order = append(order, v)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	var evs []Event
	for _, vni := range order {
		p, n := prev.VNIs[vni], next.VNIs[vni]
		if p == nil {
			p = empty
		}
		if n == nil {
			n = empty
		}
		start := len(evs)
		for ip, mac := range p.IPs {
			if _, ok := n.IPs[ip]; !ok {
				evs = append(evs, Event{Kind: IPRemoved, VNI: vni, IP: ip, MAC: mac})
			}
		}
		for mac, vtep := range p.MACs {
			if _, ok := n.MACs[mac]; !ok {
				evs = append(evs, Event{Kind: MACRemoved, VNI: vni, MAC: mac, VTEP: vtep})
			}
		}
		for vtep, port := range p.VTEPs {
			if _, ok := n.VTEPs[vtep]; !ok {
				evs = append(evs, Event{Kind: VTEPLeft, VNI: vni, VTEP: vtep, Port: port})
			}
		}
		for vtep, port := range n.VTEPs {
			if old, ok := p.VTEPs[vtep]; !ok || old != port {
				evs = append(evs, Event{Kind: VTEPJoined, VNI: vni, VTEP: vtep, Port: port})
			}
		}
		for mac, vtep := range n.MACs {
			if old, ok := p.MACs[mac]; !ok || old != vtep {
				evs = append(evs, Event{Kind: MACAdded, VNI: vni, MAC: mac, VTEP: vtep})
			}
		}
		for ip, mac := range n.IPs {
			if old, ok := p.IPs[ip]; !ok || old != mac {
				evs = append(evs, Event{Kind: IPAdded, VNI: vni, IP: ip, MAC: mac})
			}
		}
		sortEvents(evs[start:])
	}
	return evs
}

func sortEvents(evs []Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if ra, rb := removal(a.Kind), removal(b.Kind); ra != rb {
			return ra
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if c := a.VTEP.Compare(b.VTEP); c != 0 && (a.Kind == VTEPJoined || a.Kind == VTEPLeft) {
			return c < 0
		}
		if c := a.IP.Compare(b.IP); c != 0 {
			return c < 0
		}
		return string(a.MAC[:]) < string(b.MAC[:])
	})
}

func removal(k EventKind) bool { return k == VTEPLeft || k == MACRemoved || k == IPRemoved }

// Sink receives the remote view. The backend calls it from one goroutine,
// never concurrently, and never with the backend's locks held; the sink may
// keep the State and the events it is given.
type Sink interface {
	// Sync hands over the complete remote view after a full read of the
	// store. The sink applies the difference from what it holds (see Diff).
	// It is never called to report an error: an outage keeps the last view.
	Sync(s *State)
	// Update delivers changes since the last Sync or Update, in order.
	Update(evs []Event)
}

// Backend is a control-plane backend. Local-state methods are safe for
// concurrent use, never block on the network and may be called before or
// while Run runs; they record the desired local state, which the backend
// publishes (and republishes after losing its registration) on its own.
type Backend interface {
	// Run connects, publishes and watches until ctx ends, then withdraws
	// what it can and returns ctx's error; it returns early only on a
	// configuration error.
	Run(ctx context.Context) error
	// Join registers this VTEP in vni and serves its entries; Leave
	// withdraws the registration and every local entry of vni, and drops
	// the VNI's remote entries (the sink sees them removed).
	Join(vni uint32)
	Leave(vni uint32)
	// SetMAC publishes mac as local (behind this VTEP); DelMAC withdraws it
	// unless another VTEP has taken it over since.
	SetMAC(vni uint32, mac fdb.MAC)
	DelMAC(vni uint32, mac fdb.MAC)
	// SetIP publishes that ip belongs to the local mac; DelIP withdraws it.
	SetIP(vni uint32, ip netip.Addr, mac fdb.MAC)
	DelIP(vni uint32, ip netip.Addr)
	// Status is a snapshot for vtepctl and metrics.
	Status() Status
}
