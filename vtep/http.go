package vtep

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/metrics"
)

// httpHandler serves the read-only endpoints: /metrics, /healthz, /fdb.
func (e *Engine) httpHandler() http.Handler {
	mux := http.NewServeMux()
	standdowns := func() float64 { return float64(e.busy.stood.Load()) }
	gsoSockets := func() float64 { return float64(e.trains.Sockets()) }
	cs := append(metrics.BusyPoll(e.busy.active.Load, e.busy.seconds, standdowns),
		metrics.GSOSockets(gsoSockets), metrics.NewCollector(e.Snapshot))
	if b := e.ctl.b; b != nil {
		names := make([]string, control.NumReasons)
		for r := range control.NumReasons {
			names[r] = r.String()
		}
		errs := func() []uint64 {
			m := b.Status().Errors
			out := make([]uint64, len(names))
			for i, name := range names {
				out[i] = m[name]
			}
			return out
		}
		cs = append(cs, metrics.Control(func() bool { return b.Status().Connected }, names, errs)...)
		if e.cfg.Load().ControlBackend == "evpn" {
			cs = append(cs, metrics.BGP(func() (int, map[string]int, map[string]int) {
				st := b.Status()
				up := 0
				for _, s := range st.Sessions {
					if s.Up {
						up++
					}
				}
				return up, st.RoutesReceived, st.RoutesAdvertised
			}))
		}
	}
	if h, err := metrics.Handler(cs...); err == nil {
		mux.Handle("GET /metrics", h)
	} else {
		e.log.Error("metrics disabled", "err", err)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /fdb", e.serveFDB)
	if e.cfg.Load().Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serveFDB answers GET /fdb[?vni=N] with a JSON array of entries.
func (e *Engine) serveFDB(w http.ResponseWriter, r *http.Request) {
	entries := e.FDBEntries()
	if s := r.URL.Query().Get("vni"); s != "" {
		vni, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			http.Error(w, "vni: not a number", http.StatusBadRequest)
			return
		}
		kept := entries[:0]
		for _, en := range entries {
			if uint64(en.VNI) == vni {
				kept = append(kept, en)
			}
		}
		entries = kept
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(entries)
}
