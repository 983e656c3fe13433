package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

const (
	// ratePort is the receiver's port (the pps counter has sinkPort).
	ratePort = sinkPort + 1
	// rateSport is the sender's first source port.
	rateSport = 10000
	// rateWarmup is the unrecorded trial before each search: the path
	// carried something, and the first recorded trial meets no cold start.
	rateWarmup     = 500 * time.Millisecond
	rateWarmupKpps = 10
	// rateSettle is how long the harness waits after a trial before it
	// reads the receiver's count, and then again until the count stops
	// growing: datagrams queued along the path still arrive.
	rateSettle    = 100 * time.Millisecond
	rateSettleMax = 3 * time.Second
)

// rateSearch runs the offered-rate search over each data path, once (not
// per repetition: its full-length confirmations stand in for repetitions),
// for each flow count of -search-flows; the second path takes the flow
// counts in the opposite order, so that drift over the phase hits both
// alike.
func (r *runner) rateSearch() error {
	cfg := r.searchConfig()
	flows := append([]int(nil), r.o.searchFlows...)
	for i, mode := range []string{modeKernel, modeVtepd} {
		if i == 1 {
			for a, b := 0, len(flows)-1; a < b; a, b = a+1, b-1 {
				flows[a], flows[b] = flows[b], flows[a]
			}
		}
		if err := r.rateSearchMode(mode, cfg, flows); err != nil {
			return fmt.Errorf("rate search, %s: %w", mode, err)
		}
	}
	return nil
}

// rateSearchEstimate is about how long rateSearch takes: per data path
// and flow count, a warm-up, nine short trials and two full-length ones
// (the kernel's searches take fewer, a vtepd confirmation that fails
// more), each with its settling; and each data path brought up.
func (r *runner) rateSearchEstimate() time.Duration {
	perTrial := 2*rateSettle + 150*time.Millisecond
	perSearch := rateWarmup + perTrial + 9*(r.o.searchTrial+perTrial) + 2*(r.o.duration+perTrial)
	return 2 * (time.Duration(len(r.o.searchFlows))*perSearch + 3*time.Second)
}

// searchConfig is the search of the flags.
func (r *runner) searchConfig() searchConfig {
	cfg := defaultSearch(r.o.searchTrial, r.o.duration)
	cfg.Precision = r.o.searchPrecision
	return cfg
}

// rateSearchMode brings one data path up, starts the receiver, searches
// with each flow count, and takes it all down again.
func (r *runner) rateSearchMode(mode string, cfg searchConfig, flows []int) (err error) {
	r.progress("rate search %-6s up", mode)
	if err := r.up(mode); err != nil {
		return err
	}
	sink, err := r.startRateSink()
	if err != nil {
		return errors.Join(err, r.down(mode))
	}
	defer func() { err = errors.Join(err, sink.stop(), r.down(mode)) }()
	for _, n := range flows {
		measure := func(spec trialSpec) (trial, error) { return r.rateTrial(mode, n, sink, spec) }
		warm, err := measure(trialSpec{TargetKpps: rateWarmupKpps, Duration: rateWarmup, Purpose: "warm-up"})
		if err != nil {
			return err
		}
		if warm.Received == 0 {
			return fmt.Errorf("%d flows: nothing arrived at %d kpps:\n%s", n, rateWarmupKpps, tail([]byte(sink.p.Output()), 1000))
		}
		run, err := runSearch(cfg, measure)
		if err != nil {
			return fmt.Errorf("%d flows: %w", n, err)
		}
		run.Mode, run.Flows = mode, n
		r.rates = append(r.rates, *run)
		addRateSamples(r.s, run)
		r.progress("rate search %-6s %d %s: NDR %s, PDR %s; sender's maximum %.0f kpps, delivered %.1f kpps there, peak %.1f: retention %.2f",
			mode, n, flowsWord(n), boundText(run.NDR), boundText(run.PDR), run.MaxOfferedKpps, run.MaxDeliveredKpps, run.PeakDeliveredKpps, run.Retention)
	}
	return nil
}

// rateTrial runs one trial: a sender in container a for spec.Duration,
// then the receiver's count of the trial once it stops growing. It prints
// the progress line of the trial.
func (r *runner) rateTrial(mode string, flows int, sink *rateSink, spec trialSpec) (trial, error) {
	r.trialSeq++
	id := r.trialSeq
	if id >= maxTrials {
		return trial{}, fmt.Errorf("more than %d trials in one run", maxTrials-1)
	}
	var err error
	before := sink.last
	var drops map[string]uint64
	if spec.Final {
		if drops, err = r.dropCounters(); err != nil {
			return trial{}, err
		}
	}
	var c *capture
	if spec.Final {
		name := fmt.Sprintf("ratesearch-%df-t%d-%s", flows, id, strings.Join(strings.Fields(spec.Purpose), "_"))
		if c, err = r.profileStart(mode, name, spec.Duration, 0); err != nil {
			return trial{}, err
		}
	}
	gen, err := r.ctrs[0].Start(r.self, cmdUDPGen, "-src", r.ctrs[0].Addr.Addr().String(),
		"-dst", fmt.Sprintf("%s:%d", r.ctrs[1].Addr.Addr(), ratePort), "-sport", strconv.Itoa(rateSport),
		"-flows", strconv.Itoa(flows), "-rate", strconv.FormatFloat(spec.TargetKpps*1e3, 'f', 0, 64),
		"-duration", spec.Duration.String(), "-trial", strconv.Itoa(id), "-payload", strconv.Itoa(udpPayload))
	if err != nil {
		return trial{}, err
	}
	out, err := mustSucceed(gen, spec.Duration+slack)
	if perr := r.profileEnd(c); perr != nil {
		err = errors.Join(err, fmt.Errorf("profile: %w", perr))
	}
	if err != nil {
		return trial{}, fmt.Errorf("sender: %w", err)
	}
	var g udpGenResult
	if err := harness.LastJSONLine(out, &g); err != nil {
		return trial{}, fmt.Errorf("sender: %w", err)
	}
	rep, err := sink.settle(uint32(id))
	if err != nil {
		return trial{}, err
	}
	t := newTrial(g.Sent, rep.Counts[uint32(id)], g.Seconds)
	t.ID, t.SendErrors, t.PacerSkipped = id, g.SendErrors, g.Skipped
	if spec.Final {
		after, err := r.dropCounters()
		if err != nil {
			return trial{}, err
		}
		t.Drops = dropDelta(drops, after)
	}
	if rep.RcvbufErrors >= 0 && before.RcvbufErrors >= 0 && rep.RcvbufErrors > before.RcvbufErrors {
		t.ReceiverDrops = uint64(rep.RcvbufErrors - before.RcvbufErrors)
	}
	extra := ""
	if t.ReceiverDrops > 0 {
		extra += fmt.Sprintf("; %d dropped at the receiving socket", t.ReceiverDrops)
	}
	if t.PacerSkipped > 0 {
		extra += fmt.Sprintf("; sender fell %d behind", t.PacerSkipped)
	}
	if t.SendErrors > 0 {
		extra += fmt.Sprintf("; %d failed sendmmsg", t.SendErrors)
	}
	r.progress("rate %-6s %d %-5s #%-3d %-11s %4.1fs: asked %-10s offered %6.1f, delivered %6.1f kpps, loss %7.3f%%%s",
		mode, flows, flowsWord(flows), id, spec.Purpose, t.Seconds, kppsText(spec.TargetKpps)+",", t.OfferedKpps, t.DeliveredKpps, 100*t.Loss, extra)
	return t, r.checkAlive()
}

// dropCounters reads every counter of the lab that a lost datagram can
// land in: the rx and tx drops of every interface of every namespace
// (a full TAP ring shows as the TAP's tx_dropped), each namespace's UDP
// receive-buffer errors (a socket not read in time: the receiver's, or
// vtepd's underlay sockets), and the machine's input backlog drops. Keys
// name the namespace by its lab-relative name: "b: udp rcvbuf_errors",
// "a-c1: eth0 tx_dropped", "machine: softnet backlog drops".
func (r *runner) dropCounters() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, ns := range r.lab.Namespaces() {
		name := strings.TrimPrefix(strings.TrimPrefix(ns, r.lab.Name()), "-")
		b, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show").Output()
		if err != nil {
			return nil, fmt.Errorf("ip -n %s -s -j link show: %w", ns, err)
		}
		links, err := parseLinkDrops(b)
		if err != nil {
			return nil, err
		}
		for k, v := range links {
			out[name+": "+k] = v
		}
		if b, err = exec.Command("ip", "netns", "exec", ns, "cat", snmpPath).Output(); err != nil {
			return nil, fmt.Errorf("%s in %s: %w", snmpPath, ns, err)
		}
		v, err := parseUDPRcvbufErrors(b)
		if err != nil {
			return nil, err
		}
		out[name+": udp rcvbuf_errors"] = v
	}
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return nil, err
	}
	if out["machine: softnet backlog drops"], err = parseSoftnetDrops(b); err != nil {
		return nil, err
	}
	return out, nil
}

// rateSink is the receiver of one data path's searches, in container b.
type rateSink struct {
	p    *topo.Proc
	seq  int           // reports asked for
	last udpSinkReport // the latest
}

func (r *runner) startRateSink() (*rateSink, error) {
	p, err := r.ctrs[1].Start(r.self, cmdUDPSink, "-listen", fmt.Sprintf("%s:%d", r.ctrs[1].Addr.Addr(), ratePort))
	if err != nil {
		return nil, err
	}
	s := &rateSink{p: p}
	if !harness.WaitReady(p, harness.ReadyLine, time.Now().Add(5*time.Second)) {
		_ = s.stop()
		return nil, fmt.Errorf("receiver did not start:\n%s", tail([]byte(p.Output()), 1000))
	}
	if s.last, err = s.report(); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

// report asks the receiver for its counts (SIGUSR1) and waits for them.
func (s *rateSink) report() (udpSinkReport, error) {
	s.seq++
	if err := s.p.Signal(syscall.SIGUSR1); err != nil {
		return udpSinkReport{}, fmt.Errorf("receiver: %w:\n%s", err, tail([]byte(s.p.Output()), 1000))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var rep udpSinkReport
		if harness.LastJSONLine([]byte(s.p.Output()), &rep) == nil && rep.Seq == s.seq {
			return rep, nil
		}
		if s.p.Exited() || time.Now().After(deadline) {
			return rep, fmt.Errorf("receiver gave no report %d:\n%s", s.seq, tail([]byte(s.p.Output()), 1000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the count of trial id stops growing (the path
// drained) and returns the last report.
func (s *rateSink) settle(id uint32) (udpSinkReport, error) {
	deadline := time.Now().Add(rateSettleMax)
	prev := ^uint64(0)
	for {
		time.Sleep(rateSettle)
		rep, err := s.report()
		if err != nil {
			return rep, err
		}
		s.last = rep
		if n := rep.Counts[id]; n == prev || time.Now().After(deadline) {
			return rep, nil
		}
		prev = rep.Counts[id]
	}
}

// stop ends the receiver; it exits 0 on SIGTERM.
func (s *rateSink) stop() error {
	if err := s.p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	code, err := harness.Wait(s.p, 5*time.Second)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited with status %d:\n%s", s.p, code, tail([]byte(s.p.Output()), 1000))
	}
	return err
}
