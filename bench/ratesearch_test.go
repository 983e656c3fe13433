package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// synthPath is a data path with a known loss curve. Below ndr it carries
// everything, up to pdr it loses 0.2%, and above pdr it delivers less the
// harder it is pushed: from 98% of pdr at pdr down to floor at senderMax,
// the sender's own limit. In full-length trials its thresholds are
// finalScale times the short trials' (a long trial meets the hiccups a
// short one misses).
type synthPath struct {
	ndr, pdr, senderMax, floor float64 // kpps
	finalScale                 float64 // 0 means 1
	specs                      []trialSpec
}

func (p *synthPath) measure(spec trialSpec) (trial, error) {
	p.specs = append(p.specs, spec)
	ndr, pdr := p.ndr, p.pdr
	if spec.Final && p.finalScale > 0 {
		ndr, pdr = ndr*p.finalScale, pdr*p.finalScale
	}
	offered := spec.TargetKpps
	if offered <= 0 || offered > p.senderMax {
		offered = p.senderMax
	}
	secs := spec.Duration.Seconds()
	sent := uint64(math.Round(offered * 1e3 * secs))
	var received uint64
	switch {
	case offered <= ndr:
		received = sent
	case offered <= pdr:
		received = sent - uint64(math.Ceil(0.002*float64(sent)))
	default:
		top := 0.98 * pdr
		delivered := top - (top-p.floor)*(offered-pdr)/(p.senderMax-pdr)
		received = uint64(delivered * 1e3 * secs)
	}
	return newTrial(sent, received, secs), nil
}

func TestRateSearch(t *testing.T) {
	cfg := defaultSearch(time.Second, 5*time.Second)
	for _, tc := range []struct {
		name               string
		path               synthPath
		ndrLo, ndrHi       float64 // where NDR must land
		pdrLo, pdrHi       float64
		confirmed          bool // NDR and PDR
		senderLimited      bool
		retentionLo, retHi float64
	}{
		{name: "livelock", path: synthPath{ndr: 60, pdr: 66, senderMax: 150, floor: 30},
			ndrLo: 60 * 0.95, ndrHi: 60, pdrLo: 66 * 0.95, pdrHi: 66, confirmed: true, retentionLo: 30 / 66.0, retHi: 30/(0.98*66) + 0.01},
		{name: "kernel-like", path: synthPath{ndr: 80, pdr: 85, senderMax: 100, floor: 82},
			ndrLo: 80 * 0.95, ndrHi: 80, pdrLo: 85 * 0.95, pdrHi: 85, confirmed: true, retentionLo: 0.95, retHi: 0.99},
		{name: "low NDR, below every sweep point", path: synthPath{ndr: 5, pdr: 90, senderMax: 120, floor: 88},
			ndrLo: 5 * 0.95, ndrHi: 5, pdrLo: 90 * 0.95, pdrHi: 90, confirmed: true, retentionLo: 0.97, retHi: 1},
		{name: "sender-limited", path: synthPath{ndr: 200, pdr: 200, senderMax: 150, floor: 150},
			ndrLo: 150, ndrHi: 150, pdrLo: 150, pdrHi: 150, confirmed: true, senderLimited: true, retentionLo: 1, retHi: 1},
		{name: "full-length trials lose more", path: synthPath{ndr: 60, pdr: 66, senderMax: 150, floor: 30, finalScale: 0.85},
			ndrLo: 60 * 0.85 * 0.8, ndrHi: 60 * 0.85, pdrLo: 66 * 0.85 * 0.8, pdrHi: 66 * 0.85, confirmed: true, retentionLo: 30 / 66.0, retHi: 30/(0.98*66*0.85) + 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			run, err := runSearch(cfg, p.measure)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name   string
				b      rateBound
				lo, hi float64
				goal   float64
			}{{"NDR", run.NDR, tc.ndrLo, tc.ndrHi, 0}, {"PDR", run.PDR, tc.pdrLo, tc.pdrHi, cfg.PDRLoss}} {
				if c.b.Kpps < c.lo-1e-9 || c.b.Kpps > c.hi+1e-9 {
					t.Errorf("%s = %.2f kpps, want in [%.2f, %.2f]; trials:\n%s", c.name, c.b.Kpps, c.lo, c.hi, trialsText(run.Trials))
				}
				if c.b.Confirmed != tc.confirmed || c.b.SenderLimited != tc.senderLimited {
					t.Errorf("%s: confirmed %v, sender-limited %v; want %v, %v", c.name, c.b.Confirmed, c.b.SenderLimited, tc.confirmed, tc.senderLimited)
				}
				if c.b.LossGoal != c.goal {
					t.Errorf("%s: loss goal %v, want %v", c.name, c.b.LossGoal, c.goal)
				}
				// The confirming trial: full length, at Kpps, met the goal.
				found := false
				for _, tr := range run.Trials {
					found = found || (tr.Final && tr.rate() == c.b.Kpps && tr.meets(c.goal))
				}
				if c.b.Confirmed && !found {
					t.Errorf("%s: no full-length trial at %.2f kpps met the goal", c.name, c.b.Kpps)
				}
				// The interval: within the precision, or within the
				// confirmation's last step down (20%) when full-length
				// trials missed where short ones met the goal.
				width := cfg.Precision
				if p.finalScale != 0 {
					width = 0.2
				}
				if !tc.senderLimited && (c.b.UpperKpps <= c.b.Kpps || (c.b.UpperKpps-c.b.Kpps)/c.b.UpperKpps > width+1e-9) {
					t.Errorf("%s: upper bound %.2f, want above %.2f by at most %.0f%%", c.name, c.b.UpperKpps, c.b.Kpps, 100*width)
				}
			}
			if run.NDR.Kpps > run.PDR.Kpps {
				t.Errorf("NDR %.2f above PDR %.2f", run.NDR.Kpps, run.PDR.Kpps)
			}
			if run.SenderMaxKpps != p.senderMax || run.MaxOfferedKpps != p.senderMax {
				t.Errorf("sender's maximum %.2f short, %.2f full length; want %.2f", run.SenderMaxKpps, run.MaxOfferedKpps, p.senderMax)
			}
			if run.Retention < tc.retentionLo-1e-9 || run.Retention > tc.retHi+1e-9 {
				t.Errorf("retention %.3f, want in [%.3f, %.3f] (peak %.2f, at max %.2f)", run.Retention, tc.retentionLo, tc.retHi, run.PeakDeliveredKpps, run.MaxDeliveredKpps)
			}
			// The budget: the sweep, at most MaxShort bisection steps per
			// goal, and at most MaxFinal full-length trials per goal plus
			// the maximum's; every trial of the length its kind asks for.
			var short, final int
			for i, s := range p.specs {
				want := cfg.Short
				if s.Final {
					want, final = cfg.Final, final+1
				} else {
					short++
				}
				if s.Duration != want || s.Final != run.Trials[i].Final || s.Purpose != run.Trials[i].Purpose {
					t.Errorf("trial %d: %+v, recorded as %+v", i, s, run.Trials[i])
				}
			}
			t.Logf("%d short, %d full-length trials; NDR %+v, PDR %+v, retention %.3f", short, final, run.NDR, run.PDR, run.Retention)
			if short > 1+len(cfg.Sweep)+2*cfg.MaxShort || final > 2*cfg.MaxFinal+1 {
				t.Errorf("%d short and %d full-length trials: over budget", short, final)
			}
			if short > 1+len(cfg.Sweep)+14 {
				t.Errorf("%d short trials: the bisection should take about 7 for both goals at 5%%:\n%s", short, trialsText(run.Trials))
			}
		})
	}
}

// A path that never delivers without loss has no NDR, and says so, while
// its PDR is found as usual.
func TestRateSearchNoNDR(t *testing.T) {
	cfg := defaultSearch(time.Second, 5*time.Second)
	measure := func(spec trialSpec) (trial, error) {
		offered := spec.TargetKpps
		if offered <= 0 {
			offered = 100
		}
		sent := uint64(offered * 1e3)
		lost := sent / 1000 // 0.1% everywhere ...
		if offered > 70 {
			lost = sent / 10 // ... and 10% above 70 kpps
		}
		return newTrial(sent, sent-lost, 1), nil
	}
	run, err := runSearch(cfg, measure)
	if err != nil {
		t.Fatal(err)
	}
	if run.NDR.Kpps != 0 || run.NDR.Confirmed {
		t.Errorf("NDR = %+v, want none", run.NDR)
	}
	if run.PDR.Kpps < 70*0.95 || run.PDR.Kpps > 70 || !run.PDR.Confirmed {
		t.Errorf("PDR = %+v, want confirmed within 5%% below 70 kpps", run.PDR)
	}
}

// A long trial that keeps failing leaves no rate, only the short trials'
// answer and the lowest full-length rate that missed, after MaxFinal
// attempts.
func TestRateSearchUnconfirmed(t *testing.T) {
	cfg := defaultSearch(time.Second, 5*time.Second)
	p := synthPath{ndr: 60, pdr: 66, senderMax: 150, floor: 30, finalScale: 0.1}
	run, err := runSearch(cfg, p.measure)
	if err != nil {
		t.Fatal(err)
	}
	var finals int
	lowest := math.Inf(1)
	for _, tr := range run.Trials {
		if tr.Final {
			finals++
			lowest = math.Min(lowest, tr.rate())
		}
	}
	for name, b := range map[string]rateBound{"NDR": run.NDR, "PDR": run.PDR} {
		if b.Confirmed || b.Kpps != 0 || b.SearchKpps < 57 || b.SearchKpps > 66 || b.UpperKpps != lowest {
			t.Errorf("%s = %+v, want unconfirmed, no rate, the short trials' answer and %.2f as upper bound", name, b, lowest)
		}
	}
	if finals > 2*cfg.MaxFinal+1 {
		t.Errorf("%d full-length trials, want at most %d", finals, 2*cfg.MaxFinal+1)
	}
}

func TestRateSearchError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, err := runSearch(defaultSearch(time.Second, 5*time.Second), func(spec trialSpec) (trial, error) {
		if n++; n == 3 {
			return trial{}, boom
		}
		return newTrial(1000, 1000, 1), nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("runSearch error = %v, want one wrapping the trial's", err)
	}
}

func TestDropDelta(t *testing.T) {
	before := map[string]uint64{"a": 5, "b": 7, "c": 9}
	after := map[string]uint64{"a": 5, "b": 10, "c": 8, "new": 4}
	if diff := cmp.Diff(map[string]uint64{"b": 3}, dropDelta(before, after)); diff != "" {
		t.Errorf("dropDelta (-want +got):\n%s", diff)
	}
	if d := dropDelta(before, before); d != nil {
		t.Errorf("dropDelta of no change = %v, want nil", d)
	}
}

func TestRateNotes(t *testing.T) {
	rs := &RateSearch{SearchTrial: "1s", FinalTrial: "5s", Runs: []rateRun{
		{Mode: modeKernel, Flows: 1, MaxOfferedKpps: 88.2,
			NDR: rateBound{Kpps: 88.2, Confirmed: true, SenderLimited: true}, PDR: rateBound{LossGoal: 0.005, Kpps: 88.2, Confirmed: true, SenderLimited: true}},
		{Mode: modeVtepd, Flows: 4, NDR: rateBound{UpperKpps: 1}, PDR: rateBound{LossGoal: 0.005, SearchKpps: 40, UpperKpps: 36},
			Trials: []trial{{Final: true, TargetKpps: 40, OfferedKpps: 40, Sent: 200, Received: 100}, {Final: true, TargetKpps: 36, OfferedKpps: 36, Sent: 200, Received: 190}}},
	}}
	want := []string{
		"kernel, 1 flow: NDR and PDR are the sender's maximum (88.2 kpps): the path may carry more",
		"vtepd, 4 flows: no NDR: even 1.0 kpps lost more than allowed",
		"vtepd, 4 flows: PDR not confirmed: 40.0 kpps held in 1s trials, but every 5s trial down to 36.0 kpps lost more",
		"the kernel's vxlan runs the whole path in the sending thread's own system call",
	}
	notes := rateNotes(rs)
	if len(notes) != len(want) {
		t.Fatalf("notes:\n%s", strings.Join(notes, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(notes[i], w) {
			t.Errorf("note %d: %q, want %q", i, notes[i], w)
		}
	}
	for b, want := range map[rateBound]string{
		{}: "-", {Kpps: 88.2, SenderLimited: true, Confirmed: true}: "≥88.2", {SearchKpps: 40, UpperKpps: 36}: "<36.0",
		{Kpps: 36.94, Confirmed: true}: "36.9",
	} {
		if got := boundCell(b); got != want {
			t.Errorf("boundCell(%+v) = %q, want %q", b, got, want)
		}
	}
}

func TestRetention(t *testing.T) {
	trials := []trial{
		{DeliveredKpps: 20}, {DeliveredKpps: 69}, {DeliveredKpps: 55}, {DeliveredKpps: 30},
	}
	max := trial{DeliveredKpps: 25.53}
	peak, r := retention(trials, max)
	if peak != 69 || math.Abs(r-0.37) > 1e-9 {
		t.Errorf("retention = %v, %v; want 69, 0.37", peak, r)
	}
	if peak, r := retention(nil, trial{DeliveredKpps: 40}); peak != 40 || r != 1 {
		t.Errorf("retention of the maximum alone = %v, %v; want 40, 1", peak, r)
	}
	if peak, r := retention(nil, trial{}); peak != 0 || r != 0 {
		t.Errorf("retention of nothing = %v, %v; want 0, 0", peak, r)
	}
}

func TestTrial(t *testing.T) {
	tr := newTrial(100000, 99500, 2)
	if tr.OfferedKpps != 50 || tr.DeliveredKpps != 49.75 || math.Abs(tr.Loss-0.005) > 1e-12 {
		t.Errorf("newTrial = %+v", tr)
	}
	if !tr.meets(0.005) || tr.meets(0.004) || tr.meets(0) {
		t.Errorf("0.5%% loss: meets(0.005) %v, meets(0.004) %v, meets(0) %v", tr.meets(0.005), tr.meets(0.004), tr.meets(0))
	}
	if z := newTrial(1000, 1000, 1); !z.meets(0) || z.Loss != 0 {
		t.Errorf("no loss: %+v", z)
	}
	if none := newTrial(0, 0, 1); none.meets(0.5) {
		t.Errorf("a trial that sent nothing met a goal")
	}
	for _, c := range []struct {
		target, offered, want float64
	}{{100, 99.9, 99.9}, {100, 100.2, 100}, {0, 150, 150}} {
		if got := (trial{TargetKpps: c.target, OfferedKpps: c.offered}).rate(); got != c.want {
			t.Errorf("rate of target %v offered %v = %v, want %v", c.target, c.offered, got, c.want)
		}
	}
}

// trialsText lists trials for failure messages.
func trialsText(ts []trial) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%-12s %s: offered %.2f, delivered %.2f kpps, loss %.3f%%\n",
			t.Purpose, kppsText(t.TargetKpps), t.OfferedKpps, t.DeliveredKpps, 100*t.Loss)
	}
	return b.String()
}

// syntheticRuns are searches of a kernel-like and a livelocking path, 1
// and 4 flows, as a run of the harness would record them.
func syntheticRuns(t *testing.T) []rateRun {
	t.Helper()
	cfg := defaultSearch(time.Second, 5*time.Second)
	var runs []rateRun
	for _, c := range []struct {
		mode  string
		flows int
		path  synthPath
	}{
		{modeKernel, 1, synthPath{ndr: 78, pdr: 82, senderMax: 260, floor: 66}},
		{modeVtepd, 1, synthPath{ndr: 55, pdr: 61, senderMax: 250, floor: 48}},
		{modeKernel, 4, synthPath{ndr: 120, pdr: 131, senderMax: 420, floor: 105}},
		{modeVtepd, 4, synthPath{ndr: 52, pdr: 60, senderMax: 400, floor: 25}},
	} {
		run, err := runSearch(cfg, c.path.measure)
		if err != nil {
			t.Fatal(err)
		}
		run.Mode, run.Flows = c.mode, c.flows
		runs = append(runs, *run)
	}
	return runs
}

func TestRateReport(t *testing.T) {
	runs := syntheticRuns(t)
	// Where vtepd's loss at 4 flows went.
	for i, tr := range runs[3].Trials {
		if tr.Final && tr.TargetKpps == 0 {
			lost := tr.lost()
			runs[3].Trials[i].Drops = map[string]uint64{"b: udp rcvbuf_errors": lost * 3 / 4, "a: vtep0 tx_dropped": lost / 4, "a-c1: eth0 tx_dropped": 1}
		}
	}
	s := samples{}
	for i := range runs {
		addRateSamples(s, &runs[i])
	}
	s.add("udp64_rx_kpps", modeKernel, 266)
	s.add("udp64_rx_kpps", modeVtepd, 202)
	s.add("tcp1_gbps", modeKernel, 30)
	s.add("tcp1_gbps", modeVtepd, 10)
	rs := newRateSearch(defaultSearch(time.Second, 5*time.Second), 64, runs)
	r := &Results{
		Settings:   Settings{Reps: 1, Duration: "5s", Workloads: workloads},
		System:     System{Kernel: "6.18", CPUs: 2},
		Metrics:    summarize(s),
		RateSearch: rs,
		Notes:      rateNotes(rs),
	}
	var keys []string
	for _, m := range r.Metrics {
		keys = append(keys, m.Key)
	}
	want := []string{"tcp1_gbps", "udp64_rx_kpps",
		"udp64_sock_ndr_1flow_kpps", "udp64_sock_pdr_1flow_kpps", "udp64_sock_retention_1flow",
		"udp64_sock_ndr_4flow_kpps", "udp64_sock_pdr_4flow_kpps", "udp64_sock_retention_4flow"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	for _, m := range r.Metrics {
		if m.Key == "udp64_sock_pdr_4flow_kpps" && (m.Ratio == nil || math.Abs(*m.Ratio - *m.Vtepd / *m.Kernel) > 1e-3 || *m.Ratio > 0.5) {
			t.Errorf("PDR, 4 flows: %+v, want vtepd/kernel below 0.5", m)
		}
	}
	// Everything confirmed, nothing limited by the sender: a note per
	// run on its loss at the maximum, and no other.
	if len(r.Notes) != 4 || !strings.Contains(r.Notes[0], "kernel, 1 flow, at the sender's maximum (260 kpps offered, 970k lost in 5s): no drop counter") ||
		!strings.Contains(r.Notes[3], "vtepd, 4 flows, at the sender's maximum (400 kpps offered, 1.88M lost in 5s): "+
			"b: udp rcvbuf_errors 1.41M (75%), a: vtep0 tx_dropped 469k (25%), a-c1: eth0 tx_dropped 1 (0%)") {
		t.Errorf("notes:\n%s", strings.Join(r.Notes, "\n"))
	}

	var table bytes.Buffer
	if err := writeTable(&table, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"64 B UDP sockets, PDR (0.5% loss), 4 flows", "64 B UDP overload retention, 1 flow",
		"NDR (no loss) and PDR (0.5% loss) bisected with 1s trials to 5%, confirmed at 5s", "retention"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := writeJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.RateSearch == nil || len(back.RateSearch.Runs) != 4 || back.RateSearch.Runs[3].PDR != rs.Runs[3].PDR ||
		len(back.RateSearch.Runs[0].Trials) != len(runs[0].Trials) {
		t.Errorf("rate search did not round-trip through the JSON:\n%.2000s", js.String())
	}
	for _, format := range []string{"svg", "png"} {
		for name, render := range map[string]func() (io.WriterTo, error){
			"ratios":   func() (io.WriterTo, error) { return renderChart(r, format) },
			"overload": func() (io.WriterTo, error) { return renderOverloadChart(rs, format) },
		} {
			chart, err := render()
			if err != nil {
				t.Fatalf("%s chart: %v", name, err)
			}
			var img bytes.Buffer
			if _, err := chart.WriteTo(&img); err != nil {
				t.Fatal(err)
			}
			if format == "svg" && !bytes.Contains(img.Bytes(), []byte("<svg")) {
				t.Errorf("%s chart is not SVG: %.100s", name, img.String())
			}
			// BENCH_CHARTS=dir keeps the charts, to look at.
			if dir := os.Getenv("BENCH_CHARTS"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, name+"."+format), img.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := renderOverloadChart(&RateSearch{}, "svg"); err == nil {
		t.Errorf("an overload chart of no search rendered")
	}
}
