package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The exposition is a contract with dashboards: names, labels and values.
func TestCollectorExposition(t *testing.T) {
	var c200, unknown Counters
	c200.RxPackets.Add(3)
	c200.RxBytes.Add(300)
	c200.TxPackets.Add(5)
	c200.TxBytes.Add(500)
	c200.FloodPackets.Add(2)
	c200.Drop(InnerTooShort, 1)
	c200.ARPSuppressed.Add(4)
	c200.NDSuppressed.Add(2)
	unknown.Drop(TooShort, 4)
	unknown.Drop(UnknownVNI, 6)
	col := NewCollector(func() []VNI {
		return []VNI{
			{Label: "200", Counters: &c200, FDB: FDBStats{Learned: 7, Static: 1, Control: 5, LearnedTotal: 9, Moves: 2, Refused: 1, Expired: 2}},
			{Label: UnknownVNILabel, Counters: &unknown, DropsOnly: true},
		}
	})
	want := `
# HELP vtep_rx_packets_total Datagrams decapsulated and delivered to the TAP.
# TYPE vtep_rx_packets_total counter
vtep_rx_packets_total{vni="200"} 3
# HELP vtep_rx_bytes_total Inner frame bytes delivered to the TAP.
# TYPE vtep_rx_bytes_total counter
vtep_rx_bytes_total{vni="200"} 300
# HELP vtep_tx_packets_total Datagrams sent to remote VTEPs, each flooded copy counted.
# TYPE vtep_tx_packets_total counter
vtep_tx_packets_total{vni="200"} 5
# HELP vtep_tx_bytes_total Inner frame bytes sent to remote VTEPs.
# TYPE vtep_tx_bytes_total counter
vtep_tx_bytes_total{vni="200"} 500
# HELP vtep_flood_packets_total Datagrams sent by head-end replication of broadcast, multicast and unknown unicast frames.
# TYPE vtep_flood_packets_total counter
vtep_flood_packets_total{vni="200"} 2
# HELP vtep_fdb_entries Forwarding database entries, by type.
# TYPE vtep_fdb_entries gauge
vtep_fdb_entries{type="learned",vni="200"} 7
vtep_fdb_entries{type="static",vni="200"} 1
vtep_fdb_entries{type="control",vni="200"} 5
# HELP vtep_arp_suppressed_total ARP requests from the TAP answered by vtepd from the control plane's table instead of being flooded (arp_suppress).
# TYPE vtep_arp_suppressed_total counter
vtep_arp_suppressed_total{vni="200"} 4
# HELP vtep_nd_suppressed_total IPv6 Neighbor Solicitations from the TAP answered by vtepd from the control plane's table instead of being flooded (arp_suppress).
# TYPE vtep_nd_suppressed_total counter
vtep_nd_suppressed_total{vni="200"} 2
# HELP vtep_fdb_learned_total MAC addresses learned from received datagrams.
# TYPE vtep_fdb_learned_total counter
vtep_fdb_learned_total{vni="200"} 9
# HELP vtep_fdb_moves_total Learned MAC addresses that moved to another remote VTEP.
# TYPE vtep_fdb_moves_total counter
vtep_fdb_moves_total{vni="200"} 2
`
	names := []string{"vtep_rx_packets_total", "vtep_rx_bytes_total", "vtep_tx_packets_total", "vtep_tx_bytes_total",
		"vtep_flood_packets_total", "vtep_fdb_entries", "vtep_fdb_learned_total", "vtep_fdb_moves_total",
		"vtep_arp_suppressed_total", "vtep_nd_suppressed_total"}
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	drops := map[string]float64{}
	for r := Reason(0); r < NumReasons; r++ {
		drops[`{reason="`+r.String()+`",vni="200"}`] = 0
		drops[`{reason="`+r.String()+`",vni="unknown"}`] = 0
	}
	drops[`{reason="inner_too_short",vni="200"}`] = 1
	drops[`{reason="too_short",vni="unknown"}`] = 4
	drops[`{reason="unknown_vni",vni="unknown"}`] = 6
	var b strings.Builder
	b.WriteString("# HELP vtep_drops_total Packets dropped, by reason.\n# TYPE vtep_drops_total counter\n")
	for labels, v := range drops {
		fmt.Fprintf(&b, "vtep_drops_total%s %g\n", labels, v)
	}
	if err := testutil.CollectAndCompare(col, strings.NewReader(b.String()), "vtep_drops_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(col, "vtep_rx_packets_total"); n != 1 {
		t.Errorf("%d vtep_rx_packets_total series, want 1: the unknown pseudo-VNI exports drops only", n)
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := Reason(0); r < NumReasons; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "reason") || seen[s] {
			t.Errorf("reason %d has name %q", r, s)
		}
		seen[s] = true
	}
}

func TestControlExposition(t *testing.T) {
	up := true
	names := []string{"bad_key", "cap"}
	counts := []uint64{0, 3}
	reg := prometheus.NewRegistry()
	for _, c := range Control(func() bool { return up }, names, func() []uint64 { return counts }) {
		reg.MustRegister(c)
	}
	want := `
# HELP vtep_control_connected 1 while the control plane's store is reachable and watched (etcd) or a BGP session is established (evpn), else 0.
# TYPE vtep_control_connected gauge
vtep_control_connected 1
# HELP vtep_control_errors_total Control-plane keys and routes refused (bad_key, bad_json, bad_mac, bad_ip, wrong_family, wrong_port, group_mac, unknown_vni, cap, wrong_rt, bad_route) and failures (request, lease_lost, compacted), by reason.
# TYPE vtep_control_errors_total counter
vtep_control_errors_total{reason="bad_key"} 0
vtep_control_errors_total{reason="cap"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	up = false
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP vtep_control_connected 1 while the control plane's store is reachable and watched (etcd) or a BGP session is established (evpn), else 0.\n# TYPE vtep_control_connected gauge\nvtep_control_connected 0\n"), "vtep_control_connected"); err != nil {
		t.Error(err)
	}
}

func TestBGPExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BGP(func() (int, map[string]int, map[string]int) {
		return 2, map[string]int{"2": 5, "3": 1}, map[string]int{"2": 3}
	}))
	want := `# HELP vtep_control_routes_advertised EVPN routes this VTEP advertises, by route type (2: MAC/IP, 3: inclusive multicast).
# TYPE vtep_control_routes_advertised gauge
vtep_control_routes_advertised{type="2"} 3
vtep_control_routes_advertised{type="3"} 0
# HELP vtep_control_routes_received EVPN routes received and kept, by route type (2: MAC/IP, 3: inclusive multicast).
# TYPE vtep_control_routes_received gauge
vtep_control_routes_received{type="2"} 5
vtep_control_routes_received{type="3"} 1
# HELP vtep_control_sessions_up BGP sessions established (evpn backend).
# TYPE vtep_control_sessions_up gauge
vtep_control_sessions_up 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
