package main

// Parsers for what the harness reads from other programs and from /proc,
// and the statistics it reports. All of them are pure functions over bytes,
// tested without root in parse_test.go.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vtepd/vtepd/internal/harness"
)

// errNoData is wrapped by parsers whose input holds no usable sample.
var errNoData = harness.ErrNoData

// iperfResult and parseIperf read iperf3's report (internal/harness).
type iperfResult = harness.Iperf

func parseIperf(out []byte) (iperfResult, error) { return harness.ParseIperf(out) }

// parsePingRTTs returns the round-trip times, in microseconds, of every
// reply line of iputils ping output, in order:
//
//	64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=0.054 ms
//
// Lines without "time=" (the header, the summary, "Destination Host
// Unreachable") and duplicate replies ("(DUP!)") are skipped. Output
// without a single reply is an error.
func parsePingRTTs(out []byte) ([]float64, error) {
	var rtts []float64
	for line := range strings.SplitSeq(string(out), "\n") {
		if !strings.Contains(line, " bytes from ") || strings.Contains(line, "(DUP!)") {
			continue
		}
		_, after, ok := strings.Cut(line, " time=")
		if !ok {
			continue
		}
		f := strings.Fields(after)
		if len(f) < 2 {
			return nil, fmt.Errorf("ping: no unit after time= in %q", line)
		}
		value, unit := f[0], f[1]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("ping: %q: %w", line, err)
		}
		switch unit {
		case "ms":
			v *= 1e3
		case "us", "µs":
		case "s":
			v *= 1e6
		default:
			return nil, fmt.Errorf("ping: unknown unit %q in %q", unit, line)
		}
		rtts = append(rtts, v)
	}
	if len(rtts) == 0 {
		return nil, fmt.Errorf("ping: %w: no replies: %s", errNoData, tail(out, 300))
	}
	return rtts, nil
}

// parsePidStat returns utime + stime, in clock ticks, from the contents of
// /proc/<pid>/stat. The command name in parentheses may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
func parsePidStat(data []byte) (uint64, error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/<pid>/stat: no ')' in %q", tail(data, 100))
	}
	// After ")": state (field 3), ppid (4), ... utime (14), stime (15).
	f := strings.Fields(s[i+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("/proc/<pid>/stat: %d fields after the name, want more than %d", len(f), stime)
	}
	u, err := strconv.ParseUint(f[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/<pid>/stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/<pid>/stat: stime: %w", err)
	}
	return u + st, nil
}

// taskStat is one thread's run time and context switches.
type taskStat struct {
	runNs, vol, invol float64
}

// parseTaskStat reads a thread's /proc/<pid>/task/<tid>/schedstat (its
// first field: nanoseconds on the CPU) and the voluntary_ctxt_switches
// and nonvoluntary_ctxt_switches lines of its status.
func parseTaskStat(schedstat, status []byte) (taskStat, error) {
	var s taskStat
	f := strings.Fields(string(schedstat))
	if len(f) == 0 {
		return s, fmt.Errorf("schedstat: %w", errNoData)
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return s, fmt.Errorf("schedstat: %w", err)
	}
	s.runNs = float64(ns)
	found := 0
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return s, fmt.Errorf("status: %s: %w", k, err)
		}
		if k == "voluntary_ctxt_switches" {
			s.vol = float64(n)
		} else {
			s.invol = float64(n)
		}
		found++
	}
	if found != 2 {
		return s, fmt.Errorf("status: %w: no context switch counts", errNoData)
	}
	return s, nil
}

// parseUDPRcvbufErrors returns Udp RcvbufErrors from the contents of
// /proc/net/snmp (of the namespace that read it): datagrams dropped
// because a UDP socket's receive buffer was full. The file gives each
// protocol a line of names and a line of values:
//
//	Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors ...
//	Udp: 1034 0 0 1022 0 0 ...
func parseUDPRcvbufErrors(data []byte) (uint64, error) {
	var names []string
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		i := slices.Index(names, "RcvbufErrors")
		if i < 0 || len(f) != len(names) {
			return 0, fmt.Errorf("/proc/net/snmp: Udp lines of %d and %d fields, RcvbufErrors at %d", len(names), len(f), i)
		}
		return strconv.ParseUint(f[i], 10, 64)
	}
	return 0, fmt.Errorf("/proc/net/snmp: %w: no Udp lines", errNoData)
}

// parseLinkDrops returns the drop counters of every interface in the
// output of `ip -s -j link show`, keyed "IFNAME rx_dropped" and "IFNAME
// tx_dropped".
func parseLinkDrops(data []byte) (map[string]uint64, error) {
	var links []struct {
		Name  string `json:"ifname"`
		Stats struct {
			RX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"rx"`
			TX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(data, &links); err != nil {
		return nil, fmt.Errorf("ip -s -j link: %w", err)
	}
	out := map[string]uint64{}
	for _, l := range links {
		if l.Name == "" {
			return nil, fmt.Errorf("ip -s -j link: %w: an interface without a name", errNoData)
		}
		out[l.Name+" rx_dropped"] = l.Stats.RX.Dropped
		out[l.Name+" tx_dropped"] = l.Stats.TX.Dropped
	}
	return out, nil
}

// parseSoftnetDrops sums the second column of /proc/net/softnet_stat (one
// line per CPU, hexadecimal): packets dropped because a CPU's input
// backlog (net.core.netdev_max_backlog) was full, machine-wide.
func parseSoftnetDrops(data []byte) (uint64, error) {
	var sum uint64
	lines := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			return 0, fmt.Errorf("/proc/net/softnet_stat: short line %q", line)
		}
		v, err := strconv.ParseUint(f[1], 16, 32)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/softnet_stat: %w", err)
		}
		sum += v
		lines++
	}
	if lines == 0 {
		return 0, fmt.Errorf("/proc/net/softnet_stat: %w", errNoData)
	}
	return sum, nil
}

// parseFlowCounts parses -search-flows: "1,4" is [1 4]. Each count is in
// 1..64 (a sender thread each) and appears once.
func parseFlowCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 || slices.Contains(out, n) {
			return nil, fmt.Errorf("-search-flows %q: want distinct counts in 1..64, such as 1,4", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// median of xs (the mean of the two middle values for an even count);
// NaN for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of xs by the nearest-rank method (p in (0, 100]): the
// smallest sample such that at least p% of the samples are at most it.
// NaN for none. xs is not modified.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// tail returns the last n bytes of b, for error messages.
var tail = harness.Tail
