package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
)

// bridgeLink returns the Linux bridge called name, or an error that says
// what is wrong with it.
func bridgeLink(name string) (netlink.Link, error) {
	br, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %q not found", name)
		}
		return nil, fmt.Errorf("bridge %q: %w", name, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("%q is a %s, not a bridge", name, br.Type())
	}
	return br, nil
}

// CheckBridge reports whether name is an existing Linux bridge, as Create
// needs it to be.
func CheckBridge(name string) error {
	_, err := bridgeLink(name)
	return err
}

// Check looks at what may have been done to the TAP under us: whether it
// still exists under its name, whether the bridge does, and whether the
// TAP is still its port. A TAP taken off the bridge is attached to it
// again and brought up (Reattached); err says why that failed (Detached).
func (d *Device) Check(bridge string) (Health, error) {
	link, err := netlink.LinkByIndex(d.index)
	if err != nil || link.Attrs().Name != d.name {
		return Deleted, nil
	}
	br, err := bridgeLink(bridge)
	if err != nil {
		return BridgeGone, nil
	}
	if link.Attrs().MasterIndex == br.Attrs().Index {
		return Healthy, nil
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return Detached, err
	}
	netlink.LinkSetUp(link)
	return Reattached, nil
}

// WatchLinks calls check after every burst of link changes netlink reports,
// and every quiet whatever it reports (a safety net, should an update be
// lost), until ctx is done. If netlink cannot be subscribed to, it says so
// on log and checks every fallback instead.
func WatchLinks(ctx context.Context, quiet, fallback time.Duration, check func(), log *slog.Logger) {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { log.Debug("netlink link updates", "err", err) },
	})
	if err != nil {
		log.Warn("cannot follow link changes over netlink; checking periodically", "err", err, "every", fallback)
		updates = nil
		quiet = fallback
	}
	t := time.NewTicker(quiet)
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
		check()
	}
}
