package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/offload"
)

// txPipeline carries one network's frames from its TAP to the underlay.
// Everything it needs per frame is allocated here, once.
type txPipeline struct {
	// mu is held while frames are read from dev and until they are sent:
	// by the pipeline's own goroutine, or by a receive pipeline that polls
	// the queue after writing to it (pollTX).
	mu sync.Mutex

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
	cut     uint64 // super-frames segmented in this batch

	// With offloads: super-frames are cut into segs, each segment in a
	// buffer of its own with headroom, like a frame read from the TAP.
	offload bool
	seg     offload.Segmenter
	segs    [][]byte
	nextSeg int // first free buffer of segs
	segMax  int // the longest segment a buffer takes

	// With underlay.udp_gso: a super-frame to one VTEP leaves as trains
	// of datagrams, built in train, one sendmsg each (gso_linux.go).
	gw    *gsoWriter
	hdrs  []byte   // the headers of a train's segments
	parts [][]byte // a train: each segment's headers, then its payload
	train openTrain
}

func (e *Engine) newTxPipeline(n *network, dev FrameQueue, conn BatchConn, off bool) *txPipeline {
	bs := dev.BatchSize()
	cfg := e.cfg.Load() // the underlay part never changes while running
	// The largest frame the TAP can hand us without offloads: its MTU
	// plus an Ethernet header and up to two VLAN tags.
	frameMax := encap.EthernetHeaderLen + 2*encap.VLANTagLen + e.tapMTU
	readMax := frameMax
	if off {
		bs = min(bs, offloadReadBatch)
		readMax = maxSuperFrame
	}
	bufSize := encap.Headroom + readMax
	slab := prefault(make([]byte, bs*bufSize))
	p := &txPipeline{
		e:       e,
		n:       n,
		dev:     dev,
		bufs:    make([][]byte, bs),
		sizes:   make([]int, bs),
		queue:   make([]Datagram, 0, txQueue),
		w:       conn.NewWriter(txQueue),
		mqueue:  make([]Datagram, 0, bs),
		port:    cfg.Port,
		lo:      cfg.SrcPortLow,
		hi:      cfg.SrcPortHigh,
		offload: off,
	}
	for i := range p.bufs {
		p.bufs[i] = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	if off && e.gso != nil {
		p.gw = newGSOWriter(cfg.Port)
		// Room for the headers of a full train of the longest (60-byte IP
		// and TCP headers, two VLAN tags); a train ends early otherwise.
		p.hdrs = make([]byte, gsoMaxSegments*(encap.HeaderLen+encap.EthernetHeaderLen+2*encap.VLANTagLen+60+60))
		p.parts = make([][]byte, 0, 2*gsoMaxSegments)
	}
	if off {
		p.segMax = frameMax
		segSize := encap.Headroom + frameMax
		segSlab := prefault(make([]byte, txSegments*segSize))
		p.segs = make([][]byte, txSegments)
		for i := range p.segs {
			p.segs[i] = segSlab[i*segSize : (i+1)*segSize : (i+1)*segSize]
		}
	}
	if m := n.dev.Load().Multicast; m != nil {
		p.mw = m.NewWriter(cap(p.mqueue))
	}
	return p
}

// A read error other than our own close means the TAP is gone (deleted
// under us): the pipeline ends and the TAP is recreated.
func (e *Engine) txLoop(n *network, owner *Device, p *txPipeline) {
	for {
		e.busy.waitIdle()
		count, err := p.dev.ReadLocked(p.bufs, p.sizes, encap.Headroom, &p.mu)
		if err != nil {
			if !isClosed(err) {
				e.tapLost(n, owner, fmt.Errorf("read %s: %w", p.dev.Name(), err))
			}
			return
		}
		p.forward(count)
		p.mu.Unlock()
		if e.cfg.Load().BusyPoll > 0 {
			e.busy.traffic()
		}
	}
}

// poll forwards what is queued on the TAP queue now, unless the
// pipeline's own goroutine is at it (it then reads the queue dry itself),
// and says whether there was anything.
func (p *txPipeline) poll() bool {
	if !p.mu.TryLock() {
		return false
	}
	count, _ := p.dev.TryRead(p.bufs, p.sizes, encap.Headroom)
	if count > 0 {
		p.forward(count) // an error is the pipeline's own goroutine's to handle
	}
	p.mu.Unlock()
	return count > 0
}

// forward encapsulates count frames read into p.bufs and sends them: a
// known unicast destination gets one datagram, anything else one per peer.
// Floods share the frame's buffer: the headers are the same for every peer.
//
// With offloads, a super-frame is cut into segments, each encapsulated in
// a buffer of its own: the FDB lookup and the flow hash (so the UDP source
// port) are done once for all of them, and they leave in the same
// sendmmsg batches as everything else. A frame whose checksum the kernel
// left partial gets it completed.
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
		gso := false
		if p.offload {
			var h offload.VirtioNetHdr
			h.Decode(p.bufs[i][encap.Headroom-offload.VirtioNetHdrLen : encap.Headroom])
			switch {
			case h.IsGSO():
				if p.seg.Reset(frame, &h) != nil {
					n.counters.Drop(metrics.Offload, 1)
					continue
				}
				if p.seg.MaxSegmentLen() > p.segMax {
					n.counters.Drop(metrics.TooBig, 1)
					continue
				}
				gso = true
				p.cut++
			case h.Flags&offload.FlagNeedsCsum != 0:
				if offload.CompleteChecksum(frame, &h) != nil {
					n.counters.Drop(metrics.Offload, 1)
					continue
				}
			}
		}
		if nc.DropVLAN && tagged(frame) {
			n.counters.Drop(metrics.VLAN, 1)
			continue
		}
		remote, ok := p.route(frame, nc, now)
		if !ok {
			continue
		}
		sport := encap.SourcePort(encap.FlowHash(frame), p.lo, p.hi)
		if !gso {
			p.emit(encap.Encap(p.bufs[i], n.vni, sport, p.port, size), remote, nc)
			continue
		}
		if p.gw != nil && remote.IsValid() {
			if s := p.e.gso.get(sport, now); s != nil {
				p.sendTrains(s, sport, remote)
				continue
			}
		}
		for !p.seg.Done() {
			buf := p.segBuf()
			m := p.seg.Next(buf[encap.Headroom:])
			p.emit(encap.Encap(buf, n.vni, sport, p.port, m), remote, nc)
		}
	}
	p.sendTrain()
	p.flush()
	p.nextSeg = 0
	c := &n.counters
	c.TxPackets.Add(p.sent)
	c.TxBytes.Add(p.sentB)
	c.FloodPackets.Add(p.flooded)
	if p.cut != 0 {
		c.TxSegmented.Add(p.cut)
	}
	p.sent, p.sentB, p.flooded, p.cut = 0, 0, 0, 0
}

// route says where a frame goes: to the remote VTEP the FDB knows for its
// destination, or, when the returned address is invalid, flooded to the
// peers and the group. ok is false when the frame is dropped (counted).
// A super-frame counts as one frame against flood_rate.
func (p *txPipeline) route(frame []byte, nc *NetworkConfig, now int64) (remote netip.Addr, ok bool) {
	n := p.n
	dst := fdb.MAC(frame[0:6])
	if dst.IsUnicast() {
		if remote, ok := p.e.fdb.Lookup(n.vni, dst); ok {
			return remote, true
		}
	}
	if len(nc.Peers) == 0 && p.mw == nil {
		n.counters.Drop(metrics.NoDestination, 1)
		return netip.Addr{}, false
	}
	if !n.flood.allow(now, nc.FloodRate) {
		n.counters.Drop(metrics.Storm, 1)
		return netip.Addr{}, false
	}
	return netip.Addr{}, true
}

// emit queues the datagram pkt for remote, or, for an invalid remote, for
// every peer and the group.
func (p *txPipeline) emit(pkt []byte, remote netip.Addr, nc *NetworkConfig) {
	if remote.IsValid() {
		p.enqueue(pkt, remote)
		return
	}
	for _, peer := range nc.Peers {
		p.enqueue(pkt, peer)
		p.flooded++
	}
	if p.mw != nil {
		p.sendTrain() // a train being built goes before anything else
		if len(p.mqueue) == cap(p.mqueue) {
			p.mqueue = p.send(p.mw, p.mqueue)
		}
		p.mqueue = append(p.mqueue, Datagram{Buf: pkt, Addr: p.n.group})
		p.flooded++
	}
}

// openTrain is the UDP GSO train being built: datagrams of segSize
// bytes (the last may be shorter, and then ends it) from socket s, the
// socket of source port sport, to remote; their headers fill hdrs up to
// hoff, and p.parts holds headers and payloads in turn.
type openTrain struct {
	s                         *portSocket
	sport                     uint16
	remote                    netip.Addr
	segs, size, segSize, hoff int
}

// ended reports whether the train's last datagram is shorter than the
// others: nothing may follow it.
func (t *openTrain) ended() bool { return t.segs > 0 && t.size%t.segSize != 0 }

// sendTrains adds what is left of p.seg, a super-frame for remote, to the
// open train, which is sent whenever it is full. The train stays open for
// the next super-frame of the batch: a 64 KiB super-frame makes 46
// datagrams, two more than a train holds, and the next one of the same
// flow fills the second train where it would leave with two. It is sent
// before anything else goes out, and at the end of the batch, so nothing
// overtakes it. A train is each segment's VXLAN and inner headers, built
// in p.hdrs, followed by its payload where the TAP read it: one copy fewer
// than building datagrams. Whatever is queued for the raw socket goes
// before it, so that a flow's frames keep their order.
func (p *txPipeline) sendTrains(s *portSocket, sport uint16, remote netip.Addr) {
	t := &p.train
	if t.segs > 0 && (t.s != s || t.remote != remote || encap.HeaderLen+p.seg.MaxSegmentLen() != t.segSize) {
		p.sendTrain() // another flow, or segments of another size
	}
	if len(p.queue) > 0 || len(p.mqueue) > 0 {
		p.flush()
	}
	vni := p.n.vni
	for !p.seg.Done() {
		if t.segs == gsoMaxSegments || t.size+encap.HeaderLen+p.seg.MaxSegmentLen() > gsoMaxTrain ||
			t.hoff+encap.HeaderLen+p.seg.HeaderLen() > len(p.hdrs) || t.ended() {
			p.sendTrain()
		}
		if t.segs == 0 {
			t.s, t.sport, t.remote = s, sport, remote
		}
		h := p.hdrs[t.hoff:]
		encap.Header(h).Encode(vni)
		n, payload := p.seg.NextHeader(h[encap.HeaderLen:])
		hdr := h[:encap.HeaderLen+n]
		m := len(hdr) + len(payload)
		if t.segs == 0 {
			t.segSize = m
		}
		t.hoff += len(hdr)
		t.size += m
		t.segs++
		p.parts = append(p.parts, hdr, payload)
	}
}

// sendTrain sends the open train, if any. A train the kernel will not
// take goes out by the raw socket instead; if it never will (no checksum
// offload on the way), UDP GSO is given up.
func (p *txPipeline) sendTrain() {
	t := p.train
	if t.segs == 0 {
		return
	}
	p.train = openTrain{} // closed: what follows may enqueue
	parts := p.parts
	err := p.gw.send(t.s, parts, t.segSize, t.remote)
	if err == nil {
		p.sent += uint64(t.segs)
		p.sentB += uint64(t.size - t.segs*encap.HeaderLen)
		p.peer.addTx(&p.e.peers, t.remote, t.segs, t.size+t.segs*encap.UDPHeaderLen)
		clear(parts) // hold no buffer past the train
		p.parts = parts[:0]
		return
	}
	if errors.Is(err, errGSORefused) && p.e.gso.failed.CompareAndSwap(false, true) {
		p.e.log.Warn("UDP GSO refused by the underlay; sending datagram by datagram", "err", err)
	}
	for k := 0; k < len(parts); k += 2 {
		buf := p.segBuf()
		m := copy(buf[encap.UDPHeaderLen:], parts[k])
		m += copy(buf[encap.UDPHeaderLen+m:], parts[k+1])
		encap.UDP(buf).Encode(t.sport, p.port, encap.UDPHeaderLen+m)
		p.enqueue(buf[:encap.UDPHeaderLen+m], t.remote)
	}
	clear(parts)
	p.parts = parts[:0]
}

// segBuf returns a free segment buffer. When none is left, everything
// queued is sent first, which frees them all.
func (p *txPipeline) segBuf() []byte {
	if p.nextSeg == len(p.segs) {
		p.flush()
		p.nextSeg = 0
	}
	b := p.segs[p.nextSeg]
	p.nextSeg++
	return b
}

// flush sends both queues.
func (p *txPipeline) flush() {
	p.queue = p.send(p.w, p.queue)
	if p.mw != nil {
		p.mqueue = p.send(p.mw, p.mqueue)
	}
}

// enqueue adds a datagram for a unicast destination, sending the queue
// first when it is full.
func (p *txPipeline) enqueue(pkt []byte, to netip.Addr) {
	p.sendTrain() // a train being built goes before anything else
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
	conn  BatchConn
	e     *Engine
	queue int
	dg    []Datagram
	// What the current run of datagrams of one network delivered: the
	// shared counters are bumped when the network changes or the batch
	// ends, not once per datagram.
	cur         *network
	pkts, bytes uint64
	coalesced   uint64
	peer        peerCache

	// For TAPs with offloads: slots[i] is dg[i].Buf with rxHeadroom in
	// front; frames wait in co until the batch is read (or co is full),
	// merged where they can be, and nets[k] is the network of output k.
	slots [][]byte
	co    *offload.Coalescer
	nets  []*network

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

func (e *Engine) newRxPipeline(queue int, conn BatchConn) *rxPipeline {
	slab := prefault(make([]byte, rxBatch*rxSlot))
	p := &rxPipeline{
		e:       e,
		conn:    conn,
		queue:   queue,
		dg:      make([]Datagram, rxBatch),
		slots:   make([][]byte, rxBatch),
		co:      offload.NewCoalescer(rxCoalesce, e.tapMTU, rxSpares),
		nets:    make([]*network, rxCoalesce),
		written: make([]*network, 0, maxPolledNetworks),
		// The longest frame the TAP takes: its MTU, Ethernet, two tags.
		scratch: make([]byte, encap.EthernetHeaderLen+2*encap.VLANTagLen+e.tapMTU),
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
			if isClosed(err) {
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
	cfg  *Config
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
	p.co.Reset()
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
			if n := p.datagram(&b, i, off, end, peer, train); n != nil && !counted {
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

// datagram delivers the datagram dg[i].Buf[off:end], one of a train if
// train is set, and returns its network when it has one.
func (p *rxPipeline) datagram(b *rxBatchState, i, off, end int, peer *peerStats, train bool) *network {
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
	src := fdb.MAC(inner[6:12])
	dev := n.dev.Load()
	if src == dev.MAC && !src.IsZero() {
		n.counters.Drop(metrics.Loop, 1)
		return n
	}
	if nc.DropVLAN && tagged(inner) {
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
		if p.co.Room() == 0 || p.co.FreeSpares() == 0 {
			p.flushCoalesced()
		}
		slot := p.slots[i]
		start := rxHeadroom + off + encap.HeaderLen
		if train {
			slot = slot[: rxHeadroom+end : rxHeadroom+end]
		}
		k := len(p.co.Outputs()) // the output's index, if it starts one
		p.nets[k] = n
		p.co.Add(slot, start, len(inner), k, vni)
		return n
	}
	// A checksum the sender's kernel left to an offload that never ran
	// is finished here, or the container drops the frame; a TCP
	// segment too long for the TAP is cut (offload.CheckL4, GSOFor).
	if l4 := offload.CheckL4(inner); l4.State == offload.L4Good || l4.State == offload.L4Partial {
		if len(inner) > encap.EthernetHeaderLen+e.tapMTU {
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
	p.co.Finish()
	outs := p.co.Outputs()
	for k := range outs {
		o := &outs[k]
		n := p.nets[o.Index]
		p.write(n, n.dev.Load(), o.Packet(), o.Frames, o.Bytes)
	}
	clear(p.nets[:min(len(outs)+1, len(p.nets))]) // hold no network past its batch
	p.co.Reset()
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

// prefault touches every page of a pipeline's buffers as it is made, so
// that they are resident from the start: no page fault on the data path
// the first time a big batch arrives, and a resident size that does not
// creep up as traffic reaches ever more of them.
func prefault(b []byte) []byte {
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 0
	}
	return b
}
