// Package control is vtepd's control plane: the backend-neutral contract
// between the forwarding engine and a distributed store or protocol (etcd,
// or BGP EVPN) that tells every VTEP which other VTEPs serve a VNI, which
// inner MACs sit behind which VTEP, and which IP belongs to which MAC.
//
// # What it owns
//
// The vocabulary (State, Event, Reason, Status; MACs are fdb.MAC) and two
// directions of flow, both defined by Backend:
//
//   - Remote state flows from the backend to a Sink that the engine
//     implements. Sync hands over the complete remote view after every full
//     read of the store (start, reconnect, compaction); Update delivers the
//     ordered changes in between. The engine applies Diff(previous, synced)
//     on Sync, so that a resync never flushes entries that did not change.
//   - Local state flows from the engine to the backend through Join, Leave,
//     SetMAC, DelMAC, SetIP and DelIP. These only record the desired local
//     state under a mutex and wake the backend's writer; they never block on
//     the network, so the data path may call them from its own goroutines.
//     Calling one again with the same arguments costs a map lookup.
//
// Joining a VNI both registers this VTEP in it and makes the backend serve
// it: entries of VNIs that are not joined are refused (ReasonVNI).
//
// # What it must not touch
//
// No packets, sockets, TAPs, FDB or neighbour tables: the engine turns
// events into table entries. No metrics exporter either: Status and the
// Counters it reads are plain values that package metrics exports. A
// backend lives in its own subpackage (control/etcd, control/evpn), so that
// a program that only reads Status, such as vtepctl, does not link a
// store's client or a BGP implementation.
//
// # Outages
//
// Backend.Run returns only when its context ends (or on a configuration
// error found before it starts). An unreachable store is reported through
// Status.Connected and one log line per change; the last remote view is
// kept meanwhile, and a Sync with an empty State never stands for an error.
package control
