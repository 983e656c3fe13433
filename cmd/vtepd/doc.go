// Command vtepd is a userspace VXLAN tunnel endpoint: it joins Linux bridges
// as a TAP port and carries their Ethernet segments to other VTEPs over
// VXLAN (RFC 7348), interoperating with the kernel's own vxlan driver.
//
// Usage:
//
//	vtepd -config /etc/vtepd/vtepd.toml [-log-level info]
//
// SIGINT and SIGTERM stop it (its TAPs are deleted); SIGHUP re-reads the
// configuration and applies the difference, as `vtepctl reload` does.
package main
