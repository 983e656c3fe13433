package promtext

import "testing"

func TestParseAndValue(t *testing.T) {
	text := `# HELP vtep_drops_total Packets dropped, by reason.
# TYPE vtep_drops_total counter
vtep_drops_total{reason="too_short",vni="unknown"} 4
vtep_drops_total{reason="source",vni="200"} 2
vtep_drops_total{reason="source",vni="300"} 3
# TYPE go_goroutines gauge
go_goroutines 19
# TYPE odd untyped
odd{label="a \"quoted\" \\ value\n"} 1.5
`
	samples, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
		ok     bool
	}{
		{"vtep_drops_total", nil, 9, true},
		{"vtep_drops_total", []string{"reason", "source"}, 5, true},
		{"vtep_drops_total", []string{"reason", "source", "vni", "300"}, 3, true},
		{"go_goroutines", nil, 19, true},
		{"odd", []string{"label", "a \"quoted\" \\ value\n"}, 1.5, true},
		{"vtep_rx_packets_total", nil, 0, false},
	} {
		if got, ok := Value(samples, tc.name, tc.labels...); got != tc.want || ok != tc.ok {
			t.Errorf("Value(%s, %q) = %v, %v; want %v, %v", tc.name, tc.labels, got, ok, tc.want, tc.ok)
		}
	}
	if _, err := Parse("not a metric line {"); err == nil {
		t.Error("garbage parsed")
	}
}
