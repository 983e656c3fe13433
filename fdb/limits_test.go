package fdb

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestGlobalCap checks that Limits.MaxLearned caps the learned entries of
// all VNIs together, exactly, that refusals are counted in the VNI and
// table-wide, and that every way a learned entry goes gives its room back.
func TestGlobalCap(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 10, Ageing: time.Minute})
	tb.SetNetwork(2, Network{MaxEntries: 10})
	tb.SetLimits(Limits{MaxLearned: 5})
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	learn := func(vni uint32, i int, remote string, now time.Duration, want LearnResult) {
		t.Helper()
		if got := tb.Learn(vni, mac(i), addr(remote), int64(now)); got != want {
			t.Errorf("Learn(%d, %v, %s) = %v, want %v", vni, mac(i), remote, got, want)
		}
	}
	wantGlobal := func(learned int, refused uint64) {
		t.Helper()
		if got, want := tb.GlobalStats(), (GlobalStats{Learned: learned, Refused: refused}); got != want {
			t.Errorf("GlobalStats() = %+v, want %+v", got, want)
		}
		checkInvariants(t, tb)
	}

	for i := range 3 {
		learn(1, i, "192.0.2.1", 0, Added)
	}
	for i := range 2 {
		learn(2, i, "192.0.2.1", 0, Added)
	}
	wantGlobal(5, 0)
	learn(1, 10, "192.0.2.1", 0, Refused)
	learn(2, 10, "192.0.2.1", 0, Refused)
	learn(2, 11, "192.0.2.1", 0, Refused)
	wantGlobal(5, 3)
	if _, ok := tb.Lookup(1, mac(10)); ok {
		t.Error("a refused MAC was learned")
	}
	// Known MACs still refresh and move; static entries are not capped.
	learn(1, 0, "192.0.2.1", time.Second, Refreshed)
	learn(1, 1, "192.0.2.2", time.Second, Moved)
	if err := tb.AddStatic(2, mac(20), b); err != nil {
		t.Fatal(err)
	}
	wantGlobal(5, 3)
	for vni, want := range map[uint32]uint64{1: 1, 2: 2} {
		if st, _ := tb.Stats(vni); st.Refused != want {
			t.Errorf("VNI %d: Refused %d, want %d", vni, st.Refused, want)
		}
	}

	// Delete gives room back, to any VNI.
	tb.Delete(1, mac(2))
	wantGlobal(4, 3)
	learn(2, 10, "192.0.2.1", time.Second, Added)
	learn(1, 10, "192.0.2.1", time.Second, Refused)
	wantGlobal(5, 4)

	// AddStatic over a learned entry turns it static: room again.
	if err := tb.AddStatic(2, mac(0), a); err != nil {
		t.Fatal(err)
	}
	wantGlobal(4, 4)
	learn(1, 10, "192.0.2.1", time.Second, Added)
	wantGlobal(5, 4)

	// Expire: VNI 1's three learned entries age out.
	if n := tb.Expire(int64(2 * time.Minute)); n != 3 {
		t.Errorf("Expire removed %d, want 3", n)
	}
	wantGlobal(2, 4)
	for i := 30; i < 33; i++ {
		learn(2, i, "192.0.2.1", 2*time.Minute, Added)
	}
	learn(2, 33, "192.0.2.1", 2*time.Minute, Refused)
	wantGlobal(5, 5)

	// RemoveNetwork gives back all of the VNI's room.
	tb.RemoveNetwork(2)
	wantGlobal(0, 5)
	for i := range 5 {
		learn(1, 40+i, "192.0.2.1", 3*time.Minute, Added)
	}
	learn(1, 45, "192.0.2.1", 3*time.Minute, Refused)
	wantGlobal(5, 6)

	// A VNI's own cap is not a table-wide refusal.
	tb.SetNetwork(3, Network{MaxEntries: 0})
	learn(3, 1, "192.0.2.1", 3*time.Minute, Refused)
	wantGlobal(5, 6)

	// Lowering the cap keeps the entries; zero lifts it.
	tb.SetLimits(Limits{MaxLearned: 2})
	learn(1, 46, "192.0.2.1", 3*time.Minute, Refused)
	wantGlobal(5, 7)
	tb.SetLimits(Limits{})
	learn(1, 46, "192.0.2.1", 3*time.Minute, Added)
	wantGlobal(6, 7)
}

// watchCap polls count, in a goroutine, until the returned stop is called;
// stop fails the test if count was ever seen over capacity.
func watchCap(t *testing.T, what string, capacity int, count func() int) (stop func()) {
	var done atomic.Bool
	var over atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		for !done.Load() {
			if n := count(); n > capacity {
				over.Store(int64(n))
			}
		}
	})
	return func() {
		t.Helper()
		done.Store(true)
		watch.Wait()
		if n := over.Load(); n != 0 {
			t.Errorf("%d %s entries, over the cap of %d", n, what, capacity)
		}
	}
}

// raceForCap has workers goroutines each try per distinct keys, numbered
// n = w*per+i, at once; try reports whether the key was added or refused.
// Exactly capacity must be added and the rest refused. It returns how many
// were refused.
func raceForCap(t *testing.T, capacity, workers, per int, try func(n int) (added, refused bool)) int64 {
	t.Helper()
	var added, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				a, r := try(w*per + i)
				if a {
					added.Add(1)
				}
				if r {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if added.Load() != int64(capacity) || refused.Load() != int64(workers*per-capacity) {
		t.Errorf("added %d, refused %d; want %d and %d", added.Load(), refused.Load(), capacity, workers*per-capacity)
	}
	return refused.Load()
}

// churn has workers goroutines each make 3000 calls of step at once, with
// i counting the worker w's calls, over the first keys MACs spread across
// vnis, and a clock that every call moves on by 10µs.
func churn(workers, keys int, vnis []uint32, step func(w, i int, vni uint32, m MAC, now int64)) {
	var clock atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 3000 {
				n := (w*3000 + i*7) % keys
				step(w, i, vnis[n%len(vnis)], mac(n), clock.Add(int64(10*time.Microsecond)))
			}
		})
	}
	wg.Wait()
}

// TestGlobalCapConcurrent races learners in several VNIs (and shards) for
// the last units of a table-wide cap: the count never passes it, and
// exactly the cap's worth are added. Then it churns with deletes and
// ageing and checks the counters against the entries. Run it with -race.
func TestGlobalCapConcurrent(t *testing.T) {
	const (
		capacity = 100
		workers  = 8
		perVNI   = 1000
	)
	vnis := []uint32{1, 2, 3, 4}
	tb := New()
	for _, v := range vnis {
		tb.SetNetwork(v, Network{MaxEntries: perVNI, Ageing: 10 * time.Millisecond})
	}
	tb.SetLimits(Limits{MaxLearned: capacity})
	remote := addr("192.0.2.1")
	stopWatch := watchCap(t, "learned", capacity, func() int { return tb.GlobalStats().Learned })

	// Phase 1: distinct MACs, no removals: exactly capacity are added.
	refused := raceForCap(t, capacity, workers, 200, func(n int) (bool, bool) {
		r := tb.Learn(vnis[n%len(vnis)], mac(n), remote, 0)
		return r == Added, r == Refused
	})
	if g := tb.GlobalStats(); g.Learned != capacity || g.Refused != uint64(refused) {
		t.Errorf("GlobalStats() = %+v, want %d learned, %d refused", g, capacity, refused)
	}
	if n := len(tb.Entries(0)); n != capacity {
		t.Errorf("%d entries, want %d", n, capacity)
	}
	checkInvariants(t, tb)

	// Phase 2: learners, deleters, ageing and a network removed and
	// created again, all at once.
	churn(workers, 2000, vnis, func(w, i int, vni uint32, m MAC, now int64) {
		switch i % 10 {
		case 0, 1:
			tb.Delete(vni, m)
		case 2:
			tb.Expire(now)
		case 3:
			if w == 0 && i%300 == 3 {
				tb.RemoveNetwork(4)
				tb.SetNetwork(4, Network{MaxEntries: perVNI, Ageing: 10 * time.Millisecond})
			}
		default:
			tb.Learn(vni, m, remote, now)
		}
	})
	stopWatch()
	if n := len(tb.Entries(0)); n > capacity {
		t.Errorf("%d entries, over the cap of %d", n, capacity)
	}
	checkInvariants(t, tb)
}

// TestMoveDamping: MaxMoves moves within a second go through, the next is
// Damped and the MAC stays, moves stay Damped for the hold time, and are
// allowed again after it; refreshes are never damped.
func TestMoveDamping(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 100})
	tb.SetLimits(Limits{MaxMoves: 3, MoveHold: 10 * time.Second})
	m := mac(1)
	ms := time.Millisecond
	steps := []struct {
		remote string
		now    time.Duration
		want   LearnResult
	}{
		{"192.0.2.1", 0, Added},
		{"192.0.2.2", 100 * ms, Moved},
		{"192.0.2.1", 200 * ms, Moved},
		{"192.0.2.2", 300 * ms, Moved},
		{"192.0.2.1", 400 * ms, Damped}, // the fourth move within a second
		{"192.0.2.2", 500 * ms, Refreshed},
		{"192.0.2.2", 1000 * ms, Refreshed},
		{"192.0.2.1", 2 * time.Second, Damped}, // a new second, but held
		{"192.0.2.1", 10*time.Second + 399*ms, Damped},
		{"192.0.2.1", 10*time.Second + 400*ms, Moved}, // held until 0.4s + 10s
		{"192.0.2.2", 10*time.Second + 500*ms, Moved},
		{"192.0.2.1", 10*time.Second + 600*ms, Moved},
		{"192.0.2.2", 10*time.Second + 700*ms, Damped},
	}
	for _, s := range steps {
		before, _ := tb.Lookup(1, m)
		got := tb.Learn(1, m, addr(s.remote), int64(s.now))
		if got != s.want {
			t.Errorf("at %v, Learn from %s = %v, want %v", s.now, s.remote, got, s.want)
		}
		after, _ := tb.Lookup(1, m)
		if got == Damped && after != before {
			t.Errorf("at %v, a damped move changed the remote from %v to %v", s.now, before, after)
		}
	}
	if a, _ := tb.Lookup(1, m); a != addr("192.0.2.1") {
		t.Errorf("remote %v, want 192.0.2.1", a)
	}
	st, _ := tb.Stats(1)
	if st.Moves != 6 || st.Damped != 4 || st.Learned != 1 {
		t.Errorf("stats %+v, want 6 moves, 4 damped, 1 learned", st)
	}
	checkInvariants(t, tb)
}

// TestMoveDampingWindow: moves spread over more than a second each are
// never damped; MaxMoves 0 turns damping off; damping is per entry and a
// deleted entry comes back with a clean slate.
func TestMoveDampingWindow(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 100})
	tb.SetLimits(Limits{MaxMoves: 1, MoveHold: time.Minute})
	remotes := []string{"192.0.2.1", "192.0.2.2"}
	for i := range 10 {
		if got := tb.Learn(1, mac(1), addr(remotes[i%2]), int64(i)*int64(time.Second)); i > 0 && got != Moved {
			t.Fatalf("move %d, a second after the last, = %v", i, got)
		}
	}
	// Another MAC flaps; mac(1) is not held by it.
	tb.Learn(1, mac(2), addr(remotes[0]), int64(10*time.Second))
	tb.Learn(1, mac(2), addr(remotes[1]), int64(10*time.Second))
	if got := tb.Learn(1, mac(2), addr(remotes[0]), int64(10*time.Second)); got != Damped {
		t.Fatalf("second move within a second = %v, want Damped", got)
	}
	if got := tb.Learn(1, mac(1), addr(remotes[0]), int64(10*time.Second)); got != Moved {
		t.Errorf("another MAC's move = %v, want Moved", got)
	}
	// Deleted and learned again: not held.
	tb.Delete(1, mac(2))
	tb.Learn(1, mac(2), addr(remotes[0]), int64(11*time.Second))
	if got := tb.Learn(1, mac(2), addr(remotes[1]), int64(11*time.Second)); got != Moved {
		t.Errorf("move of a relearned MAC = %v, want Moved", got)
	}
	// Off: any number of moves.
	tb.SetLimits(Limits{})
	for i := range 10 {
		if got := tb.Learn(1, mac(2), addr(remotes[i%2]), int64(12*time.Second)); got != Moved {
			t.Fatalf("move %d with damping off = %v", i, got)
		}
	}
}

// TestMoveDampingSurvivesRelocation: an entry's damping state travels with
// it when its shard's table grows and when removals shift it back.
func TestMoveDampingSurvivesRelocation(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 1000})
	tb.SetLimits(Limits{MaxMoves: 1, MoveHold: time.Minute})
	keys := sameShardKeys(0, 100, []uint32{1}, 0)
	a, b := addr("192.0.2.1"), addr("192.0.2.2")
	k := keys[0]
	tb.Learn(k.vni, k.mac, a, 0)
	tb.Learn(k.vni, k.mac, b, 0)
	if got := tb.Learn(k.vni, k.mac, a, 0); got != Damped {
		t.Fatalf("second move = %v, want Damped", got)
	}
	for _, o := range keys[1:] {
		tb.Learn(o.vni, o.mac, a, 0) // the shard's table grows
	}
	if got := tb.Learn(k.vni, k.mac, a, int64(time.Second)); got != Damped {
		t.Errorf("after growth, move = %v, want Damped", got)
	}
	for _, o := range keys[1:] {
		tb.Delete(o.vni, o.mac) // entries shift back
	}
	if got := tb.Learn(k.vni, k.mac, a, int64(2*time.Second)); got != Damped {
		t.Errorf("after removals, move = %v, want Damped", got)
	}
	if got := tb.Learn(k.vni, k.mac, a, int64(time.Minute)); got != Moved {
		t.Errorf("after the hold, move = %v, want Moved", got)
	}
	st, _ := tb.Stats(1)
	if diff := cmp.Diff(Stats{Learned: 1, LearnedTotal: 100, Moves: 2, Damped: 3}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	checkInvariants(t, tb)
}

// TestControlCap checks that Limits.MaxControl caps the control entries
// of all VNIs together, exactly, that refusals are counted in the VNI and
// table-wide, that every way a control entry goes gives its room back,
// and that the learning caps and the control cap count apart.
func TestControlCap(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 2, Ageing: time.Minute})
	tb.SetNetwork(2, Network{MaxEntries: 2})
	tb.SetLimits(Limits{MaxLearned: 3, MaxControl: 4})
	r1, r2 := addr("192.0.2.1"), addr("192.0.2.2")
	add := func(vni uint32, i int, remote netip.Addr, changed bool, want error) {
		t.Helper()
		c, err := tb.AddControl(vni, mac(i), remote)
		if c != changed || !errors.Is(err, want) {
			t.Errorf("AddControl(%d, %v, %v) = %v, %v; want %v, %v", vni, mac(i), remote, c, err, changed, want)
		}
	}
	wantGlobal := func(want GlobalStats) {
		t.Helper()
		if diff := cmp.Diff(want, tb.GlobalStats()); diff != "" {
			t.Errorf("GlobalStats (-want +got):\n%s", diff)
		}
		checkInvariants(t, tb)
	}

	// Learning fills its own caps; control entries are not refused by
	// them, nor learned ones by the control cap.
	tb.Learn(1, mac(1), r1, 0)
	tb.Learn(1, mac(2), r1, 0)
	tb.Learn(2, mac(1), r1, 0)
	add(1, 3, r1, true, nil)
	add(1, 4, r1, true, nil)
	add(2, 3, r1, true, nil)
	wantGlobal(GlobalStats{Learned: 3, Control: 3})
	if r := tb.Learn(2, mac(2), r1, 0); r != Refused {
		t.Errorf("Learn past MaxLearned = %v", r)
	}
	// Taking over a learned entry takes control room and gives learning
	// room back.
	add(1, 1, r2, true, nil)
	wantGlobal(GlobalStats{Learned: 2, Refused: 1, Control: 4})
	if r := tb.Learn(2, mac(2), r1, 0); r != Added {
		t.Errorf("Learn with room again = %v", r)
	}

	// Full: new entries and takeovers are refused, and counted; changes
	// of existing control entries go on.
	add(2, 4, r1, false, ErrControlFull)
	add(1, 2, r1, false, ErrControlFull) // learned, and stays so
	add(1, 3, r2, true, nil)
	add(1, 3, r2, false, nil)
	wantGlobal(GlobalStats{Learned: 3, Refused: 1, Control: 4, ControlRefused: 2})
	for vni, want := range map[uint32]uint64{1: 1, 2: 1} {
		if st, _ := tb.Stats(vni); st.ControlRefused != want {
			t.Errorf("VNI %d: ControlRefused %d, want %d", vni, st.ControlRefused, want)
		}
	}
	if e := tb.Entries(0); e[1].MAC != mac(2) || e[1].Type != Learned {
		t.Errorf("a refused takeover changed the learned entry: %+v", e[1])
	}

	// DeleteControl, Delete, AddStatic and RemoveNetwork give room back;
	// a withdrawal that finds nothing does not.
	tb.DeleteControl(1, mac(3), r1) // it moved to r2
	add(2, 4, r1, false, ErrControlFull)
	tb.DeleteControl(1, mac(3), r2)
	add(2, 4, r1, true, nil)
	tb.Delete(2, mac(4))
	add(2, 5, r1, true, nil)
	if err := tb.AddStatic(2, mac(5), r1); err != nil {
		t.Fatal(err)
	}
	add(2, 6, r1, true, nil)
	wantGlobal(GlobalStats{Learned: 3, Refused: 1, Control: 4, ControlRefused: 3})
	tb.RemoveNetwork(1)
	wantGlobal(GlobalStats{Learned: 2, Refused: 1, Control: 2, ControlRefused: 3})
	add(2, 7, r1, true, nil)
	add(2, 8, r1, true, nil)
	add(2, 9, r1, false, ErrControlFull)

	// Expire leaves control entries, and their room, alone.
	if n := tb.Expire(int64(1000 * time.Hour)); n != 0 {
		t.Errorf("Expire removed %d", n)
	}
	add(2, 9, r1, false, ErrControlFull)

	// Lowering the cap keeps the entries; zero lifts it.
	tb.SetLimits(Limits{MaxControl: 1})
	add(2, 9, r1, false, ErrControlFull)
	wantGlobal(GlobalStats{Learned: 2, Refused: 1, Control: 4, ControlRefused: 6})
	tb.SetLimits(Limits{})
	add(2, 9, r1, true, nil)
	wantGlobal(GlobalStats{Learned: 2, Refused: 1, Control: 5, ControlRefused: 6})
}

// TestControlCapConcurrent races writers in several VNIs (and shards) for
// the last units of the control cap, some of them taking over learned
// entries: exactly the cap's worth are installed. Then it churns with
// withdrawals, deletes and learning, and checks the counters against the
// entries. Run it with -race.
func TestControlCapConcurrent(t *testing.T) {
	const (
		capacity = 100
		workers  = 8
	)
	vnis := []uint32{1, 2, 3, 4}
	tb := New()
	for _, v := range vnis {
		tb.SetNetwork(v, Network{MaxEntries: 1000, Ageing: 10 * time.Millisecond})
	}
	tb.SetLimits(Limits{MaxControl: capacity})
	remote := addr("192.0.2.1")
	for n := range 400 {
		if n%4 == 0 {
			tb.Learn(vnis[n%len(vnis)], mac(n), remote, 0)
		}
	}

	stopWatch := watchCap(t, "control", capacity, func() int { return tb.GlobalStats().Control })

	refused := raceForCap(t, capacity, workers, 50, func(n int) (bool, bool) {
		_, err := tb.AddControl(vnis[n%len(vnis)], mac(n), remote)
		if err != nil && !errors.Is(err, ErrControlFull) {
			t.Error(err)
		}
		return err == nil, errors.Is(err, ErrControlFull)
	})
	if g := tb.GlobalStats(); g.Control != capacity || g.ControlRefused != uint64(refused) {
		t.Errorf("GlobalStats() = %+v, want %d control, %d refused", g, capacity, refused)
	}
	checkInvariants(t, tb)

	churn(workers, 400, vnis, func(_, i int, vni uint32, m MAC, now int64) {
		switch i % 8 {
		case 0:
			tb.DeleteControl(vni, m, remote)
		case 1:
			tb.Delete(vni, m)
		case 2:
			tb.Expire(now)
		case 3, 4:
			tb.Learn(vni, m, remote, now)
		default:
			tb.AddControl(vni, m, remote)
		}
	})
	stopWatch()
	control := 0
	for _, e := range tb.Entries(0) {
		if e.Type == Control {
			control++
		}
	}
	if g := tb.GlobalStats(); control > capacity || g.Control != control {
		t.Errorf("%d control entries, GlobalStats says %d, cap %d", control, g.Control, capacity)
	}
	checkInvariants(t, tb)
}
