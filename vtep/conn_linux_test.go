package vtep

import (
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

// FuzzGROSegment: no control buffer makes groSegment read past it.
func FuzzGROSegment(f *testing.F) {
	f.Add(cmsg(unix.SOL_UDP, unix.UDP_GRO, 1458, 4))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_TOS, 7, 4), cmsg(unix.SOL_UDP, unix.UDP_GRO, 9, 4)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		groSegment(b[:len(b):len(b)])
	})
}
