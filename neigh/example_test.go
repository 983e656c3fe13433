package neigh_test

import (
	"fmt"
	"net/netip"

	"github.com/vtepd/vtepd/neigh"
)

// What the engine does with a frame read from the TAP: learn what it
// proves, and answer it if the table knows the target.
func Example() {
	// "Who has 198.19.0.11? Tell 198.19.0.10", as a container sends it.
	frame := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // to everyone
		0x02, 0x42, 0xc6, 0x13, 0x00, 0x0a, // from 02:42:c6:13:00:0a
		0x08, 0x06, // ARP
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
		0x02, 0x42, 0xc6, 0x13, 0x00, 0x0a, 198, 19, 0, 10, // sender
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 19, 0, 11, // target
	}
	// The IP-to-MAC table, filled by the control plane.
	table := map[netip.Addr][6]byte{
		netip.MustParseAddr("198.19.0.11"): {0x02, 0x42, 0xc6, 0x13, 0x00, 0x0b},
	}

	if !neigh.Candidate(frame) {
		fmt.Println("forward as usual")
		return
	}
	p, err := neigh.Parse(frame)
	if err != nil {
		fmt.Println("forward as usual:", err)
		return
	}
	if b, ok := p.Binding(); ok {
		fmt.Printf("learned %v at % x\n", b.IP, b.MAC)
	}
	mac, known := table[p.TargetIP]
	if !known || !p.Answerable() {
		fmt.Println("flood")
		return
	}
	var buf [neigh.MaxReplyLen]byte
	n, err := p.Reply(buf[:], mac)
	if err != nil {
		fmt.Println("flood:", err)
		return
	}
	r, _ := neigh.Parse(buf[:n])
	fmt.Printf("write %d bytes to the TAP: %v, %v is at % x\n", n, r.Kind, r.SrcIP, r.SrcMAC)
	// Output:
	// learned 198.19.0.10 at 02 42 c6 13 00 0a
	// write 60 bytes to the TAP: ARP reply, 198.19.0.11 is at 02 42 c6 13 00 0b
}
