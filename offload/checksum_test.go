package offload

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// refSum is RFC 1071 taken literally: the big-endian 16-bit words of b,
// a trailing odd byte padded with zero, and the four 16-bit words of
// initial, added with end-around carry a word at a time.
func refSum(b []byte, initial uint64) uint16 {
	var s uint32
	add := func(w uint16) {
		s += uint32(w)
		s = s&0xffff + s>>16
	}
	for i := 0; i < len(b); i += 2 {
		w := uint16(b[i]) << 8
		if i+1 < len(b) {
			w |= uint16(b[i+1])
		}
		add(w)
	}
	for i := 0; i < 4; i++ {
		add(uint16(initial >> (16 * i)))
	}
	return uint16(s)
}

// checksumLens are the lengths the property tests try: every length up
// to 300, and lengths around the unrolled loops' and CopySum's strides.
func checksumLens() []int {
	var ls []int
	for n := 0; n <= 300; n++ {
		ls = append(ls, n)
	}
	return append(ls, 511, 512, 513, 1500, 2047, 2048, 2049, 4095, 4096, 4097, 65535, 65536)
}

func checksumInitials(r *rand.Rand) []uint64 {
	return []uint64{0, 1, 0xffff, 0xffffffff, 1<<64 - 1, r.Uint64(), r.Uint64() >> 20}
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1071))
	buf := randomBytes(r, 65536+8)
	ones := bytes.Repeat([]byte{0xff}, len(buf)) // every carry taken
	zeros := make([]byte, len(buf))
	for _, data := range [][]byte{buf, ones, zeros} {
		for _, n := range checksumLens() {
			for off := 0; off < 8; off++ { // alignments
				b := data[off : off+n]
				for _, init := range checksumInitials(r) {
					if got, want := Fold(Sum(b, init)), refSum(b, init); got != want {
						t.Fatalf("Fold(Sum(%d bytes at offset %d, %#x)) = %#04x, want %#04x", n, off, init, got, want)
					}
				}
			}
		}
	}
}

// Summing a slice in pieces, all but the last of even length, is
// summing it whole.
func TestSumInPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 1071))
	b := randomBytes(r, 3001)
	for range 1000 {
		n := r.IntN(len(b) + 1)
		cut := r.IntN(n+1) &^ 1
		init := r.Uint64()
		if got, want := Fold(Sum(b[cut:n], Sum(b[:cut], init))), refSum(b[:n], init); got != want {
			t.Fatalf("%d bytes cut at %d: %#04x, want %#04x", n, cut, got, want)
		}
	}
}

func TestCopySumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1071))
	src := randomBytes(r, 65536+8)
	dst := make([]byte, 65536+16)
	for _, n := range checksumLens() {
		for _, offs := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {3, 5}, {7, 2}} {
			s := src[offs[0] : offs[0]+n]
			// dst as long as src, longer, and shorter
			for _, dn := range []int{n, n + 3, n / 2} {
				for i := range dst {
					dst[i] = 0xa5
				}
				d := dst[offs[1] : offs[1]+dn]
				init := r.Uint64()
				got, sum := CopySum(d, s, init)
				want := min(n, dn)
				if got != want {
					t.Fatalf("CopySum(%d bytes into %d) copied %d", n, dn, got)
				}
				if !bytes.Equal(d[:want], s[:want]) {
					t.Fatalf("CopySum(%d bytes into %d at offsets %v): copy differs", n, dn, offs)
				}
				for i, c := range dst {
					if (i < offs[1] || i >= offs[1]+want) && c != 0xa5 {
						t.Fatalf("CopySum(%d bytes into %d at offsets %v) wrote byte %d", n, dn, offs, i)
					}
				}
				if g, w := Fold(sum), refSum(s[:want], init); g != w {
					t.Fatalf("CopySum(%d bytes into %d at offsets %v, %#x): sum %#04x, want %#04x", n, dn, offs, init, g, w)
				}
			}
		}
	}
}
