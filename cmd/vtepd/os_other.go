//go:build !linux

package main

// linuxOnly is set where vtepd cannot run: TAPs, bridges, netlink and
// the underlay's sockets are Linux's.
const linuxOnly = true
