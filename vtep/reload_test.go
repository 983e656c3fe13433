package vtep

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/underlay"
)

func reloadConfig(nets ...config.Network) *config.Config {
	return &config.Config{Local: addr("198.18.0.1"), Port: 4789, SrcPortLow: 49152, SrcPortHigh: 65535, Queues: 1, Networks: nets}
}

func netCfg(vni uint32, peers ...netip.Addr) config.Network {
	return config.Network{Name: "n", VNI: vni, Bridge: "br", TAP: "t", Peers: peers, Learning: true,
		Ageing: time.Minute, MaxEntries: 10}
}

// Reload while running: a kept network keeps its learned entries and gets
// its new peers and static entries; a new network forwards; a removed one
// is closed and forgotten; settings that need a restart are refused.
func TestReload(t *testing.T) {
	n200 := netCfg(200, peerB)
	n200.Static = []config.StaticEntry{{MAC: fdb.MAC{2, 0, 0, 0, 0, 0xaa}, Remote: peerB}}
	n300 := netCfg(300, peerB)
	cfg := reloadConfig(n200, n300)
	conn := newFakeConn()
	taps := []*fakeTAP{newFakeTAP("t200"), newFakeTAP("t300"), newFakeTAP("t400")}
	devs := []Device{}
	for _, tp := range taps {
		devs = append(devs, Device{Queues: []FrameQueue{tp}, Closer: tp})
	}
	e := NewWithDevices(cfg, testLogger(), []underlay.Conn{conn}, devs, 1450)
	defer runEngine(t, e)()
	if r := e.fdb.Learn(200, macRemote, peerB, e.Now()); r != fdb.Added {
		t.Fatalf("learn: %v", r)
	}

	// 200: new peer, static entry changed; 300 removed; 400 added.
	m200 := netCfg(200, peerB, peerC)
	m200.Static = []config.StaticEntry{{MAC: fdb.MAC{2, 0, 0, 0, 0, 0xbb}, Remote: peerC}}
	summary, err := e.Reload(reloadConfig(m200, netCfg(400, peerC)))
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if want := "1 added, 1 removed, 0 replaced, 1 changed"; !strings.Contains(summary, want) {
		t.Errorf("summary %q, want %q", summary, want)
	}
	if got := e.FloodList(200); len(got) != 2 {
		t.Errorf("VNI 200 flood list %v, want 2 peers", got)
	}
	if r, ok := e.fdb.Lookup(200, macRemote); !ok || r != peerB {
		t.Error("VNI 200 lost its learned entry across the reload")
	}
	if _, ok := e.fdb.Lookup(200, fdb.MAC{2, 0, 0, 0, 0, 0xaa}); ok {
		t.Error("static entry removed from the config is still there")
	}
	if r, ok := e.fdb.Lookup(200, fdb.MAC{2, 0, 0, 0, 0, 0xbb}); !ok || r != peerC {
		t.Error("new static entry missing")
	}
	if _, ok := e.fdb.Stats(300); ok {
		t.Error("VNI 300 still in the FDB")
	}
	select {
	case <-taps[1].closed:
	default:
		t.Error("VNI 300's TAP not closed")
	}

	// The new network forwards: a broadcast on its TAP reaches its peer.
	taps[2].push(frame(macBcast, macLocal, 46))
	deadline := time.Now().Add(5 * time.Second)
	for !sentTo(conn, peerC) {
		if time.Now().After(deadline) {
			t.Fatal("VNI 400 did not forward after the reload")
		}
		time.Sleep(5 * time.Millisecond)
	}

	bad := reloadConfig(m200)
	bad.Port = 4790
	if _, err := e.Reload(bad); err == nil || !strings.Contains(err.Error(), "underlay.port") {
		t.Errorf("changing the port: %v, want a refusal naming underlay.port", err)
	}
	if len(e.nets.Load().order) != 2 {
		t.Error("a refused reload changed the networks")
	}
}

func sentTo(c *fakeConn, a netip.Addr) bool {
	for _, d := range c.sentDatagrams() {
		if d.Addr == a {
			return true
		}
	}
	return false
}

// A TAP that fails under the engine (deleted by someone) is replaced by a
// new one, counted, and forwarding resumes on it.
func TestTAPRecreated(t *testing.T) {
	cfg := reloadConfig(netCfg(200, peerB))
	conn := newFakeConn()
	first, second := newFakeTAP("t200"), newFakeTAP("t200")
	devs := []Device{{Queues: []FrameQueue{first}, Closer: first}, {Queues: []FrameQueue{second}, Closer: second}}
	e := NewWithDevices(cfg, testLogger(), []underlay.Conn{conn}, devs, 1450)
	defer runEngine(t, e)()
	first.failWith(syscall.EIO) // any error but a close (a deleted TAP says EBADFD, Linux only)
	deadline := time.Now().Add(5 * time.Second)
	n := e.nets.Load().order[0]
	for n.counters.TAPRecreated.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("TAP not recreated")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-first.closed:
	default:
		t.Error("the lost TAP was not closed")
	}
	second.push(frame(macBcast, macLocal, 46))
	for !sentTo(conn, peerB) {
		if time.Now().After(deadline) {
			t.Fatal("no forwarding on the new TAP")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
