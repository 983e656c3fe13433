//go:build linux

package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// offloadTransfer is how much TCP each direction of
// TestIntegrationOffload moves: hundreds of 64 KiB super-frames.
const offloadTransfer = 20 << 20

// TestIntegrationOffload moves 20 MiB of TCP each way between the two
// containers, checked by SHA-256, over three fabrics: vtepd on both hosts
// with offloads (the default), vtepd with offloads against the kernel's
// vxlan, and the same two with offload = false. With offloads, every
// vtepd must have cut its TAP's super-frames into datagrams, and a vtepd
// receiving from vtepd must have coalesced datagrams into super-frames.
// (The kernel's vxlan in this lab sends its super-frames whole, as one
// datagram each, since they never meet a NIC that would cut them: vtepd
// must write those to its TAP as super-frames too, or cut them itself
// without offloads; offload.GSOFor.)
func TestIntegrationOffload(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		kernelB bool // host b runs the kernel's vxlan
		off     bool // offload = false
		noGSO   bool // underlay.udp_gso = false (the default follows offload)
	}{
		{"vtepd-vtepd", false, false, false},
		{"vtepd-kernel", true, false, false},
		{"vtepd-vtepd offload=false", false, true, false},
		{"vtepd-kernel offload=false", true, true, false},
		{"vtepd-vtepd udp_gso=false", false, false, true},
		{"vtepd-kernel udp_gso=false", true, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lab := topo.NewT(t, "vof")
			nodes := newNodes(t, lab, 2)
			a, b := nodes[0], nodes[1]
			var vtepds []*node
			for i, n := range nodes {
				if tt.kernelB && n == b {
					if err := b.host.AddKernelVXLAN(testVNI, vxlanPort, a.host.Underlay); err != nil {
						t.Fatal(err)
					}
					continue
				}
				cfg := config(n.host, peersOf(nodes, i))
				if tt.off {
					cfg = "offload = false\n" + cfg
				}
				if tt.noGSO {
					cfg = strings.Replace(cfg, "[underlay]\n", "[underlay]\nudp_gso = false\n", 1)
				}
				n.runVtepd(t, cfg)
				vtepds = append(vtepds, n)
			}
			pingEach(t, nodes)
			for _, dir := range [][2]*node{{a, b}, {b, a}} {
				from, to := dir[0], dir[1]
				got, want, sendErr := transferTCP(t, from.ctr, to.ctr, offloadTransfer, 60*time.Second)
				if sendErr != nil || got.err != nil || got.n != offloadTransfer || got.sum != want {
					t.Fatalf("%s -> %s: sent (err %v), received %d of %d bytes (err %v), SHA-256 match %v",
						from.host.Name, to.host.Name, sendErr, got.n, offloadTransfer, got.err, got.sum == want)
				}
			}
			for _, n := range vtepds {
				seg := metric(t, n.host, "vtep_tx_segmented_total", "vni", "200")
				co := metric(t, n.host, "vtep_rx_coalesced_total", "vni", "200")
				offloadDrops := metric(t, n.host, "vtep_drops_total", "vni", "200", "reason", "offload")
				if tt.off && (seg != 0 || co != 0) {
					t.Errorf("%s with offload = false: %v super-frames segmented, %v coalesced", n.host.Name, seg, co)
				}
				if !tt.off && (seg == 0 || co == 0 && !tt.kernelB) {
					t.Errorf("%s: %v super-frames segmented, %v coalesced; want both above 0", n.host.Name, seg, co)
				}
				if offloadDrops != 0 {
					t.Errorf("%s: %v frames dropped as unusable offloads", n.host.Name, offloadDrops)
				}
				// With udp_gso, trains left from UDP sockets bound to
				// source ports of the range; without, only 4789 is bound.
				gso := !tt.off && !tt.noGSO
				if ports := boundSourcePorts(t, n); gso != (len(ports) > 0) {
					t.Errorf("%s: UDP source ports bound %v, udp_gso %v", n.host.Name, ports, gso)
				}
				// Between two vtepds the trains arrive whole (UDP GRO);
				// without udp_gso (or offloads) as datagrams.
				trains := metric(t, n.host, "vtep_rx_gro_trains_total", "vni", "200")
				if gso && !tt.kernelB && trains == 0 {
					t.Errorf("%s: no UDP GRO train received from a vtepd peer with udp_gso", n.host.Name)
				}
				t.Logf("%s: %v trains received", n.host.Name, trains)
			}
		})
	}
}

// boundSourcePorts lists the UDP ports other than VXLAN's that are bound
// to n's underlay address.
func boundSourcePorts(t *testing.T, n *node) []uint16 {
	t.Helper()
	out, err := n.host.Exec("ss", "-Hnua")
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	var ports []uint16
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if ap, err := netip.ParseAddrPort(f); err == nil && ap.Addr() == n.host.Underlay && ap.Port() != vxlanPort {
				ports = append(ports, ap.Port())
			}
		}
	}
	return ports
}
