package main

import (
	"testing"
	"time"
)

// simulate drives p with a clock of its own for d: each batch sent costs
// perDatagram of time per datagram, each sleep lasts what was asked plus
// oversleep, and stall (if not zero) freezes the sender once at stallAt.
// It returns what was sent, the largest batch, the number of sleeps and
// the shortest one.
type simResult struct {
	sent     uint64
	maxBatch int
	sleeps   int
	minSleep time.Duration
}

func simulate(t *testing.T, p *pacer, d, perDatagram, oversleep, stallAt, stall time.Duration) simResult {
	t.Helper()
	r := simResult{minSleep: time.Hour}
	var now time.Duration
	stalled := stall == 0
	for calls := 0; now < d; calls++ {
		if calls > 10_000_000 {
			t.Fatalf("pacer loops without progress at %v, %d sent", now, r.sent)
		}
		if !stalled && now >= stallAt {
			now += stall
			stalled = true
		}
		n, wait := p.next(now, r.sent)
		switch {
		case n > 0 && wait != 0:
			t.Fatalf("next(%v) = %d, %v: both a batch and a sleep", now, n, wait)
		case n > 0:
			r.sent += uint64(n)
			r.maxBatch = max(r.maxBatch, n)
			now += time.Duration(n) * perDatagram
		case wait <= 0:
			t.Fatalf("next(%v) = 0, %v: neither a batch nor a sleep", now, wait)
		default:
			r.sleeps++
			r.minSleep = min(r.minSleep, wait)
			now += wait + oversleep
		}
	}
	return r
}

func TestPacer(t *testing.T) {
	const tick = 200 * time.Microsecond
	for _, tc := range []struct {
		name                   string
		rate                   float64 // datagrams/s
		perDatagram, oversleep time.Duration
		wantSent               uint64 // in 1 s
		slack                  uint64
		wantQuantum            int
		sleepsLo, sleepsHi     int
	}{
		// 100k/s: 20 datagrams a tick, 5000 wake-ups a second.
		{name: "100k/s", rate: 100e3, perDatagram: 300 * time.Nanosecond, wantSent: 100e3, slack: 20, wantQuantum: 20, sleepsLo: 4900, sleepsHi: 5001},
		// A late wake-up is made up by the next batch, not lost.
		{name: "100k/s, 60 µs late wake-ups", rate: 100e3, perDatagram: 300 * time.Nanosecond, oversleep: 60 * time.Microsecond,
			wantSent: 100e3, slack: 30, wantQuantum: 20, sleepsLo: 3000, sleepsHi: 5001},
		// Slow: one datagram a wake-up.
		{name: "1k/s", rate: 1e3, wantSent: 1e3, slack: 1, wantQuantum: 1, sleepsLo: 999, sleepsHi: 1001},
		// Fast: batches of 64 back to back, a sleep only when ahead.
		{name: "1M/s", rate: 1e6, perDatagram: 500 * time.Nanosecond, wantSent: 1e6, slack: 64, wantQuantum: 64, sleepsLo: 1, sleepsHi: 20000},
		// Asked for more than the sender can do (2 µs a datagram:
		// 500k/s): it sends what it can, in whole batches, never sleeping,
		// and the schedule moves on. (Its one sleep is at the start, when
		// nothing is due yet.)
		{name: "asked beyond the sender", rate: 1e6, perDatagram: 2 * time.Microsecond, wantSent: 500e3, slack: 64, wantQuantum: 64, sleepsLo: 1, sleepsHi: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer(tc.rate, 64, tick)
			if p.quantum != tc.wantQuantum {
				t.Errorf("quantum %d, want %d", p.quantum, tc.wantQuantum)
			}
			r := simulate(t, p, time.Second, tc.perDatagram, tc.oversleep, 0, 0)
			if r.sent+tc.slack < tc.wantSent || r.sent > tc.wantSent+tc.slack {
				t.Errorf("sent %d in 1 s, want %d ± %d", r.sent, tc.wantSent, tc.slack)
			}
			if r.maxBatch > 64 {
				t.Errorf("a batch of %d, more than 64", r.maxBatch)
			}
			if r.sleeps < tc.sleepsLo || r.sleeps > tc.sleepsHi {
				t.Errorf("%d sleeps, want %d to %d", r.sleeps, tc.sleepsLo, tc.sleepsHi)
			}
			if r.sleeps > 0 && r.minSleep < minWait {
				t.Errorf("a sleep of %v, below %v", r.minSleep, minWait)
			}
			if got := r.sent + p.skipped; tc.name == "asked beyond the sender" && (got+2000+64 < 1e6 || got > 1e6) {
				t.Errorf("sent + skipped = %d, want the schedule's 1000000 less at most maxLag (2000) and a batch", got)
			}
		})
	}
}

// A sender frozen for 50 ms at 100k/s owes 5000 datagrams, and up to a
// quantum (20) more that were not due yet at its last wake-up: it sends
// 2 ms worth (maxLag, 200) back to back, skips the rest, and is on
// schedule again afterwards.
func TestPacerStall(t *testing.T) {
	p := newPacer(100e3, 64, 200*time.Microsecond)
	if p.maxLag != 200 {
		t.Fatalf("maxLag %d at 100k/s, want 200 (2 ms)", p.maxLag)
	}
	r := simulate(t, p, time.Second, 300*time.Nanosecond, 0, 300*time.Millisecond, 50*time.Millisecond)
	if p.skipped < 5000-200 || p.skipped > 5000+20-200 {
		t.Errorf("skipped %d, want %d to %d", p.skipped, 5000-200, 5000+20-200)
	}
	// At a rate where 2 ms is less than two batches, two batches.
	if q := newPacer(10e3, 64, 200*time.Microsecond); q.maxLag != 128 {
		t.Errorf("maxLag %d at 10k/s, want 128 (two batches)", q.maxLag)
	}
	if want := uint64(100e3) - p.skipped; r.sent+20 < want || r.sent > want+20 {
		t.Errorf("sent %d, want %d ± 20", r.sent, want)
	}
	if r.maxBatch > 64 {
		t.Errorf("a batch of %d after the stall, more than 64", r.maxBatch)
	}
}

// The arithmetic at the edges: nothing is due at the start, a sleep
// ends when exactly a quantum is due, and the unpaced pacer never sleeps.
func TestPacerNext(t *testing.T) {
	p := newPacer(1000, 64, time.Millisecond) // 1 a ms, quantum 1
	if n, wait := p.next(0, 0); n != 0 || wait != time.Millisecond {
		t.Errorf("next(0, 0) = %d, %v; want 0, 1ms", n, wait)
	}
	if n, wait := p.next(time.Millisecond, 0); n != 1 || wait != 0 {
		t.Errorf("next(1ms, 0) = %d, %v; want 1, 0", n, wait)
	}
	if n, wait := p.next(1500*time.Microsecond, 1); n != 0 || wait != 500*time.Microsecond {
		t.Errorf("next(1.5ms, 1) = %d, %v; want 0, 500µs", n, wait)
	}
	// Ahead of schedule (sent more than due): sleep until the next one
	// beyond what was sent.
	if n, wait := p.next(time.Millisecond, 3); n != 0 || wait != 3*time.Millisecond {
		t.Errorf("next(1ms, 3) = %d, %v; want 0, 3ms", n, wait)
	}
	q := newPacer(50e3, 64, time.Millisecond) // quantum 50
	if n, wait := q.next(0, 0); n != 0 || wait != time.Millisecond {
		t.Errorf("50k/s: next(0, 0) = %d, %v; want 0, 1ms (a quantum of 50)", n, wait)
	}
	u := newPacer(0, 64, time.Millisecond)
	for _, at := range []time.Duration{0, time.Second, time.Hour} {
		if n, wait := u.next(at, 1<<40); n != 64 || wait != 0 {
			t.Errorf("unpaced next(%v) = %d, %v; want 64, 0", at, n, wait)
		}
	}
	if z := newPacer(100, 0, time.Millisecond); z.batch != 1 || z.quantum != 1 {
		t.Errorf("batch 0: batch %d quantum %d, want 1, 1", z.batch, z.quantum)
	}
}
