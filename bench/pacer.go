package main

import (
	"math"
	"time"
)

// pacer is the schedule of a paced sender: rate datagrams per second from
// its start, handed out as batches of at most batch (one sendmmsg each).
// The schedule is absolute, so a wake-up that comes late is made up by the
// next batch rather than lost; but a sender that falls more than maxLag
// behind (descheduled, or simply slower than asked) moves the schedule on
// instead of bursting to catch up, and counts what it skipped: its offered
// rate is then lower than asked, which the report shows, instead of
// frames going out in bursts no ordinary sender makes.
//
// Between batches it sleeps until quantum datagrams are due: rate × tick,
// at least one and at most batch. A fast sender thus wakes once a tick
// and sends what accumulated, a slow one wakes for every datagram.
//
// The pacer only does arithmetic; the sender reads the clock, sleeps and
// sends (udprate_linux.go), and the tests drive it with a clock of their
// own.
type pacer struct {
	rate    float64 // datagrams per second; 0 or less: unpaced
	batch   int     // most datagrams a call to next hands out
	quantum int     // datagrams a sleep waits for
	maxLag  int     // most datagrams the sender may be behind schedule
	skipped uint64  // datagrams the schedule moved on from
}

// pacerLag is how far behind schedule, in time, a sender may fall before
// the schedule moves on: a wake-up that late is the scheduler's doing on
// a machine the sender shares with the data path, and an application
// that writes at a steady rate makes it up in the same way.
const pacerLag = 2 * time.Millisecond

// newPacer returns the schedule for rate datagrams per second (0: as fast
// as the sender can), in batches of at most batch (at least 1), waking
// at most about once a tick. The sender may fall pacerLag's worth of
// datagrams behind, and at least two batches, before the schedule moves
// on.
func newPacer(rate float64, batch int, tick time.Duration) *pacer {
	batch = max(batch, 1)
	p := &pacer{rate: rate, batch: batch, quantum: 1, maxLag: 2 * batch}
	if rate > 0 {
		p.quantum = min(max(int(rate*tick.Seconds()), 1), batch)
		p.maxLag = max(p.maxLag, int(rate*pacerLag.Seconds()))
	}
	return p
}

// minWait is the shortest sleep next asks for: below it, a sleep costs
// more than it waits.
const minWait = time.Microsecond

// next says what to do elapsed after the start, sent datagrams having gone
// out so far: send n > 0 datagrams now, or, with n == 0, sleep for wait.
// An unpaced pacer always says to send a batch.
func (p *pacer) next(elapsed time.Duration, sent uint64) (n int, wait time.Duration) {
	if p.rate <= 0 {
		return p.batch, 0
	}
	due := p.due(elapsed)
	done := sent + p.skipped
	if lag := uint64(p.maxLag); due > done+lag {
		p.skipped += due - done - lag
		done = due - lag
	}
	if due > done {
		return int(min(due-done, uint64(p.batch))), 0
	}
	// The next quantum is due when rate × t reaches done + quantum.
	at := time.Duration(math.Ceil(float64(done+uint64(p.quantum)) / p.rate * 1e9))
	return 0, max(at-elapsed, minWait)
}

// due is how many datagrams the schedule has sent by elapsed.
func (p *pacer) due(elapsed time.Duration) uint64 {
	if elapsed <= 0 {
		return 0
	}
	return uint64(p.rate * elapsed.Seconds())
}
