package underlay

import "github.com/vtepd/vtepd/encap"

// The limits of one UDP GSO train (Trains, TrainWriter.WriteTrain).
const (
	// MaxTrainSegments is the most datagrams in one train (the kernel's
	// UDP_MAX_SEGMENTS is 64 or more).
	MaxTrainSegments = 64
	// MaxTrainParts is the most slices one train may be handed in: a
	// datagram's headers, then its payload.
	MaxTrainParts = 2 * MaxTrainSegments
	// MaxTrainBytes is the most UDP payload bytes one train carries: an IP
	// packet's worth less the UDP and an IPv6 header.
	MaxTrainBytes = encap.MaxIPLen - encap.UDPHeaderLen - encap.IPv6HeaderLen
)
