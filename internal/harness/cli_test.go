package harness

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSecondsFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"3": 3 * time.Second, "2.5": 2500 * time.Millisecond, "5s": 5 * time.Second, "1m": time.Minute, "86400": 24 * time.Hour} {
		var d time.Duration
		if err := SecondsFlag(&d, 24*time.Hour, "5s").Set(in); err != nil || d != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "3 s", "86401"} {
		var d time.Duration
		err := SecondsFlag(&d, 24*time.Hour, "5s").Set(bad)
		if err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		} else if want := "want a duration such as 5s, or seconds"; err.Error() != want {
			t.Errorf("Set(%q): %q, want %q", bad, err, want)
		}
	}
}

// TestSecondsFlagDefault checks that -h shows the default as a duration,
// and that the zero Seconds the flag package makes to tell a default does
// not panic.
func TestSecondsFlagDefault(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	d := 5 * time.Second
	fs.Var(SecondsFlag(&d, time.Hour, "5s"), "duration", "how long")
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if !strings.Contains(b.String(), "(default 5s)") || strings.Contains(b.String(), "panic") {
		t.Errorf("PrintDefaults:\n%s", b.String())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse([]string{"-duration", "2"}); err != nil || d != 2*time.Second {
		t.Errorf("-duration 2: %v, %v", d, err)
	}
}
