package main

// Parsers for what the soak reads from vtepd and from /proc, and the
// statistics it judges them by. All of them are pure functions over bytes
// or numbers, tested without root in parse_test.go.

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/promtext"
)

// errNoData is wrapped by parsers whose input holds no usable sample.
var errNoData = harness.ErrNoData

// sample, parseMetrics and metricValue read vtepd's /metrics through
// internal/promtext (Prometheus's own text parser).
type sample = promtext.Sample

func parseMetrics(text string) ([]sample, error) { return promtext.Parse(text) }

func metricValue(samples []sample, name string, labels ...string) (float64, bool) {
	return promtext.Value(samples, name, labels...)
}

// dropsByReason returns vtep_drops_total per "reason/vni", e.g.
// "too_short/unknown", leaving out zeros.
func dropsByReason(samples []sample) map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range samples {
		if s.Name == "vtep_drops_total" && s.Value > 0 {
			out[s.Labels["reason"]+"/"+s.Labels["vni"]] += uint64(s.Value)
		}
	}
	return out
}

// parseStatusField returns a numeric field of /proc/<pid>/status, the
// number before any unit: "VmRSS:	   12345 kB" gives 12345.
func parseStatusField(data []byte, field string) (uint64, error) {
	for line := range strings.SplitSeq(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/<pid>/status: %s has no value", field)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/<pid>/status: %s: %w", field, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("/proc/<pid>/status: %w: no %s line", errNoData, field)
}

// parseUDPDrops sums the "drops" column of the sockets in /proc/net/udp
// (of some namespace) bound to local, and says how many there were: the
// datagrams the kernel discarded because the socket's receive buffer was
// full. Addresses there are hex in host byte order, ports hex:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
//	 7: 010012C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
func parseUDPDrops(data []byte, local netip.AddrPort) (drops uint64, sockets int, err error) {
	if !local.Addr().Is4() {
		return 0, 0, fmt.Errorf("/proc/net/udp: %v is not IPv4", local)
	}
	a := local.Addr().As4()
	want := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), local.Port())
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) == 0 || !strings.Contains(lines[0], "local_address") {
		return 0, 0, fmt.Errorf("/proc/net/udp: %w: no header", errNoData)
	}
	col := slices.Index(strings.Fields(lines[0]), "drops")
	if col < 0 {
		return 0, 0, fmt.Errorf("/proc/net/udp: no drops column in %q", lines[0])
	}
	// The header names "tx_queue rx_queue" and "tr tm->when" as four
	// columns where the rows have two, and "sl" where the rows have "N:".
	col -= 2
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col || !strings.EqualFold(f[1], want) {
			continue
		}
		v, err := strconv.ParseUint(f[col], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/net/udp: drops of %q: %w", line, err)
		}
		drops += v
		sockets++
	}
	return drops, sockets, nil
}

// parseSNMP returns the counters of one protocol of /proc/net/snmp, whose
// lines come in pairs, names then values:
//
//	Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors ...
//	Udp: 1234 0 0 1200 0 ...
func parseSNMP(data []byte, proto string) (map[string]uint64, error) {
	prefix := proto + ":"
	var names []string
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		if len(f)-1 != len(names) {
			return nil, fmt.Errorf("/proc/net/snmp: %s has %d names and %d values", proto, len(names), len(f)-1)
		}
		out := make(map[string]uint64, len(names))
		for i, n := range names {
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/snmp: %s %s: %w", proto, n, err)
			}
			out[n] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("/proc/net/snmp: %w: no %s lines", errNoData, proto)
}

// flatness describes a series after warm-up: its extremes, first and last
// values, and whether it stayed within tolerance.
type flatness struct {
	Min, Max      float64
	First, Last   float64
	Samples       int
	Spread        float64 // (Max-Min)/Min, as a fraction
	Allowed       float64 // the largest Max-Min that passes
	SlopePerHour  float64 // least-squares trend, in units per hour
	Flat          bool
	NotEnoughData bool
}

// minFlatSamples is the fewest post-warm-up samples a verdict is given on.
const minFlatSamples = 3

// judgeFlat says whether ys (taken at times ts, in seconds) stayed flat:
// Max-Min at most frac of Min, or at most abs when that is larger (for
// small integer series, where one goroutine serving the scrape itself is
// already a few percent).
func judgeFlat(ts, ys []float64, frac, abs float64) flatness {
	f := flatness{Samples: len(ys)}
	if len(ys) < minFlatSamples || len(ts) != len(ys) {
		f.NotEnoughData = true
		return f
	}
	f.Min, f.Max = math.Inf(1), math.Inf(-1)
	for _, y := range ys {
		f.Min, f.Max = min(f.Min, y), max(f.Max, y)
	}
	f.First, f.Last = ys[0], ys[len(ys)-1]
	if f.Min > 0 {
		f.Spread = (f.Max - f.Min) / f.Min
	}
	f.Allowed = max(frac*f.Min, abs)
	f.Flat = f.Max-f.Min <= f.Allowed
	f.SlopePerHour = slope(ts, ys) * 3600
	return f
}

// rollingMedian replaces ys by the medians of its windows of k
// consecutive values, each at the time of the window's middle sample.
// Fewer than k values are returned as they are.
func rollingMedian(ts, ys []float64, k int) ([]float64, []float64) {
	if k < 2 || len(ys) < k || len(ts) != len(ys) {
		return ts, ys
	}
	var ots, oys []float64
	w := make([]float64, k)
	for i := 0; i+k <= len(ys); i++ {
		copy(w, ys[i:i+k])
		slices.Sort(w)
		m := w[k/2]
		if k%2 == 0 {
			m = (w[k/2-1] + w[k/2]) / 2
		}
		ots = append(ots, ts[i+k/2])
		oys = append(oys, m)
	}
	return ots, oys
}

// slope is the least-squares slope of ys over xs; 0 if xs do not vary.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// lossRate is lost/attempted, 0 when nothing was attempted.
func lossRate(lost, attempted uint64) float64 {
	if attempted == 0 {
		return 0
	}
	return float64(lost) / float64(attempted)
}

// tail returns the last n bytes of b, for error messages.
var tail = harness.Tail
