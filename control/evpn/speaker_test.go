//go:build !race

// Two GoBGP servers in one process share GoBGP's package-level route
// selection options, which every StartBgp writes and every best-path
// computation reads without a lock: harmless here (both write the same
// values, before the sessions start), but a data race for the detector.
// vtepd runs one server per process. So this test, which runs two, is
// left out of race builds; the integration tests run vtepd against FRR
// and gobgpd, each in a process of its own, under -race.

package evpn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// stateSink keeps the view a backend delivers, as the engine does.
type stateSink struct {
	mu sync.Mutex
	s  *control.State
}

func (k *stateSink) Sync(s *control.State) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.s = s.Clone()
}

func (k *stateSink) Update(evs []control.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.s.Apply(evs)
}

func (k *stateSink) view() *control.State {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s == nil {
		return control.NewState()
	}
	return k.s.Clone()
}

func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Skipf("no %s to listen on: %v", addr, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// speaker is one backend running in the test, on a loopback address.
type speaker struct {
	b    *Backend
	sink *stateSink
	stop func()
}

// pair runs two backends, 127.0.0.1 and 127.0.0.2, peering with each
// other on ports of the test's own.
func pair(t *testing.T) (x, y *speaker) {
	t.Helper()
	ax, ay := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	px, py := freePort(t, ax.String()), freePort(t, ay.String())
	mk := func(local, peer netip.Addr, lport, pport uint16) *speaker {
		sink := &stateSink{}
		b, err := New(Config{
			ASN: 65000, Local: local, ListenPort: int(lport), ListenAddresses: []string{local.String()},
			Neighbors: []Neighbor{{Address: peer, Port: pport}}, Sink: sink,
		})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		b.started = func() { close(started) }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		sp := &speaker{b: b, sink: sink}
		var once sync.Once
		sp.stop = func() {
			once.Do(func() {
				cancel()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Error("Run did not return")
				}
			})
		}
		t.Cleanup(sp.stop)
		return sp
	}
	return mk(ax, ay, px, py), mk(ay, ax, py, px)
}

func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two speakers over real BGP sessions: each sees the other's VTEP, MACs
// and IP bindings, not its own; a MAC that ages out, a VNI left and a
// speaker stopped are withdrawn; a MAC that moves carries a higher
// sequence number and takes the MAC away from its old owner.
func TestSpeakers(t *testing.T) {
	if testing.Short() {
		t.Skip("BGP sessions over loopback")
	}
	x, y := pair(t)
	ax, ay := x.b.cfg.Local, y.b.cfg.Local
	ip := netip.MustParseAddr("198.19.0.1")
	x.b.Join(200)
	y.b.Join(200)
	x.b.SetMAC(200, mac1)
	x.b.SetIP(200, ip, mac1)
	mac2 := fdb.MAC{2, 0, 0, 0, 0, 2}
	y.b.SetMAC(200, mac2)

	within(t, 15*time.Second, "each speaker has the other's routes", func() error {
		vx, vy := x.sink.view().VNIs[200], y.sink.view().VNIs[200]
		if vx == nil || vy == nil {
			return fmt.Errorf("views %v %v", vx, vy)
		}
		if _, ok := vy.VTEPs[ax]; !ok || vy.MACs[mac1] != ax || vy.IPs[ip] != mac1 || len(vy.MACs) != 1 {
			return fmt.Errorf("y's view %+v", vy)
		}
		if _, ok := vx.VTEPs[ay]; !ok || vx.MACs[mac2] != ay || len(vx.VTEPs) != 1 {
			return fmt.Errorf("x's view %+v", vx)
		}
		return nil
	})
	st := x.b.Status()
	if !st.Connected || len(st.Sessions) != 1 || !st.Sessions[0].Up || st.RoutesAdvertised["2"] != 2 || st.RoutesAdvertised["3"] != 1 ||
		st.RoutesReceived["2"] != 1 || st.RoutesReceived["3"] != 1 {
		t.Errorf("x's status %+v", st)
	}

	// mac1 moves to y: y advertises sequence 1, x withdraws its own.
	y.b.SetMAC(200, mac1)
	within(t, 5*time.Second, "mac1 moved to y", func() error {
		if v := x.sink.view().VNIs[200]; v == nil || v.MACs[mac1] != ay {
			return fmt.Errorf("x's view %+v", v)
		}
		if v := y.sink.view().VNIs[200]; v != nil && v.MACs[mac1].IsValid() {
			return fmt.Errorf("y's view %+v", v)
		}
		x.b.mu.Lock()
		_, mine := x.b.macs[macKey{200, mac1}]
		seq := y.b.macs[macKey{200, mac1}]
		x.b.mu.Unlock()
		if mine || seq != 1 {
			return fmt.Errorf("x still owns mac1 (%v), or y's sequence is %d", mine, seq)
		}
		return nil
	})

	// mac2 ages out on y; then y leaves the VNI.
	y.b.DelMAC(200, mac2)
	within(t, 5*time.Second, "mac2 withdrawn", func() error {
		if v := x.sink.view().VNIs[200]; v == nil || v.MACs[mac2].IsValid() {
			return fmt.Errorf("x's view %+v", v)
		}
		return nil
	})
	y.b.Leave(200)
	within(t, 5*time.Second, "y's VNI withdrawn", func() error {
		if v := x.sink.view().VNIs[200]; v != nil {
			return fmt.Errorf("x's view %+v", v)
		}
		if v := y.sink.view().VNIs[200]; v != nil {
			return fmt.Errorf("y's view %+v", v)
		}
		return nil
	})

	// x stops: y's view of it goes at once.
	y.b.Join(200)
	within(t, 5*time.Second, "y sees x again", func() error {
		if v := y.sink.view().VNIs[200]; v == nil || len(v.VTEPs) != 1 {
			return fmt.Errorf("y's view %+v", v)
		}
		return nil
	})
	x.stop()
	within(t, 5*time.Second, "x withdrawn on stop", func() error {
		if v := y.sink.view().VNIs[200]; v != nil {
			return fmt.Errorf("y's view %+v", v)
		}
		return nil
	})
}
