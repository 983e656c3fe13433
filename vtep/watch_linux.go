package vtep

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vtepd/vtepd/tap"
)

// linkCheck is how often the TAPs and bridges are checked when netlink
// says nothing (or cannot be subscribed to).
const linkCheck = 2 * time.Second

// watchLinks follows link changes over netlink and mends what was done
// under us: a deleted TAP is recreated, a TAP taken off its bridge is put
// back, and a deleted bridge is reported once and waited for.
func (e *Engine) watchLinks(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { e.log.Debug("netlink link updates", "err", err) },
	})
	if err != nil {
		e.log.Warn("cannot follow link changes over netlink; checking periodically", "err", err)
		updates = nil
	}
	t := time.NewTicker(linkCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			for len(updates) > 0 { // one check for a burst of changes
				<-updates
			}
		case <-t.C:
		}
		e.checkLinks()
	}
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
		link, err := netlink.LinkByIndex(td.Index())
		if err != nil || link.Attrs().Name != td.Name() {
			e.tapLost(n, dev, fmt.Errorf("tap %q was deleted", td.Name()))
			continue
		}
		br, err := netlink.LinkByName(nc.Bridge)
		if err != nil || br.Type() != "bridge" {
			if n.bridgeGone.CompareAndSwap(false, true) {
				e.log.Error("bridge deleted: this network is cut off until it returns", "vni", n.vni, "bridge", nc.Bridge)
			}
			continue
		}
		if link.Attrs().MasterIndex != br.Attrs().Index {
			if err := netlink.LinkSetMaster(link, br); err != nil {
				e.log.Error("cannot attach TAP to its bridge; retrying", "vni", n.vni, "tap", td.Name(), "bridge", nc.Bridge, "err", err)
				continue
			}
			netlink.LinkSetUp(link)
			e.log.Info("TAP attached to its bridge again", "vni", n.vni, "tap", td.Name(), "bridge", nc.Bridge)
		}
		if n.bridgeGone.CompareAndSwap(true, false) {
			e.log.Info("bridge is back", "vni", n.vni, "bridge", nc.Bridge)
		}
	}
}
