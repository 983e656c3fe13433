package offload

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket/layers"
)

// bufRoom is what each test buffer holds past its header: a 64 KiB
// super-frame and then some.
const bufRoom = 70000

// testMTU is the MTU of the tests' TAP.
const testMTU = 1500

// coalesce runs frames through a Coalescer as one batch, each frame in a
// buffer of its own with room bytes after the header, tag tags[i] (0 when
// tags is short).
func coalesce(t testing.TB, frames [][]byte, room int, tags ...uint32) []Output {
	t.Helper()
	c := NewCoalescer(len(frames), testMTU, 0)
	for i, f := range frames {
		buf := make([]byte, VirtioNetHdrLen+max(room, len(f)))
		copy(buf[VirtioNetHdrLen:], f)
		var tag uint32
		if i < len(tags) {
			tag = tags[i]
		}
		c.Add(buf, VirtioNetHdrLen, len(f), i, tag)
	}
	c.Finish()
	return c.Outputs()
}

// shape is the test's summary of an output: its first frame's index and
// how many frames it holds.
type shape struct{ Index, Frames int }

func shapes(outs []Output) []shape {
	s := make([]shape, len(outs))
	for i, o := range outs {
		s[i] = shape{o.Index, o.Frames}
	}
	return s
}

// segs builds n contiguous segments of mss bytes of the default flow,
// edited by edit(i, &spec) if not nil.
func segs(t testing.TB, n, mss int, edit func(i int, s *tcpSpec)) [][]byte {
	t.Helper()
	var out [][]byte
	seq := uint32(1000)
	for i := 0; i < n; i++ {
		s := flow(seq, payload(i*mss, mss))
		s.id = uint16(100 + i)
		if edit != nil {
			edit(i, &s)
		}
		out = append(out, buildTCP(t, s))
		seq += uint32(len(s.payload))
	}
	return out
}

func TestCoalesceMerges(t *testing.T) {
	for _, tt := range []struct {
		name string
		ipv6 bool
		n    int
		mss  int
		last int // payload of the last segment; mss when 0
		psh  bool
	}{
		{"ipv4 four full", false, 4, 1398, 0, false},
		{"ipv4 last shorter with psh", false, 5, 1398, 600, true},
		{"ipv6 three full", true, 3, 1378, 0, false},
		{"ipv6 last shorter", true, 3, 1378, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frames := segs(t, tt.n, tt.mss, func(i int, s *tcpSpec) {
				s.ipv6 = tt.ipv6
				if i == tt.n-1 {
					if tt.last != 0 {
						s.payload = s.payload[:tt.last]
					}
					if tt.psh {
						s.flags |= tcpPSH
					}
				}
			})
			outs := coalesce(t, frames, bufRoom)
			if diff := cmp.Diff([]shape{{0, tt.n}}, shapes(outs)); diff != "" {
				t.Fatalf("outputs (-want +got):\n%s", diff)
			}
			o := outs[0]
			var wantBytes int
			var wantPayload []byte
			for _, f := range frames {
				wantBytes += len(f)
				p := decode(t, f).Layer(layers.LayerTypeTCP).(*layers.TCP)
				wantPayload = append(wantPayload, p.Payload...)
			}
			if o.Bytes != wantBytes {
				t.Errorf("Bytes %d, want %d", o.Bytes, wantBytes)
			}

			var h VirtioNetHdr
			pkt := o.Packet()
			h.Decode(pkt)
			super := pkt[VirtioNetHdrLen:]
			l4 := 14 + 20
			wantHdr := VirtioNetHdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: uint16(l4 + 32),
				GSOSize: uint16(tt.mss), CsumStart: uint16(l4), CsumOffset: TCPChecksumOffset}
			if tt.ipv6 {
				l4 = 14 + 40
				wantHdr.GSOType, wantHdr.HdrLen, wantHdr.CsumStart = GSOTCPv6, uint16(l4+32), uint16(l4)
			}
			if diff := cmp.Diff(wantHdr, h); diff != "" {
				t.Errorf("virtio_net_hdr (-want +got):\n%s", diff)
			}

			// The super-frame is the first segment grown: gopacket reads
			// the whole payload, the IP length, and the flags of the first
			// plus PSH of the last.
			p := decode(t, super)
			tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !bytes.Equal(tcp.Payload, wantPayload) || tcp.Seq != 1000 || tcp.PSH != tt.psh || !tcp.ACK {
				t.Errorf("super-frame: seq %d, %d payload bytes (want %d), PSH %v ACK %v", tcp.Seq, len(tcp.Payload), len(wantPayload), tcp.PSH, tcp.ACK)
			}
			if tt.ipv6 {
				ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if int(ip.Length) != len(super)-54 {
					t.Errorf("IPv6 payload length %d, want %d", ip.Length, len(super)-54)
				}
			} else {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if int(ip.Length) != len(super)-14 || ip.Id != 100 || Checksum(super[14:34], 0) != 0 {
					t.Errorf("IPv4 length %d (want %d), id %d, header checksum good %v", ip.Length, len(super)-14, ip.Id, Checksum(super[14:34], 0) == 0)
				}
			}
			// The TCP checksum holds the pseudo-header sum, for the kernel
			// to complete (or trust) with NEEDS_CSUM.
			ipv6 := tt.ipv6
			wantPartial := Fold(tcpSum(super[14:l4], ipv6, len(super)-l4))
			if got := binary.BigEndian.Uint16(super[l4+TCPChecksumOffset:]); got != wantPartial {
				t.Errorf("TCP checksum field %#04x, want the pseudo-header sum %#04x", got, wantPartial)
			}
			completed := bytes.Clone(super)
			if err := CompleteChecksum(completed, &h); err != nil || !checksumsGood(completed) {
				t.Errorf("completed as the kernel would, the checksum does not verify (%v)", err)
			}
		})
	}
}

func TestCoalesceRefuses(t *testing.T) {
	const mss = 1398
	bad := func(f []byte) []byte { f = bytes.Clone(f); f[len(f)-1] ^= 0x55; return f }
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	for _, tt := range []struct {
		name   string
		frames [][]byte
		room   int
		tags   []uint32
		want   []shape
	}{
		{"gap in seq", func() [][]byte {
			return segs(t, 3, mss, func(i int, s *tcpSpec) {
				if i == 2 {
					s.seq += 1
				}
			})
		}(), bufRoom, nil, []shape{{0, 2}, {2, 1}}},
		{"retransmission", func() [][]byte {
			f := segs(t, 2, mss, nil)
			return append(f, f[1])
		}(), bufRoom, nil, []shape{{0, 2}, {2, 1}}},
		{"syn fin rst urg cwr each stop it", func() [][]byte {
			return segs(t, 6, mss, func(i int, s *tcpSpec) {
				s.flags |= []uint8{0, tcpSYN, tcpFIN, tcpRST, tcpURG, tcpCWR}[i]
			})
		}(), bufRoom, nil, []shape{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}},
		{"no ack", segs(t, 2, mss, func(i int, s *tcpSpec) { s.flags = 0 }), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"psh ends it", segs(t, 3, mss, func(i int, s *tcpSpec) {
			if i == 1 {
				s.flags |= tcpPSH
			}
		}), bufRoom, nil, []shape{{0, 2}, {2, 1}}},
		{"psh first opens nothing", segs(t, 2, mss, func(i int, s *tcpSpec) {
			if i == 0 {
				s.flags |= tcpPSH
			}
		}), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"shorter ends it", segs(t, 3, mss, func(i int, s *tcpSpec) {
			if i == 1 {
				s.payload = s.payload[:100]
			}
		}), bufRoom, nil, []shape{{0, 2}, {2, 1}}},
		{"longer than the first", segs(t, 2, mss, func(i int, s *tcpSpec) {
			if i == 0 {
				s.payload = s.payload[:mss-1]
			}
		}), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"different ack", segs(t, 3, mss, func(i int, s *tcpSpec) { s.ack += uint32(i / 2) }), bufRoom, nil, []shape{{0, 2}, {2, 1}}},
		{"different window", segs(t, 2, mss, func(i int, s *tcpSpec) { s.window += uint16(i) }), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"different timestamp", segs(t, 2, mss, func(i int, s *tcpSpec) { s.tsval += uint32(i) }), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"different options length", segs(t, 2, mss, func(i int, s *tcpSpec) {
			if i == 1 {
				s.tsval = 0
			}
		}), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"different tos", segs(t, 2, mss, func(i int, s *tcpSpec) { s.tos = uint8(i) }), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"different tags", segs(t, 2, mss, nil), bufRoom, []uint32{200, 300}, []shape{{0, 1}, {1, 1}}},
		{"no room", segs(t, 2, mss, nil), 0, nil, []shape{{0, 1}, {1, 1}}},
		{"vlan tagged", segs(t, 2, mss, func(i int, s *tcpSpec) { s.vlan = true }), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"bad checksum second", func() [][]byte {
			f := segs(t, 3, mss, nil)
			f[1] = bad(f[1])
			return f
		}(), bufRoom, nil, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"bad checksum first", func() [][]byte {
			f := segs(t, 3, mss, nil)
			f[0] = bad(f[0])
			return f
		}(), bufRoom, nil, []shape{{0, 1}, {1, 2}}},
		{"bad ipv4 header checksum", func() [][]byte {
			f := segs(t, 2, mss, nil)
			f[1] = bytes.Clone(f[1])
			f[1][14+ipv4CsumOffset] ^= 1
			return f
		}(), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"ethernet padding", func() [][]byte {
			f := segs(t, 2, mss, nil)
			f[1] = append(bytes.Clone(f[1]), 0, 0)
			return f
		}(), bufRoom, nil, []shape{{0, 1}, {1, 1}}},
		{"a pure ack of the flow closes it", func() [][]byte {
			f := segs(t, 3, mss, nil)
			ack := buildTCP(t, flow(1000+mss, nil))
			return [][]byte{f[0], ack, f[1], f[2]}
		}(), bufRoom, nil, []shape{{0, 1}, {1, 1}, {2, 2}}},
		{"other frames pass through", func() [][]byte {
			f := segs(t, 2, mss, nil)
			return [][]byte{f[0], arp, f[1]}
		}(), bufRoom, nil, []shape{{0, 2}, {1, 1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			outs := coalesce(t, tt.frames, tt.room, tt.tags...)
			if diff := cmp.Diff(tt.want, shapes(outs)); diff != "" {
				t.Fatalf("outputs (-want +got):\n%s", diff)
			}
			for _, o := range outs {
				if o.Frames != 1 {
					continue
				}
				// Delivered as it came, behind a header of zeros.
				pkt := o.Packet()
				if !bytes.Equal(pkt[:VirtioNetHdrLen], make([]byte, VirtioNetHdrLen)) || !bytes.Equal(pkt[VirtioNetHdrLen:], tt.frames[o.Index]) {
					t.Errorf("output %d is not frame %d as it came:\n%s", o.Index, o.Index, hex.Dump(pkt))
				}
			}
		})
	}
}

// Interleaved flows each get their super-frame, in the order of their
// first segments; each flow's bytes stay in order.
func TestCoalesceInterleavedFlows(t *testing.T) {
	a := segs(t, 3, 1000, nil)
	b := segs(t, 3, 1000, func(i int, s *tcpSpec) { s.src, s.sport = 2, 40001 })
	c := segs(t, 2, 1000, func(i int, s *tcpSpec) { s.ipv6 = true })
	frames := [][]byte{a[0], b[0], a[1], c[0], b[1], a[2], c[1], b[2]}
	outs := coalesce(t, frames, bufRoom)
	if diff := cmp.Diff([]shape{{0, 3}, {1, 3}, {3, 2}}, shapes(outs)); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
}

// A flow of full segments is cut where the next one would take the IP
// length past 65535.
func TestCoalesceStopsAt64KiB(t *testing.T) {
	const mss = 1448
	frames := segs(t, 60, mss, nil)
	outs := coalesce(t, frames, bufRoom)
	max := (65535 - 20 - 32) / mss // segments whose IP length fits
	if diff := cmp.Diff([]shape{{0, max}, {max, 60 - max}}, shapes(outs)); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	for _, o := range outs {
		if ipLen := o.Size - 14; ipLen > 65535 {
			t.Errorf("output %d: IP length %d", o.Index, ipLen)
		}
	}
}

// Segmenting a super-frame that Coalescer made gives back the segments it
// was made of, byte for byte (their IPv4 IDs being consecutive).
func TestCoalesceThenSegmentRoundTrip(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		frames := segs(t, 7, 1300, func(i int, s *tcpSpec) {
			s.ipv6 = ipv6
			if i == 6 {
				s.payload = s.payload[:77]
				s.flags |= tcpPSH
			}
		})
		outs := coalesce(t, frames, bufRoom)
		if len(outs) != 1 {
			t.Fatalf("ipv6 %v: %d outputs, want 1", ipv6, len(outs))
		}
		segmentsBack(t, fmt.Sprintf("ipv6 %v", ipv6), outs[0].Packet(), frames)
	}
}

// segmentsBack cuts the super-frame pkt (virtio_net_hdr first) and checks
// that the segments are frames, byte for byte.
func segmentsBack(t *testing.T, name string, pkt []byte, frames [][]byte) {
	t.Helper()
	var h VirtioNetHdr
	h.Decode(pkt)
	var s Segmenter
	if err := s.Reset(pkt[VirtioNetHdrLen:], &h); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	buf := make([]byte, s.MaxSegmentLen())
	for i, want := range frames {
		n := s.Next(buf)
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("%s: segment %d differs:\ngot:\n%swant:\n%s", name, i, hex.Dump(buf[:n]), hex.Dump(want))
		}
	}
	if !s.Done() {
		t.Errorf("%s: more segments than frames", name)
	}
}

// A TCP segment longer than the MTU (a kernel peer's super-frame that
// crossed whole) goes out alone with a GSO header cutting it to the MTU,
// and closes its flow; a tagged or corrupt one goes as it came.
func TestCoalesceSplitsFramesOverTheMTU(t *testing.T) {
	const mtu = 1450
	frames := segs(t, 3, 1398, nil)
	big := buildTCP(t, flow(1000+3*1398, payload(0, 6000)))
	partialBig := bytes.Clone(big)
	partial(t, partialBig)
	tagged := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 6000)); s.vlan = true; return s }())
	corrupt := bytes.Clone(big)
	corrupt[len(corrupt)-1] ^= 1
	in := [][]byte{frames[0], frames[1], big, frames[2], partialBig, tagged, corrupt}
	c := NewCoalescer(len(in), mtu, 0)
	for i, f := range in {
		buf := make([]byte, VirtioNetHdrLen+bufRoom)
		copy(buf[VirtioNetHdrLen:], f)
		c.Add(buf, VirtioNetHdrLen, len(f), i, 0)
	}
	c.Finish()
	outs := c.Outputs()
	if diff := cmp.Diff([]shape{{0, 2}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}}, shapes(outs)); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	for _, i := range []int{1, 3} { // big and partialBig
		var h VirtioNetHdr
		h.Decode(outs[i].Packet())
		want := VirtioNetHdr{FlagNeedsCsum, GSOTCPv4, 66, mtu - 52, 34, 16}
		if h != want {
			t.Errorf("output %d: header %+v, want %+v", i, h, want)
		}
		if got := outs[i].Packet()[VirtioNetHdrLen:]; !bytes.Equal(got, partialBig) {
			t.Errorf("output %d is not the frame with its checksum partial", i)
		}
	}
	for _, i := range []int{4, 5} { // tagged and corrupt: as they came
		if got := outs[i].Packet(); !bytes.Equal(got, append(make([]byte, VirtioNetHdrLen), in[outs[i].Index]...)) {
			t.Errorf("output %d changed", i)
		}
	}
}
