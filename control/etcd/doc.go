// Package etcd is the etcd backend of package control: it registers this
// VTEP and publishes its local MACs and IPs under one lease, and lists and
// watches everyone else's, under the key layout of keys.go.
//
// It owns its etcd client, its lease and the two goroutines that use them:
// the writer, which reconciles etcd with the desired local state, and the
// watcher, which keeps the remote view and feeds the control.Sink. It must
// not touch the engine's tables: everything it learns goes through the Sink.
//
// # Design notes and history
//
// The watch follows what flannel's pkg/subnet/etcd learned the hard way.
// The view is listed at a revision, and the watch starts from that revision
// plus one with WithPrevKV, so that no change between the two is missed;
// the revision advances with every response, progress notifications
// included, so that a resumed watch does not replay or skip. A compaction
// that overtakes the watch (ErrCompacted) means changes were lost: list
// again and Sync, and the sink applies only the difference. A failed list
// or a broken watch is never turned into an empty view: the last one stays
// until a list succeeds. A bad key or value is skipped and counted, and
// the keys after it are still applied; a put that makes a known key bad
// removes the entry that key used to hold, so that list and watch agree.
//
// Writes are reconciled, not echoed. The engine's calls only mark a local
// key dirty when its desired value changes; the writer sends one request
// per batch of dirty keys (puts go in transactions of up to maxTxnOps), and
// none at all in steady state, where only the lease keepalives run. A
// delete compares the key's mod revision with the one our put produced, so
// a host that is slow to notice that a MAC moved cannot delete the entry
// its new owner wrote. When a watch shows another writer overwrote one of
// our keys after our write, the local entry is forgotten, so that the
// engine's next SetMAC for it (the MAC came back) writes it again.
//
// The lease: one per process, kept alive by the client. When its keepalive
// channel closes (expired, revoked, or no answer for a whole TTL during an
// outage) or a put finds it gone, a new lease is granted and every local
// key written again. Keys are honoured whatever their lease, including
// none (an operator's etcdctl put). This VTEP's own entries (a VTEP or MAC
// key naming our underlay address, an IP key on one of our leases) are not
// reported to the sink.
//
// Connected is true when the client's connection is ready and the last
// list succeeded. A client keepalive on the gRPC connection notices a
// stopped server; a reconnect triggers a list, so that anything missed is
// synced even if the watch would have resumed by itself. A backend that
// has not connected yet (a wrong certificate, CA or password) logs that
// once, with the connection's own error when there is one, since the
// client's requests wait for a ready connection and end with a bare
// deadline; the failures after that are only counted.
package etcd
