package offload

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckL4(t *testing.T) {
	tcp4 := buildTCP(t, flow(1, payload(0, 100)))
	tcp6 := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 100)); s.ipv6 = true; return s }())
	vlan := buildTCP(t, func() tcpSpec { s := flow(1, payload(0, 100)); s.vlan = true; return s }())
	udp4 := udpFrame(t, payload(3, 31))
	edit := func(f []byte, fn func(f []byte)) []byte { f = bytes.Clone(f); fn(f); return f }
	partialTCP := func(f []byte) []byte { f = bytes.Clone(f); partial(t, f); return f }
	partialUDP := edit(udp4, func(f []byte) {
		binary.BigEndian.PutUint16(f[40:], Fold(PseudoHeaderSum(17, f[26:30], f[30:34], len(f)-34)))
	})
	noCsumUDP := edit(udp4, func(f []byte) { f[40], f[41] = 0, 0 })
	corrupt := edit(tcp4, func(f []byte) { f[len(f)-1] ^= 1 })
	padded := append(bytes.Clone(buildTCP(t, flow(1, nil))), 0, 0, 0, 0, 0, 0)
	fragment := edit(tcp4, func(f []byte) { f[20] |= 0x20 }) // MF
	for _, tt := range []struct {
		name  string
		frame []byte
		want  L4Info
	}{
		{"tcp4 good", tcp4, L4Info{L4Good, 34, 16, len(tcp4)}},
		{"tcp6 good", tcp6, L4Info{L4Good, 54, 16, len(tcp6)}},
		{"vlan tcp4 good", vlan, L4Info{L4Good, 38, 16, len(vlan)}},
		{"udp4 good", udp4, L4Info{L4Good, 34, 6, len(udp4)}},
		{"tcp4 partial", partialTCP(tcp4), L4Info{L4Partial, 34, 16, len(tcp4)}},
		{"tcp6 partial", partialTCP(tcp6), L4Info{L4Partial, 54, 16, len(tcp6)}},
		{"udp4 partial", partialUDP, L4Info{L4Partial, 34, 6, len(udp4)}},
		{"tcp4 corrupt", corrupt, L4Info{L4Bad, 34, 16, len(tcp4)}},
		{"udp4 without checksum", noCsumUDP, L4Info{}},
		{"padding after the IP packet", padded, L4Info{L4Good, 34, 16, len(padded) - 6}},
		{"fragment", fragment, L4Info{}},
		{"ip length past the frame", tcp4[:len(tcp4)-1], L4Info{}},
		{"arp", make([]byte, 60), L4Info{}},
		{"runt", tcp4[:30], L4Info{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, CheckL4(tt.frame)); diff != "" {
				t.Errorf("CheckL4 (-want +got):\n%s", diff)
			}
		})
	}
	// Completing a partial checksum gives the good one.
	f := partialTCP(tcp4)
	info := CheckL4(f)
	h := info.NeedsCsumHdr()
	if err := CompleteChecksum(f[:info.End], &h); err != nil || !bytes.Equal(f, tcp4) {
		t.Errorf("completing the partial checksum: %v, frame equal %v", err, bytes.Equal(f, tcp4))
	}
}

// Segments whose sender left the checksum partial merge like good ones;
// alone, one is written with NEEDS_CSUM.
func TestCoalescePartialChecksums(t *testing.T) {
	frames := segs(t, 3, 1000, nil)
	for i := range frames {
		frames[i] = bytes.Clone(frames[i])
		if i != 1 {
			partial(t, frames[i])
		}
	}
	outs := coalesce(t, frames, bufRoom)
	if diff := cmp.Diff([]shape{{0, 3}}, shapes(outs)); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	ack := buildTCP(t, flow(5, nil))
	partial(t, ack)
	outs = coalesce(t, [][]byte{ack}, bufRoom)
	var h VirtioNetHdr
	h.Decode(outs[0].Packet())
	want := VirtioNetHdr{Flags: FlagNeedsCsum, HdrLen: 34 + 18, CsumStart: 34, CsumOffset: TCPChecksumOffset}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("header of a lone partial segment (-want +got):\n%s", diff)
	}
}
