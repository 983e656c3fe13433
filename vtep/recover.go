package vtep

import "time"

// Backoff between attempts to recreate a lost TAP.
const (
	recoverFirst = 100 * time.Millisecond
	recoverMax   = 5 * time.Second
	// recoverLogEvery spaces out the log lines of a recovery that keeps
	// failing (the bridge is gone, say).
	recoverLogEvery = 30 * time.Second
)

// tapLost starts recreating n's TAP lost, which was deleted under us,
// unless a recovery is already under way or has already replaced it (the
// other queues of a lost TAP fail too, and netlink tells of it as well).
// The recovery belongs to n.tx, so that closing the network or the engine
// waits for it.
func (e *Engine) tapLost(n *network, lost *Device, why error) {
	if n.closed.Load() || n.dev.Load() != lost || !n.recovering.CompareAndSwap(false, true) {
		return
	}
	if n.dev.Load() != lost { // replaced between the two checks
		n.recovering.Store(false)
		return
	}
	n.tx.Go(func() { e.recoverTAP(n, lost, why) })
}

func (e *Engine) recoverTAP(n *network, old *Device, why error) {
	nc := n.cfg.Load()
	e.log.Warn("TAP lost; recreating it", "vni", n.vni, "tap", nc.TAP, "err", why)
	old.Closer.Close() // ends this TAP's other pipelines
	wait := recoverFirst
	var lastLog time.Time
	for {
		dev, err := e.openTAP(*n.cfg.Load())
		if err == nil {
			e.mu.Lock()
			if n.closed.Load() || e.run.stopping {
				e.mu.Unlock()
				dev.Closer.Close()
				return
			}
			dev.Multicast = old.Multicast
			n.dev.Store(&dev)
			n.counters.TAPRecreated.Add(1)
			n.recovering.Store(false)
			e.startNetwork(n)
			e.mu.Unlock()
			e.log.Info("TAP recreated and attached to its bridge", "vni", n.vni, "tap", nc.TAP, "bridge", nc.Bridge)
			return
		}
		if time.Since(lastLog) >= recoverLogEvery {
			e.log.Error("cannot recreate TAP; retrying", "vni", n.vni, "tap", nc.TAP, "err", err)
			lastLog = time.Now()
		}
		select {
		case <-e.run.done:
			return
		case <-time.After(wait):
		}
		if n.closed.Load() {
			return
		}
		wait = min(2*wait, recoverMax)
	}
}
