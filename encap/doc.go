// Package encap owns the VXLAN wire format (RFC 7348): the 8-byte VXLAN
// header, the UDP header vtepd writes in front of it, the overhead constants
// that size MTUs and buffer headroom, and the inner-flow hash that picks the
// UDP source port for ECMP entropy. The inner Ethernet header and its VLAN
// tags are package ether's: the flow hash finds the inner IP header with
// ether.L3, and EthernetHeaderLen and VLANTagLen are ether's constants.
//
// Everything here works on byte slices the caller owns, in place, without
// allocating. It must not touch sockets, devices or the forwarding database.
package encap
