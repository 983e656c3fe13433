package offload

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vtepd/vtepd/ether"
)

// FuzzSegment: whatever the frame and header, Reset either refuses or
// describes segments that fit MaxSegmentLen, carry every payload byte once
// in order, and verify; nothing panics or writes past its buffer.
func FuzzSegment(f *testing.F) {
	for _, s := range []tcpSpec{flow(1, payload(0, 3000)), func() tcpSpec { s := flow(9, payload(1, 2000)); s.ipv6 = true; return s }()} {
		frame, h := superFrame(f, s, 1000)
		f.Add(frame, h.GSOType, h.GSOSize)
	}
	vlan := flow(5, payload(2, 1500))
	vlan.vlan = true
	frame, h := superFrame(f, vlan, 700)
	f.Add(frame, h.GSOType, h.GSOSize)
	f.Add(buildUDP(f, udpSpec{payload: payload(3, 1000)}), uint8(GSOUDPL4), uint16(300))
	f.Add(buildUDP(f, udpSpec{ipv6: true, payload: payload(4, 900)}), uint8(GSOUDPL4), uint16(64))
	f.Fuzz(func(t *testing.T, frame []byte, gsoType uint8, gsoSize uint16) {
		h := VirtioNetHdr{Flags: FlagNeedsCsum, GSOType: gsoType, GSOSize: gsoSize}
		var s Segmenter
		if s.Reset(frame, &h) != nil {
			return
		}
		orig := bytes.Clone(frame)
		max := s.MaxSegmentLen()
		// A guard zone after the buffer catches writes past MaxSegmentLen.
		buf := make([]byte, max+16)
		var got []byte
		count := s.Segments()
		for i := 0; !s.Done(); i++ {
			if i == count {
				t.Fatalf("more than the %d segments announced", count)
			}
			n := s.Next(buf[:max])
			if n == 0 || n > max {
				t.Fatalf("segment %d: length %d, MaxSegmentLen %d", i, n, max)
			}
			if !bytes.Equal(buf[max:], make([]byte, 16)) {
				t.Fatal("Next wrote past MaxSegmentLen")
			}
			if !checksumsGood(buf[:n]) {
				t.Fatalf("segment %d does not verify", i)
			}
			got = append(got, buf[s.hdrLen:n]...)
		}
		if !bytes.Equal(got, orig[s.hdrLen:]) {
			t.Fatal("the segments' payloads are not the super-frame's")
		}
		if !bytes.Equal(frame, orig) {
			t.Fatal("segmenting changed the super-frame")
		}
	})
}

// FuzzCoalesce: data is cut into frames (a 2-byte length before each);
// whatever they hold, every frame is accounted for exactly once, outputs
// stay in their buffers, the frames that are not merged come out as they
// went in, and each super-frame segments back into verified segments
// carrying the merged frames' payloads.
func FuzzCoalesce(f *testing.F) {
	seed := func(frames ...[]byte) []byte {
		var b []byte
		for _, fr := range frames {
			b = binary.BigEndian.AppendUint16(b, uint16(len(fr)))
			b = append(b, fr...)
		}
		return b
	}
	f.Add(seed(segs(f, 4, 300, nil)...), uint16(2000), uint16(1500))
	f.Add(seed(segs(f, 3, 200, func(i int, s *tcpSpec) { s.ipv6 = true })...), uint16(700), uint16(1500))
	f.Add(seed(segs(f, 3, 100, func(i int, s *tcpSpec) { s.flags |= tcpPSH * uint8(i%2) })...), uint16(500), uint16(1500))
	f.Add(seed(segs(f, 2, 1000, nil)...), uint16(2000), uint16(600)) // over the MTU: split
	// An even MTU merges UDP too.
	f.Add(seed(udpTrain(f, 5, 64, nil)...), uint16(200), uint16(1500))
	f.Add(seed(udpTrain(f, 4, 30, func(i int, s *udpSpec) { s.ipv6 = true })...), uint16(200), uint16(1400))
	f.Fuzz(func(t *testing.T, data []byte, room, mtu uint16) {
		var frames [][]byte
		for len(data) >= 2 && len(frames) < 64 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			frames = append(frames, data[2:2+n])
			data = data[2+n:]
		}
		if len(frames) == 0 {
			return
		}
		const guard = 16
		mtu = max(mtu, 68)
		c := NewCoalescer(len(frames), int(mtu), 0)
		c.MergeUDP(mtu%2 == 0)
		trusted := room%2 == 1
		c.Trust(trusted)
		bufs := make([][]byte, len(frames))
		for i, fr := range frames {
			size := VirtioNetHdrLen + max(len(fr), int(room))
			b := make([]byte, size+guard)
			copy(b[VirtioNetHdrLen:], fr)
			bufs[i] = b
			c.Add(b[:size], VirtioNetHdrLen, len(fr), i, uint32(i%2))
		}
		c.Finish()
		alone := map[int]bool{} // frames output as they came
		for _, o := range c.Outputs() {
			if o.Frames == 1 {
				alone[o.Index] = true
			}
		}
		for i, fr := range frames {
			if CheckL4(fr).State == L4Bad && !alone[i] && !trusted {
				t.Fatalf("frame %d, its checksum bad, was merged", i)
			}
		}
		seen := 0
		for _, o := range c.Outputs() {
			seen += o.Frames
			if !bytes.Equal(bufs[o.Index][len(bufs[o.Index])-guard:], make([]byte, guard)) {
				t.Fatal("an output grew past its buffer")
			}
			pkt := o.Packet()
			var h VirtioNetHdr
			h.Decode(pkt)
			if !h.IsGSO() {
				if o.Frames != 1 {
					t.Fatalf("%d frames merged without a GSO header", o.Frames)
				}
				if !bytes.Equal(pkt[VirtioNetHdrLen:], frames[o.Index]) {
					t.Fatalf("frame %d changed although not merged", o.Index)
				}
				continue
			}
			var s Segmenter
			if err := s.Reset(pkt[VirtioNetHdrLen:], &h); err != nil {
				t.Fatalf("super-frame of frame %d does not segment: %v", o.Index, err)
			}
			if o.Frames > 1 && s.Segments() != o.Frames {
				t.Fatalf("super-frame of %d frames segments into %d", o.Frames, s.Segments())
			}
			seg := make([]byte, s.MaxSegmentLen())
			for !s.Done() {
				n := s.Next(seg)
				if !checksumsGood(seg[:n]) {
					t.Fatal("a segment of a super-frame does not verify")
				}
				if ipLen := n - ether.HeaderLen; ipLen > int(mtu) {
					t.Fatalf("a segment of %d IP bytes, MTU %d", ipLen, mtu)
				}
			}
		}
		if seen != len(frames) {
			t.Fatalf("outputs hold %d frames, %d went in", seen, len(frames))
		}
	})
}

// FuzzCheckL4: CheckL4 never reads past the frame, its positions fit the
// frame, and completing a partial checksum makes it good. For a segment
// the Coalescer may merge, copyVerify finds what CheckL4 does and copies
// the payload.
func FuzzCheckL4(f *testing.F) {
	f.Add(buildTCP(f, flow(1, payload(0, 100))))
	f.Add(udpFrame(f, payload(1, 20)))
	p := buildTCP(f, func() tcpSpec { s := flow(1, payload(0, 10)); s.ipv6 = true; return s }())
	partial(f, p)
	f.Add(p)
	f.Fuzz(func(t *testing.T, frame []byte) {
		info := CheckL4(frame)
		var seg segment
		if parseSegment(frame, &seg, true) == candidate {
			dst := make([]byte, seg.payload)
			if got := copyVerify(dst, frame, &seg); got != info {
				t.Fatalf("copyVerify = %+v, CheckL4 = %+v", got, info)
			}
			if !bytes.Equal(dst, frame[seg.hdrLen:]) {
				t.Fatal("copyVerify copied something else than the payload")
			}
		}
		if info.State == L4None {
			return
		}
		if info.Start+info.Offset+2 > info.End || info.End > len(frame) {
			t.Fatalf("CheckL4 = %+v for a %d-byte frame", info, len(frame))
		}
		if info.State == L4Partial {
			h := info.NeedsCsumHdr()
			if err := CompleteChecksum(frame[:info.End], &h); err != nil {
				t.Fatal(err)
			}
			if got := CheckL4(frame); got.State != L4Good {
				t.Fatalf("completed partial checksum is %v", got.State)
			}
		}
	})
}
