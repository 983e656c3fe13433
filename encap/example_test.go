package encap_test

import (
	"fmt"

	"github.com/vtepd/vtepd/encap"
)

// The send path reads each frame from the TAP at offset Headroom, so the
// headers are written in place in front of it; the receive path gets the
// UDP payload and hands the inner frame on without copying.
func Example() {
	buf := make([]byte, encap.Headroom+1500)
	// A TAP read would fill buf[encap.Headroom:]; here, a frame of the
	// local experimental EtherType 0x88b5.
	n := copy(buf[encap.Headroom:], []byte{
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination MAC
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source MAC
		0x88, 0xb5, // EtherType
		'h', 'e', 'l', 'l', 'o',
	})

	frame := buf[encap.Headroom : encap.Headroom+n]
	port := encap.SourcePort(encap.FlowHash(frame), 49152, 65535)
	datagram := encap.Encap(buf, 200, port, encap.Port, n)
	u := encap.UDP(datagram)
	fmt.Printf("UDP %d -> %d, length %d\n", u.SourcePort(), u.DestinationPort(), u.Length())

	// On the far side, the UDP socket returns the payload.
	vni, in, err := encap.Decap(datagram[encap.UDPHeaderLen:])
	fmt.Printf("VNI %d, inner frame %d bytes, to % x, err %v\n", vni, len(in), in[:6], err)
	// Output:
	// UDP 50033 -> 4789, length 35
	// VNI 200, inner frame 19 bytes, to 02 00 00 00 00 02, err <nil>
}
