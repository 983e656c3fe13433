// Package tap owns the TAP device that makes vtepd a port of a Linux bridge:
// creating it (songgao/water), sizing its MTU, attaching it to the bridge
// and bringing it up (vishvananda/netlink), moving Ethernet frames in and out
// in batches, and deleting it again.
//
// Frames are read into caller-owned buffers at a caller-chosen offset, so the
// caller can later write its headers in front of them without a copy. The
// package knows nothing of VXLAN or of the forwarding database.
package tap
