// Package offload does in userspace what a NIC's TCP offloads would do
// for vtepd's TAP: the virtio_net_hdr that a TAP opened with IFF_VNET_HDR
// puts before every frame, TCP segmentation of the 64 KiB super-frames the
// kernel hands such a TAP (GSO, "TSO in software"), coalescing of received
// TCP segments into super-frames for the kernel (GRO), and the Internet
// checksum they both need.
//
// Why. Without offloads the kernel cuts a container's TCP stream into
// MTU-sized frames before the TAP, and vtepd pays one TAP read() per frame
// on the sending host and one TAP write() per frame on the receiving host,
// each running the bridge, the veth and TCP for 1450 bytes. With them, one
// read() brings up to 64 KiB, which vtepd segments itself (the underlay
// still sees ordinary VXLAN datagrams, each with a complete inner TCP
// checksum), and a batch of received segments of one flow becomes one
// write().
//
// Everything here works in place on byte slices the caller owns, with
// buffers the caller preallocated; nothing allocates. The package must not
// touch devices or sockets, nor know about VXLAN or the forwarding
// database. Frames are Ethernet frames: the IP header follows the Ethernet
// header and up to ether.MaxTags VLAN tags, which ether.L3 skips (only
// untagged frames are coalesced).
package offload
