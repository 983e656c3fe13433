package vtep

import (
	"errors"
	"net/netip"

	"github.com/vtepd/vtepd/encap"
)

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

// trainSegments adds what is left of p.seg, a super-frame for remote, to
// the open train, which is sent whenever it is full. The train stays open
// for the next super-frame of the batch: a 64 KiB super-frame of
// full-sized segments makes a few more datagrams than one train holds
// (gsoMaxTrain), and the next super-frame of the same flow fills the
// second train where it would otherwise leave nearly empty. It is sent
// before anything else goes out, and at the end of the batch, so nothing
// overtakes it. A train is each segment's VXLAN and inner headers, built
// in p.hdrs, followed by its payload where the TAP read it: one copy fewer
// than building datagrams. Whatever is queued for the raw socket goes
// before it, so that a flow's frames keep their order.
func (p *txPipeline) trainSegments(s *portSocket, sport uint16, remote netip.Addr) {
	t := &p.train
	if t.segs > 0 && (t.s != s || t.remote != remote || encap.HeaderLen+p.seg.MaxSegmentLen() != t.segSize) {
		p.flushTrain() // another flow, or segments of another size
	}
	if len(p.queue) > 0 || len(p.mqueue) > 0 {
		p.flush()
	}
	vni := p.n.vni
	for !p.seg.Done() {
		if t.segs == gsoMaxSegments || t.size+encap.HeaderLen+p.seg.MaxSegmentLen() > gsoMaxTrain ||
			t.hoff+encap.HeaderLen+p.seg.HeaderLen() > len(p.hdrs) || t.ended() {
			p.flushTrain()
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

// flushTrain sends the open train, if any. A train the kernel will not
// take goes out by the raw socket instead; if it never will (no checksum
// offload on the way), UDP GSO is given up.
func (p *txPipeline) flushTrain() {
	t := p.train
	if t.segs == 0 {
		return
	}
	p.train = openTrain{} // closed: what follows may enqueue
	parts := p.parts
	err := p.trainWriter.send(t.s, parts, t.segSize, t.remote)
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
