//go:build linux

package main

// vtepd over an IPv6 underlay: against the kernel's vxlan and against
// itself, with packets of exactly the TAP MTU (underlay MTU - 70), and the
// zero UDP checksums of RFC 6935 that a kernel peer with udp6zerocsumtx
// sends.

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// snmp6 reads one counter of h's /proc/net/snmp6, e.g. Udp6InCsumErrors.
func snmp6(t *testing.T, h *topo.Host, name string) uint64 {
	t.Helper()
	out, err := h.Exec("cat", "/proc/net/snmp6")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("%s: /proc/net/snmp6: %q: %v", h.Name, sc.Text(), err)
			}
			return v
		}
	}
	t.Fatalf("%s: /proc/net/snmp6 has no %s:\n%s", h.Name, name, out)
	return 0
}

// pingFullSize has every container send full-size packets, exactly its MTU
// (the TAP MTU) long with DF set, to every other.
func pingFullSize(t *testing.T, nodes []*node) {
	t.Helper()
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			payload := from.ctr.MTU - 20 - 8 // IPv4 and ICMP headers
			if err := from.ctr.Ping(to.ctr.Addr.Addr(), 3, payload, true); err != nil {
				t.Errorf("%s -> %s, %d-byte packets with DF: %v", from.host.Name, to.host.Name, from.ctr.MTU, err)
			}
		}
	}
}

// expectTAPMTU checks that n's TAP is sized for the IPv6 underlay: 1500 - 70.
func expectTAPMTU(t *testing.T, n *node) {
	t.Helper()
	const want = 1500 - 70
	if got := n.host.VXLANMTU(); got != want {
		t.Fatalf("%s: VXLANMTU = %d, want %d over IPv6", n.host.Name, got, want)
	}
	attrs, err := n.host.Link(tapName)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.MTU != want {
		t.Errorf("%s: %s MTU = %d, want %d", n.host.Name, tapName, attrs.MTU, want)
	}
}

// TestIntegrationIPv6: vtepd with an IPv6 local address, against the
// kernel's vxlan (local 2001:db8::2 remote 2001:db8::1) and against
// another vtepd.
func TestIntegrationIPv6(t *testing.T) {
	t.Parallel()
	t.Run("kernel", func(t *testing.T) {
		t.Parallel()
		lab := topo.NewT(t, "v6k")
		nodes := newNodesOn(t, lab, 2, v6Underlay)
		a, b := nodes[0], nodes[1]
		if err := b.host.AddKernelVXLAN(testVNI, vxlanPort, a.host.Underlay); err != nil {
			t.Fatal(err)
		}
		a.runVtepd(t, configNets(a.host.Underlay, false, netSpec{vni: testVNI, bridge: "br0", peers: []netip.Addr{b.host.Underlay}}))
		expectTAPMTU(t, a)
		csumErrs := snmp6(t, b.host, "Udp6InCsumErrors")

		pingEach(t, nodes)
		pingFullSize(t, nodes)
		expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)
		expectKernelFDB(t, b.host, a.mac, a.host.Underlay)
		// The kernel checks every checksum vtepd sends over IPv6.
		if n := snmp6(t, b.host, "Udp6InCsumErrors"); n != csumErrs {
			t.Errorf("b: Udp6InCsumErrors rose from %d to %d", csumErrs, n)
		}
	})
	t.Run("vtepd", func(t *testing.T) {
		t.Parallel()
		lab := topo.NewT(t, "v6v")
		nodes := newNodesOn(t, lab, 2, v6Underlay)
		for i, n := range nodes {
			n.runVtepd(t, configNets(n.host.Underlay, false, netSpec{vni: testVNI, bridge: "br0", peers: peersOf(nodes, i)}))
			expectTAPMTU(t, n)
		}
		pingEach(t, nodes)
		pingFullSize(t, nodes)
		for i, n := range nodes {
			other := nodes[1-i]
			expectFDB(t, n.host, other.mac, "learned", other.host.Underlay)
		}
	})
}

// TestIntegrationIPv6ZeroChecksum: a kernel peer with udp6zerocsumtx sends
// VXLAN over IPv6 with a zero UDP checksum. Unless vtepd sets
// udp6_zero_checksum_rx, its host's kernel drops those datagrams (counting
// Udp6InCsumErrors) before vtepd sees them, so nothing gets through in
// either direction; with it set, traffic flows both ways. The kernel peer
// needs no udp6zerocsumrx: vtepd always sends real checksums.
func TestIntegrationIPv6ZeroChecksum(t *testing.T) {
	t.Parallel()
	for _, zeroRx := range []bool{false, true} {
		t.Run(fmt.Sprintf("udp6_zero_checksum_rx=%t", zeroRx), func(t *testing.T) {
			t.Parallel()
			lab := topo.NewT(t, "v6z")
			nodes := newNodesOn(t, lab, 2, v6Underlay)
			a, b := nodes[0], nodes[1]
			err := b.host.AddKernelVXLANWith(topo.KernelVXLAN{
				VNI: testVNI, Port: vxlanPort, Peers: []netip.Addr{a.host.Underlay}, UDP6ZeroCsumTx: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			a.runVtepd(t, configNets(a.host.Underlay, zeroRx, netSpec{vni: testVNI, bridge: "br0", peers: []netip.Addr{b.host.Underlay}}))
			aErrs, bErrs := snmp6(t, a.host, "Udp6InCsumErrors"), snmp6(t, b.host, "Udp6InCsumErrors")

			if zeroRx {
				pingEach(t, nodes)
				pingFullSize(t, nodes)
				expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)
				expectKernelFDB(t, b.host, a.mac, a.host.Underlay)
				if n := snmp6(t, a.host, "Udp6InCsumErrors"); n != aErrs {
					t.Errorf("a: Udp6InCsumErrors rose from %d to %d with udp6_zero_checksum_rx", aErrs, n)
				}
			} else {
				for _, p := range []struct{ from, to *node }{{b, a}, {a, b}} {
					if err := p.from.ctr.Ping(p.to.ctr.Addr.Addr(), 3, 56, false); err == nil {
						t.Errorf("%s -> %s: ping succeeded over zero-checksum datagrams without udp6_zero_checksum_rx", p.from.host.Name, p.to.host.Name)
					}
				}
				// b's ARP requests, then its replies to a's, reached a's
				// kernel and were dropped there.
				eventually(t, 3*time.Second, "a: Udp6InCsumErrors rises", func() error {
					if n := snmp6(t, a.host, "Udp6InCsumErrors"); n <= aErrs {
						return fmt.Errorf("Udp6InCsumErrors = %d, was %d", n, aErrs)
					}
					return nil
				})
				if v := metric(t, a.host, "vtep_rx_packets_total", "vni", "200"); v != 0 {
					t.Errorf(`a: vtep_rx_packets_total{vni="200"} = %v, want 0: vtepd saw zero-checksum datagrams`, v)
				}
				if entries, err := getFDB(a.host); err != nil {
					t.Error(err)
				} else if len(entries) != 0 {
					t.Errorf("a: /fdb learned from datagrams it should never have seen: %+v", entries)
				}
				// The other direction works: vtepd's checksummed floods
				// reached b's vxlan, which learned a's container from them.
				expectKernelFDB(t, b.host, a.mac, a.host.Underlay)
			}
			if n := snmp6(t, b.host, "Udp6InCsumErrors"); n != bErrs {
				t.Errorf("b: Udp6InCsumErrors rose from %d to %d: vtepd sent bad checksums", bErrs, n)
			}
		})
	}
}
