package ether_test

import (
	"fmt"

	"github.com/vtepd/vtepd/ether"
)

func ExampleL3() {
	// An IPv4 frame behind a legacy QinQ tag and an 802.1Q tag.
	f := []byte{
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
		0x91, 0x00, 0x00, 0x0a, // legacy QinQ tag, VLAN 10
		0x81, 0x00, 0x00, 0x64, // 802.1Q tag, VLAN 100
		0x08, 0x00, // IPv4
		0x45, // the IPv4 header starts here
	}
	off, et, ok := ether.L3(f)
	fmt.Println(ether.Tagged(f), off, et == ether.TypeIPv4, ok)
	fmt.Printf("% x\n", ether.Header(f).Src())
	// Output:
	// true 22 true true
	// 02 00 00 00 00 01
}
