package vtep

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/offload"
)

// BenchmarkTxPipeline runs batches of 64 frames (half known unicast,
// half broadcast flooded to two peers) from TAP buffers to the underlay
// writer, over an in-memory underlay that discards: the engine's own cost
// per batch, without syscalls.
func BenchmarkTxPipeline(b *testing.B) {
	benchTx(b, newTestEngine(b))
}

// BenchmarkTxPipelineControl is BenchmarkTxPipeline with the network on a
// (fake) control plane: each frame's source MAC is reported (a cache hit)
// and checked for ARP and ND.
func BenchmarkTxPipelineControl(b *testing.B) {
	te := newTestEngine(b, config.Network{Name: "demo", VNI: 200, Bridge: "br0", TAP: "vtep200",
		Peers: []netip.Addr{peerB, peerC}, Learning: true, Ageing: time.Minute, MaxEntries: 100, Control: true, ARPSuppress: true})
	te.SetControl(newFakeBackend())
	benchTx(b, te)
}

func benchTx(b *testing.B, te *testEngine) {
	te.conn.discard = true
	te.fdb.Learn(200, macRemote, peerB, 0)
	tx := te.newTxPipeline(te.net(0), te.taps[0], te.conn, false)
	frames := [][]byte{frame(macRemote, macLocal, 1400), frame(macBcast, macLocal, 46)}
	var bytes int64
	for i := range tx.bufs {
		tx.sizes[i] = copy(tx.bufs[i][encap.Headroom:], frames[i%2])
		bytes += int64(tx.sizes[i])
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		tx.forward(len(tx.bufs))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tx.bufs)), "ns/frame")
}

// BenchmarkRxPipeline runs batches of 64 received datagrams through
// validation, learning (refresh) and delivery to a discarding TAP.
func BenchmarkRxPipeline(b *testing.B) {
	te := newTestEngine(b)
	te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}} })
	rx := te.newRxPipeline(0, te.conn)
	var bytes int64
	for i := range rx.dg {
		src := fdb.MAC{0x02, 0, 0, 0, 1, byte(i)}
		rx.dg[i].N = copy(rx.dg[i].Buf, vxlan(200, frame(macLocal, src, 1400)))
		rx.dg[i].Addr = peerB
		bytes += int64(rx.dg[i].N)
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		rx.deliver(len(rx.dg))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rx.dg)), "ns/frame")
}

// BenchmarkTxPipelineOffload cuts a batch of 64 KiB TCP super-frames
// into MSS-sized datagrams (segmentation and full checksums), to a known
// unicast destination over a discarding underlay.
func BenchmarkTxPipelineOffload(b *testing.B) {
	te := newTestEngine(b)
	te.conn.discard = true
	te.fdb.Learn(200, macRemote, peerB, 0)
	tx := te.newTxPipeline(te.net(0), te.taps[0], te.conn, true)
	pkt := gsoFrame(b, macRemote, macLocal, 65535-40, 1398)
	const batch = 4
	for i := 0; i < batch; i++ {
		tx.sizes[i] = copy(tx.bufs[i][encap.Headroom-offload.VirtioNetHdrLen:], pkt) - offload.VirtioNetHdrLen
	}
	b.SetBytes(int64(batch * tx.sizes[0]))
	b.ReportAllocs()
	for b.Loop() {
		tx.forward(batch)
	}
	segs := batch * ((65535 - 40 + 1397) / 1398)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*segs), "ns/segment")
}

// BenchmarkRxPipelineOffload runs batches of 64 received segments of one
// TCP flow through validation, learning and coalescing (checksums
// verified) into two super-frames, to a discarding TAP.
func BenchmarkRxPipelineOffload(b *testing.B) {
	te := newTestEngine(b)
	te.editDev(0, func(d *Device) { d.Queues = []FrameQueue{discardTAP{}}; d.Offload = true })
	rx := te.newRxPipeline(0, te.conn)
	frames := make([][]byte, len(rx.dg))
	var bytes int64
	for i := range frames {
		frames[i] = vxlan(200, tcpFrame(b, macLocal, macRemote, uint32(1000+i*1398), "", pattern(1398)))
		bytes += int64(len(frames[i]))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		for i := range rx.dg {
			rx.dg[i].N = copy(rx.dg[i].Buf, frames[i])
			rx.dg[i].Addr = peerB
		}
		rx.deliver(len(rx.dg))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rx.dg)), "ns/frame")
}
