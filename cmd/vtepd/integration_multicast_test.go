//go:build linux

package main

// Multicast flood-and-learn: vtepd floods BUM traffic to a group that the
// kernel's vxlan on other hosts has joined, learns from their answers, and
// joins and leaves the group on its underlay interface.
//
// This file also holds the helpers that the multicast, IPv6 and many-VNI
// tests share: nodes over either underlay family, a configuration with
// several networks, and per-VNI FDB expectations.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// v4Underlay and v6Underlay number the hosts of a lab on its underlay
// segment: 198.18.0.<i+1>/24 and 2001:db8::<i+1>/64.
func v4Underlay(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 24)
}

func v6Underlay(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64)
}

// newNodesOn is newNodes over any underlay: host i gets underlay(i) and a
// container 198.19.0.<i+1>/24 on br0 whose MTU is the VXLAN MTU of that
// underlay (1450 over IPv4, 1430 over IPv6).
func newNodesOn(t *testing.T, lab *topo.Lab, n int, underlay func(i int) netip.Prefix) []*node {
	t.Helper()
	return addNodes(t, lab, n, underlay, func(h *topo.Host, i int) (*topo.Container, error) {
		return h.AddContainer("c1", netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 24), h.VXLANMTU())
	})
}

// netSpec is one [[network]] of a configuration rendered by configNets.
type netSpec struct {
	vni    uint32
	bridge string
	peers  []netip.Addr
	group  netip.Addr // unset: no group
}

// configNets renders a vtepd configuration with local as the underlay
// address and one [[network]] per spec, learning on. Over an IPv6
// underlay it states udp6_zero_checksum_rx explicitly, zeroCsum6.
func configNets(local netip.Addr, zeroCsum6 bool, nets ...netSpec) string {
	var b strings.Builder
	b.WriteString("state_dir = \"\"\n") // keep tests out of the host's /var/lib/vtepd
	fmt.Fprintf(&b, "[underlay]\nlocal = %q\nport = %d\n", local, vxlanPort)
	if local.Is6() {
		fmt.Fprintf(&b, "udp6_zero_checksum_rx = %t\n", zeroCsum6)
	}
	fmt.Fprintf(&b, "\n[metrics]\nlisten = %q\n", metricsAddr)
	for _, n := range nets {
		fmt.Fprintf(&b, "\n[[network]]\nvni = %d\nbridge = %q\nlearning = true\n", n.vni, n.bridge)
		if n.group.IsValid() {
			fmt.Fprintf(&b, "group = %q\n", n.group)
		}
		b.WriteString("peers = [")
		for i, p := range n.peers {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", p)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// fdbRows returns the rows of entries for (vni, mac).
func fdbRows(entries []fdbEntry, vni uint32, mac net.HardwareAddr) []fdbEntry {
	var rows []fdbEntry
	for _, e := range entries {
		if e.VNI == vni && strings.EqualFold(e.MAC, mac.String()) {
			rows = append(rows, e)
		}
	}
	return rows
}

// expectFDBIn is expectFDB for any VNI: it waits until h's /fdb holds
// exactly one entry for (vni, mac), of type typ, pointing at remote.
func expectFDBIn(t *testing.T, h *topo.Host, vni uint32, mac net.HardwareAddr, typ string, remote netip.Addr) {
	t.Helper()
	eventually(t, 3*time.Second, fmt.Sprintf("/fdb on %s has VNI %d %s %s -> %s", h.Name, vni, typ, mac, remote), func() error {
		entries, err := getFDB(h)
		if err != nil {
			return err
		}
		rows := fdbRows(entries, vni, mac)
		if len(rows) != 1 || rows[0].Type != typ || rows[0].Remote != remote.String() {
			return fmt.Errorf("entries for %s: %+v; whole table: %+v", mac, rows, entries)
		}
		return nil
	})
}

// expectGroup waits until h's eth0 has joined group, or has left it.
func expectGroup(t *testing.T, h *topo.Host, group netip.Addr, joined bool) {
	t.Helper()
	what := fmt.Sprintf("%s: ip maddr show dev eth0 lists %v", h.Name, group)
	if !joined {
		what = fmt.Sprintf("%s: ip maddr show dev eth0 no longer lists %v", h.Name, group)
	}
	eventually(t, 3*time.Second, what, func() error {
		groups, err := h.MulticastGroups("eth0")
		if err != nil {
			return err
		}
		if slices.Contains(groups, group) != joined {
			return fmt.Errorf("groups on eth0: %v", groups)
		}
		return nil
	})
}

// stopVtepd sends SIGTERM to n's vtepd and requires a clean exit.
func (n *node) stopVtepd(t *testing.T) {
	t.Helper()
	if err := n.vtepd.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := n.vtepd.Wait(5 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("%s: after SIGTERM: exit code %d, %v; want 0\n%s", n.host.Name, code, err, n.vtepd.Output())
	}
}

const mcastVNI = 300

// TestIntegrationMulticast: three hosts on one underlay segment, two with
// the kernel's vxlan flooding to a group and one with vtepd flooding to the
// same group and no peers. Every container reaches every other; vtepd
// learns the kernel hosts' MACs and they learn its; vtepd's host has joined
// the group on eth0 while vtepd runs and has left it after SIGTERM.
//
// The IPv6 cases use a site-local and a link-local group. In the
// "group+peer" case a fourth host runs the kernel's vxlan with
// vtepd as its unicast remote and no group; vtepd lists it as a peer
// besides the group, and its floods reach both.
func TestIntegrationMulticast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		underlay func(int) netip.Prefix
		group    string
		peer     bool
	}{
		{"ipv4", v4Underlay, "239.1.1.1", false},
		{"ipv6", v6Underlay, "ff05::100", false},
		{"ipv6-linklocal", v6Underlay, "ff02::100", false},
		{"group+peer", v4Underlay, "239.1.1.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testMulticast(t, tc.underlay, netip.MustParseAddr(tc.group), tc.peer)
		})
	}
}

func testMulticast(t *testing.T, underlay func(int) netip.Prefix, group netip.Addr, withPeer bool) {
	lab := topo.NewT(t, "vmc")
	hosts := 3
	if withPeer {
		hosts = 4
	}
	all := newNodesOn(t, lab, hosts, underlay)
	members := all[:3] // a runs vtepd; b and c the kernel's vxlan in the group
	a, b, c := all[0], all[1], all[2]
	for _, n := range members[1:] {
		// ip link add vx0 type vxlan id 300 group G dstport 4789 dev eth0
		err := n.host.AddKernelVXLANWith(topo.KernelVXLAN{VNI: mcastVNI, Port: vxlanPort, Group: group})
		if err != nil {
			t.Fatal(err)
		}
	}
	var peers []netip.Addr
	var d *node // the unicast peer, if any
	if withPeer {
		d = all[3]
		if err := d.host.AddKernelVXLAN(mcastVNI, vxlanPort, a.host.Underlay); err != nil {
			t.Fatal(err)
		}
		peers = []netip.Addr{d.host.Underlay}
	}
	// No vx0 on a: whatever joins the group there is vtepd.
	expectGroup(t, a.host, group, false)

	a.runVtepd(t, configNets(a.host.Underlay, false, netSpec{vni: mcastVNI, bridge: "br0", group: group, peers: peers}))
	expectGroup(t, a.host, group, true)
	tap := fmt.Sprintf("vtep%d", mcastVNI)
	if attrs, err := a.host.Link(tap); err != nil {
		t.Error(err)
	} else if attrs.MTU != a.host.VXLANMTU() {
		t.Errorf("%s MTU = %d, want %d", tap, attrs.MTU, a.host.VXLANMTU())
	}

	// First contacts, in an order that makes each one need a particular
	// path for its ARP request, before any ARP cache can short-cut it:
	// c -> a needs vtepd to receive from the group, a -> b needs it to
	// send to the group, a -> d to send to its peer as well.
	first := []struct{ from, to *node }{{c, a}, {a, b}}
	if d != nil {
		first = append(first, struct{ from, to *node }{a, d})
	}
	for _, p := range first {
		if err := p.from.ctr.WaitReachable(p.to.ctr.Addr.Addr(), 5*time.Second); err != nil {
			t.Fatalf("first contact %s -> %s: %v", p.from.host.Name, p.to.host.Name, err)
		}
	}
	pingEach(t, members)
	if d != nil {
		pingEach(t, []*node{a, d})
	}

	for _, n := range all[1:] {
		expectFDBIn(t, a.host, mcastVNI, n.mac, "learned", n.host.Underlay)
		expectKernelFDB(t, n.host, a.mac, a.host.Underlay)
	}
	label := fmt.Sprint(mcastVNI)
	for _, name := range []string{"vtep_flood_packets_total", "vtep_rx_packets_total", "vtep_tx_packets_total"} {
		if v := metric(t, a.host, name, "vni", label); v <= 0 {
			t.Errorf("%s{vni=%q} = %v, want > 0", name, label, v)
		}
	}
	if v := metric(t, a.host, "vtep_fdb_entries", "vni", label, "type", "learned"); v < float64(len(all)-1) {
		t.Errorf(`vtep_fdb_entries{type="learned",vni=%q} = %v, want >= %d`, label, v, len(all)-1)
	}

	a.stopVtepd(t)
	expectGroup(t, a.host, group, false)
	if a.host.LinkExists(tap) {
		t.Errorf("%s still exists after vtepd exited", tap)
	}
	// The kernel hosts are unaffected: they still reach each other.
	if err := b.ctr.Ping(c.ctr.Addr.Addr(), 1, 56, false); err != nil {
		t.Errorf("kernel hosts after vtepd stopped: %v", err)
	}
}
