//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
	"github.com/vtepd/vtepd/internal/topo"
)

// TestMain runs the hidden subcommands: the soak re-executes its own
// binary, here the test binary, inside the lab's namespaces.
func TestMain(m *testing.M) {
	harness.RunHidden(os.Args[1:], subcommands)
	os.Exit(m.Run())
}

// shortSoak is `make soak` cut to about a minute of traffic for `make
// test`: 10 s over the kernel's vxlan, 45 s over vtepd, judged after 20 s.
// vtepd runs with GOGC=10: at Go's default its first two GC cycles take
// longer than the whole run under this load, and until they are over its
// heap, and RSS with it, is still growing towards where it settles.
func shortSoak(vtepd string) options {
	o := defaultOptions()
	o.duration = 55 * time.Second
	o.kernelShare = 10.0 / 55
	o.warmup = 20 * time.Second
	o.gogc = 10
	o.vtepd = vtepd
	o.out = ""
	return o
}

// TestIntegrationSoakShort runs the short soak and requires every
// criterion to pass and the lab to be gone afterwards.
func TestIntegrationSoakShort(t *testing.T) {
	topo.RequirePrivileged(t)
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < 3*time.Minute {
		t.Skipf("the short soak needs about 80 s and some margin; -timeout leaves %v", time.Until(deadline).Round(time.Second))
	}
	o := shortSoak(vtepdBin(t))
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	o.progress = func(line string) { t.Log(line) }
	res, err := runSoak(o)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	res.printTable(&table)
	if !res.Pass {
		t.Errorf("soak failed:\n%s", table.String())
	} else {
		t.Logf("%s", table.String())
	}
	names, err := topo.NetnsList()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, res.Lab+"-") {
			t.Errorf("namespace %s left behind", n)
		}
	}
}

// vtepdBin builds the daemon into the test's temporary directory, as the
// integration tests of cmd/vtepd do: VTEPD_BIN=path uses a prebuilt one,
// VTEPD_RACE=1 builds it with the race detector.
func vtepdBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VTEPD_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	args := []string{"build"}
	if os.Getenv("VTEPD_RACE") == "1" {
		args = append(args, "-race")
	}
	bin := filepath.Join(t.TempDir(), "vtepd")
	cmd := exec.Command("go", append(args, "-o", bin, "github.com/vtepd/vtepd/cmd/vtepd")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv("VTEPD_RACE") == "1" {
		cmd.Env = os.Environ() // -race needs cgo
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build vtepd: %v\n%s", err, out)
	}
	return bin
}
