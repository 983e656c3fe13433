package etcd

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/internal/etcdtest"
)

func converged(s *control.State) bool {
	v := s.VNIs[1]
	return v != nil && len(v.VTEPs) == 1 && len(v.MACs) == 1 && len(v.IPs) == 1
}

func startPair(t *testing.T, s *etcdtest.Server) (a, b *vtepd) {
	t.Helper()
	a = startVTEP(t, s, addrA.String(), nil)
	b = startVTEP(t, s, addrB.String(), nil)
	a.b.SetMAC(1, mac(1))
	a.b.SetIP(1, ip1, mac(1))
	b.b.SetMAC(1, mac(2))
	b.b.SetIP(1, ip6, mac(2))
	a.b.Join(1)
	b.b.Join(1)
	waitFor(t, a.sink, 5*time.Second, "A sees B", converged)
	waitFor(t, b.sink, 5*time.Second, "B sees A", converged)
	return a, b
}

func waitConnected(t *testing.T, v *vtepd, want bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for v.b.Status().Connected != want {
		if time.Now().After(deadline) {
			t.Fatalf("connected not %v within %v: %+v", want, d, v.b.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// etcd stopped (SIGSTOP) for longer than the lease TTL: the last view is
// kept, never replaced by an empty one; when etcd is back both vtepds
// notice their leases are gone, register again, republish, and resync.
func TestIntegrationOutagePaused(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a, b := startPair(t, s)
	syncs := a.b.C.Syncs.Load()

	s.Signal(syscall.SIGSTOP)
	waitConnected(t, a, false, 15*time.Second)
	time.Sleep(3 * time.Second) // past the 2s TTL
	if !a.sink.view(converged) || !b.sink.view(converged) || a.sink.emptySyncs+b.sink.emptySyncs != 0 {
		t.Fatal("the view was not kept through the outage")
	}
	s.Signal(syscall.SIGCONT)

	waitNewLeases(t, a, b)
	waitFor(t, a.sink, 10*time.Second, "A sees B again", converged)
	waitFor(t, b.sink, 10*time.Second, "B sees A again", converged)
	// Converged on the new leases, and stays so once the old ones expire.
	time.Sleep(3 * time.Second)
	waitFor(t, a.sink, time.Second, "A still sees B", converged)
	if a.b.C.Syncs.Load() <= syncs {
		t.Error("no resync after the outage")
	}
	// When the paused etcd resumes it expires every lease at once, so
	// each side may see the other's entries go until they are
	// republished: that is etcd's state, not an error turned into one.
	t.Logf("Syncs that emptied a view after etcd resumed: A %d, B %d", a.sink.emptySyncs, b.sink.emptySyncs)
	for _, v := range []*vtepd{a, b} {
		if v.b.C.Errors[control.ReasonLease].Load() == 0 {
			t.Error("lease loss not counted")
		}
	}
}

// etcd killed and restarted on the same data after more than the TTL: the
// view is kept while it is down. A restarted etcd extends its leases, so
// both backends take theirs up again, with their keys on them: a resync,
// and not one write (a fleet would otherwise write everything again at
// once). A key of ours deleted while no watch saw it is written again.
func TestIntegrationOutageRestart(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a, b := startPair(t, s)
	writes := func() uint64 {
		return a.b.C.Puts.Load() + a.b.C.Txns.Load() + a.b.C.Deletes.Load() + b.b.C.Puts.Load() + b.b.C.Txns.Load() + b.b.C.Deletes.Load()
	}
	w0, syncs := writes(), a.b.C.Syncs.Load()
	leaseA := a.b.leaseID.Load()
	s.Kill()
	waitConnected(t, a, false, 15*time.Second)
	time.Sleep(3 * time.Second)
	if !a.sink.view(converged) || !b.sink.view(converged) || a.sink.emptySyncs+b.sink.emptySyncs != 0 {
		t.Fatal("the view was not kept through the outage")
	}
	s.Restart()
	for _, v := range []*vtepd{a, b} {
		waitConnected(t, v, true, 20*time.Second)
	}
	time.Sleep(3 * time.Second) // longer than a lease not kept alive lives
	waitFor(t, a.sink, 5*time.Second, "A sees B", converged)
	waitFor(t, b.sink, 5*time.Second, "B sees A", converged)
	if n := a.b.C.Leases.Load() + b.b.C.Leases.Load(); n != 2 || a.b.leaseID.Load() != leaseA {
		t.Errorf("leases granted %d (want the first two only); A's lease %x, was %x", n, a.b.leaseID.Load(), leaseA)
	}
	if w := writes() - w0; w != 0 {
		t.Errorf("%d writes after etcd came back, want none: the keys were still there", w)
	}
	if a.b.C.Syncs.Load() <= syncs {
		t.Error("no resync after the outage")
	}
	c := s.Client(nil)
	const key = "/vtepd/v1/vni/1/mac/02:00:00:00:00:01"
	resp, err := c.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != leaseA {
		t.Fatalf("A's MAC key is not on A's lease: %v %v", resp, err)
	}

	// Again, with A's key deleted while etcd had no watcher of A's.
	s.Kill()
	waitConnected(t, a, false, 15*time.Second)
	time.Sleep(3 * time.Second)
	s.Restart()
	if _, err := s.Client(nil).Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, a, true, 20*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Get(context.Background(), key)
		if err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease == a.b.leaseID.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's deleted key not written again: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, v := range []*vtepd{a, b} {
		if n := v.sink.emptySyncs; n != 0 {
			t.Errorf("%d empty Syncs", n)
		}
	}
}

// A compaction that overtakes the watch makes the backend list again and
// Sync the difference.
func TestIntegrationCompaction(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	c := s.Client(nil)
	once := make(chan struct{}, 1)
	once <- struct{}{}
	hook := func(rev int64) {
		select {
		case <-once:
		default:
			return
		}
		// Between the list and the watch: changes, then a compaction
		// past them, so the watch from rev+1 cannot be served.
		ctx := context.Background()
		c.Put(ctx, "/vtepd/v1/vni/1/mac/02:00:00:00:00:05", `{"vtep":"198.18.0.5"}`)
		r, err := c.Put(ctx, "/vtepd/v1/vni/1/vtep/198.18.0.5", `{"port":4789}`)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := c.Compact(ctx, r.Header.Revision); err != nil {
			t.Error(err)
		}
	}
	a := startVTEPWith(t, s, addrA.String(), nil, func(b *Backend) {
		b.listed = hook
		b.Join(1)
	})
	waitFor(t, a.sink, 10*time.Second, "resync after compaction", func(s *control.State) bool {
		v := s.VNIs[1]
		return v != nil && v.VTEPs[netipAddr("198.18.0.5")] == 4789 && v.MACs[mac(5)] == netipAddr("198.18.0.5")
	})
	if a.b.C.Errors[control.ReasonCompacted].Load() == 0 {
		t.Error("compaction not counted")
	}
	if a.b.C.Syncs.Load() < 2 {
		t.Error("no second list")
	}
}

// In steady state the only requests to etcd are lease keepalives:
// refreshing every local entry costs nothing.
func TestIntegrationSteadyState(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a, b := startPair(t, s)
	for i := 0; i < 50; i++ {
		a.b.SetMAC(1, mac(byte(10+i)))
	}
	waitFor(t, b.sink, 5*time.Second, "B sees A's MACs", func(s *control.State) bool { return len(s.VNIs[1].MACs) == 51 })
	time.Sleep(500 * time.Millisecond)

	writes := func() float64 {
		return s.Metric(`grpc_server_handled_total{grpc_code="OK",grpc_method="Txn"`) +
			s.Metric(`grpc_server_handled_total{grpc_code="OK",grpc_method="Put"`) +
			s.Metric(`grpc_server_handled_total{grpc_code="OK",grpc_method="Range"`) +
			s.Metric(`grpc_server_handled_total{grpc_code="OK",grpc_method="DeleteRange"`) +
			s.Metric(`grpc_server_handled_total{grpc_code="OK",grpc_method="LeaseGrant"`)
	}
	keepalives := func() float64 {
		return s.Metric(`grpc_server_msg_received_total{grpc_method="LeaseKeepAlive"`)
	}
	w0, k0 := writes(), keepalives()
	txns := a.b.C.Txns.Load() + b.b.C.Txns.Load()
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		for i := 0; i < 50; i++ {
			a.b.SetMAC(1, mac(byte(10+i)))
		}
		a.b.SetMAC(1, mac(1))
		a.b.SetIP(1, ip1, mac(1))
		b.b.SetMAC(1, mac(2))
		b.b.Join(1)
		time.Sleep(10 * time.Millisecond)
	}
	if w := writes() - w0; w != 0 {
		t.Errorf("%v requests other than keepalives in steady state", w)
	}
	if n := a.b.C.Txns.Load() + b.b.C.Txns.Load() - txns; n != 0 {
		t.Errorf("%d transactions sent in steady state", n)
	}
	if k := keepalives() - k0; k == 0 {
		t.Error("no keepalives seen: is the metric there?")
	} else {
		t.Logf("%v keepalives in 3s from two vtepds (ttl 2s)", k)
	}
}

// waitNewLeases waits until a and b are connected again after an outage
// and have each been granted a second lease.
func waitNewLeases(t *testing.T, a, b *vtepd) {
	t.Helper()
	for _, v := range []*vtepd{a, b} {
		waitConnected(t, v, true, 20*time.Second)
	}
	deadline := time.Now().Add(15 * time.Second)
	for a.b.C.Leases.Load() < 2 || b.b.C.Leases.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("leases not granted again: A %d, B %d", a.b.C.Leases.Load(), b.b.C.Leases.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
