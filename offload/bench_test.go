package offload

import (
	"strconv"
	"testing"
)

func BenchmarkChecksum1500(b *testing.B) {
	buf := payload(0, 1500)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		Checksum(buf, 0)
	}
}

var benchSizes = []int{64, 1500, 65536}

var sink uint64

func BenchmarkSum(b *testing.B) {
	for _, n := range benchSizes {
		buf := payload(0, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sink = Sum(buf, sink)
			}
		})
	}
}

func BenchmarkCopySum(b *testing.B) {
	benchCopy(b, func(dst, src []byte) { _, sink = CopySum(dst, src, sink) })
}

// BenchmarkCopyThenSum is copy and Sum as two calls, to compare with
// BenchmarkCopySum.
func BenchmarkCopyThenSum(b *testing.B) {
	benchCopy(b, func(dst, src []byte) {
		copy(dst, src)
		sink = Sum(dst, sink)
	})
}

// benchCopy runs f over a source and a destination of each benchSize.
func benchCopy(b *testing.B, f func(dst, src []byte)) {
	for _, n := range benchSizes {
		src, dst := payload(0, n), make([]byte, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				f(dst, src)
			}
		})
	}
}

// BenchmarkSegment cuts a 64 KiB IPv4 super-frame into 45 segments.
func BenchmarkSegment(b *testing.B) {
	super, h := superFrame(b, flow(1, payload(0, 65535-20-32)), 1448)
	var s Segmenter
	buf := make([]byte, 1514)
	b.SetBytes(int64(len(super)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Reset(super, &h); err != nil {
			b.Fatal(err)
		}
		for !s.Done() {
			s.Next(buf)
		}
	}
}

// BenchmarkCoalesce merges a batch of 64 full segments of one flow (two
// super-frames).
func BenchmarkCoalesce(b *testing.B) {
	frames := segs(b, 64, 1398, nil)
	bufs := make([][]byte, len(frames))
	var bytes int64
	for i := range bufs {
		bufs[i] = make([]byte, VirtioNetHdrLen+bufRoom)
		bytes += int64(len(frames[i]))
	}
	c := NewCoalescer(len(frames), testMTU, 0)
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		for i, f := range frames {
			copy(bufs[i][VirtioNetHdrLen:], f)
			c.Add(bufs[i], VirtioNetHdrLen, len(f), i, 0)
		}
		c.Finish()
	}
}

// Segmenting and coalescing must not allocate.
func TestNoAllocs(t *testing.T) {
	super, h := superFrame(t, flow(1, payload(0, 30000)), 1448)
	var s Segmenter
	buf := make([]byte, 1514)
	if a := testing.AllocsPerRun(100, func() {
		s.Reset(super, &h)
		for !s.Done() {
			s.Next(buf)
		}
	}); a != 0 {
		t.Errorf("Segmenter: %v allocations", a)
	}
	frames := segs(t, 8, 1398, nil)
	bufs := make([][]byte, len(frames))
	for i := range bufs {
		bufs[i] = make([]byte, VirtioNetHdrLen+bufRoom)
	}
	c := NewCoalescer(len(frames), testMTU, 0)
	if a := testing.AllocsPerRun(100, func() {
		c.Reset()
		for i, f := range frames {
			copy(bufs[i][VirtioNetHdrLen:], f)
			c.Add(bufs[i], VirtioNetHdrLen, len(f), i, 0)
		}
		c.Finish()
	}); a != 0 {
		t.Errorf("Coalescer: %v allocations", a)
	}
}
