package main

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// writeRateTable prints the rate search's own table: per flow count and
// data path, NDR and PDR, the sender's maximum and what got through there.
func writeRateTable(w io.Writer, rs *RateSearch) error {
	fmt.Fprintf(w, "\n%d B UDP payloads, socket sender (sendmmsg, paced) and receiver (recvmmsg): NDR (no loss) and PDR "+
		"(%.1f%% loss) bisected with %s trials to %.0f%%, confirmed at %s (≥: the sender's maximum; <: not confirmed, "+
		"below the lowest rate that missed); the maximum at %s\n\n",
		rs.PayloadBytes, 100*rs.PDRLoss, rs.SearchTrial, 100*rs.Precision, rs.FinalTrial, rs.FinalTrial)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flows\tpath\tNDR kpps\tPDR kpps\tsender max kpps\tdelivered there\tpeak delivered\tretention\t")
	for _, run := range sortedRuns(rs.Runs) {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", run.Flows, run.Mode, boundCell(run.NDR), boundCell(run.PDR),
			run.MaxOfferedKpps, run.MaxDeliveredKpps, run.PeakDeliveredKpps, run.Retention)
	}
	return tw.Flush()
}

// sortedRuns orders runs by flow count, the kernel first.
func sortedRuns(runs []rateRun) []rateRun {
	out := slices.Clone(runs)
	slices.SortStableFunc(out, func(a, b rateRun) int {
		return cmp.Or(a.Flows-b.Flows, cmp.Compare(modeRank(a.Mode), modeRank(b.Mode)))
	})
	return out
}

func modeRank(mode string) int {
	if mode == modeKernel {
		return 0
	}
	return 1
}

// boundCell is a bound in the table: 61.9, ≥310.0 (the sender's
// maximum), <39.1 (not confirmed: below the lowest full-length trial that
// missed), -.
func boundCell(b rateBound) string {
	switch {
	case b.SenderLimited:
		return fmt.Sprintf("≥%.1f", b.Kpps)
	case b.Confirmed:
		return fmt.Sprintf("%.1f", b.Kpps)
	case b.UpperKpps > 0:
		return fmt.Sprintf("<%.1f", b.UpperKpps)
	}
	return "-"
}

// boundText is a bound in a progress line.
func boundText(b rateBound) string {
	switch {
	case b.SenderLimited:
		return fmt.Sprintf("%.1f kpps or more (the sender's maximum)", b.Kpps)
	case b.Confirmed:
		return fmt.Sprintf("%.1f kpps", b.Kpps)
	case b.SearchKpps > 0:
		return fmt.Sprintf("not confirmed (%.1f kpps in short trials, loss at full length down to %.1f)", b.SearchKpps, b.UpperKpps)
	}
	return fmt.Sprintf("none (loss even at %.1f kpps)", b.UpperKpps)
}

// maxTrial is the run's full-length unpaced trial, if it has one.
func maxTrial(run rateRun) (trial, bool) {
	for _, t := range run.Trials {
		if t.Final && t.TargetKpps == 0 {
			return t, true
		}
	}
	return trial{}, false
}

// rateNotes are what a reader of the rate table must know to trust it.
func rateNotes(rs *RateSearch) []string {
	var notes []string
	for _, run := range sortedRuns(rs.Runs) {
		who := fmt.Sprintf("%s, %d %s", run.Mode, run.Flows, flowsWord(run.Flows))
		var limited []string
		for _, b := range []struct {
			name string
			b    rateBound
		}{{"NDR", run.NDR}, {"PDR", run.PDR}} {
			switch {
			case b.b.SenderLimited:
				limited = append(limited, b.name)
			case b.b.Confirmed:
			case b.b.SearchKpps > 0:
				notes = append(notes, fmt.Sprintf("%s: %s not confirmed: %.1f kpps held in %s trials, but every %s trial down to %.1f kpps lost more",
					who, b.name, b.b.SearchKpps, rs.SearchTrial, rs.FinalTrial, b.b.UpperKpps))
			default:
				notes = append(notes, fmt.Sprintf("%s: no %s: even %.1f kpps lost more than allowed", who, b.name, b.b.UpperKpps))
			}
		}
		if len(limited) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %s the sender's maximum (%.1f kpps): the path may carry more",
				who, strings.Join(limited, " and ")+map[bool]string{true: " are", false: " is"}[len(limited) > 1], run.MaxOfferedKpps))
		}
		if t, ok := maxTrial(run); ok && t.lost() > 0 {
			notes = append(notes, fmt.Sprintf("%s, %d %s, at the sender's maximum (%.0f kpps offered, %s lost in %s): %s",
				run.Mode, run.Flows, flowsWord(run.Flows), t.OfferedKpps, countText(t.lost()), rs.FinalTrial, dropsText(t, 3)))
		}
	}
	for _, run := range sortedRuns(rs.Runs) {
		if run.Mode == modeKernel && run.NDR.SenderLimited {
			notes = append(notes, "the kernel's vxlan runs the whole path in the sending thread's own system call (and the "+
				"softirq it raises), so it slows the sender down rather than drop: its NDR and PDR are the most the "+
				"sender reaches over it, the path's own cost included")
			break
		}
	}
	return notes
}

// dropsText lists the drop counters of a trial that grew most, with their
// share of what the trial lost: "b: udp rcvbuf_errors 1.2M (93%), ...".
func dropsText(t trial, top int) string {
	keys := slices.Collect(maps.Keys(t.Drops))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(t.Drops[b], t.Drops[a]), cmp.Compare(a, b)) })
	var parts []string
	for _, k := range keys[:min(top, len(keys))] {
		part := fmt.Sprintf("%s %s", k, countText(t.Drops[k]))
		if lost := t.lost(); lost > 0 {
			part += fmt.Sprintf(" (%.0f%%)", 100*float64(t.Drops[k])/float64(lost))
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "no drop counter of the lab grew"
	}
	return strings.Join(parts, ", ")
}

// countText prints a count as 950, 12.3k, 1.24M.
func countText(n uint64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.3gM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.3gk", float64(n)/1e3)
	}
	return strconv.FormatUint(n, 10)
}

// Overload chart colours: the kernel in grey, vtepd in the throughput blue.
var (
	colorKernel = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	colorIdeal  = color.RGBA{R: 0xaa, G: 0xaa, B: 0xaa, A: 0xff}
)

// chartMargin keeps titles off the top edge and the outermost tick labels
// inside the right one, whatever font the SVG viewer substitutes for the
// one gonum/plot measured the text with.
const chartMargin = 0.25 * vg.Inch

// renderOverloadChart draws delivered against offered rate, every trial of
// the search, kernel and vtepd on one panel per flow count, with the line
// of no loss for reference: a path in livelock bends down to the right.
func renderOverloadChart(rs *RateSearch, format string) (io.WriterTo, error) {
	var counts []int
	for _, run := range sortedRuns(rs.Runs) {
		if !slices.Contains(counts, run.Flows) {
			counts = append(counts, run.Flows)
		}
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("overload chart: no search ran")
	}
	var row []*plot.Plot
	for _, n := range counts {
		p, err := overloadPanel(rs, n)
		if err != nil {
			return nil, err
		}
		row = append(row, p)
	}
	w, h := vg.Length(len(row))*5*vg.Inch, 4.5*vg.Inch
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return nil, fmt.Errorf("overload chart: %w", err)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: 0.4 * vg.Inch,
		PadTop: chartMargin / 2, PadBottom: chartMargin / 2, PadLeft: chartMargin / 2, PadRight: chartMargin}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, draw.New(c))
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	return c, nil
}

// overloadPanel is the panel of one flow count.
func overloadPanel(rs *RateSearch, flows int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d B UDP over sockets, %d %s: delivered against offered", rs.PayloadBytes, flows, flowsWord(flows))
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "offered, kpps (all trials; the rightmost: sender unpaced)"
	p.Y.Label.Text = "delivered, kpps"
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	right, top := 0.0, 0.0
	for _, run := range sortedRuns(rs.Runs) {
		if run.Flows == flows {
			for _, t := range run.Trials {
				right, top = math.Max(right, t.OfferedKpps), math.Max(top, t.DeliveredKpps)
			}
		}
	}
	top *= 1.3 // room for the legend
	ideal, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: math.Min(right, top), Y: math.Min(right, top)}})
	if err != nil {
		return nil, fmt.Errorf("overload chart: %w", err)
	}
	ideal.Color, ideal.Dashes = colorIdeal, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(ideal)
	p.Legend.Add("no loss", ideal)
	for _, run := range sortedRuns(rs.Runs) {
		if run.Flows != flows {
			continue
		}
		pts := make(plotter.XYs, 0, len(run.Trials))
		for _, t := range slices.SortedFunc(slices.Values(run.Trials), func(a, b trial) int {
			return cmp.Compare(a.OfferedKpps, b.OfferedKpps)
		}) {
			pts = append(pts, plotter.XY{X: t.OfferedKpps, Y: t.DeliveredKpps})
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("overload chart: %w", err)
		}
		c, shape := color.Color(colorHigher), draw.GlyphDrawer(draw.CircleGlyph{})
		name := "vtepd"
		if run.Mode == modeKernel {
			c, shape, name = colorKernel, draw.BoxGlyph{}, "kernel vxlan"
		}
		line.Color, line.Width = c, vg.Points(1.5)
		dots.Color, dots.Shape, dots.Radius = c, shape, vg.Points(2.5)
		p.Add(line, dots)
		p.Legend.Add(fmt.Sprintf("%s: PDR %s kpps, retention %.2f", name, boundCell(run.PDR), run.Retention), line, dots)
	}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max, p.Y.Max = right*1.03, top
	return p, nil
}

// plainTicks are gonum/plot's default ticks labelled without trailing
// zeros: 250, not 250.00.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', -1, 64)
		}
	}
	return ticks
}
