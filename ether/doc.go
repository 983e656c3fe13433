// Package ether owns the Ethernet II header as vtepd reads it: the header
// constants (lengths, offsets, the EtherTypes the data path looks at and
// the VLAN tag protocol identifiers it recognises), a zero-copy header
// view, and the one VLAN tag walker that every other package uses to find
// where a frame's network-layer header starts.
//
// Which tags are VLAN tags is decided here and nowhere else: a tag begins
// with one of the TPIDs 0x8100 (IEEE 802.1Q customer tag), 0x88a8 (IEEE
// 802.1ad service tag) or 0x9100 (the pre-standard QinQ tag some switches
// still send), and L3 skips at most MaxTags of them. Before this package,
// the flow hash, the offloads and the pipeline each kept their own list,
// and the flow hash's lacked 0x9100, so every 0x9100-tagged flow hashed
// alike and shared one UDP source port.
//
// Everything here reads byte slices the caller owns, in place, without
// allocating; the functions are small enough for the compiler to inline.
// The package must not know about IP, VXLAN, devices, sockets or the
// forwarding database, nor decide what to do with a tagged frame: that is
// the caller's policy.
package ether
