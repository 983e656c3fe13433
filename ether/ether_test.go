package ether_test

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/ether"
)

var (
	testDst = [ether.AddrLen]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	testSrc = [ether.AddrLen]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
)

// frame returns an Ethernet frame from testSrc to testDst whose fields
// after the source address are the 16-bit words (TPIDs, TCIs, EtherType)
// followed by payload.
func frame(words []uint16, payload ...byte) []byte {
	b := append(testDst[:], testSrc[:]...)
	for _, w := range words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	b = append(b, payload...)
	return b[:len(b):len(b)] // a read past len must panic
}

func TestConstants(t *testing.T) {
	// The offsets must tile the header.
	if ether.DstOffset+ether.AddrLen != ether.SrcOffset ||
		ether.SrcOffset+ether.AddrLen != ether.EtherTypeOffset ||
		ether.EtherTypeOffset+ether.EtherTypeLen != ether.HeaderLen {
		t.Error("Dst, Src and EtherType do not tile the header")
	}
	// The values are wire constants: spell them out once more.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"HeaderLen", ether.HeaderLen, 14},
		{"EtherTypeOffset", ether.EtherTypeOffset, 12},
		{"TagLen", ether.TagLen, 4},
		{"MaxTags", ether.MaxTags, 2},
		{"TypeIPv4", ether.TypeIPv4, 0x0800},
		{"TypeIPv6", ether.TypeIPv6, 0x86dd},
		{"TypeARP", ether.TypeARP, 0x0806},
		{"TPID8021Q", ether.TPID8021Q, 0x8100},
		{"TPID8021AD", ether.TPID8021AD, 0x88a8},
		{"TPIDLegacyQinQ", ether.TPIDLegacyQinQ, 0x9100},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// The header of a 802.1Q-tagged ARP frame, as a hex dump:
//
//	0000  ff ff ff ff ff ff 02 00  00 00 00 01 81 00 00 64  dst | src | TPID TCI
//	0010  08 06                                             EtherType
var taggedARP = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
	0x81, 0x00, 0x00, 0x64, // 802.1Q tag, VLAN 100
	0x08, 0x06, // ARP
}

func TestHeader(t *testing.T) {
	tests := []struct {
		name      string
		frame     []byte
		dst, src  [ether.AddrLen]byte
		etherType uint16
		tagged    bool
	}{
		{"IPv4", frame([]uint16{0x0800}), testDst, testSrc, 0x0800, false},
		{"IPv6 with payload", frame([]uint16{0x86dd}, 0x60, 0, 0, 0), testDst, testSrc, 0x86dd, false},
		{"802.1Q ARP", taggedARP, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, testSrc, 0x8100, true},
		{"802.1ad", frame([]uint16{0x88a8, 100, 0x8100, 200, 0x0800}), testDst, testSrc, 0x88a8, true},
		{"legacy QinQ", frame([]uint16{0x9100, 100, 0x0800}), testDst, testSrc, 0x9100, true},
		{"length field", frame([]uint16{46}), testDst, testSrc, 46, false},
		{"TPID byte-swapped", frame([]uint16{0x0081}), testDst, testSrc, 0x0081, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ether.Header(tt.frame)
			if got := h.Dst(); got != tt.dst {
				t.Errorf("Dst() = % x, want % x", got, tt.dst)
			}
			if got := h.Src(); got != tt.src {
				t.Errorf("Src() = % x, want % x", got, tt.src)
			}
			if got := h.EtherType(); got != tt.etherType {
				t.Errorf("EtherType() = %#04x, want %#04x", got, tt.etherType)
			}
			if got := ether.Tagged(tt.frame); got != tt.tagged {
				t.Errorf("Tagged() = %t, want %t", got, tt.tagged)
			}
			// The header alone, without payload, is enough.
			if got := ether.Header(tt.frame[:ether.HeaderLen:ether.HeaderLen]).EtherType(); got != tt.etherType {
				t.Errorf("EtherType() of the bare header = %#04x, want %#04x", got, tt.etherType)
			}
		})
	}
}

// TestHeaderCopies checks that Dst and Src return copies: changing the
// frame afterwards does not change what they returned.
func TestHeaderCopies(t *testing.T) {
	f := frame([]uint16{0x0800})
	h := ether.Header(f)
	dst, src := h.Dst(), h.Src()
	f[0], f[6] = 0xee, 0xee
	if dst != testDst || src != testSrc {
		t.Errorf("Dst, Src = % x, % x after the frame changed, want % x, % x", dst, src, testDst, testSrc)
	}
	if h.Dst()[0] != 0xee || h.Src()[0] != 0xee {
		t.Error("the view does not see the frame change")
	}
}

func TestIsTPID(t *testing.T) {
	tpids := map[uint16]bool{0x8100: true, 0x88a8: true, 0x9100: true}
	for et := range 1 << 16 {
		if got, want := ether.IsTPID(uint16(et)), tpids[uint16(et)]; got != want {
			t.Errorf("IsTPID(%#04x) = %t, want %t", et, got, want)
		}
	}
}

type l3Result struct {
	Offset    int
	EtherType uint16
	OK        bool
}

func TestL3(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  l3Result
	}{
		{"untagged IPv4", frame([]uint16{0x0800}, 0x45), l3Result{14, 0x0800, true}},
		{"untagged IPv6", frame([]uint16{0x86dd}, 0x60), l3Result{14, 0x86dd, true}},
		{"untagged ARP", frame([]uint16{0x0806}), l3Result{14, 0x0806, true}},
		{"unknown EtherType", frame([]uint16{0x88b5}), l3Result{14, 0x88b5, true}},
		{"length field", frame([]uint16{0x002e}), l3Result{14, 0x002e, true}},
		{"header only", frame([]uint16{0x0800}), l3Result{14, 0x0800, true}},
		{"802.1Q", frame([]uint16{0x8100, 100, 0x0800}, 0x45), l3Result{18, 0x0800, true}},
		{"802.1ad", frame([]uint16{0x88a8, 100, 0x86dd}), l3Result{18, 0x86dd, true}},
		{"legacy QinQ", frame([]uint16{0x9100, 100, 0x0800}), l3Result{18, 0x0800, true}},
		{"802.1ad + 802.1Q", frame([]uint16{0x88a8, 100, 0x8100, 200, 0x0800}, 0x45), l3Result{22, 0x0800, true}},
		{"legacy QinQ + 802.1Q", frame([]uint16{0x9100, 100, 0x8100, 200, 0x86dd}), l3Result{22, 0x86dd, true}},
		{"802.1Q + 802.1Q", frame([]uint16{0x8100, 100, 0x8100, 200, 0x0806}), l3Result{22, 0x0806, true}},
		{"legacy QinQ twice", frame([]uint16{0x9100, 100, 0x9100, 200, 0x0800}), l3Result{22, 0x0800, true}},

		// Failures: short frames and too many tags.
		{"empty", nil, l3Result{}},
		{"13 bytes", frame(nil, 0x08), l3Result{}},
		{"MACs only", frame(nil), l3Result{}},
		{"tag without EtherType", frame([]uint16{0x8100, 100}), l3Result{}},
		{"tag with half an EtherType", frame([]uint16{0x8100, 100}, 0x08), l3Result{}},
		{"tag cut in its TCI", frame([]uint16{0x88a8}, 0), l3Result{}},
		{"second tag without EtherType", frame([]uint16{0x88a8, 100, 0x8100, 200}), l3Result{}},
		{"three tags", frame([]uint16{0x88a8, 100, 0x8100, 200, 0x8100, 300, 0x0800}), l3Result{}},
		{"three legacy tags", frame([]uint16{0x9100, 100, 0x9100, 200, 0x9100, 300, 0x0800}), l3Result{}},
		{"third tag cut short", frame([]uint16{0x88a8, 100, 0x8100, 200, 0x8100}), l3Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got l3Result
			got.Offset, got.EtherType, got.OK = ether.L3(tt.frame)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("L3(% x) mismatch (-want +got):\n%s", tt.frame, diff)
			}
		})
	}
}

// refL3 is L3 written out plainly, with the wire values spelled out: the
// EtherType is at 12, 16 or 20, past as many tags as precede it.
func refL3(f []byte) (offset int, etherType uint16, ok bool) {
	for tags := 0; tags <= 2; tags++ {
		at := 12 + 4*tags
		if len(f) < at+2 {
			return 0, 0, false // short
		}
		et := uint16(f[at])<<8 | uint16(f[at+1])
		if et != 0x8100 && et != 0x88a8 && et != 0x9100 {
			return at + 2, et, true
		}
	}
	return 0, 0, false // a third tag
}

func FuzzL3(f *testing.F) {
	f.Add([]byte{})
	f.Add(frame(nil, 0x08))
	f.Add(frame([]uint16{0x0800}, 0x45))
	f.Add(frame([]uint16{0x8100, 100, 0x86dd}))
	f.Add(frame([]uint16{0x88a8, 100, 0x8100, 200, 0x0800}, 0x45))
	f.Add(frame([]uint16{0x9100, 100, 0x9100, 200}, 0x08))
	f.Add(frame([]uint16{0x9100, 100, 0x8100, 200, 0x88a8, 300, 0x0800}))
	f.Add(taggedARP)

	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)] // a read past len must panic
		off, et, ok := ether.L3(b)
		if rOff, rEt, rOK := refL3(b); off != rOff || et != rEt || ok != rOK {
			t.Fatalf("L3(% x) = %d, %#04x, %t; reference %d, %#04x, %t", b, off, et, ok, rOff, rEt, rOK)
		}
		// The number of TPIDs in a row from the outer EtherType on, as
		// far as the frame holds them.
		tpids := 0
		for at := ether.EtherTypeOffset; at+2 <= len(b) && ether.IsTPID(binary.BigEndian.Uint16(b[at:])); at += ether.TagLen {
			tpids++
		}
		if !ok {
			if off != 0 || et != 0 {
				t.Fatalf("L3(% x) failed but returned offset %d, EtherType %#04x", b, off, et)
			}
			// Only a short frame or too many tags fail.
			short := len(b) < ether.HeaderLen+tpids*ether.TagLen
			if !short && tpids <= ether.MaxTags {
				t.Fatalf("L3(% x) failed on a whole frame with %d tags", b, tpids)
			}
			return
		}
		if off < ether.HeaderLen || off > len(b) || (off-ether.HeaderLen)%ether.TagLen != 0 {
			t.Fatalf("L3(% x) offset %d: outside the frame or not after whole tags", b, off)
		}
		if got := binary.BigEndian.Uint16(b[off-2:]); got != et {
			t.Fatalf("L3(% x) EtherType %#04x, but the 2 bytes before offset %d are %#04x", b, et, off, got)
		}
		if ether.IsTPID(et) {
			t.Fatalf("L3(% x) returned a TPID, %#04x, as the EtherType", b, et)
		}
		if skipped := (off - ether.HeaderLen) / ether.TagLen; skipped != tpids || skipped > ether.MaxTags {
			t.Fatalf("L3(% x) skipped %d tags, the frame has %d in a row", b, skipped, tpids)
		}
		if ether.Tagged(b) != (tpids > 0) {
			t.Fatalf("Tagged(% x) = %t with %d tags", b, ether.Tagged(b), tpids)
		}
	})
}

// Sinks keep the compiler from discarding results.
var (
	sinkInt  int
	sinkU16  uint16
	sinkBool bool
	sinkAddr [ether.AddrLen]byte
)

// TestZeroAllocs asserts the per-packet functions never allocate.
func TestZeroAllocs(t *testing.T) {
	untagged := frame([]uint16{0x0800}, 0x45)
	qinq := frame([]uint16{0x88a8, 100, 0x8100, 200, 0x0800}, 0x45)
	tests := []struct {
		name string
		f    func()
	}{
		{"L3 untagged", func() { sinkInt, sinkU16, sinkBool = ether.L3(untagged) }},
		{"L3 QinQ", func() { sinkInt, sinkU16, sinkBool = ether.L3(qinq) }},
		{"Tagged", func() { sinkBool = ether.Tagged(qinq) }},
		{"Dst", func() { sinkAddr = ether.Header(qinq).Dst() }},
		{"Src", func() { sinkAddr = ether.Header(qinq).Src() }},
		{"EtherType", func() { sinkU16 = ether.Header(qinq).EtherType() }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s allocates %.1f times per call, want 0", tt.name, n)
		}
	}
}

func BenchmarkL3(b *testing.B) {
	for _, bm := range []struct {
		name  string
		frame []byte
	}{
		{"untagged", frame([]uint16{0x0800}, 0x45)},
		{"802.1Q", frame([]uint16{0x8100, 100, 0x0800}, 0x45)},
		{"QinQ", frame([]uint16{0x88a8, 100, 0x8100, 200, 0x0800}, 0x45)},
		{"legacy-QinQ", frame([]uint16{0x9100, 100, 0x8100, 200, 0x0800}, 0x45)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkInt, sinkU16, sinkBool = ether.L3(bm.frame)
			}
		})
	}
}
