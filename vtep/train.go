package vtep

import (
	"net/netip"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/underlay"
)

// openTrain is the UDP GSO train being built: datagrams of segSize
// bytes (the last may be shorter, and then ends it) from the socket of
// the flow's source port to remote; their headers fill hdrs up to
// hoff, and p.parts holds headers and payloads in turn.
type openTrain struct {
	port                      *underlay.Port
	remote                    netip.Addr
	segs, size, segSize, hoff int
}

// ended reports whether the train's last datagram is shorter than the
// others: nothing may follow it.
func (t *openTrain) ended() bool { return t.segs > 0 && t.size%t.segSize != 0 }

// trainSegments adds what is left of p.seg, a super-frame for remote, to
// the open train, which is sent whenever it is full. The train stays open
// for the next super-frame of the batch: a 64 KiB super-frame of
// full-sized segments makes a few more datagrams than one train holds
// (underlay.MaxTrainBytes), and the next super-frame of the same flow fills the
// second train where it would otherwise leave nearly empty. It is sent
// before anything else goes out, and at the end of the batch, so nothing
// overtakes it. A train is each segment's VXLAN and inner headers, built
// in p.hdrs, followed by its payload where the TAP read it: one copy fewer
// than building datagrams. Whatever is queued for the raw socket goes
// before it, so that a flow's frames keep their order.
func (p *txPipeline) trainSegments(port *underlay.Port, remote netip.Addr) {
	t := &p.train
	if t.segs > 0 && (t.port != port || t.remote != remote || encap.HeaderLen+p.seg.MaxSegmentLen() != t.segSize) {
		p.flushTrain() // another flow, or segments of another size
	}
	if len(p.queue) > 0 || len(p.groupQueue) > 0 {
		p.flush()
	}
	vni := p.n.vni
	for !p.seg.Done() {
		if t.segs == underlay.MaxTrainSegments || t.size+encap.HeaderLen+p.seg.MaxSegmentLen() > underlay.MaxTrainBytes ||
			t.hoff+encap.HeaderLen+p.seg.HeaderLen() > len(p.hdrs) || t.ended() {
			p.flushTrain()
		}
		if t.segs == 0 {
			t.port, t.remote = port, remote
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

// flushTrain sends the open train, if any. The underlay sends a train the
// kernel will not take datagram by datagram instead (TrainWriter).
func (p *txPipeline) flushTrain() {
	t := p.train
	if t.segs == 0 {
		return
	}
	p.train = openTrain{} // closed: what follows may enqueue
	sent, err := p.trainWriter.WriteTrain(t.port, t.remote, p.parts, t.segSize)
	clear(p.parts) // hold no buffer past the train
	p.parts = p.parts[:0]
	// Every datagram but the last is segSize long: exact unless one in
	// the middle failed, which only a failing underlay does.
	bytes := min(sent*t.segSize, t.size)
	p.sent += uint64(sent)
	p.sentB += uint64(bytes - sent*encap.HeaderLen)
	p.peer.addTx(&p.e.peers, t.remote, sent, bytes+sent*encap.UDPHeaderLen)
	if sent < t.segs && !underlay.IsClosed(err) {
		p.n.counters.Drop(sendDropReason(err), uint64(t.segs-sent))
	}
}
