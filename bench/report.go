package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vtepd/vtepd/internal/harness"
)

// The two data paths under comparison.
const (
	modeKernel = "kernel"
	modeVtepd  = "vtepd"
)

// metricDef is one figure of the report.
type metricDef struct {
	Key      string // JSON name
	Label    string // table row
	Short    string // chart axis label
	Unit     string
	Workload string // the -only name that produces it
	Better   string // "higher" or "lower"; "" for context figures
	Format   string // for the table
	// VtepdOnly figures have no kernel counterpart, hence no ratio.
	VtepdOnly bool
}

// metricDefs is every figure, in table order.
var metricDefs = []metricDef{
	{Key: "tcp1_gbps", Label: "TCP, 1 stream", Short: "TCP 1 stream", Unit: "Gbit/s", Workload: "tcp1", Better: "higher", Format: "%.2f"},
	{Key: "tcp4_gbps", Label: "TCP, 4 streams", Short: "TCP 4 streams", Unit: "Gbit/s", Workload: "tcp4", Better: "higher", Format: "%.2f"},
	{Key: "udp64_rx_kpps", Label: "64 B UDP received", Short: "64 B UDP pps", Unit: "kpps", Workload: "pps", Better: "higher", Format: "%.0f"},
	{Key: "udp64_offered_kpps", Label: "64 B UDP offered", Unit: "kpps", Workload: "pps", Format: "%.0f"},
	{Key: "rtt_p50_us", Label: "ping RTT p50", Short: "RTT p50", Unit: "µs", Workload: "lat", Better: "lower", Format: "%.0f"},
	{Key: "rtt_p99_us", Label: "ping RTT p99", Short: "RTT p99", Unit: "µs", Workload: "lat", Better: "lower", Format: "%.0f"},
	{Key: "cpu_vtepd_s_per_gb", Label: "vtepd CPU (TCP 1 stream)", Unit: "s/GB", Workload: "tcp1", Format: "%.2f", VtepdOnly: true},
	{Key: "cpu_machine_s_per_gb", Label: "machine CPU (TCP 1 stream)", Short: "machine CPU/GB", Unit: "s/GB", Workload: "tcp1", Better: "lower", Format: "%.2f"},
}

// workloads are the -only names, in the order each mode runs them; the
// rate search (wlRateSearch) runs after the repetitions, once.
var workloads = []string{"lat", "tcp1", "tcp4", "pps", wlRateSearch}

const wlRateSearch = "ratesearch"

// wlIdle is the overlay up with no traffic for -duration: what vtepd costs
// doing nothing (issue #12: "an idle vtepd uses no CPU"). It runs only
// when -only names it, first in each mode.
const wlIdle = "idle"

// The rate search's figures, one of each per flow count: their keys are
// rateKey(kind, flows), their definitions rateDefOf's.
const (
	rateNDR       = "ndr"
	ratePDR       = "pdr"
	rateRetention = "retention"
)

var rateKinds = []string{rateNDR, ratePDR, rateRetention}

// rateKey is the metric key of one rate-search figure: udp64_sock_pdr_4flow_kpps,
// udp64_sock_retention_1flow.
func rateKey(kind string, flows int) string {
	if kind == rateRetention {
		return fmt.Sprintf("udp64_sock_%s_%dflow", kind, flows)
	}
	return fmt.Sprintf("udp64_sock_%s_%dflow_kpps", kind, flows)
}

// rateDefOf returns the definition of a rate-search key, and its flow
// count and kind's rank for ordering.
func rateDefOf(key string) (d metricDef, flows, rank int, ok bool) {
	rest, found := strings.CutPrefix(key, "udp64_sock_")
	if !found {
		return d, 0, 0, false
	}
	for rank, kind := range rateKinds {
		after, found := strings.CutPrefix(rest, kind+"_")
		if !found {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(after, "_kpps"), "flow"))
		if err != nil || n < 1 || rateKey(kind, n) != key {
			return d, 0, 0, false
		}
		fl := flowsWord(n)
		d = metricDef{Key: key, Unit: "kpps", Workload: wlRateSearch, Better: "higher", Format: "%.1f"}
		switch kind {
		case rateNDR:
			d.Label = fmt.Sprintf("64 B UDP sockets, NDR, %d %s", n, fl)
		case ratePDR:
			d.Label = fmt.Sprintf("64 B UDP sockets, PDR (0.5%% loss), %d %s", n, fl)
			d.Short = fmt.Sprintf("64 B PDR %d %s", n, fl)
		case rateRetention:
			d.Label = fmt.Sprintf("64 B UDP overload retention, %d %s", n, fl)
			d.Short = fmt.Sprintf("overload %d %s", n, fl)
			d.Unit, d.Format = "ratio", "%.2f"
		}
		return d, n, rank, true
	}
	return d, 0, 0, false
}

// flowsWord is "flow" or "flows".
func flowsWord(n int) string {
	if n == 1 {
		return "flow"
	}
	return "flows"
}

// addRateSamples records the figures of one search; an NDR or PDR that
// no full-length trial confirmed has none.
func addRateSamples(s samples, run *rateRun) {
	for kind, b := range map[string]rateBound{rateNDR: run.NDR, ratePDR: run.PDR} {
		if b.Confirmed {
			s.add(rateKey(kind, run.Flows), run.Mode, b.Kpps)
		}
	}
	s.add(rateKey(rateRetention, run.Flows), run.Mode, run.Retention)
}

// samples holds every per-repetition value: samples[metric][mode].
type samples map[string]map[string][]float64

func (s samples) add(metric, mode string, v float64) {
	if s[metric] == nil {
		s[metric] = map[string][]float64{}
	}
	s[metric][mode] = append(s[metric][mode], v)
}

// Results is the JSON document written to the output directory.
type Results struct {
	Time     time.Time      `json:"time"`
	Settings Settings       `json:"settings"`
	System   System         `json:"system"`
	Metrics  []MetricResult `json:"metrics"`
	// GeneratorKpps is the small-frame generator's own ceiling: its rate
	// with no overlay up, frames dropped at the sending host's bridge.
	GeneratorKpps float64 `json:"generator_ceiling_kpps,omitempty"`
	// RateSearch is the offered-rate search of the small-frame workload
	// with socket sender and receiver, every trial included.
	RateSearch *RateSearch `json:"rate_search,omitempty"`
	// BusyBefore and BusyAfter are the machine's busy percentage over one
	// second with nothing of the harness running, before and after.
	BusyBefore float64  `json:"background_busy_pct_before"`
	BusyAfter  float64  `json:"background_busy_pct_after"`
	Notes      []string `json:"notes,omitempty"`
}

// Settings are the flags the run was made with.
type Settings struct {
	Reps      int      `json:"reps"`
	Duration  string   `json:"duration"`
	Workloads []string `json:"workloads"`
	Queues    int      `json:"vtepd_queues"` // 0: vtepd's default (NumCPU)
	UDPGSO    bool     `json:"vtepd_udp_gso,omitempty"`
	BusyPoll  string   `json:"vtepd_busy_poll,omitempty"`
	Flows     int      `json:"udp_flows"`
}

// RateSearch is how the rate search ran and what each search found.
type RateSearch struct {
	PayloadBytes int       `json:"payload_bytes"`
	SearchTrial  string    `json:"search_trial"` // length of the bisection's trials
	FinalTrial   string    `json:"final_trial"`  // of the confirmations and the maximum
	Precision    float64   `json:"precision"`
	PDRLoss      float64   `json:"pdr_loss"`
	Sweep        []float64 `json:"sweep_fractions"` // of the sender's maximum
	Runs         []rateRun `json:"runs"`
}

// newRateSearch describes the runs of a search made with cfg and payload
// bytes of UDP payload, rounded as the rest of the JSON.
func newRateSearch(cfg searchConfig, payload int, runs []rateRun) *RateSearch {
	rs := &RateSearch{PayloadBytes: payload, SearchTrial: cfg.Short.String(), FinalTrial: cfg.Final.String(),
		Precision: cfg.Precision, PDRLoss: cfg.PDRLoss, Sweep: cfg.Sweep}
	for _, run := range runs {
		run.SenderMaxKpps, run.MaxOfferedKpps = round(run.SenderMaxKpps), round(run.MaxOfferedKpps)
		run.MaxDeliveredKpps, run.PeakDeliveredKpps, run.Retention = round(run.MaxDeliveredKpps), round(run.PeakDeliveredKpps), round(run.Retention)
		for _, b := range []*rateBound{&run.NDR, &run.PDR} {
			b.Kpps, b.SearchKpps, b.UpperKpps = round(b.Kpps), round(b.SearchKpps), round(b.UpperKpps)
		}
		trials := make([]trial, len(run.Trials))
		for i, t := range run.Trials {
			t.TargetKpps, t.OfferedKpps, t.DeliveredKpps = round(t.TargetKpps), round(t.OfferedKpps), round(t.DeliveredKpps)
			t.Loss, t.Seconds = round(t.Loss), round(t.Seconds)
			trials[i] = t
		}
		run.Trials = trials
		rs.Runs = append(rs.Runs, run)
	}
	return rs
}

// System describes where the run was made (internal/harness).
type System = harness.System

// MetricResult is one figure: medians over the repetitions and the
// repetitions themselves.
type MetricResult struct {
	Key    string    `json:"key"`
	Label  string    `json:"label"`
	Unit   string    `json:"unit"`
	Better string    `json:"better,omitempty"`
	Kernel *float64  `json:"kernel,omitempty"` // median
	Vtepd  *float64  `json:"vtepd,omitempty"`  // median
	Ratio  *float64  `json:"ratio,omitempty"`  // vtepd / kernel
	KRuns  []float64 `json:"kernel_runs,omitempty"`
	VRuns  []float64 `json:"vtepd_runs,omitempty"`
}

// summarize turns samples into medians and ratios, in the order of
// defsFor, leaving out metrics that have no sample at all.
func summarize(s samples) []MetricResult {
	var out []MetricResult
	for _, d := range defsFor(s) {
		byMode := s[d.Key]
		if len(byMode) == 0 {
			continue
		}
		m := MetricResult{Key: d.Key, Label: d.Label, Unit: d.Unit, Better: d.Better,
			KRuns: roundAll(byMode[modeKernel]), VRuns: roundAll(byMode[modeVtepd])}
		if len(m.KRuns) > 0 {
			m.Kernel = ptr(round(median(m.KRuns)))
		}
		if len(m.VRuns) > 0 {
			m.Vtepd = ptr(round(median(m.VRuns)))
		}
		if d.Better != "" && m.Kernel != nil && m.Vtepd != nil && *m.Kernel != 0 {
			m.Ratio = ptr(round(*m.Vtepd / *m.Kernel))
		}
		out = append(out, m)
	}
	return out
}

func ptr(v float64) *float64 { return &v }

func roundAll(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		out = append(out, round(x))
	}
	return out
}

// round keeps four significant digits: the JSON stays small and diffable.
func round(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

func defOf(key string) metricDef {
	for _, d := range metricDefs {
		if d.Key == key {
			return d
		}
	}
	if d, _, _, ok := rateDefOf(key); ok {
		return d
	}
	return metricDef{Key: key, Format: "%g"}
}

// defsFor is metricDefs in table order, with the rate search's figures of
// s (by flow count, then NDR, PDR, retention) after the other small-frame
// ones.
func defsFor(s samples) []metricDef {
	type rated struct {
		d           metricDef
		flows, rank int
	}
	var rates []rated
	for key := range s {
		if d, flows, rank, ok := rateDefOf(key); ok {
			rates = append(rates, rated{d, flows, rank})
		}
	}
	slices.SortFunc(rates, func(a, b rated) int { return cmp.Or(a.flows-b.flows, a.rank-b.rank) })
	var out []metricDef
	for _, d := range metricDefs {
		out = append(out, d)
		if d.Key == "udp64_offered_kpps" {
			for _, r := range rates {
				out = append(out, r.d)
			}
		}
	}
	return out
}

// writeTable prints the one table of the report.
func writeTable(w io.Writer, r *Results) error {
	gso := ", udp_gso off"
	if r.Settings.UDPGSO {
		gso = ", udp_gso on"
	}
	if r.Settings.BusyPoll != "" {
		gso += ", busy_poll " + r.Settings.BusyPoll
	}
	how := fmt.Sprintf("median of %d repetitions, %s each", r.Settings.Reps, r.Settings.Duration)
	if searchOnly(r.Settings) {
		how = "the rate search alone, once per data path and flow count"
	}
	fmt.Fprintf(w, "vtepd vs kernel VXLAN: %s; %d CPUs, Linux %s, vtepd queues %s%s\n\n",
		how, r.System.CPUs, r.System.Kernel, queuesText(r.Settings.Queues), gso)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tunit\tkernel\tvtepd\tvtepd/kernel\tbetter\t")
	for _, m := range r.Metrics {
		d := defOf(m.Key)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", m.Label, m.Unit,
			fmtOpt(d.Format, m.Kernel), fmtOpt(d.Format, m.Vtepd), fmtOpt("%.2f", m.Ratio), m.Better)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.RateSearch != nil {
		if err := writeRateTable(w, r.RateSearch); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nbackground load, nothing of ours running: %.0f%% of the CPUs busy before, %.0f%% after\n", r.BusyBefore, r.BusyAfter)
	if r.GeneratorKpps > 0 {
		fmt.Fprintf(w, "64 B generator alone (no overlay, frames dropped at the host bridge): %.0f kpps\n", r.GeneratorKpps)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// searchOnly says whether the run was the rate search alone, which has
// no repetitions.
func searchOnly(s Settings) bool {
	return len(s.Workloads) == 1 && s.Workloads[0] == wlRateSearch
}

func queuesText(q int) string {
	if q == 0 {
		return "default (NumCPU)"
	}
	return fmt.Sprint(q)
}

func fmtOpt(format string, v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

// writeJSON writes r indented, with a final newline.
func writeJSON(w io.Writer, r *Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// busyWarn is the background load, in percent of the machine, above which
// the report warns that the figures are noisy.
const busyWarn = 10

// Chart colours: throughput (higher is better) and costs (lower is better).
var (
	colorHigher = color.RGBA{R: 0x2b, G: 0x6c, B: 0xb0, A: 0xff}
	colorLower  = color.RGBA{R: 0xd9, G: 0x82, B: 0x2b, A: 0xff}
)

// renderChart draws the ratio vtepd/kernel of every compared metric as a
// bar from parity on a log2 axis (so that 0.5× and 2× are equally long),
// throughput first, costs after, and returns the image in format ("svg" or
// "png").
func renderChart(r *Results, format string) (io.WriterTo, error) {
	type bar struct {
		label string
		ratio float64
	}
	var higher, lower []bar
	for _, m := range r.Metrics {
		d := defOf(m.Key)
		if !charted(m) {
			continue
		}
		b := bar{d.Short + "\n" + ratioText(*m.Ratio), *m.Ratio}
		if d.Better == "higher" {
			higher = append(higher, b)
		} else {
			lower = append(lower, b)
		}
	}
	n := len(higher) + len(lower)
	if n == 0 {
		return nil, fmt.Errorf("chart: no metric measured in both modes")
	}

	p := plot.New()
	p.Title.Text = fmt.Sprintf("vtepd / kernel VXLAN, median of %d × %s (%d CPUs)", r.Settings.Reps, r.Settings.Duration, r.System.CPUs)
	if searchOnly(r.Settings) {
		p.Title.Text = fmt.Sprintf("vtepd / kernel VXLAN, rate search (%d CPUs)", r.System.CPUs)
	}
	p.Y.Label.Text = "vtepd / kernel (log scale, 1× = parity)"
	p.Y.Tick.Marker = log2Ticks{}
	p.Legend.Top = true
	p.Legend.Left = true
	var labels []string
	lo, hi := -1.0, 1.0
	width := vg.Points(36)
	for i, group := range []struct {
		bars  []bar
		color color.Color
		name  string
	}{
		{higher, colorHigher, "throughput: higher is better"},
		{lower, colorLower, "latency, CPU: lower is better"},
	} {
		if len(group.bars) == 0 {
			continue
		}
		vals := make(plotter.Values, len(group.bars))
		for j, b := range group.bars {
			vals[j] = math.Log2(b.ratio)
			lo, hi = math.Min(lo, vals[j]), math.Max(hi, vals[j])
			labels = append(labels, b.label)
		}
		bc, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		bc.Color = group.color
		bc.LineStyle.Width = 0
		if i == 1 {
			bc.XMin = float64(len(higher))
		}
		p.Add(bc)
		p.Legend.Add(group.name, bc)
	}
	parity, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 0}, {X: float64(n) - 0.5, Y: 0}})
	if err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	parity.Color = color.Gray{Y: 0x40}
	p.Add(plotter.NewGrid(), parity)
	p.NominalX(labels...)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	p.X.Tick.Label.XAlign = draw.XCenter
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	// Whole powers of two, and a spare one on top for the legend.
	p.Y.Min, p.Y.Max = math.Floor(lo), math.Ceil(hi)+1
	p.Title.Padding = vg.Points(8)
	c, err := draw.NewFormattedCanvas(vg.Length(max(n, 4))*1.3*vg.Inch+chartMargin, 4.2*vg.Inch+chartMargin/2, format)
	if err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	p.Draw(draw.Crop(draw.New(c), chartMargin/4, -chartMargin, chartMargin/4, -chartMargin/2))
	return c, nil
}

// charted says whether renderChart draws m: a ratio to draw and a label
// to draw it with.
func charted(m MetricResult) bool {
	d := defOf(m.Key)
	return m.Ratio != nil && *m.Ratio > 0 && d.Better != "" && d.Short != ""
}

// hasRatio says whether renderChart has a bar to draw.
func hasRatio(r *Results) bool {
	return slices.ContainsFunc(r.Metrics, charted)
}

// log2Ticks labels a log2 axis with the ratios themselves: 1/4×, 1×, 8×.
type log2Ticks struct{}

func (log2Ticks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	step := math.Max(1, math.Ceil((hi-lo)/10)) // at most ~10 labels
	for e := math.Ceil(lo); e <= hi; e++ {
		label := ""
		switch {
		case math.Mod(e, step) != 0:
		case e < 0:
			label = fmt.Sprintf("1/%.0f×", math.Exp2(-e))
		default:
			label = fmt.Sprintf("%.0f×", math.Exp2(e))
		}
		ticks = append(ticks, plot.Tick{Value: e, Label: label})
	}
	return ticks
}

// ratioText prints a ratio as 0.031×, 0.91×, 3.3×, 40×.
func ratioText(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	default:
		return fmt.Sprintf("%.2g×", r)
	}
}

// notesFor returns what a reader of the table must know to trust it:
// figures limited by the measuring tools rather than by the data path.
// ceiling is the generator's own rate in kpps (0 if not measured).
func notesFor(s samples, ceiling float64) []string {
	var notes []string
	off, rx := s["udp64_offered_kpps"], s["udp64_rx_kpps"]
	for _, mode := range []string{modeKernel, modeVtepd} {
		if len(rx[mode]) == 0 {
			continue
		}
		o, r := median(off[mode]), median(rx[mode])
		switch {
		case ceiling > 0 && r > 0.9*ceiling:
			notes = append(notes, fmt.Sprintf("%s carried %.0f kpps of 64 B frames, within 10%% of what the generator "+
				"can produce at all (%.0f kpps): the figure is a lower bound", mode, r, ceiling))
		case o > 0 && r > 0.9*o:
			notes = append(notes, fmt.Sprintf("%s carried %.0f%% of the %.0f kpps offered: the generator, the counter "+
				"and the %s path's own processing share the CPUs, so the path slows the generator down to its "+
				"own rate; alone the generator reaches %.0f kpps, so the path, not the generator, sets the figure",
				mode, 100*r/o, o, mode, ceiling))
		}
	}
	for _, mode := range []string{modeKernel, modeVtepd} {
		if g := median(s["udp64_counter_gap"][mode]); g > 0.05 {
			notes = append(notes, fmt.Sprintf("%s: the counter read %.0f%% fewer datagrams than the container's eth0 "+
				"received (%.0f kpps): its socket overflowed, the path carried more", mode, 100*g, median(s["udp64_ifrx_kpps"][mode])))
		}
	}
	return notes
}

// workloadList parses -only.
func workloadList(only string) ([]string, error) {
	if strings.TrimSpace(only) == "" || only == "all" {
		return workloads, nil
	}
	known := append([]string{wlIdle}, workloads...)
	want := map[string]bool{}
	for w := range strings.SplitSeq(only, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(known, w) {
			return nil, fmt.Errorf("-only: unknown workload %q (have %s)", w, strings.Join(known, ","))
		}
		want[w] = true
	}
	var out []string
	for _, k := range known {
		if want[k] {
			out = append(out, k)
		}
	}
	return out, nil
}
