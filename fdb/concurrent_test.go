package fdb

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConcurrent runs learners, readers, deleters, expirers, a control
// plane's installs and withdrawals, and a network reconfigurer on a small
// key space at once, so that they collide, then checks that the counters
// agree with the entries. Run it with -race.
func TestConcurrent(t *testing.T) {
	const (
		maxEntries = 40
		maxControl = 30
		macs       = 64
		workers    = 8
	)
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	vnis := []uint32{1, 2, 3}
	const churnVNI = 3 // removed and created again while in use
	net := Network{MaxEntries: maxEntries, Ageing: 200 * time.Millisecond}

	tb := New()
	for _, v := range vnis {
		tb.SetNetwork(v, net)
	}
	tb.SetLimits(Limits{MaxControl: maxControl})
	remotes := []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2"), addr("2001:db8::3")}
	var clock atomic.Int64 // shared fake monotonic clock, nanoseconds
	var done atomic.Int64  // operations completed by all workers

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(1, uint64(w)))
			for range iters {
				done.Add(1)
				now := clock.Add(rng.Int64N(int64(time.Millisecond)))
				vni := vnis[rng.IntN(len(vnis))]
				m := mac(rng.IntN(macs))
				switch p := rng.IntN(100); {
				case p < 50:
					tb.Learn(vni, m, remotes[rng.IntN(len(remotes))], now)
				case p < 75:
					tb.Lookup(vni, m)
				case p < 82:
					tb.Delete(vni, m)
				case p < 85:
					tb.AddStatic(vni, m, remotes[0]) // may race with RemoveNetwork
				case p < 90:
					tb.AddControl(vni, m, remotes[rng.IntN(len(remotes))]) // and so may this
				case p < 93:
					tb.DeleteControl(vni, m, remotes[rng.IntN(len(remotes))])
				case p < 97:
					tb.Expire(now)
				default:
					if s, ok := tb.Stats(vni); ok && s.Learned > maxEntries {
						t.Errorf("VNI %d: %d learned entries, cap %d", vni, s.Learned, maxEntries)
					}
					if c := tb.GlobalStats().Control; c > maxControl {
						t.Errorf("%d control entries, cap %d", c, maxControl)
					}
				}
			}
		})
	}
	// Remove and recreate one network during the first half of the run,
	// and leave it to be filled again in the second half. Entries learned
	// with the old state must not survive it, nor be counted by the new.
	wg.Go(func() {
		for done.Load() < int64(workers*iters/2) {
			tb.RemoveNetwork(churnVNI)
			tb.SetNetwork(churnVNI, net)
			_ = tb.Entries(clock.Load())
			time.Sleep(50 * time.Microsecond)
		}
	})
	wg.Wait()

	checkInvariants(t, tb)
	counted := countsFromEntries(tb.Entries(clock.Load()))
	for _, v := range vnis {
		s, ok := tb.Stats(v)
		if !ok {
			t.Fatalf("VNI %d missing", v)
		}
		t.Logf("VNI %d: %+v", v, s)
		got := Stats{Learned: s.Learned, Static: s.Static, Control: s.Control}
		if diff := cmp.Diff(counted[v], got); diff != "" {
			t.Errorf("VNI %d: Stats counts differ from Entries (-entries +stats):\n%s", v, diff)
		}
		if s.Learned > maxEntries {
			t.Errorf("VNI %d: %d learned entries, cap %d", v, s.Learned, maxEntries)
		}
	}
}

// TestConcurrentCap has many goroutines learn distinct MACs into one VNI
// at once: exactly MaxEntries must be added and the rest refused, even
// though they land in different shards.
func TestConcurrentCap(t *testing.T) {
	const (
		maxEntries = 1000
		workers    = 16
		perWorker  = 500
	)
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: maxEntries, Ageing: time.Minute})
	var added, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				switch tb.Learn(1, mac(w*perWorker+i), addr("192.0.2.1"), 0) {
				case Added:
					added.Add(1)
				case Refused:
					refused.Add(1)
				default:
					t.Error("unexpected result")
				}
			}
		})
	}
	wg.Wait()
	s, _ := tb.Stats(1)
	want := Stats{Learned: maxEntries, LearnedTotal: maxEntries, Refused: workers*perWorker - maxEntries}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if added.Load() != maxEntries || refused.Load() != workers*perWorker-maxEntries {
		t.Errorf("results: %d added, %d refused", added.Load(), refused.Load())
	}
	if n := len(tb.Entries(0)); n != maxEntries {
		t.Errorf("%d entries, want %d", n, maxEntries)
	}
	checkInvariants(t, tb)
}

// TestRemoveNetworkInterleavings replays, one step at a time, the
// interleavings of RemoveNetwork with Learn and AddStatic that
// TestConcurrent can only hit by luck.
func TestRemoveNetworkInterleavings(t *testing.T) {
	const vni = 5
	n := Network{MaxEntries: 10, Ageing: time.Minute}
	r1, r2 := addr("192.0.2.1"), addr("192.0.2.2")
	k := key{vni, mac(1)}

	t.Run("state loaded before the sweep, shard locked after it", func(t *testing.T) {
		tb := New()
		tb.SetNetwork(vni, n)
		old := tb.network(vni)
		tb.RemoveNetwork(vni)
		var r LearnResult
		var err error
		withShard(tb, k, func(s *shard) {
			r = s.learnLocked(k, r1, old, 0)
			err = s.addStaticLocked(key{vni, mac(2)}, r1, old)
		})
		if r != Ignored {
			t.Errorf("learn with a removed state: %v, want %v", r, Ignored)
		}
		if !errors.Is(err, ErrUnknownNetwork) {
			t.Errorf("AddStatic with a removed state: %v, want ErrUnknownNetwork", err)
		}
		if e := tb.Entries(0); len(e) != 0 {
			t.Errorf("entries left: %v", e)
		}
		checkInvariants(t, tb)
	})

	t.Run("removed state meets the recreated network's entry", func(t *testing.T) {
		tb := New()
		tb.SetNetwork(vni, n)
		old := tb.network(vni)
		tb.RemoveNetwork(vni)
		tb.SetNetwork(vni, n)
		if r := tb.Learn(vni, k.mac, r2, 0); r != Added {
			t.Fatalf("Learn: %v", r)
		}
		var r LearnResult
		withShard(tb, k, func(s *shard) { r = s.learnLocked(k, r1, old, 0) })
		if r != Ignored {
			t.Errorf("learn with a removed state: %v, want %v", r, Ignored)
		}
		if a, _ := tb.Lookup(vni, k.mac); a != r2 {
			t.Errorf("Lookup = %v, want %v", a, r2)
		}
		checkInvariants(t, tb)
	})

	t.Run("entries not yet swept are replaced by the recreated network", func(t *testing.T) {
		tb := New()
		tb.SetNetwork(vni, n)
		tb.Learn(vni, mac(1), r1, 0)
		tb.Learn(vni, mac(2), r1, 0)
		old := tb.unpublish(vni) // RemoveNetwork, stopped before its sweep
		if _, ok := tb.Lookup(vni, mac(1)); !ok {
			t.Fatal("entry gone before the sweep")
		}
		if e := tb.Entries(0); len(e) != 0 {
			t.Errorf("Entries shows a removed network: %v", e)
		}
		tb.SetNetwork(vni, n)
		if r := tb.Learn(vni, mac(1), r2, 0); r != Added {
			t.Errorf("Learn over a stale entry: %v, want %v", r, Added)
		}
		if err := tb.AddStatic(vni, mac(2), r2); err != nil {
			t.Errorf("AddStatic over a stale entry: %v", err)
		}
		if l, s := old.learned.Load(), old.static.Load(); l != 0 || s != 0 {
			t.Errorf("old state still counts %d learned, %d static", l, s)
		}
		tb.sweep(old)
		checkEntries(t, tb, []Entry{
			{VNI: vni, MAC: mac(1), Remote: r2, Type: Learned},
			{VNI: vni, MAC: mac(2), Remote: r2, Type: Static},
		})
		s, _ := tb.Stats(vni)
		if diff := cmp.Diff(Stats{Learned: 1, Static: 1, LearnedTotal: 1}, s); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
		checkInvariants(t, tb)
	})
}
