package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func passingResults() *Results {
	return &Results{
		Time:     time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC),
		Target:   "vtepd",
		Settings: Settings{VTEPs: 1000, MACs: 100, VNI: 200, LeaseTTL: "10s", Window: "20s", ChangeKind: changeMixed},
		Store:    StoreFigures{Keys: 101000, MACs: 100000, Txns: 1000},
		Sync:     SyncFigures{StartToInstalled: 3, CountedBy: "x"},
		Convergence: &ConvergenceResult{Changes: 1000, RateAsked: 100, RateMade: 100,
			AckToSeen: Dist{N: 1000, P50: 1, P99: 50}},
		RSS:    RSSFigures{GrowthMiB: 64},
		Steady: steadyCounts{Seconds: 20, VtepdKAPerSec: 0.3},
	}
}

// TestJudge checks each target at its bound and just past it.
func TestJudge(t *testing.T) {
	r := passingResults()
	r.judge()
	if !r.Pass || len(r.Verdicts) != 4 {
		t.Fatalf("at the bounds: pass %v, %+v", r.Pass, r.Verdicts)
	}
	for _, tc := range []struct {
		name  string
		spoil func(r *Results)
		fails string
	}{
		{"slow sync", func(r *Results) { r.Sync.StartToInstalled = 3.01 }, "full sync"},
		{"slow p99", func(r *Results) { r.Convergence.AckToSeen.P99 = 50.1 }, "convergence"},
		{"a change missed", func(r *Results) { r.Convergence.Missed = 1 }, "convergence"},
		{"no change seen", func(r *Results) { r.Convergence.AckToSeen = Dist{} }, "convergence"},
		{"RSS", func(r *Results) { r.RSS.GrowthMiB = 64.1 }, "RSS"},
		{"a request", func(r *Results) { r.Steady.Other = 1 }, "steady"},
		{"no window", func(r *Results) { r.Steady.Seconds = 0 }, "steady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := passingResults()
			tc.spoil(r)
			r.judge()
			if r.Pass {
				t.Fatal("passed")
			}
			for _, v := range r.Verdicts {
				if v.Pass == strings.Contains(v.Name, tc.fails) {
					t.Errorf("%q: pass %v", v.Name, v.Pass)
				}
			}
		})
	}
	// Without a convergence phase (-changes 0) there is no verdict on it.
	r = passingResults()
	r.Convergence = nil
	r.judge()
	if !r.Pass || len(r.Verdicts) != 3 {
		t.Errorf("no convergence phase: %+v", r.Verdicts)
	}
}

func TestReport(t *testing.T) {
	r := passingResults()
	r.Sync.StartToInstalled = 3.5
	r.Notes = []string{"something to know"}
	r.judge()
	var b strings.Builder
	if err := writeTable(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1,000 VTEPs × 100 MACs (100,000 entries)", "FAIL", "pass", "note: something to know", "convergence p99 at 100 changes/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	dir := t.TempDir()
	files, err := r.write(dir)
	if err != nil || len(files) != 3 {
		t.Fatalf("write: %v, %v", files, err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(body, &back); err != nil || back.Pass || back.Sync.StartToInstalled != 3.5 || len(back.Verdicts) != 4 {
		t.Errorf("latest.json: %v, %+v", err, back)
	}
	md, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil || !strings.Contains(string(md), "| full sync, 100,000 entries, start to installed | ≤ 3 s | 3.50 s | **FAIL** |") {
		t.Errorf("latest.md: %v\n%s", err, md)
	}
	if _, err := os.Stat(filepath.Join(dir, "20261206T120000Z.json")); err != nil {
		t.Error(err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
