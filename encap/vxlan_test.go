package encap_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/encap"
)

func TestOverheads(t *testing.T) {
	// These numbers size MTUs and buffers elsewhere; they must not drift.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"OverheadIPv4", encap.OverheadIPv4, 50},
		{"OverheadIPv6", encap.OverheadIPv6, 70},
		{"Headroom", encap.Headroom, 16},
		{"MaxVNI", encap.MaxVNI, 16777215},
		{"Port", encap.Port, 4789},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// vxlanPayload returns a VXLAN header with the given first word (flags and
// reserved bits) and VNI word (VNI<<8 | last reserved byte), followed by an
// inner frame of innerLen bytes.
func vxlanPayload(word0, word1 uint32, innerLen int) []byte {
	b := make([]byte, encap.HeaderLen+innerLen)
	b[0], b[1], b[2], b[3] = byte(word0>>24), byte(word0>>16), byte(word0>>8), byte(word0)
	b[4], b[5], b[6], b[7] = byte(word1>>24), byte(word1>>16), byte(word1>>8), byte(word1)
	for i := encap.HeaderLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func TestDecap(t *testing.T) {
	const iFlag = encap.FlagI << 24
	tests := []struct {
		name    string
		payload []byte
		wantVNI uint32
		wantErr error
	}{
		{name: "nil", payload: nil, wantErr: encap.ErrTooShort},
		{name: "empty", payload: []byte{}, wantErr: encap.ErrTooShort},
		{name: "one byte", payload: []byte{encap.FlagI}, wantErr: encap.ErrTooShort},
		{name: "seven bytes", payload: vxlanPayload(iFlag, 200<<8, 0)[:7], wantErr: encap.ErrTooShort},
		// Length is checked before flags.
		{name: "seven bytes bad flags", payload: vxlanPayload(0, 200<<8, 0)[:7], wantErr: encap.ErrTooShort},
		{name: "flags zero", payload: vxlanPayload(0, 200<<8, 64), wantErr: encap.ErrBadFlags},
		{name: "all flags but I", payload: vxlanPayload(0xf7ffffff, 0xffffffff, 64), wantErr: encap.ErrBadFlags},
		// Flags are checked before the inner length.
		{name: "header only bad flags", payload: vxlanPayload(0, 200<<8, 0), wantErr: encap.ErrBadFlags},
		{name: "header only", payload: vxlanPayload(iFlag, 200<<8, 0), wantErr: encap.ErrInnerTooShort},
		{name: "inner 13 bytes", payload: vxlanPayload(iFlag, 200<<8, encap.EthernetHeaderLen-1), wantErr: encap.ErrInnerTooShort},
		{name: "exact minimum", payload: vxlanPayload(iFlag, 200<<8, encap.EthernetHeaderLen), wantVNI: 200},
		{name: "VNI 0", payload: vxlanPayload(iFlag, 0, 60), wantVNI: 0},
		{name: "MaxVNI", payload: vxlanPayload(iFlag, encap.MaxVNI<<8, 60), wantVNI: encap.MaxVNI},
		{name: "VNI byte order", payload: vxlanPayload(iFlag, 0x123456<<8, 60), wantVNI: 0x123456},
		// RFC 7348 §5: reserved fields are ignored on receipt.
		{name: "reserved bits set", payload: vxlanPayload(0xffffffff, 200<<8|0xff, 60), wantVNI: 200},
		{name: "group policy bits", payload: vxlanPayload(0x88c0abcd, 200<<8, 60), wantVNI: 200},
		{name: "last reserved byte", payload: vxlanPayload(iFlag, 0xabcdef<<8|0x5a, 60), wantVNI: 0xabcdef},
		{name: "golden ARP", payload: goldenARP[encap.UDPHeaderLen:], wantVNI: goldenVNI},
		{name: "golden ICMP", payload: goldenICMP[encap.UDPHeaderLen:], wantVNI: goldenVNI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vni, in, err := encap.Decap(tt.payload)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decap error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if vni != 0 || in != nil {
					t.Errorf("Decap failed but returned VNI %d and %d inner bytes", vni, len(in))
				}
				return
			}
			if vni != tt.wantVNI {
				t.Errorf("VNI = %#x, want %#x", vni, tt.wantVNI)
			}
			if !isTail(tt.payload, in, encap.HeaderLen) {
				t.Errorf("inner frame is not payload[%d:] in place", encap.HeaderLen)
			}
		})
	}
}

// isTail reports whether sub is exactly b[off:], sharing b's memory.
func isTail(b, sub []byte, off int) bool {
	return len(sub) == len(b)-off && len(sub) > 0 && &sub[0] == &b[off]
}

func TestHeader(t *testing.T) {
	for _, vni := range []uint32{0, 1, 200, 0x800000, 0x123456, encap.MaxVNI} {
		h := encap.Header(bytes.Repeat([]byte{0xff}, encap.HeaderLen)) // dirty
		h.Encode(vni)
		want := []byte{encap.FlagI, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
		if diff := cmp.Diff(want, []byte(h)); diff != "" {
			t.Errorf("Encode(%#x) (-want +got):\n%s", vni, diff)
		}
		if h.Flags() != encap.FlagI || h.VNI() != vni {
			t.Errorf("Encode(%#x) reads back flags %#x VNI %#x", vni, h.Flags(), h.VNI())
		}
	}

	// Bits above the 24-bit VNI are dropped and do not leak into the
	// reserved byte.
	h := make(encap.Header, encap.HeaderLen)
	h.Encode(0xff000000 | 200)
	if h.VNI() != 200 || h[7] != 0 {
		t.Errorf("Encode(0xff0000c8) = % x, want VNI 200 and zero reserved byte", []byte(h))
	}
}

func TestUDP(t *testing.T) {
	u := encap.UDP(bytes.Repeat([]byte{0xff}, encap.UDPHeaderLen)) // dirty
	u.Encode(0xc0de, encap.Port, 1500)
	want := []byte{0xc0, 0xde, 0x12, 0xb5, 0x05, 0xdc, 0x00, 0x00}
	if diff := cmp.Diff(want, []byte(u)); diff != "" {
		t.Errorf("Encode (-want +got):\n%s", diff)
	}
	if u.SourcePort() != 0xc0de || u.DestinationPort() != encap.Port || u.Length() != 1500 || u.Checksum() != 0 {
		t.Errorf("read back %d -> %d length %d checksum %#x", u.SourcePort(), u.DestinationPort(), u.Length(), u.Checksum())
	}
	if encap.UDPChecksumOffset != 6 {
		t.Errorf("UDPChecksumOffset = %d, want 6", encap.UDPChecksumOffset)
	}
}

func TestEncap(t *testing.T) {
	frame := inner(goldenICMP)
	b := make([]byte, 2048)
	copy(b[encap.Headroom:], frame)
	got := encap.Encap(b, 7, 50000, 8472, len(frame))

	if len(got) != encap.Headroom+len(frame) || &got[0] != &b[0] {
		t.Fatalf("Encap returned %d bytes at a different address, want b[:%d]", len(got), encap.Headroom+len(frame))
	}
	u := encap.UDP(got)
	if u.SourcePort() != 50000 || u.DestinationPort() != 8472 || int(u.Length()) != len(got) {
		t.Errorf("UDP %d -> %d length %d, want 50000 -> 8472 length %d", u.SourcePort(), u.DestinationPort(), u.Length(), len(got))
	}
	if h := encap.Header(got[encap.UDPHeaderLen:]); h.VNI() != 7 || h.Flags() != encap.FlagI {
		t.Errorf("VXLAN flags %#x VNI %d, want %#x and 7", h.Flags(), h.VNI(), encap.FlagI)
	}
	if diff := cmp.Diff(frame, got[encap.Headroom:]); diff != "" {
		t.Errorf("inner frame changed (-want +got):\n%s", diff)
	}

	// An exactly sized buffer is enough.
	exact := make([]byte, encap.Headroom+len(frame))
	copy(exact[encap.Headroom:], frame)
	if got := encap.Encap(exact, 7, 50000, 8472, len(frame)); len(got) != len(exact) {
		t.Errorf("Encap on an exact buffer returned %d bytes, want %d", len(got), len(exact))
	}
}

func FuzzDecap(f *testing.F) {
	for _, g := range goldens {
		f.Add(g.packet[encap.UDPHeaderLen:])
	}
	f.Add([]byte{})
	f.Add([]byte{encap.FlagI, 0, 0, 0, 0, 0, 200})                                 // short
	f.Add(vxlanPayload(0, 200<<8, 60))                                             // bad flags
	f.Add(vxlanPayload(0xf7ffffff, 0xffffffff, 60))                                // every bit but I
	f.Add(vxlanPayload(encap.FlagI<<24, 200<<8, encap.EthernetHeaderLen-1))        // inner one short
	f.Add(vxlanPayload(encap.FlagI<<24, 200<<8, encap.EthernetHeaderLen))          // exact minimum
	f.Add(vxlanPayload(0xffffffff, encap.MaxVNI<<8|0xff, encap.EthernetHeaderLen)) // reserved set

	f.Fuzz(func(t *testing.T, payload []byte) {
		vni, in, err := encap.Decap(payload)

		// The errors are exactly the documented checks, in order.
		var want error
		switch {
		case len(payload) < encap.HeaderLen:
			want = encap.ErrTooShort
		case payload[0]&encap.FlagI == 0:
			want = encap.ErrBadFlags
		case len(payload) < encap.HeaderLen+encap.EthernetHeaderLen:
			want = encap.ErrInnerTooShort
		}
		if !errors.Is(err, want) {
			t.Fatalf("Decap(% x) error = %v, want %v", payload, err, want)
		}
		if err != nil {
			return
		}

		if len(in) < encap.EthernetHeaderLen || !isTail(payload, in, encap.HeaderLen) {
			t.Fatalf("inner frame (%d bytes) is not payload[%d:] (%d bytes) in place", len(in), encap.HeaderLen, len(payload))
		}
		if vni > encap.MaxVNI {
			t.Fatalf("VNI %#x exceeds MaxVNI", vni)
		}
		var h [encap.HeaderLen]byte
		encap.Header(h[:]).Encode(vni)
		if got := encap.Header(h[:]).VNI(); got != vni {
			t.Fatalf("re-encoded VNI %#x reads back as %#x", vni, got)
		}

		// Re-encapsulating the inner frame gives a datagram that decodes
		// to the same VNI and frame.
		b := make([]byte, encap.Headroom+len(in))
		copy(b[encap.Headroom:], in)
		d := encap.Encap(b, vni, 1, encap.Port, len(in))
		vni2, in2, err := encap.Decap(d[encap.UDPHeaderLen:])
		if err != nil || vni2 != vni || !bytes.Equal(in2, in) {
			t.Fatalf("re-encapsulated datagram decodes to VNI %#x, %d bytes, %v; want VNI %#x, %d bytes", vni2, len(in2), err, vni, len(in))
		}
	})
}
