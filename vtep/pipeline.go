package vtep

import (
	"errors"
	"fmt"
	"net/netip"

	"syscall"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
)

// txPipeline carries one network's frames from its TAP to the underlay.
// Everything it needs per frame is allocated here, once.
type txPipeline struct {
	e       *Engine
	n       *network
	dev     FrameQueue
	bufs    [][]byte
	sizes   []int
	queue   []Datagram // to unicast destinations: peers and FDB entries
	w       BatchWriter
	mqueue  []Datagram // to the network's multicast group
	mw      BatchWriter
	port    uint16
	lo, hi  uint16
	peer    peerCache
	sent    uint64 // datagrams sent in this batch
	sentB   uint64 // their inner bytes
	flooded uint64
}

func (e *Engine) newTxPipeline(n *network, dev FrameQueue, conn BatchConn) *txPipeline {
	bs := dev.BatchSize()
	cfg := e.cfg.Load() // the underlay part never changes while running
	// Headroom for our headers, then the largest frame the TAP can hand
	// us: its MTU plus an Ethernet header and up to two VLAN tags.
	bufSize := encap.Headroom + encap.EthernetHeaderLen + 2*encap.VLANTagLen + e.tapMTU
	slab := make([]byte, bs*bufSize)
	p := &txPipeline{
		e:      e,
		n:      n,
		dev:    dev,
		bufs:   make([][]byte, bs),
		sizes:  make([]int, bs),
		queue:  make([]Datagram, 0, txQueue),
		w:      conn.NewWriter(txQueue),
		mqueue: make([]Datagram, 0, dev.BatchSize()),
		port:   cfg.Port,
		lo:     cfg.SrcPortLow,
		hi:     cfg.SrcPortHigh,
	}
	for i := range p.bufs {
		p.bufs[i] = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	if m := n.dev.Load().Multicast; m != nil {
		p.mw = m.NewWriter(cap(p.mqueue))
	}
	return p
}

// A read error other than our own close means the TAP is gone (deleted
// under us): the pipeline ends and the TAP is recreated.
func (e *Engine) txLoop(n *network, owner *Device, dev FrameQueue, conn BatchConn) {
	p := e.newTxPipeline(n, dev, conn)
	for {
		count, err := dev.Read(p.bufs, p.sizes, encap.Headroom)
		if err != nil {
			if !isClosed(err) {
				e.tapLost(n, owner, fmt.Errorf("read %s: %w", dev.Name(), err))
			}
			return
		}
		p.forward(count)
	}
}

// forward encapsulates count frames read into p.bufs and sends them: a
// known unicast destination gets one datagram, anything else one per peer.
// Floods share the frame's buffer: the headers are the same for every peer.
func (p *txPipeline) forward(count int) {
	n := p.n
	nc := n.cfg.Load() // peers and group may change between batches
	now := p.e.Now()
	for i := 0; i < count; i++ {
		size := p.sizes[i]
		if size < encap.EthernetHeaderLen {
			n.counters.Drop(metrics.Runt, 1)
			continue
		}
		frame := p.bufs[i][encap.Headroom : encap.Headroom+size]
		if nc.DropVLAN && tagged(frame) {
			n.counters.Drop(metrics.VLAN, 1)
			continue
		}
		sport := encap.SourcePort(encap.FlowHash(frame), p.lo, p.hi)
		pkt := encap.Encap(p.bufs[i], n.vni, sport, p.port, size)
		dst := fdb.MAC(frame[0:6])
		if dst.IsUnicast() {
			if remote, ok := p.e.fdb.Lookup(n.vni, dst); ok {
				p.enqueue(pkt, remote)
				continue
			}
		}
		if len(nc.Peers) == 0 && p.mw == nil {
			n.counters.Drop(metrics.NoDestination, 1)
			continue
		}
		if !n.flood.allow(now, nc.FloodRate) {
			n.counters.Drop(metrics.Storm, 1)
			continue
		}
		for _, peer := range nc.Peers {
			p.enqueue(pkt, peer)
			p.flooded++
		}
		if p.mw != nil {
			// One slot per frame read: the group queue never overflows.
			p.mqueue = append(p.mqueue, Datagram{Buf: pkt, Addr: n.group})
			p.flooded++
		}
	}
	p.queue = p.send(p.w, p.queue)
	if p.mw != nil {
		p.mqueue = p.send(p.mw, p.mqueue)
	}
	c := &n.counters
	c.TxPackets.Add(p.sent)
	c.TxBytes.Add(p.sentB)
	c.FloodPackets.Add(p.flooded)
	p.sent, p.sentB, p.flooded = 0, 0, 0
}

// enqueue adds a datagram for a unicast destination, sending the queue
// first when it is full.
func (p *txPipeline) enqueue(pkt []byte, to netip.Addr) {
	if len(p.queue) == cap(p.queue) {
		p.queue = p.send(p.w, p.queue)
	}
	p.queue = append(p.queue, Datagram{Buf: pkt, Addr: to})
}

// send writes queue through w and returns it emptied. A datagram the
// kernel refuses is counted and skipped; a closed socket ends the batch
// (the TAP read that follows reports the shutdown).
func (p *txPipeline) send(w BatchWriter, queue []Datagram) []Datagram {
	q := queue
	for len(q) > 0 {
		sent, err := w.WriteBatch(q)
		for _, d := range q[:sent] {
			p.sentB += uint64(len(d.Buf) - encap.Headroom)
			p.peer.count(&p.e.peers, d.Addr, len(d.Buf), false)
		}
		p.sent += uint64(sent)
		q = q[sent:]
		if err == nil {
			continue
		}
		if isClosed(err) {
			break
		}
		reason := metrics.SendError
		if errors.Is(err, syscall.EMSGSIZE) {
			reason = metrics.TooBig
		}
		p.n.counters.Drop(reason, 1)
		q = q[1:]
	}
	clear(queue) // drop references to the buffers
	return queue[:0]
}

// rxPipeline carries datagrams from one receive socket to the networks'
// TAPs, writing to TAP queue number queue (modulo each TAP's queues).
type rxPipeline struct {
	e     *Engine
	queue int
	dg    []Datagram
	// What the current run of datagrams of one network delivered: the
	// shared counters are bumped when the network changes or the batch
	// ends, not once per datagram.
	cur         *network
	pkts, bytes uint64
	peer        peerCache
}

func (e *Engine) newRxPipeline(queue int) *rxPipeline {
	slab := make([]byte, rxBatch*rxBufferSize)
	p := &rxPipeline{
		e:     e,
		queue: queue,
		dg:    make([]Datagram, rxBatch),
	}
	for i := range p.dg {
		p.dg[i].Buf = slab[i*rxBufferSize : (i+1)*rxBufferSize : (i+1)*rxBufferSize]
	}
	return p
}

func (e *Engine) rxLoop(queue int, conn BatchConn) error {
	p := e.newRxPipeline(queue)
	for {
		count, err := conn.ReadBatch(p.dg)
		if err != nil {
			if isClosed(err) {
				return nil
			}
			return fmt.Errorf("underlay receive: %w", err)
		}
		p.deliver(count)
	}
}

// deliver validates, learns from and delivers count received datagrams.
// Decapsulated frames only ever go to a TAP, never back to the tunnel.
func (p *rxPipeline) deliver(count int) {
	e := p.e
	now := e.Now()
	nets := e.nets.Load().byVNI
	cfg := e.cfg.Load()
	for i := 0; i < count; i++ {
		d := &p.dg[i]
		peer := p.peer.count(&e.peers, d.Addr, d.N, true)
		peer.lastSeen.Store(now)
		vni, inner, err := encap.Decap(d.Buf[:d.N])
		if err != nil {
			e.countDecapError(nets, d.Buf[:d.N], err)
			continue
		}
		n := nets[vni]
		if n == nil {
			e.unknown.Drop(metrics.UnknownVNI, 1)
			continue
		}
		nc := n.cfg.Load()
		if len(nc.AcceptFrom) > 0 && !accepted(nc.AcceptFrom, d.Addr) {
			n.counters.Drop(metrics.Source, 1)
			continue
		}
		src := fdb.MAC(inner[6:12])
		dev := n.dev.Load()
		if src == dev.MAC && !src.IsZero() {
			n.counters.Drop(metrics.Loop, 1)
			continue
		}
		if nc.DropVLAN && tagged(inner) {
			n.counters.Drop(metrics.VLAN, 1)
			continue
		}
		if nc.Learning && d.Addr != cfg.Local {
			e.learn(n, src, d.Addr, peer, cfg.LearnRate, now)
		}
		q := dev.Queues
		if _, err := q[p.queue%len(q)].Write(inner); err != nil {
			n.counters.Drop(metrics.TAPError, 1)
			continue
		}
		if n != p.cur {
			p.flushCounters()
			p.cur = n
		}
		p.pkts++
		p.bytes += uint64(len(inner))
	}
	p.flushCounters()
}

func (p *rxPipeline) flushCounters() {
	if p.cur != nil && p.pkts != 0 {
		p.cur.counters.RxPackets.Add(p.pkts)
		p.cur.counters.RxBytes.Add(p.bytes)
	}
	p.cur, p.pkts, p.bytes = nil, 0, 0
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

// tagged reports whether an Ethernet frame carries an 802.1Q or 802.1ad
// tag (RFC 7348 §6.1: such inner frames are dropped unless configured).
func tagged(frame []byte) bool {
	switch uint16(frame[12])<<8 | uint16(frame[13]) {
	case 0x8100, 0x88a8, 0x9100:
		return true
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
