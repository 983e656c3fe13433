//go:build linux

package main

// Integration tests of `vtepctl reload` for the settings a network keeps
// across a reload without being replaced: accept_from, flood_rate and
// inner_vlan. Each reload must be reported as one network changed (not
// replaced, not unchanged) and act on the next datagram or frame, and a
// second reload must undo it. Until vtep/reload.go stored a kept network's
// whole new configuration, a reload that changed only these was reported
// "1 unchanged" and ignored. The labs and counters are the hardening
// tests' (integration_hardening_test.go).

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vtepd/vtepd/internal/topo"
)

// reloadPair is the lab of the reload tests: quietNodes, with vtepd on
// both nodes as runPair starts it, a's listening on the admin socket it
// returns and with network as more keys of its [[network]].
func reloadPair(t *testing.T, prefix string, network ...string) (nodes []*node, socket string) {
	t.Helper()
	_, nodes = quietNodes(t, prefix)
	socket = filepath.Join(t.TempDir(), "a.sock")
	runPair(t, nodes, hcfg{admin: socket, network: network})
	return nodes, socket
}

// reloadNetwork rewrites the configuration of nodes[0]'s vtepd, whose
// admin socket is socket, with network as the keys of its [[network]]
// besides the defaults, and reloads it. vtepctl must report that network
// changed in place.
func reloadNetwork(t *testing.T, nodes []*node, socket string, network ...string) {
	t.Helper()
	a := nodes[0]
	out := a.reload(t, socket, hcfg{admin: socket, network: network}.render(a.host, peersOf(nodes, 0)))
	if want := "0 replaced, 1 changed, 0 unchanged"; !strings.Contains(out, want) {
		t.Errorf("vtepctl reload to %q: %q, want %q", network, strings.TrimSpace(out), want)
	}
}

// tapRx returns how many frames h's TAP has taken from vtepd, for the
// bridge: its rx_packets (what a TAP's owner writes, the kernel receives).
func tapRx(t *testing.T, h *topo.Host) uint64 {
	t.Helper()
	attrs, err := h.Link(tapName)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Statistics == nil {
		t.Fatalf("%s on %s: no statistics", tapName, h.Name)
	}
	return attrs.Statistics.RxPackets
}

// TestIntegrationReloadAcceptFrom: accept_from tightened by a reload from
// the underlay's 198.18.0.0/24 to 198.18.5.0/24 shuts out b, a peer: its
// datagrams are dropped as "source", exactly one count each, neither
// learned nor written to the TAP. Loosened again, b is heard at once.
func TestIntegrationReloadAcceptFrom(t *testing.T) {
	t.Parallel()
	const open, closed = `accept_from = ["198.18.0.0/24"]`, `accept_from = ["198.18.5.0/24"]`
	nodes, socket := reloadPair(t, "rla", open)
	a, b := nodes[0], nodes[1]

	// send injects n datagrams from b's address, of source MAC 02:..:<i>,
	// and checks what reached a's bridge and whether the MAC was learned.
	const n = 50
	send := func(i byte, heard bool, want ...rise) {
		t.Helper()
		src := net.HardwareAddr{0x02, 0x5e, 0x10, 0xad, 0x00, i}
		tap0 := tapRx(t, a.host)
		injectRise(t, b.host, a.host, n, payloads(ethFrame(a.mac, src, 0), same(src)), want...)
		wantTAP := uint64(0)
		if heard {
			wantTAP = n
		}
		if got := tapRx(t, a.host) - tap0; got != wantTAP {
			t.Errorf("a's %s took %d frames from vtepd for the bridge, want %d", tapName, got, wantTAP)
		}
		if learned := hasEntry(learnedFDB(t, a.host), src); learned != heard {
			t.Errorf("%s from b learned: %v, want %v", src, learned, heard)
		}
	}
	send(1, true, rose("vtep_rx_packets_total", n), dropsRose("source", 0))

	reloadNetwork(t, nodes, socket, closed)
	send(2, false, dropsRose("source", n), rose("vtep_rx_packets_total", 0), rose("vtep_fdb_learned_total", 0))

	reloadNetwork(t, nodes, socket, open)
	send(3, true, rose("vtep_rx_packets_total", n), dropsRose("source", 0))
	pingEach(t, nodes)
}

// TestIntegrationReloadFloodRate: a burst of 500 broadcasts from a's
// container is flooded whole without flood_rate; reloaded with
// flood_rate = 50, the next burst is cut to a second's worth (plus the
// refill), the rest dropped as "storm"; reloaded without it again, the
// whole burst is flooded.
func TestIntegrationReloadFloodRate(t *testing.T) {
	t.Parallel()
	nodes, socket := reloadPair(t, "rlf")
	const rate, burst = 50, 500
	unlimited := func() {
		t.Helper()
		if flooded, _ := broadcastBurst(t, nodes, burst); flooded != burst {
			t.Errorf("without flood_rate, %v of %d broadcasts flooded", flooded, burst)
		}
	}
	unlimited()

	reloadNetwork(t, nodes, socket, fmt.Sprintf("flood_rate = %d", rate))
	flooded, elapsed := broadcastBurst(t, nodes, burst)
	expectBucket(t, "vtep_flood_packets_total", flooded, rate, elapsed)

	reloadNetwork(t, nodes, socket)
	unlimited()
	pingEach(t, nodes)
}

// TestIntegrationReloadInnerVLAN: tagged frames cross a's vtepd both ways
// with the default inner_vlan ("pass"); reloaded with inner_vlan = "drop",
// they are dropped and counted as "vlan", before learning; reloaded
// without it again, they cross.
func TestIntegrationReloadInnerVLAN(t *testing.T) {
	t.Parallel()
	nodes, socket := reloadPair(t, "rlv")
	src := func(i byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x7a, 0x66, 0xed, 0x01, i} }
	expectInnerVLAN(t, nodes, true, src(1))

	reloadNetwork(t, nodes, socket, `inner_vlan = "drop"`)
	expectInnerVLAN(t, nodes, false, src(2))

	reloadNetwork(t, nodes, socket)
	expectInnerVLAN(t, nodes, true, src(3))
}
