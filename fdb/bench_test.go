package fdb

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

var benchSizes = []int{1_000, 100_000, 1_000_000}

// benchTable returns a table holding n learned entries spread over 16 VNIs,
// and their keys in random order, so that lookups do not walk memory in
// insertion order.
func benchTable(b *testing.B, n int) (*Table, []key) {
	b.Helper()
	return benchTableOf(b, n, mixedRemotes)
}

// The remotes of the benchmarks' entries. A vtepd's remotes all share its
// underlay's family (configuration refuses anything else), so the lookup
// benchmarks run one family at a time; the others mix them.
var (
	mixedRemotes = []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2"), addr("2001:db8::1")}
	ipv4Remotes  = []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")}
	ipv6Remotes  = []netip.Addr{addr("2001:db8::1"), addr("2001:db8::2"), addr("2001:db8::3")}
	families     = []struct {
		name    string
		remotes []netip.Addr
	}{{"ipv4", ipv4Remotes}, {"ipv6", ipv6Remotes}}
)

// benchTableOf is benchTable with the entries' remotes taken in turn from
// remotes.
func benchTableOf(b *testing.B, n int, remotes []netip.Addr) (*Table, []key) {
	b.Helper()
	tb := New()
	for v := range uint32(16) {
		tb.SetNetwork(v+1, Network{MaxEntries: n, Ageing: time.Minute})
	}
	keys := make([]key, n)
	for i := range keys {
		keys[i] = key{uint32(i%16) + 1, mac(i)}
		if r := tb.Learn(keys[i].vni, keys[i].mac, remotes[i%len(remotes)], 0); r != Added {
			b.Fatalf("Learn %d: %v", i, r)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return tb, keys
}

var sinkAddr netip.Addr

func BenchmarkLookup(b *testing.B) {
	for _, f := range families {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/entries=%d", f.name, n), func(b *testing.B) {
				tb, keys := benchTableOf(b, n, f.remotes)
				b.ReportAllocs()
				b.ResetTimer()
				j := 0
				for b.Loop() {
					k := keys[j]
					if j++; j == len(keys) {
						j = 0
					}
					sinkAddr, _ = tb.Lookup(k.vni, k.mac)
				}
			})
		}
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	for _, f := range families {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/entries=%d", f.name, n), func(b *testing.B) {
				tb, keys := benchTableOf(b, n, f.remotes)
				var seed atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					// Each goroutine starts at a different place.
					j := int(seed.Add(7919)) % len(keys)
					var a netip.Addr
					for pb.Next() {
						k := keys[j]
						if j++; j == len(keys) {
							j = 0
						}
						a, _ = tb.Lookup(k.vni, k.mac)
					}
					_ = a
				})
			})
		}
	}
}

// BenchmarkLearnRefresh is the steady-state receive path: every datagram
// refreshes an entry that already points at its sender.
func BenchmarkLearnRefresh(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			tb, keys := benchTable(b, n)
			remotes := make([]netip.Addr, len(keys))
			for i, k := range keys {
				remotes[i], _ = tb.Lookup(k.vni, k.mac)
			}
			b.ReportAllocs()
			b.ResetTimer()
			j := 0
			now := int64(0)
			for b.Loop() {
				// A clock read per batch of 64 datagrams, advancing
				// 10µs a time, as the engine would.
				if j%64 == 0 {
					now += int64(10 * time.Microsecond)
				}
				if r := tb.Learn(keys[j].vni, keys[j].mac, remotes[j], now); r != Refreshed {
					b.Fatal(r)
				}
				if j++; j == len(keys) {
					j = 0
				}
			}
		})
	}
}

func BenchmarkLearnRefreshParallel(b *testing.B) {
	tb, keys := benchTable(b, 100_000)
	remotes := make([]netip.Addr, len(keys))
	for i, k := range keys {
		remotes[i], _ = tb.Lookup(k.vni, k.mac)
	}
	var clock, seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		j := int(seed.Add(7919)) % len(keys)
		var now int64
		for i := 0; pb.Next(); i++ {
			if i%64 == 0 {
				now = clock.Add(int64(10 * time.Microsecond))
			}
			tb.Learn(keys[j].vni, keys[j].mac, remotes[j], now)
			if j++; j == len(keys) {
				j = 0
			}
		}
	})
}

// BenchmarkLearnNew adds a new entry per operation into a table kept at a
// constant size by deleting the oldest: the write-locked path.
func BenchmarkLearnNew(b *testing.B) {
	tb := New()
	const n = 100_000
	tb.SetNetwork(1, Network{MaxEntries: n, Ageing: time.Minute})
	r := addr("192.0.2.1")
	for i := range n {
		tb.Learn(1, mac(i), r, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		tb.Delete(1, mac(i))
		tb.Learn(1, mac(i+n), r, 0)
		i++
	}
}

// BenchmarkExpire is one ageing pass over a million entries of which none
// are due, the common case.
func BenchmarkExpire(b *testing.B) {
	tb, _ := benchTable(b, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := tb.Expire(int64(time.Second)); n != 0 {
			b.Fatal(n)
		}
	}
}

// BenchmarkAddControl is a control plane's resync: every route it installs
// is already there (unchanged), or has moved to another remote (move).
func BenchmarkAddControl(b *testing.B) {
	const n = 100_000
	r := []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2")}
	for _, move := range []bool{false, true} {
		b.Run(map[bool]string{false: "unchanged", true: "move"}[move], func(b *testing.B) {
			// A table of its own each run: a run of "move" leaves the
			// routes wherever its last pass put them.
			tb := New()
			tb.SetNetwork(1, Network{})
			for i := range n {
				if _, err := tb.AddControl(1, mac(i), r[0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				remote := r[0]
				if move {
					remote = r[(i/n+1)%2] // each pass moves every route
				}
				if changed, _ := tb.AddControl(1, mac(i%n), remote); changed != move {
					b.Fatal("changed:", changed)
				}
				i++
			}
		})
	}
}
