// Package tap owns the TAP device that makes vtepd a port of a Linux bridge:
// creating it (TUNSETIFF on /dev/net/tun, optionally with IFF_VNET_HDR and
// the TCP offloads), sizing its MTU, attaching it to the bridge and bringing
// it up (vishvananda/netlink), moving Ethernet frames in and out in batches,
// and deleting it again.
//
// Frames are read into caller-owned buffers at a caller-chosen offset, so the
// caller can later write its headers in front of them without a copy; with
// offloads the frame's virtio_net_hdr is read into the bytes just before
// that offset. The package knows nothing of VXLAN or of the forwarding
// database, and leaves segmenting and checksumming to its caller (package
// offload).
package tap
