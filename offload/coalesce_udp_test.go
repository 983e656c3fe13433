package offload

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// udpSpec describes a test UDP datagram of one flow.
type udpSpec struct {
	ipv6    bool
	id      uint16
	df      bool
	sport   uint16
	payload []byte
}

// buildUDP serializes s into an Ethernet frame, checksums good.
func buildUDP(t testing.TB, s udpSpec) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	sport := s.sport
	if sport == 0 {
		sport = 1234
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9000}
	var ip gopacket.SerializableLayer
	if s.ipv6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		udp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Id: s.id, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IPv4(198, 19, 0, 1).To4(), DstIP: net.IPv4(198, 19, 0, 2).To4()}
		if s.df {
			ip4.Flags = layers.IPv4DontFragment
		}
		udp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// udpTrain builds n datagrams of size bytes of payload, IDs counting up
// from 100, edited by edit(i, &spec) if not nil.
func udpTrain(t testing.TB, n, size int, edit func(i int, s *udpSpec)) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		s := udpSpec{id: uint16(100 + i), payload: payload(i*size, size)}
		if edit != nil {
			edit(i, &s)
		}
		out = append(out, buildUDP(t, s))
	}
	return out
}

// coalesceUDP is coalesce with MergeUDP on.
func coalesceUDP(t testing.TB, frames [][]byte, on bool) []Output {
	t.Helper()
	c := NewCoalescer(len(frames), testMTU, 0)
	c.MergeUDP(on)
	for i, f := range frames {
		buf := make([]byte, VirtioNetHdrLen+bufRoom)
		copy(buf[VirtioNetHdrLen:], f)
		c.Add(buf, VirtioNetHdrLen, len(f), i, 0)
	}
	c.Finish()
	return c.Outputs()
}

func TestCoalesceUDP(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames func(t *testing.T) [][]byte
		off    bool // MergeUDP off
		want   []shape
	}{
		{"a train merges", func(t *testing.T) [][]byte { return udpTrain(t, 10, 22, nil) }, false, []shape{{0, 10}}},
		{"not without MergeUDP", func(t *testing.T) [][]byte { return udpTrain(t, 3, 22, nil) }, true, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"IPv6", func(t *testing.T) [][]byte {
			return udpTrain(t, 5, 64, func(i int, s *udpSpec) { s.ipv6 = true })
		}, false, []shape{{0, 5}}},
		{"a shorter one ends it", func(t *testing.T) [][]byte {
			return udpTrain(t, 5, 64, func(i int, s *udpSpec) {
				if i == 2 {
					s.payload = s.payload[:18] // 60 bytes: no Ethernet padding
				}
			})
		}, false, []shape{{0, 3}, {3, 2}}},
		{"a longer one starts another", func(t *testing.T) [][]byte {
			return udpTrain(t, 4, 64, func(i int, s *udpSpec) {
				if i == 2 {
					s.payload = payload(0, 100)
				}
			})
		}, false, []shape{{0, 2}, {2, 2}}},
		{"IDs must count up", func(t *testing.T) [][]byte {
			return udpTrain(t, 4, 64, func(i int, s *udpSpec) {
				if i == 2 {
					s.id = 7
				}
			})
		}, false, []shape{{0, 2}, {2, 1}, {3, 1}}},
		{"or stay put, with DF", func(t *testing.T) [][]byte {
			return udpTrain(t, 4, 64, func(i int, s *udpSpec) { s.id, s.df = 0, true })
		}, false, []shape{{0, 4}}},
		{"not without DF", func(t *testing.T) [][]byte {
			return udpTrain(t, 3, 64, func(i int, s *udpSpec) { s.id = 0 })
		}, false, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"flows apart", func(t *testing.T) [][]byte {
			return udpTrain(t, 6, 64, func(i int, s *udpSpec) { s.sport = uint16(1000 + i%2); s.id = uint16(100 + i/2) })
		}, false, []shape{{0, 3}, {1, 3}}},
		{"a bad checksum is not merged", func(t *testing.T) [][]byte {
			f := udpTrain(t, 3, 64, nil)
			f[1][len(f[1])-1] ^= 0xff
			return f
		}, false, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"nor a datagram without one", func(t *testing.T) [][]byte {
			f := udpTrain(t, 3, 64, nil)
			binary.BigEndian.PutUint16(f[1][ethIPv4L4+UDPChecksumOffset:], 0)
			return f
		}, false, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"a padded one goes alone", func(t *testing.T) [][]byte {
			f := udpTrain(t, 3, 64, nil)
			f[1] = append(f[1], 0, 0, 0, 0)
			return f
		}, false, []shape{{0, 1}, {1, 1}, {2, 1}}},
		{"at most 64", func(t *testing.T) [][]byte { return udpTrain(t, 70, 20, nil) }, false, []shape{{0, 64}, {64, 6}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			outs := coalesceUDP(t, tt.frames(t), !tt.off)
			if diff := cmp.Diff(tt.want, shapes(outs)); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

// ethIPv4L4 is where the UDP header of an untagged IPv4 frame starts.
const ethIPv4L4 = 14 + ipv4HeaderLen

// A UDP super-frame cut by Segmenter (as the kernel would) gives back the
// datagrams it was made of, byte for byte; and the kernel's view of it is
// consistent: a GSO_UDP_L4 header with NEEDS_CSUM over the UDP header.
func TestCoalesceUDPThenSegmentRoundTrip(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		frames := udpTrain(t, 9, 40, func(i int, s *udpSpec) {
			s.ipv6 = ipv6
			if i == 8 {
				s.payload = s.payload[:21]
			}
		})
		outs := coalesceUDP(t, frames, true)
		if len(outs) != 1 {
			t.Fatalf("ipv6 %v: %d outputs, want 1", ipv6, len(outs))
		}
		pkt := outs[0].Packet()
		var h VirtioNetHdr
		h.Decode(pkt)
		l4 := uint16(ethIPv4L4)
		if ipv6 {
			l4 = 14 + ipv6HeaderLen
		}
		want := VirtioNetHdr{Flags: FlagNeedsCsum, GSOType: GSOUDPL4, HdrLen: l4 + udpHeaderLen, GSOSize: 40, CsumStart: l4, CsumOffset: UDPChecksumOffset}
		if h != want {
			t.Fatalf("ipv6 %v: header %+v, want %+v", ipv6, h, want)
		}
		segmentsBack(t, fmt.Sprintf("ipv6 %v", ipv6), pkt, frames)
	}
}

// Trusted frames (a train's, under a verified outer checksum) merge
// without their checksums being summed; one that stays alone is verified
// all the same, and goes out without NEEDS_CSUM if it is bad.
func TestCoalesceTrusted(t *testing.T) {
	frames := segs(t, 4, 500, nil)
	frames[2][len(frames[2])-1] ^= 0x55 // corrupt, but under the outer checksum
	lone := buildTCP(t, flow(1, payload(0, 300)))
	lone[len(lone)-1] ^= 0x55
	c := NewCoalescer(8, testMTU, 0)
	c.Trust(true)
	for i, f := range append(frames, lone) {
		buf := make([]byte, VirtioNetHdrLen+bufRoom)
		copy(buf[VirtioNetHdrLen:], f)
		c.Add(buf, VirtioNetHdrLen, len(f), i, uint32(i/4)) // the lone one is another flow
	}
	c.Finish()
	outs := c.Outputs()
	if diff := cmp.Diff([]shape{{0, 4}, {4, 1}}, shapes(outs)); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	if outs[1].csum.State != L4Bad || outs[1].hdr != (VirtioNetHdr{}) {
		t.Errorf("the lone corrupt frame: %+v with header %+v, want bad and no flags", outs[1].csum, outs[1].hdr)
	}
}
