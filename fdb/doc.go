// Package fdb owns the forwarding database: the map from (VNI, inner MAC) to
// the remote VTEP's underlay address, filled by static configuration and by
// learning from received datagrams, aged out with a caller-supplied clock and
// bounded per VNI.
//
// The table is sharded: lookups and refreshes from many goroutines take only
// a shard's read lock. It knows nothing about packets, sockets or metrics
// exporters; callers read its counters.
package fdb
