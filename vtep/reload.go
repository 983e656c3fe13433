package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
)

// ReloadFile re-reads the configuration file the engine was started with
// and applies it; see Reload.
// Whatever the outcome, it is logged.
func (e *Engine) ReloadFile() (string, error) {
	path := e.cfg.Load().Source()
	cfg, err := config.Load(path)
	if err != nil {
		e.log.Error("reload refused, running configuration kept", "config", path, "err", err)
		return "", err
	}
	summary, err := e.Reload(cfg)
	if err != nil {
		e.log.Error("reload failed", "config", path, "summary", summary, "err", err)
	} else {
		e.log.Info("reloaded", "config", path, "summary", summary)
	}
	return summary, err
}

// Reload applies the difference between the configuration in force and
// cfg, as config.Diff and config.DiffNetwork classify it: networks added
// or removed; a network whose identity (bridge, TAP, group, ttl) changed is
// replaced, losing its learned entries; the other networks keep forwarding
// with theirs and take every new live setting; and the live top-level
// settings (log_level, nice, busy_poll, state_dir, [limits]). A change to a
// setting that only a restart can apply (the underlay, queues, offload,
// the listeners) makes Reload refuse cfg as a whole. It returns a one-line
// summary of what changed.
func (e *Engine) Reload(cfg *config.Config) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil && e.run.stopping {
		return "", errors.New("shutting down")
	}
	old := e.cfg.Load()
	restart, live := config.Diff(old, cfg)
	if len(restart) > 0 {
		return "", fmt.Errorf("%s cannot change without a restart; configuration not applied", strings.Join(restart, ", "))
	}
	if fdbLimits(old) != fdbLimits(cfg) {
		e.fdb.SetLimits(fdbLimits(cfg))
	}
	tbl := e.nets.Load()
	var (
		kept     = map[uint32]config.Network{}
		added    []config.Network
		replaced []*network
		removed  []*network
		want     = map[uint32]bool{}
	)
	for _, nc := range cfg.Networks {
		want[nc.VNI] = true
		n := tbl.byVNI[nc.VNI]
		if n == nil {
			added = append(added, nc)
			continue
		}
		if replace, _ := config.DiffNetwork(n.cfg.Load(), &nc); replace {
			replaced = append(replaced, n)
			added = append(added, nc)
			continue
		}
		kept[nc.VNI] = nc
	}
	for _, n := range tbl.order {
		if !want[n.vni] {
			removed = append(removed, n)
		}
	}
	if e.checkHost != nil {
		for _, nc := range added {
			if err := e.checkHost(nc); err != nil {
				return "", fmt.Errorf("network %q (vni %d): %w", nc.Name, nc.VNI, err)
			}
		}
	}

	// Take the networks that go out of the table, then stop them: their
	// TAP names become free for the networks that replace them.
	for _, n := range removed {
		e.ctl.leave(n.vni)
	}
	gone := append(removed, replaced...)
	if len(gone) > 0 {
		e.nets.Store(tbl.without(gone))
		for _, n := range gone {
			e.closeNetwork(n)
		}
	}
	opened := map[uint32]*network{}
	var errs []error
	for _, nc := range added {
		n, err := e.openNetwork(nc)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q (vni %d): %w", nc.Name, nc.VNI, err))
			continue
		}
		opened[nc.VNI] = n
	}
	changed := live // what changed in place: top-level keys, then networks
	changedNets := 0
	next := &netTable{byVNI: map[uint32]*network{}}
	for _, nc := range cfg.Networks {
		n := opened[nc.VNI]
		if n == nil {
			n = tbl.byVNI[nc.VNI]
			nc, ok := kept[nc.VNI]
			if !ok {
				continue // failed to open
			}
			if keys := e.update(n, nc); len(keys) > 0 {
				changedNets++
				changed = append(changed, fmt.Sprintf("vni %d %s", n.vni, strings.Join(keys, " ")))
			}
		}
		next.byVNI[n.vni] = n
		next.order = append(next.order, n)
	}
	e.nets.Store(next)
	for _, old := range replaced {
		// The routes the closed network's FDB had; a network added
		// gets them when it joins, below.
		if n := opened[old.vni]; n != nil {
			e.ctl.restore(n)
		}
	}
	for _, n := range next.order {
		e.ctl.join(n) // added, or control turned on or off
	}
	if e.run != nil {
		for _, n := range opened {
			e.startNetwork(n)
		}
	}
	e.cfg.Store(cfg)
	if old.Nice != cfg.Nice {
		e.applyNice(cfg.Nice)
	}
	if e.LogLevel != nil {
		e.LogLevel.Set(cfg.LogLevel)
	}
	summary := fmt.Sprintf("networks: %d added, %d removed, %d replaced, %d changed, %d unchanged",
		len(added)-len(replaced), len(removed), len(replaced), changedNets, len(kept)-changedNets)
	if len(changed) > 0 {
		summary += "; changed: " + strings.Join(changed, ", ")
	}
	return summary, errors.Join(errs...)
}

// update gives a kept network its new configuration nc, which differs
// from the one in force in no setting of its identity, and returns the
// keys of the settings that changed. The pipelines read the network's
// configuration as they go, so storing nc applies most of them; the FDB's
// copies (max_entries, ageing, static entries) are set here.
func (e *Engine) update(n *network, nc config.Network) []string {
	old := n.cfg.Load()
	_, keys := config.DiffNetwork(old, &nc)
	if len(keys) == 0 {
		return nil
	}
	if old.MaxEntries != nc.MaxEntries || old.Ageing != nc.Ageing {
		e.fdb.SetNetwork(n.vni, fdb.Network{MaxEntries: nc.MaxEntries, Ageing: nc.Ageing})
		n.local.setMax(nc.MaxEntries)
	}
	was := map[fdb.MAC]netip.Addr{}
	for _, s := range old.Static {
		was[s.MAC] = s.Remote
	}
	for _, s := range nc.Static {
		if r, ok := was[s.MAC]; !ok || r != s.Remote {
			if err := e.fdb.AddStatic(n.vni, s.MAC, s.Remote); err != nil {
				e.log.Error("static entry", "vni", n.vni, "mac", s.MAC, "err", err)
			}
		}
		delete(was, s.MAC)
	}
	for mac := range was {
		e.fdb.Delete(n.vni, mac)
	}
	n.cfg.Store(&nc)
	e.ctl.setFloodList(n) // peers, or control
	if len(was) > 0 {
		e.ctl.restore(n) // routes the removed static entries hid
	}
	return keys
}

// without is t less the networks in gone.
func (t *netTable) without(gone []*network) *netTable {
	drop := map[*network]bool{}
	for _, n := range gone {
		drop[n] = true
	}
	next := &netTable{byVNI: map[uint32]*network{}}
	for _, n := range t.order {
		if !drop[n] {
			next.byVNI[n.vni] = n
			next.order = append(next.order, n)
		}
	}
	return next
}
