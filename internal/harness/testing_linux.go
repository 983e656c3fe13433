package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vtepd/vtepd/internal/topo"
)

// VtepdBin builds the daemon into the test's temporary directory for the
// harnesses' own integration tests, as the integration tests of cmd/vtepd
// do: VTEPD_BIN=path uses a prebuilt one, VTEPD_RACE=1 builds it with the
// race detector.
func VtepdBin(t testing.TB) string {
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

// NoNamespacesLeft fails t for every network namespace of lab (named
// lab-…) that is still there after a run that should have removed them.
func NoNamespacesLeft(t testing.TB, lab string) {
	t.Helper()
	names, err := topo.NetnsList()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, lab+"-") {
			t.Errorf("namespace %s left behind", n)
		}
	}
}
