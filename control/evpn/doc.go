// Package evpn is the BGP EVPN backend of package control (RFC 7432, with
// RFC 8365 for VXLAN): vtepd speaks BGP itself, through a GoBGP server
// linked into the process, to FRR, to route reflectors and to the fabric.
//
// It advertises a type-3 route (inclusive multicast Ethernet tag, with a
// PMSI tunnel attribute of type ingress replication) for each joined VNI,
// and a type-2 route (MAC/IP advertisement) for each local MAC and each
// snooped IP binding, the VNI as their label; and it turns the type-2 and
// type-3 routes received into the control.Sink's view: type-3 routes make
// the flood lists (head-end replication), type-2 routes the control FDB
// entries and the ARP/ND suppression table.
//
// It owns the GoBGP server, its sessions and three goroutines: GoBGP's
// watches (which only queue), the importer (rib.go, which keeps the routes
// and the view and feeds the sink) and the writer (which reconciles
// GoBGP's RIB with the desired local state). It must not touch the
// engine's tables, and only cmd/vtepd may import it: GoBGP and its
// dependencies must not reach vtepctl.
//
// # Design notes
//
// The engine's calls (SetMAC and the others) only record the desired
// state under a mutex and wake the writer, as in control/etcd: they never
// wait for BGP. The writer keeps, per route of ours, the path it added and
// a signature of what it says, and adds, replaces or deletes paths only
// when that changes: nothing is sent in steady state but keepalives.
//
// Received routes are taken from GoBGP's best paths, not from each
// session's Adj-RIB-In: the NLRI includes the route distinguisher, so two
// VTEPs' routes for one MAC are two destinations, each with its best path,
// and a route learned from two route reflectors is one. The routes are
// kept whole (rib), even those of VNIs not joined or with another route
// target, which are counted as errors when they arrive but start to count
// when a VNI is joined, without asking the peers again. The view is then
// changed key by key, for the MACs, IPs and VNIs that a batch touched.
//
// MAC mobility (RFC 7432 §15): a MAC is advertised the first time with no
// sequence number (0), or, if routes for it were received, with one more
// than the highest; the number is picked by the writer when it first
// advertises the MAC, so that SetMAC need not look at the routes. A route
// with a higher number than ours takes the MAC away: it enters the view,
// we withdraw ours, and the engine forgets the MAC as local (it publishes
// it again, with a higher number still, if it shows up here again). Equal
// numbers keep a local MAC ours; between remote routes the lower VTEP
// address wins, so that all VTEPs agree.
//
// Sessions: GoBGP reconnects on its own: a session that dropped waits out
// an idle hold time of 5 s (damping a flapping peer; incoming connections
// are refused meanwhile), then tries every 1 to 2 s (a jittered
// connect-retry timer) and accepts the peer's attempts. GoBGP keeps that
// interval forever; backoff.go doubles it for a neighbor that stays
// unreachable. A session that goes
// down (a Notification, a closed connection, or the hold time expired)
// takes its routes with it: GoBGP withdraws them from the best paths,
// which the importer sees as withdrawals. There is no graceful restart
// yet. On shutdown the server stops, which sends each peer a Cease, and
// the peers withdraw our routes at once.
//
// Not done: route type 5 (IP prefixes), ESI multihoming (types 1 and 4),
// the ARP/ND extended community (RFC 9047), sticky MACs.
package evpn
