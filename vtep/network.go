package vtep

// A network is one [[network]] section at run time: its TAP (Device), its
// TX pipelines, its counters and its group. The set of them is a netTable,
// replaced whole by Reload; this file opens, starts and closes them.

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/underlay"
)

// FrameQueue is one queue of the local side of a network: the TAP on the
// bridge. A TAP has one queue per core (IFF_MULTI_QUEUE).
//
// On a Device with Offload, every frame read is preceded by its
// virtio_net_hdr, at bufs[i][offset-offload.VirtioNetHdrLen:offset], and
// may be a TCP super-frame of up to 64 KiB; every frame written starts
// with one.
type FrameQueue interface {
	// ReadLocked blocks for at least one frame, then returns up to
	// len(bufs) frames, frame i at bufs[i][offset:offset+sizes[i]]. Every
	// attempt to read holds mu, and mu is still held when it returns
	// frames (not on error): the caller unlocks it.
	ReadLocked(bufs [][]byte, sizes []int, offset int, mu sync.Locker) (int, error)
	// TryRead returns the frames queued now, 0 if none, never waiting;
	// the caller holds the mu of the queue's ReadLocked.
	TryRead(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write delivers one frame to the bridge.
	Write(frame []byte) (int, error)
	BatchSize() int
	Name() string
}

// Device is a network's local end, its TAP (queues, and how to remove
// it), and the sender of its floods to a multicast group, if it has one.
type Device struct {
	Queues    []FrameQueue
	Closer    io.Closer
	Multicast underlay.Conn // nil without a group
	MAC       fdb.MAC       // the TAP's own address: never learned from the tunnel
	// Offload says the queues carry a virtio_net_hdr with every frame
	// (config key offload): TX segments super-frames, RX coalesces.
	Offload bool
	// USO says the TAP also takes UDP super-frames (GSO_UDP_L4): RX merges
	// the datagrams of a train into one write.
	USO bool
}

// netTable is the set of networks, immutable once published.
type netTable struct {
	byVNI map[uint32]*network
	order []*network // in configuration order
}

// network is the state of one [[network]] section.
type network struct {
	vni      uint32
	label    string
	cfg      atomic.Pointer[config.Network]
	dev      atomic.Pointer[Device] // replaced when the TAP is recreated
	group    netip.Addr             // joined for this network; invalid without one
	counters metrics.Counters
	tx       sync.WaitGroup // its TX pipelines, and a TAP recovery
	// txp are its TX pipelines, one per queue of the TAP in dev (they
	// are replaced with it). The receive pipelines borrow them (pollTX).
	txp   atomic.Pointer[[]*txPipeline]
	flood rateLimiter // flood_rate
	// floodList is where BUM frames go besides the group: the static
	// peers and the VTEPs the control plane has for the network.
	floodList atomic.Pointer[[]netip.Addr]
	remote    remoteView // from the control plane
	local     localTable // to the control plane

	closed     atomic.Bool // set before the network's resources go
	recovering atomic.Bool // a TAP recovery is under way
	bridgeGone atomic.Bool // its bridge was deleted; said once, until it returns
}

// group is a joined multicast group, shared by the networks that use it.
type group struct {
	conn underlay.Conn
	refs int
}

// openNetwork takes a network's resources and fills in its FDB settings;
// its pipelines start with startNetwork. Callers hold e.mu or own e alone.
func (e *Engine) openNetwork(nc config.Network) (n *network, err error) {
	dev, err := e.openTAP(nc)
	if err != nil {
		return nil, err
	}
	if nc.Group.IsValid() && dev.Multicast == nil && e.openSender != nil {
		if dev.Multicast, err = e.openSender(nc); err != nil {
			closeDevice(dev)
			return nil, err
		}
	}
	n = &network{vni: nc.VNI, label: strconv.FormatUint(uint64(nc.VNI), 10)}
	n.dev.Store(&dev)
	n.cfg.Store(&nc)
	n.remote.init()
	n.local.init(nc.MaxEntries)
	e.ctl.setFloodList(n)
	if nc.Group.IsValid() {
		if err := e.joinGroup(nc.Group); err != nil {
			closeDevice(dev)
			return nil, fmt.Errorf("group: %w", err)
		}
		n.group = nc.Group
	}
	e.fdb.SetNetwork(n.vni, fdb.Network{MaxEntries: nc.MaxEntries, Ageing: nc.Ageing})
	for _, s := range nc.Static {
		// Validation already vetted these; an error here is a bug.
		if err := e.fdb.AddStatic(n.vni, s.MAC, s.Remote); err != nil {
			panic(fmt.Sprintf("static entry %s: %v", s.MAC, err))
		}
	}
	return n, nil
}

func closeDevice(d Device) {
	if d.Closer != nil {
		d.Closer.Close()
	}
	if d.Multicast != nil {
		d.Multicast.Close()
	}
}

// joinGroup joins g, or counts one more user of it. Callers hold e.mu.
func (e *Engine) joinGroup(g netip.Addr) error {
	if gr := e.groups[g]; gr != nil {
		gr.refs++
		return nil
	}
	gr := &group{refs: 1}
	if e.openGroup != nil { // over fakes, group traffic arrives on the conns
		conn, err := e.openGroup(g)
		if err != nil {
			return err
		}
		gr.conn = conn
		if e.run != nil {
			e.startRx(0, conn, false)
		}
	}
	e.groups[g] = gr
	return nil
}

// leaveGroup drops one user of g and leaves it after the last.
func (e *Engine) leaveGroup(g netip.Addr) {
	gr := e.groups[g]
	if gr == nil {
		return
	}
	if gr.refs--; gr.refs == 0 {
		delete(e.groups, g)
		if gr.conn == nil {
			return
		}
		if err := gr.conn.Close(); err != nil {
			e.log.Warn("leaving multicast group", "group", g, "err", err)
		}
	}
}

// startNetwork starts a network's TX pipelines, one per TAP queue.
func (e *Engine) startNetwork(n *network) {
	dev := n.dev.Load()
	ps := make([]*txPipeline, len(dev.Queues))
	for i, q := range dev.Queues {
		ps[i] = e.newTxPipeline(n, q, e.conns[i%len(e.conns)], dev.Offload)
	}
	n.txp.Store(&ps)
	for _, p := range ps {
		n.tx.Go(func() { e.txLoop(n, dev, p) })
	}
}

// closeNetwork stops a network that is no longer published: its TAP goes,
// its pipelines end, its group is left and its FDB entries dropped.
func (e *Engine) closeNetwork(n *network) {
	n.closed.Store(true)
	n.dev.Load().Closer.Close()
	n.tx.Wait()
	if m := n.dev.Load().Multicast; m != nil {
		m.Close()
	}
	if n.group.IsValid() {
		e.leaveGroup(n.group)
	}
	e.fdb.RemoveNetwork(n.vni)
}

// Snapshot returns the metrics rows of every network, and of the drops no
// network owns.
func (e *Engine) Snapshot() []metrics.VNI {
	tbl := e.nets.Load()
	rows := make([]metrics.VNI, 0, len(tbl.order)+1)
	for _, n := range tbl.order {
		row := metrics.VNI{Label: n.label, Counters: &n.counters}
		if s, ok := e.fdb.Stats(n.vni); ok {
			row.FDB = metrics.FDBStats{
				Learned: s.Learned, Static: s.Static, Control: s.Control,
				LearnedTotal: s.LearnedTotal, Moves: s.Moves, Refused: s.Refused, Expired: s.Expired,
				Damped: s.Damped,
			}
		}
		rows = append(rows, row)
	}
	return append(rows, metrics.VNI{Label: metrics.UnknownVNILabel, Counters: &e.unknown, DropsOnly: true})
}

// FDBEntries lists the forwarding database, by VNI then MAC.
func (e *Engine) FDBEntries() []admin.FDBEntry {
	entries := e.fdb.Entries(e.Now())
	out := make([]admin.FDBEntry, 0, len(entries))
	for _, en := range entries {
		out = append(out, fdbEntry(en))
	}
	return out
}

func fdbEntry(en fdb.Entry) admin.FDBEntry {
	return admin.FDBEntry{
		VNI:        en.VNI,
		MAC:        en.MAC.String(),
		Remote:     en.Remote.String(),
		Type:       en.Type.String(),
		AgeSeconds: en.Age.Seconds(),
	}
}

// FloodList returns a network's flood list, for logs and tools.
func (e *Engine) FloodList(vni uint32) []netip.Addr {
	if n, ok := e.nets.Load().byVNI[vni]; ok {
		return slices.Clone(*n.floodList.Load())
	}
	return nil
}
