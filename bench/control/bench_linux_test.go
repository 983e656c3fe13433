package main

import (
	"os"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/etcdtest"
	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

// TestMain runs the hidden subcommand: the stand-in is this binary,
// re-executed in the lab.
func TestMain(m *testing.M) {
	harness.RunHidden(os.Args[1:], map[string]func([]string) error{cmdStandin: runStandin})
	os.Exit(m.Run())
}

// TestIntegrationBenchControl runs `make bench-control` small (20 VTEPs ×
// 10 MACs, 40 changes, a 2 s window) against vtepd and against the
// stand-in: every phase completes, every change shows, nothing but
// keepalives reaches etcd in steady state, and the lab and the temporary
// directory are gone afterwards. The targets themselves are not judged: a
// machine busy with the other tests may miss a latency target.
func TestIntegrationBenchControl(t *testing.T) {
	topo.RequirePrivileged(t)
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
	etcdtest.Start(t, etcdtest.Options{}) // skips or fails as the other tests do without etcd
	vtepd := harness.VtepdBin(t)
	for _, standin := range []bool{false, true} {
		name := "vtepd"
		if standin {
			name = "stand-in"
		}
		t.Run(name, func(t *testing.T) {
			o := defaultOptions()
			o.vtepd, o.standin, o.out = vtepd, standin, ""
			o.l.vteps, o.l.macs, o.l.ips = 20, 10, 2
			o.leaseTTL = 3 * time.Second
			o.changes, o.window, o.settle, o.syncWait = 40, 2*time.Second, 0, 30*time.Second
			if err := o.check(); err != nil {
				t.Fatal(err)
			}
			res, err := run(o, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if res.Target != name || res.Store.MACs != 200 || res.Store.Keys != 20*(1+10+2) {
				t.Errorf("%s, store %+v", res.Target, res.Store)
			}
			if res.Sync.CountedBy != `vtep_fdb_entries{type="control"}` || res.Sync.StartToInstalled <= 0 || res.Sync.StartToConnected == nil {
				t.Errorf("full sync %+v", res.Sync)
			}
			if c := res.Convergence; c == nil || c.Missed != 0 || c.AckToSeen.N != 40 || len(c.ByKind) != 2 {
				t.Errorf("convergence %+v", c)
			}
			if s := res.Steady; s.Other != 0 || s.FleetKA < 20 || s.VtepdKA < 0 || len(s.ByMethod) != 1 {
				t.Errorf("steady state %+v", s)
			}
			if res.RSS.Empty == 0 || res.RSS.Synced == 0 || res.RSS.Settled == 0 {
				t.Errorf("RSS %+v", res.RSS)
			}
			if len(res.Verdicts) != 4 {
				t.Errorf("verdicts %+v", res.Verdicts)
			}
			harness.NoNamespacesLeft(t, res.lab)
			if _, err := os.Stat(res.dir); !os.IsNotExist(err) {
				t.Errorf("temporary directory %s left behind: %v", res.dir, err)
			}
		})
	}
}
