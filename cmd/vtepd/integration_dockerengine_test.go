//go:build linux

package main

// The README's Docker guide against a real Docker engine: a dockerd in
// each host's network namespace (topo.Dockerd) creates the guide's network
// and runs its containers, with Docker's own veths, MACs and iptables
// rules, and vtepd runs the shipped configs/docker.toml. The checks are
// the guide's own commands. TestIntegrationDockerBridge, beside it,
// imitates Docker to show what a network left at MTU 1500 does.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/etcdtest"
	"github.com/vtepd/vtepd/internal/topo"
)

const (
	dockerNetwork = "overlay200"    // the guide's network
	dockerImage   = "vtepd/busybox" // imported from busybox-static: no registry
)

// dockerNode is a node whose host runs a Docker engine with the guide's
// network and one container on it. node.ctr is that container's network
// namespace and node.mac its MAC, so the node helpers work on it.
type dockerNode struct {
	*node
	dockerd *topo.Dockerd
	web     *topo.DockerContainer
}

// newDockerEngineNodes follows steps 1 and 2 of the README's Docker guide
// on n hosts 198.18.0.<i+1>: a Docker engine on each, the network
//
//	docker network create --opt com.docker.network.bridge.name=vx200 \
//	  --opt com.docker.network.driver.mtu=1450 \
//	  --subnet 198.19.0.0/24 --gateway 198.19.0.<i+1> overlay200
//
// and `docker run -d --name web<i+1> --network overlay200 --ip
// 198.19.0.<10+i> vtepd/busybox sleep 86400`. The engines start at once:
// that is most of the time it takes. Step 3, vtepd, is the caller's: the
// shipped configuration (dockerConfig) or a control plane.
func newDockerEngineNodes(t *testing.T, lab *topo.Lab, n int) []*dockerNode {
	t.Helper()
	hosts := make([]*topo.Host, n)
	for i := range hosts {
		hosts[i] = addHost(t, lab, i, v4Underlay)
	}
	start := time.Now()
	engines := make([]*topo.Dockerd, n)
	webs := make([]*topo.DockerContainer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			engines[i], webs[i], errs[i] = dockerGuideHost(h, i)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Docker engines with %s and a container each in %v", n, dockerNetwork, time.Since(start).Round(time.Millisecond))
	nodes := make([]*dockerNode, n)
	for i, h := range hosts {
		nodes[i] = &dockerNode{node: newNode(t, h, webs[i].Net), dockerd: engines[i], web: webs[i]}
		if nodes[i].mac.String() != webs[i].MAC.String() {
			t.Fatalf("%s: eth0 of %s has MAC %v, docker inspect says %v", h.Name, webs[i].Name, nodes[i].mac, webs[i].MAC)
		}
	}
	return nodes
}

// dockerGuideHost is steps 1 and 2 of the guide on host i.
func dockerGuideHost(h *topo.Host, i int) (*topo.Dockerd, *topo.DockerContainer, error) {
	d, err := h.StartDockerd()
	if err != nil {
		return nil, nil, err
	}
	if err := d.ImportBusybox(dockerImage); err != nil {
		return d, nil, err
	}
	err = d.Network(topo.DockerNetwork{
		Name:    dockerNetwork,
		Bridge:  dockerBridge,
		MTU:     innerMTU,
		Subnet:  netip.MustParsePrefix("198.19.0.0/24"),
		Gateway: netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}),
	})
	if err != nil {
		return d, nil, err
	}
	web, err := d.Run("web"+strconv.Itoa(i+1), dockerNetwork, netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + i)}), dockerImage, "sleep", "86400")
	return d, web, err
}

// pingReport matches the summary of busybox's and iputils' ping.
var pingReport = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// allReplies fails the test unless ping's output reports want echoes sent
// and as many replies.
func allReplies(t *testing.T, what string, out []byte, err error, want int) {
	t.Helper()
	m := pingReport.FindSubmatch(out)
	if err != nil || m == nil || string(m[1]) != strconv.Itoa(want) || string(m[2]) != strconv.Itoa(want) {
		t.Errorf("%s: %v; want %d of %d replies:\n%s", what, err, want, want, out)
	}
}

// TestIntegrationDockerEngine follows the README's Docker guide on two
// hosts, each running a real Docker engine: the network and a container
// per host made by Docker (steps 1 and 2), vtepd with configs/docker.toml
// (step 3), then the guide's checks: the ports of vx200, `docker exec web1
// ping -c 3 198.19.0.11`, a full-size packet with DF set through nsenter,
// 1 MiB of TCP between the containers with busybox nc, arriving intact,
// and `vtepctl fdb show vni 200` listing the other host's container.
// Docker's iptables rules are in force in each host, as on a real one.
func TestIntegrationDockerEngine(t *testing.T) {
	t.Parallel()
	topo.RequireDocker(t)
	lab := topo.NewT(t, "vde")
	nodes := newDockerEngineNodes(t, lab, 2)
	sockets := make([]string, len(nodes))
	for i, n := range nodes {
		var cfg string
		cfg, sockets[i] = dockerConfig(t, i)
		n.runVtepd(t, cfg)
	}
	web1, web2 := nodes[0].web, nodes[1].web

	// ip -d link show master vx200: vtep200 is a port, MTU 1450, beside
	// the container's veth.
	for _, n := range nodes {
		out, err := n.host.Exec("ip", "-d", "-o", "link", "show", "master", dockerBridge)
		if err != nil {
			t.Fatal(err)
		}
		ports := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(ports) != 2 || !strings.Contains(string(out), " "+tapName+": ") {
			t.Errorf("%s: want %s and one veth on %s:\n%s", n.host.Name, tapName, dockerBridge, out)
		}
		for _, p := range ports {
			if !strings.Contains(p, " mtu "+strconv.Itoa(innerMTU)+" ") {
				t.Errorf("%s: a port of %s without MTU %d: %s", n.host.Name, dockerBridge, innerMTU, p)
			}
		}
	}

	// docker exec web1 ping -c 3 198.19.0.11, and back. The first ARP
	// exchange crosses vtepd's flooding; wait for it, then want 3 of 3.
	for _, p := range [][2]*dockerNode{{nodes[0], nodes[1]}, {nodes[1], nodes[0]}} {
		from, to := p[0].web, p[1].web
		if err := from.Net.WaitReachable(to.Addr.Addr(), 5*time.Second); err != nil {
			t.Fatalf("%s -> %s: %v", from.Name, to.Name, err)
		}
		out, err := from.Exec("ping", "-c", "3", to.Addr.Addr().String())
		allReplies(t, "docker exec "+from.Name+" ping -c 3 "+to.Addr.Addr().String(), out, err, 3)
	}

	// The full-size packet with DF set, the host's ping in web1's
	// namespace: 1422 bytes of payload + 28 = 1450, the network's MTU.
	out, err := web1.Nsenter("ping", "-c", "3", "-M", "do", "-s", strconv.Itoa(innerMTU-28), web2.Addr.Addr().String())
	allReplies(t, "nsenter -n -t <web1> ping -M do -s 1422", out, err, 3)

	// 1 MiB of TCP, hundreds of full-size segments, from web1 to web2.
	dockerTransfer(t, web1, web2, transferSize)

	// vtepctl fdb show vni 200: each host has learned the other's
	// container behind the other's underlay address.
	for i, n := range nodes {
		other := nodes[1-i]
		out, errOut, code := ctl(t, sockets[i], "fdb", "show", "vni", "200")
		if code != 0 {
			t.Fatalf("%s: vtepctl fdb show: exit %d: %s", n.host.Name, code, errOut)
		}
		if !hasFDBLine(out, other.web.MAC, other.host.Underlay, "learned") {
			t.Errorf("%s: vtepctl fdb show lacks %s (%s) dst %s learned:\n%s", n.host.Name, other.web.MAC, other.web.Name, other.host.Underlay, out)
		}
		t.Logf("%s: vtepctl fdb show vni 200:\n%s", n.host.Name, out)
		if v := metric(t, n.host, "vtep_drops_total", "reason", "too_big", "vni", "200"); v != 0 {
			t.Errorf(`%s: vtep_drops_total{reason="too_big"} = %v, want 0 at MTU %d`, n.host.Name, v, innerMTU)
		}
	}

	// Docker's rules were in force: FORWARD drops what no rule accepts,
	// and frames between vx200's ports (vtep200 and the veth) pass
	// iptables when the namespace has bridge-nf-call-iptables on.
	for _, n := range nodes {
		rules, err := n.host.Exec("iptables", "-S", "FORWARD")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"-P FORWARD DROP", "-A FORWARD -i " + dockerBridge + " -o " + dockerBridge + " -j ACCEPT"} {
			if !strings.Contains(string(rules), want) {
				t.Errorf("%s: FORWARD chain lacks %q:\n%s", n.host.Name, want, rules)
			}
		}
		nf, _ := n.host.Exec("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables")
		counters, err := n.host.Exec("iptables", "-L", "FORWARD", "-v", "-n", "-x")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: bridge-nf-call-iptables=%s; iptables -L FORWARD -v:\n%s", n.host.Name, bytes.TrimSpace(nf), counters)
		if strings.TrimSpace(string(nf)) == "1" && forwardAccepted(counters, dockerBridge) == 0 {
			t.Errorf("%s: bridged frames pass iptables, yet the -i %s -o %s ACCEPT rule counted none", n.host.Name, dockerBridge, dockerBridge)
		}
	}
	t.Logf("Docker gave %s the MAC %v; the README shows 02:42:c6:13:00:0b for 198.19.0.11", web2.Name, web2.MAC)
}

// forwardAccepted returns the packet count of FORWARD's "-i br -o br -j
// ACCEPT" rule in `iptables -L FORWARD -v -n -x` output.
func forwardAccepted(listing []byte, br string) int {
	for _, line := range strings.Split(string(listing), "\n") {
		// pkts bytes target prot opt in out source destination
		f := strings.Fields(line)
		if len(f) == 9 && f[2] == "ACCEPT" && f[5] == br && f[6] == br {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// dockerTransfer sends size random bytes from container from to container
// to over TCP with busybox nc, each end a `docker exec`, and fails the
// test unless all of them arrive with the same SHA-256.
func dockerTransfer(t *testing.T, from, to *topo.DockerContainer, size int) {
	t.Helper()
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(payload)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := strconv.Itoa(transferPort)

	// The receiver's stdin stays open until the end: busybox nc half-closes
	// the connection when its stdin ends, and the sender, seeing that,
	// would stop sending.
	recv := to.Dockerd.Command(ctx, "exec", "-i", to.Name, "nc", "-l", "-p", port)
	stdin, err := recv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	h := sha256.New()
	var got countWriter
	var recvErr bytes.Buffer
	recv.Stdout, recv.Stderr = io.MultiWriter(h, &got), &recvErr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "nc listening in "+to.Name, func() error {
		out, err := to.Exec("netstat", "-ltn")
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), ":"+port+" ") {
			return fmt.Errorf("not yet:\n%s", out)
		}
		return nil
	})

	start := time.Now()
	send := from.Dockerd.Command(ctx, "exec", "-i", from.Name, "nc", to.Addr.Addr().String(), port)
	send.Stdin = bytes.NewReader(payload)
	sendOut, sendErr := send.CombinedOutput()
	waitErr := recv.Wait()
	if sendErr != nil || waitErr != nil {
		t.Fatalf("nc %s -> %s: sender %v %s; receiver %v %s; %d of %d bytes arrived", from.Name, to.Name, sendErr, sendOut, waitErr, recvErr.Bytes(), got, size)
	}
	if int(got) != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("nc %s -> %s: received %d bytes with SHA-256 %x; sent %d with %x", from.Name, to.Name, got, h.Sum(nil), size, want)
	}
	t.Logf("nc %s -> %s: %d bytes intact in %v", from.Name, to.Name, size, time.Since(start).Round(time.Millisecond))
}

// countWriter counts what is written to it.
type countWriter int64

func (c *countWriter) Write(b []byte) (int, error) {
	*c += countWriter(len(b))
	return len(b), nil
}

// controlExample is the configuration of the guide's control-plane
// variant.
const controlExample = "../../configs/control.toml"

// controlDockerConfig returns configs/control.toml as host n installs it:
// its own underlay address, the lab's etcd, and the admin socket at a
// temporary path.
func controlDockerConfig(t *testing.T, n int, endpoint string) (cfg, socket string) {
	t.Helper()
	cfg = readExample(t, controlExample, `local = "198.18.0.1"`, `endpoints = ["http://198.18.0.250:2379"]`, `bridge = "`+dockerBridge+`"`, `listen = "`+metricsAddr+`"`, `vni = 200`)
	if strings.Contains(cfg, "\npeers") {
		t.Fatalf("%s: want no peers", controlExample)
	}
	cfg = strings.NewReplacer(`local = "198.18.0.1"`, fmt.Sprintf(`local = "198.18.0.%d"`, n+1),
		`"http://198.18.0.250:2379"`, strconv.Quote(endpoint)).Replace(cfg)
	return withTempSocket(t, cfg)
}

// TestIntegrationDockerEngineControl follows the guide's control-plane
// variant on two Docker hosts and an etcd: configs/control.toml, with no
// peers; the containers reach each other, vtepctl control shows the other
// host, vtepctl fdb show has its container as a control entry, and the
// containers' ARP requests are answered by vtepd.
func TestIntegrationDockerEngineControl(t *testing.T) {
	t.Parallel()
	topo.RequireDocker(t)
	lab := topo.NewT(t, "vdc")
	etcd := etcdtest.Start(t, etcdOptions(etcdHost(t, lab)))
	nodes := newDockerEngineNodes(t, lab, 2)
	sockets := make([]string, len(nodes))
	for i, n := range nodes {
		var cfg string
		cfg, sockets[i] = controlDockerConfig(t, i, etcd.ClientURL)
		n.runVtepd(t, cfg)
	}
	// Each container speaks on its own bridge first (its vtepd publishes
	// its MAC and address), then to the other.
	for _, n := range nodes {
		n.web.Exec("ping", "-c", "1", "-W", "1", "198.19.0.250")
	}
	for i, n := range nodes {
		other := nodes[1-i]
		eventually(t, 5*time.Second, n.host.Name+" has "+other.web.Name+" from etcd", func() error {
			out, _, code := ctl(t, sockets[i], "fdb", "show", "vni", "200")
			if code != 0 || !hasFDBLine(out, other.web.MAC, other.host.Underlay, "control") {
				return fmt.Errorf("vtepctl fdb show vni 200:\n%s", out)
			}
			return nil
		})
	}
	for _, p := range [][2]*dockerNode{{nodes[0], nodes[1]}, {nodes[1], nodes[0]}} {
		from, to := p[0].web, p[1].web
		out, err := from.Exec("ping", "-c", "3", to.Addr.Addr().String())
		allReplies(t, "docker exec "+from.Name+" ping -c 3 "+to.Addr.Addr().String(), out, err, 3)
	}
	for i, n := range nodes {
		out, errOut, code := ctl(t, sockets[i], "control")
		if code != 0 || !strings.Contains(out, "connected  yes") {
			t.Errorf("%s: vtepctl control: exit %d %s\n%s", n.host.Name, code, errOut, out)
		}
		t.Logf("%s: vtepctl control:\n%s", n.host.Name, out)
		if v := metric(t, n.host, "vtep_arp_suppressed_total", "vni", "200"); v < 1 {
			t.Errorf("%s: vtep_arp_suppressed_total = %v, want the container's ARP request answered", n.host.Name, v)
		}
	}
}
