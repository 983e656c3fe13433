//go:build linux

package main

import (
	"os"
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
	o := shortSoak(harness.VtepdBin(t))
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
	harness.NoNamespacesLeft(t, res.Lab)
}
