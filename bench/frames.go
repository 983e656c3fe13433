package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// flowSpec describes the frames of the small-packet generator: Flows
// Ethernet/IPv4/UDP frames that differ only in the UDP source port
// (SrcPort, SrcPort+1, ...), so that the flow hashes of the TAP queues and
// of vtepd's outer source port spread them, as they would spread the
// connections of many clients.
type flowSpec struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.Addr // IPv4
	SrcPort        uint16     // of the first flow
	DstPort        uint16
	Flows          int
	Payload        int // UDP payload bytes
}

// buildFrames serializes the frames of s once, with gopacket, checksums
// filled in; the generator then sends these same bytes over and over.
func buildFrames(s flowSpec) ([][]byte, error) {
	if !s.Src.Is4() || !s.Dst.Is4() {
		return nil, fmt.Errorf("frames: IPv4 addresses only, got %v -> %v", s.Src, s.Dst)
	}
	if len(s.SrcMAC) != 6 || len(s.DstMAC) != 6 {
		return nil, fmt.Errorf("frames: MAC addresses must be 6 bytes")
	}
	if s.Flows < 1 || int(s.SrcPort)+s.Flows-1 > 65535 {
		return nil, fmt.Errorf("frames: %d flows from source port %d do not fit in 16 bits", s.Flows, s.SrcPort)
	}
	if s.Payload < 0 || s.Payload > 1400 {
		return nil, fmt.Errorf("frames: payload %d out of range 0..1400", s.Payload)
	}
	payload := make([]byte, s.Payload)
	for i := range payload {
		payload[i] = byte(i)
	}
	frames := make([][]byte, s.Flows)
	for i := range frames {
		eth := &layers.Ethernet{SrcMAC: s.SrcMAC, DstMAC: s.DstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{
			Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice(),
		}
		udp := &layers.UDP{SrcPort: layers.UDPPort(int(s.SrcPort) + i), DstPort: layers.UDPPort(s.DstPort)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
			return nil, fmt.Errorf("frames: serialize flow %d: %w", i, err)
		}
		frames[i] = append([]byte(nil), buf.Bytes()...)
	}
	return frames, nil
}

// A rate-search datagram's payload starts with a tag naming its trial, so
// that the receiver counts each trial apart and a datagram that arrives
// late counts for the trial that sent it, never for the next:
//
//	0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|      'v'      |      'r'      |      's'      |      '1'      |
//	+---------------+---------------+---------------+---------------+
//	|                trial number (big-endian uint32)               |
//	+---------------+---------------+---------------+---------------+
//
// The rest of the payload is filler.
const tagLen = 8

var tagMagic = [4]byte{'v', 'r', 's', '1'}

// putTag writes the tag of trial into b, which must hold tagLen bytes.
func putTag(b []byte, trial uint32) {
	_ = b[tagLen-1]
	copy(b, tagMagic[:])
	binary.BigEndian.PutUint32(b[4:tagLen], trial)
}

// tagOf returns the trial a payload names, if it starts with a tag.
func tagOf(b []byte) (uint32, bool) {
	if len(b) < tagLen || [4]byte(b[:4]) != tagMagic {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[4:tagLen]), true
}
