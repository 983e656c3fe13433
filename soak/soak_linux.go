package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

// The lab: three hosts with a container each on VNI 200, and an attacker
// on the same underlay segment but outside accept_from.
const (
	labPrefix   = "vs"
	vni         = 200
	vxlanPort   = 4789
	underlayMTU = 1500
	metricsAddr = "127.0.0.1:9476" // one per host namespace
	flowPort    = 9000
	iperfPort   = 5201
	// ageing is vtepd's (and the kernel vxlan's) FDB ageing: short, so
	// that churned MACs expire many times over during a run.
	ageing     = 5 * time.Second
	maxEntries = 4096
	// bridgeAgeing is the hosts' bridges' own FDB ageing, shortened from
	// the kernel's 300 s so that the churned MACs do not pile up there.
	bridgeAgeing = 10 * time.Second
	// primeBurst and primeStreams shape the TCP bursts that prime each
	// phase (see prime).
	primeBurst   = 1
	primeStreams = 4
	// churnMoveEvery: every fifth churned MAC moves once.
	churnMoveEvery = 5
	// lead is how far ahead of launch the workload's start time is set,
	// so that every receiver is listening before anyone sends.
	lead = 2 * time.Second
	// linger is how long the flow receivers keep counting after the
	// senders stop, for datagrams still queued on the way.
	linger = time.Second
	// hangAfter is how long a vtepd may fail to answer its scrapes (which
	// time out after 5 s each) before it counts as hung: a machine that
	// stalls for a few seconds must not read as a vtepd that did.
	hangAfter = 30 * time.Second
	// slack is added to the expected length of anything waited for
	// before it is declared hung.
	slack = 30 * time.Second
)

var (
	hostNames = []string{"a", "b", "c"}
	// acceptFrom holds the three VTEPs; the attacker's 198.18.1.1 shares
	// their /16 segment but is outside it.
	acceptFrom = netip.MustParsePrefix("198.18.0.0/24")
	attacker   = netip.MustParsePrefix("198.18.1.1/16")
)

func underlayOf(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 16)
}

func containerOf(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 24)
}

// containerMAC is fixed, so that /fdb reads easily and no random MAC can
// look like a churn or attacker MAC.
func containerMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0x00, byte(i + 1)}
}

// runner is one soak run.
type runner struct {
	o     options
	self  string // this binary, re-executed as the workload's processes
	vtepd string // absolute path
	start time.Time

	lab      *topo.Lab
	hosts    []*topo.Host
	ctrs     []*topo.Container
	attacker *topo.Host
	iperfs   []*topo.Proc
	vtepds   []*topo.Proc // while the vtepd phase runs

	res Results
}

// runSoak builds the lab, runs the kernel phase and the vtepd phase, and
// returns the evaluated results. An error means the soak could not be
// carried out (a tool missing, the lab not building, a workload process
// failing), as opposed to vtepd failing it, which the results say.
func runSoak(o options) (res *Results, err error) {
	r := &runner{o: o, start: time.Now()}
	if err := r.preflight(); err != nil {
		return nil, err
	}
	kernelD, vtepdD, warmup := o.phases()
	r.res = Results{
		Time: time.Now().UTC(),
		Settings: Settings{
			VNI:             vni,
			Seconds:         o.duration.Seconds(),
			KernelSeconds:   kernelD.Seconds(),
			VtepdSeconds:    vtepdD.Seconds(),
			WarmupSeconds:   warmup.Seconds(),
			IntervalSeconds: o.interval.Seconds(),
			FlowRate:        o.flowRate,
			ChurnRate:       o.churnRate,
			HostileRate:     o.hostileRate,
			TCPRate:         o.tcpRate,
			TCPBurstSeconds: o.tcpBurst.Seconds(),
			TCPEverySeconds: o.tcpEvery.Seconds(),
			Ageing:          ageing.String(),
			MaxEntries:      maxEntries,
			Queues:          o.queues,
			FlatTolerance:   o.tolerance,
			GOGC:            o.gogc,
			LossSlack:       o.lossSlack,
		},
		System: System{System: harness.ThisSystem(), LoadBefore: loadAverage()},
	}
	if r.lab, err = topo.New(labPrefix); err != nil {
		return nil, err
	}
	r.res.Lab = r.lab.Name()
	defer harness.CloseLab(r.lab, &err)
	if err := r.setup(); err != nil {
		return nil, err
	}
	r.progress("lab %s up; load %.2f; kernel vxlan %v, then vtepd %v (warm-up %v)",
		r.lab.Name(), r.res.System.LoadBefore, kernelD, vtepdD, warmup)

	if err := r.kernelUp(); err != nil {
		return nil, fmt.Errorf("kernel phase: %w", err)
	}
	if err := r.prime(); err != nil {
		return nil, fmt.Errorf("kernel phase: %w", err)
	}
	kp, err := r.workload(modeKernel, 0, kernelD, nil)
	if err != nil {
		return nil, fmt.Errorf("kernel phase: %w", err)
	}
	r.res.Phases = append(r.res.Phases, kp)
	if err := r.kernelDown(); err != nil {
		return nil, fmt.Errorf("kernel phase: %w", err)
	}

	if err := r.vtepdUp(); err != nil {
		return nil, fmt.Errorf("vtepd phase: %w", err)
	}
	if err := r.prime(); err != nil {
		return nil, fmt.Errorf("vtepd phase: %w", err)
	}
	reports := make([]HostReport, len(r.hosts))
	for i, h := range r.hosts {
		reports[i].Host = h.Name
	}
	vp, err := r.workload(modeVtepd, 1, vtepdD, func(start, end time.Time) { r.sampleLoop(reports, start, end) })
	if err != nil {
		return nil, fmt.Errorf("vtepd phase: %w", err)
	}
	r.res.Phases = append(r.res.Phases, vp)
	for i := range reports {
		r.finalLook(i, &reports[i], vp)
		reports[i].judge(warmup.Seconds(), o.tolerance)
	}
	r.vtepdDown(reports)
	r.res.Hosts = reports
	r.res.System.LoadAfter = loadAverage()
	r.res.evaluate()
	return &r.res, nil
}

func (r *runner) progress(format string, args ...any) {
	if r.o.progress != nil {
		r.o.progress(fmt.Sprintf("[%4ds] ", int(time.Since(r.start).Seconds())) + fmt.Sprintf(format, args...))
	}
}

func (r *runner) note(format string, args ...any) {
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// preflight checks what a run needs before anything is built.
func (r *runner) preflight() (err error) {
	r.vtepd, r.self, err = harness.Preflight("soak", []string{"ip", "bridge", "iperf3", "ping"}, r.o.vtepd)
	return err
}

// setup builds the hosts, their containers and the attacker, and starts
// an iperf3 server in every container.
func (r *runner) setup() error {
	ageingCS := strconv.Itoa(int(bridgeAgeing / (10 * time.Millisecond)))
	var err error
	r.hosts, r.ctrs, err = harness.AddHosts(r.lab, hostNames, underlayOf, containerOf, underlayMTU,
		func(i int, h *topo.Host, c *topo.Container) error {
			if _, err := h.Exec("ip", "link", "set", "br0", "type", "bridge", "ageing_time", ageingCS); err != nil {
				return err
			}
			return c.SetMAC(containerMAC(i))
		})
	if err != nil {
		return err
	}
	if r.attacker, err = r.lab.AddHost("x", attacker, underlayMTU); err != nil {
		return err
	}
	for _, c := range r.ctrs {
		p, err := c.Start("iperf3", "-s", "-B", c.Addr.Addr().String(), "-p", strconv.Itoa(iperfPort))
		if err != nil {
			return err
		}
		r.iperfs = append(r.iperfs, p)
	}
	return nil
}

// peersOf lists the underlay addresses of every host but hosts[i].
func (r *runner) peersOf(i int) []netip.Addr {
	var peers []netip.Addr
	for j, h := range r.hosts {
		if j != i {
			peers = append(peers, h.Underlay)
		}
	}
	return peers
}

// kernelUp gives every host a kernel vx0 flooding to the other two, with
// vtepd's ageing, and waits until every container reaches every other.
func (r *runner) kernelUp() error {
	for i, h := range r.hosts {
		if err := h.AddKernelVXLAN(vni, vxlanPort, r.peersOf(i)...); err != nil {
			return err
		}
		secs := strconv.Itoa(int(ageing.Seconds()))
		if _, err := h.Exec("ip", "link", "set", "vx0", "type", "vxlan", "ageing", secs); err != nil {
			r.note("kernel vx0 on %s keeps its default ageing: %v", h.Name, err)
		}
	}
	return r.warm(modeKernel)
}

func (r *runner) kernelDown() error {
	for _, h := range r.hosts {
		if _, err := h.Exec("ip", "link", "del", "vx0"); err != nil {
			return err
		}
	}
	return nil
}

// warm waits until every container reaches every other, and has the
// attacker resolve every host's address, so that no datagram of the
// measured run waits for (or is lost to) ARP.
func (r *runner) warm(mode string) error {
	for i, c := range r.ctrs {
		for j, d := range r.ctrs {
			if i == j {
				continue
			}
			if err := c.WaitReachable(d.Addr.Addr(), 15*time.Second); err != nil {
				return fmt.Errorf("%s overlay: %s cannot reach %s: %w", mode, r.hosts[i].Name, r.hosts[j].Name, err)
			}
		}
	}
	for _, h := range r.hosts {
		if _, err := r.attacker.Exec("ping", "-n", "-c", "1", "-W", "2", h.Underlay.String()); err != nil {
			return fmt.Errorf("attacker cannot reach %s: %w", h.Name, err)
		}
	}
	return nil
}

// prime sends an unthrottled TCP burst of primeBurst over every ordered
// pair of containers, three at a time so that no iperf3 server gets two
// clients, before the traffic of a phase starts.
//
// vtepd preallocates its batch buffers, and a page of them only becomes
// resident the first time a batch is large enough to reach it; without
// this, RSS creeps up during the first bursts of the run, a step at a time,
// and a short run reads that as growth. After it, every pipeline has seen
// batches as large as it will see.
func (r *runner) prime() error {
	n := len(r.ctrs)
	for shift := 1; shift < n; shift++ {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = r.iperf(i, (i+shift)%n, primeBurst, "0", primeStreams)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("priming TCP burst: %w", err)
		}
	}
	return nil
}

// vtepdConfig renders the configuration of vtepd on host i.
func (r *runner) vtepdConfig(i int) string {
	var b strings.Builder
	b.WriteString("state_dir = \"\"\n")
	if r.o.queues > 0 {
		fmt.Fprintf(&b, "queues = %d\n", r.o.queues)
	}
	b.WriteString("\n[admin]\nsocket = \"\"\n")
	fmt.Fprintf(&b, "\n[underlay]\nlocal = %q\nport = %d\n", r.hosts[i].Underlay, vxlanPort)
	fmt.Fprintf(&b, "\n[metrics]\nlisten = %q\npprof = true\n", metricsAddr)
	b.WriteString("\n[limits]\nlearn_rate = 0\n")
	fmt.Fprintf(&b, "\n[[network]]\nname = \"soak\"\nvni = %d\nbridge = \"br0\"\n", vni)
	var peers []string
	for _, p := range r.peersOf(i) {
		peers = append(peers, strconv.Quote(p.String()))
	}
	fmt.Fprintf(&b, "peers = [%s]\n", strings.Join(peers, ", "))
	fmt.Fprintf(&b, "ageing = %q\nmax_entries = %d\naccept_from = [%q]\n", ageing, maxEntries, acceptFrom)
	return b.String()
}

// vtepdUp starts vtepd on every host, waits for /healthz and for the
// overlay.
func (r *runner) vtepdUp() error {
	var err error
	r.vtepds, err = harness.StartVtepds(r.hosts, "vtepsoak-", metricsAddr, r.vtepdConfig, func(path string) (string, []string) {
		bin, args := r.vtepd, []string{"-config", path}
		if r.o.gogc > 0 {
			// env(1) execs vtepd, so the PID is still vtepd's.
			bin, args = "env", append([]string{"GOGC=" + strconv.Itoa(r.o.gogc), r.vtepd}, args...)
		}
		return bin, args
	})
	if err != nil {
		return err
	}
	return r.warm(modeVtepd)
}

// vtepdDown stops every vtepd with SIGTERM: it must exit 0, and must not
// have written a panic or a race report.
func (r *runner) vtepdDown(reports []HostReport) {
	for i, p := range r.vtepds {
		rep := &reports[i]
		if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("SIGTERM: %v", err))
		}
		code, err := p.Wait(10 * time.Second)
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, err.Error())
		case code != 0:
			rep.Problems = append(rep.Problems, fmt.Sprintf("exit status %d", code))
		}
		out := p.Output()
		for _, bad := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if strings.Contains(out, bad) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("output has %q:\n%s", bad, tail([]byte(out), 3000)))
			}
		}
		if n := strings.Count(out, "level=ERROR"); n > 0 {
			r.note("vtepd on %s logged %d errors; last lines:\n%s", r.hosts[i].Name, n, tail([]byte(out), 1000))
		}
	}
	r.vtepds = nil
}

// workload runs the legitimate flows, the churn, the attacker and the
// TCP bursts for d, calling during (if not nil) with the traffic's start
// and end while they run, and returns what they did.
func (r *runner) workload(mode string, phase int, d time.Duration, during func(start, end time.Time)) (Phase, error) {
	p := Phase{Mode: mode, Seconds: d.Seconds()}
	start := time.Now().Add(lead)
	end := start.Add(d)
	common := []string{"-start", strconv.FormatInt(start.UnixNano(), 10), "-duration", d.String()}

	var addrs []string
	for _, c := range r.ctrs {
		addrs = append(addrs, c.Addr.Addr().String())
	}
	var flows, churns []*topo.Proc
	for i, c := range r.ctrs {
		f, err := c.Start(r.self, append([]string{cmdFlow, "-index", strconv.Itoa(i), "-addrs", strings.Join(addrs, ","),
			"-port", strconv.Itoa(flowPort), "-rate", strconv.Itoa(r.o.flowRate), "-linger", linger.String()}, common...)...)
		if err != nil {
			return p, err
		}
		flows = append(flows, f)
		ch, err := c.Start(r.self, append([]string{cmdChurn, "-index", strconv.Itoa(i), "-hosts", strconv.Itoa(len(r.ctrs)),
			"-phase", strconv.Itoa(phase), "-per-epoch", strconv.Itoa(r.o.churnRate),
			"-move-every", strconv.Itoa(churnMoveEvery), "-epoch", "1s"}, common...)...)
		if err != nil {
			return p, err
		}
		churns = append(churns, ch)
	}
	var targets, macs []string
	for i, h := range r.hosts {
		targets = append(targets, h.Underlay.String())
		macs = append(macs, containerMAC(i).String())
	}
	hostile, err := r.attacker.Start(r.self, append([]string{cmdHostile, "-src", attacker.Addr().String(),
		"-targets", strings.Join(targets, ","), "-dst-macs", strings.Join(macs, ","),
		"-port", strconv.Itoa(vxlanPort), "-vni", strconv.Itoa(vni), "-rate", strconv.Itoa(r.o.hostileRate),
		"-seed", strconv.FormatInt(start.UnixNano(), 10)}, common...)...)
	if err != nil {
		return p, err
	}
	all := append(append(append([]*topo.Proc(nil), flows...), churns...), hostile)
	for _, proc := range all {
		if !harness.WaitReady(proc, harness.ReadyLine, start) {
			return p, fmt.Errorf("%v not ready before the start time:\n%s", proc, tail([]byte(proc.Output()), 1000))
		}
	}
	r.progress("%s: traffic for %v", mode, d)

	var wg sync.WaitGroup
	wg.Go(func() { p.TCP = r.tcpBursts(start, end) })
	if during != nil {
		during(start, end)
	}
	wg.Wait()

	var errs []error
	frs := make([]flowResult, len(flows))
	for i, f := range flows {
		if err := waitJSON(f, time.Until(end)+linger+slack, &frs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range churns {
		var cr churnResult
		if err := waitJSON(c, time.Until(end)+slack, &cr); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Churn.Appeared += cr.Appeared
		p.Churn.Moved += cr.Moved
		p.Churn.Errors += cr.Errors
		p.Churn.SkippedEpochs += cr.SkippedEpochs
	}
	var hr hostileResult
	if err := waitJSON(hostile, time.Until(end)+slack, &hr); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	p.HostileSent = map[string]map[string]uint64{}
	for i, h := range r.hosts {
		p.HostileSent[h.Name] = hr.Sent[targets[i]]
	}
	p.HostileErrors = hr.Errors
	p.HostileSkipped = hr.Skipped
	for i, fr := range frs {
		p.RcvbufErrors += fr.RcvbufErrors
		p.Skipped += fr.Skipped
		p.MaxStall = max(p.MaxStall, fr.MaxStall)
		p.Duplicates += fr.Duplicates
		if fr.Foreign > 0 {
			r.note("%s: container %s received %d foreign datagrams on the flow port", mode, r.hosts[i].Name, fr.Foreign)
		}
		for j, to := range frs {
			if j == i {
				continue
			}
			pair := FlowPair{From: r.hosts[i].Name, To: r.hosts[j].Name, Attempted: fr.Attempted[j], Received: to.Received[i]}
			p.Flows = append(p.Flows, pair)
			p.Attempted += pair.Attempted
			p.Received += pair.Received
			p.SendErrors += fr.SendErrors[j]
		}
	}
	p.Lost = p.Attempted - min(p.Received, p.Attempted)
	p.LossRate = lossRate(p.Lost, p.Attempted)
	return p, nil
}

// waitJSON waits for a workload process and decodes its report.
func waitJSON(p *topo.Proc, timeout time.Duration, v any) error {
	code, err := harness.Wait(p, timeout)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited with status %d", p, code)
	}
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, tail([]byte(p.Output()), 1000))
	}
	if err := harness.LastJSONLine([]byte(p.Output()), v); err != nil {
		return fmt.Errorf("%v: %w", p, err)
	}
	return nil
}

// tcpBursts runs an iperf3 client every tcpEvery from start until end,
// each between the next ordered pair of containers, at tcpRate for
// tcpBurst.
func (r *runner) tcpBursts(start, end time.Time) TCPSummary {
	var s TCPSummary
	if r.o.tcpEvery <= 0 {
		return s
	}
	secs := int(math.Ceil(r.o.tcpBurst.Seconds()))
	var pairs [][2]int
	for i := range r.ctrs {
		for j := range r.ctrs {
			if i != j {
				pairs = append(pairs, [2]int{i, j})
			}
		}
	}
	var bits float64
	for k := 0; ; k++ {
		at := start.Add(time.Second + time.Duration(k)*r.o.tcpEvery)
		if at.Add(time.Duration(secs)*time.Second + time.Second).After(end) {
			break
		}
		sleepUntil(at)
		from, to := pairs[k%len(pairs)][0], pairs[k%len(pairs)][1]
		s.Bursts++
		res, err := r.iperf(from, to, secs, r.o.tcpRate, 1)
		if err != nil {
			s.Failures = append(s.Failures, fmt.Sprintf("%s->%s at %.0fs: %v", r.hosts[from].Name, r.hosts[to].Name,
				at.Sub(start).Seconds(), firstLine(err.Error())))
			continue
		}
		s.Completed++
		s.Bytes += res.Bytes
		s.Retransmits += res.Retransmits
		bits += res.BitsPerSecond
	}
	if s.Completed > 0 {
		s.MeanMbps = bits / float64(s.Completed) / 1e6
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// iperfResult is what the soak keeps of an iperf3 -J report.
type iperfResult = harness.Iperf

// iperf runs an iperf3 client in container from against the server in
// container to: secs seconds, streams streams, rate as for -b ("0": as
// fast as it goes).
func (r *runner) iperf(from, to, secs int, rate string, streams int) (iperfResult, error) {
	p, err := r.ctrs[from].Start("iperf3", "-c", r.ctrs[to].Addr.Addr().String(), "-p", strconv.Itoa(iperfPort),
		"-t", strconv.Itoa(secs), "-b", rate, "-P", strconv.Itoa(streams), "-J", "--connect-timeout", "10000")
	if err != nil {
		return iperfResult{}, err
	}
	code, err := p.Wait(time.Duration(secs)*time.Second + slack)
	if err != nil {
		_ = p.Signal(syscall.SIGKILL)
		return iperfResult{}, err
	}
	out := []byte(p.Output())
	res, err := parseIperf(out)
	if err == nil && code != 0 {
		err = fmt.Errorf("iperf3 exited with status %d: %s", code, tail(out, 300))
	}
	return res, err
}

// parseIperf reads an iperf3 -J report, which may follow other output.
func parseIperf(out []byte) (iperfResult, error) { return harness.ParseIperf(out) }
