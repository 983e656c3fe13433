package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// Profiles on request (-profile-dir): while each workload runs over vtepd,
// a CPU profile of each vtepd and, for the light workloads (idle, lat), a
// runtime trace of the whole workload (pps and tcp1: its first
// traceShort); around each, each vtepd's CPU time and context switches,
// as a line of cpu.tsv. The rate search profiles its full-length trials.
// None of it is counted in the results: a profile costs vtepd a little
// CPU, so figures of a profiled run are a touch pessimistic.

// traceShort is the length of the trace taken under heavy load, where a
// trace of the whole workload would be large.
const traceShort = 2 * time.Second

// capture is the profiles being taken of both vtepds during one workload,
// and the processes' counters from before it.
type capture struct {
	name   string
	before [2]procStat
	start  time.Time
	done   chan error
	n      int // fetches in flight
}

// profileStart starts the profiles of both vtepds for a workload named
// name that lasts about d; nil when -profile-dir is not set or the data
// path is the kernel's.
func (r *runner) profileStart(mode, name string, d time.Duration, trace time.Duration) (*capture, error) {
	if r.o.profileDir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(r.o.profileDir, 0o755); err != nil { // the kernel's ping output goes there too
		return nil, err
	}
	if mode != modeVtepd {
		return nil, nil
	}
	c := &capture{name: name, start: time.Now(), done: make(chan error, 2*len(r.hosts))}
	for i, p := range r.procs {
		s, err := readProcStat(p.PID())
		if err != nil {
			return nil, err
		}
		c.before[i] = s
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	for _, h := range r.hosts {
		client := h.HTTPClient(time.Duration(secs)*time.Second + slack)
		fetch := func(endpoint string, secs int, file string) {
			c.n++
			go func() {
				c.done <- fetchTo(client, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", metricsAddr, endpoint, secs),
					filepath.Join(r.o.profileDir, file))
			}()
		}
		fetch("profile", secs, fmt.Sprintf("%s-%s.cpu.pprof", name, h.Name))
		if trace > 0 {
			fetch("trace", max(1, int(math.Ceil(trace.Seconds()))), fmt.Sprintf("%s-%s.trace", name, h.Name))
		}
	}
	time.Sleep(50 * time.Millisecond) // let the profiles start before the load does
	return c, nil
}

// profileEnd waits for the profiles of c and appends each vtepd's CPU
// time and context switches over the workload to cpu.tsv.
func (r *runner) profileEnd(c *capture) error {
	if c == nil {
		return nil
	}
	// The counters are read when the workload ends, not when the (longer
	// by up to a second) profile does.
	var after [2]procStat
	var errs []error
	for i, p := range r.procs {
		s, err := readProcStat(p.PID())
		errs = append(errs, err)
		after[i] = s
	}
	wall := time.Since(c.start).Seconds()
	for range c.n {
		errs = append(errs, <-c.done)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	path := filepath.Join(r.o.profileDir, "cpu.tsv")
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if os.IsNotExist(statErr) {
		fmt.Fprintln(f, "workload\thost\twall_s\tcpu_s\tcore_pct\tvol_ctxsw_per_s\tinvol_ctxsw_per_s\tthreads")
	}
	var line []string
	for i, h := range r.hosts {
		d := after[i].sub(c.before[i])
		cpu := d.runNs / 1e9
		fmt.Fprintf(f, "%s\t%s\t%.2f\t%.4f\t%.3f\t%.1f\t%.1f\t%d\n", c.name, h.Name, wall, cpu, 100*cpu/wall,
			d.vol/wall, d.invol/wall, after[i].threads)
		line = append(line, fmt.Sprintf("%s %.2f%% of a core, %.0f wake-ups/s", h.Name, 100*cpu/wall, d.vol/wall))
	}
	if err := f.Close(); err != nil {
		return err
	}
	harness.Chown(path)
	r.progress("profile %s: %s", c.name, strings.Join(line, "; "))
	return nil
}

// fetchTo saves the body of a GET of url to path.
func fetchTo(client *http.Client, url, path string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, tail(body, 300))
	}
	if err == nil {
		err = os.WriteFile(path, body, 0o644)
	}
	if err == nil {
		harness.Chown(path)
	}
	return err
}

// procStat is what /proc says of a process's use of the CPU, summed over
// its threads: run time in nanoseconds (schedstat) and the voluntary
// (it slept: a wake-up follows each) and involuntary context switches.
type procStat struct {
	runNs, vol, invol float64
	threads           int
}

func (s procStat) sub(o procStat) procStat {
	return procStat{runNs: s.runNs - o.runNs, vol: s.vol - o.vol, invol: s.invol - o.invol, threads: s.threads}
}

// readProcStat sums /proc/PID/task/*/{schedstat,status}. A thread that
// exited between two readings takes its counts with it; Go's threads
// rarely exit.
func readProcStat(pid int) (procStat, error) {
	var s procStat
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		sched, err1 := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		status, err2 := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err1 != nil || err2 != nil {
			continue // the thread exited
		}
		ts, err := parseTaskStat(sched, status)
		if err != nil {
			return s, err
		}
		s.runNs += ts.runNs
		s.vol += ts.vol
		s.invol += ts.invol
		s.threads++
	}
	return s, nil
}
