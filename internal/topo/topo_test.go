//go:build linux

package topo

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"::ffff:198.18.0.1", true},
		{"2001:db8::1", true},
		{"2001:db8:ffff::1", true},
		{"198.20.0.1", false},
		{"10.0.0.1", false},
		{"127.0.0.1", false},
		{"2001:db9::1", false},
		{"fe80::1", false},
	} {
		err := checkAddr(netip.MustParseAddr(tc.addr))
		if (err == nil) != tc.ok {
			t.Errorf("checkAddr(%s) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"198.19.0.0/24", true},
		{"198.18.0.0/15", true},
		{"2001:db8:1::/48", true},
		{"198.18.0.0/14", false}, // starts inside, ends outside
		{"198.0.0.0/8", false},
		{"10.0.0.0/24", false},
		{"2001:db8::/31", false},
	} {
		err := checkPrefix(netip.MustParsePrefix(tc.prefix))
		if (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%s) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}

func TestNewRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "Vt", "vt-1", "averyveryverylongprefix"} {
		if l, err := New(p); err == nil {
			l.Close()
			t.Errorf("New(%q) succeeded", p)
		}
	}
}

// TestIntegrationKernelBaseline reproduces the Docker experiment with the
// kernel's own VXLAN driver on both hosts: the reference every vtepd test
// is measured against, and a check that the lab itself works and cleans
// up. It runs over an IPv4 and an IPv6 underlay.
func TestIntegrationKernelBaseline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ua, ub string // underlay prefixes
	}{
		{"ipv4", "198.18.0.1/24", "198.18.0.2/24"},
		{"ipv6", "2001:db8::1/64", "2001:db8::2/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kernelBaseline(t, netip.MustParsePrefix(tc.ua), netip.MustParsePrefix(tc.ub))
		})
	}
}

func kernelBaseline(t *testing.T, ua, ub netip.Prefix) {
	l := NewT(t, "tkb")
	a, err := l.AddHost("a", ua, 1500)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddHost("b", ub, 1500)
	if err != nil {
		t.Fatal(err)
	}
	mtu := a.VXLANMTU() // 1450 over IPv4, 1430 over IPv6
	ca, err := a.AddContainer("c1", netip.MustParsePrefix("198.19.0.1/24"), mtu)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.AddContainer("c1", netip.MustParsePrefix("198.19.0.2/24"), mtu)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddKernelVXLAN(200, 4789, b.Underlay); err != nil {
		t.Fatal(err)
	}
	if err := b.AddKernelVXLAN(200, 4789, a.Underlay); err != nil {
		t.Fatal(err)
	}

	if err := ca.WaitReachable(cb.Addr.Addr(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ca.Ping(cb.Addr.Addr(), 3, 56, false); err != nil {
		t.Error(err)
	}
	if err := cb.Ping(ca.Addr.Addr(), 3, 56, false); err != nil {
		t.Error(err)
	}
	// The largest packet the container MTU allows crosses unfragmented.
	if err := ca.Ping(cb.Addr.Addr(), 2, mtu-20-8, true); err != nil {
		t.Error(err)
	}

	for _, side := range []struct {
		host   *Host
		remote *Container
	}{{a, cb}, {b, ca}} {
		mac, err := side.remote.MAC()
		if err != nil {
			t.Fatal(err)
		}
		fdb, err := side.host.KernelFDB()
		if err != nil {
			t.Fatal(err)
		}
		want := mac.String() + " dst " + side.remote.Host.Underlay.String()
		if !strings.Contains(fdb, want) {
			t.Errorf("host %s: bridge fdb show dev vx0 lacks %q:\n%s", side.host.Name, want, fdb)
		}
	}

	if !a.LinkExists("vx0") || a.LinkExists("nosuch0") {
		t.Errorf("LinkExists: vx0=%v nosuch0=%v", a.LinkExists("vx0"), a.LinkExists("nosuch0"))
	}
	if attrs, err := a.Link("vx0"); err != nil {
		t.Error(err)
	} else if attrs.MTU != mtu {
		t.Errorf("vx0 MTU = %d, want %d", attrs.MTU, mtu)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := NetnsList()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, l.Name()) {
			t.Errorf("namespace %s survived Close", n)
		}
	}
}

// TestIntegrationProcAndDo covers Start/Signal/Wait/Close on processes and
// sockets opened through Do.
func TestIntegrationProcAndDo(t *testing.T) {
	t.Parallel()
	RequirePrivileged(t)
	// Not NewT: this test expects Close to fail, which NewT reports.
	l, err := New("tpd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	h, err := l.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 0)
	if err != nil {
		t.Fatal(err)
	}

	// A process that exits by itself reports its code and output.
	p, err := h.Start("sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(5 * time.Second); err != nil || code != 3 {
		t.Errorf("Wait = %d, %v; want 3, nil", code, err)
	}
	if got := p.Stderr(); got != "err\n" {
		t.Errorf("Stderr = %q", got)
	}
	if got := p.Output(); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Errorf("Output = %q", got)
	}

	// The process runs inside the host namespace.
	p, err = h.Start("ip", "-brief", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(5 * time.Second); err != nil || code != 0 || !strings.Contains(p.Output(), "198.18.0.1/24") {
		t.Errorf("ip addr in host: code %d, err %v, output %q", code, err, p.Output())
	}

	// Containers run processes too, in their own namespace.
	c, err := h.AddContainer("c1", netip.MustParsePrefix("198.19.0.1/24"), 1450)
	if err != nil {
		t.Fatal(err)
	}
	p, err = c.Start("ip", "-brief", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(5 * time.Second); err != nil || code != 0 || !strings.Contains(p.Output(), "198.19.0.1/24") {
		t.Errorf("ip addr in container: code %d, err %v, output %q", code, err, p.Output())
	}

	// A process that ignores SIGTERM is killed by Close, which says so.
	stubborn, err := h.Start("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stubborn.Wait(200 * time.Millisecond); err == nil {
		t.Fatalf("stubborn process exited early: %s", stubborn.Output())
	}

	// Do puts sockets in the namespace: eth0's address is bindable there.
	err = h.Do(func() error {
		c, err := listenUDP("198.18.0.1:0")
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Errorf("bind in host namespace: %v", err)
	}
	if c, err := listenUDP("198.18.0.1:0"); err == nil {
		c.Close()
		t.Errorf("bind to a lab address outside Do succeeded: the caller's namespace has it")
	}

	start := time.Now()
	err = l.Close()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Close with a process ignoring SIGTERM = %v, want an error saying it was killed", err)
	}
	if d := time.Since(start); d > stopGrace+3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !stubborn.Exited() {
		t.Errorf("process %v still running after Close", stubborn)
	}
	if err2 := l.Close(); err2 != err {
		t.Errorf("second Close = %v, want the first's result", err2)
	}
	if _, err := h.AddContainer("late", netip.MustParsePrefix("198.19.0.1/24"), 1450); err == nil {
		t.Errorf("AddContainer after Close succeeded")
	}
}

func listenUDP(addr string) (net.PacketConn, error) { return net.ListenPacket("udp4", addr) }

func TestCheckGroup(t *testing.T) {
	for _, tc := range []struct {
		group string
		ok    bool
	}{
		{"239.1.1.1", true},
		{"239.255.255.255", true},
		{"224.0.0.1", false},
		{"238.1.1.1", false},
		{"198.18.0.1", false},
		{"ff05::100", true},
		{"ff02::1:3", true},
		{"ff0e::100", false},
		{"ff15::1", false},
		{"2001:db8::1", false},
	} {
		err := checkGroup(netip.MustParseAddr(tc.group))
		if (err == nil) != tc.ok {
			t.Errorf("checkGroup(%s) = %v, want ok=%v", tc.group, err, tc.ok)
		}
	}
}

func TestParseMaddr(t *testing.T) {
	out := "2:\teth0\n" +
		"\tlink  33:33:00:00:00:01\n" +
		"\tlink  01:00:5e:01:01:01 users 2\n" +
		"\tinet  239.1.1.1\n" +
		"\tinet  224.0.0.1\n" +
		"\tinet6 ff05::100 users 2\n" +
		"\tinet6 ff02::1 users 2 static\n"
	got, err := parseMaddr(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{
		netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("224.0.0.1"),
		netip.MustParseAddr("ff05::100"), netip.MustParseAddr("ff02::1"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMaddr = %v, want %v", got, want)
	}
	if _, err := parseMaddr("\tinet  nonsense\n"); err == nil {
		t.Errorf("parseMaddr accepted an unparsable group")
	}
}

// TestIntegrationKernelGroup is the multicast variant of the kernel
// baseline: three hosts whose vx0 floods to a group instead of a list of
// peers, over an IPv4 and an IPv6 underlay. Each host has joined the group
// on eth0, and every container reaches every other.
func TestIntegrationKernelGroup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		underlay func(i int) netip.Prefix
		group    string
	}{
		{"ipv4", func(i int) netip.Prefix {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 24)
		}, "239.1.1.1"},
		{"ipv6", func(i int) netip.Prefix {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64)
		}, "ff05::100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewT(t, "tkg")
			group := netip.MustParseAddr(tc.group)
			var ctrs []*Container
			for i := range 3 {
				h, err := l.AddHost(string(rune('a'+i)), tc.underlay(i), 1500)
				if err != nil {
					t.Fatal(err)
				}
				c, err := h.AddContainer("c1", netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 24), h.VXLANMTU())
				if err != nil {
					t.Fatal(err)
				}
				// Host a also floods to an extra (absent) peer besides the group.
				var extra []netip.Addr
				if i == 0 {
					extra = []netip.Addr{tc.underlay(8).Addr()}
				}
				if err := h.AddKernelVXLANWith(KernelVXLAN{VNI: 300, Port: 4789, Group: group, Peers: extra}); err != nil {
					t.Fatal(err)
				}
				fdb, err := h.KernelFDB()
				if err != nil {
					t.Fatal(err)
				}
				for _, dst := range append([]netip.Addr{group}, extra...) {
					if want := "00:00:00:00:00:00 dst " + dst.String(); !strings.Contains(fdb, want) {
						t.Errorf("host %s: bridge fdb show dev vx0 lacks %q:\n%s", h.Name, want, fdb)
					}
				}
				groups, err := h.MulticastGroups("eth0")
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(groups, group) {
					t.Errorf("host %s: eth0 groups %v lack %v", h.Name, groups, group)
				}
				ctrs = append(ctrs, c)
			}
			for _, from := range ctrs {
				for _, to := range ctrs {
					if from == to {
						continue
					}
					if err := from.WaitReachable(to.Addr.Addr(), 5*time.Second); err != nil {
						t.Errorf("%s on %s: %v", from.Name, from.Host.Name, err)
					}
				}
			}
		})
	}
}

// TestIntegrationBridges: a second bridge on a host is a separate segment;
// containers join the bridge they are given and take the MAC they are set.
func TestIntegrationBridges(t *testing.T) {
	t.Parallel()
	l := NewT(t, "tbr")
	h, err := l.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddBridge("br1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"br0", "eth0", "br100", "vx0"} {
		if err := h.AddBridge(bad); err == nil {
			t.Errorf("AddBridge(%q) succeeded", bad)
		}
	}
	on0, err := h.AddContainerOn("br0", "c0", netip.MustParsePrefix("198.19.0.2/24"), 1450)
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.AddContainerOn("br1", "c1", netip.MustParsePrefix("198.19.0.1/24"), 1450)
	if err != nil {
		t.Fatal(err)
	}
	y, err := h.AddContainerOn("br1", "c2", netip.MustParsePrefix("198.19.0.3/24"), 1450)
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	if err := x.SetMAC(mac); err != nil {
		t.Fatal(err)
	}
	if got, err := x.MAC(); err != nil || got.String() != mac.String() {
		t.Errorf("MAC after SetMAC = %v, %v; want %v", got, err, mac)
	}
	if err := x.SetMAC(net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}); err == nil {
		t.Errorf("SetMAC accepted a multicast MAC")
	}
	if err := x.WaitReachable(y.Addr.Addr(), 5*time.Second); err != nil {
		t.Errorf("same bridge: %v", err)
	}
	if err := x.Ping(on0.Addr.Addr(), 2, 56, false); err == nil {
		t.Errorf("a container on br1 reached one on br0")
	}
}
