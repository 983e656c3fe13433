package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/internal/harness"
)

// options are the harness's flags.
type options struct {
	vtepd    string
	etcd     string
	standin  bool
	out      string
	l        layout
	leaseTTL time.Duration
	clients  int
	parallel int

	changes    int
	rate       float64
	changeKind string
	poll       time.Duration
	convWait   time.Duration

	window   time.Duration
	settle   time.Duration
	syncWait time.Duration
}

func defaultOptions() options {
	return options{
		vtepd:    "bin/vtepd",
		etcd:     "/usr/bin/etcd",
		out:      "bench/results/control",
		l:        layout{prefix: "/vtepd", vni: 200, vteps: 1000, macs: 100, port: control.DefaultPort},
		leaseTTL: 10 * time.Second,
		clients:  4,
		parallel: 16,

		changes:    1000,
		rate:       100,
		changeKind: changeMixed,
		poll:       time.Millisecond,
		convWait:   5 * time.Second,

		window:   20 * time.Second,
		settle:   5 * time.Second,
		syncWait: 60 * time.Second,
	}
}

// check refuses options that cannot make a run.
func (o options) check() error {
	if err := o.l.check(); err != nil {
		return err
	}
	switch {
	case o.leaseTTL < 3*time.Second:
		return fmt.Errorf("-lease-ttl %v: want at least 3s", o.leaseTTL)
	case o.clients < 1 || o.clients > 64:
		return fmt.Errorf("-clients %d: want 1..64", o.clients)
	case o.parallel < 1 || o.parallel > 1024:
		return fmt.Errorf("-parallel %d: want 1..1024", o.parallel)
	case o.changes < 0:
		return fmt.Errorf("-changes %d: want >= 0", o.changes)
	case o.changes > 0 && !(o.rate > 0 && o.rate <= 10000):
		return fmt.Errorf("-rate %g: want (0, 10000] changes per second", o.rate)
	case o.changeKind != changeNew && o.changeKind != changeMove && o.changeKind != changeMixed:
		return fmt.Errorf("-change %q: want new, move or mixed", o.changeKind)
	case o.poll <= 0 || o.poll > time.Second:
		return fmt.Errorf("-poll %v: want (0, 1s]", o.poll)
	case o.window < time.Second:
		return fmt.Errorf("-window %v: want at least 1s", o.window)
	case o.settle < 0 || o.syncWait < time.Second || o.convWait < 10*time.Millisecond:
		return fmt.Errorf("-settle, -sync-wait, -converge-wait out of range")
	}
	return nil
}

func main() {
	harness.RunHidden(os.Args[1:], map[string]func([]string) error{cmdStandin: runStandin})

	o := defaultOptions()
	var vni uint
	flag.StringVar(&o.vtepd, "vtepd", o.vtepd, "vtepd binary (make build)")
	flag.StringVar(&o.etcd, "etcd", o.etcd, "etcd binary (Debian's etcd-server)")
	flag.BoolVar(&o.standin, "standin", false, "measure the control plane alone: the etcd backend and an FDB in a process of this harness instead of vtepd")
	flag.StringVar(&o.out, "out", o.out, `directory for latest.json, latest.md and timestamped copies; "" writes none`)
	flag.IntVar(&o.l.vteps, "vteps", o.l.vteps, "simulated VTEPs, each with a lease of its own")
	flag.IntVar(&o.l.macs, "macs", o.l.macs, "MACs each simulated VTEP publishes")
	flag.IntVar(&o.l.ips, "ips", o.l.ips, "IP bindings each simulated VTEP publishes (for its first MACs)")
	flag.UintVar(&vni, "vni", uint(o.l.vni), "the VNI of the whole fleet and of vtepd's one network")
	flag.DurationVar(&o.leaseTTL, "lease-ttl", o.leaseTTL, "lease TTL of vtepd (lease_ttl) and of each simulated VTEP")
	flag.IntVar(&o.clients, "clients", o.clients, "etcd clients the simulated VTEPs share")
	flag.IntVar(&o.parallel, "parallel", o.parallel, "requests in flight while the fleet registers and publishes")
	flag.IntVar(&o.changes, "changes", o.changes, "single changes timed in the convergence phase (0 skips it)")
	flag.Float64Var(&o.rate, "rate", o.rate, "changes per second in the convergence phase")
	flag.StringVar(&o.changeKind, "change", o.changeKind, "what a change is: new (a MAC appears), move (a MAC moves to another VTEP), mixed (alternately)")
	flag.DurationVar(&o.poll, "poll", o.poll, "interval between two admin-socket polls for one changed entry")
	flag.DurationVar(&o.convWait, "converge-wait", o.convWait, "how long a change may take to show before it counts as missed")
	flag.Var(harness.SecondsFlag(&o.window, time.Hour, "20s"), "window", "steady-state window over which etcd's requests are counted")
	flag.Var(harness.SecondsFlag(&o.settle, time.Hour, "5s"), "settle", "wait after a sync before vtepd's RSS is read")
	flag.Var(harness.SecondsFlag(&o.syncWait, time.Hour, "60s"), "sync-wait", "how long a full sync may take before the run fails")
	harness.ParseFlags("bench/control",
		"vtepd's control plane on etcd against a simulated fleet: full sync, convergence latency, RSS, etcd requests in steady state.",
		func() error {
			if vni > 1<<24-1 {
				return fmt.Errorf("-vni %d out of range", vni)
			}
			o.l.vni = uint32(vni)
			return o.check()
		})
	interrupted := harness.WatchInterrupt()
	res, err := run(o, progressLine(time.Now()))
	harness.ExitIfFailed("bench/control", "FAILED", err, interrupted)
	if !res.Pass {
		os.Exit(1)
	}
}

// progressLine prints a line per phase on stderr, with the time since
// start, as make bench does.
func progressLine(start time.Time) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%4ds] %s\n", int(time.Since(start).Seconds()), fmt.Sprintf(format, args...))
	}
}
