package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Reason says why a packet was dropped; it is the "reason" label of
// vtep_drops_total.
type Reason uint8

// Drop reasons. Receive side first, then transmit side.
const (
	TooShort      Reason = iota // datagram shorter than a VXLAN header
	BadFlags                    // VXLAN I flag clear
	UnknownVNI                  // no network configured for the VNI
	InnerTooShort               // inner frame shorter than an Ethernet header
	TAPError                    // writing the inner frame to the TAP failed
	Runt                        // frame read from the TAP shorter than an Ethernet header
	NoDestination               // flood with no peer to send to
	TooBig                      // datagram over the underlay path MTU (DF set: never fragmented)
	SendError                   // any other send failure (unreachable, no buffer space...)
	Source                      // sender outside the network's accept_from
	Loop                        // inner source MAC is our own TAP's: our frame came back
	Storm                       // flood over the network's flood_rate
	VLAN                        // 802.1Q-tagged inner frame with inner_vlan = "drop"
	Offload                     // frame from the TAP whose virtio_net_hdr cannot be honoured (GSO type, malformed super-frame)
	NumReasons
)

var reasonNames = [NumReasons]string{
	TooShort:      "too_short",
	BadFlags:      "bad_flags",
	UnknownVNI:    "unknown_vni",
	InnerTooShort: "inner_too_short",
	TAPError:      "tap_error",
	Runt:          "runt",
	NoDestination: "no_destination",
	TooBig:        "too_big",
	SendError:     "send_error",
	Source:        "source",
	Loop:          "loop",
	Storm:         "storm",
	VLAN:          "vlan",
	Offload:       "offload",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "reason" + strconv.Itoa(int(r))
}

// UnknownVNILabel is the vni label of drops that no configured network owns.
const UnknownVNILabel = "unknown"

// Counters are one VNI's packet counters. Receive and transmit halves sit on
// separate cache lines since different goroutines bump them.
type Counters struct {
	RxPackets    atomic.Uint64 // datagrams decapsulated and written to the TAP
	RxBytes      atomic.Uint64 // inner frame bytes of those
	RxCoalesced  atomic.Uint64 // TCP super-frames written to the TAP, each of several datagrams (offload)
	RxGROTrains  atomic.Uint64 // messages received as a train of several datagrams (UDP GRO)
	_            [32]byte
	TxPackets    atomic.Uint64 // datagrams sent, each flooded copy counted
	TxBytes      atomic.Uint64 // inner frame bytes of those
	FloodPackets atomic.Uint64 // datagrams sent as flooded copies (BUM, unknown unicast)
	TxSegmented  atomic.Uint64 // TCP super-frames read from the TAP and cut into segments (offload)
	// ARPSuppressed and NDSuppressed count ARP requests and Neighbor
	// Solicitations read from the TAP that vtepd answered from the
	// control plane's table instead of flooding them (arp_suppress).
	ARPSuppressed atomic.Uint64
	NDSuppressed  atomic.Uint64
	_             [16]byte
	// LearnLimited counts new MACs not learned because their VTEP was
	// over limits.learn_rate.
	LearnLimited atomic.Uint64
	// TAPRecreated counts TAPs recreated after being deleted under us.
	TAPRecreated atomic.Uint64
	Drops        [NumReasons]atomic.Uint64
}

// Drop counts n packets dropped for reason r.
func (c *Counters) Drop(r Reason, n uint64) { c.Drops[r].Add(n) }

// FDBStats are the forwarding-database figures of one VNI.
type FDBStats struct {
	Learned      int    // learned entries now
	Static       int    // static entries now
	Control      int    // entries from the control plane now
	LearnedTotal uint64 // entries ever learned
	Moves        uint64 // learned MACs that moved to another VTEP
	Refused      uint64 // learn attempts refused by max_entries
	Expired      uint64 // learned entries aged out
	Damped       uint64 // moves refused by limits.max_moves (MAC flapping)
}

// VNI is one row of a scrape: a network's label, its counters and FDB.
type VNI struct {
	Label     string // the VNI in decimal, or UnknownVNILabel
	Counters  *Counters
	FDB       FDBStats
	DropsOnly bool // export only vtep_drops_total (the "unknown" pseudo-VNI)
}

var (
	descRxPackets                          = desc("vtep_rx_packets_total", "Datagrams decapsulated and delivered to the TAP.")
	descRxBytes                            = desc("vtep_rx_bytes_total", "Inner frame bytes delivered to the TAP.")
	descTxPackets                          = desc("vtep_tx_packets_total", "Datagrams sent to remote VTEPs, each flooded copy counted.")
	descTxBytes                            = desc("vtep_tx_bytes_total", "Inner frame bytes sent to remote VTEPs.")
	descFlood                              = desc("vtep_flood_packets_total", "Datagrams sent by head-end replication of broadcast, multicast and unknown unicast frames.")
	descRxCoalesced                        = desc("vtep_rx_coalesced_total", "Super-frames (TCP segments, or UDP datagrams with USO) written to the TAP, each carrying several received datagrams (offload).")
	descRxGROTrains                        = desc("vtep_rx_gro_trains_total", "Trains of several datagrams received in one message (UDP GRO), counted once each.")
	descTxSegmented                        = desc("vtep_tx_segmented_total", "TCP or UDP super-frames read from the TAP and cut into MSS-sized datagrams (offload).")
	descDrops                              = desc("vtep_drops_total", "Packets dropped, by reason.", "reason")
	descFDBEntries                         = desc("vtep_fdb_entries", "Forwarding database entries, by type.", "type")
	descFDBLearned                         = desc("vtep_fdb_learned_total", "MAC addresses learned from received datagrams.")
	descFDBMoves                           = desc("vtep_fdb_moves_total", "Learned MAC addresses that moved to another remote VTEP.")
	descFDBRefused                         = desc("vtep_fdb_refused_total", "Learn attempts refused because max_entries (or limits.max_learned) was reached.")
	descFDBExpired                         = desc("vtep_fdb_expired_total", "Learned entries removed by ageing.")
	descFDBDamped                          = desc("vtep_fdb_moves_damped_total", "Moves of learned MACs refused because the MAC was flapping (limits.max_moves, limits.move_hold).")
	descLearnLimited                       = desc("vtep_fdb_learn_limited_total", "New MACs not learned because their VTEP exceeded limits.learn_rate.")
	descTAPRecreated                       = desc("vtep_tap_recreated_total", "TAPs recreated and re-attached after being deleted under vtepd.")
	descARPSuppressed                      = desc("vtep_arp_suppressed_total", "ARP requests from the TAP answered by vtepd from the control plane's table instead of being flooded (arp_suppress).")
	descNDSuppressed                       = desc("vtep_nd_suppressed_total", "IPv6 Neighbor Solicitations from the TAP answered by vtepd from the control plane's table instead of being flooded (arp_suppress).")
	counterDescs                           = []*prometheus.Desc{descARPSuppressed, descNDSuppressed, descRxPackets, descRxBytes, descTxPackets, descTxBytes, descFlood, descRxCoalesced, descRxGROTrains, descTxSegmented, descFDBLearned, descFDBMoves, descFDBRefused, descFDBExpired, descFDBDamped, descLearnLimited, descTAPRecreated}
	allDescriptions                        = append([]*prometheus.Desc{descDrops, descFDBEntries}, counterDescs...)
	_                 prometheus.Collector = (*Collector)(nil)
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"vni"}, labels...), nil)
}

// Collector exports the rows its snapshot function returns at each scrape.
type Collector struct {
	snapshot func() []VNI
}

// NewCollector returns a Collector over snapshot, which is called once per
// scrape and must be safe to call concurrently with the data plane.
func NewCollector(snapshot func() []VNI) *Collector {
	return &Collector{snapshot: snapshot}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescriptions {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.snapshot() {
		for r := Reason(0); r < NumReasons; r++ {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue,
				float64(v.Counters.Drops[r].Load()), v.Label, r.String())
		}
		if v.DropsOnly {
			continue
		}
		cn := v.Counters
		counter := func(d *prometheus.Desc, x uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(x), v.Label)
		}
		counter(descRxPackets, cn.RxPackets.Load())
		counter(descRxBytes, cn.RxBytes.Load())
		counter(descTxPackets, cn.TxPackets.Load())
		counter(descTxBytes, cn.TxBytes.Load())
		counter(descFlood, cn.FloodPackets.Load())
		counter(descRxCoalesced, cn.RxCoalesced.Load())
		counter(descRxGROTrains, cn.RxGROTrains.Load())
		counter(descTxSegmented, cn.TxSegmented.Load())
		counter(descFDBLearned, v.FDB.LearnedTotal)
		counter(descFDBMoves, v.FDB.Moves)
		counter(descFDBRefused, v.FDB.Refused)
		counter(descFDBExpired, v.FDB.Expired)
		counter(descFDBDamped, v.FDB.Damped)
		counter(descLearnLimited, cn.LearnLimited.Load())
		counter(descTAPRecreated, cn.TAPRecreated.Load())
		counter(descARPSuppressed, cn.ARPSuppressed.Load())
		counter(descNDSuppressed, cn.NDSuppressed.Load())
		ch <- prometheus.MustNewConstMetric(descFDBEntries, prometheus.GaugeValue, float64(v.FDB.Learned), v.Label, "learned")
		ch <- prometheus.MustNewConstMetric(descFDBEntries, prometheus.GaugeValue, float64(v.FDB.Static), v.Label, "static")
		ch <- prometheus.MustNewConstMetric(descFDBEntries, prometheus.GaugeValue, float64(v.FDB.Control), v.Label, "control")
	}
}

// Handler serves cs, with the Go runtime's and the process's own metrics,
// in the Prometheus text format.
func Handler(cs ...prometheus.Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, col := range append(cs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	) {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// BusyPoll exports the busy poller: whether it is polling now, the
// seconds it has spent polling (so the CPU that busy_poll costs), and how
// often it stood down under load.
func BusyPoll(polling func() bool, seconds, standdowns func() float64) []prometheus.Collector {
	return []prometheus.Collector{
		boolGauge(prometheus.GaugeOpts{
			Name: "vtep_busy_polling",
			Help: "1 while the busy poller polls the TAPs and sockets (busy_poll), else 0.",
		}, polling),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vtep_busy_poll_seconds_total",
			Help: "Time the busy poller spent polling (busy_poll): about the CPU time it cost.",
		}, seconds),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vtep_busy_poll_standdowns_total",
			Help: "Times the busy poller found traffic in every round for 2ms and left the load to the pipelines for 20ms.",
		}, standdowns),
	}
}

// GSOSockets exports how many UDP GSO port sockets (underlay.udp_gso) are
// open: one per source port in use, each closed a minute after its last
// train.
func GSOSockets(open func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vtep_udp_gso_sockets",
		Help: "UDP sockets open for sending GSO trains, one per source port in use (underlay.udp_gso).",
	}, open)
}

// Control exports the control plane: whether its store is reachable, and
// the errors it met, by reason (every reason, from 0). connected reports
// the state now; errors returns the counts of reasons, in the order of
// names.
func Control(connected func() bool, names []string, errors func() []uint64) []prometheus.Collector {
	return []prometheus.Collector{
		boolGauge(prometheus.GaugeOpts{
			Name: "vtep_control_connected",
			Help: "1 while the control plane's store is reachable and watched (etcd) or a BGP session is established (evpn), else 0.",
		}, connected),
		&controlErrors{names: names, errors: errors},
	}
}

// BGP exports a BGP backend's sessions and routes: sessions returns the
// number of sessions established and the routes received (in use) and
// advertised, by EVPN route type ("2", "3").
func BGP(sessions func() (up int, received, advertised map[string]int)) prometheus.Collector {
	return &bgpCollector{sessions}
}

var (
	descSessionsUp = prometheus.NewDesc("vtep_control_sessions_up",
		"BGP sessions established (evpn backend).", nil, nil)
	descRoutesReceived = prometheus.NewDesc("vtep_control_routes_received",
		"EVPN routes received and kept, by route type (2: MAC/IP, 3: inclusive multicast).", []string{"type"}, nil)
	descRoutesAdvertised = prometheus.NewDesc("vtep_control_routes_advertised",
		"EVPN routes this VTEP advertises, by route type (2: MAC/IP, 3: inclusive multicast).", []string{"type"}, nil)
)

type bgpCollector struct {
	sessions func() (int, map[string]int, map[string]int)
}

func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionsUp
	ch <- descRoutesReceived
	ch <- descRoutesAdvertised
}

func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	up, recv, adv := c.sessions()
	ch <- prometheus.MustNewConstMetric(descSessionsUp, prometheus.GaugeValue, float64(up))
	for _, t := range []string{"2", "3"} {
		ch <- prometheus.MustNewConstMetric(descRoutesReceived, prometheus.GaugeValue, float64(recv[t]), t)
		ch <- prometheus.MustNewConstMetric(descRoutesAdvertised, prometheus.GaugeValue, float64(adv[t]), t)
	}
}

// boolGauge is a gauge that reads 1 while f is true, else 0.
func boolGauge(opts prometheus.GaugeOpts, f func() bool) prometheus.Collector {
	return prometheus.NewGaugeFunc(opts, func() float64 {
		if f() {
			return 1
		}
		return 0
	})
}

var descControlErrors = prometheus.NewDesc("vtep_control_errors_total",
	"Control-plane keys and routes refused (bad_key, bad_json, bad_mac, bad_ip, wrong_family, wrong_port, group_mac, unknown_vni, cap, wrong_rt, bad_route) and failures (request, lease_lost, compacted), by reason.",
	[]string{"reason"}, nil)

type controlErrors struct {
	names  []string
	errors func() []uint64
}

func (c *controlErrors) Describe(ch chan<- *prometheus.Desc) { ch <- descControlErrors }

func (c *controlErrors) Collect(ch chan<- prometheus.Metric) {
	for i, n := range c.errors() {
		ch <- prometheus.MustNewConstMetric(descControlErrors, prometheus.CounterValue, float64(n), c.names[i])
	}
}
