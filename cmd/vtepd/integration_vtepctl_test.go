//go:build linux

package main

import (
	"encoding/json"
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

	"github.com/vtepd/vtepd/internal/topo"
)

var (
	ctlOnce sync.Once
	ctlPath string
	ctlErr  error
)

// vtepctlBin builds cmd/vtepctl next to the daemon on first use.
func vtepctlBin(t testing.TB) string {
	t.Helper()
	ctlOnce.Do(func() {
		ctlPath = filepath.Join(buildDir, "vtepctl")
		if out, err := exec.Command("go", "build", "-o", ctlPath, "../vtepctl").CombinedOutput(); err != nil {
			ctlErr = fmt.Errorf("go build vtepctl: %v\n%s", err, out)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	return ctlPath
}

// ctl runs vtepctl against socket and returns stdout, stderr, exit code.
func ctl(t *testing.T, socket string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(vtepctlBin(t), append([]string{"-s", socket}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// reload rewrites the file n's vtepd was started with and has vtepd
// apply it, `vtepctl reload` through its admin socket. It fails the test
// unless vtepctl succeeds, and returns what vtepctl printed: the summary
// of what changed.
func (n *node) reload(t *testing.T, socket, cfg string) string {
	t.Helper()
	n.setConfig(t, cfg)
	out, errOut, code := ctl(t, socket, "reload")
	if code != 0 {
		t.Fatalf("vtepctl reload on %s: exit %d, %q %q", n.host.Name, code, out, errOut)
	}
	return out
}

// vtepctl end to end against a running vtepd: show, add, del, stats,
// peers, bad input refused with nothing changed; then reload (vtepctl and
// SIGHUP) applying a new peer and static entries without a restart, and
// refusing a broken file while traffic goes on.
func TestIntegrationVtepctl(t *testing.T) {
	lab := topo.NewT(t, "vct")
	nodes := newNodes(t, lab, 2)
	a, b := nodes[0], nodes[1]
	socket := filepath.Join(t.TempDir(), "a.sock")
	admin := fmt.Sprintf("state_dir = \"\"\n[admin]\nsocket = %q\n", socket)
	// A starts with no flood list: only B's floods make A learn.
	a.runVtepd(t, admin+configBody(a.host, nil))
	b.runVtepd(t, config(b.host, peersOf(nodes, 1)))
	eventually(t, 10*time.Second, "admin socket", func() error {
		_, _, code := ctl(t, socket, "stats")
		if code != 0 {
			return fmt.Errorf("vtepctl stats exit %d", code)
		}
		return nil
	})
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// B -> A works (B floods); A -> B's MAC is then learned.
	if err := b.ctr.WaitReachable(a.ctr.Addr.Addr(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	out, _, code := ctl(t, socket, "fdb", "show", "vni", "200")
	if code != 0 || !strings.Contains(out, b.mac.String()) || !strings.Contains(out, "learned") {
		t.Errorf("fdb show (exit %d):\n%s\nwant %s learned", code, out, b.mac)
	}
	out, _, _ = ctl(t, socket, "-j", "fdb", "show")
	var entries []fdbEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) == 0 {
		t.Errorf("fdb show -j: %v\n%s", err, out)
	}

	ghost := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	if _, errOut, code := ctl(t, socket, "fdb", "add", ghost.String(), "dst", b.host.Underlay.String(), "vni", "200"); code != 0 {
		t.Fatalf("fdb add: exit %d: %s", code, errOut)
	}
	expectFDB(t, a.host, ghost, "static", b.host.Underlay)
	before, _ := getFDB(a.host)
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fdb", "add", "02:00:00:00:00", "dst", "198.18.0.2", "vni", "200"}, 2, "not a MAC"},
		{[]string{"fdb", "add", "02:00:00:00:00:78", "dst", "198.18.0.2", "vni", "999"}, 1, "unknown VNI"},
		{[]string{"fdb", "add", "02:00:00:00:00:78", "dst", "2001:db8::2", "vni", "200"}, 1, "family"},
		{[]string{"fdb", "del", "02:00:00:00:00:78", "vni", "200"}, 1, "no entry"},
		{[]string{"fdb", "flush"}, 2, "unknown subcommand"},
	} {
		_, errOut, code := ctl(t, socket, bad.args...)
		if code != bad.code || !strings.Contains(errOut, bad.want) {
			t.Errorf("vtepctl %v: exit %d, stderr %q; want exit %d and %q", bad.args, code, errOut, bad.code, bad.want)
		}
	}
	if after, _ := getFDB(a.host); len(after) != len(before) {
		t.Errorf("refused commands changed the FDB: %d -> %d entries", len(before), len(after))
	}
	if _, errOut, code := ctl(t, socket, "fdb", "del", ghost.String(), "vni", "200"); code != 0 {
		t.Errorf("fdb del: exit %d: %s", code, errOut)
	}

	out, _, code = ctl(t, socket, "-j", "stats")
	var stats []struct {
		VNI       string `json:"vni"`
		RxPackets uint64 `json:"rx_packets"`
	}
	if err := json.Unmarshal([]byte(out), &stats); err != nil || code != 0 || len(stats) == 0 || stats[0].VNI != "200" || stats[0].RxPackets == 0 {
		t.Errorf("stats -j (exit %d, %v):\n%s", code, err, out)
	}
	out, _, code = ctl(t, socket, "peers")
	if code != 0 || !strings.Contains(out, b.host.Underlay.String()) {
		t.Errorf("peers (exit %d):\n%s\nwant a row for %s", code, out, b.host.Underlay)
	}

	// Reload: a new peer and a static entry, without a restart.
	pid := a.vtepd.PID()
	fresh := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x79}
	if out := a.reload(t, socket, admin+configBody(a.host, peersOf(nodes, 0), static{fresh, b.host.Underlay})); !strings.Contains(out, "1 changed") {
		t.Fatalf("reload: %q, want 1 changed", out)
	}
	expectFDB(t, a.host, fresh, "static", b.host.Underlay)
	flood := func() float64 { return metric(t, a.host, "vtep_flood_packets_total", "vni", "200") }
	floodBefore := flood()
	// A flood from A now reaches B: ping a MAC-less neighbour from A.
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 2, 56, false); err != nil {
		t.Errorf("after reload: %v", err)
	}
	ghostIP := netip.MustParseAddr("198.19.0.99")
	a.ctr.Exec("ping", "-c", "1", "-W", "1", ghostIP.String())
	if flood() <= floodBefore {
		t.Error("no flood to the new peer after the reload")
	}

	// A broken file is refused as a whole, and traffic goes on.
	a.setConfig(t, admin+configBody(a.host, peersOf(nodes, 0))+"\nbroken = [\n")
	_, errOut, code := ctl(t, socket, "reload")
	if code != 1 || !strings.Contains(errOut, "line") {
		t.Errorf("broken reload: exit %d, stderr %q; want 1 and the line", code, errOut)
	}
	expectFDB(t, a.host, fresh, "static", b.host.Underlay)
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 3, 56, false); err != nil {
		t.Errorf("traffic after a refused reload: %v", err)
	}
	if !strings.Contains(a.vtepd.Output(), "reload refused") {
		t.Error("the refused reload was not logged")
	}

	// SIGHUP does the same as vtepctl reload.
	hup := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x7a}
	a.setConfig(t, admin+configBody(a.host, peersOf(nodes, 0), static{hup, b.host.Underlay}))
	if err := a.vtepd.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectFDB(t, a.host, hup, "static", b.host.Underlay)
	if entries, _ := getFDB(a.host); hasEntry(entries, fresh) {
		t.Error("the static entry the new file dropped is still there")
	}
	if a.vtepd.PID() != pid || a.vtepd.Exited() {
		t.Error("vtepd restarted")
	}
}
