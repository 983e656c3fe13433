// Command control is `make bench-control`: vtepd's control plane on etcd
// at the scale of issue #11, one real etcd and one real vtepd against a
// simulated fleet of VTEPs, judged against the targets.
//
// It builds one lab host (internal/topo) holding Debian's etcd on
// 127.0.0.1:2379, a bridge br0 and the vtepd under test at 198.18.0.1,
// whose one network (-vni, 200) is on the control plane. The fleet lives
// in this process: -vteps simulated VTEPs (1000, at 198.18.4.1 and up),
// each registering in the VNI and publishing -macs MACs (100, unicast,
// 02:b0:...) and -ips IP bindings (0) under the README's key layout, each
// on a lease of its own kept alive, as a vtepd keeps its keys. The fleet
// shares -clients etcd clients (4) and writes in transactions of at most
// 128 puts, etcd's --max-txn-ops; its addresses are only keys, routed in
// the lab to a gateway that is never there, so that what vtepd floods to
// them vanishes without a send error or an ARP request.
//
// The phases, a progress line each:
//
//  1. a vtepd on the empty store: connected, its RSS after a GC;
//  2. the fleet grants its leases and publishes while that vtepd
//     watches: how long etcd took, and how long until the watching
//     vtepd's FDB held every MAC; that vtepd stops;
//  3. full sync: a new vtepd on the full store, timed from its start to
//     its FDB holding every MAC as a control entry
//     (vtep_fdb_entries{type="control"}, polled every 10 ms), and to its
//     control plane's connected moment (vtepctl control's "since");
//     16 MACs are then looked up one by one for their type and remote;
//     its RSS -settle later, and again once a GC has run;
//  4. steady state: etcd's gRPC requests by method
//     (grpc_server_msg_received_total) over -window with nothing
//     changing. The fleet keeps its leases alive on streams of its own,
//     which send what clientv3's lessor would (each lease every third of
//     its TTL), and counts them exactly: etcd's counters are read while
//     none of its keepalives is in flight, so what else etcd counted is
//     vtepd's;
//  5. convergence: -changes single changes (1000) at -rate (100/s), each
//     a transaction of one put on a fleet VTEP's lease (-change: a new
//     MAC, a MAC moved to another VTEP, or both alternately), each timed
//     from the put's answer to the first poll of the admin socket's
//     "fdb show" of that one MAC (every -poll, 1 ms) that shows it as a
//     control entry behind its new VTEP. The times are upper bounds by
//     one poll.
//
// It prints the figures and a table of the targets, pass or
// fail, and writes latest.json, latest.md and a timestamped JSON copy to
// -out. The exit status is 1 when a target is missed, as with make soak.
//
// RSS. An idle Go program collects garbage only when its runtime forces a
// collection, two minutes after the last; until then, a vtepd that has
// just listed 100k keys holds the list's garbage. The harness reports RSS
// both as it is -settle after the sync and once a collection has run
// (/debug/pprof/heap?gc=1, so vtepd runs with [metrics] pprof) and the
// runtime gave the pages back; the target is judged on the latter, the
// cost of what vtepd keeps, and the empty vtepd's RSS is read the same
// way.
//
// -standin runs, instead of vtepd, a process of this harness with the
// etcd backend and an fdb.Table programmed as the engine does (cmd
// _standin): the control plane's own cost, without the data path.
//
// Usage (root; `sudo make bench-control` builds vtepd first):
//
//	go run ./bench/control [-vteps 1000] [-macs 100] [-ips 0]
//	        [-changes 1000] [-rate 100] [-change mixed] [-window 20s]
//	        [-lease-ttl 10s] [-standin] [-vtepd bin/vtepd] [-out bench/results/control]
//
// The lab, etcd, vtepd and the temporary directory (etcd's data, vtepd's
// configuration and admin socket) are removed on every exit path, Ctrl-C
// included, each by the name or PID recorded when it was made.
package main
