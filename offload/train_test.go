package offload

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vxlanGap is what sits in front of each frame of a test train: the
// VXLAN header of its datagram, shorter than a virtio_net_hdr.
const vxlanGap = 8

// coalesceTrain runs frames through a Coalescer with spares spare buffers
// as one received train: laid end to end in a single buffer, each behind
// vxlanGap bytes and capped at its own end (no room to merge into). Each
// output's packet is copied out as it is taken, in order, as a TAP write
// would; the bytes before the train and after it are checked untouched.
func coalesceTrain(t testing.TB, frames [][]byte, spares int, tags ...uint32) ([]shape, [][]byte) {
	t.Helper()
	const guard = 16
	front := VirtioNetHdrLen - vxlanGap
	size := front
	for _, f := range frames {
		size += vxlanGap + len(f)
	}
	buf := make([]byte, guard+size+guard)
	train := buf[guard : guard+size]
	c := NewCoalescer(len(frames), testMTU, spares)
	off := front
	for i, f := range frames {
		off += vxlanGap
		copy(train[off:], f)
		var tag uint32
		if i < len(tags) {
			tag = tags[i]
		}
		end := off + len(f)
		c.Add(train[:end:end], off, len(f), i, tag)
		off = end
	}
	c.Finish()
	var pkts [][]byte
	outs := c.Outputs()
	for i := range outs {
		pkts = append(pkts, bytes.Clone(outs[i].Packet()))
	}
	if !bytes.Equal(buf[:guard], make([]byte, guard)) || !bytes.Equal(buf[guard+size:], make([]byte, guard)) {
		t.Fatal("the coalescer wrote outside the train")
	}
	return shapes(outs), pkts
}

// A train, coalesced in place with spares to grow into, writes exactly
// what the same frames give with room of their own.
func TestCoalesceTrainsAsWithRoom(t *testing.T) {
	const mss = 1398
	bad := func(f []byte) []byte { f = bytes.Clone(f); f[len(f)-1] ^= 0x55; return f }
	a := segs(t, 3, 1000, nil)
	b := segs(t, 3, 1000, func(i int, s *tcpSpec) { s.src, s.sport = 2, 40001 })
	c := segs(t, 2, 1000, func(i int, s *tcpSpec) { s.ipv6 = true })
	withBad := segs(t, 5, mss, nil)
	withBad[2] = bad(withBad[2])
	for _, tt := range []struct {
		name   string
		frames [][]byte
		want   []shape
	}{
		{"one flow", segs(t, 8, mss, nil), []shape{{0, 8}}},
		{"one flow ipv6, short last", segs(t, 4, mss, func(i int, s *tcpSpec) {
			s.ipv6 = true
			if i == 3 {
				s.payload = s.payload[:100]
			}
		}), []shape{{0, 4}}},
		{"interleaved flows", [][]byte{a[0], b[0], a[1], c[0], b[1], a[2], c[1], b[2]}, []shape{{0, 3}, {1, 3}, {3, 2}}},
		{"corrupt in the middle", withBad, []shape{{0, 2}, {2, 1}, {3, 2}}},
		{"past 64 KiB", segs(t, 60, 1448, nil), []shape{{0, 45}, {45, 15}}},
		{"psh in the middle", segs(t, 4, mss, func(i int, s *tcpSpec) {
			if i == 1 {
				s.flags |= tcpPSH
			}
		}), []shape{{0, 2}, {2, 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shp, pkts := coalesceTrain(t, tt.frames, 4)
			if diff := cmp.Diff(tt.want, shp); diff != "" {
				t.Fatalf("outputs (-want +got):\n%s", diff)
			}
			room := coalesce(t, tt.frames, bufRoom)
			for i := range room {
				if want := room[i].Packet(); !bytes.Equal(pkts[i], want) {
					t.Errorf("output %d: %d bytes differ from the %d written with room", i, len(pkts[i]), len(want))
				}
			}
		})
	}
}

// With the spares used up, a super-frame that would need one is closed
// instead: its flow goes on in a new output, nothing is lost or reordered,
// and every packet is intact.
func TestCoalesceTrainSparesRunOut(t *testing.T) {
	a := segs(t, 3, 1000, nil)
	b := segs(t, 3, 1000, func(i int, s *tcpSpec) { s.src, s.sport = 2, 40001 })
	c := segs(t, 2, 1000, func(i int, s *tcpSpec) { s.ipv6 = true })
	frames := [][]byte{a[0], b[0], a[1], c[0], b[1], a[2], c[1], b[2]}
	for _, tt := range []struct {
		spares int
		want   []shape
	}{
		{0, []shape{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}}},
		{1, []shape{{0, 3}, {1, 1}, {3, 1}, {4, 1}, {6, 1}, {7, 1}}},
		{2, []shape{{0, 3}, {1, 3}, {3, 1}, {6, 1}}},
	} {
		shp, pkts := coalesceTrain(t, frames, tt.spares)
		if diff := cmp.Diff(tt.want, shp); diff != "" {
			t.Errorf("%d spares: outputs (-want +got):\n%s", tt.spares, diff)
		}
		// Cut back into segments, each flow's frames come out as they
		// went in, in order.
		got := map[byte][][]byte{}
		for _, pkt := range pkts {
			for _, f := range resegment(t, pkt) {
				got[flowKey(f)] = append(got[flowKey(f)], f)
			}
		}
		want := map[byte][][]byte{}
		for _, f := range frames {
			want[flowKey(f)] = append(want[flowKey(f)], f)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%d spares: frames by flow (-want +got):\n%s", tt.spares, diff)
		}
	}
}

// A corrupt segment that would need its super-frame moved to a spare is
// refused before the move: the one spare is left for the next
// super-frame.
func TestCoalesceTrainCorruptTakesNoSpare(t *testing.T) {
	frames := segs(t, 4, 1000, nil)
	frames[1] = bytes.Clone(frames[1])
	frames[1][len(frames[1])-1] ^= 0x55
	shp, _ := coalesceTrain(t, frames, 1)
	if diff := cmp.Diff([]shape{{0, 1}, {1, 1}, {2, 2}}, shp); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}

// A pool's spares come back at Reset.
func TestCoalesceSparesReturnAtReset(t *testing.T) {
	c := NewCoalescer(8, testMTU, 1)
	frames := segs(t, 2, 1000, nil)
	for round := 0; round < 2; round++ {
		c.Reset()
		buf := make([]byte, VirtioNetHdrLen+2*len(frames[0]))
		off := VirtioNetHdrLen
		for i, f := range frames {
			copy(buf[off:], f)
			c.Add(buf[:off+len(f):off+len(f)], off, len(f), i, 0)
			off += len(f)
		}
		if got := c.FreeSpares(); got != 0 {
			t.Errorf("round %d: %d spares free after a relocation, want 0", round, got)
		}
		if n := len(c.Outputs()); n != 1 || c.Room() != 7 {
			t.Errorf("round %d: %d outputs, room %d; want 1, 7", round, n, c.Room())
		}
	}
}

// resegment returns the frames a packet (virtio_net_hdr and frame) stands for.
func resegment(t testing.TB, pkt []byte) [][]byte {
	t.Helper()
	var h VirtioNetHdr
	h.Decode(pkt)
	if !h.IsGSO() {
		return [][]byte{bytes.Clone(pkt[VirtioNetHdrLen:])}
	}
	var s Segmenter
	if err := s.Reset(pkt[VirtioNetHdrLen:], &h); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	buf := make([]byte, s.MaxSegmentLen())
	for !s.Done() {
		n := s.Next(buf)
		out = append(out, bytes.Clone(buf[:n]))
	}
	return out
}

// flowKey tells the tests' flows apart: IP version and source MAC.
func flowKey(f []byte) byte {
	if f[12] == 0x86 {
		return 0x80 | f[11]
	}
	return f[11]
}
