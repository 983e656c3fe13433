//go:build linux

package main

// Integration tests of vtepd's hardening: the learning cap under a MAC
// flood, accept_from, [limits] learn_rate, flood_rate, inner_vlan and the
// own-MAC loop guard. Each asserts the counter that proves the feature
// acted, not only that traffic still flows. Hand-made VXLAN datagrams come
// from an injector socket opened in a lab host (inject), and what vtepd
// counted is read as rises of its metrics (expectRise). The helpers here
// are shared with integration_faults_test.go and
// integration_reload_test.go.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/internal/topo"
)

// hcfg is what a hardening test adds to config's rendering. Every
// configuration it renders turns off the state directory (on the host's
// /var/lib by default) unless the test sets state_dir itself, and the
// admin socket (shared by default) unless the test names one in admin.
type hcfg struct {
	top     []string // top-level keys, e.g. `state_dir = "/tmp/x"`
	admin   string   // [admin] socket; empty: none
	limits  []string // keys of [limits]
	network []string // more keys of the [[network]]
}

func (c hcfg) render(h *topo.Host, peers []netip.Addr) string {
	var b strings.Builder
	stateDir := false
	for _, l := range c.top {
		stateDir = stateDir || strings.HasPrefix(l, "state_dir")
		b.WriteString(l + "\n")
	}
	if !stateDir {
		b.WriteString("state_dir = \"\"\n")
	}
	fmt.Fprintf(&b, "\n[admin]\nsocket = %q\n\n", c.admin)
	if len(c.limits) > 0 {
		b.WriteString("[limits]\n" + strings.Join(c.limits, "\n") + "\n\n")
	}
	// config ends inside the [[network]] table (no static entries).
	b.WriteString(configBody(h, peers))
	for _, l := range c.network {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// addInjector adds a host 198.18.0.<i> to the lab, on the underlay but
// running nothing: a source of hand-made datagrams that no vtepd lists
// as a peer.
func addInjector(t *testing.T, lab *topo.Lab, name string, i byte) *topo.Host {
	t.Helper()
	h, err := lab.AddHost(name, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, i}), 24), 1500)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// quietNodes is the lab of most hardening tests: hosts a and b with a
// container each, kept quiet.
func quietNodes(t *testing.T, prefix string) (*topo.Lab, []*node) {
	t.Helper()
	lab := topo.NewT(t, prefix)
	nodes := newNodes(t, lab, 2)
	quiet(t, nodes)
	return lab, nodes
}

// runPair starts vtepd on nodes[0] with cfgA and on nodes[1] with the
// defaults, and waits until their containers reach each other.
func runPair(t *testing.T, nodes []*node, cfgA hcfg) {
	t.Helper()
	for i, cfg := range []hcfg{cfgA, {}} {
		nodes[i].runVtepd(t, cfg.render(nodes[i].host, peersOf(nodes, i)))
	}
	pingEach(t, nodes)
}

// quiet keeps the lab silent between what a test sends, so that it can
// count packets exactly: IPv6 off in the namespaces of nodes (hosts,
// before vtepd creates its TAP, and containers: no router solicitation,
// MLD report or DAD probe), and permanent neighbour entries between the
// containers (no ARP, in particular no unicast probe a few seconds after
// a ping). The first packet to another container is then unknown unicast,
// flooded, as ARP requests otherwise are. And the hosts send no IGMP
// reports for link-local groups: br0 joins 224.0.0.106 (it snoops), and
// reports it again when a port such as vtepd's TAP joins.
func quiet(t *testing.T, nodes []*node) {
	t.Helper()
	args := []string{"-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
	for _, n := range nodes {
		if _, err := n.host.Exec("sysctl", args...); err != nil {
			t.Fatal(err)
		}
		if _, err := n.host.Exec("sysctl", "-q", "-w", "net.ipv4.igmp_link_local_mcast_reports=0"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ctr.Exec("sysctl", args...); err != nil {
			t.Fatal(err)
		}
		for _, other := range nodes {
			if other == n {
				continue
			}
			_, err := n.ctr.Exec("ip", "neigh", "replace", other.ctr.Addr.Addr().String(),
				"lladdr", other.mac.String(), "dev", "eth0", "nud", "permanent")
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ethFrame returns a 60-byte Ethernet frame dst <- src with the IEEE
// local experimental EtherType, which no stack on a bridge answers; with
// vid > 0, behind an 802.1Q tag of that VLAN.
func ethFrame(dst, src net.HardwareAddr, vid uint16) []byte {
	frame := make([]byte, 60)
	copy(frame[0:6], dst)
	copy(frame[6:12], src)
	i := 12
	if vid > 0 {
		binary.BigEndian.PutUint16(frame[12:], 0x8100)
		binary.BigEndian.PutUint16(frame[14:], vid)
		i = 16
	}
	binary.BigEndian.PutUint16(frame[i:], 0x88b5)
	return frame
}

// payloads makes inject's datagrams: datagram i is a VXLAN header of VNI
// testVNI and frame, with its source MAC replaced by src(i). Each call
// returns the same slice, rewritten.
func payloads(frame []byte, src func(i int) net.HardwareAddr) func(i int) []byte {
	d := append(vxlanHeader(0x08, testVNI), frame...)
	return func(i int) []byte {
		copy(d[8+6:8+12], src(i))
		return d
	}
}

// same is a src for payloads: always mac.
func same(mac net.HardwareAddr) func(int) net.HardwareAddr {
	return func(int) net.HardwareAddr { return mac }
}

// floodMAC is the i-th of 2^32 distinct, random-looking, locally
// administered unicast MACs: multiplying by an odd constant is a
// bijection modulo 2^32.
func floodMAC(salt byte, i int) net.HardwareAddr {
	mac := net.HardwareAddr{0x02, salt, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(mac[2:], uint32(i)*0x9e3779b1)
	return mac
}

// inject sends n datagrams from from's underlay address to to's VXLAN
// port, payload(i) the i-th. To lose nothing to a full socket buffer, it
// pauses while vtepd's receive sockets hold more than a megabyte; it
// fails the test if the kernel still dropped some.
func inject(t *testing.T, from, to *topo.Host, n int, payload func(i int) []byte) {
	t.Helper()
	var conn *net.UDPConn
	err := from.Do(func() error {
		var err error
		conn, err = net.DialUDP("udp4",
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(from.Underlay, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.Underlay, vxlanPort)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, drops0, err := udpQueue(to, vxlanPort)
	if err != nil {
		t.Fatal(err)
	}
	const checkEvery, highWater = 512, 1 << 20
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < n; i++ {
		if i > 0 && i%checkEvery == 0 {
			for {
				queued, _, err := udpQueue(to, vxlanPort)
				if err != nil {
					t.Fatal(err)
				}
				if queued < highWater {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("inject: %s's receive queue still holds %d bytes after %d of %d datagrams", to.Name, queued, i, n)
				}
				time.Sleep(time.Millisecond)
			}
		}
		if _, err := conn.Write(payload(i)); err != nil {
			t.Fatalf("inject: datagram %d of %d: %v", i, n, err)
		}
	}
	// The receive path is asynchronous: look at the drops once vtepd has
	// emptied its queues.
	eventually(t, 10*time.Second, "vtepd's receive queues drained on "+to.Name, func() error {
		queued, drops, err := udpQueue(to, vxlanPort)
		switch {
		case err != nil:
			return err
		case drops != drops0:
			t.Fatalf("inject: the kernel dropped %d of %d datagrams at %s's receive sockets", drops-drops0, n, to.Name)
		case queued != 0:
			return fmt.Errorf("%d bytes queued", queued)
		}
		return nil
	})
}

// udpQueue sums, over the UDP sockets of h bound to port, the bytes
// waiting in their receive queues and the datagrams they dropped, as
// /proc/net/udp of h's namespace shows them.
func udpQueue(h *topo.Host, port int) (queued, drops int64, err error) {
	err = h.Do(func() error {
		// thread-self: /proc/self/net would show the namespace of the
		// test binary's main thread, not of this one.
		f, err := os.Open("/proc/thread-self/net/udp")
		if err != nil {
			return err
		}
		defer f.Close()
		suffix := fmt.Sprintf(":%04X", port)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local rem st tx_queue:rx_queue tr retrnsmt uid timeout inode ref pointer drops
			fields := strings.Fields(sc.Text())
			if len(fields) < 13 || !strings.HasSuffix(fields[1], suffix) {
				continue
			}
			_, rx, ok := strings.Cut(fields[4], ":")
			if !ok {
				return fmt.Errorf("/proc/net/udp: odd queue field %q", fields[4])
			}
			q, err1 := strconv.ParseInt(rx, 16, 64)
			d, err2 := strconv.ParseInt(fields[len(fields)-1], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("/proc/net/udp: %q: %w", sc.Text(), err)
			}
			queued += q
			drops += d
		}
		return sc.Err()
	})
	return queued, drops, err
}

// sendFrames writes frames onto c's eth0 through a packet socket, gap
// apart: what a misbehaving container puts on its bridge.
func sendFrames(t *testing.T, c *topo.Container, gap time.Duration, frames ...[]byte) {
	t.Helper()
	err := c.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		// Protocol 0: the socket sends and never receives.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socket AF_PACKET", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for i, f := range frames {
			if i > 0 && gap > 0 {
				time.Sleep(gap)
			}
			copy(to.Addr[:], f[0:6])
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("frame %d of %d: %w", i, len(frames), os.NewSyscallError("sendto", err))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sendFrames from %s: %v", c.NS, err)
	}
}

// counters is one scrape of a host's vtepd; get and since read the
// series of VNI testVNI.
type counters []sample

func scrapeT(t *testing.T, h *topo.Host) counters {
	t.Helper()
	s, err := scrape(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get returns a series of VNI testVNI (0 if absent).
func (c counters) get(name string, labels ...string) float64 {
	v, _ := metricValue(c, name, append(labels, "vni", strconv.Itoa(testVNI))...)
	return v
}

// since returns how much a series of VNI testVNI rose from before to c.
func (c counters) since(before counters, name string, labels ...string) float64 {
	return c.get(name, labels...) - before.get(name, labels...)
}

// rise is what expectRise waits for: series name{labels} of VNI testVNI
// risen by exactly by.
type rise struct {
	name   string
	labels []string
	by     float64
}

func rose(name string, by float64, labels ...string) rise { return rise{name, labels, by} }

// dropsRose is the rise of vtep_drops_total{reason}.
func dropsRose(reason string, by float64) rise {
	return rose("vtep_drops_total", by, "reason", reason)
}

func (r rise) String() string {
	var l []string
	for i := 0; i+1 < len(r.labels); i += 2 {
		l = append(l, fmt.Sprintf("%s=%q", r.labels[i], r.labels[i+1]))
	}
	if len(l) == 0 {
		return r.name
	}
	return r.name + "{" + strings.Join(l, ",") + "}"
}

// settle is how long expectRise waits for vtepd to count what a test sent.
const settle = 10 * time.Second

// expectRise waits until every series of want has risen on h's vtepd,
// since before, by exactly its amount, all in one scrape, and returns that
// scrape; after settle it fails the test, naming each series that had
// not. A want of zeros alone holds at once, possibly before vtepd has
// counted anything: put with them a rise that proves it has.
func expectRise(t *testing.T, h *topo.Host, before counters, want ...rise) counters {
	t.Helper()
	var after counters
	eventually(t, settle, "vtepd's counters on "+h.Name, func() error {
		after = scrapeT(t, h)
		var miss []string
		for _, r := range want {
			if got := after.since(before, r.name, r.labels...); got != r.by {
				miss = append(miss, fmt.Sprintf("%v rose by %v, want %v", r, got, r.by))
			}
		}
		if len(miss) > 0 {
			return errors.New(strings.Join(miss, "; "))
		}
		return nil
	})
	return after
}

// injectRise is inject, then expectRise on to's vtepd: it returns the
// scrapes before the datagrams were sent and once they were counted.
func injectRise(t *testing.T, from, to *topo.Host, n int, payload func(i int) []byte, want ...rise) (before, after counters) {
	t.Helper()
	before = scrapeT(t, to)
	inject(t, from, to, n, payload)
	return before, expectRise(t, to, before, want...)
}

// vmRSS returns the resident set size of process pid, from
// /proc/<pid>/status, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
			t.Fatalf("/proc/%d/status: odd line %q", pid, line)
		}
	}
	t.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}

// learnedFDB returns the learned entries of VNI testVNI in h's /fdb.
func learnedFDB(t *testing.T, h *topo.Host) []fdbEntry {
	t.Helper()
	entries, err := getFDB(h)
	if err != nil {
		t.Fatal(err)
	}
	var out []fdbEntry
	for _, e := range entries {
		if e.VNI == testVNI && e.Type == "learned" {
			out = append(out, e)
		}
	}
	return out
}

// hasEntry reports whether entries hold an entry for mac.
func hasEntry(entries []fdbEntry, mac net.HardwareAddr) bool {
	for _, e := range entries {
		if strings.EqualFold(e.MAC, mac.String()) {
			return true
		}
	}
	return false
}

// TestIntegrationHardeningMACFlood: 100,000 datagrams, each from a new
// random source MAC, against max_entries = 1000. The table stops at
// exactly 1000, every further MAC is refused and counted, the frames are
// still delivered, memory stays flat, and the containers still talk.
func TestIntegrationHardeningMACFlood(t *testing.T) {
	t.Parallel()
	lab, nodes := quietNodes(t, "hmf")
	a := nodes[0]
	c := addInjector(t, lab, "c", 3)
	const maxEntries, total = 1000, 100_000
	runPair(t, nodes, hcfg{network: []string{fmt.Sprintf("max_entries = %d", maxEntries)}}) // a learns b's container: one entry of the thousand

	rss0 := vmRSS(t, a.vtepd.PID())
	start := time.Now()
	// Every datagram delivered.
	before, after := injectRise(t, c, a.host, total, payloads(ethFrame(a.mac, nil, 0), func(i int) net.HardwareAddr { return floodMAC(0xf1, i) }),
		rose("vtep_rx_packets_total", total))
	t.Logf("%d datagrams injected and delivered in %v", total, time.Since(start).Round(time.Millisecond))

	learned0 := before.get("vtep_fdb_entries", "type", "learned")
	if got := after.get("vtep_fdb_entries", "type", "learned"); got != maxEntries {
		t.Errorf(`vtep_fdb_entries{type="learned"} = %v, want %d`, got, maxEntries)
	}
	if got := len(learnedFDB(t, a.host)); got != maxEntries {
		t.Errorf("/fdb lists %d learned entries, want %d", got, maxEntries)
	}
	limited := after.since(before, "vtep_fdb_learn_limited_total")
	wantRefused := total - (maxEntries - learned0) - limited
	if got := after.since(before, "vtep_fdb_refused_total"); got != wantRefused {
		t.Errorf("vtep_fdb_refused_total rose by %v, want %v (%d datagrams - %v free slots - %v learn-limited)",
			got, wantRefused, total, maxEntries-learned0, limited)
	}
	if got := after.since(before, "vtep_fdb_learned_total"); got != maxEntries-learned0 {
		t.Errorf("vtep_fdb_learned_total rose by %v, want %v", got, maxEntries-learned0)
	}

	rss := vmRSS(t, a.vtepd.PID())
	t.Logf("vtepd RSS: %d MiB before the flood, %d MiB after", rss0>>20, rss>>20)
	if rss > 200<<20 || rss-rss0 > 64<<20 {
		t.Errorf("vtepd RSS %d MiB after the flood (%d MiB before): want < 200 MiB and < 64 MiB of growth", rss>>20, rss0>>20)
	}
	pingEach(t, nodes)
	if a.vtepd.Exited() {
		t.Fatalf("vtepd on a exited:\n%s", a.vtepd.Output())
	}
}

// TestIntegrationHardeningAcceptFrom: with accept_from = [b/32], datagrams
// from c are dropped as "source" before learning or delivery, exactly one
// count each, while b's (spoofed and real) traffic is learned and
// delivered.
func TestIntegrationHardeningAcceptFrom(t *testing.T) {
	t.Parallel()
	lab, nodes := quietNodes(t, "hac")
	a, b := nodes[0], nodes[1]
	c := addInjector(t, lab, "c", 3)
	runPair(t, nodes, hcfg{network: []string{fmt.Sprintf("accept_from = [%q]", netip.PrefixFrom(b.host.Underlay, 32))}})
	expectFDB(t, a.host, b.mac, "learned", b.host.Underlay)

	const n = 50
	x := net.HardwareAddr{0x02, 0xac, 0xce, 0x55, 0x00, 0x01}
	// Neither delivered nor learned.
	injectRise(t, c, a.host, n, payloads(ethFrame(a.mac, x, 0), same(x)),
		dropsRose("source", n), rose("vtep_rx_packets_total", 0), rose("vtep_fdb_learned_total", 0))
	if hasEntry(learnedFDB(t, a.host), x) {
		t.Errorf("%s from c (not in accept_from) was learned", x)
	}

	// The same datagrams from b's address are accepted: the injector
	// works, and the filter is by source address.
	y := net.HardwareAddr{0x02, 0xac, 0xce, 0x55, 0x00, 0x02}
	injectRise(t, b.host, a.host, n, payloads(ethFrame(a.mac, y, 0), same(y)),
		rose("vtep_rx_packets_total", n), dropsRose("source", 0))
	expectFDB(t, a.host, y, "learned", b.host.Underlay)
	pingEach(t, nodes)
}

// TestIntegrationHardeningLearnRate: learn_rate = 10 and a burst of 500
// new MACs from b's address: about a second's worth is learned, the rest
// counted as learn-limited, every frame still delivered; c, another
// remote VTEP, has its own bucket.
func TestIntegrationHardeningLearnRate(t *testing.T) {
	t.Parallel()
	lab, nodes := quietNodes(t, "hlr")
	a, b := nodes[0], nodes[1] // b only injects: no vtepd there
	c := addInjector(t, lab, "c", 3)
	const rate, burst = 10, 500
	a.runVtepd(t, hcfg{limits: []string{fmt.Sprintf("learn_rate = %d", rate)}}.render(a.host, peersOf(nodes, 0)))

	start := time.Now()
	// Every datagram delivered.
	before, after := injectRise(t, b.host, a.host, burst, payloads(ethFrame(a.mac, nil, 0), func(i int) net.HardwareAddr { return floodMAC(0xb2, i) }),
		rose("vtep_rx_packets_total", burst))
	elapsed := time.Since(start)
	learned := after.since(before, "vtep_fdb_learned_total")
	limited := after.since(before, "vtep_fdb_learn_limited_total")
	t.Logf("burst of %d processed in %v: %v learned, %v learn-limited", burst, elapsed.Round(time.Millisecond), learned, limited)
	expectBucket(t, "vtep_fdb_learned_total", learned, rate, elapsed)
	if learned+limited != burst {
		t.Errorf("learned %v + learn-limited %v = %v, want every one of the %d new MACs counted once", learned, limited, learned+limited, burst)
	}
	if got := len(learnedFDB(t, a.host)); float64(got) != learned {
		t.Errorf("/fdb lists %d learned entries, vtep_fdb_learned_total says %v", got, learned)
	}

	// c's bucket is its own, and full: its first MACs are all learned,
	// none learn-limited.
	const fromC = 5
	injectRise(t, c, a.host, fromC, payloads(ethFrame(a.mac, nil, 0), func(i int) net.HardwareAddr { return floodMAC(0xc3, i) }),
		rose("vtep_fdb_learned_total", fromC), rose("vtep_fdb_learn_limited_total", 0))
}

// expectBucket checks got, what a token bucket of rate a second (and a
// second's worth deep) let through of a burst that lasted elapsed: at
// least the full bucket; at most that, plus what refilled while the burst
// was processed, plus one for rounding.
func expectBucket(t *testing.T, what string, got float64, rate int, elapsed time.Duration) {
	t.Helper()
	most := float64(rate) + math.Ceil(float64(rate)*elapsed.Seconds()) + 1
	if got < float64(rate) || got > most {
		t.Errorf("%s rose by %v, want %d..%v (a second's burst plus %d/s over %v)", what, got, rate, most, rate, elapsed.Round(time.Millisecond))
	}
}

// TestIntegrationHardeningFloodRate: flood_rate = 50 and a burst of 500
// broadcast frames from a's container: a second's worth (plus the refill
// while the burst lasts) is flooded, the rest dropped as "storm", each
// frame counted once one way or the other.
func TestIntegrationHardeningFloodRate(t *testing.T) {
	t.Parallel()
	_, nodes := quietNodes(t, "hfr")
	const rate, burst = 50, 500
	runPair(t, nodes, hcfg{network: []string{fmt.Sprintf("flood_rate = %d", rate)}})
	// The pings' ARP requests took a few tokens: let the bucket refill.
	time.Sleep(time.Second)
	flooded, elapsed := broadcastBurst(t, nodes, burst)
	expectBucket(t, "vtep_flood_packets_total", flooded, rate, elapsed)
	// Known unicast is not a flood: the containers still talk.
	pingEach(t, nodes)
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// broadcastBurst sends burst broadcast frames from nodes[0]'s container,
// 200 µs apart: a storm to vtepd, not to the TAP's queue of 500. It waits
// until that node's vtepd has counted each frame once, flooded or dropped
// as "storm", and nodes[1]'s has delivered exactly as many as were
// flooded. It returns how many were flooded and how long after the first
// frame the last was counted.
func broadcastBurst(t *testing.T, nodes []*node, burst int) (flooded float64, elapsed time.Duration) {
	t.Helper()
	a, b := nodes[0], nodes[1]
	frames := make([][]byte, burst)
	for i := range frames {
		frames[i] = ethFrame(broadcast, a.mac, 0)
	}
	before, beforeB := scrapeT(t, a.host), scrapeT(t, b.host)
	start := time.Now()
	sendFrames(t, a.ctr, 200*time.Microsecond, frames...)
	var storm float64
	eventually(t, 3*time.Second, "every broadcast frame flooded or dropped", func() error {
		after := scrapeT(t, a.host)
		flooded = after.since(before, "vtep_flood_packets_total")
		storm = after.since(before, "vtep_drops_total", "reason", "storm")
		if flooded+storm != float64(burst) {
			return fmt.Errorf("flooded %v + storm drops %v != %d frames", flooded, storm, burst)
		}
		return nil
	})
	elapsed = time.Since(start)
	t.Logf("%d broadcasts, all counted after %v: %v flooded, %v dropped as storm", burst, elapsed.Round(time.Millisecond), flooded, storm)
	// What was flooded arrived: b delivered exactly that many.
	expectRise(t, b.host, beforeB, rose("vtep_rx_packets_total", flooded))
	return flooded, elapsed
}

// TestIntegrationHardeningInnerVLAN: 802.1Q-tagged frames, from a's
// container into the tunnel and from b's address out of it. With
// inner_vlan = "pass" (the default) both cross; with "drop" on a, both are
// dropped there and counted as "vlan", one each, before learning, while
// untagged traffic goes on.
func TestIntegrationHardeningInnerVLAN(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"pass", "drop"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			_, nodes := quietNodes(t, "hvl")
			var extra []string
			if mode == "drop" {
				extra = []string{`inner_vlan = "drop"`}
			}
			runPair(t, nodes, hcfg{network: extra})
			expectInnerVLAN(t, nodes, mode == "pass", net.HardwareAddr{0x02, 0x7a, 0x66, 0xed, 0x00, 0x01})
		})
	}
}

// expectInnerVLAN sends 20 frames tagged for VLAN 10 each way through
// nodes[0]'s vtepd, a: broadcasts from its container into the tunnel, and
// datagrams from nodes[1]'s address, of source MAC src, out of it. With
// pass, every frame crosses and src is learned; without, a drops each
// frame, counted once as "vlan", and before learning. Untagged traffic
// works either way.
func expectInnerVLAN(t *testing.T, nodes []*node, pass bool, src net.HardwareAddr) {
	t.Helper()
	a, b := nodes[0], nodes[1]
	const n = 20
	crossed, dropped := float64(n), 0.0
	if !pass {
		crossed, dropped = 0, n
	}

	// Into the tunnel: tagged broadcasts from a's container.
	out := make([][]byte, n)
	for i := range out {
		out[i] = ethFrame(broadcast, a.mac, 10)
	}
	before, beforeB := scrapeT(t, a.host), scrapeT(t, b.host)
	sendFrames(t, a.ctr, 0, out...)
	expectRise(t, a.host, before, rose("vtep_flood_packets_total", crossed), dropsRose("vlan", dropped))
	expectRise(t, b.host, beforeB, rose("vtep_rx_packets_total", crossed))

	// Out of the tunnel: tagged frames from b's address.
	injectRise(t, b.host, a.host, n, payloads(ethFrame(a.mac, src, 10), same(src)),
		rose("vtep_rx_packets_total", crossed), dropsRose("vlan", dropped))
	if learned := hasEntry(learnedFDB(t, a.host), src); learned != pass {
		t.Errorf("source %s of the tagged frames learned: %v, want %v", src, learned, pass)
	}
	pingEach(t, nodes) // untagged traffic works either way
}

// TestIntegrationHardeningLoop: a datagram whose inner source MAC is a's
// own TAP's (our frame come back) is dropped as "loop", once per
// datagram, and that MAC is never learned.
func TestIntegrationHardeningLoop(t *testing.T) {
	t.Parallel()
	_, nodes := quietNodes(t, "hlp")
	a, b := nodes[0], nodes[1]
	runPair(t, nodes, hcfg{})
	attrs, err := a.host.Link(tapName)
	if err != nil {
		t.Fatal(err)
	}
	own := attrs.HardwareAddr

	// Looped frames are not delivered.
	const n = 3
	injectRise(t, b.host, a.host, n, payloads(ethFrame(a.mac, own, 0), same(own)),
		dropsRose("loop", n), rose("vtep_rx_packets_total", 0))
	if entries, _ := getFDB(a.host); hasEntry(entries, own) {
		t.Errorf("a's own TAP MAC %s is in its FDB: %+v", own, entries)
	}
	pingEach(t, nodes)
}

// TestIntegrationHardeningMoveDamping: a MAC that flaps between two VTEPs
// (B and C take turns sending it) moves at most max_moves times a second;
// the next moves are refused and counted, and the entry stays put for
// move_hold.
func TestIntegrationHardeningMoveDamping(t *testing.T) {
	t.Parallel()
	lab, nodes := quietNodes(t, "hmd")
	a, b := nodes[0], nodes[1]
	c := addInjector(t, lab, "c", 3)
	runPair(t, nodes, hcfg{limits: []string{"max_moves = 3", `move_hold = "30s"`}})

	flapper := net.HardwareAddr{0x02, 0, 0, 0, 0xf1, 0xa9}
	frame := payloads(ethFrame(a.mac, flapper, 0), same(flapper))
	before := scrapeT(t, a.host)
	const rounds = 10
	for range rounds {
		inject(t, b.host, a.host, 1, frame)
		inject(t, c, a.host, 1, frame)
	}
	// B learns it, then C, B, C move it (3 moves): it sits behind C. From
	// there each datagram from C is a refresh and each of the remaining
	// rounds-2 from B a move that is refused. Damping limits learning, not
	// forwarding: every datagram is delivered.
	expectRise(t, a.host, before, rose("vtep_fdb_moves_total", 3), rose("vtep_fdb_moves_damped_total", rounds-2),
		rose("vtep_rx_packets_total", 2*rounds))
	expectFDB(t, a.host, flapper, "learned", c.Underlay)
	pingEach(t, nodes)
}
