package offload

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071): the ones' complement of the ones'
// complement sum of 16-bit big-endian words. Sum adds 64 bits at a time
// with end-around carry, which yields the same folded result as adding
// 16-bit words (RFC 1071 §2(B), "byte order independence" applies to word
// size as well); Fold reduces it to 16 bits.

// Sum returns the ones' complement sum of b added to initial, not yet
// folded. A trailing odd byte is padded with a zero byte, so only the last
// of several slices summed one after the other may have an odd length.
func Sum(b []byte, initial uint64) uint64 {
	ac := initial
	var carry uint64
	for len(b) >= 32 {
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[0:8]), 0)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[8:16]), carry)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[16:24]), carry)
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[24:32]), carry)
		ac += carry
		b = b[32:]
	}
	for len(b) >= 8 {
		ac, carry = bits.Add64(ac, binary.BigEndian.Uint64(b[:8]), 0)
		ac += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		ac, carry = bits.Add64(ac, uint64(binary.BigEndian.Uint32(b[:4])), 0)
		ac += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		ac, carry = bits.Add64(ac, uint64(binary.BigEndian.Uint16(b[:2])), 0)
		ac += carry
		b = b[2:]
	}
	if len(b) == 1 {
		ac, carry = bits.Add64(ac, uint64(b[0])<<8, 0)
		ac += carry
	}
	return ac
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
