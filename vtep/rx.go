package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/underlay"
)

// rxPipeline carries datagrams from one receive socket to the networks'
// TAPs, writing to TAP queue number queue (modulo each TAP's queues).
//
// Trains. With UDP GRO a message of the batch may hold a train of
// datagrams end to end (Datagram.Seg); each is treated exactly as a
// datagram of its own. For TAPs with offloads the coalescer sees a train's
// frames with no room of their own (the next datagram follows at once)
// and moves a super-frame that grows into one of its spare buffers
// (offload's design notes, Trains). Its outputs and spares are written
// out and reset whenever it is full, mid-batch if need be: everything
// added before is written before anything added after, so no flow is
// reordered.
type rxPipeline struct {
	// mu is held from a read of conn until its datagrams are delivered:
	// by the pipeline's goroutine, or by the busy poller.
	mu    sync.Mutex
	conn  underlay.Conn
	e     *Engine
	queue int
	dg    []underlay.Datagram
	// What the current run of datagrams of one network delivered: the
	// shared counters are bumped when the network changes or the batch
	// ends, not once per datagram.
	cur         *network
	pkts, bytes uint64
	coalesced   uint64
	peer        peerCache

	// For TAPs with offloads: slots[i] is dg[i].Buf with rxHeadroom in
	// front; frames wait in coalescer until the batch is read (or it is full),
	// merged where they can be, and nets[k] is the network of output k.
	slots     [][]byte
	coalescer *offload.Coalescer
	nets      []*network

	// For TAPs without offloads: a TCP frame too long for the TAP is cut
	// into segments here, one at a time.
	seg     offload.Segmenter
	scratch []byte

	// written are the networks whose TAPs this batch wrote to.
	written []*network
}

// rxCoalesce is how many frames the coalescer of a receive pipeline
// holds before it writes them out: a batch of single datagrams, or a
// couple of 64 KiB trains of small datagrams. rxSpares is how many
// super-frames of trains may grow at once before it does.
const (
	rxCoalesce = 4 * rxBatch
	rxSpares   = 16
)

func (e *Engine) newRxPipeline(queue int, conn underlay.Conn) *rxPipeline {
	slab := prefault(make([]byte, rxBatch*rxSlot))
	p := &rxPipeline{
		e:         e,
		conn:      conn,
		queue:     queue,
		dg:        make([]underlay.Datagram, rxBatch),
		slots:     make([][]byte, rxBatch),
		coalescer: offload.NewCoalescer(rxCoalesce, e.tapMTU, rxSpares),
		nets:      make([]*network, rxCoalesce),
		written:   make([]*network, 0, maxPolledNetworks),
		// The longest frame the TAP takes: its MTU, Ethernet, two tags.
		scratch: make([]byte, ether.HeaderLen+ether.MaxTags*ether.TagLen+e.tapMTU),
	}
	for i := range p.dg {
		p.slots[i] = slab[i*rxSlot : (i+1)*rxSlot : (i+1)*rxSlot]
		p.dg[i].Buf = p.slots[i][rxHeadroom:]
	}
	return p
}

// rxLoop runs receive pipeline p until its conn is closed; polled says
// the busy poller reads it too, and it should keep off the runtime's
// poller while the busy poller runs.
func (e *Engine) rxLoop(p *rxPipeline, polled bool) error {
	for {
		if polled {
			e.busy.waitIdle()
		}
		count, err := p.conn.ReadBatchLocked(p.dg, &p.mu)
		if err != nil {
			if underlay.IsClosed(err) {
				return nil
			}
			return fmt.Errorf("underlay receive: %w", err)
		}
		p.deliver(count)
		p.mu.Unlock()
		if polled && e.cfg.Load().BusyPoll > 0 {
			e.busy.traffic()
		}
	}
}

// poll delivers what the socket holds now, unless the pipeline's own
// goroutine is at it, and says whether there was anything.
func (p *rxPipeline) poll() bool {
	if !p.mu.TryLock() {
		return false
	}
	count, _ := p.conn.TryReadBatch(p.dg)
	if count > 0 {
		p.deliver(count) // an error is the pipeline's own goroutine's to handle
	}
	p.mu.Unlock()
	return count > 0
}

// rxBatchState is what every datagram of one deliver call shares.
type rxBatchState struct {
	now  int64
	nets map[uint32]*network
	cfg  *config.Config
}

// deliver validates, learns from and delivers count received messages,
// each a datagram or a train of them. Decapsulated frames only ever go to
// a TAP, never back to the tunnel.
//
// A frame for a TAP without offloads is written at once. With offloads,
// frames are written once the whole batch is through (or the coalescer is
// full), each TCP flow's consecutive segments merged into super-frames
// (package offload says when), in the order of their first frames, with a
// virtio_net_hdr written over the VXLAN header in front of each. Either
// way, a TCP or UDP checksum that a kernel peer left partial is finished,
// or marked for the kernel to finish (offload.CheckL4).
func (p *rxPipeline) deliver(count int) {
	e := p.e
	b := rxBatchState{now: e.Now(), nets: e.nets.Load().byVNI, cfg: e.cfg.Load()}
	p.coalescer.Reset()
	for i := 0; i < count; i++ {
		d := &p.dg[i]
		train := d.Train()
		dgs := 1
		if train {
			dgs = (d.N + d.Seg - 1) / d.Seg
		}
		peer := p.peer.addRx(&e.peers, d.Addr, dgs, d.N)
		peer.lastSeen.Store(b.now)
		counted := !train
		for off := 0; ; {
			end := d.Next(off)
			if n := p.deliverDatagram(&b, i, off, end, peer, train); n != nil && !counted {
				n.counters.RxGROTrains.Add(1)
				counted = true
			}
			if off = end; off >= d.N {
				break
			}
		}
	}
	p.flushCoalesced()
	p.flushCounters()
	p.pollTX()
}

// deliverDatagram delivers the datagram dg[i].Buf[off:end], one of a train if
// train is set, and returns its network when it has one.
func (p *rxPipeline) deliverDatagram(b *rxBatchState, i, off, end int, peer *peerStats, train bool) *network {
	e := p.e
	d := &p.dg[i]
	vni, inner, err := encap.Decap(d.Buf[off:end])
	if err != nil {
		e.countDecapError(b.nets, d.Buf[off:end], err)
		return nil
	}
	n := b.nets[vni]
	if n == nil {
		e.unknown.Drop(metrics.UnknownVNI, 1)
		return nil
	}
	nc := n.cfg.Load()
	if len(nc.AcceptFrom) > 0 && !accepted(nc.AcceptFrom, d.Addr) {
		n.counters.Drop(metrics.Source, 1)
		return n
	}
	src := fdb.MAC(ether.Header(inner).Src())
	dev := n.dev.Load()
	if src == dev.MAC && !src.IsZero() {
		n.counters.Drop(metrics.Loop, 1)
		return n
	}
	if nc.DropVLAN && ether.Tagged(inner) {
		n.counters.Drop(metrics.VLAN, 1)
		return n
	}
	if nc.Learning && d.Addr != b.cfg.Local {
		e.learn(n, src, d.Addr, peer, b.cfg.LearnRate, b.now)
	}
	if dev.Offload {
		// inner is slot[start:]: the header goes where the VXLAN header
		// was (over the tail of the datagram before, in a train), and
		// the rest of a single datagram's slot is room to merge into.
		if p.coalescer.Room() == 0 || p.coalescer.FreeSpares() == 0 {
			p.flushCoalesced()
		}
		slot := p.slots[i]
		start := rxHeadroom + off + encap.HeaderLen
		if train {
			slot = slot[: rxHeadroom+end : rxHeadroom+end]
		}
		k := len(p.coalescer.Outputs()) // the output's index, if it starts one
		p.nets[k] = n
		p.coalescer.MergeUDP(dev.USO)
		// A train's datagrams had a UDP checksum that the kernel verified
		// (offload's design notes, Trusted frames).
		p.coalescer.Trust(train)
		p.coalescer.Add(slot, start, len(inner), k, vni)
		return n
	}
	// A checksum the sender's kernel left to an offload that never ran
	// is finished here, or the container drops the frame; a TCP
	// segment too long for the TAP is cut (offload.CheckL4, GSOFor).
	if l4 := offload.CheckL4(inner); l4.State == offload.L4Good || l4.State == offload.L4Partial {
		if len(inner) > ether.HeaderLen+e.tapMTU {
			if h, ok := offload.GSOFor(inner, e.tapMTU); ok {
				p.writeSegments(n, dev, inner, &h)
				return n
			}
		}
		if l4.State == offload.L4Partial {
			h := l4.NeedsCsumHdr()
			offload.CompleteChecksum(inner[:l4.End], &h)
		}
	}
	p.write(n, dev, inner, 1, len(inner))
	return n
}

// flushCoalesced writes what the coalescer holds, in order, and empties
// it for more.
func (p *rxPipeline) flushCoalesced() {
	p.coalescer.Finish()
	outs := p.coalescer.Outputs()
	for k := range outs {
		o := &outs[k]
		n := p.nets[o.Index]
		p.write(n, n.dev.Load(), o.Packet(), o.Frames, o.Bytes)
	}
	clear(p.nets[:min(len(outs)+1, len(p.nets))]) // hold no network past its batch
	p.coalescer.Reset()
}

// maxPolledNetworks bounds the TAPs one receive batch polls.
const maxPolledNetworks = 8

// pollTX reads, and forwards to the tunnel, what the TAPs written to in
// this batch have queued now, on the queue they were written to. A frame
// written to a TAP is handled by the bridge and whatever lies behind it
// within the write(); what it causes at once (an echo reply, a TCP ACK,
// an ARP reply) is then already queued, and is sent on here, with no
// wake-up of the queue's own TX goroutine. The kernel tells the TAP to
// put a flow's frames on the queue its other direction is written to, so
// that is the queue to look at.
func (p *rxPipeline) pollTX() {
	for i, n := range p.written {
		if ps := n.txp.Load(); ps != nil && len(*ps) > 0 {
			(*ps)[p.queue%len(*ps)].poll()
		}
		p.written[i] = nil
	}
	p.written = p.written[:0]
}

// write hands pkt, which carries frames received frames of bytes bytes,
// to n's TAP, and counts them.
func (p *rxPipeline) write(n *network, dev *Device, pkt []byte, frames, bytes int) {
	q := dev.Queues
	if _, err := q[p.queue%len(q)].Write(pkt); err != nil {
		n.counters.Drop(metrics.TAPError, uint64(frames))
		return
	}
	p.count(n, frames, bytes)
}

// writeSegments cuts frame as h says and writes the segments to n's TAP
// (without offloads) one by one; they count as the one frame received.
func (p *rxPipeline) writeSegments(n *network, dev *Device, frame []byte, h *offload.VirtioNetHdr) {
	q := dev.Queues[p.queue%len(dev.Queues)]
	if p.seg.Reset(frame, h) != nil || p.seg.MaxSegmentLen() > len(p.scratch) {
		n.counters.Drop(metrics.TAPError, 1) // GSOFor vetted it: never seen
		return
	}
	for !p.seg.Done() {
		m := p.seg.Next(p.scratch)
		if _, err := q.Write(p.scratch[:m]); err != nil {
			n.counters.Drop(metrics.TAPError, 1)
			return
		}
	}
	p.count(n, 1, len(frame))
}

// count adds frames received frames of bytes bytes delivered to n to the
// run of the current network.
func (p *rxPipeline) count(n *network, frames, bytes int) {
	if n != p.cur {
		p.flushCounters()
		p.cur = n
		if !slices.Contains(p.written, n) && len(p.written) < cap(p.written) {
			p.written = append(p.written, n)
		}
	}
	p.pkts += uint64(frames)
	p.bytes += uint64(bytes)
	if frames > 1 {
		p.coalesced++
	}
}

func (p *rxPipeline) flushCounters() {
	if p.cur != nil && p.pkts != 0 {
		p.cur.counters.RxPackets.Add(p.pkts)
		p.cur.counters.RxBytes.Add(p.bytes)
		if p.coalesced != 0 {
			p.cur.counters.RxCoalesced.Add(p.coalesced)
		}
	}
	p.cur, p.pkts, p.bytes, p.coalesced = nil, 0, 0, 0
}

// learn records src behind from. A MAC that is new, or moves, costs a
// token of from's learn_rate bucket; refreshes are free. Learn itself
// refuses group and zero MACs and never touches a static entry, and counts
// what it does in the FDB's stats.
func (e *Engine) learn(n *network, src fdb.MAC, from netip.Addr, peer *peerStats, rate int, now int64) {
	if rate > 0 && src.IsUnicast() && !src.IsZero() {
		if r, ok := e.fdb.Lookup(n.vni, src); !ok || r != from {
			if !peer.learn.allow(now, rate) {
				n.counters.LearnLimited.Add(1)
				return
			}
		}
	}
	e.fdb.Learn(n.vni, src, from, now)
}

// accepted reports whether a is in one of the prefixes.
func accepted(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// countDecapError counts a datagram Decap refused. Only an inner frame
// that is too short has a VNI we can trust enough to label the drop with.
func (e *Engine) countDecapError(nets map[uint32]*network, b []byte, err error) {
	switch {
	case errors.Is(err, encap.ErrTooShort):
		e.unknown.Drop(metrics.TooShort, 1)
	case errors.Is(err, encap.ErrBadFlags):
		e.unknown.Drop(metrics.BadFlags, 1)
	case errors.Is(err, encap.ErrInnerTooShort):
		if n := nets[encap.Header(b).VNI()]; n != nil {
			n.counters.Drop(metrics.InnerTooShort, 1)
		} else {
			e.unknown.Drop(metrics.UnknownVNI, 1)
		}
	default:
		e.unknown.Drop(metrics.TooShort, 1)
	}
}
