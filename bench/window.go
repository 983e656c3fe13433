package main

import "time"

// window measures the rate of a growing counter over a planned interval
// [from, to), from observations made whenever the caller gets to it (after
// each batch of packets). The first observation at or after from opens
// the window and the first later one at or after to closes it; the rate is
// taken between those two actual observations, so the result is exact for
// the counts it reports whatever the observation jitter.
type window struct {
	from, to time.Time

	state  windowState
	c0, c1 uint64
	t0, t1 time.Time
}

type windowState int

const (
	windowBefore windowState = iota
	windowOpen
	windowClosed
)

// observe records counter value n at time now and returns the state the
// window is in afterwards, and whether this observation changed it.
func (w *window) observe(now time.Time, n uint64) (windowState, bool) {
	switch w.state {
	case windowBefore:
		if !now.Before(w.from) {
			w.state, w.c0, w.t0 = windowOpen, n, now
			return w.state, true
		}
	case windowOpen:
		if !now.Before(w.to) {
			w.state, w.c1, w.t1 = windowClosed, n, now
			return w.state, true
		}
	}
	return w.state, false
}

// count and seconds are the counter's growth and the time between the
// observations that opened and closed the window; zero until it closed.
func (w *window) count() uint64 {
	if w.state != windowClosed {
		return 0
	}
	return w.c1 - w.c0
}

func (w *window) seconds() float64 {
	if w.state != windowClosed {
		return 0
	}
	return w.t1.Sub(w.t0).Seconds()
}
