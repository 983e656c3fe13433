package offload

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071): the ones' complement of the ones'
// complement sum of 16-bit big-endian words.
//
// Design notes on speed. Sum is the hottest function of the TCP path:
// every segment cut on send and every segment verified on receive is
// summed in full. It adds 64 bits at a time with end-around carry, which
// yields the same folded result as adding 16-bit words (RFC 1071 §2(B):
// the sum does not care how the words are grouped). It loads the words
// little-endian, the machine's own order on amd64 and arm64, and swaps
// the bytes of the result once at the end (the same section: the sum of
// byte-swapped words is the byte-swapped sum), which saves a BSWAP per
// load. The main loop takes 128 bytes a round in one chain of
// add-with-carry, which leaves less loop overhead per byte. Both help, as
// BenchmarkSum shows against big-endian loads and shorter rounds. Four
// accumulators of 32-bit halves, which need no carry, were slower still:
// twice the additions.
//
// CopySum copies, then sums the copy while it is still in the L1 cache,
// a chunk at a time. A true single pass (load, store, add, 8 bytes at a
// time) was tried and was slower: copy uses vector stores, and a Go loop
// cannot.

// Sum returns the ones' complement sum of b added to initial, not yet
// folded. A trailing odd byte is padded with a zero byte, so only the last
// of several slices summed one after the other may have an odd length.
func Sum(b []byte, initial uint64) uint64 {
	var ac, carry uint64 // of little-endian words
	for len(b) >= 128 {
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[0:8]), 0)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[8:16]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[16:24]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[24:32]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[32:40]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[40:48]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[48:56]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[56:64]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[64:72]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[72:80]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[80:88]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[88:96]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[96:104]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[104:112]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[112:120]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[120:128]), carry)
		ac += carry
		b = b[128:]
	}
	for len(b) >= 32 {
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[0:8]), 0)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[8:16]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[16:24]), carry)
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[24:32]), carry)
		ac += carry
		b = b[32:]
	}
	for len(b) >= 8 {
		ac, carry = bits.Add64(ac, binary.LittleEndian.Uint64(b[:8]), 0)
		ac += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		ac, carry = bits.Add64(ac, uint64(binary.LittleEndian.Uint32(b[:4])), 0)
		ac += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		ac, carry = bits.Add64(ac, uint64(binary.LittleEndian.Uint16(b[:2])), 0)
		ac += carry
		b = b[2:]
	}
	if len(b) == 1 {
		ac, carry = bits.Add64(ac, uint64(b[0]), 0) // the high byte of its big-endian word
		ac += carry
	}
	ac, carry = bits.Add64(bits.ReverseBytes64(ac), initial, 0)
	return ac + carry
}

// copySumChunk is how much CopySum copies before it sums: small enough
// to stay in the L1 cache, and more than a 1500-byte frame.
const copySumChunk = 2048

// CopySum copies src to dst, as copy does, and returns the number of
// bytes copied and their ones' complement sum added to initial, as Sum
// does: the same as copy followed by Sum of what was copied, and faster
// on long slices (see the design notes above).
func CopySum(dst, src []byte, initial uint64) (n int, sum uint64) {
	sum = initial
	for len(dst) > 0 && len(src) > 0 {
		k := copy(dst[:min(len(dst), copySumChunk)], src)
		sum = Sum(dst[:k], sum)
		dst, src = dst[k:], src[k:]
		n += k
	}
	return n, sum
}

// Fold reduces a sum from Sum to 16 bits (not complemented).
func Fold(sum uint64) uint16 {
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>32 + sum&0xffffffff // the carry of the line above
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// Checksum is the Internet checksum of b: ^Fold(Sum(b, initial)).
func Checksum(b []byte, initial uint64) uint16 {
	return ^Fold(Sum(b, initial))
}

// PseudoHeaderSum is the unfolded sum of the IPv4 or IPv6 pseudo-header
// (RFC 793, RFC 8200 §8.1) for a transport segment of length bytes: both
// addresses (4 or 16 bytes each), the protocol number and the length.
func PseudoHeaderSum(proto uint8, src, dst []byte, length int) uint64 {
	s := Sum(src, 0)
	s = Sum(dst, s)
	s, c := bits.Add64(s, uint64(proto)+uint64(length), 0)
	return s + c
}
