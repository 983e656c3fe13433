package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
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
// cfg: networks added or removed, and in the others peers, learning,
// ageing, max_entries and static entries; and the FDB's [limits]. A network whose bridge, TAP,
// group or ttl changed is replaced, losing its learned entries; the others
// keep forwarding with theirs. What can only change with a restart (the
// underlay, queues, listeners) makes Reload refuse cfg as a whole. It
// returns a one-line summary of what changed.
func (e *Engine) Reload(cfg *config.Config) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil && e.run.stopping {
		return "", errors.New("shutting down")
	}
	old := e.cfg.Load()
	if err := restartOnly(old, cfg); err != nil {
		return "", err
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
		switch n := tbl.byVNI[nc.VNI]; {
		case n == nil:
			added = append(added, nc)
		case sameIdentity(n.cfg.Load(), &nc):
			kept[nc.VNI] = nc
		default:
			replaced = append(replaced, n)
			added = append(added, nc)
		}
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
	changed := 0
	next := &netTable{byVNI: map[uint32]*network{}}
	for _, nc := range cfg.Networks {
		n := opened[nc.VNI]
		if n == nil {
			n = tbl.byVNI[nc.VNI]
			nc, ok := kept[nc.VNI]
			if !ok {
				continue // failed to open
			}
			if e.update(n, nc) {
				changed++
			}
		}
		next.byVNI[n.vni] = n
		next.order = append(next.order, n)
	}
	e.nets.Store(next)
	if e.run != nil {
		for _, n := range opened {
			e.startNetwork(n)
		}
	}
	e.cfg.Store(cfg)
	if e.LogLevel != nil {
		e.LogLevel.Set(cfg.LogLevel)
	}
	summary := fmt.Sprintf("networks: %d added, %d removed, %d replaced, %d changed, %d unchanged",
		len(added)-len(replaced), len(removed), len(replaced), changed, len(kept)-changed)
	return summary, errors.Join(errs...)
}

// update applies a kept network's new settings; it reports whether any
// changed.
func (e *Engine) update(n *network, nc config.Network) bool {
	old := n.cfg.Load()
	changed := false
	if old.MaxEntries != nc.MaxEntries || old.Ageing != nc.Ageing {
		e.fdb.SetNetwork(n.vni, fdb.Network{MaxEntries: nc.MaxEntries, Ageing: nc.Ageing})
		changed = true
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
			changed = true
		}
		delete(was, s.MAC)
	}
	for mac := range was {
		e.fdb.Delete(n.vni, mac)
		changed = true
	}
	if changed || !reflect.DeepEqual(*old, nc) {
		n.cfg.Store(&nc)
		return true
	}
	return false
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameIdentity reports whether two configurations of a VNI can share one
// running network: the same bridge, TAP and group.
func sameIdentity(a, b *config.Network) bool {
	return a.Bridge == b.Bridge && a.TAP == b.TAP && a.Group == b.Group && a.TTL == b.TTL
}

// restartOnly names the settings that differ between old and cfg and can
// only change with a restart.
func restartOnly(old, cfg *config.Config) error {
	var keys []string
	check := func(key string, same bool) {
		if !same {
			keys = append(keys, key)
		}
	}
	check("underlay.local", old.Local == cfg.Local)
	check("underlay.port", old.Port == cfg.Port)
	check("underlay.src_port_range", old.SrcPortLow == cfg.SrcPortLow && old.SrcPortHigh == cfg.SrcPortHigh)
	check("underlay.interface", old.Interface == cfg.Interface)
	check("underlay.udp6_zero_checksum_rx", old.UDP6ZeroChecksumRx == cfg.UDP6ZeroChecksumRx)
	check("underlay.udp_gso", old.UDPGSO == cfg.UDPGSO)
	check("queues", old.Queues == cfg.Queues)
	check("offload", old.Offload == cfg.Offload)
	check("metrics", old.MetricsAddr == cfg.MetricsAddr && old.Pprof == cfg.Pprof)
	check("admin.socket", old.AdminSocket == cfg.AdminSocket)
	if len(keys) > 0 {
		return fmt.Errorf("%s cannot change without a restart; configuration not applied", strings.Join(keys, ", "))
	}
	return nil
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
