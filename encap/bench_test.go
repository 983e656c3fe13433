package encap_test

import (
	"testing"

	"github.com/vtepd/vtepd/encap"
)

// Sinks keep the compiler from discarding results in TestZeroAllocs.
var (
	sinkBytes []byte
	sinkU32   uint32
	sinkU16   uint16
	sinkErr   error
)

// TestZeroAllocs asserts the per-packet functions never allocate.
func TestZeroAllocs(t *testing.T) {
	frame := tcp4()
	buf := make([]byte, encap.Headroom+len(frame))
	copy(buf[encap.Headroom:], frame)
	datagram := encapFresh(frame, 200, 50000, encap.Port)
	v6 := tcp6()
	qinq := tagged(frame, 0x9100, 0x8100)
	threeTags := tagged(frame, 0x88a8, 0x8100, 0x8100)

	tests := []struct {
		name string
		f    func()
	}{
		{"Encap", func() { sinkBytes = encap.Encap(buf, 200, 50000, encap.Port, len(frame)) }},
		{"Decap", func() { sinkU32, sinkBytes, sinkErr = encap.Decap(datagram[encap.UDPHeaderLen:]) }},
		{"Decap error", func() { sinkU32, sinkBytes, sinkErr = encap.Decap(datagram[:3]) }},
		{"FlowHash TCPv4", func() { sinkU32 = encap.FlowHash(frame) }},
		{"FlowHash TCPv6", func() { sinkU32 = encap.FlowHash(v6) }},
		{"FlowHash legacy QinQ", func() { sinkU32 = encap.FlowHash(qinq) }},
		{"FlowHash three tags", func() { sinkU32 = encap.FlowHash(threeTags) }},
		{"SourcePort", func() { sinkU16 = encap.SourcePort(sinkU32, 49152, 65535) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s allocates %.1f times per call, want 0", tt.name, n)
		}
	}
}

func BenchmarkEncap(b *testing.B) {
	frame := tcp4()
	buf := make([]byte, encap.Headroom+1500)
	copy(buf[encap.Headroom:], frame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		encap.Encap(buf, 200, 50000, encap.Port, len(frame))
	}
}

func BenchmarkDecap(b *testing.B) {
	datagram := encapFresh(tcp4(), 200, 50000, encap.Port)
	payload := datagram[encap.UDPHeaderLen:]
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		encap.Decap(payload)
	}
}

func BenchmarkFlowHash(b *testing.B) {
	for _, bm := range []struct {
		name  string
		frame []byte
	}{
		{"TCPv4", tcp4()},
		{"TCPv6", tcp6()},
		{"QinQ-TCPv4", tagged(tcp4(), 0x88a8, 0x8100)},
		{"LegacyQinQ-TCPv4", tagged(tcp4(), 0x9100, 0x8100)},
		{"ARP", inner(goldenARP)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				encap.FlowHash(bm.frame)
			}
		})
	}
}

// BenchmarkSendPath is the per-frame work of the send path: hash the inner
// flow, pick the source port, write the headers.
func BenchmarkSendPath(b *testing.B) {
	frame := tcp4()
	buf := make([]byte, encap.Headroom+1500)
	copy(buf[encap.Headroom:], frame)
	inner := buf[encap.Headroom : encap.Headroom+len(frame)]
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		port := encap.SourcePort(encap.FlowHash(inner), 49152, 65535)
		encap.Encap(buf, 200, port, encap.Port, len(frame))
	}
}

// batchSize is a TAP or recvmmsg batch, as the engine moves them.
const batchSize = 64

// BenchmarkEncapBatch encapsulates a batch of frames in place, with the
// flow hash and source port each, as the TX pipeline does.
func BenchmarkEncapBatch(b *testing.B) {
	frame := tcp4()
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, encap.Headroom+1500)
		copy(bufs[i][encap.Headroom:], frame)
		bufs[i][encap.Headroom+34] = byte(i) // a different TCP source port per frame
	}
	b.SetBytes(int64(batchSize * len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		for _, buf := range bufs {
			inner := buf[encap.Headroom : encap.Headroom+len(frame)]
			port := encap.SourcePort(encap.FlowHash(inner), 49152, 65535)
			sinkBytes = encap.Encap(buf, 200, port, encap.Port, len(frame))
		}
	}
}

// BenchmarkDecapBatch validates and decapsulates a batch of datagrams.
func BenchmarkDecapBatch(b *testing.B) {
	payloads := make([][]byte, batchSize)
	for i := range payloads {
		payloads[i] = encapFresh(tcp4(), 200, 50000, encap.Port)[encap.UDPHeaderLen:]
	}
	b.SetBytes(int64(batchSize * len(payloads[0])))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range payloads {
			sinkU32, sinkBytes, sinkErr = encap.Decap(p)
		}
	}
}
