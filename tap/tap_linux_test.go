package tap_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vtepd/vtepd/internal/topo"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/tap"
)

// A real TAP on a real bridge in a throw-away namespace: created with the
// asked MTU, enslaved and up, with two queues; it refuses a missing bridge
// and a taken name without leaving anything; frames from the bridge come
// out of Read at the offset asked, frames written go into the bridge; Close
// deletes it. With Offload the same holds, with a virtio_net_hdr before
// every frame read (in the headroom) and written.
func TestIntegrationTAP(t *testing.T) {
	for _, offloads := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offloads), func(t *testing.T) { testTAP(t, offloads) })
	}
}

// tapLab is a lab (namespaces prefixed prefix) of one host with a
// container 198.19.0.1/24 on its br0, and TAP vt0 made by cfg (Name,
// Bridge and MTU set here) on the same bridge, closed at the end.
func tapLab(t *testing.T, prefix string, cfg tap.Config) (*topo.Host, *topo.Container, *tap.Device) {
	t.Helper()
	lab := topo.NewT(t, prefix)
	host, err := lab.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := host.AddContainer("c", netip.MustParsePrefix("198.19.0.1/24"), 1450)
	if err != nil {
		t.Fatal(err)
	}
	var dev *tap.Device
	cfg.Name, cfg.Bridge, cfg.MTU = "vt0", "br0", 1450
	if err := host.Do(func() (err error) {
		dev, err = tap.Create(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Do(dev.Close) })
	return host, ctr, dev
}

func testTAP(t *testing.T, offloads bool) {
	host, ctr, dev := tapLab(t, "tp", tap.Config{Queues: 2, Offload: offloads})

	attrs, br := attrsOf(t, host, "vt0"), attrsOf(t, host, "br0")
	if attrs.MTU != 1450 || attrs.MasterIndex != br.Index || attrs.Flags&net.FlagUp == 0 {
		t.Errorf("vt0: MTU %d master %d (br0 is %d) flags %v; want 1450, enslaved, up", attrs.MTU, attrs.MasterIndex, br.Index, attrs.Flags)
	}
	if n := len(dev.Queues()); n != 2 {
		t.Errorf("%d queues, want 2", n)
	}
	if dev.Offload() != offloads {
		t.Errorf("Offload() = %v, want %v", dev.Offload(), offloads)
	}
	hdr := 0 // virtio_net_hdr bytes before each frame
	if offloads {
		hdr = offload.VirtioNetHdrLen
	}

	for _, bad := range []struct {
		cfg  tap.Config
		want string
	}{
		{tap.Config{Name: "vt1", Bridge: "nobr", MTU: 1450}, `bridge "nobr" not found`},
		{tap.Config{Name: "vt1", Bridge: "eth0", MTU: 1450}, "not a bridge"},
		{tap.Config{Name: "vt0", Bridge: "br0", MTU: 1450}, "already exists"},
	} {
		err := host.Do(func() error { _, err := tap.Create(bad.cfg); return err })
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Create(%+v) = %v, want an error with %q", bad.cfg, err, bad.want)
		}
	}
	if host.LinkExists("vt1") {
		t.Error("a failed Create left vt1 behind")
	}

	// The container's ARP requests for a missing neighbour are flooded by
	// the bridge to the TAP; read them on every queue.
	const offset = 16
	ctrMAC, err := ctr.MAC()
	if err != nil {
		t.Fatal(err)
	}
	ghost := netip.MustParseAddr("198.19.0.99")
	ghostMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	arpSeen := make(chan []byte, 1)
	var readers sync.WaitGroup
	for _, q := range dev.Queues() {
		readers.Go(func() {
			bufs := make([][]byte, q.BatchSize())
			for i := range bufs {
				bufs[i] = bytes.Repeat([]byte{0xaa}, offset+1514)
			}
			sizes := make([]int, len(bufs))
			var mu sync.Mutex
			for {
				n, err := q.ReadLocked(bufs, sizes, offset, &mu)
				if err != nil {
					return // closed at the end of the test
				}
				mu.Unlock() // no TryRead here to keep in order with
				for i := 0; i < n; i++ {
					f := bufs[i][offset : offset+sizes[i]]
					if !bytes.Equal(bufs[i][:offset-hdr], bytes.Repeat([]byte{0xaa}, offset-hdr)) {
						t.Error("ReadLocked wrote into the headroom")
					}
					if offloads {
						var h offload.VirtioNetHdr
						h.Decode(bufs[i][offset-hdr : offset])
						if h.IsGSO() {
							t.Errorf("a %d-byte frame came as a GSO super-frame: %+v", sizes[i], h)
						}
					}
					if isARPRequestFor(f, ghost) {
						select {
						case arpSeen <- append([]byte(nil), f...):
						default:
						}
					}
				}
			}
		})
	}
	pinger, err := ctr.Start("ping", "-c", "20", "-i", "0.2", "-W", "1", ghost.String())
	if err != nil {
		t.Fatal(err)
	}
	var req []byte
	select {
	case req = <-arpSeen:
	case <-time.After(5 * time.Second):
		t.Fatal("no ARP request from the container came out of the TAP")
	}
	if !bytes.Equal(req[6:12], ctrMAC) {
		t.Errorf("ARP request from %v, want the container's %v", net.HardwareAddr(req[6:12]), ctrMAC)
	}

	// Answer it through Write: the container learns the ghost's MAC.
	reply := append(make([]byte, hdr), arpReply(ghostMAC, ghost, ctrMAC, netip.MustParseAddr("198.19.0.1"))...)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := dev.Queues()[0].Write(reply); err != nil {
			t.Fatal(err)
		}
		out, _ := ctr.Exec("ip", "neigh", "show", ghost.String())
		if strings.Contains(string(out), ghostMAC.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not learn %v from the written ARP reply: %q", ghostMAC, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pinger.Signal(syscall.SIGTERM)

	if err := host.Do(dev.Close); err != nil {
		t.Fatal(err)
	}
	readers.Wait()
	if host.LinkExists("vt0") {
		t.Error("vt0 still exists after Close")
	}
}

func isARPRequestFor(f []byte, target netip.Addr) bool {
	return len(f) >= 42 && binary.BigEndian.Uint16(f[12:14]) == 0x0806 &&
		binary.BigEndian.Uint16(f[20:22]) == 1 && bytes.Equal(f[38:42], target.AsSlice())
}

// arpReply is an Ethernet frame carrying "ip is at mac" to dst.
func arpReply(mac net.HardwareAddr, ip netip.Addr, dstMAC net.HardwareAddr, dstIP netip.Addr) []byte {
	f := make([]byte, 60)
	copy(f[0:6], dstMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], 0x0806)
	binary.BigEndian.PutUint16(f[14:16], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:18], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:22], 2) // reply
	copy(f[22:28], mac)
	copy(f[28:32], ip.AsSlice())
	copy(f[32:38], dstMAC)
	copy(f[38:42], dstIP.AsSlice())
	return f
}

// Check tells what was done to a TAP under it, and puts a TAP taken off
// its bridge back: healthy, reattached (and then healthy again), the
// bridge gone, the TAP deleted.
func TestIntegrationTAPCheck(t *testing.T) {
	lab := topo.NewT(t, "tc")
	host, err := lab.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	var dev *tap.Device
	if err := host.Do(func() (err error) {
		if err := tap.CheckBridge("br0"); err != nil {
			return fmt.Errorf("CheckBridge(br0): %w", err)
		}
		if err := tap.CheckBridge("nobr"); err == nil || !strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("CheckBridge(nobr) = %v, want not found", err)
		}
		dev, err = tap.Create(tap.Config{Name: "vt0", Bridge: "br0", MTU: 1450})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Do(dev.Close) })
	check := func(bridge string, want tap.Health) {
		t.Helper()
		var got tap.Health
		if err := host.Do(func() (err error) {
			got, err = dev.Check(bridge)
			return err
		}); err != nil || got != want {
			t.Fatalf("Check(%s) = %v, %v; want %v", bridge, got, err, want)
		}
	}
	check("br0", tap.Healthy)
	onLink(t, host, "vt0", netlink.LinkSetNoMaster)
	check("br0", tap.Reattached)
	attrs, br := attrsOf(t, host, "vt0"), attrsOf(t, host, "br0")
	if attrs.MasterIndex != br.Index || attrs.Flags&net.FlagUp == 0 {
		t.Errorf("after Check: vt0 master %d (br0 is %d), flags %v; want enslaved and up", attrs.MasterIndex, br.Index, attrs.Flags)
	}
	check("br0", tap.Healthy)
	check("nobr", tap.BridgeGone)
	onLink(t, host, "vt0", netlink.LinkDel)
	check("br0", tap.Deleted)
}

// onLink does what to the link called name in host, as someone else would.
func onLink(t *testing.T, host *topo.Host, name string, what func(netlink.Link) error) {
	t.Helper()
	if err := host.Do(func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return what(link)
	}); err != nil {
		t.Fatal(err)
	}
}

// attrsOf is the link called name in host, as it is now.
func attrsOf(t *testing.T, host *topo.Host, name string) *netlink.LinkAttrs {
	t.Helper()
	attrs, err := host.Link(name)
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}
