package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/control/etcd"
	"github.com/vtepd/vtepd/fdb"
)

// cmdStandin is the hidden subcommand that stands in for vtepd with
// -standin: the control plane without the data path. It runs the etcd
// backend with a sink that programs an fdb.Table as the engine does
// (control entries from MACAdded and MACRemoved), and answers the part of
// vtepd's interfaces the harness reads: the admin socket's "fdb show" of
// one MAC and "control", and vtep_fdb_entries{type="control"} and
// /healthz over HTTP. Its figures are the backend's and the table's alone,
// which tells what the control plane costs from what the engine adds.
const cmdStandin = "_standin"

// fdbSink is the engine's part of the contract: a Sync applies the
// difference from the last view, an Update its events, to the table.
type fdbSink struct {
	tbl *fdb.Table

	mu      sync.Mutex
	view    *control.State
	refused uint64
}

func (s *fdbSink) Sync(st *control.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := control.Diff(s.view, st)
	s.view = st
	s.apply(evs)
}

func (s *fdbSink) Update(evs []control.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view == nil {
		s.view = control.NewState()
	}
	s.view.Apply(evs)
	s.apply(evs)
}

func (s *fdbSink) apply(evs []control.Event) {
	for _, e := range evs {
		switch e.Kind {
		case control.MACAdded:
			if _, err := s.tbl.AddControl(e.VNI, e.MAC, e.VTEP); err != nil {
				s.refused++
			}
		case control.MACRemoved:
			s.tbl.DeleteControl(e.VNI, e.MAC, e.VTEP)
		}
	}
}

type standinOptions struct {
	local, endpoint, prefix, socket, listen string
	ttl                                     time.Duration
	vni                                     uint
	maxEntries                              int
}

func runStandin(args []string) error {
	var o standinOptions
	fs := flag.NewFlagSet(cmdStandin, flag.ContinueOnError)
	fs.StringVar(&o.local, "local", "", "underlay address")
	fs.StringVar(&o.endpoint, "endpoint", etcd.DefaultEndpoint, "etcd")
	fs.StringVar(&o.prefix, "prefix", etcd.DefaultPrefix, "key prefix")
	fs.StringVar(&o.socket, "socket", "", "admin socket")
	fs.StringVar(&o.listen, "listen", "", "HTTP /metrics and /healthz")
	fs.DurationVar(&o.ttl, "lease-ttl", etcd.DefaultLeaseTTL, "lease TTL")
	fs.UintVar(&o.vni, "vni", 200, "the VNI served")
	fs.IntVar(&o.maxEntries, "max-entries", control.DefaultMaxEntries, "cap on remote entries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	local, err := netip.ParseAddr(o.local)
	if err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	vni := uint32(o.vni)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	tbl := fdb.New()
	tbl.SetNetwork(vni, fdb.Network{})
	tbl.SetLimits(fdb.Limits{MaxControl: o.maxEntries})
	sink := &fdbSink{tbl: tbl}
	b, err := etcd.New(etcd.Config{
		Endpoints: []string{o.endpoint}, Prefix: o.prefix, LeaseTTL: o.ttl,
		Local: local, MaxEntries: o.maxEntries, Sink: sink, Log: log,
	})
	if err != nil {
		return err
	}
	b.Join(vni)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("unix", o.socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	go serveStandinAdmin(ln, tbl, b, o.ttl)
	hl, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		st, _ := tbl.Stats(vni)
		fmt.Fprintf(w, "# TYPE vtep_fdb_entries gauge\nvtep_fdb_entries{type=\"control\",vni=\"%d\"} %d\n", vni, st.Control)
		// The heap figures the harness reads from vtepd's Go collector.
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		for name, v := range map[string]uint64{"heap_inuse": m.HeapInuse, "heap_idle": m.HeapIdle, "heap_released": m.HeapReleased} {
			fmt.Fprintf(w, "# TYPE go_memstats_%s_bytes gauge\ngo_memstats_%s_bytes %d\n", name, name, v)
		}
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	srv := &http.Server{Handler: mux}
	go srv.Serve(hl)
	defer srv.Close()
	log.Info("stand-in up", "local", local, "vni", vni)
	if err := b.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// serveStandinAdmin answers the admin commands the harness sends.
func serveStandinAdmin(ln net.Listener, tbl *fdb.Table, b *etcd.Backend, ttl time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go admin.ServeConn(c, func(req admin.Request) admin.Response {
			return standinAnswer(req, tbl, b, ttl)
		})
	}
}

func standinAnswer(req admin.Request, tbl *fdb.Table, b *etcd.Backend, ttl time.Duration) admin.Response {
	switch req.Cmd {
	case admin.CmdFDBShow:
		mac, err := fdb.ParseMAC(req.MAC)
		if err != nil || req.VNI == nil {
			return admin.Response{Error: "the stand-in shows one MAC of one VNI"}
		}
		en, ok := tbl.Get(*req.VNI, mac, 0)
		if !ok {
			return admin.Response{FDB: []admin.FDBEntry{}}
		}
		return admin.Response{FDB: []admin.FDBEntry{{VNI: en.VNI, MAC: en.MAC.String(), Remote: en.Remote.String(), Type: en.Type.String()}}}
	case admin.CmdControl:
		st := b.Status()
		cs := &admin.ControlStatus{
			Backend: st.Backend, Endpoints: st.Endpoints, Local: st.Local, Connected: st.Connected,
			Since: st.Since, Revision: st.Revision, LeaseID: st.LeaseID, LeaseTTL: ttl.Seconds(),
			Pending: st.Pending, Errors: st.Errors, Entries: []admin.ControlEntries{},
		}
		for _, e := range st.Entries {
			cs.Entries = append(cs.Entries, admin.ControlEntries{VNI: e.VNI, RemoteVTEPs: e.RemoteVTEPs,
				RemoteMACs: e.RemoteMACs, RemoteIPs: e.RemoteIPs, LocalMACs: e.LocalMACs, LocalIPs: e.LocalIPs})
		}
		return admin.Response{Control: cs}
	}
	return admin.Response{Error: fmt.Sprintf("the stand-in does not answer %q", strings.TrimSpace(req.Cmd))}
}
