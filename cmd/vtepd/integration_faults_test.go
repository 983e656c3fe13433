//go:build linux

package main

// Integration tests of vtepd under faults of its surroundings: its TAP or
// bridge deleted under it, a peer or its own underlay link going away and
// coming back, and a restart that must keep the learned FDB (warm restart
// through state_dir). vtepd must mend or wait, never exit or spin, and
// forwarding must resume without restarting it.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat; it is
// 100 on every Linux ABI.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user plus system CPU time process pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: utime and stime are fields 14 and 15,
	// the 12th and 13th after the comm, which may hold spaces.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return time.Duration(utime+stime) * clockTick
}

// waitLog waits until p has logged want.
func waitLog(t *testing.T, p *topo.Proc, timeout time.Duration, want string) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%v logs %q", p, want), func() error {
		if p.Exited() {
			t.Fatalf("%v exited:\n%s", p, p.Output())
		}
		if !strings.Contains(p.Output(), want) {
			return errors.New("not yet")
		}
		return nil
	})
}

// stillRunning fails the test if n's vtepd has exited or was replaced.
func stillRunning(t *testing.T, n *node, pid int) {
	t.Helper()
	if n.vtepd.Exited() || n.vtepd.PID() != pid {
		t.Fatalf("vtepd on %s is not the one that started (pid %d, exited %v):\n%s", n.host.Name, pid, n.vtepd.Exited(), n.vtepd.Output())
	}
}

// ipT runs ip(8) in h with args and returns its output; it fails the
// test on an error.
func ipT(t *testing.T, h *topo.Host, args ...string) []byte {
	t.Helper()
	out, err := h.Exec("ip", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// expectAttached waits until h's TAP exists and is a port of br0.
func expectAttached(t *testing.T, h *topo.Host, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, tapName+" on "+h.Name+" enslaved to br0", func() error {
		tap, err := h.Link(tapName)
		if err != nil {
			return err
		}
		br, err := h.Link("br0")
		if err != nil {
			return err
		}
		if tap.MasterIndex != br.Index {
			return fmt.Errorf("%s master index %d, br0 is %d", tapName, tap.MasterIndex, br.Index)
		}
		return nil
	})
}

// TestIntegrationFaultsTAPDeleted: `ip link del vtep200` under a running
// vtepd: the TAP comes back, on its bridge, counted once, and traffic
// resumes without a restart.
func TestIntegrationFaultsTAPDeleted(t *testing.T) {
	t.Parallel()
	nodes := twoVtepds(t, "ftd")
	a := nodes[0]
	pid := a.vtepd.PID()
	old, err := a.host.Link(tapName)
	if err != nil {
		t.Fatal(err)
	}

	ipT(t, a.host, "link", "del", tapName)
	eventually(t, 5*time.Second, tapName+" recreated", func() error {
		l, err := a.host.Link(tapName)
		if err != nil {
			return err
		}
		if l.Index == old.Index {
			return errors.New("still the old TAP")
		}
		return nil
	})
	expectAttached(t, a.host, 5*time.Second)
	eventually(t, 3*time.Second, "vtep_tap_recreated_total", func() error {
		if v := scrapeT(t, a.host).get("vtep_tap_recreated_total"); v != 1 {
			return fmt.Errorf("vtep_tap_recreated_total = %v, want 1", v)
		}
		return nil
	})
	pingEach(t, nodes)
	// Nothing else recreates it later (a second pipeline or the link
	// watcher noticing the same loss late).
	time.Sleep(time.Second)
	if v := scrapeT(t, a.host).get("vtep_tap_recreated_total"); v != 1 {
		t.Errorf("vtep_tap_recreated_total = %v a second later, want 1", v)
	}
	expectAttached(t, a.host, time.Second)
	stillRunning(t, a, pid)
}

// TestIntegrationFaultsBridgeDeleted: the bridge vtepd's TAP is on is
// deleted, then a bridge of that name comes back with the container's
// veth: vtepd reports the loss, re-attaches its TAP, and traffic resumes.
func TestIntegrationFaultsBridgeDeleted(t *testing.T) {
	t.Parallel()
	nodes := twoVtepds(t, "fbd")
	a, b := nodes[0], nodes[1]
	pid := a.vtepd.PID()

	ipT(t, a.host, "link", "del", "br0")
	waitLog(t, a.vtepd, 5*time.Second, "bridge deleted")
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 1, 56, false); err == nil {
		t.Error("ping a -> b works without a's bridge")
	}
	if !a.host.LinkExists(tapName) {
		t.Errorf("%s is gone with its bridge", tapName)
	}

	// What Docker would do: the network's bridge again, its container's
	// veth (vc0, topo's name for a host's first) on it.
	for _, args := range [][]string{
		{"link", "add", "name", "br0", "type", "bridge"},
		{"link", "set", "br0", "up"},
		{"link", "set", "vc0", "master", "br0"},
	} {
		ipT(t, a.host, args...)
	}
	waitLog(t, a.vtepd, 5*time.Second, "TAP attached to its bridge again")
	expectAttached(t, a.host, time.Second)
	pingEach(t, nodes)
	if n := strings.Count(a.vtepd.Output(), "bridge deleted"); n != 1 {
		t.Errorf(`"bridge deleted" logged %d times, want once`, n)
	}
	stillRunning(t, a, pid)
}

// TestIntegrationFaultsPeerDown: b's underlay link goes down for a few
// seconds while a's container keeps sending to it. a neither exits nor
// spins, and traffic resumes when b is back, without restarting a.
func TestIntegrationFaultsPeerDown(t *testing.T) {
	t.Parallel()
	nodes := twoVtepds(t, "fpd")
	a, b := nodes[0], nodes[1]
	pid := a.vtepd.PID()
	before := scrapeT(t, a.host)

	// Traffic into the outage: 20 echo requests a second from a.
	pinger, err := a.ctr.Start("ping", "-n", "-q", "-i", "0.05", b.ctr.Addr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pinger.Signal(syscall.SIGINT)
	ipT(t, b.host, "link", "set", "eth0", "down")
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 1, 56, false); err == nil {
		t.Error("ping a -> b works with b's underlay down")
	}
	const outage = 3 * time.Second
	cpu0 := cpuTime(t, pid)
	time.Sleep(outage)
	used := cpuTime(t, pid) - cpu0
	t.Logf("vtepd on a used %v of CPU in %v of outage", used, outage)
	if used >= 500*time.Millisecond {
		t.Errorf("vtepd on a used %v of CPU in %v while its peer was down: spinning", used, outage)
	}
	stillRunning(t, a, pid)

	ipT(t, b.host, "link", "set", "eth0", "up")
	for i, from := range nodes {
		if err := from.ctr.WaitReachable(nodes[1-i].ctr.Addr.Addr(), 10*time.Second); err != nil {
			t.Fatalf("after the outage, %s -> %s: %v", from.host.Name, nodes[1-i].host.Name, err)
		}
	}
	pingEach(t, nodes)
	after := scrapeT(t, a.host)
	t.Logf("during the outage a counted %v send errors, %v too_big",
		after.since(before, "vtep_drops_total", "reason", "send_error"), after.since(before, "vtep_drops_total", "reason", "too_big"))
	stillRunning(t, a, pid)
	stillRunning(t, b, b.vtepd.PID())
}

// TestIntegrationFaultsUnderlayDown: a's own underlay link goes down for
// two seconds and up again; forwarding resumes without a restart.
func TestIntegrationFaultsUnderlayDown(t *testing.T) {
	t.Parallel()
	nodes := twoVtepds(t, "fud")
	a, b := nodes[0], nodes[1]
	pid := a.vtepd.PID()
	before := scrapeT(t, a.host)

	ipT(t, a.host, "link", "set", "eth0", "down")
	downAt := time.Now()
	// Traffic while down: a's sends have no route.
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 3, 56, false); err == nil {
		t.Error("ping a -> b works with a's underlay down")
	}
	time.Sleep(time.Until(downAt.Add(2 * time.Second)))
	ipT(t, a.host, "link", "set", "eth0", "up")
	// IPv4 keeps its addresses over down and up; check rather than trust.
	out := ipT(t, a.host, "-4", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(string(out), a.host.Prefix.String()) {
		t.Logf("eth0 lost %v over down/up; adding it back:\n%s", a.host.Prefix, out)
		ipT(t, a.host, "addr", "add", a.host.Prefix.String(), "dev", "eth0")
	}
	for i, from := range nodes {
		if err := from.ctr.WaitReachable(nodes[1-i].ctr.Addr.Addr(), 10*time.Second); err != nil {
			t.Fatalf("after the link came back, %s -> %s: %v", from.host.Name, nodes[1-i].host.Name, err)
		}
	}
	pingEach(t, nodes)
	after := scrapeT(t, a.host)
	t.Logf("while eth0 was down a counted %v send errors", after.since(before, "vtep_drops_total", "reason", "send_error"))
	stillRunning(t, a, pid)
}

// TestIntegrationFaultsWarmRestart: with state_dir set, vtepd saves its
// learned FDB on SIGTERM and the next start has it back at once, before
// any datagram arrives, with its age carried over; a corrupt state file is
// logged and ignored.
func TestIntegrationFaultsWarmRestart(t *testing.T) {
	t.Parallel()
	_, nodes := quietNodes(t, "fwr") // nothing may cross the tunnel unasked
	a, b := nodes[0], nodes[1]
	dir := t.TempDir()
	hcfgA := hcfg{top: []string{fmt.Sprintf("state_dir = %q", dir)}}
	runPair(t, nodes, hcfgA)
	cfgA := hcfgA.render(a.host, peersOf(nodes, 0)) // for the restarts
	expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)
	// No traffic from here on: let the entry age a little.
	time.Sleep(1500 * time.Millisecond)
	var ageBefore float64
	saved := learnedFDB(t, a.host)
	for _, e := range saved {
		if strings.EqualFold(e.MAC, b.mac.String()) {
			ageBefore = e.AgeSeconds
		}
	}
	t.Logf("learned on a before the restart: %+v", saved)
	if ageBefore < 1 {
		t.Fatalf("b's MAC on a is %vs old after 1.5 s of silence", ageBefore)
	}

	stop := func() {
		t.Helper()
		if err := a.vtepd.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code, err := a.vtepd.Wait(5 * time.Second); err != nil || code != 0 {
			t.Fatalf("after SIGTERM: exit code %d, %v; want 0\n%s", code, err, a.vtepd.Output())
		}
	}
	stop()
	state := filepath.Join(dir, fmt.Sprintf("fdb-%s-%d.json", a.host.Underlay, vxlanPort))
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after SIGTERM: %v\n%s", err, a.vtepd.Output())
	}

	a.runVtepd(t, cfgA)
	// At once: the first answer of /healthz has passed, and nothing was
	// received (b has been silent).
	entries := learnedFDB(t, a.host)
	if got := scrapeT(t, a.host).get("vtep_rx_packets_total"); got != 0 {
		t.Errorf("vtep_rx_packets_total = %v after the restart: the test is not silent", got)
	}
	var restored *fdbEntry
	for i, e := range entries {
		if strings.EqualFold(e.MAC, b.mac.String()) {
			restored = &entries[i]
		}
	}
	switch {
	case restored == nil:
		t.Errorf("b's MAC %s not in /fdb right after the restart: %+v\n%s", b.mac, entries, a.vtepd.Output())
	case restored.Remote != b.host.Underlay.String():
		t.Errorf("b's MAC restored pointing at %s, want %s", restored.Remote, b.host.Underlay)
	case restored.AgeSeconds < ageBefore:
		t.Errorf("b's MAC restored with age %vs, younger than the %vs it had before the restart", restored.AgeSeconds, ageBefore)
	}
	if len(entries) != len(saved) {
		t.Errorf("%d learned entries restored, %d saved: %+v", len(entries), len(saved), entries)
	}
	if want := fmt.Sprintf("entries=%d ", len(saved)); !strings.Contains(a.vtepd.Output(), `msg="learned FDB restored"`) || !strings.Contains(a.vtepd.Output(), want) {
		t.Errorf("no log line of the restore with %s:\n%s", want, a.vtepd.Output())
	}
	// The restored entry forwards: a's ping is unicast to b at once.
	pingEach(t, nodes)

	// A corrupt state file: logged, ignored, an empty table.
	stop()
	if err := os.WriteFile(state, []byte("{\"version\": 1, \"entries\": [garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.runVtepd(t, cfgA)
	if entries := learnedFDB(t, a.host); len(entries) != 0 {
		t.Errorf("learned entries after a corrupt state file: %+v", entries)
	}
	if v := scrapeT(t, a.host).get("vtep_fdb_entries", "type", "learned"); v != 0 {
		t.Errorf(`vtep_fdb_entries{type="learned"} = %v after a corrupt state file`, v)
	}
	if !strings.Contains(a.vtepd.Output(), "state file corrupt, ignored") {
		t.Errorf("corrupt state file not logged:\n%s", a.vtepd.Output())
	}
	pingEach(t, nodes)
}

// twoVtepds is the lab the fault tests start from: two hosts with a
// container each, vtepd on both, every container reaching the other.
func twoVtepds(t *testing.T, prefix string) []*node {
	t.Helper()
	nodes := newNodes(t, topo.NewT(t, prefix), 2)
	runPair(t, nodes, hcfg{})
	return nodes
}
