package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

// latency pings container b from container a every pingInterval for the
// run's duration and records p50 and p99 of the RTTs. More than 10% loss
// fails the run; any loss is noted.
func (r *runner) latency(rep int, mode string) (string, error) {
	count := max(int(r.o.duration/pingInterval), 100)
	// ping paces itself slower than -i on a busy machine: give it twice
	// the time, so that echoes never sent do not count as lost.
	deadline := int(math.Ceil((2*time.Duration(count)*pingInterval + 5*time.Second).Seconds()))
	args := []string{"-n", "-i", strconv.FormatFloat(pingInterval.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(count), "-W", "1", "-w", strconv.Itoa(deadline), r.ctrs[1].Addr.Addr().String()}
	if r.o.profileDir != "" {
		// Each reply's wall-clock time, to find an echo in vtepd's trace.
		args = append([]string{"-D"}, args...)
	}
	p, err := r.ctrs[0].Start("ping", args...)
	if err != nil {
		return "", err
	}
	// ping exits 1 when replies are missing: judge by what came back.
	out, _, err := finish(p, time.Duration(deadline)*time.Second+slack)
	if err != nil {
		return "", err
	}
	if r.o.profileDir != "" {
		path := filepath.Join(r.o.profileDir, fmt.Sprintf("rep%d-lat-%s-ping.txt", rep, mode))
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return "", err
		}
		harness.Chown(path)
	}
	rtts, err := parsePingRTTs(out)
	if err != nil {
		return "", err
	}
	if lost := count - len(rtts); lost > count/10 {
		return "", fmt.Errorf("ping lost %d of %d echoes:\n%s", lost, count, tail(out, 500))
	} else if lost > 0 {
		r.note("rep %d, %s: ping lost %d of %d echoes", rep, mode, lost, count)
	}
	p50, p99 := percentile(rtts, 50), percentile(rtts, 99)
	r.s.add("rtt_p50_us", mode, p50)
	r.s.add("rtt_p99_us", mode, p99)
	return fmt.Sprintf("RTT p50 %.0f µs, p99 %.0f µs (%d echoes)", p50, p99, len(rtts)), nil
}

// cpuSample is the CPU time, in clock ticks, of the machine and of the
// vtepd processes at one instant.
type cpuSample struct {
	machine harness.CPUTimes
	vtepd   uint64
}

func (r *runner) sampleCPU(mode string) (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	if s.machine, err = harness.ParseProcStat(b); err != nil {
		return s, err
	}
	if mode != modeVtepd {
		return s, nil
	}
	for _, p := range r.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID()))
		if err != nil {
			return s, fmt.Errorf("vtepd CPU time: %w", err)
		}
		t, err := parsePidStat(b)
		if err != nil {
			return s, err
		}
		s.vtepd += t
	}
	return s, nil
}

// runIperf runs an iperf3 client in container a against the server in
// container b with streams parallel streams, and returns the report.
func (r *runner) runIperf(streams int) (iperfResult, error) {
	secs := int(math.Ceil(r.o.duration.Seconds()))
	args := []string{"-c", r.ctrs[1].Addr.Addr().String(), "-p", strconv.Itoa(iperfPort),
		"-t", strconv.Itoa(secs), "-J", "--connect-timeout", "5000"}
	if streams > 1 {
		args = append(args, "-P", strconv.Itoa(streams))
	}
	p, err := r.ctrs[0].Start("iperf3", args...)
	if err != nil {
		return iperfResult{}, err
	}
	out, code, err := finish(p, time.Duration(secs)*time.Second+slack)
	if err != nil {
		return iperfResult{}, err
	}
	res, err := parseIperf(out)
	if err == nil && code != 0 {
		err = fmt.Errorf("iperf3 exited with status %d:\n%s", code, tail(out, 1000))
	}
	return res, err
}

// tcpRun measures TCP throughput with streams streams; with cpu, also CPU
// seconds per GB of payload, of vtepd and of the whole machine.
func (r *runner) tcpRun(mode string, streams int, cpu bool) (string, error) {
	before, err := r.sampleCPU(mode)
	if err != nil {
		return "", err
	}
	res, err := r.runIperf(streams)
	if err != nil {
		return "", err
	}
	after, err := r.sampleCPU(mode)
	if err != nil {
		return "", err
	}
	gbps := res.BitsPerSecond / 1e9
	r.s.add(fmt.Sprintf("tcp%d_gbps", streams), mode, gbps)
	line := fmt.Sprintf("%.2f Gbit/s, %d retransmits", gbps, res.Retransmits)
	if !cpu {
		return line, nil
	}
	gb := float64(res.Bytes) / 1e9
	machine := float64(after.machine.Busy-before.machine.Busy) / r.clkTck / gb
	r.s.add("cpu_machine_s_per_gb", mode, machine)
	line += fmt.Sprintf("; machine %.2f CPU s/GB", machine)
	if mode == modeVtepd {
		v := float64(after.vtepd-before.vtepd) / r.clkTck / gb
		r.s.add("cpu_vtepd_s_per_gb", mode, v)
		line += fmt.Sprintf(", vtepd %.2f CPU s/GB", v)
	}
	return line, nil
}

// startGenerator starts the small-frame generator in container a,
// addressed to the counter in container b.
func (r *runner) startGenerator() (*topo.Proc, error) {
	return r.ctrs[0].Start(r.self, cmdPktgen, "-dev", "eth0",
		"-src-mac", r.macs[0].String(), "-dst-mac", r.macs[1].String(),
		"-src", r.ctrs[0].Addr.Addr().String(), "-dst", r.ctrs[1].Addr.Addr().String(),
		"-dport", strconv.Itoa(sinkPort), "-flows", strconv.Itoa(r.o.flows), "-payload", strconv.Itoa(udpPayload),
		"-warmup", pktWarmup.String(), "-duration", r.o.duration.String(), "-tail", pktTail.String())
}

// waitGenerator waits for the generator and returns its report.
func (r *runner) waitGenerator(gen *topo.Proc) (genResult, error) {
	var g genResult
	out, err := mustSucceed(gen, pktWarmup+r.o.duration+pktTail+slack)
	if err != nil {
		return g, fmt.Errorf("generator: %w", err)
	}
	if err := harness.LastJSONLine(out, &g); err != nil {
		return g, fmt.Errorf("generator: %w", err)
	}
	if g.WindowSeconds <= 0 || g.WindowSent == 0 {
		return g, fmt.Errorf("generator sent nothing: %+v", g)
	}
	return g, nil
}

// calibrate measures the generator's own ceiling before any overlay is
// up: its frames reach host a's bridge, which has no port to send them
// to and drops them. Compared with what the paths carry, it tells whether
// the generator or the path sets the small-frame figures.
func (r *runner) calibrate() error {
	gen, err := r.startGenerator()
	if err != nil {
		return err
	}
	g, err := r.waitGenerator(gen)
	if err != nil {
		return err
	}
	r.genCeiling = float64(g.WindowSent) / g.WindowSeconds / 1e3
	r.progress("64 B generator alone (no overlay): %.0f kpps", r.genCeiling)
	return nil
}

// pps runs the small-frame generator in container a against the counter
// in container b (both this binary, re-executed) and records the rates
// offered and received over the measurement window.
func (r *runner) pps(mode string) (string, error) {
	sink, err := r.ctrs[1].Start(r.self, cmdPktsink, "-listen", fmt.Sprintf("%s:%d", r.ctrs[1].Addr.Addr(), sinkPort),
		"-warmup", pktWarmup.String(), "-duration", r.o.duration.String(), "-first-timeout", "5s")
	if err != nil {
		return "", err
	}
	if !harness.WaitReady(sink, harness.ReadyLine, time.Now().Add(5*time.Second)) {
		_, _, _ = finish(sink, time.Second)
		return "", fmt.Errorf("counter did not start:\n%s", tail([]byte(sink.Output()), 1000))
	}
	if err := r.warmFDBs(); err != nil {
		return "", err
	}
	gen, err := r.startGenerator()
	if err != nil {
		return "", err
	}
	g, genErr := r.waitGenerator(gen)
	sinkOut, sinkErr := mustSucceed(sink, pktWarmup+r.o.duration+pktTail+slack)
	if err := errors.Join(genErr, sinkErr); err != nil {
		return "", err
	}
	var s sinkResult
	if err := harness.LastJSONLine(sinkOut, &s); err != nil {
		return "", fmt.Errorf("counter: %w", err)
	}
	if s.WindowSeconds <= 0 || s.WindowReceived == 0 {
		return "", fmt.Errorf("counter counted nothing: %+v", s)
	}
	offered := float64(g.WindowSent) / g.WindowSeconds / 1e3
	received := float64(s.WindowReceived) / s.WindowSeconds / 1e3
	r.s.add("udp64_offered_kpps", mode, offered)
	r.s.add("udp64_rx_kpps", mode, received)
	line := fmt.Sprintf("offered %.0f kpps, received %.0f kpps (%.0f%%)", offered, received, 100*received/offered)
	if s.IfRxPackets > 0 {
		ifrx := float64(s.IfRxPackets) / s.WindowSeconds / 1e3
		r.s.add("udp64_ifrx_kpps", mode, ifrx)
		r.s.add("udp64_counter_gap", mode, 1-received/ifrx)
		line += fmt.Sprintf("; container eth0 %.0f kpps", ifrx)
	}
	if g.Failed > 0 {
		line += fmt.Sprintf("; %d sendmmsg calls failed (ENOBUFS)", g.Failed)
	}
	return line, nil
}

// profile brings vtepd up once more, collects a CPU profile of each vtepd
// over an unrecorded TCP single-stream run, saves them to the output
// directory and returns `go tool pprof -top` of each.
func (r *runner) profile() ([]string, error) {
	r.progress("pprof: extra vtepd tcp1 run (not counted), profiling both vtepd")
	if err := r.up(modeVtepd); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return nil, err
	}
	secs := int(math.Ceil(r.o.duration.Seconds()))
	type result struct {
		path string
		err  error
	}
	results := make(chan result, len(r.hosts))
	for _, h := range r.hosts {
		go func() {
			path := filepath.Join(r.o.out, "vtepd-"+h.Name+".pprof")
			client := h.HTTPClient(time.Duration(secs)*time.Second + slack)
			resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", metricsAddr, secs))
			if err != nil {
				results <- result{path, err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET profile on %s: %s: %s", h.Name, resp.Status, tail(body, 300))
			}
			if err == nil {
				err = os.WriteFile(path, body, 0o644)
			}
			results <- result{path, err}
		}()
	}
	// Let both profiles start before the load does.
	time.Sleep(100 * time.Millisecond)
	_, runErr := r.runIperf(1)
	var paths []string
	errs := []error{runErr}
	for range r.hosts {
		res := <-results
		errs = append(errs, res.err)
		paths = append(paths, res.path)
	}
	errs = append(errs, r.down(modeVtepd))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	harness.Chown(paths...)
	goTool, err := exec.LookPath("go")
	if err != nil {
		r.note("profiles saved as %s; no go tool on PATH to print their top", strings.Join(paths, ", "))
		return nil, nil
	}
	var tops []string
	for _, path := range paths {
		out, err := exec.Command(goTool, "tool", "pprof", "-top", "-nodecount=10", path).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof %s: %w\n%s", path, err, out)
		}
		tops = append(tops, fmt.Sprintf("== %s (go tool pprof -top -nodecount=10)\n%s", path, out))
	}
	return tops, nil
}

// report writes the results (JSON, chart) and prints the table.
func (r *runner) report(tops []string) error {
	var err error
	if r.busyAfter, err = harness.BackgroundBusy(); err != nil {
		return err
	}
	if busy := max(r.busyBefore, r.busyAfter); busy > busyWarn {
		r.note("the machine was %.0f%% busy before and %.0f%% after the run with nothing of ours running: "+
			"other load shared the CPUs, so the figures (machine CPU/GB most of all) are noisy", r.busyBefore, r.busyAfter)
	}
	res := &Results{
		Time: time.Now().UTC().Truncate(time.Second),
		Settings: Settings{Reps: r.o.reps, Duration: r.o.duration.String(), Workloads: r.work,
			Queues: r.o.queues, UDPGSO: r.o.udpGSO, BusyPoll: busyPollText(r.o.busyPoll), Flows: r.o.flows},
		System:        harness.ThisSystem(),
		BusyBefore:    round(r.busyBefore),
		BusyAfter:     round(r.busyAfter),
		Metrics:       summarize(r.s),
		GeneratorKpps: round(r.genCeiling),
		Notes:         append(notesFor(r.s, r.genCeiling), r.notes...),
	}
	if len(r.rates) > 0 {
		res.RateSearch = newRateSearch(r.searchConfig(), udpPayload, r.rates)
		res.Notes = append(res.Notes, rateNotes(res.RateSearch)...)
	}
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	var written []string
	write := func(name string, w io.WriterTo) error {
		path := filepath.Join(r.o.out, name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		_, err = w.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		written = append(written, path)
		return err
	}
	stamp := res.Time.Format("20060102T150405Z")
	for _, name := range []string{"latest.json", stamp + ".json"} {
		if err := write(name, writerFunc(func(w io.Writer) error { return writeJSON(w, res) })); err != nil {
			return err
		}
	}
	if len(res.Metrics) > 0 && hasRatio(res) {
		chart, err := renderChart(res, "svg")
		if err != nil {
			return err
		}
		if err := write("latest.svg", chart); err != nil {
			return err
		}
	}
	if res.RateSearch != nil {
		chart, err := renderOverloadChart(res.RateSearch, "svg")
		if err != nil {
			return err
		}
		if err := write("latest-overload.svg", chart); err != nil {
			return err
		}
	}
	harness.Chown(append(written, r.o.out)...)

	fmt.Println()
	if err := writeTable(os.Stdout, res); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", strings.Join(written, ", "))
	for _, t := range tops {
		fmt.Printf("\n%s", t)
	}
	return nil
}

// writerFunc adapts a function to io.WriterTo.
type writerFunc func(io.Writer) error

func (f writerFunc) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := f(cw)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// busyPollText is the busy_poll of a run as the JSON records it: empty
// when off.
func busyPollText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// idle leaves the data path up with no traffic for the run's duration
// and says what each vtepd cost meanwhile: its share of a core and its
// wake-ups (voluntary context switches) per second. The kernel's vxlan
// has no process to measure.
func (r *runner) idle(mode string) (string, error) {
	if mode != modeVtepd {
		return "nothing to measure", nil
	}
	var before, after [2]procStat
	read := func(s *[2]procStat) error {
		for i, p := range r.procs {
			var err error
			if s[i], err = readProcStat(p.PID()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(&before); err != nil {
		return "", err
	}
	start := time.Now()
	time.Sleep(r.o.duration)
	if err := read(&after); err != nil {
		return "", err
	}
	wall := time.Since(start).Seconds()
	var parts []string
	for i, h := range r.hosts {
		d := after[i].sub(before[i])
		parts = append(parts, fmt.Sprintf("%s %.3f%% of a core, %.1f wake-ups/s", h.Name, 100*d.runNs/1e9/wall, d.vol/wall))
	}
	return strings.Join(parts, "; "), nil
}
