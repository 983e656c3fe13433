package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// passing is the results of a run that meets every criterion: three hosts
// sampled every 2 s for 60 s, a GC every 4 s, everything flat.
func passing() *Results {
	r := &Results{Settings: Settings{VNI: 200, FlatTolerance: 0.1, MaxEntries: 4096}}
	for _, mode := range []string{modeKernel, modeVtepd} {
		r.Phases = append(r.Phases, Phase{Mode: mode, Attempted: 1000, Received: 1000, TCP: TCPSummary{Bursts: 2, Completed: 2}})
	}
	for _, name := range []string{"a", "b", "c"} {
		h := HostReport{Host: name, FDBLearned: 100, FDBMoves: 10, FDBExpired: 90, FDBMax: 200,
			HostileSent: map[string]uint64{}, HostileCounted: map[string]uint64{}}
		for i := range 31 {
			h.Samples = append(h.Samples, Sample{T: float64(2 * i), RSSKB: 20000 + uint64(i%3)*100,
				Goroutines: 19 + i%2, FDs: 15, GCs: uint64(i / 2)})
		}
		for _, k := range hostileKinds {
			h.HostileSent[k.Reason], h.HostileCounted[k.Reason] = 50, 50
		}
		r.Hosts = append(r.Hosts, h)
	}
	return r
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *Results)
		fails  string // the criterion that must fail; "" for none
	}{
		{"all good", func(*Results) {}, ""},
		{"crash", func(r *Results) { r.Hosts[1].Problems = []string{"vtepd died"} }, "nothing crashed or hung"},
		{"RSS dips once", func(r *Results) { r.Hosts[0].Samples[20].RSSKB = 15000 }, ""},
		{"RSS grows", func(r *Results) {
			for i := range r.Hosts[0].Samples {
				r.Hosts[0].Samples[i].RSSKB = 20000 + uint64(i)*200
			}
		}, "RSS flat"},
		{"one goroutine spike and one dip", func(r *Results) {
			r.Hosts[2].Samples[10].Goroutines = 25
			r.Hosts[2].Samples[20].Goroutines = 15
		}, ""},
		{"goroutine leak", func(r *Results) {
			for i := range r.Hosts[2].Samples {
				r.Hosts[2].Samples[i].Goroutines = 19 + i/5
			}
		}, "goroutines flat"},
		{"udp_gso port sockets come and go", func(r *Results) {
			for i := range r.Hosts[1].Samples {
				n := (i / 4) % 5 // 0..4 sockets open, as flows start and age out
				r.Hosts[1].Samples[i].FDs, r.Hosts[1].Samples[i].GSOSockets = 15+n, n
			}
		}, ""},
		{"fd leak beside udp_gso port sockets", func(r *Results) {
			for i := range r.Hosts[0].Samples {
				r.Hosts[0].Samples[i].FDs, r.Hosts[0].Samples[i].GSOSockets = 16+i/5, 1
			}
		}, "open fds flat"},
		{"fd leak", func(r *Results) {
			for i := range r.Hosts[2].Samples {
				r.Hosts[2].Samples[i].FDs = 15 + i/5
			}
		}, "open fds flat"},
		{"never collected", func(r *Results) {
			for i := range r.Hosts[0].Samples {
				r.Hosts[0].Samples[i].GCs = 1
			}
		}, "RSS flat"},
		{"hostile datagram uncounted", func(r *Results) { r.Hosts[1].HostileCounted["bad_flags"] = 49 }, "every hostile datagram counted"},
		{"hostile datagram counted twice", func(r *Results) { r.Hosts[1].HostileCounted["source"] = 51 }, "every hostile datagram counted"},
		{"nothing hostile sent", func(r *Results) { r.Hosts[0].HostileSent["too_short"] = 0; r.Hosts[0].HostileCounted["too_short"] = 0 }, "every hostile datagram counted"},
		{"attacker learned", func(r *Results) { r.Hosts[0].AttackerEntries = []string{"02:ad:00:00:00:01 -> 198.18.1.1"} }, "attacker never learned"},
		{"more loss than the kernel", func(r *Results) {
			r.Phases[1].Lost, r.Phases[1].Received, r.Phases[1].LossRate = 1, 999, 0.001
		}, "legitimate loss"},
		{"TCP burst failed", func(r *Results) { r.Phases[1].TCP.Completed = 1 }, "TCP bursts completed"},
		{"no moves", func(r *Results) { r.Hosts[2].FDBMoves = 0 }, "FDB churned"},
		{"FDB full", func(r *Results) { r.Hosts[2].FDBMax = 4096 }, "FDB churned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := passing()
			tc.change(r)
			for i := range r.Hosts {
				r.Hosts[i].judge(10, r.Settings.FlatTolerance)
			}
			r.evaluate()
			var failed []string
			for _, c := range r.Criteria {
				if !c.Pass {
					failed = append(failed, c.Name)
				}
			}
			switch {
			case tc.fails == "" && (!r.Pass || len(failed) > 0):
				t.Errorf("failed %q, want a pass", failed)
			case tc.fails != "" && (r.Pass || len(failed) != 1 || !strings.HasPrefix(failed[0], tc.fails)):
				t.Errorf("failed %q (pass %v), want only %q", failed, r.Pass, tc.fails)
			}
			var out strings.Builder
			r.printTable(&out)
			want := "soak: PASS"
			if tc.fails != "" {
				want = "soak: FAIL"
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, out.String())
			}
		})
	}
}

// TestJudgeWarmup: memory is judged from the warmupGCs-th collection after
// the warm-up.
func TestJudgeWarmup(t *testing.T) {
	h := HostReport{}
	for i := range 20 {
		// Collections at 2 s (start-up), 8 s and 12 s.
		gcs := uint64(1)
		switch {
		case i >= 12:
			gcs = 4
		case i >= 8:
			gcs = 3
		case i >= 2:
			gcs = 2
		}
		h.Samples = append(h.Samples, Sample{T: float64(i), RSSKB: 1000 + uint64(i), GCs: gcs, Goroutines: 10})
	}
	h.judge(5, 0.1)
	if h.WarmupSeconds != 12 || h.RSS.Samples != 8-smoothWindow+1 || h.Goroutines.Samples != 15-smoothWindow+1 {
		t.Errorf("memory judged from %v with %d samples, goroutines with %d; want 12 s, %d, %d",
			h.WarmupSeconds, h.RSS.Samples, h.Goroutines.Samples, 8-smoothWindow+1, 15-smoothWindow+1)
	}
	h.judge(9, 0.1)
	if h.WarmupSeconds != -1 || !h.RSS.NotEnoughData {
		t.Errorf("with one collection after the warm-up: judged from %v, %+v; want never", h.WarmupSeconds, h.RSS)
	}
}

func TestPhases(t *testing.T) {
	for _, tc := range []struct {
		duration, warmup      time.Duration
		share                 float64
		kernel, vtepd, judged time.Duration
	}{
		{600 * time.Second, 0, 0.25, 150 * time.Second, 450 * time.Second, 90 * time.Second},
		{60 * time.Second, 0, 0.25, 15 * time.Second, 45 * time.Second, 10 * time.Second},
		{20 * time.Second, 0, 0.1, 5 * time.Second, 15 * time.Second, 8 * time.Second},
		{55 * time.Second, 20 * time.Second, 10.0 / 55, 10 * time.Second, 45 * time.Second, 20 * time.Second},
	} {
		o := defaultOptions()
		o.duration, o.warmup, o.kernelShare = tc.duration, tc.warmup, tc.share
		k, v, w := o.phases()
		if k != tc.kernel || v != tc.vtepd || w != tc.judged {
			t.Errorf("%v, share %v: kernel %v, vtepd %v, warm-up %v; want %v, %v, %v",
				tc.duration, tc.share, k, v, w, tc.kernel, tc.vtepd, tc.judged)
		}
	}
	if err := defaultOptions().check(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	bad := defaultOptions()
	bad.duration = 5 * time.Second
	if bad.check() == nil {
		t.Error("a 5 s soak accepted")
	}
}

// TestSystemJSON pins the "system" object of latest.json: the fields
// shared with the benchmark (harness.System, embedded) come first and
// flat, as when soak declared them itself.
func TestSystemJSON(t *testing.T) {
	s := System{System: harness.System{Kernel: "6.1.0", CPUs: 2, Go: "go1.26", Commit: "abc"}, LoadBefore: 1.5, LoadAfter: 2}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kernel":"6.1.0","cpus":2,"go":"go1.26","commit":"abc","load_before":1.5,"load_after":2}`
	if string(b) != want {
		t.Errorf("System as JSON:\n got %s\nwant %s", b, want)
	}
}
