package underlay

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message of level and type carrying value as a
// 32-bit int, padded as the kernel pads it.
func cmsg(level, typ int32, value int32, dataLen int) []byte {
	b := make([]byte, unix.CmsgSpace(dataLen))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(dataLen))
	if dataLen >= 4 {
		*(*int32)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = value
	}
	return b
}

func TestGROSegment(t *testing.T) {
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1458, 4)
	other := cmsg(unix.SOL_IP, unix.IP_TOS, 7, 4)
	bad := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1458, 4)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).Len = 1 << 20 // longer than the buffer
	for _, tt := range []struct {
		name string
		ctrl []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", gro, 1458},
		{"after another", append(append([]byte(nil), other...), gro...), 1458},
		{"other only", other, 0},
		{"truncated header", gro[:unix.SizeofCmsghdr-1], 0},
		{"truncated data", gro[:unix.CmsgLen(2)], 0},
		{"length past the buffer", bad, 0},
		{"gro without its int", cmsg(unix.SOL_UDP, unix.UDP_GRO, 0, 2), 0},
	} {
		if got := groSegment(tt.ctrl); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { groSegment(gro) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

// refGROSegment is groSegment written from the cmsg(3) layout alone, with
// no help from x/sys/unix beyond the constants: the reference the fuzzer
// holds groSegment to.
func refGROSegment(b []byte) int {
	lenSize := int(unsafe.Sizeof(unix.Cmsghdr{}.Len))
	align := int(unsafe.Sizeof(uintptr(0)))
	for len(b) >= unix.SizeofCmsghdr {
		var l uint64
		if lenSize == 8 {
			l = binary.NativeEndian.Uint64(b)
		} else {
			l = uint64(binary.NativeEndian.Uint32(b))
		}
		level := int32(binary.NativeEndian.Uint32(b[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(b[lenSize+4:]))
		if l < uint64(unix.SizeofCmsghdr) || l > uint64(len(b)) {
			return 0
		}
		data := b[unix.SizeofCmsghdr:l]
		if level == unix.SOL_UDP && typ == unix.UDP_GRO && len(data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := (int(l) + align - 1) &^ (align - 1)
		if next >= len(b) {
			return 0
		}
		b = b[next:]
	}
	return 0
}

// FuzzGROSegment holds groSegment to the reference on any buffer, and
// checks that a UDP_GRO message behind others of other kinds is found,
// whatever follows it.
func FuzzGROSegment(f *testing.F) {
	f.Add(cmsg(unix.SOL_UDP, unix.UDP_GRO, 1458, 4), int32(1398), uint8(1))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_TOS, 7, 4), cmsg(unix.SOL_UDP, unix.UDP_GRO, 9, 4)...), int32(-1), uint8(0))
	f.Add([]byte{}, int32(0), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, value int32, others uint8) {
		b = b[:len(b):len(b)]
		if got, want := groSegment(b), refGROSegment(b); got != want {
			t.Fatalf("groSegment(% x) = %d, reference %d", b, got, want)
		}
		var ctrl []byte
		for i := range int(others % 4) {
			ctrl = append(ctrl, cmsg(unix.SOL_IP, unix.IP_TOS, int32(i), 1+i)...)
		}
		ctrl = append(ctrl, cmsg(unix.SOL_UDP, unix.UDP_GRO, value, 4)...)
		ctrl = append(ctrl, b...)
		if got := groSegment(ctrl); got != int(value) {
			t.Fatalf("groSegment behind %d other messages = %d, want %d", others%4, got, value)
		}
	})
}
