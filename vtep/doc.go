// Package vtep is the engine of vtepd: it holds the configuration in force
// (package config parses it and classifies every key for a reload), one
// TAP per network, and the two pipelines between the TAPs and the underlay
// sockets (package underlay).
//
// TX (tx.go), one goroutine per network and TAP queue: read a batch of
// frames from the TAP into buffers with headroom, look each destination up
// in the FDB, write the UDP and VXLAN headers in place, and send the batch
// with one sendmmsg; unknown unicast, broadcast and multicast frames go to
// every peer of the network (head-end replication), sharing one buffer.
// With offloads a super-frame is cut into segments (package offload), and
// with underlay.udp_gso the segments to one VTEP are gathered into UDP GSO
// trains (train.go) that underlay.TrainWriter sends.
//
// RX (rx.go), one goroutine per receive socket (queue) for all networks:
// receive a batch with recvmmsg, validate and decapsulate each datagram,
// learn inner source MAC -> outer source address, and write the inner
// frame to the TAP of its VNI. Drops are counted by reason, never logged
// per packet. Then it forwards what those writes caused at once on the TAP
// queues it wrote to (pollTX: an echo reply, an ACK), so that the TX
// goroutine need not wake. Each pipeline holds its lock from a read until
// what it read is sent or written, which is what lets another goroutine
// do its work in between without reordering a flow.
//
// With a control plane (control.go), the engine is its backend's Sink:
// registered VTEPs join the flood lists, remote MACs become control FDB
// entries and remote IP bindings the table that ARP and ND suppression
// answers from; the TX pipeline reports each source MAC it reads (through
// a per-pipeline cache, so that a known MAC costs a few loads), snoops IP
// bindings from ARP and ND, and answers requests it knows into the TAP
// (package neigh builds the replies).
//
// With busy_poll, traffic starts a goroutine that polls every TAP queue and
// socket without sleeping until busy_poll passes with nothing found, or
// until load makes polling pointless (busypoll.go).
//
// The rest of the files: engine.go (New, Run, shutdown, the sizes of the
// batches and buffers), network.go (a network's TAP, group and pipelines),
// reload.go (applying config.Diff), admin.go and http.go (the admin socket
// and the read-only HTTP endpoints), state.go (the learned FDB across
// restarts; the file is package fdbstate's), peers.go (per-VTEP counters),
// watch.go and recover.go (TAPs and bridges deleted under us, as package
// tap reports them), dropwatch.go (the rate-limited drop warning).
//
// Host resources (bridges, TAPs, ports) are checked and taken in New, which
// leaves nothing behind when it fails; Run releases them on shutdown. The
// package parses no header itself: Ethernet is package ether's, VXLAN and
// UDP package encap's, TCP and IP package offload's.
package vtep
