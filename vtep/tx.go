package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/neigh"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/underlay"
)

// txPipeline carries one network's frames from its TAP to the underlay.
// Everything it needs per frame is allocated here, once.
type txPipeline struct {
	// mu is held while frames are read from dev and until they are sent:
	// by the pipeline's own goroutine, or by a receive pipeline that polls
	// the queue after writing to it (pollTX).
	mu sync.Mutex

	e           *Engine
	n           *network
	dev         FrameQueue
	bufs        [][]byte
	sizes       []int
	queue       []underlay.Datagram // to unicast destinations: peers and FDB entries
	w           underlay.Writer
	groupQueue  []underlay.Datagram // to the network's multicast group
	groupWriter underlay.Writer
	port        uint16
	lo, hi      uint16
	peer        peerCache
	sent        uint64 // datagrams sent in this batch
	sentB       uint64 // their inner bytes
	flooded     uint64
	cut         uint64 // super-frames segmented in this batch

	// With offloads: super-frames are cut into segs, each segment in a
	// buffer of its own with headroom, like a frame read from the TAP.
	offload bool
	seg     offload.Segmenter
	segs    [][]byte
	nextSeg int // first free buffer of segs
	segMax  int // the longest segment a buffer takes

	// With underlay.udp_gso: a super-frame to one VTEP, and ordinary
	// frames of one flow, leave as trains of datagrams, gathered in trains
	// (train.go) and sent by trainWriter.
	trainWriter *underlay.TrainWriter
	hdrs        []byte // the headers of the trains' segments, up to hoff
	hoff        int
	trains      [maxOpenTrains]openTrain

	// On the control plane: the source MACs reported lately, and a
	// buffer for ARP and ND replies (behind a virtio_net_hdr).
	local localCache
	reply [offload.VirtioNetHdrLen + neigh.MaxReplyLen]byte
}

func (e *Engine) newTxPipeline(n *network, dev FrameQueue, conn underlay.Conn, offloads bool) *txPipeline {
	bs := dev.BatchSize()
	cfg := e.cfg.Load() // the underlay part never changes while running
	// The largest frame the TAP can hand us without offloads: its MTU
	// plus an Ethernet header and up to two VLAN tags.
	frameMax := ether.HeaderLen + ether.MaxTags*ether.TagLen + e.tapMTU
	readMax := frameMax
	if offloads {
		bs = min(bs, offloadReadBatch)
		readMax = maxSuperFrame
	}
	bufSize := encap.Headroom + readMax
	slab := prefault(make([]byte, bs*bufSize))
	p := &txPipeline{
		e:          e,
		n:          n,
		dev:        dev,
		bufs:       make([][]byte, bs),
		sizes:      make([]int, bs),
		queue:      make([]underlay.Datagram, 0, txQueue),
		w:          conn.NewWriter(txQueue),
		groupQueue: make([]underlay.Datagram, 0, bs),
		port:       cfg.Port,
		lo:         cfg.SrcPortLow,
		hi:         cfg.SrcPortHigh,
		offload:    offloads,
	}
	for i := range p.bufs {
		p.bufs[i] = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	if offloads && e.trains != nil {
		p.trainWriter = e.trains.NewWriter(cfg.Port, p.w)
		// Room for the headers of a full train of the longest; a train
		// ends early otherwise.
		p.hdrs = make([]byte, underlay.MaxTrainSegments*(encap.HeaderLen+offload.MaxSegmentHeaderLen))
		for i := range p.trains {
			p.trains[i].parts = make([][]byte, 0, underlay.MaxTrainParts)
		}
	}
	if offloads {
		p.segMax = frameMax
		segSize := encap.Headroom + frameMax
		segSlab := prefault(make([]byte, txSegments*segSize))
		p.segs = make([][]byte, txSegments)
		for i := range p.segs {
			p.segs[i] = segSlab[i*segSize : (i+1)*segSize : (i+1)*segSize]
		}
	}
	if m := n.dev.Load().Multicast; m != nil {
		p.groupWriter = m.NewWriter(cap(p.groupQueue))
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
			if !underlay.IsClosed(err) {
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
	flood := *n.floodList.Load()
	ctl := nc.Control && p.e.ctl.b != nil
	gen := n.local.gen.Load()
	for i := 0; i < count; i++ {
		size := p.sizes[i]
		if size < ether.HeaderLen {
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
		if nc.DropVLAN && ether.Tagged(frame) {
			n.counters.Drop(metrics.VLAN, 1)
			continue
		}
		if ctl && p.controlFrame(frame, nc.ARPSuppress && !gso, gen, now) {
			continue
		}
		remote, ok := p.route(frame, flood, nc.FloodRate, now)
		if !ok {
			continue
		}
		sport := encap.SourcePort(encap.FlowHash(frame), p.lo, p.hi)
		trains := p.trainWriter != nil && remote.IsValid() && !p.e.trains.Failed()
		if !gso {
			if trains {
				p.trainFrame(sport, remote, p.bufs[i], size, now)
				continue
			}
			p.emit(encap.Encap(p.bufs[i], n.vni, sport, p.port, size), remote, flood)
			continue
		}
		if trains {
			if port := p.e.trains.Port(sport, now); port != nil {
				p.trainSegments(port, sport, remote)
				continue
			}
		}
		for !p.seg.Done() {
			buf := p.segBuf()
			m := p.seg.Next(buf[encap.Headroom:])
			p.emit(encap.Encap(buf, n.vni, sport, p.port, m), remote, flood)
		}
	}
	p.flushTrains()
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
func (p *txPipeline) route(frame []byte, flood []netip.Addr, floodRate int, now int64) (remote netip.Addr, ok bool) {
	n := p.n
	dst := fdb.MAC(ether.Header(frame).Dst())
	if dst.IsUnicast() {
		if remote, ok := p.e.fdb.Lookup(n.vni, dst); ok {
			return remote, true
		}
	}
	if len(flood) == 0 && p.groupWriter == nil {
		n.counters.Drop(metrics.NoDestination, 1)
		return netip.Addr{}, false
	}
	if !n.flood.allow(now, floodRate) {
		n.counters.Drop(metrics.Storm, 1)
		return netip.Addr{}, false
	}
	return netip.Addr{}, true
}

// emit queues the datagram pkt for remote, or, for an invalid remote, for
// every VTEP of the flood list and the group.
func (p *txPipeline) emit(pkt []byte, remote netip.Addr, flood []netip.Addr) {
	if remote.IsValid() {
		p.enqueue(pkt, remote)
		return
	}
	for _, peer := range flood {
		p.enqueue(pkt, peer)
		p.flooded++
	}
	if p.groupWriter != nil {
		p.flushTrains() // they may hold the flow's earlier frames
		if len(p.groupQueue) == cap(p.groupQueue) {
			p.groupQueue = p.send(p.groupWriter, p.groupQueue)
		}
		p.groupQueue = append(p.groupQueue, underlay.Datagram{Buf: pkt, Addr: p.n.group})
		p.flooded++
	}
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
	if p.groupWriter != nil {
		p.groupQueue = p.send(p.groupWriter, p.groupQueue)
	}
}

// enqueue adds a datagram for a unicast destination, sending the queue
// first when it is full.
func (p *txPipeline) enqueue(pkt []byte, to netip.Addr) {
	p.flushTrains() // they may hold the flow's earlier frames
	if len(p.queue) == cap(p.queue) {
		p.queue = p.send(p.w, p.queue)
	}
	p.queue = append(p.queue, underlay.Datagram{Buf: pkt, Addr: to})
}

// send writes queue through w and returns it emptied. A datagram the
// kernel refuses is counted and skipped; a closed socket ends the batch
// (the TAP read that follows reports the shutdown).
func (p *txPipeline) send(w underlay.Writer, queue []underlay.Datagram) []underlay.Datagram {
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
		if underlay.IsClosed(err) {
			break
		}
		p.n.counters.Drop(sendDropReason(err), 1)
		q = q[1:]
	}
	clear(queue) // drop references to the buffers
	return queue[:0]
}

// sendDropReason is the drop reason of a datagram the kernel refused.
func sendDropReason(err error) metrics.Reason {
	if errors.Is(err, syscall.EMSGSIZE) {
		return metrics.TooBig
	}
	return metrics.SendError
}
