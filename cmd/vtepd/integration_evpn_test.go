//go:build linux

package main

// The control plane on BGP EVPN, end to end, against real FRR (zebra and
// bgpd from Debian's frr, in a lab host's namespace, with a kernel VXLAN
// device of its own) and a real gobgpd: the configurations of both vtepd
// and FRR are read from README.md's "BGP EVPN" section, so that what the
// README shows is what runs here.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/internal/frrtest"
	"github.com/vtepd/vtepd/internal/topo"
)

// readmeBlock returns the first fenced code block after marker in
// README.md.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md: no %q", marker)
	}
	s = s[i:]
	start := strings.Index(s, "```")
	if start < 0 {
		t.Fatalf("README.md: no code block after %q", marker)
	}
	s = s[start:]
	s = s[strings.IndexByte(s, '\n')+1:]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatalf("README.md: code block after %q not closed", marker)
	}
	return s[:end]
}

// frrAddr is the FRR host's underlay address, as README.md's
// configurations name it; the vtepd hosts are 198.18.0.1 and up.
var frrAddr = netip.MustParseAddr("198.18.0.4")

const frrVXLAN = "vx200"

// evpnLab is a lab whose vtepds peer with FRR on host f, which is a VTEP
// of its own (kernel VXLAN, one container) and their route reflector.
type evpnLab struct {
	*controlLab
	f      *topo.Host
	fctr   *topo.Container
	fmac   net.HardwareAddr
	frr    *frrtest.FRR
	vtepdC string // README's vtepd configuration
}

func newEVPNLab(t *testing.T, prefix string, n int) *evpnLab {
	t.Helper()
	el := &evpnLab{controlLab: &controlLab{lab: topo.NewT(t, prefix)}}
	el.vtepdC = readmeBlock(t, "## BGP EVPN")
	zebraConf := readmeBlock(t, "<!-- evpn-frr-zebra.conf -->")
	bgpdConf := readmeBlock(t, "<!-- evpn-frr-bgpd.conf -->")
	el.nodes = newNodes(t, el.lab, n)
	dir := t.TempDir()
	for _, nd := range el.nodes {
		el.socks = append(el.socks, filepath.Join(dir, nd.host.Name+".sock"))
	}
	f, err := el.lab.AddHost("f", netip.PrefixFrom(frrAddr, 24), 1500)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddKernelVXLANWith(topo.KernelVXLAN{VNI: testVNI, Port: vxlanPort, Name: frrVXLAN, NoLearning: true}); err != nil {
		t.Fatal(err)
	}
	if el.fctr, err = f.AddContainer("c1", netip.MustParsePrefix("198.19.0.4/24"), f.VXLANMTU()); err != nil {
		t.Fatal(err)
	}
	if el.fmac, err = el.fctr.MAC(); err != nil {
		t.Fatal(err)
	}
	el.f = f
	el.frr = frrtest.StartFRR(t, f.NS, zebraConf, bgpdConf)
	return el
}

// config is README's vtepd configuration for node i: its own local
// address, plus a private admin socket and no state directory.
func (el *evpnLab) config(i int) string {
	h := el.nodes[i].host
	body := strings.Replace(el.vtepdC, `local = "198.18.0.1"`, fmt.Sprintf("local = %q", h.Underlay), 1)
	return fmt.Sprintf("state_dir = \"\"\n[admin]\nsocket = %q\n", el.socks[i]) + body
}

func (el *evpnLab) run(t *testing.T, i int) { el.nodes[i].runVtepd(t, el.config(i)) }

// frrFDB is `bridge fdb show dev vx200` on the FRR host.
func (el *evpnLab) frrFDB(t *testing.T) string {
	t.Helper()
	out, err := el.f.KernelFDBOf(frrVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// frrHas reports whether FRR's kernel FDB has a line with all of parts.
func frrHas(fdb string, parts ...string) bool {
	for _, line := range strings.Split(fdb, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok && line != "" {
			return true
		}
	}
	return false
}

// expectFRR waits until FRR's kernel FDB has (want) or has not a line
// with all of parts.
func (el *evpnLab) expectFRR(t *testing.T, want bool, within time.Duration, parts ...string) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("FRR's %s has %q: %v", frrVXLAN, parts, want), func() error {
		fdb := el.frrFDB(t)
		if frrHas(fdb, parts...) != want {
			return fmt.Errorf("bridge fdb show dev %s:\n%s", frrVXLAN, fdb)
		}
		return nil
	})
}

// announceFRR makes FRR's container speak, so that its bridge (and zebra)
// learns its MAC.
func (el *evpnLab) announceFRR() {
	el.fctr.Exec("ping", "-n", "-c", "1", "-W", "0.3", "198.19.0.250")
}

// expectNoRoute waits until node i has no entry for mac.
func (el *evpnLab) expectNoRoute(t *testing.T, i int, mac net.HardwareAddr, within time.Duration) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%s has no entry for %s", el.nodes[i].host.Name, mac), func() error {
		if en, ok := el.fdbOf(t, i, mac); ok {
			return fmt.Errorf("entry %+v", en)
		}
		return nil
	})
}

func (el *evpnLab) control(t *testing.T, i int) *admin.ControlStatus {
	t.Helper()
	return el.call(t, i, admin.Request{Cmd: admin.CmdControl}).Control
}

// expectSessions waits until node i's session with FRR is established.
func (el *evpnLab) expectSession(t *testing.T, i int, within time.Duration) {
	t.Helper()
	eventually(t, within, el.nodes[i].host.Name+"'s session with FRR up", func() error {
		c := el.control(t, i)
		if len(c.Sessions) != 1 || !c.Sessions[0].Up || c.Sessions[0].State != "established" || !c.Connected {
			return fmt.Errorf("%+v", c.Sessions)
		}
		return nil
	})
}

// TestIntegrationEVPN: two vtepds and FRR, which is a VTEP too and the
// vtepds' route reflector, with learning off everywhere. FRR installs our
// type-3 and type-2 routes into its kernel VXLAN device and shows them
// with our route target and encapsulation; the vtepds install FRR's
// container and each other's (through the reflector) as control entries;
// pings go every way. A MAC that moves between the vtepds carries a higher
// MAC mobility sequence number. FRR restarted: the sessions come back,
// and so does everything. A vtepd stopped, then one killed: FRR and the
// other withdraw what it advertised.
func TestIntegrationEVPN(t *testing.T) {
	t.Parallel()
	el := newEVPNLab(t, "vev", 2)
	a, b := el.nodes[0], el.nodes[1]
	for i := range el.nodes {
		el.run(t, i)
	}
	for i := range el.nodes {
		el.expectSession(t, i, 10*time.Second)
		el.announce(t, i)
	}
	el.announceFRR()

	// FRR's side: a flood entry for each vtepd (our type-3 routes), our
	// containers as extern_learn (our type-2 routes), and the routes in
	// bgpd with our route target and the VXLAN encapsulation.
	for _, nd := range el.nodes {
		el.expectFRR(t, true, 5*time.Second, "00:00:00:00:00:00", "dst "+nd.host.Underlay.String())
		el.expectFRR(t, true, 5*time.Second, nd.mac.String(), "dst "+nd.host.Underlay.String(), "extern_learn")
	}
	out, err := el.frr.Vtysh("show bgp l2vpn evpn route")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Route Distinguisher: 198.18.0.1:200", "[3]:[0]:[32]:[198.18.0.1]",
		"[2]:[0]:[48]:[" + a.mac.String() + "]", "RT:65000:200 ET:8",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show bgp l2vpn evpn route: no %q:\n%s", want, out)
		}
	}

	// Ours: FRR's container and the other vtepd's, through the reflector,
	// as control entries; FRR and the other vtepd in the flood list.
	for i := range el.nodes {
		el.expectRoute(t, i, el.fmac, frrAddr, 5*time.Second)
		other := el.nodes[1-i]
		el.expectRoute(t, i, other.mac, other.host.Underlay, 5*time.Second)
	}
	expectFDB(t, a.host, el.fmac, "control", frrAddr) // GET /fdb
	nodes := append(slices.Clone(el.nodes), &node{host: el.f, ctr: el.fctr, mac: el.fmac})
	pingEach(t, nodes)

	// vtepctl control -j and the metrics.
	c := el.control(t, 0)
	if c.Backend != "evpn" || c.Sessions[0].Neighbor != frrAddr.String() || c.Sessions[0].ASN != 65000 ||
		c.RoutesReceived["3"] != 2 || c.RoutesReceived["2"] < 2 || c.RoutesAdvertised["3"] != 1 || c.RoutesAdvertised["2"] < 1 {
		t.Errorf("vtepctl control on a: %+v", c)
	}
	metrics, err := a.host.HTTPGet("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vtep_control_connected 1", "vtep_control_sessions_up 1",
		`vtep_control_routes_received{type="3"} 2`, `vtep_control_routes_advertised{type="3"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics on a: no %q", want)
		}
	}

	// MAC mobility: b's container goes quiet and a's takes its MAC; a
	// advertises it with sequence number 1, b withdraws its own route.
	moved := b.mac
	if out, err := b.ctr.Exec("ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := a.ctr.SetMAC(moved); err != nil {
		t.Fatal(err)
	}
	el.announce(t, 0)
	el.expectFRR(t, true, 5*time.Second, moved.String(), "dst "+a.host.Underlay.String(), "extern_learn")
	el.expectRoute(t, 1, moved, a.host.Underlay, 5*time.Second)
	eventually(t, 5*time.Second, "FRR has the moved MAC with MM:1", func() error {
		out, err := el.frr.Vtysh("show bgp l2vpn evpn route type macip")
		if err != nil {
			return err
		}
		re := regexp.MustCompile(`(?s)\[` + regexp.QuoteMeta(moved.String()) + `\]\n\s+198\.18\.0\.1[^\n]*\n[^\n]*MM:1`)
		if !re.MatchString(out) {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	if err := a.ctr.SetMAC(a.mac); err != nil {
		t.Fatal(err)
	}
	if out, err := b.ctr.Exec("ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	// FRR restarted: the sessions come back and so do the routes.
	el.frr.Stop()
	el.expectNoRoute(t, 0, el.fmac, 5*time.Second)
	start := time.Now()
	el.frr.Start()
	el.expectRoute(t, 0, el.fmac, frrAddr, 20*time.Second)
	el.expectFRR(t, true, 10*time.Second, "00:00:00:00:00:00", "dst "+a.host.Underlay.String())
	el.expectFRR(t, true, 10*time.Second, a.mac.String(), "dst "+a.host.Underlay.String(), "extern_learn")
	t.Logf("FRR restarted: a has FRR's container and FRR a's again after %v", time.Since(start).Round(time.Millisecond))
	el.expectSession(t, 1, 10*time.Second)

	// FRR's bgpd frozen: its sessions stay open but silent, and what it
	// taught goes when the hold time (9 s) runs out.
	el.announceFRR()
	el.expectRoute(t, 0, el.fmac, frrAddr, 5*time.Second)
	start = time.Now()
	el.frr.SignalBGPD(syscall.SIGSTOP)
	el.expectNoRoute(t, 0, el.fmac, 15*time.Second)
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("FRR's routes withdrawn after %v, before the hold time", d)
	} else {
		t.Logf("FRR frozen: its routes withdrawn after %v (hold time 9 s)", d.Round(time.Millisecond))
	}
	el.frr.SignalBGPD(syscall.SIGCONT)
	for i := range el.nodes {
		el.expectSession(t, i, 20*time.Second)
	}
	el.expectRoute(t, 0, el.fmac, frrAddr, 10*time.Second)
	el.expectFRR(t, true, 10*time.Second, "00:00:00:00:00:00", "dst "+b.host.Underlay.String())

	// A clean stop withdraws everything at once (a Cease).
	start = time.Now()
	b.vtepd.Signal(syscall.SIGTERM)
	gone := func(vtep netip.Addr) func() bool {
		return func() bool { return !frrHas(el.frrFDB(t), "dst "+vtep.String()) }
	}
	poll(t, "FRR withdraws b", gone(b.host.Underlay))
	t.Logf("withdrawn from FRR's kernel FDB on a clean stop after %v", time.Since(start).Round(time.Millisecond))
	el.expectNoRoute(t, 0, b.mac, 5*time.Second)
	if code, err := b.vtepd.Wait(10 * time.Second); err != nil || code != 0 {
		t.Errorf("vtepd on b: exit %d, %v", code, err)
	}

	// SIGKILL: the kernel closes the session's socket, and FRR withdraws.
	start = time.Now()
	a.vtepd.Signal(syscall.SIGKILL)
	poll(t, "FRR withdraws a", gone(a.host.Underlay))
	t.Logf("withdrawn from FRR's kernel FDB on SIGKILL after %v", time.Since(start).Round(time.Millisecond))
}

// gobgpdConf is gobgpd's configuration: AS 65000, one iBGP neighbor (the
// vtepd at 198.18.0.1), l2vpn evpn.
const gobgpdConf = `[global.config]
  as = 65000
  router-id = "198.18.0.5"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.18.0.1"
    peer-as = 65000
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
`

// TestIntegrationEVPNGoBGP: a second implementation reads vtepd's routes
// (Debian's gobgpd, with gobgp global rib -a evpn), and plays a hostile
// peer: routes for a VNI we do not serve, without the VNI's route target,
// for a group MAC, or with an IPv6 next hop are counted and ignored; the
// good ones are installed.
func TestIntegrationEVPNGoBGP(t *testing.T) {
	t.Parallel()
	cl := &controlLab{lab: topo.NewT(t, "vgb")}
	cl.nodes = newNodes(t, cl.lab, 1)
	cl.socks = []string{filepath.Join(t.TempDir(), "a.sock")}
	g, err := cl.lab.AddHost("g", netip.MustParsePrefix("198.18.0.5/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	gobgp := frrtest.StartGoBGP(t, g.NS, gobgpdConf)
	a := cl.nodes[0]
	cfg := fmt.Sprintf("state_dir = \"\"\n[admin]\nsocket = %q\n", cl.socks[0]) + strings.Replace(configBody(a.host, nil), "learning = true", "learning = false\nageing = \"5s\"", 1) +
		"[control]\nbackend = \"evpn\"\nasn = 65000\n[[control.neighbor]]\naddress = \"198.18.0.5\"\n" +
		"[[control.neighbor]]\naddress = \"198.18.0.9\"\n" // nobody: reconnects back off
	a.runVtepd(t, cfg)
	cl.announce(t, 0)

	// gobgp decodes our type-3 route (PMSI ingress replication, label
	// 200, our address as tunnel endpoint) and our MAC's type-2 route
	// (label 200), both with our route target and VXLAN encapsulation.
	eventually(t, 10*time.Second, "gobgp global rib -a evpn has vtepd's routes", func() error {
		out, err := gobgp.Client("global", "rib", "-a", "evpn")
		if err != nil {
			return err
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`\[type:multicast\]\[rd:198\.18\.0\.1:200\]\[etag:0\]\[ip:198\.18\.0\.1\]\s+198\.18\.0\.1 .*\[VXLAN\].*65000:200|` +
				`\[type:multicast\]\[rd:198\.18\.0\.1:200\]\[etag:0\]\[ip:198\.18\.0\.1\]\s+198\.18\.0\.1 .*65000:200.*\[VXLAN\]`),
			regexp.MustCompile(`\[type:multicast\]\[rd:198\.18\.0\.1:200\].*\{Pmsi: type: ingress-repl, label: 200, tunnel-id: 198\.18\.0\.1\}`),
			regexp.MustCompile(`\[type:macadv\]\[rd:198\.18\.0\.1:200\]\[etag:0\]\[mac:` + regexp.QuoteMeta(a.mac.String()) + `\]\[ip:<nil>\]\s+\[200\]\s+198\.18\.0\.1 .*65000:200`),
		} {
			if !want.MatchString(out) {
				return fmt.Errorf("no %s in:\n%s", want, out)
			}
		}
		return nil
	})

	// Good routes from gobgpd: a MAC and a VTEP.
	good := "02:00:00:00:00:05"
	add := func(args ...string) {
		t.Helper()
		if out, err := gobgp.Client(append([]string{"global", "rib", "-a", "evpn", "add"}, args...)...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	add("macadv", good, "198.19.0.5", "etag", "0", "label", "200", "rd", "198.18.0.5:200", "rt", "65000:200", "encap", "vxlan", "nexthop", "198.18.0.5")
	add("multicast", "198.18.0.5", "etag", "0", "rd", "198.18.0.5:200", "rt", "65000:200", "encap", "vxlan", "pmsi", "ingress-repl", "200", "198.18.0.5", "nexthop", "198.18.0.5")
	cl.expectRoute(t, 0, mustMAC(good), netip.MustParseAddr("198.18.0.5"), 5*time.Second)
	eventually(t, 5*time.Second, "a's flood list and neighbours have gobgpd's", func() error {
		if n := cl.neighOf(t, 0, "control"); n["198.19.0.5"] != good {
			return fmt.Errorf("neigh %v", n)
		}
		c := cl.call(t, 0, admin.Request{Cmd: admin.CmdControl}).Control
		if len(c.Entries) != 1 || c.Entries[0].RemoteVTEPs != 1 {
			return fmt.Errorf("control %+v", c.Entries)
		}
		return nil
	})

	// Hostile ones: each is counted under its reason, and installs
	// nothing.
	add("macadv", "02:00:00:00:00:06", "0.0.0.0", "etag", "0", "label", "999", "rd", "198.18.0.5:999", "rt", "65000:999", "encap", "vxlan", "nexthop", "198.18.0.5")
	add("macadv", "02:00:00:00:00:07", "0.0.0.0", "etag", "0", "label", "200", "rd", "198.18.0.5:201", "rt", "65000:7", "encap", "vxlan", "nexthop", "198.18.0.5")
	add("macadv", "01:00:5e:00:00:08", "0.0.0.0", "etag", "0", "label", "200", "rd", "198.18.0.5:202", "rt", "65000:200", "encap", "vxlan", "nexthop", "198.18.0.5")
	add("macadv", "02:00:00:00:00:09", "0.0.0.0", "etag", "0", "label", "200", "rd", "198.18.0.5:203", "rt", "65000:200", "encap", "vxlan", "nexthop", "2001:db8::5")
	eventually(t, 5*time.Second, "a counts the hostile routes", func() error {
		c := cl.call(t, 0, admin.Request{Cmd: admin.CmdControl}).Control
		for _, r := range []string{"unknown_vni", "wrong_rt", "group_mac", "wrong_family"} {
			if c.Errors[r] < 1 {
				return fmt.Errorf("errors %v", c.Errors)
			}
		}
		return nil
	})
	for _, m := range []string{"02:00:00:00:00:06", "02:00:00:00:00:07", "01:00:5e:00:00:08", "02:00:00:00:00:09"} {
		if en, ok := cl.fdbOf(t, 0, mustMAC(m)); ok {
			t.Errorf("hostile route for %s installed: %+v", m, en)
		}
	}
	metrics, err := a.host.HTTPGet("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`vtep_control_errors_total{reason="wrong_rt"} 1`, `vtep_control_errors_total{reason="unknown_vni"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics: no %s", want)
		}
	}

	// A local MAC that ages out (ageing 5 s) is withdrawn.
	macRoute := func(want bool, within time.Duration) {
		t.Helper()
		eventually(t, within, fmt.Sprintf("gobgpd has a's MAC: %v", want), func() error {
			out, err := gobgp.Client("global", "rib", "-a", "evpn")
			if err != nil {
				return err
			}
			if strings.Contains(out, "[mac:"+a.mac.String()+"][ip:<nil>]") != want {
				return fmt.Errorf("%s", out)
			}
			return nil
		})
	}
	cl.announce(t, 0)
	macRoute(true, 5*time.Second)
	start := time.Now()
	macRoute(false, 15*time.Second)
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("a's MAC withdrawn after %v, before it aged", d)
	}

	// A network that leaves the control plane by a reload has its
	// routes withdrawn, and advertised again when it comes back.
	ourRoutes := func(want bool) {
		t.Helper()
		eventually(t, 5*time.Second, fmt.Sprintf("gobgpd has vtepd's routes: %v", want), func() error {
			out, err := gobgp.Client("global", "rib", "-a", "evpn")
			if err != nil {
				return err
			}
			if strings.Contains(out, "[rd:198.18.0.1:200]") != want {
				return fmt.Errorf("%s", out)
			}
			return nil
		})
	}
	a.setConfig(t, strings.Replace(cfg, "learning = false", "learning = false\ncontrol = false", 1))
	a.vtepd.Signal(syscall.SIGHUP)
	ourRoutes(false)
	a.setConfig(t, cfg)
	a.vtepd.Signal(syscall.SIGHUP)
	ourRoutes(true)

	// The neighbor nobody answers for is retried less and less often;
	// gobgpd's session is not disturbed.
	eventually(t, 15*time.Second, "a backs off from 198.18.0.9", func() error {
		c := cl.call(t, 0, admin.Request{Cmd: admin.CmdControl}).Control
		if len(c.Sessions) != 2 || c.Sessions[1].ConnectRetry < 2 || c.Sessions[1].Up || !c.Sessions[0].Up || c.Sessions[0].ConnectRetry != 1 {
			return fmt.Errorf("sessions %+v", c.Sessions)
		}
		return nil
	})

	// A withdrawal removes the good route.
	if out, err := gobgp.Client("global", "rib", "-a", "evpn", "del", "macadv", good, "198.19.0.5", "etag", "0", "label", "200", "rd", "198.18.0.5:200"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 5*time.Second, "gobgpd's MAC withdrawn from a", func() error {
		if en, ok := cl.fdbOf(t, 0, mustMAC(good)); ok {
			return fmt.Errorf("entry %+v", en)
		}
		return nil
	})
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// TestIntegrationEVPNConvergence measures how long a MAC that appears on
// one side takes to be installed on the other: a frame from a new MAC on
// vtepd's bridge until FRR's kernel FDB has it (extern_learn), and a frame
// from a new MAC on FRR's bridge until vtepd's FDB has it (control). Each
// is also measured from the moment the sending host's own bridge has
// learned the MAC, which takes out the time the test takes to start ping
// in the container. It logs p50 and p99 of VTEPD_EVPN_SAMPLES samples each
// way (default 30, where p99 is the largest).
func TestIntegrationEVPNConvergence(t *testing.T) {
	t.Parallel()
	el := newEVPNLab(t, "vec", 1)
	el.run(t, 0)
	el.expectSession(t, 0, 10*time.Second)
	n := 30
	if s := os.Getenv("VTEPD_EVPN_SAMPLES"); s != "" {
		fmt.Sscan(s, &n)
	}
	a := el.nodes[0]
	fresh := func(i int, side byte) net.HardwareAddr {
		return net.HardwareAddr{0x02, 0xee, side, byte(i >> 8), byte(i), 0x01}
	}
	// bridged reports whether h's br0 has learned m on a port.
	bridged := func(h *topo.Host, m net.HardwareAddr) bool {
		out, _ := h.Exec("bridge", "fdb", "show", "br", "br0")
		return frrHas(string(out), m.String(), "master br0")
	}
	// measure sends a frame from c with the MAC m and returns the time
	// until its bridge has it and until the other side has installed it.
	measure := func(c *topo.Container, m net.HardwareAddr, installed func() bool) (local, remote time.Duration) {
		if err := c.SetMAC(m); err != nil {
			t.Fatal(err)
		}
		// The ping runs meanwhile: its first frame (an ARP request from
		// the new MAC) is what counts, not its wait for an answer.
		start := time.Now()
		go c.Exec("ping", "-n", "-c", "1", "-W", "0.05", "198.19.0.250")
		poll(t, fmt.Sprintf("%s's bridge has %s", c.Host.Name, m), func() bool { return bridged(c.Host, m) })
		local = time.Since(start)
		poll(t, fmt.Sprintf("%s installed on the other side", m), installed)
		return local, time.Since(start)
	}
	// The first MAC each way is a warm-up, not counted: it once took a
	// second from FRR's side.
	var toFRR, toVtepd, toFRRAfter, toVtepdAfter []time.Duration
	for i := range n + 1 {
		m := fresh(i, 1)
		l, r := measure(a.ctr, m, func() bool { return frrHas(el.frrFDB(t), m.String(), "extern_learn") })
		if i > 0 {
			toFRR, toFRRAfter = append(toFRR, r), append(toFRRAfter, r-l)
		}
		m2 := fresh(i, 2)
		l, r = measure(el.fctr, m2, func() bool {
			en, ok := el.fdbOf(t, 0, m2)
			return ok && en.Type == "control"
		})
		if i > 0 {
			toVtepd, toVtepdAfter = append(toVtepd, r), append(toVtepdAfter, r-l)
		}
	}
	pct := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p))].Round(100 * time.Microsecond)
	}
	t.Logf("MAC on vtepd's bridge -> FRR's kernel FDB: p50 %v, p99 %v from the ping's start; p50 %v, p99 %v from the bridge's learning it (n=%d)",
		pct(toFRR, 0.5), pct(toFRR, 0.99), pct(toFRRAfter, 0.5), pct(toFRRAfter, 0.99), n)
	t.Logf("MAC on FRR's bridge -> vtepd's FDB: p50 %v, p99 %v from the ping's start; p50 %v, p99 %v from the bridge's learning it (n=%d)",
		pct(toVtepd, 0.5), pct(toVtepd, 0.99), pct(toVtepdAfter, 0.5), pct(toVtepdAfter, 0.99), n)
}

// poll calls f every 2 ms until it is true, for 5 s at most: eventually's
// 50 ms would be the measure's resolution.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
