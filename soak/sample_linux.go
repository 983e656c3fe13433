package main

// Sampling while the soak runs: the resident size, goroutines, fds and
// FDB of each vtepd, read from /proc and its endpoints.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// sampleLoop looks at every vtepd every interval from start to end. A
// vtepd found dead is reported once and no longer sampled; one that
// answers no look for hangAfter is reported as hung.
func (r *runner) sampleLoop(reports []HostReport, start, end time.Time) {
	dead := make([]bool, len(r.hosts))
	lastOK := make([]time.Time, len(r.hosts))
	for i := range lastOK {
		lastOK[i] = start
	}
	next := start
	lastProgress := start
	for !next.After(end) {
		sleepUntil(next)
		t := time.Since(start).Seconds()
		for i := range r.hosts {
			if dead[i] {
				continue
			}
			rep := &reports[i]
			if r.vtepds[i].Exited() {
				dead[i] = true
				code, err := r.vtepds[i].Wait(0)
				rep.Problems = append(rep.Problems, fmt.Sprintf("vtepd died at %.0fs (status %d, %v):\n%s",
					t, code, err, tail([]byte(r.vtepds[i].Output()), 3000)))
				continue
			}
			s, attackers, err := r.look(i)
			if err != nil {
				rep.MissedLooks++
				rep.LastMiss = fmt.Sprintf("at %.0fs: %v", t, err)
				if time.Since(lastOK[i]) >= hangAfter {
					rep.Problems = append(rep.Problems, fmt.Sprintf("no answer for %v: %s", hangAfter, rep.LastMiss))
					lastOK[i] = time.Now() // report each hang once
				}
				continue
			}
			lastOK[i] = time.Now()
			s.T = t
			rep.Samples = append(rep.Samples, s)
			rep.FDBMax = max(rep.FDBMax, s.FDB)
			for _, a := range attackers {
				if len(rep.AttackerEntries) < 10 {
					rep.AttackerEntries = append(rep.AttackerEntries, a)
				}
			}
		}
		if time.Since(lastProgress) >= 30*time.Second || !next.Add(r.o.interval).Before(end) {
			lastProgress = time.Now()
			var parts []string
			for _, rep := range reports {
				if n := len(rep.Samples); n > 0 {
					s := rep.Samples[n-1]
					parts = append(parts, fmt.Sprintf("%s %.1f MiB %d gr %d fdb", rep.Host, float64(s.RSSKB)/1024, s.Goroutines, s.FDB))
				}
			}
			r.progress("vtepd: %3.0fs: %s", t, strings.Join(parts, ", "))
		}
		next = next.Add(r.o.interval)
	}
}

// fdbEntry is one element of vtepd's GET /fdb.
type fdbEntry struct {
	VNI    uint32 `json:"vni"`
	MAC    string `json:"mac"`
	Remote string `json:"remote"`
	Type   string `json:"type"`
}

// look samples vtepd on host i: /proc, /metrics and /fdb. It returns the
// /fdb entries that came from the attacker.
func (r *runner) look(i int) (Sample, []string, error) {
	var s Sample
	h, pid := r.hosts[i], r.vtepds[i].PID()
	samples, err := scrape(h)
	if err != nil {
		return s, nil, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, nil, err
	}
	if s.RSSKB, err = parseStatusField(status, "VmRSS"); err != nil {
		return s, nil, err
	}
	if s.AnonKB, err = parseStatusField(status, "RssAnon"); err != nil {
		return s, nil, err
	}
	if s.FileKB, err = parseStatusField(status, "RssFile"); err != nil {
		return s, nil, err
	}
	threads, err := parseStatusField(status, "Threads")
	if err != nil {
		return s, nil, err
	}
	s.Threads = int(threads)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, nil, err
	}
	s.FDs = len(fds)
	v := func(name string, labels ...string) float64 {
		x, _ := metricValue(samples, name, labels...)
		return x
	}
	ours := []string{"vni", strconv.Itoa(vni)}
	s.Goroutines = int(v("go_goroutines"))
	s.GSOSockets = int(v("vtep_udp_gso_sockets"))
	s.HeapBytes = uint64(v("go_memstats_heap_inuse_bytes"))
	s.HeapGoal = uint64(v("go_memstats_next_gc_bytes"))
	s.FDB = int(v("vtep_fdb_entries", append(ours, "type", "learned")...))
	s.Learned = uint64(v("vtep_fdb_learned_total", ours...))
	s.Moves = uint64(v("vtep_fdb_moves_total", ours...))
	s.Expired = uint64(v("vtep_fdb_expired_total", ours...))
	s.RxPackets = uint64(v("vtep_rx_packets_total", ours...))
	s.TxPackets = uint64(v("vtep_tx_packets_total", ours...))
	s.Drops = uint64(v("vtep_drops_total"))
	s.AllocBytes = uint64(v("go_memstats_alloc_bytes_total"))
	s.GCs = uint64(v("go_gc_duration_seconds_count"))
	if _, ok := metricValue(samples, "go_goroutines"); !ok {
		return s, nil, errors.New("/metrics has no go_goroutines")
	}

	body, err := h.HTTPGet("http://" + metricsAddr + "/fdb")
	if err != nil {
		return s, nil, err
	}
	var entries []fdbEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return s, nil, fmt.Errorf("GET /fdb: %w", err)
	}
	var bad []string
	for _, e := range entries {
		mac, _ := net.ParseMAC(e.MAC)
		remote, _ := netip.ParseAddr(e.Remote)
		if isAttackerMAC(mac) || (e.Type == "learned" && !acceptFrom.Contains(remote)) {
			bad = append(bad, fmt.Sprintf("%s -> %s (%s)", e.MAC, e.Remote, e.Type))
		}
	}
	return s, bad, nil
}

// scrape fetches and parses /metrics of vtepd on h.
func scrape(h *topo.Host) ([]sample, error) {
	body, err := h.HTTPGet("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(body))
}

// finalLook reads vtepd's counters once the traffic is over and every
// workload process has reported: FDB totals, drops, and the drops of its
// underlay sockets.
func (r *runner) finalLook(i int, rep *HostReport, p Phase) {
	h := r.hosts[i]
	rep.HostileSent = p.HostileSent[h.Name]
	if r.vtepds[i].Exited() {
		return // reported by sampleLoop
	}
	samples, err := scrape(h)
	if err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("final scrape: %v", err))
		return
	}
	ours := []string{"vni", strconv.Itoa(vni)}
	v := func(name string, labels ...string) uint64 {
		x, _ := metricValue(samples, name, labels...)
		return uint64(x)
	}
	rep.FDBLearned = v("vtep_fdb_learned_total", ours...)
	rep.FDBMoves = v("vtep_fdb_moves_total", ours...)
	rep.FDBExpired = v("vtep_fdb_expired_total", ours...)
	rep.FDBRefused = v("vtep_fdb_refused_total", ours...)
	rep.RxPackets = v("vtep_rx_packets_total", ours...)
	rep.TxPackets = v("vtep_tx_packets_total", ours...)
	rep.Drops = dropsByReason(samples)
	rep.HostileCounted = map[string]uint64{}
	for _, k := range hostileKinds {
		rep.HostileCounted[k.Reason] = rep.Drops[hostileCounterKey(k, vni)]
	}
	udp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp", r.vtepds[i].PID()))
	if err == nil {
		var n int
		rep.SocketDrops, n, err = parseUDPDrops(udp, netip.AddrPortFrom(h.Underlay, vxlanPort))
		if err == nil && n == 0 {
			err = errors.New("no socket bound to the VXLAN port")
		}
	}
	if err != nil {
		r.note("%s: underlay socket drops unknown: %v", h.Name, err)
	}
}

// loadAverage is the 1-minute load average; 0 if unreadable.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
