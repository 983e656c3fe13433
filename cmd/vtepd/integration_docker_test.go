//go:build linux

package main

// The README's Docker guide, end to end: a bridge network made the way
// `docker network create --opt com.docker.network.bridge.name=vx200
// --opt com.docker.network.driver.mtu=1450` makes it (topo.DockerBridge),
// a container on it per host, and vtepd on each host running the shipped
// configs/docker.toml. No Docker daemon is involved.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

const (
	dockerExample = "../../configs/docker.toml"
	dockerBridge  = "vx200" // the example's bridge, com.docker.network.bridge.name
	dockerMTU     = 1500    // Docker's MTU when the network is created without the option
	transferPort  = 5201
	transferSize  = 1 << 20 // more than 700 frames at MTU 1450
)

// newDockerNodes adds hosts 198.18.0.1 and 198.18.0.2, each with bridge
// vx200 (gateway 198.19.0.<i+1>/24, MTU mtu) and a container "web" at
// 198.19.0.<10+i>, the addresses the guide uses.
func newDockerNodes(t *testing.T, lab *topo.Lab, mtu int) []*node {
	t.Helper()
	return addNodes(t, lab, 2, v4Underlay, func(h *topo.Host, i int) (*topo.Container, error) {
		br, err := h.AddDockerBridge(dockerBridge, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 24), mtu)
		if err != nil {
			return nil, err
		}
		return br.Run("web", netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + i)}))
	})
}

var adminSocketLine = regexp.MustCompile(`(?m)^(\s*socket\s*=\s*)"[^"]*"`)

// dockerConfig returns configs/docker.toml as host n (0 or 1) of
// newDockerNodes installs it, and the admin socket it names. The example
// is host 1's (local 198.18.0.1, peer 198.18.0.2); the second host swaps
// the two, as the file says. The admin socket moves to a temporary path:
// the lab's hosts share one file system, with this machine too.
func dockerConfig(t *testing.T, n int) (cfg, socket string) {
	t.Helper()
	// The helpers of integration_test.go expect these; say so if the
	// example drifts rather than fail later on a timeout.
	cfg = readExample(t, dockerExample, `local = "198.18.0.1"`, `peers = ["198.18.0.2"]`, `bridge = "`+dockerBridge+`"`, `listen = "`+metricsAddr+`"`, `vni = 200`)
	if n == 1 {
		cfg = strings.NewReplacer(`"198.18.0.1"`, `"198.18.0.2"`, `"198.18.0.2"`, `"198.18.0.1"`).Replace(cfg)
	}
	return withTempSocket(t, cfg)
}

// readExample returns the example configuration at path, and fails t if
// it no longer has each of want, which the test relies on, or has other
// than one [admin] socket line (the guides use vtepctl), which
// withTempSocket points at a temporary path.
func readExample(t *testing.T, path string, want ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, w := range want {
		if !strings.Contains(cfg, w) {
			t.Fatalf("%s no longer has %s, which this test relies on", path, w)
		}
	}
	if len(adminSocketLine.FindAllString(cfg, -1)) != 1 {
		t.Fatalf("%s: want one [admin] socket line (the guide uses vtepctl), to point at a temporary path here", path)
	}
	return cfg
}

// withTempSocket returns cfg with its admin socket moved to a temporary
// path, and that path: the lab's hosts share one file system, with this
// machine too. It also empties state_dir (a top-level key, so it goes
// first), to keep tests out of the host's /var/lib/vtepd.
func withTempSocket(t *testing.T, cfg string) (string, string) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "vtepd.sock")
	return "state_dir = \"\"\n" + adminSocketLine.ReplaceAllString(cfg, `${1}"`+socket+`"`), socket
}

// tcpReceived is what the receiving side of transferTCP saw.
type tcpReceived struct {
	n   int64    // bytes received
	sum [32]byte // their SHA-256
	err error    // nil when the sender closed the connection in time
}

// transferTCP sends size random bytes over TCP from container from to
// container to, each socket opened inside its container's namespace, and
// returns what arrived before timeout along with the SHA-256 of what was
// sent. sendErr is the sender's error, if any (a timeout when the path
// black-holes full-size segments).
func transferTCP(t *testing.T, from, to *topo.Container, size int, timeout time.Duration) (got tcpReceived, want [32]byte, sendErr error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	dst := netip.AddrPortFrom(to.Addr.Addr(), transferPort).String()
	var ln *net.TCPListener
	err := to.Do(func() error {
		l, err := net.Listen("tcp4", dst)
		if err != nil {
			return err
		}
		ln = l.(*net.TCPListener)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ln.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	results := make(chan tcpReceived, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			results <- tcpReceived{err: err}
			return
		}
		defer conn.Close()
		if err := conn.SetDeadline(deadline); err != nil {
			results <- tcpReceived{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, conn)
		r := tcpReceived{n: n, err: err}
		copy(r.sum[:], h.Sum(nil))
		results <- r
	}()

	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	want = sha256.Sum256(payload)
	var conn *net.TCPConn
	err = from.Do(func() error {
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp4", dst)
		if err != nil {
			return err
		}
		conn = c.(*net.TCPConn)
		return nil
	})
	if err != nil {
		// Unblock the server's Accept before waiting for it.
		ln.Close()
		<-results
		t.Fatalf("%s -> %s: dial: %v", from.Host.Name, dst, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(conn, bytes.NewReader(payload)); err != nil {
		sendErr = err
	} else {
		sendErr = conn.CloseWrite()
	}
	return <-results, want, sendErr
}

// TestIntegrationDockerBridge follows the README's Docker guide: a named
// bridge with MTU 1450 on each host, containers with distinct addresses
// in one subnet, and vtepd with configs/docker.toml. A TCP transfer of
// 1 MiB, hundreds of full-size frames, must arrive intact. The second case
// is the guide's warning: with Docker's default MTU of 1500 on the
// containers, small packets cross and full-size ones do not.
func TestIntegrationDockerBridge(t *testing.T) {
	t.Parallel()

	t.Run("mtu1450", func(t *testing.T) {
		t.Parallel()
		lab := topo.NewT(t, "vdk")
		nodes := newDockerNodes(t, lab, innerMTU)
		sockets := make([]string, len(nodes))
		for i, n := range nodes {
			var cfg string
			cfg, sockets[i] = dockerConfig(t, i)
			n.runVtepd(t, cfg)
		}
		a, b := nodes[0], nodes[1]

		// vtepd's TAP is a port of vx200 with the same MTU as the
		// containers: the bridge forwards every frame they may send.
		for _, n := range nodes {
			br, err := n.host.Link(dockerBridge)
			if err != nil {
				t.Fatal(err)
			}
			tap, err := n.host.Link(tapName)
			if err != nil {
				t.Fatal(err)
			}
			if tap.MasterIndex != br.Index {
				t.Errorf("%s: %s is not a port of %s (master index %d, bridge index %d)", n.host.Name, tapName, dockerBridge, tap.MasterIndex, br.Index)
			}
			if tap.MTU != innerMTU || br.MTU != innerMTU {
				t.Errorf("%s: MTU of %s %d, of %s %d; want %d for both", n.host.Name, tapName, tap.MTU, dockerBridge, br.MTU, innerMTU)
			}
		}

		pingEach(t, nodes)
		before, err := scrape(b.host)
		if err != nil {
			t.Fatal(err)
		}
		aBefore, err := scrape(a.host)
		if err != nil {
			t.Fatal(err)
		}

		got, want, sendErr := transferTCP(t, a.ctr, b.ctr, transferSize, 20*time.Second)
		if sendErr != nil || got.err != nil {
			t.Fatalf("TCP %s -> %s: send: %v; receive: %v after %d of %d bytes", a.ctr.Addr.Addr(), b.ctr.Addr.Addr(), sendErr, got.err, got.n, transferSize)
		}
		if got.n != transferSize || got.sum != want {
			t.Fatalf("TCP %s -> %s: received %d bytes with SHA-256 %x; sent %d with %x", a.ctr.Addr.Addr(), b.ctr.Addr.Addr(), got.n, got.sum, transferSize, want)
		}

		// The data crossed vtepd as frames of at most 1450 bytes of IP.
		minFrames := float64(transferSize / innerMTU)
		after, err := scrape(b.host)
		if err != nil {
			t.Fatal(err)
		}
		aAfter, err := scrape(a.host)
		if err != nil {
			t.Fatal(err)
		}
		delta := func(before, after []sample, name string, labels ...string) float64 {
			v0, _ := metricValue(before, name, labels...)
			v1, _ := metricValue(after, name, labels...)
			return v1 - v0
		}
		if d := delta(before, after, "vtep_rx_packets_total", "vni", "200"); d <= minFrames {
			t.Errorf(`b: vtep_rx_packets_total{vni="200"} rose by %v, want more than %v`, d, minFrames)
		}
		if d := delta(before, after, "vtep_rx_bytes_total", "vni", "200"); d < transferSize {
			t.Errorf(`b: vtep_rx_bytes_total{vni="200"} rose by %v, want at least %d`, d, transferSize)
		}
		if d := delta(aBefore, aAfter, "vtep_tx_packets_total", "vni", "200"); d <= minFrames {
			t.Errorf(`a: vtep_tx_packets_total{vni="200"} rose by %v, want more than %v`, d, minFrames)
		}
		if v, _ := metricValue(aAfter, "vtep_drops_total", "reason", "too_big"); v != 0 {
			t.Errorf(`a: vtep_drops_total{reason="too_big"} = %v, want 0 with MTU %d`, v, innerMTU)
		}

		// The guide's check: each host learned the other's container
		// behind the other's underlay address, in GET /fdb and in
		// `vtepctl fdb show`.
		expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)
		expectFDB(t, b.host, a.mac, "learned", a.host.Underlay)
		for i, n := range nodes {
			other := nodes[1-i]
			out, errOut, code := ctl(t, sockets[i], "fdb", "show", "vni", "200")
			if code != 0 {
				t.Fatalf("%s: vtepctl fdb show: exit %d: %s", n.host.Name, code, errOut)
			}
			if !hasFDBLine(out, other.mac, other.host.Underlay, "learned") {
				t.Errorf("%s: vtepctl fdb show lacks %s dst %s learned:\n%s", n.host.Name, other.mac, other.host.Underlay, out)
			}
			t.Logf("%s: vtepctl fdb show vni 200:\n%s", n.host.Name, out)
		}
	})

	t.Run("mtu1500", func(t *testing.T) {
		t.Parallel()
		lab := topo.NewT(t, "vdx")
		nodes := newDockerNodes(t, lab, dockerMTU)
		for i, n := range nodes {
			cfg, _ := dockerConfig(t, i)
			n.runVtepd(t, cfg)
		}
		a, b := nodes[0], nodes[1]
		dst := b.ctr.Addr.Addr()

		pingEach(t, nodes)
		// What fits the TAP still crosses...
		if err := a.ctr.Ping(dst, 2, innerMTU-20-8, true); err != nil {
			t.Errorf("%d-byte IP packet with DF: %v", innerMTU, err)
		}
		// ...a full-size packet leaves the container (its MTU is 1500)
		// and the bridge drops it in front of the 1450-byte TAP: no ICMP
		// error for the sender, nothing for vtepd to count.
		tooBig := metric(t, a.host, "vtep_drops_total", "reason", "too_big", "vni", "200")
		if err := a.ctr.Ping(dst, 2, dockerMTU-20-8, true); err == nil {
			t.Errorf("ping -M do -s %d crossed a %d-byte TAP", dockerMTU-20-8, innerMTU)
		}
		if v := metric(t, a.host, "vtep_drops_total", "reason", "too_big", "vni", "200"); v != tooBig {
			t.Errorf(`a: vtep_drops_total{reason="too_big"} went from %v to %v on a ping the bridge should drop`, tooBig, v)
		}

		// TCP connects (the handshake is small) and then stalls. Its
		// full-size segments travel as GSO packets, which the bridge
		// passes on and the TAP cuts into 1514-byte frames; vtepd reads
		// those and cannot send them with DF set, so here the loss shows
		// as too_big.
		got, _, sendErr := transferTCP(t, a.ctr, b.ctr, transferSize, 3*time.Second)
		if got.n >= transferSize {
			t.Errorf("TCP moved %d bytes through a path that drops full-size frames", got.n)
		}
		if !isNetTimeout(got.err) && !isNetTimeout(sendErr) {
			t.Errorf("TCP over MTU %d: receive error %v, send error %v; want a timeout", dockerMTU, got.err, sendErr)
		}
		if v := metric(t, a.host, "vtep_drops_total", "reason", "too_big", "vni", "200"); v <= tooBig {
			t.Errorf(`a: vtep_drops_total{reason="too_big"} = %v after the stalled transfer, want more than %v`, v, tooBig)
		}
		t.Logf("MTU %d: %d of %d bytes arrived in 3 s; the sender: %v", dockerMTU, got.n, transferSize, sendErr)
	})
}

// hasFDBLine reports whether vtepctl's `fdb show` text has the line
// "MAC dst REMOTE vni N TYPE ...".
func hasFDBLine(out string, mac net.HardwareAddr, remote netip.Addr, typ string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.EqualFold(f[0], mac.String()) && f[1] == "dst" && f[2] == remote.String() && f[5] == typ {
			return true
		}
	}
	return false
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
