// Command traceparse summarises a Go runtime trace of vtepd: wake-ups per
// goroutine kind and blocking reason, scheduling latency (runnable to
// running), syscall durations by call site, GC and STW ranges, and P
// (thread) starts. With -ping FILE (ping -D output covering the trace),
// it lines each echo up with the trace: for every echo, the wake-ups of
// vtepd goroutines inside its [send, reply] window and their latencies.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type gstate struct {
	label       string
	runnableAt  trace.Time
	syscallAt   trace.Time
	syscallSite string
	blockReason string
	blockedAt   trace.Time
}

type wake struct {
	t       trace.Time // became runnable
	run     trace.Time // started running
	label   string
	reason  string
	blocked time.Duration // how long it had been blocked
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func labelOf(st trace.Stack) string {
	var frames []trace.StackFrame
	for f := range st.Frames() {
		frames = append(frames, f)
	}
	// outermost frame that is not runtime.goexit
	for i := len(frames) - 1; i >= 0; i-- {
		fn := frames[i].Func
		if fn == "runtime.goexit" || fn == "" || strings.HasPrefix(fn, "sync.(*WaitGroup).Go") || strings.HasPrefix(fn, "golang.org/x/sync/errgroup") {
			continue
		}
		return shorten(fn)
	}
	return "?"
}

func siteOf(st trace.Stack) string {
	// first frame (from the leaf) in vtepd's own packages
	for f := range st.Frames() {
		if strings.Contains(f.Func, "vtepd/vtepd/") {
			return shorten(f.Func) + ":" + strconv.Itoa(int(f.Line))
		}
	}
	for f := range st.Frames() {
		return shorten(f.Func)
	}
	return "?"
}

func shorten(fn string) string {
	return strings.TrimPrefix(fn, "github.com/vtepd/vtepd/")
}

func main() {
	pingFile := flag.String("ping", "", "ping -D output")
	slow := flag.Float64("slow", 0, "echoes with RTT above this many µs are listed (0: p99)")
	flag.Parse()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		panic(err)
	}
	r, err := trace.NewReader(bufio.NewReader(f))
	if err != nil {
		panic(err)
	}
	gs := map[trace.GoID]*gstate{}
	get := func(id trace.GoID) *gstate {
		g := gs[id]
		if g == nil {
			g = &gstate{label: "?"}
			gs[id] = g
		}
		return g
	}
	wakes := map[string]int{}
	schedLat := map[string][]float64{}
	sysDur := map[string][]float64{}
	var allWakes []wake
	gcRanges := map[string][]float64{}
	rangeStart := map[string]trace.Time{}
	procStarts := 0
	var first, last trace.Time
	var snap *trace.ClockSnapshot
	for {
		ev, err := r.ReadEvent()
		if err != nil {
			break
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		switch ev.Kind() {
		case trace.EventSync:
			if s := ev.Sync(); s.ClockSnapshot != nil && snap == nil {
				snap = s.ClockSnapshot
			}
		case trace.EventRangeBegin, trace.EventRangeActive:
			rg := ev.Range()
			rangeStart[rg.Name] = ev.Time()
		case trace.EventRangeEnd:
			rg := ev.Range()
			if t0, ok := rangeStart[rg.Name]; ok {
				gcRanges[rg.Name] = append(gcRanges[rg.Name], float64(ev.Time()-t0)/1e3)
				delete(rangeStart, rg.Name)
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			switch st.Resource.Kind {
			case trace.ResourceProc:
				from, to := st.Proc()
				if from == trace.ProcIdle && to == trace.ProcRunning {
					procStarts++
				}
			case trace.ResourceGoroutine:
				id := st.Resource.Goroutine()
				g := get(id)
				from, to := st.Goroutine()
				if st.Stack != trace.NoStack && (g.label == "?" || from == trace.GoNotExist) {
					if l := labelOf(st.Stack); l != "?" {
						g.label = l
					}
				}
				switch {
				case to == trace.GoWaiting:
					g.blockReason = st.Reason
					g.blockedAt = ev.Time()
				case from == trace.GoWaiting && to == trace.GoRunnable:
					g.runnableAt = ev.Time()
					wakes[g.label+" ["+g.blockReason+"]"]++
				case from == trace.GoRunnable && to == trace.GoRunning:
					if g.runnableAt != 0 {
						lat := float64(ev.Time()-g.runnableAt) / 1e3
						schedLat[g.label] = append(schedLat[g.label], lat)
						allWakes = append(allWakes, wake{t: g.runnableAt, run: ev.Time(), label: g.label, reason: g.blockReason,
							blocked: time.Duration(g.runnableAt - g.blockedAt)})
						g.runnableAt = 0
					}
				case to == trace.GoSyscall:
					g.syscallAt = ev.Time()
					g.syscallSite = siteOf(st.Stack)
					if st.Stack == trace.NoStack {
						g.syscallSite = siteOf(ev.Stack())
					}
				case from == trace.GoSyscall:
					if g.syscallAt != 0 {
						sysDur[g.syscallSite] = append(sysDur[g.syscallSite], float64(ev.Time()-g.syscallAt)/1e3)
						g.syscallAt = 0
					}
				}
			}
		}
	}
	secs := float64(last-first) / 1e9
	fmt.Printf("trace: %.2f s\n\n", secs)
	fmt.Printf("wake-ups (waiting -> runnable), per second, by goroutine [reason it blocked]:\n")
	type kv struct {
		k string
		v int
	}
	var ws []kv
	for k, v := range wakes {
		ws = append(ws, kv{k, v})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].v > ws[j].v })
	for _, w := range ws {
		fmt.Printf("  %8.2f/s  %s\n", float64(w.v)/secs, w.k)
	}
	fmt.Printf("  Ps started (idle -> running): %.1f/s\n\n", float64(procStarts)/secs)
	fmt.Printf("scheduling latency (runnable -> running), µs: n, p50, p90, p99, max\n")
	for _, k := range sortedKeys(schedLat) {
		xs := schedLat[k]
		fmt.Printf("  %-50s %6d %7.1f %7.1f %7.1f %8.1f\n", k, len(xs), pct(xs, 50), pct(xs, 90), pct(xs, 99), pct(xs, 100))
	}
	fmt.Printf("\nsyscalls by site, µs: n, total ms, p50, p99, max\n")
	for _, k := range sortedKeys(sysDur) {
		xs := sysDur[k]
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		fmt.Printf("  %-50s %6d %8.2f %7.1f %7.1f %8.1f\n", k, len(xs), sum/1e3, pct(xs, 50), pct(xs, 99), pct(xs, 100))
	}
	fmt.Printf("\nranges (GC, STW...), µs: n, p50, max\n")
	for _, k := range sortedKeys(gcRanges) {
		xs := gcRanges[k]
		fmt.Printf("  %-50s %6d %8.1f %8.1f\n", k, len(xs), pct(xs, 50), pct(xs, 100))
	}
	if *pingFile == "" || snap == nil {
		return
	}
	// trace time -> wall clock
	toWall := func(t trace.Time) time.Time { return snap.Wall.Add(time.Duration(t - snap.Trace)) }
	echoes := readPing(*pingFile)
	var rtts []float64
	for _, e := range echoes {
		rtts = append(rtts, e.rtt)
	}
	lim := *slow
	if lim == 0 {
		lim = pct(rtts, 99)
	}
	tStart, tEnd := toWall(first), toWall(last)
	in, slowIn := 0, 0
	var maxLatSlow, maxLatFast []float64
	fmt.Printf("\nechoes with RTT >= %.0f µs inside the trace, and every vtepd wake-up between the echo's send and its reply:\n", lim)
	for _, e := range echoes {
		send := e.recv.Add(-time.Duration(e.rtt * 1e3))
		if send.Before(tStart) || e.recv.After(tEnd) {
			continue
		}
		in++
		worst := 0.0
		var lines []string
		for _, w := range allWakes {
			wt := toWall(w.t)
			if wt.Before(send.Add(-50*time.Microsecond)) || wt.After(e.recv) {
				continue
			}
			lat := float64(w.run-w.t) / 1e3
			worst = max(worst, lat)
			lines = append(lines, fmt.Sprintf("      +%7.1f µs  %-40s [%s] runnable -> running %.1f µs (blocked %.1f ms before)",
				float64(wt.Sub(send).Nanoseconds())/1e3, w.label, w.reason, lat, w.blocked.Seconds()*1e3))
		}
		if e.rtt >= lim {
			slowIn++
			maxLatSlow = append(maxLatSlow, worst)
			mono := float64(snap.Mono)/1e9 + send.Sub(snap.Wall).Seconds()
			fmt.Printf("  seq %d rtt %.0f µs, sent %s (CLOCK_MONOTONIC %.6f)\n", e.seq, e.rtt, send.Format("15:04:05.000000"), mono)
			for _, l := range lines {
				fmt.Println(l)
			}
		} else {
			maxLatFast = append(maxLatFast, worst)
		}
	}
	fmt.Printf("\n%d echoes inside the trace, %d at or over %.0f µs\n", in, slowIn, lim)
	fmt.Printf("worst runnable->running delay within an echo, µs: slow echoes p50 %.1f max %.1f; the others p50 %.1f p99 %.1f\n",
		pct(maxLatSlow, 50), pct(maxLatSlow, 100), pct(maxLatFast, 50), pct(maxLatFast, 99))
}

type echo struct {
	seq  int
	rtt  float64 // µs
	recv time.Time
}

var pingRe = regexp.MustCompile(`^\[(\d+)\.(\d+)\].*icmp_seq=(\d+).* time=([\d.]+) ms`)

func readPing(path string) []echo {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	var out []echo
	for _, line := range strings.Split(string(b), "\n") {
		m := pingRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := m[2]
		for len(frac) < 9 {
			frac += "0"
		}
		ns, _ := strconv.ParseInt(frac[:9], 10, 64)
		seq, _ := strconv.Atoi(m[3])
		ms, _ := strconv.ParseFloat(m[4], 64)
		out = append(out, echo{seq: seq, rtt: ms * 1e3, recv: time.Unix(sec, ns)})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
