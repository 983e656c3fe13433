// Package fdb owns the forwarding database: the map from (VNI, inner MAC) to
// the remote VTEP's underlay address, filled by static configuration and by
// learning from received datagrams, aged out with a caller-supplied clock and
// bounded per VNI.
//
// The table is sharded: lookups and refreshes from many goroutines take only
// a shard's read lock. It knows nothing about packets, sockets or metrics
// exporters; callers read its counters.
//
// # Semantics
//
// The model is the Linux vxlan driver's FDB: static entries, from
// configuration, are never aged and never changed by learning; learned
// entries map a datagram's inner source MAC to its outer source address,
// are refreshed by every datagram, move when the MAC appears behind another
// VTEP and age out after their VNI's ageing time unseen. Each VNI caps its
// learned entries at MaxEntries; in a full VNI new MACs are refused, while
// refreshes and moves of known ones go on.
//
// Time is a caller-chosen monotonic nanosecond count passed as now to
// Learn, Expire and Entries. The engine reads its clock once per batch of
// datagrams; tests pass whatever they like. The table never reads a clock.
//
// # Design notes
//
// Hot paths. Lookup runs once per transmitted frame and Learn once per
// received datagram, from many goroutines. Both hash the key to one of 256
// shards and take that shard's read lock; there is no table-wide lock.
// Learn for a MAC already known behind the same remote, the steady state,
// also stays under the read lock: it stores the entry's last-seen time with
// an atomic, and only when the stored time is more than 100ms old, so that a
// busy flow does not write a shared cache line per packet. That makes ages
// coarse by up to 100ms, which ageing times of minutes do not notice. A
// new MAC in a full VNI is also refused under the read lock. Only adding,
// moving and removing entries take a shard's write lock.
//
// Memory. Each shard indexes keys in a map whose value carries the remote,
// so a lookup is one map probe, and keeps the rest of each entry in a slab
// with a free list, so adding an entry in steady state reuses a slot
// instead of allocating one, and Expire scans a slice. Neither the slab nor
// Go maps shrink; only RemoveNetwork, when it empties a shard, gives the
// shard's memory back.
//
// Per-VNI state. Settings and counters live in a vniState per VNI, found
// through an immutable map published with an atomic pointer and replaced,
// copy-on-write, by SetNetwork and RemoveNetwork, so the data path reads it
// without locking. Counters are atomics. The Learned count is taken with a
// compare-and-swap before an entry is inserted, so the cap holds exactly
// even when learners in different shards race for the last slot.
//
// Removal. RemoveNetwork unpublishes the VNI and marks its state removed,
// then sweeps the shards. A Learn or AddStatic that looked the state up
// before the removal checks the mark under the shard lock and gives up, so
// nothing is inserted behind the sweep. Each entry points at the state that
// counts it, so counts stay exact even when a VNI is removed and created
// again while datagrams for it are in flight.
package fdb
