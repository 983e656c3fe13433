package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// The two data paths: the kernel's vxlan is the reference for loss.
const (
	modeKernel = "kernel"
	modeVtepd  = "vtepd"
)

// Results is the soak's report: one JSON document, and the table printed
// at the end of a run.
type Results struct {
	Time     time.Time    `json:"time"`
	Lab      string       `json:"lab"` // the name of its namespaces, <lab>-*
	Settings Settings     `json:"settings"`
	System   System       `json:"system"`
	Phases   []Phase      `json:"phases"` // kernel, then vtepd
	Hosts    []HostReport `json:"hosts"`  // vtepd on each host, over the vtepd phase
	Criteria []Criterion  `json:"criteria"`
	Pass     bool         `json:"pass"`
	Notes    []string     `json:"notes,omitempty"`
}

// Settings are what the run was made with.
type Settings struct {
	VNI             uint32  `json:"vni"`
	Seconds         float64 `json:"seconds"` // traffic time of both phases
	KernelSeconds   float64 `json:"kernel_seconds"`
	VtepdSeconds    float64 `json:"vtepd_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"` // of the vtepd phase, left out of the flatness checks
	IntervalSeconds float64 `json:"interval_seconds"`
	FlowRate        int     `json:"flow_pps_per_pair"`
	ChurnRate       int     `json:"churn_macs_per_second"`
	HostileRate     int     `json:"hostile_pps_per_host"`
	TCPRate         string  `json:"tcp_rate"`
	TCPBurstSeconds float64 `json:"tcp_burst_seconds"`
	TCPEverySeconds float64 `json:"tcp_every_seconds"`
	Ageing          string  `json:"ageing"`
	MaxEntries      int     `json:"max_entries"`
	Queues          int     `json:"vtepd_queues"` // 0: vtepd's default
	FlatTolerance   float64 `json:"flat_tolerance"`
	GOGC            int     `json:"vtepd_gogc"` // 0: Go's default, 100
	LossSlack       float64 `json:"loss_slack"`
}

// System describes the machine.
type System struct {
	harness.System // kernel, cpus, go, commit
	// LoadBefore and LoadAfter are the 1-minute load averages around the
	// run: other work on a shared machine moves every figure.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Phase is what the workload did over one data path.
type Phase struct {
	Mode       string     `json:"mode"`
	Seconds    float64    `json:"seconds"`
	Flows      []FlowPair `json:"flows"`
	Attempted  uint64     `json:"udp_attempted"`
	Received   uint64     `json:"udp_received"`
	Lost       uint64     `json:"udp_lost"`
	LossRate   float64    `json:"udp_loss_rate"`
	Duplicates uint64     `json:"udp_duplicates"`
	SendErrors uint64     `json:"udp_send_errors"`
	// Skipped are datagrams the flow senders gave up because the machine
	// did not run them in time (maxBacklog): neither sent nor expected.
	Skipped uint64 `json:"udp_skipped"`
	// RcvbufErrors are receive-buffer overflows of the flow sockets in the
	// containers: loss at the receiving application, not on the path.
	RcvbufErrors uint64 `json:"udp_rcvbuf_errors"`
	// MaxStall is the longest any flow sender went without being run,
	// beyond its pacing: a machine too busy to run the soak shows here.
	MaxStall float64      `json:"max_sender_stall_seconds"`
	TCP      TCPSummary   `json:"tcp"`
	Churn    ChurnSummary `json:"churn"`
	// HostileSent is host -> kind -> datagrams the attacker sent it.
	HostileSent    map[string]map[string]uint64 `json:"hostile_sent"`
	HostileErrors  uint64                       `json:"hostile_send_errors"`
	HostileSkipped uint64                       `json:"hostile_skipped"`
}

// FlowPair is one direction between two containers.
type FlowPair struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Attempted uint64 `json:"attempted"`
	Received  uint64 `json:"received"`
}

// TCPSummary sums the iperf3 bursts of a phase.
type TCPSummary struct {
	Bursts      int      `json:"bursts"`
	Completed   int      `json:"completed"`
	Bytes       int64    `json:"bytes"`
	Retransmits int64    `json:"retransmits"`
	MeanMbps    float64  `json:"mean_mbps"`
	Failures    []string `json:"failures,omitempty"`
}

// ChurnSummary sums what the churn processes sent.
type ChurnSummary struct {
	Appeared      uint64 `json:"appeared"`
	Moved         uint64 `json:"moved"`
	Errors        uint64 `json:"send_errors"`
	SkippedEpochs uint64 `json:"skipped_epochs"`
}

// HostReport is one vtepd over the vtepd phase.
type HostReport struct {
	Host    string   `json:"host"`
	Samples []Sample `json:"samples"`
	// Flatness after warm-up; Heap and HeapGoal are reported, not judged.
	RSS        flatness `json:"rss_kb"`
	Goroutines flatness `json:"goroutines"`
	FDs        flatness `json:"fds"`
	Heap       flatness `json:"heap_inuse_bytes"`
	HeapGoal   flatness `json:"heap_goal_bytes"`
	// WarmupSeconds is where this host's memory is judged from: the
	// phase's warm-up, or later if vtepd had not yet been through
	// warmupGCs collections (-1: never).
	WarmupSeconds float64 `json:"warmup_seconds"`
	// AllocRate is bytes allocated per second over the phase, GCs the
	// collections in it: what sets the length of vtepd's GC cycle.
	AllocRate float64 `json:"alloc_bytes_per_second"`
	GCs       uint64  `json:"gc_cycles"`
	// FDB figures: the largest learned-entry count sampled, and the
	// counters at the end.
	FDBMax     int    `json:"fdb_max"`
	FDBLearned uint64 `json:"fdb_learned_total"`
	FDBMoves   uint64 `json:"fdb_moves_total"`
	FDBExpired uint64 `json:"fdb_expired_total"`
	FDBRefused uint64 `json:"fdb_refused_total"`
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	// Drops are vtep_drops_total at the end, keyed "reason/vni".
	Drops map[string]uint64 `json:"drops"`
	// HostileSent and HostileCounted are per kind: what the attacker sent
	// this host, and the drop counter that kind must land in.
	HostileSent    map[string]uint64 `json:"hostile_sent"`
	HostileCounted map[string]uint64 `json:"hostile_counted"`
	// SocketDrops are datagrams the kernel dropped at vtepd's full
	// receive sockets, before vtepd could see (or count) them.
	SocketDrops uint64 `json:"underlay_socket_drops"`
	// AttackerEntries are /fdb entries that came from the attacker.
	AttackerEntries []string `json:"attacker_entries,omitempty"`
	// Problems: exits, panics, races, a hang.
	Problems []string `json:"problems,omitempty"`
	// MissedLooks are samples that failed (a scrape timed out, say) and
	// LastMiss the error of the last one; too many in a row is a hang.
	MissedLooks int    `json:"missed_looks,omitempty"`
	LastMiss    string `json:"last_miss,omitempty"`
}

// Sample is one look at one vtepd.
type Sample struct {
	T         float64 `json:"t"` // seconds since the phase's traffic started
	RSSKB     uint64  `json:"rss_kb"`
	AnonKB    uint64  `json:"rss_anon_kb"` // of RSSKB: anonymous memory (heap, stacks)
	FileKB    uint64  `json:"rss_file_kb"` // of RSSKB: mapped files (vtepd's own text)
	HeapBytes uint64  `json:"heap_inuse_bytes"`
	// HeapGoal is the heap size the next GC is due at, set from the live
	// heap at the last one: flat unless live memory grows.
	HeapGoal   uint64 `json:"heap_goal_bytes"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	// GSOSockets of FDs are vtepd's UDP GSO port sockets (vtep_udp_gso_sockets):
	// one per source port in use, closed a minute after its last train,
	// so they come and go with the flows. The rest are judged flat.
	GSOSockets int    `json:"udp_gso_sockets"`
	Threads    int    `json:"threads"`
	FDB        int    `json:"fdb_learned"`
	Learned    uint64 `json:"learned_total"`
	Moves      uint64 `json:"moves_total"`
	Expired    uint64 `json:"expired_total"`
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	Drops      uint64 `json:"drops"`
	// AllocBytes and GCs are the Go runtime's totals: bytes allocated and
	// garbage collections completed since vtepd started.
	AllocBytes uint64 `json:"alloc_bytes_total"`
	GCs        uint64 `json:"gc_cycles_total"`
}

// Criterion is one line of the verdict.
type Criterion struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// stallNote is the sender stall, in seconds, that a failed loss check
// mentions: the machine, not vtepd, may have held the traffic up.
const stallNote = 0.5

// Absolute tolerances of the flatness checks, beside the relative one: a
// scrape in flight holds a goroutine or two and a connection of its own.
const (
	goroutineSlack = 2
	fdSlack        = 2
)

// warmupGCs is how many garbage collections must follow the warm-up
// before vtepd's memory is judged. The first cycle that starts once the
// live heap has settled (after the warm-up) is the first whose peak is a
// steady state's; until it ends, at the second collection, the heap and
// RSS with it are still growing towards where they settle.
const warmupGCs = 2

// smoothWindow is the window of the rolling median taken of each series
// before it is judged. A count read at one instant includes short-lived
// goroutines and connections (a scrape's own, a timer's), and RSS dips
// for a moment when the Go scavenger returns pages that the next burst
// touches again; one such sample must not decide, while a leak, which
// does not go away, still shows.
const smoothWindow = 3

// judge computes the flatness of each series after warm-up: goroutines
// and fds after warmup seconds, RSS and heap from the warmupGCs-th
// collection after warmup seconds.
func (h *HostReport) judge(warmup, frac float64) {
	h.WarmupSeconds = -1
	var gc0 uint64
	seen := false
	for _, s := range h.Samples {
		if s.T < warmup {
			continue
		}
		if !seen {
			gc0, seen = s.GCs, true
		}
		if s.GCs >= gc0+warmupGCs {
			h.WarmupSeconds = s.T
			break
		}
	}
	var ts, gor, fds, mts, rss, heap, goal []float64
	for _, s := range h.Samples {
		if s.T >= warmup {
			ts = append(ts, s.T)
			gor = append(gor, float64(s.Goroutines))
			fds = append(fds, float64(s.FDs-s.GSOSockets))
		}
		if h.WarmupSeconds >= 0 && s.T >= h.WarmupSeconds {
			mts = append(mts, s.T)
			rss = append(rss, float64(s.RSSKB))
			heap = append(heap, float64(s.HeapBytes))
			goal = append(goal, float64(s.HeapGoal))
		}
	}
	sts, rss := rollingMedian(mts, rss, smoothWindow)
	_, heap = rollingMedian(mts, heap, smoothWindow)
	_, goal = rollingMedian(mts, goal, smoothWindow)
	h.RSS = judgeFlat(sts, rss, frac, 0)
	h.Heap = judgeFlat(sts, heap, frac, 0)
	h.HeapGoal = judgeFlat(sts, goal, frac, 0)
	gts, gor := rollingMedian(ts, gor, smoothWindow)
	_, fds = rollingMedian(ts, fds, smoothWindow)
	h.Goroutines = judgeFlat(gts, gor, frac, goroutineSlack)
	h.FDs = judgeFlat(gts, fds, frac, fdSlack)
	if n := len(h.Samples); n > 1 {
		first, last := h.Samples[0], h.Samples[n-1]
		if dt := last.T - first.T; dt > 0 {
			h.AllocRate = float64(last.AllocBytes-first.AllocBytes) / dt
			h.GCs = last.GCs - first.GCs
		}
	}
}

// hostileCounterKey is the Drops key a hostile kind must be counted under.
func hostileCounterKey(k hostileKind, vni uint32) string {
	if k.UnknownVNI {
		return k.Reason + "/unknown"
	}
	return fmt.Sprintf("%s/%d", k.Reason, vni)
}

// evaluate fills in r.Criteria and r.Pass.
func (r *Results) evaluate() {
	var kernel, vtepd *Phase
	for i := range r.Phases {
		switch r.Phases[i].Mode {
		case modeKernel:
			kernel = &r.Phases[i]
		case modeVtepd:
			vtepd = &r.Phases[i]
		}
	}
	var cs []Criterion
	add := func(name string, ok bool, detail string) {
		cs = append(cs, Criterion{Name: name, Pass: ok, Detail: detail})
	}

	// Nothing crashed.
	var problems []string
	for _, h := range r.Hosts {
		for _, p := range h.Problems {
			problems = append(problems, h.Host+": "+p)
		}
	}
	if len(r.Hosts) == 0 {
		problems = append(problems, "no vtepd was sampled")
	}
	detail := "every vtepd ran the whole phase, answered its scrapes and exited 0 on SIGTERM"
	var missed []string
	for _, h := range r.Hosts {
		if h.MissedLooks > 0 {
			missed = append(missed, fmt.Sprintf("%s missed %d (last: %s)", h.Host, h.MissedLooks, h.LastMiss))
		}
	}
	if len(missed) > 0 {
		detail += "; samples missed, too few in a row to be a hang: " + strings.Join(missed, ", ")
	}
	add("nothing crashed or hung", len(problems) == 0, orDefault(strings.Join(problems, "; "), detail))

	// Flat series.
	flat := func(name string, get func(HostReport) flatness, format func(float64) string) {
		ok := len(r.Hosts) > 0
		var parts []string
		for _, h := range r.Hosts {
			f := get(h)
			if f.NotEnoughData {
				ok = false
				parts = append(parts, fmt.Sprintf("%s: %d samples after warm-up (%s), need %d",
					h.Host, f.Samples, warmupText(h), minFlatSamples))
				continue
			}
			ok = ok && f.Flat
			parts = append(parts, fmt.Sprintf("%s %s..%s (%+.1f%%)", h.Host, format(f.Min), format(f.Max), 100*f.Spread))
		}
		add(name, ok, strings.Join(parts, ", "))
	}
	mib := func(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	flat(fmt.Sprintf("RSS flat (within %.0f%% after warm-up)", 100*r.Settings.FlatTolerance),
		func(h HostReport) flatness { return h.RSS }, mib)
	flat(fmt.Sprintf("goroutines flat (within %.0f%% or ±%d)", 100*r.Settings.FlatTolerance, goroutineSlack),
		func(h HostReport) flatness { return h.Goroutines }, count)
	flat(fmt.Sprintf("open fds flat, udp_gso port sockets aside (within %.0f%% or ±%d)", 100*r.Settings.FlatTolerance, fdSlack),
		func(h HostReport) flatness { return h.FDs }, count)

	// Every hostile datagram counted, exactly, under its reason.
	{
		ok := len(r.Hosts) > 0
		var parts []string
		for _, h := range r.Hosts {
			var sent, counted uint64
			for _, k := range hostileKinds {
				s, c := h.HostileSent[k.Reason], h.HostileCounted[k.Reason]
				sent += s
				counted += c
				if s == 0 || s != c {
					ok = false
					parts = append(parts, fmt.Sprintf("%s %s: sent %d, counted %d", h.Host, k.Reason, s, c))
				}
			}
			if h.SocketDrops > 0 {
				parts = append(parts, fmt.Sprintf("%s: %d dropped at vtepd's full socket", h.Host, h.SocketDrops))
			}
			parts = append(parts, fmt.Sprintf("%s %d/%d", h.Host, counted, sent))
		}
		add("every hostile datagram counted", ok, strings.Join(parts, ", "))
	}
	{
		var bad []string
		for _, h := range r.Hosts {
			for _, e := range h.AttackerEntries {
				bad = append(bad, h.Host+": "+e)
			}
		}
		add("attacker never learned", len(bad) == 0, orDefault(strings.Join(bad, "; "),
			"no /fdb sample held an attacker MAC or a remote outside accept_from"))
	}

	// Legitimate loss no worse than the kernel's.
	if kernel == nil || vtepd == nil {
		add("legitimate loss ≤ kernel's", false, "a phase is missing")
	} else {
		ok := vtepd.Attempted > 0 && kernel.Attempted > 0 &&
			vtepd.LossRate <= kernel.LossRate+r.Settings.LossSlack
		detail := fmt.Sprintf("vtepd lost %d of %d (%s), kernel %d of %d (%s)",
			vtepd.Lost, vtepd.Attempted, percent(vtepd.LossRate), kernel.Lost, kernel.Attempted, percent(kernel.LossRate))
		if r.Settings.LossSlack > 0 {
			detail += fmt.Sprintf(", slack %s", percent(r.Settings.LossSlack))
		}
		if !ok && vtepd.RcvbufErrors > 0 {
			detail += fmt.Sprintf("; %d of vtepd's were dropped by the receiving containers' full sockets", vtepd.RcvbufErrors)
		}
		if !ok && vtepd.MaxStall >= stallNote {
			detail += fmt.Sprintf("; the senders were once not run for %.1f s: check the machine's load before blaming vtepd", vtepd.MaxStall)
		}
		add("legitimate loss ≤ kernel's", ok, detail)
		t := vtepd.TCP
		add("TCP bursts completed", t.Bursts > 0 && t.Completed == t.Bursts,
			fmt.Sprintf("vtepd %d/%d, kernel %d/%d%s", t.Completed, t.Bursts, kernel.TCP.Completed, kernel.TCP.Bursts,
				failures(t.Failures)))
	}

	// The churn did churn, and the FDB stayed bounded.
	{
		ok := len(r.Hosts) > 0
		var parts []string
		for _, h := range r.Hosts {
			if h.FDBLearned == 0 || h.FDBMoves == 0 || h.FDBExpired == 0 || h.FDBRefused > 0 ||
				(r.Settings.MaxEntries > 0 && h.FDBMax >= r.Settings.MaxEntries) {
				ok = false
			}
			parts = append(parts, fmt.Sprintf("%s learned %d, moved %d, expired %d, refused %d, at most %d entries",
				h.Host, h.FDBLearned, h.FDBMoves, h.FDBExpired, h.FDBRefused, h.FDBMax))
		}
		add("FDB churned and stayed bounded", ok, strings.Join(parts, "; "))
	}

	r.Criteria = cs
	r.Pass = true
	for _, c := range cs {
		r.Pass = r.Pass && c.Pass
	}
}

// warmupText describes where a host's judged window started.
func warmupText(h HostReport) string {
	if h.WarmupSeconds < 0 {
		return fmt.Sprintf("vtepd did not complete %d garbage collections; run longer", warmupGCs)
	}
	return fmt.Sprintf("from %.0f s", h.WarmupSeconds)
}

func failures(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return "; " + strings.Join(f, "; ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func percent(f float64) string { return fmt.Sprintf("%.4f%%", 100*f) }

// printTable writes the figures and the verdict.
func (r *Results) printTable(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "\nsoak: %.0f s of traffic: kernel vxlan %.0f s, then vtepd %.0f s (warm-up %.0f s, a sample every %.0f s)\n",
		s.Seconds, s.KernelSeconds, s.VtepdSeconds, s.WarmupSeconds, s.IntervalSeconds)
	fmt.Fprintf(w, "load: %d UDP datagrams/s per ordered pair of 3 containers, %d new MACs/s, %d hostile datagrams/s per host, TCP %s for %.0f s every %.0f s\n\n",
		s.FlowRate, s.ChurnRate, s.HostileRate, s.TCPRate, s.TCPBurstSeconds, s.TCPEverySeconds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "legitimate traffic")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "\t%s", p.Mode)
	}
	fmt.Fprintln(tw)
	row := func(label string, f func(Phase) string) {
		fmt.Fprint(tw, label)
		for _, p := range r.Phases {
			fmt.Fprintf(tw, "\t%s", f(p))
		}
		fmt.Fprintln(tw)
	}
	row("UDP datagrams sent", func(p Phase) string { return fmt.Sprint(p.Attempted) })
	row("  lost", func(p Phase) string { return fmt.Sprintf("%d (%s)", p.Lost, percent(p.LossRate)) })
	row("  of which receiver buffer full", func(p Phase) string { return fmt.Sprint(p.RcvbufErrors) })
	row("  duplicated", func(p Phase) string { return fmt.Sprint(p.Duplicates) })
	row("longest sender stall", func(p Phase) string { return fmt.Sprintf("%.0f ms", 1000*p.MaxStall) })
	row("  given up meanwhile", func(p Phase) string {
		return fmt.Sprintf("%d datagrams, %d churn epochs", p.Skipped+p.HostileSkipped, p.Churn.SkippedEpochs)
	})
	row("TCP bursts completed", func(p Phase) string {
		return fmt.Sprintf("%d/%d, %.0f Mbit/s, %d retransmits", p.TCP.Completed, p.TCP.Bursts, p.TCP.MeanMbps, p.TCP.Retransmits)
	})
	row("MACs appeared / moved", func(p Phase) string { return fmt.Sprintf("%d / %d", p.Churn.Appeared, p.Churn.Moved) })
	row("hostile datagrams sent", func(p Phase) string {
		var n uint64
		for _, kinds := range p.HostileSent {
			for _, v := range kinds {
				n += v
			}
		}
		return fmt.Sprint(n)
	})
	tw.Flush()

	if len(r.Hosts) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "vtepd after warm-up (medians of 3 samples)")
		for _, h := range r.Hosts {
			fmt.Fprintf(tw, "\t%s", h.Host)
		}
		fmt.Fprintln(tw)
		hrow := func(label string, f func(HostReport) string) {
			fmt.Fprint(tw, label)
			for _, h := range r.Hosts {
				fmt.Fprintf(tw, "\t%s", f(h))
			}
			fmt.Fprintln(tw)
		}
		rng := func(f flatness, scale float64, format string) string {
			if f.NotEnoughData {
				return "too few samples"
			}
			return fmt.Sprintf(format+"..."+format+" (%+.1f%%)", f.Min/scale, f.Max/scale, 100*f.Spread)
		}
		hrow("memory judged", func(h HostReport) string { return warmupText(h) })
		hrow("RSS, MiB", func(h HostReport) string { return rng(h.RSS, 1024, "%.1f") })
		hrow("  trend, MiB/hour", func(h HostReport) string { return fmt.Sprintf("%+.2f", h.RSS.SlopePerHour/1024) })
		hrow("Go heap in use (GC sawtooth), MiB", func(h HostReport) string { return rng(h.Heap, 1<<20, "%.1f") })
		hrow("Go heap goal (tracks live heap), MiB", func(h HostReport) string { return rng(h.HeapGoal, 1<<20, "%.1f") })
		hrow("allocated, KiB/s; GCs", func(h HostReport) string {
			return fmt.Sprintf("%.0f; %d", h.AllocRate/1024, h.GCs)
		})
		hrow("goroutines", func(h HostReport) string { return rng(h.Goroutines, 1, "%.0f") })
		hrow("open fds, udp_gso port sockets aside", func(h HostReport) string { return rng(h.FDs, 1, "%.0f") })
		hrow("FDB entries, largest", func(h HostReport) string { return fmt.Sprint(h.FDBMax) })
		hrow("MACs learned / moved / expired", func(h HostReport) string {
			return fmt.Sprintf("%d / %d / %d", h.FDBLearned, h.FDBMoves, h.FDBExpired)
		})
		hrow("datagrams in / out", func(h HostReport) string { return fmt.Sprintf("%d / %d", h.RxPackets, h.TxPackets) })
		for _, k := range hostileKinds {
			hrow("hostile "+k.Reason+", sent / counted", func(h HostReport) string {
				return fmt.Sprintf("%d / %d", h.HostileSent[k.Reason], h.HostileCounted[k.Reason])
			})
		}
		hrow("other drops", func(h HostReport) string { return otherDrops(h, s.VNI) })
		hrow("underlay socket drops", func(h HostReport) string { return fmt.Sprint(h.SocketDrops) })
		tw.Flush()
	}

	fmt.Fprintln(w)
	for _, c := range r.Criteria {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", verdict, c.Name, c.Detail)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Pass {
		fmt.Fprintln(w, "\nsoak: PASS")
	} else {
		fmt.Fprintln(w, "\nsoak: FAIL")
	}
}

// otherDrops lists the drop counters that no hostile kind accounts for.
func otherDrops(h HostReport, vni uint32) string {
	var parts []string
	for key, v := range h.Drops {
		if !slices.ContainsFunc(hostileKinds, func(k hostileKind) bool { return hostileCounterKey(k, vni) == key }) {
			parts = append(parts, fmt.Sprintf("%s %d", key, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// write saves r as latest.json and a timestamped copy in dir.
func (r *Results) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	stamped := filepath.Join(dir, r.Time.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(stamped, b, 0o644); err != nil {
		return "", err
	}
	latest := filepath.Join(dir, "latest.json")
	if err := os.WriteFile(latest+".tmp", b, 0o644); err != nil {
		return "", err
	}
	return latest, os.Rename(latest+".tmp", latest)
}
