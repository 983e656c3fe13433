package vtep

import (
	"context"
	"time"

	"github.com/vtepd/vtepd/metrics"
)

// Drop warnings: the data plane never logs, so a watcher compares the
// drop counters every dropCheck and, when they climbed, logs one warning
// with the increase per reason, at most once per dropWarnEvery.
const (
	dropCheck     = 15 * time.Second
	dropWarnEvery = time.Minute
)

func (e *Engine) dropWatch(ctx context.Context) {
	t := time.NewTicker(dropCheck)
	defer t.Stop()
	last := e.dropTotals()
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(lastWarn) < dropWarnEvery {
			continue
		}
		now := e.dropTotals()
		var args []any
		for r := metrics.Reason(0); r < metrics.NumReasons; r++ {
			if now[r] > last[r] {
				d := now[r] - last[r]
				args = append(args, r.String(), d)
			}
		}
		if len(args) > 0 {
			e.log.Warn("packets dropped since the last warning (see vtep_drops_total)", args...)
			lastWarn = time.Now()
		}
		last = now
	}
}

func (e *Engine) dropTotals() (sum [metrics.NumReasons]uint64) {
	for _, row := range e.Snapshot() {
		for r := range sum {
			sum[r] += row.Counters.Drops[r].Load()
		}
	}
	return sum
}
