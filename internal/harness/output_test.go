package harness

import (
	"errors"
	"strings"
	"testing"
)

func TestLastJSONLine(t *testing.T) {
	type result struct {
		Received uint64 `json:"received"`
	}
	for _, tc := range []struct {
		name string
		out  string
		want uint64
		err  error
	}{
		{"last of several", "ready\n{\"received\":1}\nchatter\n{\"received\":42}\n", 42, nil},
		{"only line", "{\"received\":7}", 7, nil},
		{"no JSON", "ready\n", 0, ErrNoData},
		{"empty", "", 0, ErrNoData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			err := LastJSONLine([]byte(tc.out), &r)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("LastJSONLine = %v, want %v", err, tc.err)
			}
			if r.Received != tc.want {
				t.Errorf("received %d, want %d", r.Received, tc.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	if got := Tail([]byte("  short \n"), 10); got != "short" {
		t.Errorf("Tail(short) = %q", got)
	}
	if got := Tail([]byte(strings.Repeat("x", 20)+"end\n"), 3); got != "...end" {
		t.Errorf("Tail(long) = %q, want ...end", got)
	}
}
