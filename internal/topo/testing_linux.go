//go:build linux

package topo

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// RequirePrivilegedEnv names the environment variable that, set to "1",
// makes privileged tests fail instead of skip when not run as root (CI
// sets it, so that a lost privilege cannot silently turn the suite green).
const RequirePrivilegedEnv = "VTEPD_REQUIRE_PRIVILEGED"

// RequirePrivileged skips the test under -short (these are integration
// tests) and unless it runs as root, in which case it fails instead if
// RequirePrivilegedEnv is "1".
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequirePrivilegedEnv) == "1" {
		t.Fatalf("test needs root (network namespaces) and %s=1 forbids skipping", RequirePrivilegedEnv)
	}
	t.Skipf("test needs root (network namespaces); set %s=1 to fail instead", RequirePrivilegedEnv)
}

// NewT is New for tests: it calls RequirePrivileged and closes the lab in
// t.Cleanup, then logs the output of every process the lab started if the
// test failed, and fails the test if one of them reported a data race (a
// daemon built with -race). If the test binary has a deadline (-timeout),
// the lab is also closed shortly before it, since the timeout panic runs
// no cleanups.
func NewT(t testing.TB, prefix string) *Lab {
	t.Helper()
	RequirePrivileged(t)
	l, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	stopWatchdog := func() bool { return false }
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok {
			margin := 10 * time.Second
			if left := time.Until(deadline); left < 2*margin {
				margin = left / 2
			}
			name := t.Name()
			timer := time.AfterFunc(time.Until(deadline)-margin, func() {
				// t must not be used here: the test may be over.
				fmt.Fprintf(os.Stderr, "topo: %s: closing lab %s before the test binary's deadline\n", name, l.name)
				if err := l.Close(); err != nil {
					fmt.Fprintf(os.Stderr, "topo: closing lab %s: %v\n", l.name, err)
				}
			})
			stopWatchdog = timer.Stop
		}
	}
	t.Cleanup(func() {
		stopWatchdog()
		err := l.Close()
		for _, p := range l.Procs() {
			// A Go program built with -race reports here, whatever its exit.
			if strings.Contains(p.Output(), "WARNING: DATA RACE") {
				t.Errorf("%v reported a data race", p)
			}
		}
		if t.Failed() {
			for _, p := range l.Procs() {
				t.Logf("output of %v:\n%s", p, p.Output())
			}
		}
		if err != nil {
			t.Errorf("closing lab: %v", err)
		}
	})
	return l
}

// RequireDocker is RequirePrivileged for tests that start Docker engines
// (Host.StartDockerd): it also skips when dockerd, the docker CLI, nsenter
// or a static busybox is missing, and fails instead if
// RequirePrivilegedEnv is "1" (`make test` installs them).
func RequireDocker(t testing.TB) {
	t.Helper()
	RequirePrivileged(t)
	if _, err := findDocker(); err != nil {
		if os.Getenv(RequirePrivilegedEnv) == "1" {
			t.Fatalf("%v; %s=1 forbids skipping", err, RequirePrivilegedEnv)
		}
		t.Skipf("%v; set %s=1 to fail instead", err, RequirePrivilegedEnv)
	}
}
