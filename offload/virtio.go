package offload

import "encoding/binary"

// VirtioNetHdrLen is the length of struct virtio_net_hdr, the header a TAP
// opened with IFF_VNET_HDR reads and writes before every frame (and the
// kernel's default TUNSETVNETHDRSZ).
const VirtioNetHdrLen = 10

// struct virtio_net_hdr (include/uapi/linux/virtio_net.h), as a TAP
// without TUNSETVNETLE uses it: the 16-bit fields in host byte order.
//
//	 0               1               2               3
//	+---------------+---------------+-------------------------------+
//	|     flags     |   gso_type    |            hdr_len            |
//	+---------------+---------------+-------------------------------+
//	|           gso_size            |          csum_start           |
//	+-------------------------------+-------------------------------+
//	|          csum_offset          |
//	+-------------------------------+
//
// Fields:
//   - flags: FlagNeedsCsum says the checksum at csum_start+csum_offset
//     holds only the pseudo-header sum and must be completed over
//     frame[csum_start:] (the kernel's CHECKSUM_PARTIAL).
//   - gso_type: GSONone for an ordinary frame, GSOTCPv4 or GSOTCPv6 for a
//     TCP super-frame to be cut into segments of gso_size payload bytes,
//     possibly or-ed with GSOECN.
//   - hdr_len: the length of the headers every segment repeats (Ethernet
//     through TCP); a hint only, which Segmenter recomputes.
//   - gso_size: the payload bytes per segment (the TCP MSS).
//   - csum_start, csum_offset: where the checksummed region starts, from
//     the start of the Ethernet frame, and where in it the checksum field
//     is (16 for TCP, 6 for UDP).
const (
	virtioFlagsOffset      = 0
	virtioGSOTypeOffset    = 1
	virtioHdrLenOffset     = 2
	virtioGSOSizeOffset    = 4
	virtioCsumStartOffset  = 6
	virtioCsumOffsetOffset = 8
)

// Flags of virtio_net_hdr.
const (
	FlagNeedsCsum = 0x01 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	FlagDataValid = 0x02 // VIRTIO_NET_HDR_F_DATA_VALID
)

// GSO types of virtio_net_hdr.
const (
	GSONone  = 0x00 // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4 = 0x01 // VIRTIO_NET_HDR_GSO_TCPV4
	GSOUDP   = 0x03 // VIRTIO_NET_HDR_GSO_UDP (fragmenting UFO; never asked for)
	GSOTCPv6 = 0x04 // VIRTIO_NET_HDR_GSO_TCPV6
	GSOUDPL4 = 0x05 // VIRTIO_NET_HDR_GSO_UDP_L4 (never asked for)
	GSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN: the segments carry CWR on the first
)

// VirtioNetHdr is a decoded virtio_net_hdr.
type VirtioNetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Decode reads a header from b[:VirtioNetHdrLen]; b must be that long.
func (h *VirtioNetHdr) Decode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	h.Flags = b[virtioFlagsOffset]
	h.GSOType = b[virtioGSOTypeOffset]
	h.HdrLen = binary.NativeEndian.Uint16(b[virtioHdrLenOffset:])
	h.GSOSize = binary.NativeEndian.Uint16(b[virtioGSOSizeOffset:])
	h.CsumStart = binary.NativeEndian.Uint16(b[virtioCsumStartOffset:])
	h.CsumOffset = binary.NativeEndian.Uint16(b[virtioCsumOffsetOffset:])
}

// Encode writes the header into b[:VirtioNetHdrLen]; b must be that long.
func (h *VirtioNetHdr) Encode(b []byte) {
	_ = b[VirtioNetHdrLen-1]
	b[virtioFlagsOffset] = h.Flags
	b[virtioGSOTypeOffset] = h.GSOType
	binary.NativeEndian.PutUint16(b[virtioHdrLenOffset:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[virtioGSOSizeOffset:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[virtioCsumStartOffset:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[virtioCsumOffsetOffset:], h.CsumOffset)
}

// IsGSO reports whether the frame is a super-frame to segment.
func (h *VirtioNetHdr) IsGSO() bool { return h.GSOType != GSONone }

// ClearVirtioNetHdr writes the header of an ordinary frame whose checksums
// are complete (all zero) into b[:VirtioNetHdrLen].
func ClearVirtioNetHdr(b []byte) {
	clear(b[:VirtioNetHdrLen])
}
