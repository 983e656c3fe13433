package vtep

import (
	"net/netip"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/underlay"
)

// Design notes on trains (underlay.udp_gso).
//
// A train is datagrams of one size (the last may be shorter, and then
// ends it) from the socket of one source port to one VTEP, sent in one
// sendmsg with UDP_SEGMENT: the kernel carries it as one packet through
// IP, the underlay device, and in a lab or on one host the veth, the
// bridge and the receiving VTEP's stack, and cuts it only where it must.
// Two kinds of frames make trains:
//
//   - The segments of a TCP or UDP super-frame read from the TAP: each
//     segment's headers are built in p.hdrs and its payload is sent from
//     where the TAP read it.
//   - Ordinary frames, when a batch holds several of one flow: a container
//     that sends small UDP datagrams, or a stream of them, fills the batch
//     with frames of equal size. Each is its own datagram, VXLAN header in
//     the frame's headroom. This is what makes small frames cheap: one
//     trip through the kernel for up to underlay.MaxTrainSegments of them,
//     where sendmmsg makes one trip per datagram, and the receiving vtepd
//     gets them in one message (UDP_GRO) and writes them to its TAP as one
//     super-frame (offload.Coalescer.MergeUDP).
//
// Up to maxOpenTrains trains are open at once, one per source port and
// VTEP, so that frames of a few flows interleaved in a batch still make
// long trains. A train of one ordinary frame is not worth a sendmsg of its
// own: it joins the raw socket's sendmmsg batch instead (demote), so that
// a batch of many flows with one frame each costs what it did before. Nor
// is it worth a socket: a flow's port socket is opened (underlay.Trains.
// Port) only when a second frame joins its train, so that a host with
// thousands of sparse flows does not bind a port for each of them.
//
// Order. Frames of one flow always take the same source port and VTEP, so
// they meet in the same train, in order. Between a flow's train and the
// raw socket's queue the order is kept by two rules: before a train goes
// out, the queue does (it may hold the flow's earlier frames, demoted or
// not), and before a frame is queued for the raw socket, every open train
// goes out (it may hold frames of the frame's flow). Between flows, order
// does not matter.

// maxOpenTrains is how many trains a TX pipeline builds at once.
const maxOpenTrains = 8

// openTrain is a train being built: segs datagrams of segSize bytes (the
// last may be shorter), size bytes in all, from the socket of source port
// sport to remote, laid out in parts: each segment's headers then its
// payload, or an ordinary frame with its VXLAN header. single is the
// buffer of a train of one ordinary frame, which demote sends through the
// raw socket.
type openTrain struct {
	port                *underlay.Port
	sport               uint16
	remote              netip.Addr
	segs, size, segSize int
	parts               [][]byte
	single              []byte
	singleLen           int
}

// ended reports whether the train's last datagram is shorter than the
// others: nothing may follow it.
func (t *openTrain) ended() bool { return t.segs > 0 && t.size%t.segSize != 0 }

// full reports whether a datagram of m bytes, with parts more slices,
// cannot join the train.
func (t *openTrain) full(m, parts int) bool {
	return t.segs == underlay.MaxTrainSegments || t.size+m > underlay.MaxTrainBytes ||
		len(t.parts)+parts > cap(t.parts) || t.ended() || m > t.segSize
}

// trainFor returns the open train from source port sport to remote,
// opening one (empty, with no port socket yet) if there is none; when all
// are taken, every train is sent first.
func (p *txPipeline) trainFor(sport uint16, remote netip.Addr) *openTrain {
	free := -1
	for i := range p.trains {
		t := &p.trains[i]
		if t.segs == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		if t.sport == sport && t.remote == remote {
			return t
		}
	}
	if free < 0 {
		p.flushTrains()
		free = 0
	}
	t := &p.trains[free]
	t.sport, t.remote = sport, remote
	return t
}

// trainFrame adds the ordinary frame buf[encap.Headroom:][:size], which
// goes to remote from source port sport, to its flow's train. The second
// frame of a train opens the flow's port socket; where the port cannot be
// had, both go by the raw socket.
func (p *txPipeline) trainFrame(sport uint16, remote netip.Addr, buf []byte, size int, now int64) {
	if len(p.groupQueue) > 0 {
		p.flush() // a flood to the group may hold the flow's earlier frames
	}
	t := p.trainFor(sport, remote)
	m := encap.HeaderLen + size
	if t.segs > 0 && t.full(m, 1) {
		p.sendTrain(t)
		t.sport, t.remote = sport, remote
	}
	if t.segs > 0 && t.port == nil {
		if t.port = p.e.trains.Port(sport, now); t.port == nil {
			p.demote(t)
			p.queueRaw(encap.Encap(buf, p.n.vni, sport, p.port, size), remote)
			return
		}
	}
	encap.Header(buf[encap.UDPHeaderLen:encap.Headroom]).Encode(p.n.vni)
	t.parts = append(t.parts, buf[encap.UDPHeaderLen:encap.Headroom+size])
	if t.segs == 0 {
		t.segSize = m
		t.single, t.singleLen = buf, size
	} else {
		t.single = nil
	}
	t.segs++
	t.size += m
}

// trainSegments adds what is left of p.seg, a super-frame for remote from
// source port sport, to its flow's train, which is sent whenever it is
// full. The train stays open for the next super-frame of the batch: a
// 64 KiB super-frame of full-sized segments makes a few more datagrams than
// one train holds (underlay.MaxTrainBytes), and the next super-frame of the
// same flow fills the second train where it would otherwise leave nearly
// empty. A train is each segment's VXLAN and inner headers, built in
// p.hdrs, followed by its payload where the TAP read it: one copy fewer
// than building datagrams.
func (p *txPipeline) trainSegments(port *underlay.Port, sport uint16, remote netip.Addr) {
	if len(p.groupQueue) > 0 {
		p.flush()
	}
	vni := p.n.vni
	for !p.seg.Done() {
		m := encap.HeaderLen + p.seg.MaxSegmentLen()
		if p.hoff+encap.HeaderLen+p.seg.HeaderLen() > len(p.hdrs) {
			p.flushTrains() // no room left for headers: send everything
		}
		t := p.trainFor(sport, remote)
		if t.segs > 0 && (t.full(m, 2) || m != t.segSize) {
			p.sendTrain(t)
			t.sport, t.remote = sport, remote
		}
		t.port = port
		h := p.hdrs[p.hoff:]
		encap.Header(h).Encode(vni)
		n, payload := p.seg.NextHeader(h[encap.HeaderLen:])
		hdr := h[:encap.HeaderLen+n]
		m = len(hdr) + len(payload)
		if t.segs == 0 {
			t.segSize = m
		}
		p.hoff += len(hdr)
		t.size += m
		t.segs++
		t.single = nil
		t.parts = append(t.parts, hdr, payload)
	}
}

// flushTrains sends every open train: those of one ordinary frame through
// the raw socket's queue, which goes first, then the others.
func (p *txPipeline) flushTrains() {
	for i := range p.trains {
		if t := &p.trains[i]; t.single != nil {
			p.demote(t)
		}
	}
	for i := range p.trains {
		if t := &p.trains[i]; t.segs > 0 {
			p.sendTrain(t)
		}
	}
	p.hoff = 0
}

// demote queues the one ordinary frame of train t for the raw socket, and
// closes t.
func (p *txPipeline) demote(t *openTrain) {
	p.queueRaw(encap.Encap(t.single, p.n.vni, t.sport, p.port, t.singleLen), t.remote)
	p.closeTrain(t)
}

// queueRaw queues the datagram pkt for the raw socket, leaving the open
// trains be: unlike enqueue, for a frame whose flow has none open.
func (p *txPipeline) queueRaw(pkt []byte, to netip.Addr) {
	if len(p.queue) == cap(p.queue) {
		p.queue = p.send(p.w, p.queue)
	}
	p.queue = append(p.queue, underlay.Datagram{Buf: pkt, Addr: to})
}

// sendTrain sends train t and closes it, after whatever is queued for the
// raw socket (it may hold the flow's earlier frames). The underlay sends a
// train the kernel will not take datagram by datagram instead
// (TrainWriter).
func (p *txPipeline) sendTrain(t *openTrain) {
	if t.single != nil {
		p.demote(t)
		return
	}
	if len(p.queue) > 0 {
		p.queue = p.send(p.w, p.queue)
	}
	sent, err := p.trainWriter.WriteTrain(t.port, t.remote, t.parts, t.segSize)
	// Every datagram but the last is segSize long: exact unless one in
	// the middle failed, which only a failing underlay does.
	bytes := min(sent*t.segSize, t.size)
	p.sent += uint64(sent)
	p.sentB += uint64(bytes - sent*encap.HeaderLen)
	p.peer.addTx(&p.e.peers, t.remote, sent, bytes+sent*encap.UDPHeaderLen)
	if sent < t.segs && !underlay.IsClosed(err) {
		p.n.counters.Drop(sendDropReason(err), uint64(t.segs-sent))
	}
	p.closeTrain(t)
}

// closeTrain empties t, holding no buffer past it.
func (p *txPipeline) closeTrain(t *openTrain) {
	clear(t.parts)
	*t = openTrain{parts: t.parts[:0]}
}
