package fdb

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sameShardKeys returns n keys in the given VNIs that all land in the
// shard, so that they share one table, collide in it, and make it grow,
// shift entries back on removal, and shrink to nothing on RemoveNetwork.
// The MACs are numbered from first.
func sameShardKeys(shard uint, n int, vnis []uint32, first int) []key {
	var keys []key
	for i := first; len(keys) < n; i++ {
		k := key{vnis[i%len(vnis)], mac(i)}
		if shardIndex(k.vni, k.mac) == shard {
			keys = append(keys, k)
		}
	}
	return keys
}

// remoteFor returns variant v (0-2) of the remotes that key number i may
// point at: two IPv4 and one IPv6 address, all naming i, so that a
// remote read for the wrong key, or torn, is recognized.
func remoteFor(i, v int) netip.Addr {
	if v == 2 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{10, byte(v), byte(i >> 8), byte(i)})
}

// remoteOwner is the inverse of remoteFor: the key number a remote names.
func remoteOwner(a netip.Addr) int {
	b := a.As16()
	return int(b[14])<<8 | int(b[15])
}

// TestLockFreeReaders runs lock-free readers (Lookup, and Learn's
// refreshes) against writers that add, move, take over, withdraw, delete,
// age out and sweep entries, all in one shard, so that its table grows, shifts entries back
// on every removal, and is dropped and rebuilt from nothing. Every remote
// a lookup returns must be one that its key may have, keys never added
// must never be found, and static keys must be found whenever they were
// there for the whole lookup, however the entries around them move. The
// VNIs differ only above their low 16 bits, which a slot keeps in another
// word from the rest of the key, so a torn key would find another VNI's
// entry. Run it with -race.
func TestLockFreeReaders(t *testing.T) {
	iters := 40000
	if testing.Short() {
		iters = 4000
	}
	vnis := []uint32{7, 7 | 1<<16, 7 | 1<<24, 7 | 0xffff<<16}
	const (
		n       = 200 // churned keys, about 4 times what a first table holds
		nStatic = 40  // static keys, never changed between rebuilds
	)
	keys := sameShardKeys(0, n+nStatic, vnis, 0)
	static := keys[n:]
	absent := sameShardKeys(0, 50, vnis, 1<<20) // MACs never learned
	index := map[key]int{}
	for i, k := range keys {
		index[k] = i
	}

	tb := New()
	net := Network{MaxEntries: n, Ageing: 50 * time.Millisecond}
	for _, v := range vnis {
		tb.SetNetwork(v, net)
	}
	addStatic := func() {
		for _, k := range static {
			if err := tb.AddStatic(k.vni, k.mac, remoteFor(index[k], index[k]%3)); err != nil {
				t.Fatal(err)
			}
		}
	}
	addStatic()
	// epoch is odd while the writer takes the static entries away.
	var clock, epoch atomic.Int64
	var stop atomic.Bool
	var reads, hits atomic.Int64

	check := func(k key, a netip.Addr, ok bool) {
		if !ok {
			return
		}
		if i, known := index[k]; !known {
			t.Errorf("Lookup(%#x, %v) found %v for a key never added", k.vni, k.mac, a)
		} else if !a.IsValid() || remoteOwner(a) != i {
			t.Errorf("Lookup(%#x, %v) = %v, which is no remote of key %d", k.vni, k.mac, a, i)
		}
	}

	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(2, uint64(r)))
			for !stop.Load() {
				switch rng.IntN(4) {
				case 0:
					k := absent[rng.IntN(len(absent))]
					a, ok := tb.Lookup(k.vni, k.mac)
					check(k, a, ok)
				case 1:
					k := static[rng.IntN(len(static))]
					e := epoch.Load()
					a, ok := tb.Lookup(k.vni, k.mac)
					check(k, a, ok)
					if !ok && e%2 == 0 && epoch.Load() == e {
						t.Errorf("Lookup(%#x, %v) missed a static entry", k.vni, k.mac)
					}
				default:
					k := keys[rng.IntN(n)]
					a, ok := tb.Lookup(k.vni, k.mac)
					check(k, a, ok)
					reads.Add(1)
					if ok {
						hits.Add(1)
					}
				}
			}
		})
	}
	// A refresher: learns each key from a remote it may have, which is
	// mostly a lock-free refresh once the writer has added it.
	// Its Lookup+Learn pair is held off while the writer empties the
	// shard: a key deleted between the two would be learned again.
	var emptying sync.RWMutex
	readers.Go(func() {
		rng := rand.New(rand.NewPCG(3, 0))
		for !stop.Load() {
			k := keys[rng.IntN(n)]
			emptying.RLock()
			if a, ok := tb.Lookup(k.vni, k.mac); ok {
				tb.Learn(k.vni, k.mac, a, clock.Add(int64(time.Millisecond)))
			}
			emptying.RUnlock()
		}
	})

	rng := rand.New(rand.NewPCG(4, 0))
	for it := range iters {
		i := rng.IntN(n)
		k := keys[i]
		now := clock.Add(int64(time.Millisecond))
		switch p := rng.IntN(100); {
		case p < 45:
			tb.Learn(k.vni, k.mac, remoteFor(i, rng.IntN(3)), now)
		case p < 70:
			tb.Delete(k.vni, k.mac)
		case p < 75:
			if err := tb.AddStatic(k.vni, k.mac, remoteFor(i, rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
		case p < 83:
			_, err := tb.AddControl(k.vni, k.mac, remoteFor(i, rng.IntN(3)))
			if err != nil && !errors.Is(err, ErrStaticEntry) {
				t.Fatal(err)
			}
		case p < 88:
			tb.DeleteControl(k.vni, k.mac, remoteFor(i, rng.IntN(3)))
		case p < 93:
			tb.Expire(now)
		}
		if it%5000 == 4999 {
			// Empty the shard and remove a network, which gives the
			// table back, then fill it again from nothing.
			epoch.Add(1)
			emptying.Lock()
			for _, k := range keys {
				tb.Delete(k.vni, k.mac)
			}
			tb.RemoveNetwork(vnis[0])
			if tb.tabs[0].Load() != emptyTable {
				t.Error("the emptied shard kept its table")
			}
			emptying.Unlock()
			tb.SetNetwork(vnis[0], net)
			addStatic()
			epoch.Add(1)
			for j, k := range keys[:n] {
				tb.Learn(k.vni, k.mac, remoteFor(j, j%3), now)
			}
		}
	}
	stop.Store(true)
	readers.Wait()
	t.Logf("%d reads, %d hits", reads.Load(), hits.Load())
	if hits.Load() == 0 {
		t.Error("readers found nothing")
	}
	checkInvariants(t, tb)
}

// lastSeen returns the entry's last-seen time, read under its shard's lock
// from the current table.
func lastSeen(t *testing.T, tb *Table, k key) int64 {
	t.Helper()
	s := tb.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	tab := s.tab.Load()
	k0, k1 := packKey(k.vni, k.mac)
	i, _, ok := tab.find(hash(k.vni, k.mac), k0, k1)
	if !ok {
		t.Fatalf("%d %v is gone", k.vni, k.mac)
	}
	return tab.info[i].lastSeen.Load()
}

// TestRefreshNeverTouchesAnotherEntry checks the busy bit: a refresh that
// found its entry in a slot must not store lastSeen in that slot after a
// writer has moved another entry into it. Keys a and b share a home slot,
// and deleting and adding them again in turn swaps their places, while
// another goroutine refreshes a with ever later times. b is only ever
// learned at time 0, so that must stay its last-seen time.
func TestRefreshNeverTouchesAnotherEntry(t *testing.T) {
	iters := 30000
	if testing.Short() {
		iters = 3000
	}
	const vni = 1
	ks := sameHome(vni, 2)
	a, b := ks[0], ks[1]
	ra, rb := addr("192.0.2.1"), addr("192.0.2.2")
	tb := New()
	tb.SetNetwork(vni, Network{MaxEntries: 10, Ageing: time.Hour})
	tb.Learn(vni, a.mac, ra, 0)
	tb.Learn(vni, b.mac, rb, 0)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		now := int64(0)
		for !stop.Load() {
			now += 2 * refreshSlack // every refresh stores
			tb.Learn(vni, a.mac, ra, now)
		}
	})
	for i := range iters {
		// [a b] becomes [b a], then [a b] again.
		tb.Delete(vni, a.mac)
		tb.Learn(vni, a.mac, ra, 0)
		tb.Delete(vni, b.mac)
		tb.Learn(vni, b.mac, rb, 0)
		if i%1000 == 0 {
			if s := lastSeen(t, tb, b); s != 0 {
				t.Fatalf("after %d swaps, b's last-seen time is %d: a refresh of a landed on b", i, s)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if s := lastSeen(t, tb, b); s != 0 {
		t.Fatalf("b's last-seen time is %d: a refresh of a landed on b", s)
	}
	checkInvariants(t, tb)
}

// pauseRefresh makes the next lock-free refresh stop between its look and
// its store, and returns a function that waits for it to get there, runs
// change, and lets it go on.
func pauseRefresh(t *testing.T) (interleave func(change func())) {
	t.Helper()
	reached, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookStore = func() {
		once.Do(func() {
			close(reached)
			<-resume
		})
	}
	t.Cleanup(func() { testHookStore = nil })
	return func(change func()) {
		<-reached
		change()
		close(resume)
	}
}

// sameHome returns n keys in the VNI with the same shard and home slot in
// any table of up to 1024 slots.
func sameHome(vni uint32, n int) []key {
	home := func(k key) uint64 { return hash(k.vni, k.mac) >> (64 - shardBits - 10) }
	keys := []key{{vni, mac(0)}}
	for i := 1; len(keys) < n; i++ {
		if k := (key{vni, mac(i)}); home(k) == home(keys[0]) {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestRefreshInterleavings replays, one step at a time, writers changing
// the slot that a lock-free refresh has looked at before it stores.
func TestRefreshInterleavings(t *testing.T) {
	const vni = 1
	net := Network{MaxEntries: 10000, Ageing: time.Hour}
	ra, rb := addr("192.0.2.1"), addr("192.0.2.2")
	ks := sameHome(vni, 3)
	a, b, c := ks[0], ks[1], ks[2]
	later := 2 * refreshSlack

	for _, tc := range []struct {
		name   string
		setup  func(tb *Table) // a must be at its home slot
		change func(tb *Table) // while the refresh of a is paused
		// others are the keys that must keep last-seen time 0.
		others []key
		want   LearnResult
	}{
		{
			name: "another entry shifted into the slot",
			setup: func(tb *Table) {
				tb.Learn(vni, a.mac, ra, 0)
				tb.Learn(vni, b.mac, rb, 0)
			},
			change: func(tb *Table) {
				tb.Delete(vni, a.mac) // b moves to a's slot
				tb.Learn(vni, a.mac, ra, 0)
			},
			others: []key{b},
			want:   Refreshed,
		},
		{
			name: "another entry with the same meta word shifted into the slot",
			setup: func(tb *Table) {
				tb.Learn(vni, a.mac, ra, 0)
				tb.Learn(vni, c.mac, ra, 0) // same VNI, type and remote
			},
			change: func(tb *Table) {
				tb.Delete(vni, a.mac) // c moves to a's slot
			},
			others: []key{c},
			want:   Added,
		},
		{
			name: "entry moved to another remote and back",
			setup: func(tb *Table) {
				tb.Learn(vni, a.mac, ra, 0)
			},
			change: func(tb *Table) {
				tb.Learn(vni, a.mac, rb, 0)
				tb.Learn(vni, a.mac, ra, 0)
			},
			want: Refreshed,
		},
		{
			name: "table grew",
			setup: func(tb *Table) {
				tb.Learn(vni, a.mac, ra, 0)
			},
			change: func(tb *Table) {
				s := tb.shard(a)
				old := s.tab.Load()
				for i, k := range sameShardKeys(shardIndex(a.vni, a.mac), 100, []uint32{vni}, 1<<20) {
					tb.Learn(vni, k.mac, remoteFor(i, 0), 0)
				}
				if s.tab.Load() == old {
					t.Error("table did not grow")
				}
			},
			want: Refreshed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New()
			tb.SetNetwork(vni, net)
			tc.setup(tb)
			interleave := pauseRefresh(t)
			got := make(chan LearnResult)
			go func() { got <- tb.Learn(vni, a.mac, ra, later) }()
			interleave(func() { tc.change(tb) })
			if r := <-got; r != tc.want {
				t.Errorf("Learn = %v, want %v", r, tc.want)
			}
			if s := lastSeen(t, tb, a); s != later {
				t.Errorf("a's last-seen time is %d, want %d", s, later)
			}
			for _, k := range tc.others {
				if s := lastSeen(t, tb, k); s != 0 {
					t.Errorf("%v's last-seen time is %d: the refresh of a landed on it", k.mac, s)
				}
			}
			checkInvariants(t, tb)
		})
	}
}

// TestLookupDuringMove stops a removal in the middle of moving an entry
// back, where the slot it moves into has the entry's key but the removed
// entry's meta word, and checks that a lookup then neither returns the
// removed entry's remote for the moved key nor misses it.
func TestLookupDuringMove(t *testing.T) {
	const vni = 1
	ks := sameHome(vni, 2)
	a, b := ks[0], ks[1]
	ra, rb := addr("192.0.2.1"), addr("2001:db8::2")
	tb := New()
	tb.SetNetwork(vni, Network{MaxEntries: 10})
	tb.Learn(vni, a.mac, ra, 0)
	tb.Learn(vni, b.mac, rb, 0) // after a in a's run

	reached, resume := make(chan struct{}), make(chan struct{})
	testHookMove = func() {
		close(reached)
		<-resume
	}
	t.Cleanup(func() { testHookMove = nil })
	deleted := make(chan bool)
	go func() { deleted <- tb.Delete(vni, a.mac) }()
	<-reached
	type result struct {
		a  netip.Addr
		ok bool
	}
	looked := make(chan result, 1)
	go func() {
		a, ok := tb.Lookup(vni, b.mac)
		looked <- result{a, ok}
	}()
	select {
	case r := <-looked:
		t.Errorf("Lookup returned %v, %v while the slot was torn", r.a, r.ok)
		looked <- r
	case <-time.After(20 * time.Millisecond): // it should be waiting
	}
	close(resume)
	if !<-deleted {
		t.Error("Delete found nothing")
	}
	if r := <-looked; r != (result{rb, true}) {
		t.Errorf("Lookup(%v) = %v, %v; want %v", b.mac, r.a, r.ok, rb)
	}
	checkInvariants(t, tb)
}

// TestRefreshDuringGrowth has a refresher store new last-seen times while
// a writer makes the shard's table grow again and again. No refresh may be
// lost to a copy: each must be in the table when Learn returns.
func TestRefreshDuringGrowth(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	const vni = 3
	keys := sameShardKeys(0, 300, []uint32{vni}, 0)
	r := addr("192.0.2.1")
	for range rounds {
		tb := New()
		tb.SetNetwork(vni, Network{MaxEntries: len(keys), Ageing: time.Hour})
		tb.Learn(vni, keys[0].mac, r, 0)
		var done atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, k := range keys[1:] {
				tb.Learn(vni, k.mac, r, 0)
			}
			done.Store(true)
		})
		now := int64(0)
		for !done.Load() {
			now += 2 * refreshSlack // every refresh stores
			if got := tb.Learn(vni, keys[0].mac, r, now); got != Refreshed {
				t.Fatalf("Learn: %v", got)
			}
			if s := lastSeen(t, tb, keys[0]); s != now {
				t.Fatalf("refreshed at %d, last-seen time is %d: lost in a copy", now, s)
			}
		}
		wg.Wait()
		checkInvariants(t, tb)
	}
}

// TestKeyPacking checks the corners of the packed key: VNIs that differ
// only in their high bits, the full uint32 range, and lookups of keys that
// pack to 0, the empty slot's key.
func TestKeyPacking(t *testing.T) {
	vnis := []uint32{0, 1, 1 << 16, 1<<16 | 1, 1 << 24, 1<<24 | 1, 0xffffff, 0xffffffff}
	tb := New()
	for i, v := range vnis {
		tb.SetNetwork(v, Network{MaxEntries: 10})
		if err := tb.AddStatic(v, mac(1), remoteFor(i, 0)); err != nil {
			t.Fatal(err)
		}
		if got := tb.Learn(v, MAC{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}, remoteFor(i, 2), 0); got != Added {
			t.Fatalf("Learn in VNI %#x: %v", v, got)
		}
	}
	for i, v := range vnis {
		if a, ok := tb.Lookup(v, mac(1)); !ok || a != remoteFor(i, 0) {
			t.Errorf("Lookup(%#x, %v) = %v, %v; want %v", v, mac(1), a, ok, remoteFor(i, 0))
		}
		if a, ok := tb.Lookup(v, MAC{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}); !ok || a != remoteFor(i, 2) {
			t.Errorf("Lookup(%#x, fe:ff:ff:ff:ff:ff) = %v, %v; want %v", v, a, ok, remoteFor(i, 2))
		}
		if a, ok := tb.Lookup(v, MAC{}); ok {
			t.Errorf("Lookup(%#x, zero MAC) = %v, want nothing", v, a)
		}
		if tb.Delete(v, MAC{}) {
			t.Errorf("Delete(%#x, zero MAC) found an entry", v)
		}
	}
	if a, ok := tb.Lookup(2, mac(1)); ok {
		t.Errorf("Lookup in a VNI without entries = %v", a)
	}
	for _, e := range tb.Entries(0) {
		k0, k1 := packKey(e.VNI, e.MAC)
		if got := unpackKey(k0, k1); got != (key{e.VNI, e.MAC}) {
			t.Errorf("unpackKey(packKey(%#x, %v)) = %#x, %v", e.VNI, e.MAC, got.vni, got.mac)
		}
	}
	checkInvariants(t, tb)
}

// TestGrowAndRemove fills one shard through several table sizes, deletes
// everything again, and checks that RemoveNetwork gives an emptied
// shard's table back.
func TestGrowAndRemove(t *testing.T) {
	const vni = 9
	keys := sameShardKeys(0, 2000, []uint32{vni}, 0)
	tb := New()
	tb.SetNetwork(vni, Network{MaxEntries: len(keys)})
	for i, k := range keys {
		if got := tb.Learn(vni, k.mac, remoteFor(i, i%3), 0); got != Added {
			t.Fatalf("Learn %d: %v", i, got)
		}
	}
	s := tb.shard(keys[0])
	if n := len(s.tab.Load().slots); n < 2048 {
		t.Errorf("%d entries in a table of %d slots", len(keys), n)
	}
	checkInvariants(t, tb)
	for i, k := range keys {
		if a, ok := tb.Lookup(vni, k.mac); !ok || a != remoteFor(i, i%3) {
			t.Fatalf("Lookup %d = %v, %v", i, a, ok)
		}
	}
	// Delete in an order unrelated to the probe runs.
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(len(keys)) {
		if !tb.Delete(vni, keys[i].mac) {
			t.Fatalf("Delete %d: not found", i)
		}
		if i%100 == 0 {
			checkInvariants(t, tb)
		}
	}
	checkInvariants(t, tb)
	if s.tab.Load() == emptyTable {
		t.Error("Delete gave the table back; only RemoveNetwork does")
	}
	tb.RemoveNetwork(vni)
	if s.tab.Load() != emptyTable {
		t.Error("RemoveNetwork kept an emptied shard's table")
	}
	checkInvariants(t, tb)
}

// TestRemotesReused checks that the interned IPv6 remotes do not grow
// with the number of addresses ever seen, only with the number in use at
// once, that IPv4 remotes are not interned at all, and that zones are
// kept.
func TestRemotesReused(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 100})
	const live = 20
	for i := range 5000 {
		// Entry i%live moves to a new address each time.
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		tb.Learn(1, mac(i%live), a, int64(i))
		tb.Learn(1, mac(1000+i%live), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), int64(i))
	}
	tb.rem.mu.Lock()
	n := len(tb.rem.refs)
	tb.rem.mu.Unlock()
	// A move takes the new address before it lets go of the old one.
	if n > live+1 {
		t.Errorf("%d remotes interned for %d IPv6 addresses in use", n, live)
	}
	for i := range live {
		j := 5000 - live + i
		want := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(j >> 24), 13: byte(j >> 16), 14: byte(j >> 8), 15: byte(j)})
		if a, ok := tb.Lookup(1, mac(j%live)); !ok || a != want {
			t.Errorf("Lookup %d = %v, %v; want %v", j%live, a, ok, want)
		}
	}
	// A zone is part of the address.
	zoned := addr("fe80::1%eth0")
	tb.Learn(1, mac(2000), zoned, 0)
	tb.Learn(1, mac(2001), addr("fe80::1"), 0)
	if a, ok := tb.Lookup(1, mac(2000)); !ok || a != zoned {
		t.Errorf("Lookup of a zoned remote = %v, %v; want %v", a, ok, zoned)
	}
	checkInvariants(t, tb)
	tb.RemoveNetwork(1)
	checkInvariants(t, tb)
}

// TestExpireSkipsOnlyWhatCannotBeDue checks the cases where the bound that
// lets Expire pass over a shard must move: a lower ageing time, a network
// that starts ageing, a move or an addition with an older time than any
// before, a table that grows, and refreshes, which leave the bound behind.
func TestExpireSkipsOnlyWhatCannotBeDue(t *testing.T) {
	hour := Network{MaxEntries: 100, Ageing: time.Hour}
	minute := Network{MaxEntries: 100, Ageing: time.Minute}
	// Keys that share a shard, to make its table grow.
	var grow []op
	for i, k := range sameShardKeys(0, 40, []uint32{1}, 0) {
		at := time.Hour - time.Second
		if i == 0 {
			at = 0
		}
		grow = append(grow, learnOp(1, k.mac, "192.0.2.1", at, Added))
	}
	tests := []struct {
		name string
		nets map[uint32]Network
		ops  []op
	}{
		{"ageing lowered after a pass", map[uint32]Network{1: hour}, []op{
			learnOp(1, mac(1), "192.0.2.1", 0, Added),
			expireOp(10*time.Second, 0),
			setNetworkOp(1, Network{MaxEntries: 10, Ageing: 5 * time.Second}),
			expireOp(10*time.Second, 1),
		}},
		{"moved with an older time", map[uint32]Network{1: hour}, []op{
			learnOp(1, mac(1), "192.0.2.1", 100*time.Second, Added),
			learnOp(1, mac(1), "192.0.2.2", time.Second, Moved),
			expireOp(time.Hour+time.Second, 1),
		}},
		{"added with an older time", map[uint32]Network{1: hour}, []op{
			learnOp(1, mac(1), "192.0.2.1", 100*time.Second, Added),
			learnOp(1, mac(2), "192.0.2.1", time.Second, Added),
			expireOp(time.Hour+time.Second, 1),
		}},
		{"table grew", map[uint32]Network{1: hour}, append(grow,
			expireOp(time.Hour, 1),
		)},
		{"refreshed after a pass", map[uint32]Network{1: hour}, []op{
			learnOp(1, mac(1), "192.0.2.1", 0, Added),
			learnOp(1, mac(1), "192.0.2.1", 30*time.Minute, Refreshed),
			expireOp(time.Hour, 0), // reads the entry, raises the bound
			expireOp(90*time.Minute-1, 0),
			expireOp(90*time.Minute, 1),
		}},
		{"network starts ageing", map[uint32]Network{1: {MaxEntries: 10}, 2: minute}, []op{
			learnOp(1, mac(1), "192.0.2.1", 0, Added),
			expireOp(time.Hour, 0), // reads the entry, which does not age
			setNetworkOp(1, minute),
			expireOp(time.Hour, 1),
		}},
		{"another network ages faster", map[uint32]Network{1: hour, 2: minute}, []op{
			learnOp(1, mac(1), "192.0.2.1", 0, Added),
			learnOp(2, mac(1), "192.0.2.1", 0, Added),
			expireOp(time.Minute, 1),
			expireOp(time.Hour, 1),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := withNetworks(tt.nets)
			runOps(t, tb, tt.ops)
			checkInvariants(t, tb)
		})
	}
}
