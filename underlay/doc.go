// Package underlay owns vtepd's sockets on the underlay network: the
// datagrams to and from remote VTEPs, moved in batches.
//
// A Conn is one receive queue and its sender: a UDP socket bound to the
// VXLAN port, read with recvmmsg, and a raw socket that sends with
// sendmmsg and writes any UDP source port (RFC 7348 §5 flow entropy) into
// the headers it is handed (conn_linux.go, mmsg_linux.go). Listen opens
// one per queue, sharing the port through SO_REUSEPORT; ListenGroup and
// GroupSender are a multicast group's receiver and sender.
//
// Offloads stay behind these interfaces, as wireguard-go keeps them in
// conn/: a receive socket asks for UDP GRO and reports each train it
// gets as one Datagram with its segment size (Datagram.Seg, read from the
// UDP_GRO control message); Trains and TrainWriter send a super-frame's
// datagrams as UDP GSO trains, one sendmsg each from a socket bound to the
// flow's source port, and fall back to datagrams on the raw socket when
// the kernel refuses them (trains_linux.go, trainwriter_linux.go).
//
// The package knows UDP and the socket API; it does not parse VXLAN
// (package encap) nor know networks, the FDB or TAPs (package vtep). On
// other systems than Linux every constructor returns an error.
package underlay
