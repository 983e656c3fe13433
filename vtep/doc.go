// Package vtep is the engine of vtepd: it owns the configuration in force
// (package config parses and classifies it), the underlay sockets, one TAP
// per network, and the two pipelines between them.
//
// TX, one goroutine per network and TAP queue: read a batch of frames from
// the TAP into buffers with headroom, look each destination up in the FDB,
// write the UDP and VXLAN headers in place, and send the batch with one
// sendmmsg; unknown unicast, broadcast and multicast frames go to every
// peer of the network (head-end replication), sharing one buffer.
//
// RX, one goroutine per receive socket (queue) for all networks: receive a
// batch with recvmmsg, validate and decapsulate each datagram, learn inner
// source MAC -> outer source address, and write the inner frame to the TAP
// of its VNI. Drops are counted by reason, never logged per packet. Then it
// forwards what those writes caused at once on the TAP queues it wrote to
// (pollTX: an echo reply, an ACK), so that the TX goroutine need not wake.
// Each pipeline holds its lock from a read until what it read is sent or
// written, which is what lets another goroutine do its work in between
// without reordering a flow.
//
// With busy_poll, traffic starts a goroutine that polls every TAP queue and
// socket without sleeping until busy_poll passes with nothing found, or
// until load makes polling pointless (busypoll.go).
//
// With offloads (offload = true, the default) the TAP hands over TCP
// super-frames of up to 64 KiB, which TX cuts into MSS-sized frames before
// encapsulating them (package offload), and RX merges the TCP segments of
// a batch into super-frames, one TAP write each. With underlay.udp_gso
// (the default with offloads) a super-frame to a known VTEP leaves as UDP
// GSO trains from a socket bound to its flow's source port (gso_linux.go),
// and with UDP GRO on the receive sockets such trains arrive whole, one
// message each, to be cut into their datagrams again (conn_linux.go,
// rxPipeline).
//
// Host resources (bridges, TAPs, ports) are checked and taken in New, which
// leaves nothing behind when it fails; Run releases them on shutdown.
package vtep
