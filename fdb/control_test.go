package fdb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPrecedence installs one key from the three sources in every order,
// each source from its own remote, up to three steps long with repeats,
// then withdraws the control route and ages the table. Static wins over
// control and control over learned, whatever came first: AddStatic
// replaces anything, AddControl replaces a learned entry and is refused by
// a static one, Learn changes neither. The withdrawal removes only a
// control entry, and Expire only a learned one.
func TestPrecedence(t *testing.T) {
	const vni = 1
	m := mac(1)
	var seqs []string
	var gen func(prefix string)
	gen = func(prefix string) {
		if prefix != "" {
			seqs = append(seqs, prefix)
		}
		if len(prefix) < 3 {
			for _, c := range "SCL" {
				gen(prefix + string(c))
			}
		}
	}
	gen("")

	for _, seq := range seqs {
		t.Run(seq, func(t *testing.T) {
			tb := New()
			tb.SetNetwork(vni, Network{MaxEntries: 10, Ageing: time.Minute})
			var got, want []string
			// What the key holds so far: its type (0 for none) and remote.
			var typ Type
			var remote, lastControl netip.Addr
			for j, c := range seq {
				r := netip.AddrFrom4([4]byte{192, 0, 2, byte(j + 1)})
				switch c {
				case 'S':
					got = append(got, fmt.Sprint("static ", tb.AddStatic(vni, m, r)))
					want = append(want, "static <nil>")
					typ, remote = Static, r
				case 'C':
					changed, err := tb.AddControl(vni, m, r)
					got = append(got, fmt.Sprint("control ", changed, " ", errors.Is(err, ErrStaticEntry)))
					lastControl = r
					if typ == Static {
						want = append(want, "control false true")
						break
					}
					want = append(want, "control true false")
					typ, remote = Control, r
				case 'L':
					got = append(got, "learn "+tb.Learn(vni, m, r, 0).String())
					switch typ {
					case 0:
						want = append(want, "learn added")
						typ, remote = Learned, r
					case Learned:
						want = append(want, "learn moved")
						remote = r
					default:
						want = append(want, "learn ignored")
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("results (-want +got):\n%s", diff)
			}
			if !checkEntries(t, tb, []Entry{{VNI: vni, MAC: m, Remote: remote, Type: typ}}) {
				t.FailNow()
			}

			// Withdraw the last control route, if there was one.
			if lastControl.IsValid() {
				if got, want := tb.DeleteControl(vni, m, lastControl), typ == Control; got != want {
					t.Errorf("DeleteControl = %v, want %v", got, want)
				}
				if typ == Control {
					typ = 0
				}
			}
			n := 0
			if typ == Learned {
				n = 1
				typ = 0
			}
			if got := tb.Expire(int64(time.Hour)); got != n {
				t.Errorf("Expire removed %d, want %d", got, n)
			}
			a, ok := tb.Lookup(vni, m)
			if ok != (typ != 0) || ok && a != remote {
				t.Errorf("Lookup = %v, %v; want %v of type %v", a, ok, remote, typ)
			}
			checkInvariants(t, tb)
		})
	}
}

// TestControlRefreshInterleavings pauses a lock-free refresh of a learned
// entry between its look and its store, and has AddControl take the entry
// over meanwhile, from the same remote or another: the refresh must find
// the slot changed and give up, leaving the control entry without a
// last-seen time.
func TestControlRefreshInterleavings(t *testing.T) {
	const vni = 1
	ra, rb := addr("192.0.2.1"), addr("192.0.2.2")
	k := key{vni, mac(1)}
	for _, to := range []netip.Addr{ra, rb} {
		t.Run(to.String(), func(t *testing.T) {
			tb := New()
			tb.SetNetwork(vni, Network{MaxEntries: 10, Ageing: time.Hour})
			tb.Learn(vni, k.mac, ra, 0)
			interleave := pauseRefresh(t)
			got := make(chan LearnResult)
			go func() { got <- tb.Learn(vni, k.mac, ra, 2*refreshSlack) }()
			interleave(func() {
				if changed, err := tb.AddControl(vni, k.mac, to); !changed || err != nil {
					t.Errorf("AddControl = %v, %v", changed, err)
				}
			})
			if r := <-got; r != Ignored {
				t.Errorf("Learn = %v, want %v", r, Ignored)
			}
			if s := lastSeen(t, tb, k); s != 0 {
				t.Errorf("the control entry's last-seen time is %d", s)
			}
			checkEntries(t, tb, []Entry{{VNI: vni, MAC: k.mac, Remote: to, Type: Control}})
			checkInvariants(t, tb)
		})
	}
}

// TestControlReaders has lock-free readers look up keys while a writer
// changes them in place, in rounds: each round's keys are learned, taken
// over by AddControl, moved between remotes by it, some taken over again by
// AddStatic, and deleted only after the round has ended; meanwhile other
// keys of the same shard are added, withdrawn, deleted and aged around
// them, so that the table grows and shifts entries back. A key of the
// current round must be found by every lookup that the round spans, with a
// remote of its own, and every key found must have one of its remotes.
// Run it with -race.
func TestControlReaders(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	const (
		routeVNI = 5         // no ageing: its entries never go by themselves
		churnVNI = 5 | 1<<16 // ages, and shares low 16 bits with routeVNI
		nRoute   = 30
		nChurn   = 120
	)
	routes := [2][]key{
		sameShardKeys(0, nRoute, []uint32{routeVNI}, 0),
		sameShardKeys(0, nRoute, []uint32{routeVNI}, 1<<16),
	}
	churn := sameShardKeys(0, nChurn, []uint32{churnVNI}, 1<<17)
	index := map[key]int{}
	for i, k := range append(append(append([]key(nil), routes[0]...), routes[1]...), churn...) {
		index[k] = i
	}

	tb := New()
	tb.SetNetwork(routeVNI, Network{MaxEntries: nRoute})
	tb.SetNetwork(churnVNI, Network{MaxEntries: nChurn, Ageing: 20 * time.Millisecond})
	tb.SetLimits(Limits{MaxControl: nRoute + nChurn/2})

	// live is odd while the keys of round live/2 are all in the table.
	var live, clock atomic.Int64
	var stop atomic.Bool
	var looks atomic.Int64
	check := func(k key, a netip.Addr, ok bool) {
		if !ok {
			return
		}
		if i, known := index[k]; !known || !a.IsValid() || remoteOwner(a) != i {
			t.Errorf("Lookup(%#x, %v) = %v, which is no remote of key %d", k.vni, k.mac, a, index[k])
		}
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(5, uint64(r)))
			for !stop.Load() {
				l := live.Load()
				if l%2 == 0 || rng.IntN(4) == 0 {
					k := churn[rng.IntN(nChurn)]
					a, ok := tb.Lookup(k.vni, k.mac)
					check(k, a, ok)
					continue
				}
				ks := routes[(l/2)%2]
				k := ks[rng.IntN(nRoute)]
				a, ok := tb.Lookup(k.vni, k.mac)
				check(k, a, ok)
				if !ok && live.Load() == l {
					t.Errorf("Lookup(%#x, %v) missed a key changed in place", k.vni, k.mac)
				}
				looks.Add(1)
			}
		})
	}

	rng := rand.New(rand.NewPCG(6, 0))
	for round := range rounds {
		ks := routes[round%2]
		for _, k := range ks {
			i := index[k]
			if r := tb.Learn(k.vni, k.mac, remoteFor(i, 0), clock.Load()); r != Added {
				t.Fatalf("round %d: Learn = %v", round, r)
			}
		}
		live.Add(1)
		for range 2000 {
			now := clock.Add(int64(time.Millisecond))
			k := ks[rng.IntN(nRoute)]
			i := index[k]
			c := churn[rng.IntN(nChurn)]
			j := index[c]
			switch p := rng.IntN(100); {
			case p < 40:
				// Refused if AddStatic took the key, or if the
				// churn has taken all the room: either way the
				// key stays.
				_, err := tb.AddControl(k.vni, k.mac, remoteFor(i, rng.IntN(3)))
				if err != nil && !errors.Is(err, ErrStaticEntry) && !errors.Is(err, ErrControlFull) {
					t.Fatal(err)
				}
			case p < 42:
				if err := tb.AddStatic(k.vni, k.mac, remoteFor(i, rng.IntN(3))); err != nil {
					t.Fatal(err)
				}
			case p < 60:
				tb.Learn(c.vni, c.mac, remoteFor(j, rng.IntN(3)), now)
			case p < 75:
				if _, err := tb.AddControl(c.vni, c.mac, remoteFor(j, rng.IntN(3))); err != nil &&
					!errors.Is(err, ErrControlFull) {
					t.Fatal(err)
				}
			case p < 85:
				tb.DeleteControl(c.vni, c.mac, remoteFor(j, rng.IntN(3)))
			case p < 95:
				tb.Delete(c.vni, c.mac)
			default:
				tb.Expire(now)
			}
		}
		live.Add(1)
		for _, k := range ks {
			if !tb.Delete(k.vni, k.mac) {
				t.Fatalf("round %d: %v gone", round, k.mac)
			}
		}
	}
	stop.Store(true)
	readers.Wait()
	t.Logf("%d lookups of changing keys", looks.Load())
	if looks.Load() == 0 {
		t.Error("readers looked up no changing key")
	}
	g := tb.GlobalStats()
	if g.Control > nRoute+nChurn/2 {
		t.Errorf("%d control entries, cap %d", g.Control, nRoute+nChurn/2)
	}
	checkInvariants(t, tb)
}

// TestControlEntriesOfRemovedNetwork checks AddControl against the
// removal of its network: an entry of an earlier incarnation not swept yet
// is replaced, and a state that was removed before the shard was locked
// adds nothing.
func TestControlEntriesOfRemovedNetwork(t *testing.T) {
	const vni = 5
	n := Network{MaxEntries: 10}
	r1, r2 := addr("192.0.2.1"), addr("192.0.2.2")
	tb := New()
	tb.SetNetwork(vni, n)
	tb.SetLimits(Limits{MaxControl: 2})
	if _, err := tb.AddControl(vni, mac(1), r1); err != nil {
		t.Fatal(err)
	}
	tb.Learn(vni, mac(2), r1, 0)
	old := tb.unpublish(vni) // RemoveNetwork, stopped before its sweep
	tb.SetNetwork(vni, n)
	for _, m := range []MAC{mac(1), mac(2)} {
		if changed, err := tb.AddControl(vni, m, r2); !changed || err != nil {
			t.Errorf("AddControl(%v) over a stale entry = %v, %v", m, changed, err)
		}
	}
	k := key{vni, mac(3)}
	var err error
	withShard(tb, k, func(s *shard) { _, err = s.addControlLocked(k, r1, old) })
	if !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("AddControl with a removed state: %v, want ErrUnknownNetwork", err)
	}
	tb.sweep(old)
	checkEntries(t, tb, []Entry{
		{VNI: vni, MAC: mac(1), Remote: r2, Type: Control},
		{VNI: vni, MAC: mac(2), Remote: r2, Type: Control},
	})
	if g := tb.GlobalStats(); g.Control != 2 || g.ControlRefused != 0 {
		t.Errorf("GlobalStats() = %+v, want 2 control entries, none refused", g)
	}
	checkInvariants(t, tb)
}

// TestControlErrorsNameTheKey: the errors of AddControl say which entry
// they are about, and wrap their sentinels.
func TestControlErrorsNameTheKey(t *testing.T) {
	tb := New()
	tb.SetNetwork(7, Network{})
	tb.SetLimits(Limits{MaxControl: 1})
	if err := tb.AddStatic(7, mac(1), addr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.AddControl(7, mac(2), addr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    MAC
		want error
	}{{mac(1), ErrStaticEntry}, {mac(3), ErrControlFull}} {
		_, err := tb.AddControl(7, tc.m, addr("192.0.2.2"))
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), "7 "+tc.m.String()) {
			t.Errorf("AddControl(7, %v) = %v, want %v naming the key", tc.m, err, tc.want)
		}
	}
}
