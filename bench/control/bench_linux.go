package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/promtext"
	"github.com/vtepd/vtepd/internal/topo"
)

// The lab: one host namespace holding etcd, the vtepd under test and its
// bridge. Its underlay address sits on eth0; the simulated VTEPs'
// addresses are routed through a gateway that is never there, so that
// what vtepd floods to them (its bridge's own broadcasts) vanishes
// without an ARP request or a send error.
const (
	labPrefix    = "vc"
	hostName     = "a"
	bridge       = "br0"
	metricsAddr  = "127.0.0.1:9476"
	etcdClient   = "127.0.0.1:2379"
	etcdPeer     = "127.0.0.1:2380"
	sinkGateway  = "198.18.0.254"
	sinkMAC      = "02:00:00:00:00:fe"
	statePoll    = 10 * time.Millisecond
	stopTimeout  = 10 * time.Second
	healthyAfter = 20 * time.Second
	// spotChecks is how many fleet MACs are looked up one by one after a
	// full sync, for their type and remote.
	spotChecks = 16
	// After a GC, RSS is read once it has not fallen for rssSettleQuiet,
	// rssSettleMin at the earliest and rssSettleMax at the latest; a fall
	// of less than rssSettleKB counts as none.
	rssSettleMin   = 3 * time.Second
	rssSettleQuiet = 2 * time.Second
	rssSettleMax   = 15 * time.Second
	rssSettleKB    = 256
	// busyWarn is the background load, in percent of the machine, above
	// which the report warns that the figures are noisy.
	busyWarn = 10
)

// runner is one run: the lab, etcd, the fleet and the results so far.
type runner struct {
	o        options
	progress func(format string, args ...any)
	self     string
	vtepd    string
	dir      string

	lab  *topo.Lab
	host *topo.Host
	// etcd is read by the goroutine that cleans up on a signal.
	etcd atomic.Pointer[topo.Proc]
	fl   *fleet
	res  Results
}

// run makes the whole measurement and reports it.
func run(o options, progress func(string, ...any)) (res *Results, err error) {
	r := &runner{o: o, progress: progress}
	r.res = Results{Target: "vtepd", Settings: Settings{
		VTEPs: o.l.vteps, MACs: o.l.macs, IPs: o.l.ips, VNI: o.l.vni, LeaseTTL: o.leaseTTL.String(),
		Clients: o.clients, Changes: o.changes, Rate: o.rate, ChangeKind: o.changeKind,
		Poll: o.poll.String(), Window: o.window.String(), Settle: o.settle.String(),
	}}
	if o.standin {
		r.res.Target = "stand-in"
	}
	if err := r.preflight(); err != nil {
		return nil, err
	}
	if r.dir, err = os.MkdirTemp("", "vtepd-benchctl-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dir)
	// internal/topo removes the lab on SIGINT and SIGTERM and re-raises
	// the signal, which ends the process before deferred calls run:
	// etcd's data directory goes here, with etcd stopped first.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer func() { signal.Stop(sigs); close(sigs) }()
	go func() {
		if _, ok := <-sigs; ok {
			if p := r.etcd.Load(); p != nil {
				_ = p.Signal(syscall.SIGKILL)
				_, _ = p.Wait(time.Second)
			}
			os.RemoveAll(r.dir)
		}
	}()

	if r.lab, err = topo.New(labPrefix); err != nil {
		return nil, err
	}
	r.res.lab, r.res.dir = r.lab.Name(), r.dir
	defer harness.CloseLab(r.lab, &err)
	if r.res.BusyBefore, err = harness.BackgroundBusy(); err != nil {
		return nil, err
	}
	if err := r.setup(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if r.fl, err = newFleet(o.l, []string{"http://" + etcdClient}, r.dial, o.clients, o.leaseTTL); err != nil {
		return nil, err
	}
	defer func() { cancel(); r.fl.close() }()
	if err := r.phases(ctx); err != nil {
		return nil, err
	}
	if err := r.fl.err(); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	cancel()
	r.fl.close()
	if r.res.BusyAfter, err = harness.BackgroundBusy(); err != nil {
		return nil, err
	}
	if busy := max(r.res.BusyBefore, r.res.BusyAfter); busy > busyWarn {
		r.note("the machine was %.0f%% busy before the run and %.0f%% after it with nothing of ours running: "+
			"other load shared the CPUs and etcd's disk, so the latencies are noisy", r.res.BusyBefore, r.res.BusyAfter)
	}
	r.res.Time = time.Now().UTC().Truncate(time.Second)
	r.res.System = harness.ThisSystem()
	r.res.judge()
	if o.out != "" {
		files, err := r.res.write(o.out)
		if err != nil {
			return nil, err
		}
		progress("wrote %s", strings.Join(files, ", "))
	}
	fmt.Println()
	if err := writeTable(os.Stdout, &r.res); err != nil {
		return nil, err
	}
	return &r.res, nil
}

func (r *runner) preflight() (err error) {
	bin := r.o.vtepd
	if r.o.standin {
		// No vtepd is run: any executable passes Preflight's check.
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	if r.vtepd, r.self, err = harness.Preflight("bench-control", []string{"ip", "sysctl"}, bin); err != nil {
		return err
	}
	if _, err := os.Stat(r.o.etcd); err != nil {
		return fmt.Errorf("etcd binary %s: %w (make deps installs etcd-server)", r.o.etcd, err)
	}
	out, err := exec.Command(r.o.etcd, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", r.o.etcd, err)
	}
	if line, _, _ := strings.Cut(string(out), "\n"); strings.HasPrefix(line, "etcd Version: ") {
		r.res.Settings.Etcd = strings.TrimPrefix(line, "etcd Version: ")
	}
	return nil
}

// setup builds the host and starts etcd in it.
func (r *runner) setup() error {
	h, err := r.lab.AddHost(hostName, localPrefix, 0)
	if err != nil {
		return err
	}
	r.host = h
	for _, c := range [][]string{
		// No IPv6 chatter from the bridge and the TAP to flood.
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		// The simulated VTEPs behind a gateway that a permanent
		// neighbour entry makes resolved and that nothing answers for:
		// the underlay's bridge floods to no other port and drops.
		{"ip", "neigh", "add", sinkGateway, "lladdr", sinkMAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "route", "add", "198.18.0.0/15", "via", sinkGateway, "dev", "eth0"},
	} {
		if _, err := h.Exec(c[0], c[1:]...); err != nil {
			return err
		}
	}
	data := filepath.Join(r.dir, "etcd")
	// env execs etcd in place, so the PID the lab stops is etcd's.
	// ETCD_UNSUPPORTED_ARCH lets Debian's etcd 3.4 start on arm64.
	p, err := h.Start("env", "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH, r.o.etcd,
		"--name", "bench", "--data-dir", data,
		"--listen-client-urls", "http://"+etcdClient, "--advertise-client-urls", "http://"+etcdClient,
		"--listen-peer-urls", "http://"+etcdPeer, "--initial-advertise-peer-urls", "http://"+etcdPeer,
		"--initial-cluster", "bench=http://"+etcdPeer,
		"--logger", "zap", "--log-level", "warn")
	if err != nil {
		return err
	}
	r.etcd.Store(p)
	deadline := time.Now().Add(healthyAfter)
	for {
		body, err := h.HTTPGet("http://" + etcdClient + "/health")
		if err == nil && bytes.Contains(body, []byte(`"true"`)) {
			break
		}
		if p.Exited() {
			return fmt.Errorf("etcd exited at start:\n%s", harness.Tail([]byte(p.Output()), 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy within %v: %v", healthyAfter, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.progress("lab %s up: etcd %s at %s in namespace %s", r.lab.Name(), r.res.Settings.Etcd, etcdClient, h.NS)
	return nil
}

// dial reaches etcd inside the lab's namespace from this process.
func (r *runner) dial(ctx context.Context, addr string) (net.Conn, error) {
	return r.host.DialContext(ctx, "tcp", addr)
}

// phases runs the measurements in order.
func (r *runner) phases(ctx context.Context) error {
	o := r.o
	macs, vteps, ips := o.l.entries()

	// 1. A vtepd on the empty store: its RSS with nothing to hold.
	a, err := r.startDaemon("empty")
	if err != nil {
		return err
	}
	if _, err := a.waitConnected(healthyAfter); err != nil {
		return err
	}
	time.Sleep(o.settle)
	if r.res.RSS.Empty, err = a.settledRSS(); err != nil {
		return err
	}
	r.res.RSS.EmptyHeapInuseMiB, _ = a.heap()
	r.progress("%s on the empty store: connected, RSS %.1f MiB", a.name, mib(r.res.RSS.Empty))

	// 2. The fleet registers and publishes while that vtepd watches.
	t0 := time.Now()
	if err := r.fl.grant(ctx, o.parallel); err != nil {
		return err
	}
	r.res.Store.GrantSeconds = secs(time.Since(t0))
	if err := r.fl.keepAlive(ctx); err != nil {
		return err
	}
	t1 := time.Now()
	txns, puts, err := r.fl.publish(ctx, o.parallel)
	if err != nil {
		return err
	}
	r.res.Store = StoreFigures{Keys: puts, MACs: macs, Txns: txns, GrantSeconds: r.res.Store.GrantSeconds, WriteSeconds: secs(time.Since(t1))}
	r.progress("fleet: %s leases granted in %.2f s; %s keys (%s MACs, %d VTEPs, %s IPs) in %d txns in %.2f s",
		thousands(o.l.vteps), r.res.Store.GrantSeconds, thousands(puts), thousands(macs), vteps, thousands(ips), txns, r.res.Store.WriteSeconds)
	if _, _, err := a.waitInstalled(macs, t1.Add(o.syncWait)); err != nil {
		return fmt.Errorf("%s watching the fleet publish: %w", a.name, err)
	}
	r.res.Sync.WatchInstalled = secs(time.Since(t1))
	time.Sleep(o.settle)
	if r.res.RSS.Watched, err = a.rssKB(); err != nil {
		return err
	}
	r.progress("%s watching: all %s MACs installed %.2f s after the first put; RSS %.1f MiB",
		a.name, thousands(macs), r.res.Sync.WatchInstalled, mib(r.res.RSS.Watched))
	if err := a.stop(); err != nil {
		return err
	}

	// 3. A vtepd started on the full store: the full sync.
	b, err := r.startDaemon("full")
	if err != nil {
		return err
	}
	n, byMetric, err := b.waitInstalled(macs, b.started.Add(o.syncWait))
	if err != nil {
		return fmt.Errorf("full sync: %w", err)
	}
	installed := n.Sub(b.started)
	r.res.Sync.StartToInstalled = secs(installed)
	r.res.Sync.CountedBy = "vtep_fdb_entries{type=\"control\"}"
	if !byMetric {
		r.res.Sync.CountedBy = "control status remote_macs"
		r.note("vtepd has no vtep_fdb_entries{type=\"control\"}: the full sync was counted by the control status's remote MACs, the backend's view, not the FDB")
	}
	if st, err := b.control(); err == nil && st.Connected && !st.Since.Before(b.started) {
		c, ci := secs(st.Since.Sub(b.started)), secs(n.Sub(st.Since))
		r.res.Sync.StartToConnected, r.res.Sync.ConnectedToInstalled = &c, &ci
	}
	if err := r.spotCheck(b); err != nil {
		return err
	}
	r.progress("%s full sync: %s MACs installed %.2f s after start", b.name, thousands(macs), r.res.Sync.StartToInstalled)
	time.Sleep(o.settle)
	if r.res.RSS.Synced, err = b.rssKB(); err != nil {
		return err
	}
	if r.res.RSS.Settled, err = b.settledRSS(); err != nil {
		return err
	}
	r.res.RSS.HeapInuseMiB, r.res.RSS.HeapUnreleasedMiB = b.heap()
	r.res.RSS.GrowthMiB = round3(mib(r.res.RSS.Settled) - mib(r.res.RSS.Empty))
	r.res.RSS.TransientGrowthMiB = round3(mib(r.res.RSS.Synced) - mib(r.res.RSS.Empty))
	r.progress("%s RSS with %s entries: %.1f MiB %v after the sync (%+.1f MiB), %.1f MiB after a GC (%+.1f MiB)",
		b.name, thousands(macs+vteps+ips), mib(r.res.RSS.Synced), o.settle, r.res.RSS.TransientGrowthMiB,
		mib(r.res.RSS.Settled), r.res.RSS.GrowthMiB)

	// 4. Steady state: etcd's requests over the window.
	if err := r.steady(b); err != nil {
		return err
	}
	if r.res.RSS.Later, err = b.rssKB(); err != nil {
		return err
	}

	// 5. Convergence of single changes.
	if o.changes > 0 {
		c, err := r.converge(ctx, b)
		if err != nil {
			return err
		}
		r.res.Convergence = c
		r.progress("convergence: %d changes at %.0f/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d missed",
			c.Changes, c.RateMade, c.AckToSeen.P50, c.AckToSeen.P99, c.AckToSeen.Max, c.Missed)
	}
	return b.stop()
}

func (r *runner) note(format string, args ...any) {
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// spotCheck looks up fleet MACs one by one: each must be a control entry
// behind its VTEP.
func (r *runner) spotCheck(d *daemon) error {
	l := r.o.l
	for k := 0; k < spotChecks; k++ {
		i := (k * 7919) % l.vteps
		j := (k * 104729) % l.macs
		mac := fleetMAC(i, j)
		en, ok, err := d.entry(l.vni, mac.String())
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("full sync: %s of vtep %v missing though the count is complete", mac, vtepAddr(i))
		case en.Type != "control" || en.Remote != vtepAddr(i).String():
			return fmt.Errorf("full sync: %s is a %s entry behind %s, want control behind %v", mac, en.Type, en.Remote, vtepAddr(i))
		}
	}
	return nil
}

// steady counts etcd's requests over the window with nothing changing.
func (r *runner) steady(d *daemon) error {
	var c0, c1 grpcCounts
	read := func(c *grpcCounts) func() error {
		return func() error {
			body, err := r.host.HTTPGet("http://" + etcdClient + "/metrics")
			if err != nil {
				return err
			}
			*c, err = parseGRPCCounts(string(body))
			return err
		}
	}
	n0, err := r.fl.quiesce(read(&c0))
	if err != nil {
		return err
	}
	if len(c0) == 0 {
		return fmt.Errorf("etcd's /metrics has no %s", grpcReceived)
	}
	t0 := time.Now()
	time.Sleep(r.o.window)
	n1, err := r.fl.quiesce(read(&c1))
	if err != nil {
		return err
	}
	window := time.Since(t0)
	if err := d.alive(); err != nil {
		return err
	}
	r.res.Steady = splitSteady(c1.sub(c0), float64(n1-n0), window)
	s := r.res.Steady
	r.progress("steady state over %.0f s: etcd %.1f requests/s (%s); fleet keepalives %.1f/s, %s keepalives %.2f/s, other requests %.0f",
		s.Seconds, s.TotalPerSec, methodsText(s.ByMethod, s.Seconds), s.FleetKAPerSec, d.name, s.VtepdKAPerSec, s.Other)
	return nil
}

// converge times single changes at the rate asked: each put, then polls
// for its entry every -poll until it shows.
func (r *runner) converge(ctx context.Context, d *daemon) (*ConvergenceResult, error) {
	o := r.o
	type timing struct {
		kind            string
		sent, ack, seen time.Time
		polls           int
		missed          bool
		err             error
	}
	ts := make([]timing, o.changes)
	interval := time.Duration(float64(time.Second) / o.rate)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	start := time.Now()
	var last time.Time
	for i := 0; i < o.changes; i++ {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		sem <- struct{}{}
		last = time.Now()
		c := o.l.changeAt(o.changeKind, i)
		wg.Add(1)
		go func(t *timing) {
			defer func() { <-sem; wg.Done() }()
			t.kind = c.kind
			t.sent = time.Now()
			if err := r.fl.put(ctx, c); err != nil {
				t.err = fmt.Errorf("change %d: put: %w", c.seq, err)
				return
			}
			t.ack = time.Now()
			mac, want := c.mac.String(), c.remote.String()
			next := t.ack
			for {
				en, ok, err := d.entry(o.l.vni, mac)
				t.polls++
				now := time.Now()
				if err != nil {
					t.err = fmt.Errorf("change %d: %w", c.seq, err)
					return
				}
				if ok && en.Type == "control" && en.Remote == want {
					t.seen = now
					return
				}
				if now.Sub(t.ack) > o.convWait {
					t.missed = true
					return
				}
				next = next.Add(o.poll)
				if w := time.Until(next); w > 0 {
					time.Sleep(w)
				} else {
					next = now
				}
			}
		}(&ts[i])
	}
	wg.Wait()
	res := &ConvergenceResult{Changes: o.changes, RateAsked: o.rate, ByKind: map[string]Dist{}}
	if span := last.Sub(start); span > 0 && o.changes > 1 {
		res.RateMade = round3(float64(o.changes-1) / span.Seconds())
	}
	var ackSeen, sentSeen, put []time.Duration
	byKind := map[string][]time.Duration{}
	for _, t := range ts {
		if t.err != nil {
			return nil, t.err
		}
		res.Polls += t.polls
		put = append(put, t.ack.Sub(t.sent))
		if t.missed {
			res.Missed++
			continue
		}
		ackSeen = append(ackSeen, t.seen.Sub(t.ack))
		sentSeen = append(sentSeen, t.seen.Sub(t.sent))
		byKind[t.kind] = append(byKind[t.kind], t.seen.Sub(t.ack))
	}
	res.AckToSeen, res.SentToSeen, res.Put = summarizeDurations(ackSeen), summarizeDurations(sentSeen), summarizeDurations(put)
	if len(byKind) > 1 {
		for k, ds := range byKind {
			res.ByKind[k] = summarizeDurations(ds)
		}
	}
	if res.Missed > 0 {
		r.note("%d of %d changes did not show within %v", res.Missed, o.changes, o.convWait)
	}
	if err := d.alive(); err != nil {
		return nil, err
	}
	return res, nil
}

// daemon is the vtepd under test (or the stand-in), as the harness sees
// it: a process, its admin socket and its /metrics.
type daemon struct {
	name    string
	p       *topo.Proc
	h       *topo.Host
	socket  string
	started time.Time
}

// vtepdConfig is the configuration of the vtepd under test.
func (r *runner) vtepdConfig(socket string) string {
	var b strings.Builder
	b.WriteString("state_dir = \"\"\nlog_level = \"info\"\n")
	fmt.Fprintf(&b, "[underlay]\nlocal = %q\n", localPrefix.Addr())
	// pprof: settledRSS asks for a garbage collection through it.
	fmt.Fprintf(&b, "[metrics]\nlisten = %q\npprof = true\n", metricsAddr)
	fmt.Fprintf(&b, "[admin]\nsocket = %q\n", socket)
	fmt.Fprintf(&b, "[control]\nbackend = \"etcd\"\nendpoints = [%q]\nprefix = %q\nlease_ttl = %q\nmax_entries = 262144\n",
		"http://"+etcdClient, r.o.l.prefix, r.o.leaseTTL.String())
	fmt.Fprintf(&b, "[[network]]\nvni = %d\nbridge = %q\n", r.o.l.vni, bridge)
	return b.String()
}

// startDaemon starts the vtepd under test (the stand-in with -standin);
// tag names its files.
func (r *runner) startDaemon(tag string) (*daemon, error) {
	d := &daemon{name: r.res.Target, h: r.host, socket: filepath.Join(r.dir, tag+".sock")}
	var bin string
	var args []string
	if r.o.standin {
		bin = r.self
		args = []string{cmdStandin, "-local", localPrefix.Addr().String(), "-endpoint", "http://" + etcdClient,
			"-prefix", r.o.l.prefix, "-lease-ttl", r.o.leaseTTL.String(), "-vni", strconv.Itoa(int(r.o.l.vni)),
			"-socket", d.socket, "-listen", metricsAddr}
	} else {
		path := filepath.Join(r.dir, tag+".toml")
		if err := os.WriteFile(path, []byte(r.vtepdConfig(d.socket)), 0o644); err != nil {
			return nil, err
		}
		bin, args = r.vtepd, []string{"-config", path}
	}
	d.started = time.Now()
	p, err := r.host.Start(bin, args...)
	if err != nil {
		return nil, err
	}
	d.p = p
	return d, nil
}

func (d *daemon) alive() error {
	if d.p.Exited() {
		return fmt.Errorf("%v died:\n%s", d.p, harness.Tail([]byte(d.p.Output()), 2000))
	}
	return nil
}

// call sends one admin command; a refusal is an error.
func (d *daemon) call(req admin.Request) (admin.Response, error) {
	resp, err := admin.Call(d.socket, req)
	if err == nil && resp.Error != "" {
		err = fmt.Errorf("%s: %s refused: %s", d.name, req.Cmd, resp.Error)
	}
	return resp, err
}

// control is the control plane's status.
func (d *daemon) control() (*admin.ControlStatus, error) {
	resp, err := d.call(admin.Request{Cmd: admin.CmdControl})
	if err != nil {
		return nil, err
	}
	if resp.Control == nil || resp.Control.Backend == "" {
		return nil, fmt.Errorf("%s reports no control plane (is [control] wired in this build?)", d.name)
	}
	return resp.Control, nil
}

// waitConnected waits for the control plane to report itself connected.
func (d *daemon) waitConnected(timeout time.Duration) (*admin.ControlStatus, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := d.alive(); err != nil {
			return nil, err
		}
		st, err := d.control()
		if err == nil && st.Connected {
			return st, nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not connected to etcd within %v (last error: %v)", d.name, timeout, last)
		}
		time.Sleep(statePoll)
	}
}

// metrics reads the daemon's /metrics.
func (d *daemon) metrics() ([]promtext.Sample, error) {
	body, err := d.h.HTTPGet("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	return promtext.Parse(string(body))
}

// heap is the Go heap in use and the free heap not given back to the
// system (heap_idle - heap_released), in MiB; zeros when /metrics lacks
// them.
func (d *daemon) heap() (inuse, unreleased float64) {
	ms, err := d.metrics()
	if err != nil {
		return 0, 0
	}
	in, ok1 := promtext.Value(ms, "go_memstats_heap_inuse_bytes")
	idle, ok2 := promtext.Value(ms, "go_memstats_heap_idle_bytes")
	released, ok3 := promtext.Value(ms, "go_memstats_heap_released_bytes")
	if !ok1 || !ok2 || !ok3 {
		return 0, 0
	}
	return round3(in / (1 << 20)), round3((idle - released) / (1 << 20))
}

// installed is the number of control entries in the FDB, from
// vtep_fdb_entries{type="control"}; byMetric is false when the daemon
// does not export it and the control status's remote MACs were counted.
func (d *daemon) installed() (n int, byMetric bool, err error) {
	s, err := d.metrics()
	if err != nil {
		return 0, false, err
	}
	if v, ok := promtext.Value(s, "vtep_fdb_entries", "type", "control"); ok {
		return int(v), true, nil
	}
	st, err := d.control()
	if err != nil {
		return 0, false, err
	}
	for _, e := range st.Entries {
		n += e.RemoteMACs
	}
	return n, false, nil
}

// waitInstalled polls until the FDB holds want control entries and
// returns when it first saw them.
func (d *daemon) waitInstalled(want int, deadline time.Time) (time.Time, bool, error) {
	last := -1
	var lastErr error
	for {
		if err := d.alive(); err != nil {
			return time.Time{}, false, err
		}
		n, byMetric, err := d.installed()
		now := time.Now()
		if err == nil && n >= want {
			return now, byMetric, nil
		}
		if err == nil {
			last = n
		} else {
			lastErr = err
		}
		if now.After(deadline) {
			return time.Time{}, false, fmt.Errorf("%s holds %d of %d entries after %v (last error: %v)",
				d.name, last, want, now.Sub(d.started).Round(time.Millisecond), lastErr)
		}
		time.Sleep(statePoll)
	}
}

// entry looks up one MAC of vni.
func (d *daemon) entry(vni uint32, mac string) (admin.FDBEntry, bool, error) {
	resp, err := d.call(admin.Request{Cmd: admin.CmdFDBShow, VNI: &vni, MAC: mac})
	if err != nil {
		return admin.FDBEntry{}, false, err
	}
	if len(resp.FDB) == 0 {
		return admin.FDBEntry{}, false, nil
	}
	return resp.FDB[0], true, nil
}

// rssKB is the process's VmRSS.
func (d *daemon) rssKB() (uint64, error) {
	if err := d.alive(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.p.PID()))
	if err != nil {
		return 0, err
	}
	return statusField(b, "VmRSS")
}

// settledRSS is the process's VmRSS once a garbage collection has run
// (asked through /debug/pprof/heap?gc=1) and the runtime has given the
// freed pages back: what the live data costs. Left alone, an idle vtepd
// collects only when the runtime forces it, two minutes on, and holds
// what a sync left as garbage until then.
func (d *daemon) settledRSS() (uint64, error) {
	if _, err := d.h.HTTPGet("http://" + metricsAddr + "/debug/pprof/heap?gc=1"); err != nil {
		return 0, fmt.Errorf("%s: garbage collection through pprof: %w", d.name, err)
	}
	// The pages go back within a second on a quiet machine, later on a
	// busy one: wait rssSettleMin, then until RSS has not fallen for
	// rssSettleQuiet, or rssSettleMax.
	start := time.Now()
	low, lowAt := uint64(math.MaxUint64), start
	for {
		kb, err := d.rssKB()
		if err != nil {
			return 0, err
		}
		now := time.Now()
		if kb+rssSettleKB < low {
			lowAt = now
		}
		low = min(low, kb)
		if (now.Sub(start) >= rssSettleMin && now.Sub(lowAt) >= rssSettleQuiet) || now.Sub(start) >= rssSettleMax {
			return kb, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM; it must exit with status 0.
func (d *daemon) stop() error {
	if err := d.p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	code, err := harness.Wait(d.p, stopTimeout)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited with status %d:\n%s", d.p, code, harness.Tail([]byte(d.p.Output()), 2000))
	}
	return err
}
