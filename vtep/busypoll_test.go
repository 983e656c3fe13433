package vtep

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/vtepd/vtepd/underlay"
)

// waitFor polls cond until it holds, or fails the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// With busy_poll, traffic starts the busy poller, which carries frames
// both ways while the pipelines' goroutines keep off the poller; it stops
// once the window passes with nothing found, and the pipelines carry on.
func TestBusyPollerCarriesTrafficThenSleeps(t *testing.T) {
	before := runtime.NumGoroutine()
	te := newTestEngine(t)
	te.cfg.Load().BusyPoll = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- te.Run(ctx) }()

	rx := func(n int) func() bool { return func() bool { return len(te.taps[0].written()) >= n } }
	tx := func(n int) func() bool { return func() bool { return len(te.conn.sentDatagrams()) >= n } }

	te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
	waitFor(t, "the first datagram", rx(1))
	waitFor(t, "the busy poller to start", te.busy.active.Load)

	// While it polls, the pipelines' goroutines wait: whatever arrives
	// now is the busy poller's to carry.
	for i := 2; i <= 20; i++ {
		te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
		te.taps[0].push(frame(macRemote, macLocal, 46)) // learned behind peerB
		waitFor(t, "a datagram delivered while polling", rx(i))
		waitFor(t, "a frame sent while polling", tx(i-1))
		if !te.busy.active.Load() {
			t.Fatalf("the busy poller stopped with traffic every few µs (round %d)", i)
		}
	}
	if got := te.conn.sentDatagrams(); got[len(got)-1].Addr != peerB {
		t.Errorf("sent to %s, want the learned %s", got[len(got)-1].Addr, peerB)
	}

	waitFor(t, "the busy poller to stop", func() bool { return !te.busy.active.Load() })
	if s := te.busy.seconds(); s < 0.2 || s > 5 {
		t.Errorf("busy poller spent %.3fs polling, want its 0.2s window and a little more", s)
	}
	// Asleep again: the pipelines' own goroutines carry traffic, and
	// wake the busy poller.
	te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
	waitFor(t, "a datagram after the busy poller stopped", rx(21))
	waitFor(t, "the busy poller to start again", te.busy.active.Load)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if te.busy.active.Load() {
		t.Error("busy poller still active after Run returned")
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// Without busy_poll, traffic never starts the busy poller.
func TestBusyPollerOffByDefault(t *testing.T) {
	te := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- te.Run(ctx) }()
	for i := 1; i <= 5; i++ {
		te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
		waitFor(t, "a datagram", func() bool { return len(te.taps[0].written()) >= i })
	}
	time.Sleep(20 * time.Millisecond)
	if te.busy.active.Load() || te.busy.seconds() != 0 {
		t.Errorf("busy poller ran with busy_poll off (%.3fs)", te.busy.seconds())
	}

	// busy_poll takes effect on reload.
	cfg := *te.cfg.Load()
	cfg.BusyPoll = time.Minute
	if _, err := te.Reload(&cfg); err != nil {
		t.Fatalf("reload with busy_poll: %v", err)
	}
	te.conn.push(underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB})
	waitFor(t, "the busy poller to start after the reload", te.busy.active.Load)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Under a flood every round finds something: the busy poller stands down
// and leaves the pipelines to carry it, and nothing is lost.
func TestBusyPollerStandsDownUnderLoad(t *testing.T) {
	te := newTestEngine(t)
	te.cfg.Load().BusyPoll = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- te.Run(ctx) }()

	// A backlog that takes many milliseconds to drain: no round of the
	// busy poller comes back empty until it is gone.
	const sent = 100_000
	dg := underlay.Datagram{Buf: vxlan(200, frame(macLocal, macRemote, 46)), Addr: peerB}
	te.conn.mu.Lock()
	for range sent {
		te.conn.queued = append(te.conn.queued, dg)
	}
	te.conn.mu.Unlock()
	te.conn.push(dg)
	waitFor(t, "every datagram delivered", func() bool { return te.taps[0].writes() == sent+1 })
	if te.busy.stood.Load() == 0 {
		t.Errorf("busy poller never stood down while it drained %d datagrams", sent)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
