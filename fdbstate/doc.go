// Package fdbstate owns the state file that carries the learned FDB across a
// restart of vtepd (a warm restart): its format, its name in state_dir, the
// atomic write, the identity of the instance that wrote it, and the reading
// that vets a whole file before the caller restores anything from it.
//
// Save writes entries, each with its age, to fdb-<local>-<port>.json in the
// state directory (created 0700), through a temporary file renamed into
// place, so that a reader sees the old file or the new one, never half of
// one. Load reads such a file back and returns its entries with their age
// now: the age they had when saved plus the time the file lay unused.
//
// Load refuses a file, with an error wrapping one of the sentinels, when it
// was written by another instance (ErrOtherInstance), in another format
// version (ErrVersion), in the future (ErrFuture), or when anything in it is
// wrong (ErrCorrupt): JSON that does not decode, or one entry with a bad or
// non-unicast or zero MAC, a remote of the other address family, equal to
// the local address or not global unicast, or an age that is negative or not
// finite (an *EntryError says which). A file that is wrong anywhere is
// refused as a whole: an entry that is wrong says the file cannot be
// trusted, and its other entries are only a hint anyway, which learning
// gives back within seconds.
//
// The package must not touch the forwarding table itself (it knows fdb only
// for the MAC type), decide which entries are learned, which networks learn
// or when an entry is too old to restore (the caller knows the ageing time
// of each network), log, export metrics, or configure the host (netlink).
// Package vtep is the caller: it saves on shutdown, loads in New, and turns
// each refusal into its log line.
//
// # Design notes
//
// Identity. Several vtepds in network namespaces may share one file system
// and one state_dir, and a namespace may have the same local address as
// another; the file therefore names the namespace (the link of
// /proc/self/ns/net, "net:[4026531840]"), the local address and the port,
// and a file of another instance is left alone rather than restored. The
// name of the file holds only the address and port, so two such vtepds
// overwrite each other's file: the one that stops last wins, and the other
// starts cold, which is safe.
//
// Format. Version 1 is JSON: {"version", "written" (RFC 3339 with
// nanoseconds), "netns", "local", "port", "entries": [{"vni", "mac",
// "remote", "age_seconds"}]}, with ages in (fractional) seconds as
// float64. Files written by earlier vtepds must keep loading: changing a
// field's name, type or meaning needs a new Version. A file of another
// version is refused with ErrVersion even when its entries no longer decode
// as version 1's, so that a downgrade says so rather than "corrupt".
//
// Time. The time down is the wall clock's now minus the file's written
// time: a restart crosses processes, so no monotonic clock spans it. Ages
// saturate at the largest time.Duration, some 292 years, longer than any
// ageing time; a file written in the future is refused, since the time
// down, and so every age, would be unknown.
package fdbstate
