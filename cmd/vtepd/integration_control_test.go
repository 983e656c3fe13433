//go:build linux

package main

// The control plane on etcd, end to end: vtepds on lab hosts with no
// peers, and a real etcd (Debian's etcd-server) in a lab namespace of its
// own on the underlay.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/internal/etcdtest"
	"github.com/vtepd/vtepd/internal/topo"
)

// controlLeaseTTL is the tests' lease_ttl: the shortest vtepd accepts.
const controlLeaseTTL = 2 * time.Second

// controlLab is a lab whose hosts run vtepd on one etcd, with no peers.
type controlLab struct {
	lab   *topo.Lab
	etcd  []*etcdtest.Server // one member, or a cluster
	nodes []*node
	socks []string // each node's admin socket
}

// etcdHost adds host "e" at 198.18.0.250 on the underlay for etcd.
func etcdHost(t *testing.T, lab *topo.Lab) *topo.Host {
	t.Helper()
	h, err := lab.AddHost("e", netip.MustParsePrefix("198.18.0.250/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func etcdOptions(h *topo.Host) etcdtest.Options {
	return etcdtest.Options{Netns: h.NS, Addr: h.Underlay, Dial: h.DialContext}
}

// newControlLab starts an etcd cluster of members members and n nodes
// (hosts 198.18.0.<i+1>, containers 198.19.0.<i+1>); vtepd does not run yet.
func newControlLab(t *testing.T, prefix string, n, members int) *controlLab {
	t.Helper()
	cl := &controlLab{lab: topo.NewT(t, prefix)}
	cl.etcd = etcdtest.StartCluster(t, etcdOptions(etcdHost(t, cl.lab)), members)
	cl.nodes = newNodes(t, cl.lab, n)
	dir := t.TempDir()
	for _, nd := range cl.nodes {
		cl.socks = append(cl.socks, filepath.Join(dir, nd.host.Name+".sock"))
	}
	return cl
}

func (cl *controlLab) endpoints() []string {
	var eps []string
	for _, s := range cl.etcd {
		eps = append(eps, s.ClientURL)
	}
	return eps
}

// config is node i's configuration: learning off (what it knows of the
// others comes from etcd), no peers, its own admin socket, extra lines at
// the end of [[network]], then [control].
func (cl *controlLab) config(i int, network string) string {
	h := cl.nodes[i].host
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = \"\"\n[admin]\nsocket = %q\n", cl.socks[i])
	b.WriteString(strings.Replace(configBody(h, nil), "learning = true", "learning = false", 1))
	b.WriteString(network)
	eps, _ := json.Marshal(cl.endpoints())
	fmt.Fprintf(&b, "\n[control]\nbackend = \"etcd\"\nendpoints = %s\nlease_ttl = %q\n", eps, controlLeaseTTL)
	return b.String()
}

func (cl *controlLab) run(t *testing.T, i int) {
	t.Helper()
	cl.nodes[i].runVtepd(t, cl.config(i, ""))
}

// runAll starts vtepd on every node with the lab's configuration, then
// has every container announce itself (announce).
func (cl *controlLab) runAll(t *testing.T) {
	t.Helper()
	for i := range cl.nodes {
		cl.run(t, i)
	}
	for i := range cl.nodes {
		cl.announce(t, i)
	}
}

// call sends an admin command to node i's vtepd.
func (cl *controlLab) call(t *testing.T, i int, req admin.Request) admin.Response {
	t.Helper()
	resp, err := admin.Call(cl.socks[i], req)
	if err != nil {
		t.Fatalf("admin %s on %s: %v", req.Cmd, cl.nodes[i].host.Name, err)
	}
	if resp.Error != "" {
		t.Fatalf("admin %s on %s: %s", req.Cmd, cl.nodes[i].host.Name, resp.Error)
	}
	return resp
}

// fdbOf returns node i's entry for mac in VNI 200, if any.
func (cl *controlLab) fdbOf(t *testing.T, i int, mac net.HardwareAddr) (admin.FDBEntry, bool) {
	t.Helper()
	vni := uint32(testVNI)
	resp := cl.call(t, i, admin.Request{Cmd: admin.CmdFDBShow, VNI: &vni, MAC: mac.String()})
	if len(resp.FDB) == 0 {
		return admin.FDBEntry{}, false
	}
	return resp.FDB[0], true
}

// expectRoute waits until node i has mac as a control entry to remote.
func (cl *controlLab) expectRoute(t *testing.T, i int, mac net.HardwareAddr, remote netip.Addr, within time.Duration) {
	t.Helper()
	eventually(t, within, fmt.Sprintf("%s has control %s -> %s", cl.nodes[i].host.Name, mac, remote), func() error {
		en, ok := cl.fdbOf(t, i, mac)
		if !ok || en.Type != "control" || en.Remote != remote.String() {
			return fmt.Errorf("entry %+v (found %v)", en, ok)
		}
		return nil
	})
}

// neighOf lists node i's IP bindings of a type.
func (cl *controlLab) neighOf(t *testing.T, i int, typ string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range cl.call(t, i, admin.Request{Cmd: admin.CmdNeigh}).Neigh {
		if n.Type == typ {
			m[n.IP] = n.MAC
		}
	}
	return m
}

// announce makes node i's container speak on its own segment only: an
// ARP request and a Neighbor Solicitation for addresses nobody has, which
// publish its MAC and both its IP bindings. It is flooded to the other
// VTEPs, which, with learning off, learn nothing from it.
func (cl *controlLab) announce(t *testing.T, i int) {
	t.Helper()
	c := cl.nodes[i].ctr
	c.Exec("ping", "-n", "-c", "1", "-W", "0.3", "198.19.0.250")
	c.Exec("ping", "-6", "-n", "-c", "1", "-W", "0.3", "2001:db8:1::250")
}

// addIPv6 gives node i's container 2001:db8:1::<i+1>/64.
func (cl *controlLab) addIPv6(t *testing.T, i int) netip.Addr {
	t.Helper()
	a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%d", i+1))
	if out, err := cl.nodes[i].ctr.Exec("ip", "-6", "addr", "add", a.String()+"/64", "dev", "eth0", "nodad"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return a
}

// TestIntegrationControlPlane: three vtepds with no peers and learning off
// find each other's containers through etcd before the containers talk,
// answer ARP and ND for them, and forget a host that dies within its
// lease; a MAC that moves follows its new host; hostile keys are counted
// and ignored.
func TestIntegrationControlPlane(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcp", 3, 1)
	var v6 []netip.Addr
	for i := range cl.nodes {
		v6 = append(v6, cl.addIPv6(t, i))
		cl.run(t, i)
	}
	for i := range cl.nodes {
		cl.announce(t, i)
	}

	// Each host holds the others' containers, as control entries, and
	// their IP bindings, before any container has sent another a frame.
	for i := range cl.nodes {
		for j, other := range cl.nodes {
			if i == j {
				continue
			}
			cl.expectRoute(t, i, other.mac, other.host.Underlay, 5*time.Second)
			eventually(t, 5*time.Second, fmt.Sprintf("%s has %s's IP bindings", cl.nodes[i].host.Name, other.host.Name), func() error {
				m := cl.neighOf(t, i, "control")
				if m[other.ctr.Addr.Addr().String()] != other.mac.String() || m[v6[j].String()] != other.mac.String() {
					return fmt.Errorf("neigh %v", m)
				}
				return nil
			})
		}
		st := cl.call(t, i, admin.Request{Cmd: admin.CmdControl}).Control
		if !st.Connected || st.LeaseID == 0 || len(st.Entries) != 1 || st.Entries[0].RemoteVTEPs != 2 {
			t.Errorf("%s: control status %+v", cl.nodes[i].host.Name, st)
		}
		if v := metric(t, cl.nodes[i].host, "vtep_control_connected"); v != 1 {
			t.Errorf("%s: vtep_control_connected = %v", cl.nodes[i].host.Name, v)
		}
		// The containers, and whatever else speaks on the other hosts'
		// bridges (the bridges themselves, from their IPv6 link-local
		// addresses).
		if v := metric(t, cl.nodes[i].host, "vtep_fdb_entries", "type", "control", "vni", "200"); v < 2 {
			t.Errorf("%s: vtep_fdb_entries{type=control} = %v, want at least 2", cl.nodes[i].host.Name, v)
		}
	}

	// They talk, with learning off everywhere, and each vtepd answers its
	// container's ARP requests and solicitations itself.
	pingEach(t, cl.nodes)
	for i, from := range cl.nodes {
		for j := range cl.nodes {
			if i != j {
				if out, err := from.ctr.Exec("ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", v6[j].String()); err != nil {
					t.Errorf("%s -> %s over IPv6: %v\n%s", from.host.Name, v6[j], err, out)
				}
			}
		}
		for _, m := range []string{"vtep_arp_suppressed_total", "vtep_nd_suppressed_total"} {
			if v := metric(t, from.host, m, "vni", "200"); v < 1 {
				t.Errorf("%s: %s = %v, want at least 1", from.host.Name, m, v)
			}
		}
		if v := metric(t, from.host, "vtep_fdb_learned_total", "vni", "200"); v != 0 {
			t.Errorf("%s: learned %v entries with learning off", from.host.Name, v)
		}
	}

	// What an operator sees.
	out, _, code := ctl(t, cl.socks[0], "control")
	if code != 0 || !strings.Contains(out, "connected  yes") || !strings.Contains(out, "200  2") {
		t.Errorf("vtepctl control: exit %d\n%s", code, out)
	}
	t.Logf("vtepctl control:\n%s", out)
	out, _, code = ctl(t, cl.socks[0], "neigh", "show", "vni", "200")
	want := strings.Join([]string{cl.nodes[1].ctr.Addr.Addr().String(), "lladdr", cl.nodes[1].mac.String(), "vni", "200", "control"}, " ")
	if code != 0 || !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.Join(strings.Fields(l), " ") == want }) {
		t.Errorf("vtepctl neigh show: exit %d\n%s", code, out)
	}

	t.Run("move", func(t *testing.T) {
		// a's container takes a new MAC; b's takes a's old one. The
		// others follow the MAC to b.
		a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
		moved := a.mac
		if err := a.ctr.SetMAC(net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x99}); err != nil {
			t.Fatal(err)
		}
		if err := b.ctr.SetMAC(moved); err != nil {
			t.Fatal(err)
		}
		cl.announce(t, 1)
		cl.expectRoute(t, 2, moved, b.host.Underlay, 5*time.Second)
		cl.expectRoute(t, 0, moved, b.host.Underlay, 5*time.Second)
		if err := c.ctr.WaitReachable(b.ctr.Addr.Addr(), 5*time.Second); err != nil {
			t.Errorf("c -> b after the move: %v", err)
		}
	})

	t.Run("hostile keys", func(t *testing.T) {
		cli := cl.etcd[0].Client(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		bad := map[string]string{
			"/vtepd/v1/vni/200/mac/02:42:c6:13:00:77": `{"vtep":`,              // bad_json
			"/vtepd/v1/vni/200/mac/02:42:c6:13:00":    `{"vtep":"198.18.0.9"}`, // bad_mac
			"/vtepd/v1/vni/200/vtep/2001:db8::9":      `{"port":4789}`,         // wrong_family
			"/vtepd/v1/vni/200/ip/198.19.0.77":        `{"mac":"01:00:5e:00:00:01"}`,
			"/vtepd/v1/vni/999/mac/02:42:c6:13:00:78": `{"vtep":"198.18.0.9"}`, // unknown_vni
			"/vtepd/v1/vni/200/mac/02:42:c6:13:00:79": `{"vtep":"nowhere"}`,    // bad_ip
		}
		for k, v := range bad {
			if _, err := cli.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
		// A good key after them still gets through.
		good := net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x7a}
		if _, err := cli.Put(ctx, "/vtepd/v1/vni/200/mac/"+good.String(), `{"vtep":"198.18.0.9"}`); err != nil {
			t.Fatal(err)
		}
		cl.expectRoute(t, 0, good, netip.MustParseAddr("198.18.0.9"), 5*time.Second)
		for _, reason := range []string{"bad_json", "bad_mac", "wrong_family", "group_mac", "unknown_vni", "bad_ip"} {
			if v := metric(t, cl.nodes[0].host, "vtep_control_errors_total", "reason", reason); v < 1 {
				t.Errorf("vtep_control_errors_total{reason=%q} = %v", reason, v)
			}
		}
		if _, ok := cl.fdbOf(t, 0, net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, 0x79}); ok {
			t.Error("an entry for a key with a bad value")
		}
		if cl.nodes[0].vtepd.Exited() {
			t.Fatal("vtepd exited")
		}
		cli.Delete(ctx, "/vtepd/v1/vni/200/mac/"+good.String())
	})

	t.Run("sigkill", func(t *testing.T) {
		// c dies without a word: its lease runs out, and its entries
		// leave a and b within lease_ttl and a second.
		c := cl.nodes[2]
		start := time.Now()
		if err := c.vtepd.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			eventually(t, controlLeaseTTL+time.Second, fmt.Sprintf("%s forgets c", cl.nodes[i].host.Name), func() error {
				if en, ok := cl.fdbOf(t, i, c.mac); ok {
					return fmt.Errorf("entry %+v", en)
				}
				st := cl.call(t, i, admin.Request{Cmd: admin.CmdControl}).Control
				if st.Entries[0].RemoteVTEPs != 1 {
					return fmt.Errorf("remote VTEPs %d", st.Entries[0].RemoteVTEPs)
				}
				return nil
			})
		}
		t.Logf("c's entries left a and b %v after SIGKILL (lease_ttl %v)", time.Since(start).Round(10*time.Millisecond), controlLeaseTTL)
	})
}

// getKeys lists the keys under prefix.
func getKeys(t *testing.T, cli *clientv3.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	slices.Sort(keys)
	return keys
}

// TestIntegrationControlStartsWithoutEtcd: a vtepd whose etcd is down when
// it starts comes up all the same and forwards with its static peers and
// learning; when etcd comes, it connects, registers and publishes, and
// the control plane's entries take over.
func TestIntegrationControlStartsWithoutEtcd(t *testing.T) {
	t.Parallel()
	cl := newControlLab(t, "vcw", 2, 1)
	cl.etcd[0].Kill()
	for i, n := range cl.nodes {
		cfg := strings.Replace(cl.config(i, ""), "peers = []", fmt.Sprintf("peers = [%q]", cl.nodes[1-i].host.Underlay), 1)
		n.runVtepd(t, strings.Replace(cfg, "learning = false", "learning = true", 1))
	}
	for i := range cl.nodes {
		if v := metric(t, cl.nodes[i].host, "vtep_control_connected"); v != 0 {
			t.Errorf("%s: vtep_control_connected = %v with etcd down", cl.nodes[i].host.Name, v)
		}
	}
	pingEach(t, cl.nodes)
	for i, n := range cl.nodes {
		expectFDB(t, n.host, cl.nodes[1-i].mac, "learned", cl.nodes[1-i].host.Underlay)
	}

	cl.etcd[0].Restart()
	keys := func() []string { return getKeys(t, cl.etcd[0].Client(nil), "/vtepd/v1/vni/200/vtep/") }
	eventually(t, 10*time.Second, "both vtepds registered", func() error {
		if k := keys(); len(k) != 2 {
			return fmt.Errorf("vtep keys %q", k)
		}
		return nil
	})
	for i := range cl.nodes {
		cl.announce(t, 1-i)
		cl.expectRoute(t, i, cl.nodes[1-i].mac, cl.nodes[1-i].host.Underlay, 5*time.Second)
		if v := metric(t, cl.nodes[i].host, "vtep_control_connected"); v != 1 {
			t.Errorf("%s: vtep_control_connected = %v with etcd up", cl.nodes[i].host.Name, v)
		}
	}
	pingEach(t, cl.nodes)
}
