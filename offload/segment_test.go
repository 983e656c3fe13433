package offload

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
)

// superFrame builds the super-frame of spec as a TAP hands it over: the
// TCP checksum holds only the pseudo-header sum, and the header says GSO.
func superFrame(t testing.TB, s tcpSpec, mss int) ([]byte, VirtioNetHdr) {
	t.Helper()
	f := buildTCP(t, s)
	l4 := partial(t, f)
	h := VirtioNetHdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, GSOSize: uint16(mss),
		CsumStart: uint16(l4), CsumOffset: TCPChecksumOffset, HdrLen: uint16(len(f) - len(s.payload))}
	if s.ipv6 {
		h.GSOType = GSOTCPv6
	}
	return f, h
}

func TestSegment(t *testing.T) {
	for _, tt := range []struct {
		name     string
		spec     tcpSpec
		mss      int
		ecn      bool
		segments int
	}{
		{"ipv4 options last shorter psh fin", func() tcpSpec {
			s := flow(1000, payload(0, 4000))
			s.flags = tcpACK | tcpPSH | tcpFIN
			return s
		}(), 1448, false, 3},
		{"ipv4 exact multiple", flow(1, payload(3, 2*1448)), 1448, false, 2},
		{"ipv4 one segment", flow(1, payload(3, 100)), 1448, false, 1},
		{"ipv4 cwr on the first only", func() tcpSpec {
			s := flow(5, payload(1, 3000))
			s.flags = tcpACK | tcpCWR | tcpECE
			s.tos = 0x02 // ECT(0)
			return s
		}(), 1000, true, 3},
		{"ipv4 id and seq wrap", func() tcpSpec {
			s := flow(0xffffff00, payload(9, 1000))
			s.id = 0xffff
			return s
		}(), 300, false, 4},
		{"ipv4 no options", func() tcpSpec {
			s := flow(7, payload(2, 5000))
			s.tsval = 0
			return s
		}(), 1460, false, 4},
		{"ipv4 vlan tag", func() tcpSpec {
			s := flow(7, payload(2, 3000))
			s.vlan = true
			return s
		}(), 1400, false, 3},
		{"ipv6 options last shorter psh", func() tcpSpec {
			s := flow(1<<31, payload(5, 4097))
			s.ipv6 = true
			s.flags = tcpACK | tcpPSH
			return s
		}(), 1428, false, 3},
		{"ipv6 no options", func() tcpSpec {
			s := flow(1, payload(5, 2856))
			s.ipv6, s.tsval = true, 0
			return s
		}(), 1428, false, 2},
		{"ipv4 full 64 KiB", flow(42, payload(0, 65535-20-32)), 1448, false, 46},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Next writes whole segments; NextHeader the headers, with the
			// payload left in the super-frame: the same bytes either way.
			for _, split := range []bool{false, true} {
				super, h := superFrame(t, tt.spec, tt.mss)
				if tt.ecn {
					h.GSOType |= GSOECN
				}
				var s Segmenter
				if err := s.Reset(super, &h); err != nil {
					t.Fatalf("Reset: %v", err)
				}
				if got := s.Segments(); got != tt.segments {
					t.Errorf("Segments() = %d, want %d", got, tt.segments)
				}
				buf := make([]byte, s.MaxSegmentLen())
				for i := 0; i < tt.segments; i++ {
					var got []byte
					if split {
						n, payload := s.NextHeader(buf)
						if n == 0 || len(payload) == 0 {
							t.Fatalf("segment %d: NextHeader returned %d, %d payload bytes", i, n, len(payload))
						}
						got = append(buf[:n:n], payload...)
					} else {
						n := s.Next(buf)
						if n == 0 {
							t.Fatalf("segment %d: Next returned 0", i)
						}
						got = buf[:n]
					}
					// What the kernel would have sent: built independently.
					want := tt.spec
					start := i * tt.mss
					want.payload = tt.spec.payload[start:min(start+tt.mss, len(tt.spec.payload))]
					want.seq = tt.spec.seq + uint32(start)
					want.id = tt.spec.id + uint16(i)
					if i != tt.segments-1 {
						want.flags &^= tcpFIN | tcpPSH
					}
					if i > 0 {
						want.flags &^= tcpCWR
					}
					wantFrame := buildTCP(t, want)
					if !bytes.Equal(got, wantFrame) {
						t.Fatalf("segment %d differs:\ngot:\n%swant:\n%s", i, hex.Dump(got), hex.Dump(wantFrame))
					}
					if !checksumsGood(got) {
						t.Errorf("segment %d: checksums do not verify", i)
					}
					p := decode(t, got)
					tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
					if tcp.Seq != want.seq || !bytes.Equal(tcp.Payload, want.payload) {
						t.Errorf("segment %d: gopacket sees seq %d and %d payload bytes", i, tcp.Seq, len(tcp.Payload))
					}
				}
				if n := s.Next(buf); n != 0 || !s.Done() || s.Segments() != 0 {
					t.Errorf("after the last segment: Next %d, Done %v, Segments %d", n, s.Done(), s.Segments())
				}
			}
		})
	}
}

func TestSegmentRefuses(t *testing.T) {
	good, gh := superFrame(t, flow(1, payload(0, 3000)), 1448)
	good6, gh6 := superFrame(t, func() tcpSpec { s := flow(1, payload(0, 3000)); s.ipv6 = true; return s }(), 1448)
	headers := buildTCP(t, flow(1, nil))
	udp := bytes.Clone(good)
	udp[14+ipv4ProtoOffset] = 17
	ext := bytes.Clone(good6)
	ext[14+ipv6NextHeaderOffset] = 0 // hop-by-hop options
	frag := bytes.Clone(good)
	frag[14+ipv4FlagsOffset] |= 0x20 // MF
	badOff := bytes.Clone(good)
	badOff[34+tcpDataOffOffset] = 0x40 // data offset 16 bytes
	for _, tt := range []struct {
		name  string
		frame []byte
		edit  func(h *VirtioNetHdr)
		want  error
	}{
		{"udp gso type on tcp", good, func(h *VirtioNetHdr) { h.GSOType = GSOUDPL4 }, ErrBadFrame},
		{"tcp gso type on udp", udp, nil, ErrBadFrame},
		{"udp header cut", udp[:14+20+6], func(h *VirtioNetHdr) { h.GSOType = GSOUDPL4 }, ErrBadFrame},
		{"ufo gso type", good, func(h *VirtioNetHdr) { h.GSOType = GSOUDP }, ErrGSOType},
		{"zero gso size", good, func(h *VirtioNetHdr) { h.GSOSize = 0 }, ErrBadFrame},
		{"tcpv6 type on ipv4", good, func(h *VirtioNetHdr) { h.GSOType = GSOTCPv6 }, ErrBadFrame},
		{"tcpv4 type on ipv6", good6, func(h *VirtioNetHdr) { *h = gh6; h.GSOType = GSOTCPv4 }, ErrBadFrame},
		{"not tcp", udp, nil, ErrBadFrame},
		{"ipv4 fragment", frag, nil, ErrBadFrame},
		{"ipv6 extension header", ext, func(h *VirtioNetHdr) { *h = gh6 }, ErrBadFrame},
		{"tcp data offset below 20", badOff, nil, ErrBadFrame},
		{"no payload", headers, nil, ErrBadFrame},
		{"truncated tcp header", good[:40], nil, ErrBadFrame},
		{"runt", good[:13], nil, ErrBadFrame},
		{"gso size above the payload: one segment", good, func(h *VirtioNetHdr) { h.GSOSize = 65535 - 20 }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := gh
			if tt.edit != nil {
				tt.edit(&h)
			}
			var s Segmenter
			if err := s.Reset(tt.frame, &h); !errors.Is(err, tt.want) {
				t.Errorf("Reset = %v, want %v", err, tt.want)
			}
		})
	}
	// A segment whose IP length would not fit 16 bits.
	big := buildTCP(t, flow(1, payload(0, 65535-20-32)))
	h := gh
	h.GSOSize = 65535
	var s Segmenter
	if err := s.Reset(append(big, 0), &h); !errors.Is(err, ErrBadFrame) {
		t.Errorf("65536-byte IP segment: Reset = %v, want ErrBadFrame", err)
	}
}

// CompleteChecksum finishes TCP and UDP checksums left partial, and
// refuses positions outside the frame.
func TestCompleteChecksum(t *testing.T) {
	tcp := buildTCP(t, flow(9, payload(1, 333)))
	want := bytes.Clone(tcp)
	l4 := partial(t, tcp)
	h := VirtioNetHdr{Flags: FlagNeedsCsum, CsumStart: uint16(l4), CsumOffset: TCPChecksumOffset}
	if err := CompleteChecksum(tcp, &h); err != nil || !bytes.Equal(tcp, want) {
		t.Errorf("TCP: err %v, frame\n%swant\n%s", err, hex.Dump(tcp), hex.Dump(want))
	}

	udp := udpFrame(t, payload(4, 61))
	wantUDP := bytes.Clone(udp)
	const udpL4, udpCsum = 34, 6
	binary.BigEndian.PutUint16(udp[udpL4+udpCsum:], Fold(PseudoHeaderSum(17, udp[26:30], udp[30:34], len(udp)-udpL4)))
	h = VirtioNetHdr{Flags: FlagNeedsCsum, CsumStart: udpL4, CsumOffset: udpCsum}
	if err := CompleteChecksum(udp, &h); err != nil || !bytes.Equal(udp, wantUDP) {
		t.Errorf("UDP: err %v, frame\n%swant\n%s", err, hex.Dump(udp), hex.Dump(wantUDP))
	}

	for _, h := range []VirtioNetHdr{
		{CsumStart: uint16(len(tcp)), CsumOffset: 0},
		{CsumStart: uint16(len(tcp) - 1), CsumOffset: 0},
		{CsumStart: 34, CsumOffset: 65535},
	} {
		if err := CompleteChecksum(tcp, &h); !errors.Is(err, ErrBadFrame) {
			t.Errorf("CompleteChecksum(start %d offset %d) = %v, want ErrBadFrame", h.CsumStart, h.CsumOffset, err)
		}
	}
}

// GSOFor cuts TCP segments longer than the MTU, and nothing else.
func TestGSOFor(t *testing.T) {
	big := buildTCP(t, flow(1, payload(0, 5000)))
	big6 := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 5000)); s.ipv6 = true; return s }())
	bigVLAN := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 5000)); s.vlan = true; return s }())
	syn := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 5000)); s.flags |= tcpSYN; return s }())
	const mtu = 1450
	for _, tt := range []struct {
		name  string
		frame []byte
		want  VirtioNetHdr
		ok    bool
	}{
		{"ipv4", big, VirtioNetHdr{FlagNeedsCsum, GSOTCPv4, 34 + 32, mtu - 20 - 32, 34, 16}, true},
		{"ipv6", big6, VirtioNetHdr{FlagNeedsCsum, GSOTCPv6, 54 + 32, mtu - 40 - 32, 54, 16}, true},
		{"vlan", bigVLAN, VirtioNetHdr{FlagNeedsCsum, GSOTCPv4, 38 + 32, mtu - 20 - 32, 38, 16}, true},
		{"fits the mtu", buildTCP(t, flow(1, payload(0, 1000))), VirtioNetHdr{}, false},
		{"syn", syn, VirtioNetHdr{}, false},
		{"ip length short of the frame", append(bytes.Clone(big), 0), VirtioNetHdr{}, false},
		{"udp", udpFrame(t, payload(0, 3000)), VirtioNetHdr{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := GSOFor(tt.frame, mtu)
			if ok != tt.ok || h != tt.want {
				t.Fatalf("GSOFor = %+v, %v; want %+v, %v", h, ok, tt.want, tt.ok)
			}
			if !ok {
				return
			}
			var s Segmenter
			if err := s.Reset(tt.frame, &h); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, s.MaxSegmentLen())
			for !s.Done() {
				n := s.Next(buf)
				l3, _, _ := ether.L3(buf[:n])
				if n-l3 > mtu || !checksumsGood(buf[:n]) {
					t.Errorf("segment of %d IP bytes (MTU %d), checksums good %v", n-l3, mtu, checksumsGood(buf[:n]))
				}
			}
		})
	}
}
