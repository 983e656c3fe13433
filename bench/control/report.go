package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// The targets (#11).
const (
	targetSyncSeconds = 3.0
	targetP99ms       = 50.0
	targetRSSMiB      = 64.0
)

// Results is the JSON document written to the output directory.
type Results struct {
	Time time.Time `json:"time"`
	// Target is what watched: "vtepd", or "stand-in" (-standin: the
	// backend and an FDB without the data path).
	Target   string         `json:"target"`
	Settings Settings       `json:"settings"`
	System   harness.System `json:"system"`

	Store       StoreFigures       `json:"store"`
	Sync        SyncFigures        `json:"full_sync"`
	Convergence *ConvergenceResult `json:"convergence,omitempty"`
	RSS         RSSFigures         `json:"rss"`
	Steady      steadyCounts       `json:"steady_state"`

	// BusyBefore and BusyAfter are the machine's busy percentage over one
	// second with nothing of the harness running, before and after.
	BusyBefore float64 `json:"background_busy_pct_before"`
	BusyAfter  float64 `json:"background_busy_pct_after"`

	Verdicts []Verdict `json:"verdicts"`
	Pass     bool      `json:"pass"`
	Notes    []string  `json:"notes,omitempty"`

	// lab and dir are the run's lab and temporary directory, for the
	// test that checks they are gone.
	lab, dir string
}

// Settings are the flags the run was made with.
type Settings struct {
	VTEPs      int     `json:"vteps"`
	MACs       int     `json:"macs_per_vtep"`
	IPs        int     `json:"ips_per_vtep"`
	VNI        uint32  `json:"vni"`
	LeaseTTL   string  `json:"lease_ttl"`
	Clients    int     `json:"etcd_clients"`
	Changes    int     `json:"changes"`
	Rate       float64 `json:"changes_per_second"`
	ChangeKind string  `json:"change"`
	Poll       string  `json:"poll_interval"`
	Window     string  `json:"steady_window"`
	Settle     string  `json:"settle"`
	Etcd       string  `json:"etcd_version,omitempty"`
}

// StoreFigures describe how the fleet filled etcd.
type StoreFigures struct {
	Keys         int     `json:"keys"`
	MACs         int     `json:"macs"`
	Txns         int     `json:"txns"`
	GrantSeconds float64 `json:"grant_seconds"`
	WriteSeconds float64 `json:"write_seconds"`
}

// SyncFigures are the full-sync times of a vtepd started on a full store,
// and how long the vtepd that watched while the fleet published took to
// hold everything.
type SyncFigures struct {
	// StartToInstalled is from starting the process to the FDB holding
	// every MAC as a control entry; the target is judged on it.
	StartToInstalled float64 `json:"start_to_installed_seconds"`
	// StartToConnected is from starting the process to the moment the
	// control plane reported itself connected (ControlStatus.Since).
	StartToConnected *float64 `json:"start_to_connected_seconds,omitempty"`
	// ConnectedToInstalled is the difference; it can be about zero, as a
	// backend reports itself connected after handing its first list over.
	ConnectedToInstalled *float64 `json:"connected_to_installed_seconds,omitempty"`
	// CountedBy says what "installed" was read from: the FDB's gauge
	// vtep_fdb_entries{type="control"}, or the backend's own count.
	CountedBy string `json:"counted_by"`
	// WatchInstalled is from the fleet's first put to the FDB of a vtepd
	// that was already watching holding every MAC.
	WatchInstalled float64 `json:"watch_installed_seconds"`
}

// ConvergenceResult is the convergence phase: each change timed from the
// put's answer (ack) to the first poll that showed the entry (seen).
type ConvergenceResult struct {
	Changes    int             `json:"changes"`
	RateAsked  float64         `json:"rate_asked"`
	RateMade   float64         `json:"rate_made"`
	AckToSeen  Dist            `json:"ack_to_seen"`
	SentToSeen Dist            `json:"sent_to_seen"`
	Put        Dist            `json:"put"`
	ByKind     map[string]Dist `json:"ack_to_seen_by_kind,omitempty"`
	Missed     int             `json:"missed"`
	Polls      int             `json:"polls"`
}

// RSSFigures are vtepd's VmRSS in KiB.
type RSSFigures struct {
	// Empty: connected, nothing in the store but its own registration,
	// after a garbage collection (see daemon.settledRSS).
	Empty uint64 `json:"empty_kb"`
	// Watched: the vtepd that watched the fleet publish, -settle after it
	// held everything, as it was.
	Watched uint64 `json:"watched_kb"`
	// Synced: the vtepd started on the full store, -settle after it held
	// everything, as it was: the sync's garbage not collected yet.
	Synced uint64 `json:"synced_kb"`
	// Settled: the same right after, once a garbage collection ran.
	Settled uint64 `json:"settled_kb"`
	// Later: the same after the steady-state window.
	Later uint64 `json:"later_kb"`
	// GrowthMiB is Settled - Empty, what the target is judged on;
	// TransientGrowthMiB is Synced - Empty.
	GrowthMiB          float64 `json:"growth_mib"`
	TransientGrowthMiB float64 `json:"transient_growth_mib"`
	// HeapInuseMiB is vtepd's go_memstats_heap_inuse_bytes at Settled,
	// HeapUnreleasedMiB its heap_idle less heap_released (free heap the
	// runtime has not given back, which RSS still counts), when its
	// /metrics has them.
	HeapInuseMiB      float64 `json:"heap_inuse_mib,omitempty"`
	HeapUnreleasedMiB float64 `json:"heap_unreleased_mib,omitempty"`
	// EmptyHeapInuseMiB is the heap in use at Empty.
	EmptyHeapInuseMiB float64 `json:"empty_heap_inuse_mib,omitempty"`
}

// Verdict is one target of the issue.
type Verdict struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
}

// judge fills the verdicts and Pass from the figures.
func (r *Results) judge() {
	r.Verdicts = nil
	add := func(name, target, value string, pass bool) {
		r.Verdicts = append(r.Verdicts, Verdict{Name: name, Target: target, Value: value, Pass: pass})
	}
	add(fmt.Sprintf("full sync, %s entries, start to installed", thousands(r.Store.MACs)),
		fmt.Sprintf("≤ %g s", targetSyncSeconds), fmt.Sprintf("%.2f s", r.Sync.StartToInstalled),
		r.Sync.StartToInstalled <= targetSyncSeconds)
	if c := r.Convergence; c != nil {
		add(fmt.Sprintf("convergence p99 at %g changes/s", c.RateAsked), fmt.Sprintf("≤ %g ms", targetP99ms),
			fmt.Sprintf("%.1f ms (p50 %.1f ms, %d missed)", c.AckToSeen.P99, c.AckToSeen.P50, c.Missed),
			c.AckToSeen.P99 <= targetP99ms && c.Missed == 0 && c.AckToSeen.N > 0)
	}
	add(fmt.Sprintf("%s RSS growth, %s entries, after a GC", r.Target, thousands(r.Store.MACs)), fmt.Sprintf("≤ %g MiB", targetRSSMiB),
		fmt.Sprintf("%.1f MiB (%.1f MiB before it)", r.RSS.GrowthMiB, r.RSS.TransientGrowthMiB), r.RSS.GrowthMiB <= targetRSSMiB)
	s := r.Steady
	add("steady state: requests other than keepalives", "0 (keepalives only)",
		fmt.Sprintf("%.0f in %.0f s; %s keepalives %.2f/s", s.Other, s.Seconds, r.Target, s.VtepdKAPerSec),
		s.Other == 0 && s.Seconds > 0)
	r.Pass = true
	for _, v := range r.Verdicts {
		r.Pass = r.Pass && v.Pass
	}
}

// thousands writes n with commas: 100,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(kb uint64) float64 { return float64(kb) / 1024 }

// writeTable prints the figures and the verdicts.
func writeTable(w io.Writer, r *Results) error {
	fmt.Fprintf(w, "%s control plane on etcd %s: %s VTEPs × %d MACs (%s entries) in VNI %d, lease TTL %s; %d CPUs, Linux %s\n\n",
		r.Target, r.Settings.Etcd, thousands(r.Settings.VTEPs), r.Settings.MACs, thousands(r.Store.MACs), r.Settings.VNI,
		r.Settings.LeaseTTL, r.System.CPUs, r.System.Kernel)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("background load", fmt.Sprintf("%.0f%% of the CPUs busy before the run, %.0f%% after", r.BusyBefore, r.BusyAfter))
	row("store filled", fmt.Sprintf("%s keys in %d txns: %.2f s (leases granted in %.2f s)",
		thousands(r.Store.Keys), r.Store.Txns, r.Store.WriteSeconds, r.Store.GrantSeconds))
	row("watched while published", fmt.Sprintf("all installed %.2f s after the first put", r.Sync.WatchInstalled))
	fs := fmt.Sprintf("start → installed %.2f s", r.Sync.StartToInstalled)
	if r.Sync.StartToConnected != nil {
		fs += fmt.Sprintf("; start → connected %.2f s, connected → installed %.2f s", *r.Sync.StartToConnected, *r.Sync.ConnectedToInstalled)
	}
	row("full sync", fs+" ("+r.Sync.CountedBy+")")
	if c := r.Convergence; c != nil {
		row("convergence", fmt.Sprintf("%d changes (%s) at %.0f/s: put ack → seen p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f; %d missed",
			c.Changes, r.Settings.ChangeKind, c.RateMade, c.AckToSeen.P50, c.AckToSeen.P90, c.AckToSeen.P99, c.AckToSeen.Max, c.Missed))
		row("", fmt.Sprintf("put sent → seen p50 %.1f ms, p99 %.1f; the put itself p50 %.1f ms, p99 %.1f; %d polls",
			c.SentToSeen.P50, c.SentToSeen.P99, c.Put.P50, c.Put.P99, c.Polls))
		kinds := make([]string, 0, len(c.ByKind))
		for k := range c.ByKind {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			d := c.ByKind[k]
			row("", fmt.Sprintf("%s: %d, p50 %.1f ms, p99 %.1f ms", k, d.N, d.P50, d.P99))
		}
	}
	heap := ""
	if r.RSS.HeapInuseMiB > 0 {
		heap = fmt.Sprintf("; Go heap in use %.1f MiB (empty %.1f), free but not released %.1f MiB",
			r.RSS.HeapInuseMiB, r.RSS.EmptyHeapInuseMiB, r.RSS.HeapUnreleasedMiB)
	}
	row("RSS", fmt.Sprintf("empty %.1f MiB; after the full sync %.1f MiB (%+.1f), after a GC %.1f MiB (%+.1f)%s",
		mib(r.RSS.Empty), mib(r.RSS.Synced), r.RSS.TransientGrowthMiB, mib(r.RSS.Settled), r.RSS.GrowthMiB, heap))
	row("", fmt.Sprintf("%s later %.1f MiB; the vtepd that watched the fleet publish %.1f MiB", r.Settings.Window, mib(r.RSS.Later), mib(r.RSS.Watched)))
	s := r.Steady
	row("etcd, steady state", fmt.Sprintf("%.1f requests/s over %.0f s: %s", s.TotalPerSec, s.Seconds, methodsText(s.ByMethod, s.Seconds)))
	row("", fmt.Sprintf("fleet keepalives %.1f/s (%s leases); %s keepalives %.2f/s, other requests %.0f",
		s.FleetKAPerSec, thousands(r.Settings.VTEPs), r.Target, s.VtepdKAPerSec, s.Other))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured\tverdict")
	for _, v := range r.Verdicts {
		verdict := "pass"
		if !v.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Target, v.Value, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// methodsText lists request rates by method, busiest first.
func methodsText(by map[string]float64, secs float64) string {
	if len(by) == 0 || secs <= 0 {
		return "none"
	}
	ms := make([]string, 0, len(by))
	for m := range by {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b string) int {
		if by[a] != by[b] {
			if by[a] > by[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %.2f/s", m, by[m]/secs)
	}
	return strings.Join(parts, ", ")
}

// writeMarkdown writes the verdicts as a Markdown table, as the README
// quotes them.
func writeMarkdown(w io.Writer, r *Results) error {
	fmt.Fprintf(w, "%s, %s VTEPs × %d MACs, %s (%s)\n\n", r.Target, thousands(r.Settings.VTEPs), r.Settings.MACs,
		r.Time.Format(time.RFC3339), r.System.Commit)
	fmt.Fprintln(w, "| target | goal | measured | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, v := range r.Verdicts {
		verdict := "pass"
		if !v.Pass {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", v.Name, v.Target, v.Value, verdict)
	}
	return nil
}

// write saves r as latest.json, latest.md and a timestamped JSON copy in
// dir, owned by the user behind sudo.
func (r *Results) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	var md strings.Builder
	if err := writeMarkdown(&md, r); err != nil {
		return nil, err
	}
	files := map[string][]byte{
		r.Time.UTC().Format("20060102T150405Z") + ".json": b,
		"latest.json": b,
		"latest.md":   []byte(md.String()),
	}
	var written []string
	for _, name := range []string{r.Time.UTC().Format("20060102T150405Z") + ".json", "latest.json", "latest.md"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".tmp", files[name], 0o644); err != nil {
			return written, err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	harness.Chown(append(written, dir)...)
	return written, nil
}
