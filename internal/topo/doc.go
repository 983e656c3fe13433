// Package topo builds throw-away network labs out of Linux network
// namespaces, for vtepd's integration tests and benchmark harness.
//
// A Lab owns everything it creates and nothing else:
//
//	<lab>-u            underlay namespace: bridge br0, one veth "uh<i>" per host
//	<lab>-<host>       a host: eth0 on the underlay, lo, bridge br0 ("docker0"),
//	                   and later a kernel vx0 or a vtepd TAP joined to br0;
//	                   veth "vc<i>" per container on br0
//	<lab>-<host>-<ctr> a container: eth0 (peer of the host's vc<i>), lo
//
// where <lab> is the caller's prefix plus four random hex digits, so labs of
// concurrent tests and test binaries never share a name. Every interface
// name is short and fixed (eth0, br0, vx0, uh0, vc0, ...) because each lives
// in its own namespace; only namespace names carry the lab name.
//
// A host may get more bridges (AddBridge: br1, br2, ...) for more VXLAN
// segments, and containers on any of them (AddContainerOn). Its kernel
// VXLAN device floods to a list of peers or to a multicast group
// (AddKernelVXLANWith), which the host then joins on eth0, as
// MulticastGroups shows.
//
// Topology, in the picture of the Docker experiment this lab reproduces:
//
//	ctr a1 ─ br0 ─ [vx0 | vtepd TAP]  host a ─ eth0 ┐
//	                                                ├─ br0 in <lab>-u
//	ctr b1 ─ br0 ─ [vx0 | vtepd TAP]  host b ─ eth0 ┘
//
// A host may also run a real Docker engine (Host.StartDockerd): dockerd
// joins the host's network namespace only (nsenter --net), keeps all its
// state in a temporary directory, and creates networks and containers the
// way the README's Docker guide does (Dockerd.Network, Dockerd.Run). Each
// container's network namespace is attached to the lab as
// <lab>-<host>-<ctr>, so that it is a Container like the lab's own. dockerd
// shares this machine's mount namespace and cgroup tree; dockerd_linux.go
// lists what it writes there and how Dockerd.Close removes it, also after
// a crash. The lab closes its engines before anything else.
//
// Lab.Close stops the processes the lab started (SIGTERM, then SIGKILL
// after a grace period, each by PID, and waits for them) and deletes the
// namespaces it created, which takes their veths, bridges and VXLAN links
// with them. It is idempotent and safe to defer. Besides Close, a lab is
// also closed when the process gets SIGINT or SIGTERM (the signal is then
// re-raised), and NewT closes it shortly before the test binary's -timeout
// would kill the process, so a hung test leaves nothing behind either.
//
// Safety rules the package enforces rather than documents: every address
// it configures, every VXLAN peer and every ping destination must lie in
// 198.18.0.0/15 or 2001:db8::/32, and every multicast group in 239.0.0.0/8,
// ff02::/16 or ff05::/16; it creates nothing in the caller's own network
// namespace, and runs neither dockerd nor iptables there; it never looks
// up or removes objects by pattern, only the names and PIDs it recorded
// and, for what a crashed Docker engine leaves, what lies under that
// engine's own directory and the processes that name it or run in its
// containers' namespaces.
//
// Configuration shells out to ip(8) and bridge(8), whose errors carry the
// command line and its output; reads of link attributes use netlink
// handles opened in the target namespace and closed at once, because an
// open handle would keep a deleted namespace alive. Code that must run
// inside a namespace (sockets, HTTP clients) goes through Host.Do.
//
// The package is Linux-only and needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
// Tests call RequirePrivileged or NewT, which skip when not root unless
// VTEPD_REQUIRE_PRIVILEGED=1 turns the skip into a failure.
package topo
