// Package neigh owns address resolution as a VTEP sees it on its TAP: ARP
// (RFC 826, with the probes and announcements of RFC 5227) and IPv6
// Neighbor Discovery (RFC 4861: Neighbor Solicitations and
// Advertisements, and the Duplicate Address Detection of RFC 4862). What
// it does to an Ethernet frame read from the TAP is pure byte work, in
// buffers the caller owns, without allocating:
//
//   - Candidate tells, in a few nanoseconds, whether a frame may be ARP
//     or ND at all, so that the pipeline can ask it of every frame.
//   - Parse recognises an ARP request, probe, announcement or reply, or a
//     Neighbor Solicitation (ordinary or DAD) or Advertisement, behind up
//     to ether.MaxTags VLAN tags, validates it as the Linux kernel would
//     before acting on it, and returns what it says as a Packet, by value.
//   - Packet.Binding (and Snoop, which parses first) tells which IP-to-MAC
//     binding, if any, the packet proves: what the control plane publishes
//     as <prefix>/v1/vni/<vni>/ip/<ip>.
//   - Packet.Reply writes the ARP reply or Neighbor Advertisement that the
//     owner of the target address would send, from the MAC the caller's
//     table knows for it, into the caller's buffer; Packet.Answerable says
//     whether the Linux bridge's neigh_suppress would answer at all.
//
// The package must not know the forwarding database, the control plane,
// TAPs or sockets. The engine calls it from its TX pipeline, one frame at
// a time within a batch, looks the target up in its own table, and writes
// any reply into the TAP. Which MACs are "remote" (the kernel answers only
// for a MAC behind its VXLAN port) and what to flood is the engine's
// policy; the table below says what the kernel does.
//
// # What the kernel does, and what this package copies
//
// The model is the Linux bridge with neigh_suppress on its VXLAN port
// (net/bridge/br_arp_nd_proxy.c: br_do_proxy_suppress_arp,
// br_do_suppress_nd, br_nd_send), beside the vxlan driver's own proxy
// mode (drivers/net/vxlan/vxlan_core.c: arp_reduce, neigh_reduce,
// vxlan_na_create), and, for what a host accepts and learns, the
// neighbour code (net/ipv4/arp.c: arp_process; net/ipv6/ndisc.c:
// ndisc_recv_ns, ndisc_recv_na, ndisc_parse_options). For each Kind:
//
//	Kind                   bridge answers   bridge sends over VXLAN   Binding
//	ARPRequest             if it knows tip  only if it does not know  (sender IP, sender MAC)
//	ARPProbe (sip 0)       no               no                        none
//	ARPAnnouncement        no               no                        (sender IP, sender MAC)
//	ARPReply               no               yes                       (sender IP, sender MAC)
//	NeighborSolicitation   if it knows it   only if it does not know  (source, SLLA) with an SLLA
//	DADSolicitation        no               no                        none
//	NeighborAdvertisement  no               only if solicited         (target, TLLA) with a TLLA and O
//
// Parse accepts what the kernel accepts. ARP: hardware type Ethernet (1)
// or IEEE 802 (6), protocol IPv4, address lengths 6 and 4, operation
// request or reply. ND: ICMPv6 right after the IPv6 header (the bridge
// looks no further), code 0, hop limit 255, a valid checksum, at least 24
// bytes, a target that is not multicast, options each of non-zero length
// and none running past the message, a link-layer address option of
// exactly 8 bytes where it is used (the first one counts, as in
// ndisc_parse_options); a DAD solicitation goes to a solicited-node
// multicast address and carries no source link-layer address option; a
// solicited advertisement is not sent to a multicast address.
//
// Answerable follows the bridge: ARP requests (not probes, not
// announcements, not for a loopback or multicast target) and
// solicitations whose source is specified and differs from their
// destination. The vxlan driver's proxy also answers probes, and
// solicitations from :: with an advertisement to ::, which no host takes;
// the bridge answers neither, and neither does Answerable. Reply can still
// build the defence a host would send against a probe (a reply to the
// prober's MAC with target IP 0.0.0.0, as arp_process sends) or against
// DAD (an advertisement to ff02::1 with S clear, as ndisc_recv_ns sends),
// for an engine that chooses to defend.
//
// Reply builds what br_arp_send and br_nd_send build: an ARP reply from
// the known MAC to the requester's sender hardware address, with sender
// (known MAC, target IP) and target (requester's MAC, requester's IP); an
// advertisement from the known MAC to the requester (its source
// link-layer address option, else its Ethernet source), IPv6 source the
// target, destination the solicitation's source, hop limit 255, the high
// four bits of the request's traffic class (what the kernel copies), flags
// Solicited and Override, a Target Link-Layer Address option with the
// known MAC, and the checksum. The bridge sets Router from its neighbour
// entry; the table here has no such bit, so Router is clear. The bridge
// drops a request's VLAN tag when it is the port's PVID; a TAP has no
// PVID, so Reply copies the request's tags as they were. It pads ARP
// replies to the 60-byte minimum, as the kernel's Ethernet drivers do.
//
// Snooping is this package's own: the kernel's vxlan driver learns MACs,
// not IPs, and the bridge's suppression reads a neighbour table that
// something else fills. Binding takes what a Linux host would put in its
// neighbour table from the same packet (arp_process learns the sender of
// requests, replies and, with arp_accept, announcements; ndisc_recv_ns the
// source of a solicitation with an SLLA; ndisc_recv_na the target of an
// advertisement), but stricter, as the table feeds every host of the VNI:
// nothing from a probe or a DAD solicitation (they claim nothing yet), and
// nothing from an advertisement without the Override flag, which RFC 4861
// (7.2.7, 7.2.8) reserves for anycast addresses and proxies that must not
// displace the owner's binding. The MAC must be unicast and non-zero; the
// IP must be unicast: not unspecified, loopback, multicast, 0.0.0.0/8,
// 255.255.255.255 or IPv4-mapped.
package neigh
