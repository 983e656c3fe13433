//go:build linux

package main

// Integration tests of the vtepd binary in network-namespace labs
// (internal/topo): vtepd against vtepd and against the kernel's vxlan
// driver, flooding, MTU, malformed datagrams, shutdown and configuration
// errors. They need root; see topo.RequirePrivileged.
//
// The binary is built once per test binary, on first use, into a temporary
// directory that TestMain removes. VTEPD_BIN=path tests a prebuilt binary
// instead; VTEPD_RACE=1 builds it with the race detector.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/promtext"
	"github.com/vtepd/vtepd/internal/topo"
)

const (
	testVNI     = 200
	vxlanPort   = 4789
	metricsAddr = "127.0.0.1:9476" // per host namespace, so never shared
	innerMTU    = 1450             // container MTU: 1500 underlay - 50
	tapName     = "vtep200"        // vtepd's default TAP name for VNI 200
)

var (
	buildDir  string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vtepd-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vtepdBin returns the daemon binary, building it on first use so that
// unprivileged and -short runs do not pay for the build.
func vtepdBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("VTEPD_BIN"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		args := []string{"build"}
		if os.Getenv("VTEPD_RACE") == "1" {
			args = append(args, "-race")
		}
		binPath = filepath.Join(buildDir, "vtepd")
		cmd := exec.Command("go", append(args, "-o", binPath, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build vtepd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// node is one lab host with one container, running vtepd or kernel VXLAN.
type node struct {
	host    *topo.Host
	ctr     *topo.Container
	mac     net.HardwareAddr // the container's eth0
	vtepd   *topo.Proc       // nil on a kernel VXLAN host
	cfgPath string           // the configuration file vtepd was started with
}

// newNodes adds n hosts 198.18.0.<i+1> with containers 198.19.0.<i+1>.
func newNodes(t *testing.T, lab *topo.Lab, n int) []*node {
	t.Helper()
	return newNodesOn(t, lab, n, v4Underlay)
}

// addNodes is the node setup that newNodes, newNodesOn and newDockerNodes
// share: it adds n hosts a, b, c... to lab, host i on underlay(i) with an
// underlay MTU of 1500, each with the one container that ctr(h, i) gives
// it.
func addNodes(t *testing.T, lab *topo.Lab, n int, underlay func(i int) netip.Prefix, ctr func(h *topo.Host, i int) (*topo.Container, error)) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		h := addHost(t, lab, i, underlay)
		c, err := ctr(h, i)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = newNode(t, h, c)
	}
	return nodes
}

// addHost adds host i of addNodes: named a, b, c..., on underlay(i), with
// an underlay MTU of 1500.
func addHost(t *testing.T, lab *topo.Lab, i int, underlay func(i int) netip.Prefix) *topo.Host {
	t.Helper()
	h, err := lab.AddHost(string(rune('a'+i)), underlay(i), 1500)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newNode is the node of host h and its container c.
func newNode(t *testing.T, h *topo.Host, c *topo.Container) *node {
	t.Helper()
	mac, err := c.MAC()
	if err != nil {
		t.Fatal(err)
	}
	return &node{host: h, ctr: c, mac: mac}
}

// peersOf lists the underlay addresses of every node but nodes[i].
func peersOf(nodes []*node, i int) []netip.Addr {
	var peers []netip.Addr
	for j, n := range nodes {
		if j != i {
			peers = append(peers, n.host.Underlay)
		}
	}
	return peers
}

type static struct {
	mac    net.HardwareAddr
	remote netip.Addr
}

// config renders a vtepd configuration for host h: one network, VNI 200
// on br0, learning on, with the given flood list and static entries.
// Tests must not write the host's /var/lib/vtepd: state_dir is off.
func config(h *topo.Host, peers []netip.Addr, statics ...static) string {
	return "state_dir = \"\"\n\n" + configBody(h, peers, statics...)
}

// configBody is config without the top-level keys, for callers that
// write their own first.
func configBody(h *topo.Host, peers []netip.Addr, statics ...static) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[underlay]\nlocal = %q\nport = %d\n\n", h.Underlay, vxlanPort)
	fmt.Fprintf(&b, "[metrics]\nlisten = %q\n\n", metricsAddr)
	fmt.Fprintf(&b, "[[network]]\nname = \"demo\"\nvni = %d\nbridge = \"br0\"\nlearning = true\npeers = [", testVNI)
	for i, p := range peers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n")
	for _, s := range statics {
		fmt.Fprintf(&b, "\n  [[network.static]]\n  mac = %q\n  remote = %q\n", s.mac, s.remote)
	}
	return b.String()
}

// startVtepd writes cfg to a file and runs vtepd with it in h, without
// waiting for readiness. It returns the process and the file's path.
func startVtepd(t *testing.T, h *topo.Host, cfg string) (*topo.Proc, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vtepd-"+h.Name+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(vtepdBin(t), "-config", path)
	if err != nil {
		t.Fatal(err)
	}
	return p, path
}

// runVtepd starts vtepd on n with cfg and waits until it answers /healthz.
func (n *node) runVtepd(t *testing.T, cfg string) {
	t.Helper()
	n.vtepd, n.cfgPath = startVtepd(t, n.host, cfg)
	eventually(t, 10*time.Second, "vtepd on "+n.host.Name+" healthy", func() error {
		if n.vtepd.Exited() {
			code, err := n.vtepd.Wait(0)
			t.Fatalf("vtepd on %s exited (code %d, %v) before becoming healthy:\n%s", n.host.Name, code, err, n.vtepd.Output())
		}
		_, err := n.host.HTTPGet("http://" + metricsAddr + "/healthz")
		return err
	})
}

// setConfig rewrites the file n's vtepd was started with, for a reload.
func (n *node) setConfig(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventually calls f every 50 ms until it returns nil, failing the test
// with f's last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pingEach has every container ping every other one: a reachability wait
// (the first ARP exchange) and then 3 echoes that must all come back.
func pingEach(t *testing.T, nodes []*node) {
	t.Helper()
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			dst := to.ctr.Addr.Addr()
			if err := from.ctr.WaitReachable(dst, 5*time.Second); err != nil {
				t.Fatalf("%s -> %s: %v", from.host.Name, to.host.Name, err)
			}
			if err := from.ctr.Ping(dst, 3, 56, false); err != nil {
				t.Errorf("%s -> %s: %v", from.host.Name, to.host.Name, err)
			}
		}
	}
}

// fdbEntry is one element of vtepd's GET /fdb.
type fdbEntry struct {
	VNI        uint32  `json:"vni"`
	MAC        string  `json:"mac"`
	Remote     string  `json:"remote"`
	Type       string  `json:"type"`
	AgeSeconds float64 `json:"age_seconds"`
}

func getFDB(h *topo.Host) ([]fdbEntry, error) {
	body, err := h.HTTPGet("http://" + metricsAddr + "/fdb")
	if err != nil {
		return nil, err
	}
	var entries []fdbEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("GET /fdb on %s: %w: %s", h.Name, err, body)
	}
	return entries, nil
}

// expectFDB waits until h's /fdb holds exactly one entry for (VNI 200,
// mac), of type typ, pointing at remote.
func expectFDB(t *testing.T, h *topo.Host, mac net.HardwareAddr, typ string, remote netip.Addr) {
	t.Helper()
	eventually(t, 3*time.Second, fmt.Sprintf("/fdb on %s has %s %s -> %s", h.Name, typ, mac, remote), func() error {
		entries, err := getFDB(h)
		if err != nil {
			return err
		}
		var found []fdbEntry
		for _, e := range entries {
			if e.VNI == testVNI && strings.EqualFold(e.MAC, mac.String()) {
				found = append(found, e)
			}
		}
		if len(found) != 1 || found[0].Type != typ || found[0].Remote != remote.String() {
			return fmt.Errorf("entries for %s: %+v; whole table: %+v", mac, found, entries)
		}
		return nil
	})
}

// expectKernelFDB waits until h's vx0 has learned mac at remote.
func expectKernelFDB(t *testing.T, h *topo.Host, mac net.HardwareAddr, remote netip.Addr) {
	t.Helper()
	want := mac.String() + " dst " + remote.String()
	eventually(t, 3*time.Second, "kernel fdb on "+h.Name+" has "+want, func() error {
		out, err := h.KernelFDB()
		if err != nil {
			return err
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("bridge fdb show dev vx0:\n%s", out)
		}
		return nil
	})
}

// sample, parseMetrics and metricValue read vtepd's /metrics through
// internal/promtext (Prometheus's own text parser).
type sample = promtext.Sample

func parseMetrics(text string) ([]sample, error) { return promtext.Parse(text) }

func metricValue(samples []sample, name string, labels ...string) (float64, bool) {
	return promtext.Value(samples, name, labels...)
}

// scrape fetches and parses h's /metrics.
func scrape(h *topo.Host) ([]sample, error) {
	body, err := h.HTTPGet("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(body))
}

// metric scrapes h and returns one value, 0 if the series is absent.
func metric(t *testing.T, h *topo.Host, name string, labels ...string) float64 {
	t.Helper()
	samples, err := scrape(h)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := metricValue(samples, name, labels...)
	return v
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP vtep_drops_total Packets dropped, by reason.
# TYPE vtep_drops_total counter
vtep_drops_total{reason="too_short",vni="unknown"} 5
vtep_drops_total{reason="inner_too_short",vni="200"} 2
vtep_drops_total{reason="bad_flags",vni="200"} 1e+00
vtep_rx_packets_total{vni="200"} 42 1700000000000
odd{a="x\"y\\z",b="2"} 7
plain 3.5
`
	samples, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
		ok     bool
	}{
		{"vtep_drops_total", []string{"reason", "too_short", "vni", "unknown"}, 5, true},
		{"vtep_drops_total", []string{"reason", "inner_too_short"}, 2, true},
		{"vtep_drops_total", []string{"vni", "200"}, 3, true},
		{"vtep_drops_total", nil, 8, true},
		{"vtep_drops_total", []string{"reason", "unknown_vni"}, 0, false},
		{"vtep_rx_packets_total", []string{"vni", "200"}, 42, true},
		{"odd", []string{"a", `x"y\z`, "b", "2"}, 7, true},
		{"plain", nil, 3.5, true},
		{"vtep_rx", nil, 0, false},
	} {
		got, ok := metricValue(samples, tc.name, tc.labels...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("metricValue(%s, %q) = %v, %v; want %v, %v", tc.name, tc.labels, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"novalue", `x{a="1} 2`, `x{a} 2`, "x abc"} {
		if _, err := parseMetrics(bad); err == nil {
			t.Errorf("parseMetrics(%q) succeeded", bad)
		}
	}
}

// TestIntegrationVtepdToVtepd: the Docker experiment with vtepd on both
// hosts instead of the kernel's vxlan.
func TestIntegrationVtepdToVtepd(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vvv")
	nodes := newNodes(t, lab, 2)
	for i, n := range nodes {
		n.runVtepd(t, config(n.host, peersOf(nodes, i)))
	}
	pingEach(t, nodes)
	for i, n := range nodes {
		other := nodes[1-i]
		expectFDB(t, n.host, other.mac, "learned", other.host.Underlay)
		for _, name := range []string{"vtep_rx_packets_total", "vtep_tx_packets_total", "vtep_rx_bytes_total", "vtep_tx_bytes_total"} {
			if v := metric(t, n.host, name, "vni", "200"); v <= 0 {
				t.Errorf("%s: %s{vni=\"200\"} = %v, want > 0", n.host.Name, name, v)
			}
		}
	}
}

// TestIntegrationKernelInterop: vtepd on host a, the kernel's vxlan on b.
func TestIntegrationKernelInterop(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vki")
	nodes := newNodes(t, lab, 2)
	a, b := nodes[0], nodes[1]
	if err := b.host.AddKernelVXLAN(testVNI, vxlanPort, a.host.Underlay); err != nil {
		t.Fatal(err)
	}
	a.runVtepd(t, config(a.host, []netip.Addr{b.host.Underlay}))
	pingEach(t, nodes)
	expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)
	expectKernelFDB(t, b.host, a.mac, a.host.Underlay)
}

// TestIntegrationThreeHostsFlood: three VTEPs with full flood lists; every
// ARP request must reach both other hosts by head-end replication. The
// mixed fabric puts the kernel's vxlan on the third host.
func TestIntegrationThreeHostsFlood(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		kernel []bool // per host: kernel VXLAN instead of vtepd
	}{
		{"all-vtepd", []bool{false, false, false}},
		{"mixed", []bool{false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := topo.NewT(t, "vfl")
			nodes := newNodes(t, lab, 3)
			for i, n := range nodes {
				if tc.kernel[i] {
					if err := n.host.AddKernelVXLAN(testVNI, vxlanPort, peersOf(nodes, i)...); err != nil {
						t.Fatal(err)
					}
				} else {
					n.runVtepd(t, config(n.host, peersOf(nodes, i)))
				}
			}
			pingEach(t, nodes)
			for i, n := range nodes {
				for j, other := range nodes {
					if i == j {
						continue
					}
					if n.vtepd == nil {
						expectKernelFDB(t, n.host, other.mac, other.host.Underlay)
					} else {
						expectFDB(t, n.host, other.mac, "learned", other.host.Underlay)
					}
				}
				if n.vtepd != nil {
					if v := metric(t, n.host, "vtep_flood_packets_total", "vni", "200"); v <= 0 {
						t.Errorf("%s: vtep_flood_packets_total{vni=\"200\"} = %v, want > 0", n.host.Name, v)
					}
				}
			}
		})
	}
}

// TestIntegrationMTU: a full-size inner packet (container MTU 1450 over an
// underlay of 1500) crosses with DF set, and the TAP is sized to match.
func TestIntegrationMTU(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vmt")
	nodes := newNodes(t, lab, 2)
	for i, n := range nodes {
		n.runVtepd(t, config(n.host, peersOf(nodes, i)))
	}
	for _, n := range nodes {
		attrs, err := n.host.Link(tapName)
		if err != nil {
			t.Fatal(err)
		}
		if attrs.MTU != n.host.VXLANMTU() {
			t.Errorf("%s: %s MTU = %d, want %d", n.host.Name, tapName, attrs.MTU, n.host.VXLANMTU())
		}
	}
	const maxPayload = innerMTU - 20 - 8 // IPv4 and ICMP headers: 1422
	for i, n := range nodes {
		dst := nodes[1-i].ctr.Addr.Addr()
		if err := n.ctr.WaitReachable(dst, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := n.ctr.Ping(dst, 3, maxPayload, true); err != nil {
			t.Errorf("full-size packet with DF: %v", err)
		}
	}
	// One byte more does not fit the container's own MTU: ping fails
	// before anything reaches the bridge.
	if err := nodes[0].ctr.Ping(nodes[1].ctr.Addr.Addr(), 1, maxPayload+1, true); err == nil {
		t.Errorf("ping -M do -s %d succeeded over a %d-byte MTU", maxPayload+1, innerMTU)
	}
}

// vxlanHeader returns an RFC 7348 header: flags, 24 reserved bits, VNI,
// 8 reserved bits.
func vxlanHeader(flags byte, vni uint32) []byte {
	h := make([]byte, 8)
	h[0] = flags
	binary.BigEndian.PutUint32(h[4:], vni<<8)
	return h
}

// TestIntegrationMalformed: datagrams that fail each receive check are
// dropped and counted by reason, exactly once each, and forwarding goes on.
func TestIntegrationMalformed(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vmf")
	nodes := newNodes(t, lab, 2)
	a, b := nodes[0], nodes[1]
	for i, n := range nodes {
		n.runVtepd(t, config(n.host, peersOf(nodes, i)))
	}
	pingEach(t, nodes)

	// A minimal Ethernet frame between two made-up, locally administered
	// MACs, with the IEEE local experimental EtherType.
	frame := make([]byte, 60)
	copy(frame, []byte{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5})
	const iFlag = 0x08
	cases := []struct {
		reason, vni string
		datagram    []byte
	}{
		{"too_short", "unknown", []byte{iFlag, 0, 0, 0}},
		{"bad_flags", "unknown", append(vxlanHeader(0x00, testVNI), frame[:14]...)},
		{"unknown_vni", "unknown", append(vxlanHeader(iFlag, 999), frame...)},
		{"inner_too_short", "200", append(vxlanHeader(iFlag, testVNI), frame[:5]...)},
	}
	const n = 5
	before := make([]float64, len(cases))
	samples, err := scrape(a.host)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		before[i], _ = metricValue(samples, "vtep_drops_total", "reason", c.reason, "vni", c.vni)
	}

	// Sent from b's underlay address, as a misbehaving peer would.
	err = b.host.Do(func() error {
		conn, err := net.DialUDP("udp4",
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.host.Underlay, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.host.Underlay, vxlanPort)))
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, c := range cases {
			for range n {
				if _, err := conn.Write(c.datagram); err != nil {
					return fmt.Errorf("%s: %w", c.reason, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var got []float64
	eventually(t, 3*time.Second, "drop counters", func() error {
		samples, err := scrape(a.host)
		if err != nil {
			return err
		}
		got = got[:0]
		var diffs []string
		for i, c := range cases {
			v, _ := metricValue(samples, "vtep_drops_total", "reason", c.reason, "vni", c.vni)
			got = append(got, v-before[i])
			if v-before[i] != n {
				diffs = append(diffs, fmt.Sprintf("vtep_drops_total{reason=%q,vni=%q} rose by %v, want %d", c.reason, c.vni, v-before[i], n))
			}
		}
		if len(diffs) > 0 {
			return errors.New(strings.Join(diffs, "; "))
		}
		return nil
	})
	pingEach(t, nodes)
}

// TestIntegrationSIGTERM: vtepd exits 0 on SIGTERM and takes its TAP along.
func TestIntegrationSIGTERM(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vst")
	h, err := lab.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := startVtepd(t, h, config(h, []netip.Addr{netip.MustParseAddr("198.18.0.2")}))
	eventually(t, 5*time.Second, tapName+" created", func() error {
		if p.Exited() {
			t.Fatalf("vtepd exited early:\n%s", p.Output())
		}
		if !h.LinkExists(tapName) {
			return errors.New("no such link")
		}
		return nil
	})
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(5 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit code %d, %v; want 0\n%s", code, err, p.Output())
	}
	if h.LinkExists(tapName) {
		t.Errorf("%s still exists after vtepd exited", tapName)
	}
}

// TestIntegrationBadConfig: each mistake makes vtepd exit non-zero at once
// with one line naming it, and leaves no TAP behind.
func TestIntegrationBadConfig(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vbc")
	h, err := lab.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	const underlay = "[underlay]\nlocal = \"198.18.0.1\"\n\n[metrics]\nlisten = \"127.0.0.1:9476\"\n\n"
	const network = "[[network]]\nvni = 200\nbridge = \"br0\"\npeers = [\"198.18.0.2\"]\n"
	for _, tc := range []struct {
		name   string
		config string
		all    []string // every one must appear in stderr
		any    []string // and one of these, if any
		before func(t *testing.T)
	}{
		{
			name:   "unknown key",
			config: "[underlay]\nlocal = \"198.18.0.1\"\nlocl = \"198.18.0.1\"\n\n" + network,
			all:    []string{"locl", "line"},
		},
		{
			name:   "vni out of range",
			config: underlay + "[[network]]\nvni = 16777216\nbridge = \"br0\"\npeers = [\"198.18.0.2\"]\n",
			all:    []string{"vni"},
		},
		{
			name:   "duplicate vni",
			config: underlay + network + "\n[[network]]\nvni = 200\nbridge = \"br0\"\ntap = \"vtep200b\"\npeers = [\"198.18.0.2\"]\n",
			all:    []string{"vni"},
		},
		{
			name:   "unparsable peer",
			config: underlay + "[[network]]\nvni = 200\nbridge = \"br0\"\npeers = [\"198.18.0.300\"]\n",
			all:    []string{"peers"},
		},
		{
			name:   "missing bridge",
			config: underlay + "[[network]]\nvni = 200\nbridge = \"nosuchbr\"\npeers = [\"198.18.0.2\"]\n",
			all:    []string{"nosuchbr"},
		},
		{
			name:   "port in use",
			config: underlay + network,
			any:    []string{"4789", "in use"},
			before: func(t *testing.T) {
				var conn net.PacketConn
				err := h.Do(func() error {
					var err error
					conn, err = net.ListenPacket("udp4", "198.18.0.1:4789")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			p, _ := startVtepd(t, h, tc.config)
			code, err := p.Wait(5 * time.Second)
			if err != nil {
				t.Fatalf("%v\n%s", err, p.Output())
			}
			stderr := p.Stderr()
			if code == 0 {
				t.Errorf("exit code 0, want non-zero; stderr:\n%s", stderr)
			}
			for _, s := range tc.all {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if len(tc.any) > 0 && !containsAny(stderr, tc.any) {
				t.Errorf("stderr has none of %q:\n%s", tc.any, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, stderr)
			}
			for _, tap := range []string{tapName, "vtep200b"} {
				if h.LinkExists(tap) {
					t.Errorf("%s left behind", tap)
				}
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestIntegrationFDBStatic: a static entry is listed as such and traffic
// from its MAC does not turn it into a learned one.
func TestIntegrationFDBStatic(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vfs")
	nodes := newNodes(t, lab, 2)
	a, b := nodes[0], nodes[1]
	a.runVtepd(t, config(a.host, peersOf(nodes, 0), static{mac: b.mac, remote: b.host.Underlay}))
	b.runVtepd(t, config(b.host, peersOf(nodes, 1)))
	expectFDB(t, a.host, b.mac, "static", b.host.Underlay)

	pingEach(t, nodes)
	expectFDB(t, a.host, b.mac, "static", b.host.Underlay)
	expectFDB(t, b.host, a.mac, "learned", a.host.Underlay)
	if v := metric(t, a.host, "vtep_fdb_entries", "type", "static", "vni", "200"); v != 1 {
		t.Errorf(`a: vtep_fdb_entries{type="static",vni="200"} = %v, want 1`, v)
	}
}
