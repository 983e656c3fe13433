// Package fdb owns the forwarding database: the map from (VNI, inner MAC) to
// the remote VTEP's underlay address, filled by static configuration, by a
// control plane and by learning from received datagrams, aged out with a
// caller-supplied clock and bounded per VNI.
//
// The table is sharded, and read without locks: Lookup, and Learn when it
// only refreshes an entry, take no lock and write no shared memory (but
// for the refreshed entry's time). It knows nothing about packets, sockets
// or metrics exporters; callers read its counters.
//
// # Semantics
//
// The model is the Linux vxlan driver's FDB: static entries, from
// configuration, are never aged and never changed by learning; learned
// entries map a datagram's inner source MAC to its outer source address,
// are refreshed by every datagram, move when the MAC appears behind another
// VTEP and age out after their VNI's ageing time unseen. Each VNI caps its
// learned entries at MaxEntries; in a full VNI new MACs are refused, while
// refreshes and moves of known ones go on. SetLimits adds two table-wide
// limits: MaxLearned caps the learned entries of all VNIs together, in the
// same way, and MaxMoves damps flapping: a learned entry that has moved
// MaxMoves times within a second of the caller's clock refuses to move
// (Damped) until MoveHold has passed, while refreshes from its current
// remote go on.
//
// Entry types and precedence. An entry has one of three types, by where it
// came from: Static (configuration, AddStatic), Control (a control plane's
// MAC route, AddControl) and Learned (Learn). A key holds one entry, and
// the types rank in that order: static over control, control over
// learned. AddStatic replaces an entry of any type; AddControl replaces a
// learned entry and is refused with ErrStaticEntry by a static one; Learn
// changes neither a static nor a control entry, and does not refresh
// them, as configuration and the control plane know better than a
// datagram where a MAC is. Only learned entries age, move by learning and
// count against the learning caps. Control entries have a table-wide cap
// of their own, Limits.MaxControl, so that a control plane gone wrong
// cannot fill memory; AddControl is refused with ErrControlFull, and
// counted, when it would take their number beyond it. A control plane withdraws its route with
// DeleteControl, which removes the entry only if it is still a control
// entry pointing at the route's remote; Delete removes any entry, and
// RemoveNetwork all of a VNI's. The table does not remember a route it
// refused: the control plane installs it again when it can (control.go
// says why it works that way).
//
// Time is a caller-chosen monotonic nanosecond count passed as now to
// Learn, Expire and Entries. The engine reads its clock once per batch of
// datagrams; tests pass whatever they like. The table never reads a clock.
//
// # Design notes
//
// Hot paths. Lookup runs once per transmitted frame and Learn once per
// received datagram, from many goroutines. A first version took a shard's
// read lock for both, around a Go map; the lock alone was a large part of
// what a lookup cost, and its reader count is a shared write that makes
// cores that read the same shard take turns. So readers now take no lock at all. Immutable
// snapshots swapped in with an atomic pointer would have done that too,
// but at the price of copying a shard, some 4,000 entries in a table of a
// million, on every change that learning makes.
//
// Layout. The key hashes to one of 256 shards, and each shard is an
// open-addressing hash table with linear probing, with no pointers in what
// readers read. A slot is two 64-bit words: the MAC and the low 16 bits of
// the VNI, then the rest of the VNI, the entry's type and its remote. The
// remote is the IPv4 address itself, or an index into a list of interned
// IPv6 addresses (VTEPs are few; the list reuses the index of an address
// no entry points at any more, so addresses learned from the network
// cannot make it grow without bound). With four slots to a cache line and
// tables at most three quarters full, a lookup almost always reads one
// line of the table. The last-seen time and the network of each entry are
// kept in a second array beside the slots, which only Learn and the
// writers read, so that the array that lookups probe stays as small as it
// can. The shards' current tables are published in one array of atomic
// pointers, 2 KiB that stay in cache, away from the shards' locks.
//
// Once the table outgrows the cache, what a lookup costs is the wait for
// the slot's line, and the work thrown away when a branch on the loaded
// slot is mispredicted: when the key is not in its home slot, and when the
// remote is IPv6 among IPv4 ones or the other way round. Deciding the
// address family without a branch, through the list of remotes for both,
// was faster with mixed families in a table somewhat larger than the cache
// and slower in one far larger, where the two dependent loads it adds
// follow a miss to memory; an underlay is mostly of one family, so the
// branch stays. (The README's results table has the measurements.)
//
// Reading. Every word a reader loads is an atomic, and each table has a
// sequence counter: writers, serialized by the shard's mutex, make it odd,
// change the slots and make it even again; a reader loads it before and
// after probing and retries if it was odd or has changed (a seqlock). That
// lets a removal shift the entries after it back into the hole
// (backward-shift deletion) instead of leaving tombstones, and an entry
// change remote or type in place. A table that must grow is copied into one
// twice the size, which is then published; the old one stays as it was, so
// readers that are still in it get right, if stale, answers. Tables do not
// shrink, except that RemoveNetwork gives back the table of a shard it
// empties.
//
// Refreshing. Learn for a MAC already known behind the same remote, the
// steady state, finds the entry the same way and stores its last-seen
// time, and only when the stored time is more than 100ms old, so that a
// busy flow does not write a shared cache line per packet. That makes ages
// coarse by up to 100ms, which ageing times of minutes do not notice. As
// the store is made without the lock, a writer could otherwise have moved
// another entry into the slot since the look: so the refresh first sets a
// busy bit in the slot's second word with a compare-and-swap against the
// word it read, and checks the slot again; writers set the bit, waiting
// for a refresh that holds it, before they change, move or clear a slot,
// and a table that grows keeps the bit set in the slots it has copied, so
// that a late refresh goes to the new table rather than being lost. A new
// MAC in a full VNI is also refused without the lock. Only adding, moving
// and removing entries take a shard's lock.
//
// Ageing. Each table keeps a lower bound on the last-seen times of its
// entries that can age, lowered when entries are added or moved and raised
// by Expire when it has read them all, so that Expire passes over a shard
// with nothing due, the common case, without reading its entries.
//
// Per-VNI state. Settings and counters live in a vniState per VNI, found
// through an immutable map published with an atomic pointer and replaced,
// copy-on-write, by SetNetwork and RemoveNetwork, so the data path reads it
// without locking. Counters are atomics. The Learned count is taken with a
// compare-and-swap before an entry is inserted, so the cap holds exactly
// even when learners in different shards race for the last slot. The
// table-wide count of learned entries is taken the same way, after the
// VNI's (and given back to it if the table is full), and is given back
// wherever a learned entry goes or changes type. The table-wide count of
// control entries, which has no per-VNI cap, is taken in the same way
// under Limits.MaxControl. The state of move damping
// (moves in the current second, or the end of a hold) is kept per entry
// beside its last-seen time, and only read and written under the shard's
// lock: a move takes the lock anyway, so readers never look at it.
//
// Removal. RemoveNetwork unpublishes the VNI and marks its state removed,
// then sweeps the shards. A Learn, AddStatic or AddControl that looked the
// state up before the removal checks the mark under the shard lock and
// gives up, so nothing is inserted behind the sweep. Each entry points at
// the state that counts it, so counts stay exact even when a VNI is
// removed and created again while datagrams for it are in flight.
//
// # Files
//
//   - table.go: the Table and its data path: New, Lookup, Learn, AddStatic,
//     Delete, Expire and Entries, the types they take and return, and the
//     errors of AddStatic and AddControl.
//   - control.go: the entries of a control plane: AddControl and
//     DeleteControl, and why a withdrawal names its remote.
//   - slots.go: the lock-free structure that readers probe: the shards,
//     their open-addressing tables of slots, the layout of a slot's key
//     and meta words, the hash, the seqlock and busy bit, the writers'
//     insertion, growth and backward-shift deletion, and the bound on
//     last-seen times that lets Expire pass over a table.
//   - remotes.go: the interning of IPv6 remote addresses, and the IPv4
//     addresses that a slot holds itself.
//   - limits.go: the learning caps (a VNI's MaxEntries, the table-wide
//     Limits.MaxLearned), move damping, and the cap on control entries
//     (Limits.MaxControl), with SetLimits and GlobalStats.
//   - networks.go: the per-VNI settings and counters, SetNetwork,
//     RemoveNetwork and its sweep, and Stats.
//   - mac.go: the MAC type and its text form.
package fdb
