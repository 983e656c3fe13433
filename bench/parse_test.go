package main

import (
	"bytes"
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// iperfReport is an iperf3 3.12 -J report cut down to the members around
// those parseIperf reads, with a warning on stderr before it.
const iperfReport = `iperf3: warning: something to say
{
	"start": {"connected": [{"socket": 5, "local_host": "198.19.0.1", "remote_host": "198.19.0.2", "remote_port": 5201}],
		"test_start": {"protocol": "TCP", "num_streams": 1, "duration": 3}},
	"intervals": [{"sum": {"start": 0, "end": 1.0, "bytes": 1167000000, "bits_per_second": 9336000000}}],
	"end": {
		"streams": [{"sender": {"bytes": 3502243840, "retransmits": 12}}],
		"sum_sent": {"start": 0, "end": 3.000043, "seconds": 3.000043, "bytes": 3502243840,
			"bits_per_second": 9339143624.5, "retransmits": 12, "sender": true},
		"sum_received": {"start": 0, "end": 3.000369, "seconds": 3.000369, "bytes": 3500933120,
			"bits_per_second": 9334673826.1, "sender": true},
		"cpu_utilization_percent": {"host_total": 70.1, "remote_total": 40.2}
	}
}
`

func TestParseIperf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out     string
		want    iperfResult
		wantErr string
	}{
		{"report after a warning", iperfReport, iperfResult{BitsPerSecond: 9334673826.1, Bytes: 3500933120, Retransmits: 12}, ""},
		{"report alone", iperfReport[strings.Index(iperfReport, "{"):], iperfResult{BitsPerSecond: 9334673826.1, Bytes: 3500933120, Retransmits: 12}, ""},
		{"error member", `{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}`,
			iperfResult{}, "unable to connect"},
		{"nothing received", `{"end": {"sum_received": {"bytes": 0, "bits_per_second": 0}}}`, iperfResult{}, "no data"},
		{"no JSON", "iperf3: error - unable to connect to server\n", iperfResult{}, "no JSON report"},
		{"truncated", iperfReport[:200], iperfResult{}, "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIperf([]byte(tc.out))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseIperf = %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseIperf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePingRTTs(t *testing.T) {
	out := `PING 198.19.0.2 (198.19.0.2) 56(84) bytes of data.
64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=0.061 ms
64 bytes from 198.19.0.2: icmp_seq=2 ttl=64 time=12.4 ms
From 198.19.0.1 icmp_seq=3 Destination Host Unreachable
64 bytes from 198.19.0.2: icmp_seq=4 ttl=64 time=105 ms (DUP!)
64 bytes from 198.19.0.2: icmp_seq=5 ttl=64 time=1.5 s

--- 198.19.0.2 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 41ms
rtt min/avg/max/mdev = 0.061/29.240/105.000/43.211 ms
`
	got, err := parsePingRTTs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{61, 12400, 1.5e6}, got, cmp.Comparer(func(a, b float64) bool {
		return math.Abs(a-b) < 1e-6
	})); diff != "" {
		t.Errorf("parsePingRTTs (-want +got):\n%s", diff)
	}

	for name, bad := range map[string]string{
		"no replies":   "PING 198.19.0.2 (198.19.0.2) 56(84) bytes of data.\n\n--- statistics ---\n3 packets transmitted, 0 received\n",
		"unknown unit": "64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=3 fortnights\n",
		"bad number":   "64 bytes from 198.19.0.2: icmp_seq=1 ttl=64 time=x.y ms\n",
	} {
		if rtts, err := parsePingRTTs([]byte(bad)); err == nil {
			t.Errorf("%s: parsePingRTTs = %v, want an error", name, rtts)
		}
	}
	if _, err := parsePingRTTs(nil); !errors.Is(err, errNoData) {
		t.Errorf("parsePingRTTs(nil) error = %v, want errNoData", err)
	}
}

func TestParsePidStat(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       uint64
	}{
		{"plain", "4242 (vtepd) S 1 4242 4242 0 -1 4194560 1503 0 0 0 731 254 0 0 20 0 9 0 12345 1298432000 3100 18446744073709551615\n", 731 + 254},
		{"name with spaces and parens", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 5 7 0 0 20 0 1 0 1 0 0\n", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePidStat([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parsePidStat = %d, want %d", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 u s 0\n"} {
		if _, err := parsePidStat([]byte(bad)); err == nil {
			t.Errorf("parsePidStat(%q) succeeded", bad)
		}
	}
}

func TestParseTaskStat(t *testing.T) {
	status := "Name:\tvtepd\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n"
	got, err := parseTaskStat([]byte("123456789 2000 51\n"), []byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (taskStat{runNs: 123456789, vol: 1200, invol: 34}); got != want {
		t.Errorf("parseTaskStat = %+v, want %+v", got, want)
	}
	for _, bad := range [][2]string{{"", status}, {"x 1 2", status}, {"1 2 3", "Name:\tvtepd\n"}, {"1 2 3", "voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n"}} {
		if _, err := parseTaskStat([]byte(bad[0]), []byte(bad[1])); err == nil {
			t.Errorf("parseTaskStat(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestMedianPercentile(t *testing.T) {
	for _, tc := range []struct {
		xs       []float64
		med, p99 float64
	}{
		{[]float64{3}, 3, 3},
		{[]float64{5, 1, 3}, 3, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
	} {
		in := append([]float64(nil), tc.xs...)
		if got := median(tc.xs); got != tc.med {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.med)
		}
		if got := percentile(tc.xs, 99); got != tc.p99 {
			t.Errorf("percentile(%v, 99) = %v, want %v", tc.xs, got, tc.p99)
		}
		if !slicesEqual(in, tc.xs) {
			t.Errorf("input modified: %v, was %v", tc.xs, in)
		}
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 .. 1
	}
	if got := percentile(hundred, 50); got != 50 {
		t.Errorf("p50 of 1..100 = %v, want 50", got)
	}
	if got := percentile(hundred, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %v, want 99", got)
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 50)) {
		t.Errorf("median/percentile of nothing should be NaN")
	}
}

func slicesEqual(a, b []float64) bool { return cmp.Equal(a, b) }

func TestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := window{from: at(1000), to: at(3000)}
	steps := []struct {
		ms      int
		n       uint64
		state   windowState
		changed bool
	}{
		{0, 0, windowBefore, false},
		{999, 50, windowBefore, false},
		{1003, 100, windowOpen, true},
		{2000, 500, windowOpen, false},
		{3010, 1100, windowClosed, true},
		{4000, 9999, windowClosed, false},
	}
	for _, s := range steps {
		state, changed := w.observe(at(s.ms), s.n)
		if state != s.state || changed != s.changed {
			t.Fatalf("observe(%d ms, %d) = %v, %v; want %v, %v", s.ms, s.n, state, changed, s.state, s.changed)
		}
	}
	if w.count() != 1000 || math.Abs(w.seconds()-2.007) > 1e-9 {
		t.Errorf("window: count %d over %.3f s, want 1000 over 2.007 s", w.count(), w.seconds())
	}
	open := window{from: at(0), to: at(10)}
	open.observe(at(0), 1)
	if open.count() != 0 || open.seconds() != 0 {
		t.Errorf("an open window reports %d over %v s, want zeros", open.count(), open.seconds())
	}
}

func TestBuildFrames(t *testing.T) {
	spec := flowSpec{
		SrcMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("198.19.0.1"), Dst: netip.MustParseAddr("198.19.0.2"),
		SrcPort: 10000, DstPort: 9000, Flows: 64, Payload: 64,
	}
	frames, err := buildFrames(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 64 {
		t.Fatalf("%d frames, want 64", len(frames))
	}
	for i, f := range frames {
		if len(f) != 14+20+8+64 {
			t.Fatalf("frame %d: %d bytes, want 106", i, len(f))
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !bytes.Equal(eth.DstMAC, spec.DstMAC) || !bytes.Equal(eth.SrcMAC, spec.SrcMAC) {
			t.Errorf("frame %d: MACs %v -> %v", i, eth.SrcMAC, eth.DstMAC)
		}
		if ip.SrcIP.String() != "198.19.0.1" || ip.DstIP.String() != "198.19.0.2" || ip.Length != 92 || ip.TTL != 64 {
			t.Errorf("frame %d: IPv4 %v -> %v, length %d, TTL %d", i, ip.SrcIP, ip.DstIP, ip.Length, ip.TTL)
		}
		if int(udp.SrcPort) != 10000+i || udp.DstPort != 9000 || len(udp.Payload) != 64 {
			t.Errorf("frame %d: UDP %d -> %d with %d bytes", i, udp.SrcPort, udp.DstPort, len(udp.Payload))
		}
		// Checksums: re-serialising with computed checksums must give
		// the same bytes.
		ip2, udp2 := *ip, *udp
		if err := udp2.SetNetworkLayerForChecksum(&ip2); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, &ip2, &udp2, gopacket.Payload(udp.Payload)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), f) {
			t.Errorf("frame %d: checksums do not verify", i)
		}
	}

	for name, bad := range map[string]flowSpec{
		"IPv6":            {SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, Src: netip.MustParseAddr("2001:db8::1"), Dst: spec.Dst, Flows: 1},
		"port overflow":   {SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, Src: spec.Src, Dst: spec.Dst, SrcPort: 65535, Flows: 2},
		"no flows":        {SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, Src: spec.Src, Dst: spec.Dst},
		"short MAC":       {SrcMAC: spec.SrcMAC[:4], DstMAC: spec.DstMAC, Src: spec.Src, Dst: spec.Dst, Flows: 1},
		"payload too big": {SrcMAC: spec.SrcMAC, DstMAC: spec.DstMAC, Src: spec.Src, Dst: spec.Dst, Flows: 1, Payload: 9000},
	} {
		if _, err := buildFrames(bad); err == nil {
			t.Errorf("%s: buildFrames succeeded", name)
		}
	}
}

func TestWorkloadList(t *testing.T) {
	for _, tc := range []struct {
		only string
		want []string
		ok   bool
	}{
		{"all", workloads, true},
		{"", workloads, true},
		{"pps,lat", []string{"lat", "pps"}, true},
		{" tcp1 ", []string{"tcp1"}, true},
		{"tcp1,udp", nil, false},
		{"lat,idle", []string{"idle", "lat"}, true}, // idle only when named, first
	} {
		got, err := workloadList(tc.only)
		if (err == nil) != tc.ok {
			t.Errorf("workloadList(%q) error = %v, want ok=%v", tc.only, err, tc.ok)
			continue
		}
		if diff := cmp.Diff(tc.want, got); tc.ok && diff != "" {
			t.Errorf("workloadList(%q) (-want +got):\n%s", tc.only, diff)
		}
	}
}

func TestReport(t *testing.T) {
	s := samples{}
	for _, v := range []float64{9, 10, 11} {
		s.add("tcp1_gbps", modeKernel, v)
		s.add("tcp1_gbps", modeVtepd, v/2)
		s.add("rtt_p50_us", modeKernel, 50)
		s.add("rtt_p50_us", modeVtepd, 75)
		s.add("cpu_vtepd_s_per_gb", modeVtepd, 1.234567)
		s.add("udp64_offered_kpps", modeKernel, 1000)
		s.add("udp64_rx_kpps", modeKernel, 990)
	}
	r := &Results{
		Settings: Settings{Reps: 3, Duration: "5s", Workloads: workloads},
		System:   System{Kernel: "6.1.0", CPUs: 2},
		Metrics:  summarize(s),
		Notes:    notesFor(s, 1000),
	}
	var keys []string
	for _, m := range r.Metrics {
		keys = append(keys, m.Key)
	}
	if diff := cmp.Diff([]string{"tcp1_gbps", "udp64_rx_kpps", "udp64_offered_kpps", "rtt_p50_us", "cpu_vtepd_s_per_gb"}, keys); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	tcp := r.Metrics[0]
	if *tcp.Kernel != 10 || *tcp.Vtepd != 5 || *tcp.Ratio != 0.5 {
		t.Errorf("tcp1: kernel %v vtepd %v ratio %v", *tcp.Kernel, *tcp.Vtepd, *tcp.Ratio)
	}
	if cpu := r.Metrics[4]; cpu.Kernel != nil || cpu.Ratio != nil || *cpu.Vtepd != 1.235 {
		t.Errorf("vtepd CPU: %+v", cpu)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "lower bound") {
		t.Errorf("notes = %q, want one about the generator's ceiling", r.Notes)
	}

	var table bytes.Buffer
	if err := writeTable(&table, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TCP, 1 stream", "10.00", "5.00", "0.50", "1.50", "note: kernel carried 990 kpps"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := writeJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"ratio": 0.5`) {
		t.Errorf("JSON lacks the ratio:\n%s", js.String())
	}
	chart, err := renderChart(r, "svg")
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if _, err := chart.WriteTo(&svg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg.Bytes(), []byte("<svg")) {
		t.Errorf("chart is not SVG: %.100s", svg.String())
	}
}

func TestRound(t *testing.T) {
	for in, want := range map[float64]float64{1.234567: 1.235, 9334.6738: 9335, 0.00012345: 0.0001235, 0: 0, -2.71828: -2.718} {
		if got := round(in); math.Abs(got-want) > 1e-12 {
			t.Errorf("round(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestNotes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		offered, rx, gap float64
		ceiling          float64
		want             []string
	}{
		{"path-limited, open loop", 600, 200, 0, 1000, nil},
		{"path-limited, closed loop", 240, 239, 0, 1000, []string{"the path, not the generator"}},
		{"generator-limited", 1000, 950, 0, 1000, []string{"lower bound"}},
		{"counter overflowed", 600, 200, 0.2, 1000, []string{"socket overflowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := samples{}
			s.add("udp64_offered_kpps", modeVtepd, tc.offered)
			s.add("udp64_rx_kpps", modeVtepd, tc.rx)
			s.add("udp64_counter_gap", modeVtepd, tc.gap)
			s.add("udp64_ifrx_kpps", modeVtepd, tc.rx/(1-tc.gap))
			notes := notesFor(s, tc.ceiling)
			if len(notes) != len(tc.want) {
				t.Fatalf("notes = %q, want %d", notes, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(notes[i], w) {
					t.Errorf("note %q lacks %q", notes[i], w)
				}
			}
		})
	}
}

func TestParseUDPRcvbufErrors(t *testing.T) {
	snmp := `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 4711
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 1034 0 17 1022 15 0 0 3 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 99 0 0 0 0
`
	got, err := parseUDPRcvbufErrors([]byte(snmp))
	if err != nil || got != 15 {
		t.Errorf("parseUDPRcvbufErrors = %d, %v; want 15", got, err)
	}
	for name, bad := range map[string]string{
		"no Udp":         "Ip: Forwarding\nIp: 1\n",
		"names only":     "Udp: InDatagrams RcvbufErrors\n",
		"short values":   "Udp: InDatagrams RcvbufErrors\nUdp: 5\n",
		"no such column": "Udp: InDatagrams NoPorts\nUdp: 5 6\n",
		"not a number":   "Udp: InDatagrams RcvbufErrors\nUdp: 5 x\n",
	} {
		if v, err := parseUDPRcvbufErrors([]byte(bad)); err == nil {
			t.Errorf("%s: parseUDPRcvbufErrors = %d, want an error", name, v)
		}
	}
}

func TestTag(t *testing.T) {
	b := make([]byte, 64)
	putTag(b, 0x01020304)
	// "vrs1", then the trial big-endian.
	if want := []byte{'v', 'r', 's', '1', 1, 2, 3, 4}; !bytes.Equal(b[:tagLen], want) {
		t.Errorf("tag % x, want % x", b[:tagLen], want)
	}
	if id, ok := tagOf(b); !ok || id != 0x01020304 {
		t.Errorf("tagOf = %#x, %v", id, ok)
	}
	for _, bad := range [][]byte{nil, b[:tagLen-1], append([]byte("vrs2"), b[4:]...)} {
		if id, ok := tagOf(bad); ok {
			t.Errorf("tagOf(% x) = %d, true; want no tag", bad, id)
		}
	}
}

func TestParseFlowCounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{{"1,4", []int{1, 4}}, {" 8 ", []int{8}}, {"4,1,2", []int{4, 1, 2}}} {
		got, err := parseFlowCounts(tc.in)
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("parseFlowCounts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "1,,4", "65", "1,1", "x"} {
		if got, err := parseFlowCounts(bad); err == nil {
			t.Errorf("parseFlowCounts(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseLinkDrops(t *testing.T) {
	out := `[{"ifindex":1,"ifname":"lo","stats64":{"rx":{"bytes":1,"packets":1,"dropped":0},"tx":{"dropped":0}}},
{"ifindex":5,"ifname":"vtep0","link_type":"ether","stats64":{"rx":{"packets":9,"dropped":3},"tx":{"packets":7,"dropped":4711}}}]`
	got, err := parseLinkDrops([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"lo rx_dropped": 0, "lo tx_dropped": 0, "vtep0 rx_dropped": 3, "vtep0 tx_dropped": 4711}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseLinkDrops (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "Device \"x\" does not exist.", `[{"stats64":{}}]`} {
		if got, err := parseLinkDrops([]byte(bad)); err == nil {
			t.Errorf("parseLinkDrops(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseSoftnetDrops(t *testing.T) {
	stat := "0000a1b2 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n" +
		"00001000 000000ff 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001\n"
	if got, err := parseSoftnetDrops([]byte(stat)); err != nil || got != 0x10+0xff {
		t.Errorf("parseSoftnetDrops = %d, %v; want %d", got, err, 0x10+0xff)
	}
	for _, bad := range []string{"", "00000001\n", "0000 zz 00\n"} {
		if got, err := parseSoftnetDrops([]byte(bad)); err == nil {
			t.Errorf("parseSoftnetDrops(%q) = %d, want an error", bad, got)
		}
	}
}
