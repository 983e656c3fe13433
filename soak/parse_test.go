package main

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP vtep_drops_total Packets dropped, by reason.
# TYPE vtep_drops_total counter
vtep_drops_total{reason="too_short",vni="unknown"} 5
vtep_drops_total{reason="inner_too_short",vni="200"} 2
vtep_drops_total{reason="source",vni="200"} 0
go_goroutines 19
odd{a="x\"y\\z"} 7 1700000000000
`
	samples, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricValue(samples, "go_goroutines"); !ok || v != 19 {
		t.Errorf("go_goroutines = %v, %v", v, ok)
	}
	if v, ok := metricValue(samples, "odd", "a", `x"y\z`); !ok || v != 7 {
		t.Errorf("odd = %v, %v", v, ok)
	}
	want := map[string]uint64{"too_short/unknown": 5, "inner_too_short/200": 2}
	if diff := cmp.Diff(want, dropsByReason(samples)); diff != "" {
		t.Errorf("dropsByReason (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"novalue", `x{a="1} 2`, "x abc"} {
		if _, err := parseMetrics(bad); err == nil {
			t.Errorf("parseMetrics(%q) succeeded", bad)
		}
	}
}

func TestParseStatusField(t *testing.T) {
	status := []byte("Name:\tvtepd\nVmPeak:\t 1262084 kB\nVmRSS:\t   16384 kB\nRssAnon:\t    7424 kB\nThreads:\t9\n")
	for field, want := range map[string]uint64{"VmRSS": 16384, "RssAnon": 7424, "Threads": 9} {
		got, err := parseStatusField(status, field)
		if err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := parseStatusField(status, "VmSwap"); !errors.Is(err, errNoData) {
		t.Errorf("missing field: err = %v, want errNoData", err)
	}
	if _, err := parseStatusField([]byte("VmRSS:\tlots kB\n"), "VmRSS"); err == nil {
		t.Error("non-numeric field accepted")
	}
}

// A /proc/net/udp of a host running vtepd with two SO_REUSEPORT sockets on
// 198.18.0.1:4789, one of them with drops, beside a socket on another
// port. The kernel writes the address as a 32-bit word in host byte order.
func TestParseUDPDrops(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the golden /proc/net/udp is a little-endian machine's")
	}
	local := netip.MustParseAddrPort("198.18.0.1:4789")
	data := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  12: 010012C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 3
  12: 010012C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0
  40: 010012C6:2328 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4244 2 0000000000000000 99
`)
	drops, n, err := parseUDPDrops(data, local)
	if err != nil || drops != 3 || n != 2 {
		t.Errorf("parseUDPDrops = %d, %d, %v; want 3, 2, nil", drops, n, err)
	}
	if _, n, _ := parseUDPDrops(data, netip.MustParseAddrPort("198.18.0.2:4789")); n != 0 {
		t.Errorf("found %d sockets of another address", n)
	}
	if _, _, err := parseUDPDrops([]byte("garbage\n"), local); err == nil {
		t.Error("no header accepted")
	}
}

func TestParseSNMP(t *testing.T) {
	data := []byte("Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n" +
		"Udp: 1234 5 2 1200 7 0\n" +
		"UdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n")
	got, err := parseSNMP(data, "Udp")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"InDatagrams": 1234, "NoPorts": 5, "InErrors": 2, "OutDatagrams": 1200, "RcvbufErrors": 7, "SndbufErrors": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSNMP (-want +got):\n%s", diff)
	}
	if _, err := parseSNMP(data, "Tcp"); !errors.Is(err, errNoData) {
		t.Errorf("missing protocol: err = %v, want errNoData", err)
	}
	if _, err := parseSNMP([]byte("Udp: A B\nUdp: 1\n"), "Udp"); err == nil {
		t.Error("short value line accepted")
	}
}

func TestJudgeFlat(t *testing.T) {
	ts := func(n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = float64(2 * i)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		ys        []float64
		frac, abs float64
		flat      bool
		enough    bool
	}{
		{"constant", []float64{100, 100, 100, 100}, 0.1, 0, true, true},
		{"within 10%", []float64{100, 105, 98, 107.8}, 0.1, 0, true, true},
		{"growing", []float64{100, 104, 108, 112}, 0.1, 0, false, true},
		{"small integers within slack", []float64{19, 21, 19, 20}, 0.1, 2, true, true},
		{"small integers beyond slack", []float64{19, 22, 19, 20}, 0.1, 2, false, true},
		{"too few samples", []float64{100, 100}, 0.1, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := judgeFlat(ts(len(tc.ys)), tc.ys, tc.frac, tc.abs)
			if f.Flat != tc.flat || f.NotEnoughData == tc.enough {
				t.Errorf("judgeFlat(%v) = %+v; want flat %v, enough data %v", tc.ys, f, tc.flat, tc.enough)
			}
		})
	}
	f := judgeFlat([]float64{0, 3600, 7200}, []float64{10, 20, 30}, 0.1, 0)
	if math.Abs(f.SlopePerHour-10) > 1e-9 || f.First != 10 || f.Last != 30 || math.Abs(f.Spread-2) > 1e-9 {
		t.Errorf("judgeFlat of a line: %+v; want slope 10/h, first 10, last 30, spread 2", f)
	}
}

func TestRollingMedian(t *testing.T) {
	ts := []float64{0, 2, 4, 6, 8, 10}
	gotT, gotY := rollingMedian(ts, []float64{19, 25, 19, 20, 15, 20}, 3)
	if diff := cmp.Diff([]float64{2, 4, 6, 8}, gotT); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{19, 20, 19, 20}, gotY); diff != "" {
		t.Errorf("medians (-want +got):\n%s", diff)
	}
	if _, y := rollingMedian(ts[:2], []float64{1, 2}, 3); len(y) != 2 {
		t.Errorf("short series changed: %v", y)
	}
}
