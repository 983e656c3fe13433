package vtep

// The server side of the admin socket (package admin has the protocol): a
// unix socket, mode 0600, on which vtepctl sends one JSON request per
// connection and reads one JSON response. It is the only way to change
// vtepd's state at run time; the HTTP listener stays read-only.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/underlay"
)

// listenAdmin opens the admin socket. A socket left by a dead vtepd is
// replaced; one a live process answers on is an error when the file was
// configured, and only disables vtepctl for this instance when it is the
// default (several vtepds in network namespaces share one file system).
func listenAdmin(cfg *config.Config, log *slog.Logger) (net.Listener, error) {
	path := cfg.AdminSocket
	if path == "" {
		return nil, nil
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("admin.socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			if !cfg.AdminSocketSet {
				log.Warn("admin socket in use by another process: vtepctl disabled for this vtepd; set [admin] socket", "socket", path)
				return nil, nil
			}
			return nil, fmt.Errorf("admin.socket: %s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin.socket: removing stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		// Another vtepd started at the same moment and bound the default
		// socket between our look and our bind: as if it had been first.
		if errors.Is(err, syscall.EADDRINUSE) && !cfg.AdminSocketSet {
			log.Warn("admin socket in use by another process: vtepctl disabled for this vtepd; set [admin] socket", "socket", path)
			return nil, nil
		}
		return nil, fmt.Errorf("admin.socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin.socket: %w", err)
	}
	return ln, nil
}

// serveAdmin answers admin connections until ln is closed.
func (e *Engine) serveAdmin(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !underlay.IsClosed(err) && ctx.Err() == nil {
				e.log.Error("admin socket", "err", err)
			}
			return
		}
		go admin.ServeConn(c, e.Admin)
	}
}

// Admin carries out one admin command.
func (e *Engine) Admin(req admin.Request) (resp admin.Response) {
	fail := func(format string, args ...any) admin.Response {
		return admin.Response{Error: fmt.Sprintf(format, args...)}
	}
	switch req.Cmd {
	case admin.CmdFDBShow:
		if req.VNI != nil {
			if _, ok := e.nets.Load().byVNI[*req.VNI]; !ok {
				return fail("unknown VNI %d", *req.VNI)
			}
		}
		if req.MAC != "" {
			// One entry, without listing the table: what a script that
			// waits for an entry polls.
			mac, err := fdb.ParseMAC(req.MAC)
			if err != nil {
				return fail("%q is not a MAC address", req.MAC)
			}
			if req.VNI == nil {
				return fail("vni is required with a MAC")
			}
			en, ok := e.fdb.Get(*req.VNI, mac, e.Now())
			if !ok {
				return admin.Response{FDB: []admin.FDBEntry{}}
			}
			return admin.Response{FDB: []admin.FDBEntry{fdbEntry(en)}}
		}
		entries := e.FDBEntries()
		if req.VNI != nil {
			kept := entries[:0]
			for _, en := range entries {
				if en.VNI == *req.VNI {
					kept = append(kept, en)
				}
			}
			entries = kept
		}
		return admin.Response{FDB: entries}
	case admin.CmdFDBAdd, admin.CmdFDBDel:
		if req.VNI == nil {
			return fail("vni is required")
		}
		mac, err := fdb.ParseMAC(req.MAC)
		if err != nil {
			return fail("%q is not a MAC address", req.MAC)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.nets.Load().byVNI[*req.VNI]; !ok {
			return fail("unknown VNI %d", *req.VNI)
		}
		if req.Cmd == admin.CmdFDBDel {
			if !e.fdb.Delete(*req.VNI, mac) {
				return fail("no entry for %s in VNI %d", mac, *req.VNI)
			}
			e.log.Info("fdb entry deleted", "vni", *req.VNI, "mac", mac)
			return admin.Response{Message: fmt.Sprintf("deleted %s from VNI %d", mac, *req.VNI)}
		}
		if !mac.IsUnicast() || mac.IsZero() {
			return fail("%s is not a unicast MAC address", mac)
		}
		remote, err := netip.ParseAddr(req.Remote)
		local := e.cfg.Load().Local
		switch {
		case err != nil:
			return fail("dst %q is not an IP address", req.Remote)
		case remote.Unmap().Is4() != local.Is4():
			return fail("dst %s is not of the underlay's address family (local %s)", remote, local)
		case remote.Unmap() == local:
			return fail("dst %s is this VTEP's own address", remote)
		case !remote.IsGlobalUnicast() && !remote.IsPrivate():
			return fail("dst %s is not a unicast address", remote)
		}
		if err := e.fdb.AddStatic(*req.VNI, mac, remote.Unmap()); err != nil {
			return fail("%v", err)
		}
		e.log.Info("static fdb entry added", "vni", *req.VNI, "mac", mac, "remote", remote)
		return admin.Response{Message: fmt.Sprintf("added %s dst %s to VNI %d", mac, remote, *req.VNI)}
	case admin.CmdStats:
		return admin.Response{Stats: e.Stats()}
	case admin.CmdControl:
		st := e.ControlStatus()
		return admin.Response{Control: &st}
	case admin.CmdNeigh:
		if req.VNI != nil {
			if _, ok := e.nets.Load().byVNI[*req.VNI]; !ok {
				return fail("unknown VNI %d", *req.VNI)
			}
		}
		return admin.Response{Neigh: e.NeighEntries(req.VNI)}
	case admin.CmdPeers:
		return admin.Response{Peers: e.peers.snapshot(e.Now())}
	case admin.CmdReload:
		summary, err := e.ReloadFile()
		if err != nil {
			return admin.Response{Error: err.Error(), Message: summary}
		}
		return admin.Response{Message: summary}
	}
	return fail("unknown command %q", req.Cmd)
}

// Stats returns every network's counters and the drops no network owns.
func (e *Engine) Stats() []admin.VNIStats {
	var out []admin.VNIStats
	tbl := e.nets.Load()
	for _, row := range e.Snapshot() {
		c := row.Counters
		s := admin.VNIStats{
			VNI:       row.Label,
			RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(),
			TxPackets: c.TxPackets.Load(), TxBytes: c.TxBytes.Load(),
			FloodPackets: c.FloodPackets.Load(),
			Drops:        map[string]uint64{},
			FDBLearned:   row.FDB.Learned, FDBStatic: row.FDB.Static,
			FDBMoves: row.FDB.Moves, FDBRefused: row.FDB.Refused,
		}
		for r := metrics.Reason(0); r < metrics.NumReasons; r++ {
			if n := c.Drops[r].Load(); n > 0 {
				s.Drops[r.String()] = n
			}
		}
		for _, n := range tbl.order {
			if n.label == row.Label {
				s.Name = n.cfg.Load().Name
			}
		}
		out = append(out, s)
	}
	return out
}
