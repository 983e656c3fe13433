package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

// The lab: two hosts, a container each, VNI 200, as the integration tests build it.
const (
	labPrefix   = "vb"
	vni         = 200
	vxlanPort   = 4789
	underlayMTU = 1500
	metricsAddr = "127.0.0.1:9476" // one per host namespace
	iperfPort   = 5201
	sinkPort    = 9000
	udpPayload  = 64
	// pingInterval paces the latency workload: light load, 100 pings/s.
	pingInterval = 10 * time.Millisecond
	// pktWarmup and pktTail are sent before and after the pps window.
	pktWarmup = time.Second
	pktTail   = 500 * time.Millisecond
	// slack is added to every workload's expected length before it is
	// declared hung and killed.
	slack = 30 * time.Second
)

var (
	underlays  = [2]netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")}
	containers = [2]netip.Prefix{netip.MustParsePrefix("198.19.0.1/24"), netip.MustParsePrefix("198.19.0.2/24")}
)

// runner is one run of the harness: the lab, the data path currently up,
// and every sample taken so far.
type runner struct {
	o      options
	work   []string
	self   string // this binary, re-executed as generator and counter
	vtepd  string // absolute path
	clkTck float64
	start  time.Time

	lab   *topo.Lab
	hosts [2]*topo.Host
	ctrs  [2]*topo.Container
	macs  [2]net.HardwareAddr
	iperf *topo.Proc    // server in container b, for the whole run
	procs [2]*topo.Proc // vtepd on each host while mode vtepd is up

	s          samples
	rates      []rateRun // the rate searches, in the order they ran
	trialSeq   int       // the last rate-search trial's number
	notes      []string
	genCeiling float64 // kpps, see calibrate
	// busyBefore and busyAfter are the machine's busy percentage over a
	// second of nothing running in the lab, before and after the run: a
	// shared machine makes every figure, above all the CPU costs, noisy.
	busyBefore, busyAfter float64
}

func runBench(o options) (err error) {
	r := &runner{o: o, s: samples{}, start: time.Now()}
	if r.work, err = workloadList(o.only); err != nil {
		return err
	}
	if err := r.preflight(); err != nil {
		return err
	}
	if r.busyBefore, err = harness.BackgroundBusy(); err != nil {
		return err
	}
	if r.lab, err = topo.New(labPrefix); err != nil {
		return err
	}
	defer harness.CloseLab(r.lab, &err)
	if err := r.setup(); err != nil {
		return err
	}
	// The rate search runs once, after the repetitions of the others.
	perRep := slices.DeleteFunc(slices.Clone(r.work), func(w string) bool { return w == wlRateSearch })
	perMode := time.Duration(len(perRep))*(o.duration+time.Second) + 3*time.Second
	total := 2 * time.Duration(o.reps) * perMode
	if len(perRep) == 0 {
		total = 0
	}
	if slices.Contains(r.work, wlRateSearch) {
		total += r.rateSearchEstimate()
	}
	r.progress("lab %s up; machine %.0f%% busy before the run; %d reps × {kernel, vtepd} × {%s}, about %v",
		r.lab.Name(), r.busyBefore, o.reps, strings.Join(r.work, ", "), total.Round(10*time.Second))
	if slices.Contains(r.work, "pps") {
		if err := r.calibrate(); err != nil {
			return fmt.Errorf("generator calibration: %w", err)
		}
	}

	for rep := 1; rep <= o.reps && len(perRep) > 0; rep++ {
		modes := []string{modeKernel, modeVtepd}
		if rep%2 == 0 {
			modes[0], modes[1] = modes[1], modes[0]
		}
		for _, mode := range modes {
			if err := r.runMode(rep, mode); err != nil {
				return fmt.Errorf("rep %d, %s: %w", rep, mode, err)
			}
		}
	}
	if slices.Contains(r.work, wlRateSearch) {
		if err := r.rateSearch(); err != nil {
			return err
		}
	}
	var tops []string
	if o.pprof {
		if tops, err = r.profile(); err != nil {
			return fmt.Errorf("pprof run: %w", err)
		}
	}
	if err := r.report(tops); err != nil {
		return err
	}
	return nil
}

// preflight checks what a run needs before anything is built.
func (r *runner) preflight() (err error) {
	if r.vtepd, r.self, err = harness.Preflight("bench", []string{"ip", "iperf3", "ping"}, r.o.vtepd); err != nil {
		return err
	}
	r.clkTck = clockTicks()
	return nil
}

// clockTicks is sysconf(_SC_CLK_TCK), which /proc counts CPU time in.
// Go has no sysconf; getconf is part of libc-bin. It is 100 on every
// Linux we know of, which is also the fallback.
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return float64(v)
		}
	}
	return 100
}

// setup builds the two hosts and their containers and starts the iperf3
// server.
func (r *runner) setup() error {
	hosts, ctrs, err := harness.AddHosts(r.lab, []string{"a", "b"},
		func(i int) netip.Prefix { return underlays[i] }, func(i int) netip.Prefix { return containers[i] }, underlayMTU,
		func(i int, _ *topo.Host, c *topo.Container) (err error) {
			r.macs[i], err = c.MAC()
			return err
		})
	if err != nil {
		return err
	}
	copy(r.hosts[:], hosts)
	copy(r.ctrs[:], ctrs)
	r.iperf, err = r.ctrs[1].Start("iperf3", "-s", "-B", containers[1].Addr().String(), "-p", strconv.Itoa(iperfPort))
	return err
}

// runMode brings one data path up, runs every workload over it, and takes
// it down again.
func (r *runner) runMode(rep int, mode string) error {
	r.progress("rep %d/%d %-6s up", rep, r.o.reps, mode)
	if err := r.up(mode); err != nil {
		return err
	}
	for _, w := range r.work {
		if w == wlRateSearch {
			continue // once, after the repetitions
		}
		var line string
		trace, length := traceShort, r.o.duration
		switch w {
		case wlIdle, "lat":
			trace = r.o.duration
		case "pps":
			length += pktWarmup + pktTail
		case "tcp4":
			trace = 0
		}
		c, err := r.profileStart(mode, fmt.Sprintf("rep%d-%s", rep, w), length, trace)
		if err != nil {
			return fmt.Errorf("%s: profile: %w", w, err)
		}
		switch w {
		case wlIdle:
			line, err = r.idle(mode)
		case "lat":
			line, err = r.latency(rep, mode)
		case "tcp1":
			line, err = r.tcpRun(mode, 1, true)
		case "tcp4":
			line, err = r.tcpRun(mode, 4, false)
		case "pps":
			line, err = r.pps(mode)
		}
		err = errors.Join(err, r.profileEnd(c))
		if err == nil {
			err = r.checkAlive()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
		r.progress("rep %d/%d %-6s %-4s %s", rep, r.o.reps, mode, w, line)
	}
	return r.down(mode)
}

// up creates the data path of mode on both hosts and waits until the
// containers reach each other.
func (r *runner) up(mode string) error {
	if mode == modeKernel {
		for i, h := range r.hosts {
			if err := h.AddKernelVXLAN(vni, vxlanPort, r.hosts[1-i].Underlay); err != nil {
				return err
			}
		}
	} else if err := r.startVtepd(); err != nil {
		return err
	}
	if err := r.ctrs[0].WaitReachable(r.ctrs[1].Addr.Addr(), 10*time.Second); err != nil {
		return fmt.Errorf("%s overlay did not come up: %w", mode, err)
	}
	return r.warmFDBs()
}

// warmFDBs pings once each way, so that both bridges, both vtepd FDBs
// (or vx0 FDBs) and both neighbour tables know both containers.
func (r *runner) warmFDBs() error {
	for i, c := range r.ctrs {
		if err := c.Ping(r.ctrs[1-i].Addr.Addr(), 1, 56, false); err != nil {
			return err
		}
	}
	return nil
}

// vtepdConfig renders the configuration of vtepd on host i.
func (r *runner) vtepdConfig(i int) string {
	var b strings.Builder
	if r.o.queues > 0 {
		fmt.Fprintf(&b, "queues = %d\n", r.o.queues)
	}
	if r.o.busyPoll > 0 {
		fmt.Fprintf(&b, "busy_poll = %q\n", r.o.busyPoll.String())
	}
	// Nothing of a benchmark run outlives it: no state file, no admin socket.
	b.WriteString("state_dir = \"\"\n[admin]\nsocket = \"\"\n")
	fmt.Fprintf(&b, "[underlay]\nlocal = %q\nport = %d\n", r.hosts[i].Underlay, vxlanPort)
	fmt.Fprintf(&b, "udp_gso = %t\n", r.o.udpGSO)
	fmt.Fprintf(&b, "[metrics]\nlisten = %q\npprof = %t\n", metricsAddr, r.o.pprof || r.o.profileDir != "")
	fmt.Fprintf(&b, "[[network]]\nvni = %d\nbridge = \"br0\"\npeers = [%q]\n", vni, r.hosts[1-i].Underlay)
	return b.String()
}

// startVtepd runs vtepd on both hosts and waits for /healthz. The
// configuration files live only until both daemons have read them.
func (r *runner) startVtepd() error {
	procs, err := harness.StartVtepds(r.hosts[:], "vtepbench-", metricsAddr, r.vtepdConfig,
		func(path string) (string, []string) { return r.vtepd, []string{"-config", path, "-log-level", "warn"} })
	copy(r.procs[:], procs)
	return err
}

// down removes the data path of mode. vtepd must exit cleanly on SIGTERM.
func (r *runner) down(mode string) error {
	if mode == modeKernel {
		for _, h := range r.hosts {
			if _, err := h.Exec("ip", "link", "del", "vx0"); err != nil {
				return err
			}
		}
		return nil
	}
	var errs []error
	for i, p := range r.procs {
		if p == nil {
			continue
		}
		r.procs[i] = nil
		if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
			continue
		}
		code, err := p.Wait(10 * time.Second)
		if err == nil && code != 0 {
			err = fmt.Errorf("%v exited with status %d:\n%s", p, code, tail([]byte(p.Output()), 2000))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkAlive fails if a daemon of the harness died under load.
func (r *runner) checkAlive() error {
	for _, p := range append(r.procs[:], r.iperf) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%v died:\n%s", p, tail([]byte(p.Output()), 2000))
		}
	}
	return nil
}

// finish waits up to timeout for p and returns its output and exit code;
// a process still running then is killed and reported.
func finish(p *topo.Proc, timeout time.Duration) ([]byte, int, error) {
	code, err := harness.Wait(p, timeout)
	if errors.Is(err, topo.ErrTimeout) {
		return []byte(p.Output()), -1, fmt.Errorf("%w; output:\n%s", err, tail([]byte(p.Output()), 2000))
	}
	if err != nil {
		return []byte(p.Output()), code, fmt.Errorf("%w; output:\n%s", err, tail([]byte(p.Output()), 2000))
	}
	return []byte(p.Output()), code, nil
}

// mustSucceed is finish for processes whose non-zero exit is a failure.
func mustSucceed(p *topo.Proc, timeout time.Duration) ([]byte, error) {
	out, code, err := finish(p, timeout)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited with status %d:\n%s", p, code, tail(out, 2000))
	}
	return out, err
}

func (r *runner) progress(format string, args ...any) {
	el := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%4ds] %s\n", int(el.Seconds()), fmt.Sprintf(format, args...))
}

func (r *runner) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}
