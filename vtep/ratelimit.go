package vtep

import "sync/atomic"

// rateLimiter is a token bucket in the form of GCRA (the generic cell rate
// algorithm): one atomic "theoretical arrival time" instead of a count and
// a refill clock, so that pipelines on several cores share it without a
// lock. The rate is passed on each call, so a reload can change it.
type rateLimiter struct {
	tat atomic.Int64 // engine clock (ns) at which the bucket is full again
}

// allow takes one token at time now from a bucket refilled with perSecond
// tokens a second and holding at most a second's worth (at least one).
// A zero or negative rate means no limit.
func (l *rateLimiter) allow(now int64, perSecond int) bool {
	if perSecond <= 0 {
		return true
	}
	interval := int64(1e9) / int64(perSecond)
	burst := max(int64(perSecond), 1) * interval // a second's worth
	for {
		old := l.tat.Load()
		tat := max(old, now)
		if tat-now+interval > burst {
			return false
		}
		if l.tat.CompareAndSwap(old, tat+interval) {
			return true
		}
	}
}
