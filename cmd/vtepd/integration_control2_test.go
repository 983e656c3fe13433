//go:build linux

package main

// The control plane on etcd under the conditions of issue #11's list: etcd
// killed under traffic, a compaction that overtakes a frozen vtepd's
// watch, a cluster that loses its leader, TLS with client certificates,
// vtepds on etcd beside a kernel VXLAN host, live reloads that add and
// remove networks and turn a network's control off and on, and a clean
// stop. The labs are integration_control_test.go's controlLab: etcd in
// lab host "e" (198.18.0.250), lease_ttl 2s.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/internal/etcdtest"
	"github.com/vtepd/vtepd/internal/topo"
)

// ctlOpts is what a test sets in a node's configuration beyond
// controlLab.config's.
type ctlOpts struct {
	peers    []netip.Addr // the static flood list
	learning bool
	network  string        // more keys of [[network]], or more [[network]] tables
	control  string        // more keys of [control]
	leaseTTL time.Duration // controlLeaseTTL when 0
}

// configWith is node i's configuration as controlLab.config makes it,
// with o applied.
func (cl *controlLab) configWith(i int, o ctlOpts) string {
	body := configBody(cl.nodes[i].host, o.peers)
	if !o.learning {
		body = strings.Replace(body, "learning = true", "learning = false", 1)
	}
	eps, _ := json.Marshal(cl.endpoints())
	return fmt.Sprintf("state_dir = \"\"\n[admin]\nsocket = %q\n%s%s\n[control]\nbackend = \"etcd\"\nendpoints = %s\nlease_ttl = %q\n%s",
		cl.socks[i], body, o.network, eps, cmp.Or(o.leaseTTL, controlLeaseTTL), o.control)
}

func (cl *controlLab) runWith(t *testing.T, i int, o ctlOpts) {
	t.Helper()
	cl.nodes[i].runVtepd(t, cl.configWith(i, o))
}

// newControlLabWith is newControlLab with etcd's options changed by
// tweak (TLS), before it starts.
func newControlLabWith(t *testing.T, prefix string, n, members int, tweak func(*etcdtest.Options)) *controlLab {
	t.Helper()
	cl := &controlLab{lab: topo.NewT(t, prefix)}
	opts := etcdOptions(etcdHost(t, cl.lab))
	tweak(&opts)
	cl.etcd = etcdtest.StartCluster(t, opts, members)
	cl.nodes = newNodes(t, cl.lab, n)
	dir := t.TempDir()
	for _, nd := range cl.nodes {
		cl.socks = append(cl.socks, filepath.Join(dir, nd.host.Name+".sock"))
	}
	return cl
}

// status is node i's vtepctl control.
func (cl *controlLab) status(t *testing.T, i int) *admin.ControlStatus {
	t.Helper()
	return cl.call(t, i, admin.Request{Cmd: admin.CmdControl}).Control
}

// reload rewrites node i's configuration file with cfg and reloads it
// through the admin socket; it returns the summary.
func (cl *controlLab) reload(t *testing.T, i int, cfg string) string {
	t.Helper()
	cl.nodes[i].setConfig(t, cfg)
	return cl.call(t, i, admin.Request{Cmd: admin.CmdReload}).Message
}

// expectNoRoute waits until node i has no entry for mac.
func (cl *controlLab) expectNoRoute(t *testing.T, i int, mac net.HardwareAddr, within time.Duration) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%s has no entry for %s", cl.nodes[i].host.Name, mac), func() error {
		if en, ok := cl.fdbOf(t, i, mac); ok {
			return fmt.Errorf("entry %+v", en)
		}
		return nil
	})
}

// waitConnected waits until vtep_control_connected is want on node i.
func (cl *controlLab) waitConnected(t *testing.T, i int, want float64, within time.Duration) {
	t.Helper()
	h := cl.nodes[i].host
	eventually(t, within, fmt.Sprintf("%s: vtep_control_connected %v", h.Name, want), func() error {
		if v := metric(t, h, "vtep_control_connected"); v != want {
			return fmt.Errorf("%v", v)
		}
		return nil
	})
}

// etcdctl runs Debian's etcdctl (etcd-client) in etcd's namespace, as an
// operator on that host would, against every member.
func (cl *controlLab) etcdctl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Fatalf("%v: apt-get install -y etcd-client (make deps)", err)
	}
	ns := cl.lab.Name() + "-e" // etcdHost's namespace: "<lab>-<host>"
	args = append([]string{"netns", "exec", ns, "etcdctl", "--endpoints=" + strings.Join(cl.endpoints(), ",")}, args...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// The keys of the layout (control/etcd/keys.go).
func vtepKey(vni int, vtep netip.Addr) string {
	return fmt.Sprintf("/vtepd/v1/vni/%d/vtep/%s", vni, vtep)
}
func macKey(vni int, mac net.HardwareAddr) string {
	return fmt.Sprintf("/vtepd/v1/vni/%d/mac/%s", vni, mac)
}
func ipKey(vni int, ip netip.Addr) string { return fmt.Sprintf("/vtepd/v1/vni/%d/ip/%s", vni, ip) }
func vniKeys(vni int) string              { return fmt.Sprintf("/vtepd/v1/vni/%d/", vni) }

// ownKeys are the keys node i publishes in VNI 200 once its container
// has spoken (announce): its VTEP, its container's MAC and IPv4 binding.
func (cl *controlLab) ownKeys(i int) []string {
	n := cl.nodes[i]
	return []string{vtepKey(testVNI, n.host.Underlay), macKey(testVNI, n.mac), ipKey(testVNI, n.ctr.Addr.Addr())}
}

// kv is a key's value and lease in etcd.
type kv struct {
	value string
	lease int64
}

// storeUnder reads the keys under prefix.
func storeUnder(t *testing.T, cli *clientv3.Client, prefix string) (map[string]kv, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	m := map[string]kv{}
	for _, e := range resp.Kvs {
		m[string(e.Key)] = kv{string(e.Value), e.Lease}
	}
	return m, nil
}

// waitStore waits until check accepts what etcd holds under prefix.
func waitStore(t *testing.T, cli *clientv3.Client, prefix string, within time.Duration, what string, check func(map[string]kv) error) {
	t.Helper()
	eventually(t, within, what, func() error {
		m, err := storeUnder(t, cli, prefix)
		if err != nil {
			return err
		}
		return check(m)
	})
}

// onLease checks that each of keys is in m, on lease (any lease if 0).
func onLease(m map[string]kv, lease int64, keys ...string) error {
	for _, k := range keys {
		e, ok := m[k]
		switch {
		case !ok:
			return fmt.Errorf("%s missing", k)
		case lease != 0 && e.lease != lease:
			return fmt.Errorf("%s on lease %x, want %x", k, e.lease, lease)
		}
	}
	return nil
}

// expectABNotC checks VNI 200's keys in etcd now: every key of a's and
// b's (nodes 0 and 1) is there, and none of c's (node 2, named who in
// the messages).
func (cl *controlLab) expectABNotC(t *testing.T, who string) {
	t.Helper()
	m, err := storeUnder(t, cl.etcd[0].Client(nil), vniKeys(testVNI))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cl.ownKeys(2) {
		if e, ok := m[k]; ok {
			t.Errorf("%s's key %s in etcd: %q", who, k, e.value)
		}
	}
	if err := onLease(m, 0, append(cl.ownKeys(0), cl.ownKeys(1)...)...); err != nil {
		t.Errorf("a's and b's keys: %v", err)
	}
}

// putKey writes key by hand, without a lease, as an operator's etcdctl
// put does; it retries while the cluster has no leader.
func putKey(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	var rev int64
	eventually(t, 15*time.Second, "put "+key, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Put(ctx, key, value)
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		return nil
	})
	return rev
}

// revisionOf is the store's revision.
func revisionOf(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// eventsSince replays the changes under prefix after revision rev, up to
// the store's current revision, from etcd's history.
func eventsSince(t *testing.T, cli *clientv3.Client, prefix string, rev int64) []*clientv3.Event {
	t.Helper()
	now := revisionOf(t, cli)
	if now <= rev {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var evs []*clientv3.Event
	for resp := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.Events {
			evs = append(evs, ev)
			if ev.Kv.ModRevision >= now {
				return evs
			}
		}
	}
	t.Fatalf("the changes after revision %d: the watch ended before revision %d", rev, now)
	return nil
}

func macValue(vtep string) string { return fmt.Sprintf(`{"vtep":%q}`, vtep) }

// pingFlood pings from a container every 50 ms, in bursts of 20 that
// each wait for their last reply, so that stopping it never cuts an echo
// short.
type pingFlood struct {
	stopc      chan struct{}
	done       chan struct{}
	sent, lost int
	bad        []string // the output of each burst that lost an echo
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func startPingFlood(from *topo.Container, dst netip.Addr) *pingFlood {
	f := &pingFlood{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			select {
			case <-f.stopc:
				return
			default:
			}
			out, err := from.Exec("ping", "-n", "-q", "-i", "0.05", "-c", "20", "-W", "1", dst.String())
			m := pingStats.FindSubmatch(out)
			if m == nil {
				f.bad = append(f.bad, fmt.Sprintf("%v: %s", err, out))
				f.lost++ // a burst that did not run counts as a loss
				continue
			}
			sent, _ := strconv.Atoi(string(m[1]))
			recv, _ := strconv.Atoi(string(m[2]))
			f.sent += sent
			if recv != sent {
				f.lost += sent - recv
				f.bad = append(f.bad, string(out))
			}
		}
	}()
	return f
}

// stop ends the flood after its current burst.
func (f *pingFlood) stop() {
	close(f.stopc)
	<-f.done
}

// TestIntegrationControlOutage: etcd is killed (SIGKILL) for 5 s, more
// than twice lease_ttl, while a's container pings b's every 50 ms with
// learning off everywhere, so that every echo and every reply crosses on
// a control FDB entry. Not one is lost: both vtepds report the outage
// (vtep_control_connected 0) but keep their control entries. Once etcd is
// back they report it and take up their leases again, which the restarted
// etcd extended, with every key still on them: nothing is written again
// and nothing deleted; a MAC put after the outage reaches both.
func TestIntegrationControlOutage(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vco", 2, 1)
	cl.runAll(t)
	a, b := cl.nodes[0], cl.nodes[1]
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 5*time.Second)
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 5*time.Second)
	cli := cl.etcd[0].Client(nil)
	var oldLease [2]int64
	for i := range cl.nodes {
		oldLease[i] = cl.status(t, i).LeaseID
		waitStore(t, cli, vniKeys(testVNI), 5*time.Second, cl.nodes[i].host.Name+"'s keys in etcd", func(m map[string]kv) error {
			return onLease(m, oldLease[i], cl.ownKeys(i)...)
		})
	}
	pingEach(t, cl.nodes)
	flood := startPingFlood(a.ctr, b.ctr.Addr.Addr())
	defer func() {
		select {
		case <-flood.stopc:
		default:
			flood.stop()
		}
	}()
	time.Sleep(500 * time.Millisecond) // some traffic before

	before := revisionOf(t, cli)
	s := cl.etcd[0]
	killed := time.Now()
	s.Kill()
	for i := range cl.nodes {
		cl.waitConnected(t, i, 0, 5*time.Second)
	}
	time.Sleep(time.Until(killed.Add(5 * time.Second)))
	// Past lease_ttl, with no etcd: the entries stay.
	for i, n := range cl.nodes {
		other := cl.nodes[1-i]
		if en, ok := cl.fdbOf(t, i, other.mac); !ok || en.Type != "control" || en.Remote != other.host.Underlay.String() {
			t.Errorf("%s during the outage: entry for %s %+v (found %v), want control -> %s", n.host.Name, other.mac, en, ok, other.host.Underlay)
		}
		if st := cl.status(t, i); st.Connected || len(st.Entries) != 1 || st.Entries[0].RemoteVTEPs != 1 {
			t.Errorf("%s during the outage: control status %+v", n.host.Name, st)
		}
	}

	s.Restart()
	restarted := time.Now()
	t.Logf("etcd down for %v", restarted.Sub(killed).Round(10*time.Millisecond))
	for i := range cl.nodes {
		cl.waitConnected(t, i, 1, 10*time.Second)
	}
	// Registered still, on the lease each had: a restarted etcd extends
	// its leases.
	for i, n := range cl.nodes {
		waitStore(t, cli, vniKeys(testVNI), 5*time.Second, n.host.Name+"'s keys on its lease", func(m map[string]kv) error {
			if lease := cl.status(t, i).LeaseID; lease != oldLease[i] {
				return fmt.Errorf("lease %x, before the outage %x", lease, oldLease[i])
			}
			return onLease(m, oldLease[i], cl.ownKeys(i)...)
		})
		if v := metric(t, n.host, "vtep_control_errors_total", "reason", "lease_lost"); v != 0 {
			t.Errorf("%s: vtep_control_errors_total{reason=\"lease_lost\"} = %v, want the lease kept", n.host.Name, v)
		}
	}
	t.Logf("connected again %v after etcd's restart", time.Since(restarted).Round(10*time.Millisecond))
	// Long after a lease not kept alive would have run out, nothing is
	// missing.
	time.Sleep(time.Until(restarted.Add(controlLeaseTTL + 2*time.Second)))
	m, err := storeUnder(t, cli, vniKeys(testVNI))
	if err != nil {
		t.Fatal(err)
	}
	// Not one key was deleted or written again, even for a moment (a
	// shorter hole than the echoes' 50 ms would not show in the flood).
	for _, ev := range eventsSince(t, cli, vniKeys(testVNI), before) {
		if ev.Type == clientv3.EventTypeDelete {
			t.Errorf("%s deleted at revision %d after the outage", ev.Kv.Key, ev.Kv.ModRevision)
		} else {
			t.Errorf("%s written again at revision %d after the outage", ev.Kv.Key, ev.Kv.ModRevision)
		}
	}
	for i := range cl.nodes {
		if err := onLease(m, cl.status(t, i).LeaseID, cl.ownKeys(i)...); err != nil {
			t.Errorf("once the old leases ran out: %v", err)
		}
		other := cl.nodes[1-i]
		cl.expectRoute(t, i, other.mac, other.host.Underlay, time.Second)
	}
	flood.stop()
	t.Logf("%d echoes from a to b through the outage, %d lost", flood.sent, flood.lost)
	if flood.lost != 0 {
		t.Errorf("%d of %d echoes lost:\n%s", flood.lost, flood.sent, strings.Join(flood.bad, "\n"))
		// Where: vtepd's drops, and the kernel's view of each host.
		for _, n := range cl.nodes {
			samples, _ := scrape(n.host)
			for _, s := range samples {
				if s.Name == "vtep_drops_total" && s.Value > 0 {
					t.Logf("%s: %s %v = %v", n.host.Name, s.Name, s.Labels, s.Value)
				}
			}
			out, _ := n.host.Exec("nstat", "-az", "UdpRcvbufErrors", "UdpInErrors", "IpExtInNoRoutes")
			t.Logf("%s: %s", n.host.Name, out)
		}
	}
	if min := int(time.Since(killed) / (60 * time.Millisecond)); flood.sent < min {
		t.Errorf("only %d echoes sent, want at least %d", flood.sent, min)
	}

	// A change after the outage reaches both.
	late := net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x55}
	putKey(t, cli, macKey(testVNI, late), macValue("198.18.0.9"))
	for i := range cl.nodes {
		cl.expectRoute(t, i, late, netip.MustParseAddr("198.18.0.9"), 5*time.Second)
	}
}

// TestIntegrationControlCompaction: while a's vtepd is frozen (SIGSTOP),
// a MAC key is deleted, another put, and one key rewritten so often that
// etcd stops queueing events for the frozen watcher; then the operator
// compacts past all of it (etcdctl compact). Thawed, the vtepd finds its
// watch behind the compaction, counts it (reason "compacted"), lists
// again, and its FDB ends as the store is: the deleted MAC gone, the new
// one and the last value of the rewritten one in.
func TestIntegrationControlCompaction(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcc", 1, 1)
	a := cl.nodes[0]
	// A lease that outlives the freeze: losing it is the outage test's
	// case, and it would make a resync of its own.
	cl.runWith(t, 0, ctlOpts{leaseTTL: 10 * time.Second})
	cli := cl.etcd[0].Client(nil)
	nine, ten := netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("198.18.0.10")
	var (
		gone  = net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x61}
		added = net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x62}
		busy  = net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x63}
	)
	putKey(t, cli, macKey(testVNI, gone), macValue(nine.String()))
	cl.expectRoute(t, 0, gone, nine, 5*time.Second)
	compacted := metric(t, a.host, "vtep_control_errors_total", "reason", "compacted")

	if err := a.vtepd.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := a.vtepd.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	frozen := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, macKey(testVNI, gone)); err != nil {
		t.Fatal(err)
	}
	putKey(t, cli, macKey(testVNI, added), macValue(nine.String()))
	// etcd queues the responses of a watch stream that flow control
	// holds back, up to 128 of them (1024 in older releases), then makes
	// the watcher a victim, to catch up later from its history: the
	// history the compaction removes. 1500 revisions of 2 KiB (the value
	// and the previous one) are well past both; 100 are not (the test
	// then fails: the events wait in the buffers, and no compaction
	// overtakes the watch).
	const rewrites = 1500
	pad := strings.Repeat("x", 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < rewrites; i += 16 {
				v := fmt.Sprintf(`{"vtep":%q,"pad":"%d%s"}`, nine, i, pad)
				if _, err := cli.Put(ctx, macKey(testVNI, busy), v); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := putKey(t, cli, macKey(testVNI, busy), macValue(ten.String()))
	out := cl.etcdctl(t, "compact", strconv.FormatInt(last, 10))
	thaw()
	t.Logf("a frozen %v; %d revisions; etcdctl: %s", time.Since(frozen).Round(10*time.Millisecond), rewrites+3, strings.TrimSpace(out))

	eventually(t, 10*time.Second, "the compaction counted", func() error {
		if v := metric(t, a.host, "vtep_control_errors_total", "reason", "compacted"); v <= compacted {
			return fmt.Errorf("vtep_control_errors_total{reason=\"compacted\"} = %v", v)
		}
		return nil
	})
	cl.expectNoRoute(t, 0, gone, 5*time.Second)
	cl.expectRoute(t, 0, added, nine, 5*time.Second)
	cl.expectRoute(t, 0, busy, ten, 5*time.Second)
	st := cl.status(t, 0)
	if !st.Connected || st.Revision < last || len(st.Entries) != 1 || st.Entries[0].RemoteMACs != 2 {
		t.Errorf("control status after the resync: %+v, want connected at revision %d or later with 2 remote MACs", st, last)
	}
	if !strings.Contains(a.vtepd.Output(), "watch behind a compaction") {
		t.Errorf("no log line about the compaction:\n%s", a.vtepd.Output())
	}
}

// TestIntegrationControlLeaderLoss: three vtepds on a three-member etcd
// cluster, each given every member; the leader is killed. A MAC put
// through a surviving member reaches every vtepd, and a new container
// on a is published by a's vtepd and reached from the others.
func TestIntegrationControlLeaderLoss(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcl", 3, 3)
	cl.runAll(t)
	for i := range cl.nodes {
		for j, other := range cl.nodes {
			if i != j {
				cl.expectRoute(t, i, other.mac, other.host.Underlay, 5*time.Second)
			}
		}
	}
	cli := cl.etcd[0].Client(func(c *clientv3.Config) { c.Endpoints = cl.endpoints() })
	leader := cl.leader(t, cli)
	before := revisionOf(t, cli)
	killed := time.Now()
	leader.Kill()
	t.Logf("killed the leader, %s", leader.Name())

	late := net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x71}
	putKey(t, cli, macKey(testVNI, late), macValue("198.18.0.9"))
	for i := range cl.nodes {
		cl.expectRoute(t, i, late, netip.MustParseAddr("198.18.0.9"), 15*time.Second)
	}
	t.Logf("a MAC put after the leader died reached every vtepd %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	if next := cl.leader(t, cli); next == leader {
		t.Errorf("%s still leads", leader.Name())
	}

	// A container that appears on a after the leader died.
	a := cl.nodes[0]
	ctr, err := a.host.AddContainer("c2", netip.MustParsePrefix("198.19.0.11/24"), a.host.VXLANMTU())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := ctr.MAC()
	if err != nil {
		t.Fatal(err)
	}
	ctr.Exec("ping", "-n", "-c", "1", "-W", "0.3", "198.19.0.250")
	waitStore(t, cli, macKey(testVNI, mac), 15*time.Second, "a publishes its new container's MAC", func(m map[string]kv) error {
		if e := m[macKey(testVNI, mac)]; e.value != macValue(a.host.Underlay.String()) {
			return fmt.Errorf("value %q", e.value)
		}
		return nil
	})
	for i := 1; i < len(cl.nodes); i++ {
		cl.expectRoute(t, i, mac, a.host.Underlay, 5*time.Second)
		if err := cl.nodes[i].ctr.WaitReachable(ctr.Addr.Addr(), 5*time.Second); err != nil {
			t.Errorf("%s -> a's new container: %v", cl.nodes[i].host.Name, err)
		}
	}
	for i, n := range cl.nodes {
		cl.waitConnected(t, i, 1, 10*time.Second)
		t.Logf("%s: leases lost %v", n.host.Name, metric(t, n.host, "vtep_control_errors_total", "reason", "lease_lost"))
	}
	// A vtepd that lost its lease with the leader wrote its keys on a
	// new one before the old one ran out: none went, even for a moment.
	for _, ev := range eventsSince(t, cli, vniKeys(testVNI), before) {
		if ev.Type == clientv3.EventTypeDelete {
			t.Errorf("%s deleted at revision %d after the leader died", ev.Kv.Key, ev.Kv.ModRevision)
		}
	}
	pingEach(t, cl.nodes)
}

// leader returns the member that leads the cluster, as etcd's Status says.
func (cl *controlLab) leader(t *testing.T, cli *clientv3.Client) *etcdtest.Server {
	t.Helper()
	var leader *etcdtest.Server
	eventually(t, 10*time.Second, "a leader", func() error {
		for _, s := range cl.etcd {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, s.ClientURL)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				leader = s
				return nil
			}
		}
		return fmt.Errorf("no member says it leads")
	})
	return leader
}

// TestIntegrationControlTLS: etcd over TLS requiring client certificates.
// a and b, configured with the CA, a client certificate and its key
// (ca_file, cert_file, key_file), converge; c, given only the CA, is
// refused: it reports itself not connected, publishes nothing, and its
// log says why.
func TestIntegrationControlTLS(t *testing.T) {
	t.Parallel()
	var pki *etcdtest.PKI
	cl := newControlLabWith(t, "vct", 3, 1, func(o *etcdtest.Options) {
		pki = etcdtest.NewPKI(t, "vctls", o.Addr)
		o.PKI = pki
	})
	if !strings.HasPrefix(cl.etcd[0].ClientURL, "https://") {
		t.Fatalf("etcd at %s", cl.etcd[0].ClientURL)
	}
	withCert := fmt.Sprintf("ca_file = %q\ncert_file = %q\nkey_file = %q\n", pki.CAFile, pki.ClientCert, pki.ClientKey)
	cl.runWith(t, 0, ctlOpts{control: withCert})
	cl.runWith(t, 1, ctlOpts{control: withCert})
	cl.runWith(t, 2, ctlOpts{control: fmt.Sprintf("ca_file = %q\n", pki.CAFile)})
	cStarted := time.Now()
	for i := range cl.nodes {
		cl.announce(t, i)
	}
	a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 10*time.Second)
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 10*time.Second)
	pingEach(t, cl.nodes[:2])

	// Its first request, for a lease, gives up after half lease_ttl.
	eventually(t, 10*time.Second, "c logs why it cannot connect", func() error {
		if out := c.vtepd.Output(); !strings.Contains(out, "cannot connect") {
			return fmt.Errorf("log:\n%s", out)
		}
		return nil
	})
	for line := range strings.Lines(c.vtepd.Output()) {
		if strings.Contains(line, "cannot connect") {
			t.Logf("c, %v after it started: %s", time.Since(cStarted).Round(100*time.Millisecond), strings.TrimSpace(line))
		}
	}
	// Under TLS 1.3 the client's handshake ends before the server checks
	// the client's certificate: c sees the server's alert or only the
	// connection closed (as in control/etcd's TestIntegrationTLS).
	if out := c.vtepd.Output(); !strings.Contains(out, "conn_err=") ||
		!containsAny(out, []string{"tls:", "certificate", "broken pipe", "connection reset", "EOF"}) {
		t.Errorf("c's log does not say why it cannot connect:\n%s", out)
	}
	if v := metric(t, c.host, "vtep_control_connected"); v != 0 {
		t.Errorf("c: vtep_control_connected = %v", v)
	}
	if st := cl.status(t, 2); st.Connected || st.LeaseID != 0 || st.Revision != 0 {
		t.Errorf("c: control status %+v", st)
	}
	cl.expectABNotC(t, "c")
	if st := cl.status(t, 0); !st.Connected || st.Entries[0].RemoteVTEPs != 1 {
		t.Errorf("a: control status %+v, want connected with b only", st)
	}
}

// TestIntegrationControlMixed: a and b run vtepd on etcd, c the kernel's
// vxlan, which etcd knows nothing of. a and b list c in their static
// peers and learn (learning on), c lists a and b. Every container reaches
// every other; a and b hold each other's containers as control entries
// (not learned ones, though their frames cross) and c's as learned; c's
// kernel learns both; nothing of c's reaches etcd.
func TestIntegrationControlMixed(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcm", 3, 1)
	a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	if err := c.host.AddKernelVXLAN(testVNI, vxlanPort, a.host.Underlay, b.host.Underlay); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		cl.runWith(t, i, ctlOpts{peers: []netip.Addr{c.host.Underlay}, learning: true})
	}
	for i := range 2 {
		cl.announce(t, i)
	}
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 5*time.Second)
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 5*time.Second)

	pingEach(t, cl.nodes)
	for i := range 2 {
		other := cl.nodes[1-i]
		cl.expectRoute(t, i, other.mac, other.host.Underlay, time.Second)
		expectFDB(t, cl.nodes[i].host, c.mac, "learned", c.host.Underlay)
		if v := metric(t, cl.nodes[i].host, "vtep_fdb_entries", "type", "control", "vni", "200"); v < 1 {
			t.Errorf("%s: vtep_fdb_entries{type=control} = %v", cl.nodes[i].host.Name, v)
		}
		expectKernelFDB(t, c.host, cl.nodes[i].mac, cl.nodes[i].host.Underlay)
	}
	cl.expectABNotC(t, "the kernel host")
}

// TestIntegrationControlReload: live reloads of a's vtepd, no restart
// (one process, one lease throughout). A second network (VNI 300 on br1)
// added is registered under its VNI, and removed is withdrawn; VNI 200
// set to control = false withdraws every key of a's in it, from etcd and
// so from b, and a's control entries; control = true brings them back.
// With etcd killed, the same: the entries go with control = false at
// once, and control = true restores them from the view a kept.
func TestIntegrationControlReload(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcr", 2, 1)
	a, b := cl.nodes[0], cl.nodes[1]
	if err := a.host.AddBridge("br1"); err != nil {
		t.Fatal(err)
	}
	cl.runAll(t)
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 5*time.Second)
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 5*time.Second)
	cli := cl.etcd[0].Client(nil)
	lease := cl.status(t, 0).LeaseID
	const second = "\n[[network]]\nname = \"second\"\nvni = 300\nbridge = \"br1\"\nlearning = false\n"
	expect := func(summary, want string) {
		t.Helper()
		if !strings.Contains(summary, want) {
			t.Errorf("reload: %q, want %q", summary, want)
		}
	}

	expect(cl.reload(t, 0, cl.config(0, second)), "1 added")
	waitStore(t, cli, vniKeys(300), 5*time.Second, "VNI 300 registered", func(m map[string]kv) error {
		return onLease(m, lease, vtepKey(300, a.host.Underlay))
	})
	if st := cl.status(t, 0); len(st.Entries) != 2 {
		t.Errorf("control status with two networks: %+v", st)
	}

	expect(cl.reload(t, 0, cl.config(0, "")), "1 removed")
	waitStore(t, cli, vniKeys(300), 5*time.Second, "VNI 300 withdrawn", func(m map[string]kv) error {
		if len(m) != 0 {
			return fmt.Errorf("keys %v", m)
		}
		return nil
	})

	// Off the control plane: a's keys leave etcd, b forgets a's
	// container, a its control entries.
	expect(cl.reload(t, 0, cl.config(0, "control = false\n")), "1 changed")
	waitStore(t, cli, vniKeys(testVNI), 5*time.Second, "a's VNI 200 keys withdrawn", func(m map[string]kv) error {
		for k, e := range m {
			if e.lease == lease || strings.HasSuffix(k, "/"+a.host.Underlay.String()) || e.value == macValue(a.host.Underlay.String()) {
				return fmt.Errorf("%s = %q (lease %x) still there", k, e.value, e.lease)
			}
		}
		return onLease(m, 0, cl.ownKeys(1)...) // b's stay
	})
	cl.expectNoRoute(t, 1, a.mac, 5*time.Second)
	cl.expectNoRoute(t, 0, b.mac, 5*time.Second)
	if v := metric(t, a.host, "vtep_fdb_entries", "type", "control", "vni", "200"); v != 0 {
		t.Errorf("a: vtep_fdb_entries{type=control} = %v with control off", v)
	}
	if st := cl.status(t, 1); st.Entries[0].RemoteVTEPs != 0 {
		t.Errorf("b still counts a's VTEP: %+v", st)
	}

	// Back on: registered again, a's entries back, its container's MAC
	// published again when it speaks.
	expect(cl.reload(t, 0, cl.config(0, "control = true\n")), "1 changed")
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 5*time.Second)
	cl.announce(t, 0)
	waitStore(t, cli, vniKeys(testVNI), 5*time.Second, "a's VNI 200 keys back", func(m map[string]kv) error {
		return onLease(m, lease, cl.ownKeys(0)...)
	})
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 5*time.Second)
	pingEach(t, cl.nodes)
	if a.vtepd.Exited() {
		t.Fatalf("a's vtepd exited:\n%s", a.vtepd.Output())
	}
	if st := cl.status(t, 0); st.LeaseID != lease {
		t.Errorf("a's lease changed from %x to %x: the backend restarted", lease, st.LeaseID)
	}

	// With etcd gone, off and on again: the entries go with control,
	// and come back from the view a kept through the outage.
	cl.etcd[0].Kill()
	cl.waitConnected(t, 0, 0, 5*time.Second)
	expect(cl.reload(t, 0, cl.config(0, "control = false\n")), "1 changed")
	cl.expectNoRoute(t, 0, b.mac, 2*time.Second)
	expect(cl.reload(t, 0, cl.config(0, "control = true\n")), "1 changed")
	cl.expectRoute(t, 0, b.mac, b.host.Underlay, 2*time.Second)
	if err := a.ctr.Ping(b.ctr.Addr.Addr(), 3, 56, false); err != nil {
		t.Errorf("a -> b on the kept view: %v", err)
	}
}

// TestIntegrationControlStop: SIGTERM makes a's vtepd revoke its lease as
// it stops: its keys leave etcd at once, well within lease_ttl, and b
// forgets a's container as soon.
func TestIntegrationControlStop(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcs", 2, 1)
	cl.runAll(t)
	a := cl.nodes[0]
	cl.expectRoute(t, 1, a.mac, a.host.Underlay, 5*time.Second)
	cli := cl.etcd[0].Client(nil)
	lease := cl.status(t, 0).LeaseID
	waitStore(t, cli, vniKeys(testVNI), 5*time.Second, "a's keys in etcd", func(m map[string]kv) error {
		return onLease(m, lease, cl.ownKeys(0)...)
	})
	m, err := storeUnder(t, cli, vniKeys(testVNI))
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for k, e := range m {
		if e.lease == lease {
			pending[k] = true
		}
	}
	n := len(pending)

	// A watch times the deletes, from the revision read.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, vniKeys(testVNI), clientv3.WithPrefix())
	time.Sleep(100 * time.Millisecond) // the watch is in place
	start := time.Now()
	if err := a.vtepd.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(controlLeaseTTL + time.Second)
	var took time.Duration
	for len(pending) > 0 {
		select {
		case resp := <-wch:
			if err := resp.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					delete(pending, string(ev.Kv.Key))
				}
			}
			took = time.Since(start)
		case <-deadline:
			t.Fatalf("a's keys still in etcd %v after SIGTERM: %v", time.Since(start).Round(time.Millisecond), pending)
		}
	}
	t.Logf("a's %d keys left etcd %v after SIGTERM (lease_ttl %v)", n, took.Round(time.Millisecond), controlLeaseTTL)
	if took > controlLeaseTTL/4 {
		t.Errorf("a's keys took %v to leave etcd, not well within lease_ttl %v", took, controlLeaseTTL)
	}
	if code, err := a.vtepd.Wait(5 * time.Second); err != nil || code != 0 {
		t.Errorf("a's vtepd: exit code %d, %v", code, err)
	}
	cl.expectNoRoute(t, 1, a.mac, time.Second)
	if st := cl.status(t, 1); st.Entries[0].RemoteVTEPs != 0 {
		t.Errorf("b still counts a's VTEP: %+v", st)
	}
}
