package vtep

// Design notes on busy polling (busy_poll).
//
// Every pipeline sleeps on the runtime's poller until its descriptor has
// something, and waking it costs: on this kind of machine an idle CPU
// halts, and waking the thread that waits for a TAP queue or a socket
// takes tens of microseconds, more than the rest of a frame's trip. A
// ping between two containers crosses three such wake-ups (the TX
// pipeline of one host, the receive pipeline of the other and then of
// the first; the reply's own TX is spared by pollTX), where the kernel's
// vxlan runs the whole path in the softirq of the sender, and wakes only
// the ping.
//
// With busy_poll set, traffic starts one goroutine that polls every
// receive socket and every TAP queue, without waiting, over and over, for
// busy_poll after the last datagram or frame it found; then it sleeps
// until traffic starts it again. Meanwhile the pipelines' own goroutines
// stay off the poller (they wait for the busy poller to stop), so that
// traffic does not wake them for nothing. It is the kernel's
// net.core.busy_poll idea: a CPU kept busy buys the wake-ups back. Each
// round that finds nothing yields the CPU (sched_yield), so other work on
// it, the kernel's included, still runs.
//
// Under load the busy poller stands down. Polling pays for itself in the
// gaps between frames; when every round finds something for
// busySaturated, there are no gaps, and one goroutine doing all the work
// only holds back the pipelines, which can use every CPU. It then hands the work back to them for busyCooldown
// before traffic may start it again.
//
// The busy poller takes the pipelines' locks with TryLock only: a
// pipeline that holds its lock is at work, and will read its queue dry
// before it looks at the busy poller again.

import (
	"sync"
	"sync/atomic"
	"time"
)

// How long the busy poller polls without an empty round before it stands
// down, and how long it then stays down.
const (
	busySaturated = 2 * time.Millisecond
	busyCooldown  = 20 * time.Millisecond
)

// busyPoller is the engine's busy poller and what the pipelines need to
// know of it.
type busyPoller struct {
	kick   chan struct{} // a token: traffic was seen, start polling
	active atomic.Bool
	since  atomic.Int64 // when polling started (UnixNano), while active
	spent  atomic.Int64 // nanoseconds spent polling, over past periods
	stood  atomic.Int64 // times it stood down under load

	mu   sync.Mutex
	idle *sync.Cond // broadcast when active goes false
}

func newBusyPoller() *busyPoller {
	b := &busyPoller{kick: make(chan struct{}, 1)}
	b.idle = sync.NewCond(&b.mu)
	return b
}

// traffic tells the busy poller that a pipeline just handled something.
func (b *busyPoller) traffic() {
	if b.active.Load() {
		return
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// waitIdle returns once the busy poller is not polling: a pipeline's own
// goroutine calls it before it sleeps on the runtime's poller.
func (b *busyPoller) waitIdle() {
	if !b.active.Load() {
		return
	}
	b.mu.Lock()
	for b.active.Load() {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

func (b *busyPoller) setActive(on bool) {
	now := time.Now().UnixNano()
	b.mu.Lock()
	if on {
		b.since.Store(now)
	} else {
		b.spent.Add(now - b.since.Load())
	}
	b.active.Store(on)
	b.mu.Unlock()
	if !on {
		b.idle.Broadcast()
	}
}

// seconds is the time spent polling so far, the current period included.
func (b *busyPoller) seconds() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	ns := b.spent.Load()
	if b.active.Load() {
		ns += time.Now().UnixNano() - b.since.Load()
	}
	return float64(ns) / 1e9
}

// busyPollLoop is the busy poller's goroutine: it runs until done.
func (e *Engine) busyPollLoop(done <-chan struct{}) {
	b := e.busy
	for {
		select {
		case <-done:
			return
		case <-b.kick:
		}
		window := e.cfg.Load().BusyPoll
		if window <= 0 {
			continue
		}
		b.setActive(true)
		last := time.Now()
		var busySince time.Time // the first of an unbroken run of rounds that found something
		saturated := false
		for {
			if e.pollOnce() {
				last = time.Now()
				if busySince.IsZero() {
					busySince = last
				} else if saturated = last.Sub(busySince) >= busySaturated; saturated {
					break
				}
			} else {
				busySince = time.Time{}
				if time.Since(last) >= window {
					break
				}
				yield()
			}
			select {
			case <-done:
				b.setActive(false)
				return
			default:
			}
		}
		b.setActive(false)
		if saturated {
			// Saturated: the pipelines carry the load alone for a while.
			b.stood.Add(1)
			select {
			case <-done:
				return
			case <-time.After(busyCooldown):
			}
			select { // a kick from before the cooldown is stale
			case <-b.kick:
			default:
			}
		}
	}
}

// pollOnce polls each receive socket and each TAP queue once, and says
// whether it found anything.
func (e *Engine) pollOnce() bool {
	found := false
	for _, p := range e.rxp {
		if p.poll() {
			found = true
		}
	}
	for _, n := range e.nets.Load().order {
		if ps := n.txp.Load(); ps != nil {
			for _, p := range *ps {
				if p.poll() {
					found = true
				}
			}
		}
	}
	return found
}
