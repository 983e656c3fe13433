package vtep

import (
	"context"
	"fmt"
	"time"

	"github.com/vtepd/vtepd/tap"
)

// The TAPs and bridges are checked on every burst of link changes netlink
// reports, and every linkSafety besides, in case an update was lost; every
// linkCheck when netlink cannot be subscribed to. An idle vtepd wakes up
// for nothing more often than it must.
const (
	linkCheck  = 2 * time.Second
	linkSafety = 30 * time.Second
)

// watchLinks follows link changes and mends what was done under us: a
// deleted TAP is recreated (recover.go), a TAP taken off its bridge is put
// back, and a deleted bridge is reported once and waited for.
func (e *Engine) watchLinks(ctx context.Context) {
	tap.WatchLinks(ctx, linkSafety, linkCheck, e.checkLinks, e.log)
}

func (e *Engine) checkLinks() {
	for _, n := range e.nets.Load().order {
		if n.closed.Load() || n.recovering.Load() {
			continue
		}
		dev := n.dev.Load()
		td, ok := dev.Closer.(*tap.Device)
		if !ok {
			continue
		}
		nc := n.cfg.Load()
		health, err := td.Check(nc.Bridge)
		switch health {
		case tap.Deleted:
			e.tapLost(n, dev, fmt.Errorf("tap %q was deleted", td.Name()))
			continue
		case tap.BridgeGone:
			if n.bridgeGone.CompareAndSwap(false, true) {
				e.log.Error("bridge deleted: this network is cut off until it returns", "vni", n.vni, "bridge", nc.Bridge)
			}
			continue
		case tap.Detached:
			e.log.Error("cannot attach TAP to its bridge; retrying", "vni", n.vni, "tap", td.Name(), "bridge", nc.Bridge, "err", err)
			continue
		case tap.Reattached:
			e.log.Info("TAP attached to its bridge again", "vni", n.vni, "tap", td.Name(), "bridge", nc.Bridge)
		}
		if n.bridgeGone.CompareAndSwap(true, false) {
			e.log.Info("bridge is back", "vni", n.vni, "bridge", nc.Bridge)
		}
	}
}
