package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := summarizeDurations(ds)
	want := Dist{N: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if d != want {
		t.Errorf("1..100 ms: %+v, want %+v", d, want)
	}
	for _, tc := range []struct {
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 99, 7},
		{[]time.Duration{1, 2}, 50, 1},
		{[]time.Duration{1, 2}, 51, 2},
		{[]time.Duration{1, 2, 3}, 99, 3},
		{[]time.Duration{1, 2, 3}, 0, 1},
		{nil, 50, 0},
	} {
		if got := percentile(tc.sample, tc.p); got != tc.want {
			t.Errorf("p%g of %v = %v, want %v", tc.p, tc.sample, got, tc.want)
		}
	}
	// p99 of 1000 is the 990th value: ten outliers leave it, eleven
	// make it.
	for _, outliers := range []int{10, 11} {
		ds = ds[:0]
		for i := 0; i < 1000; i++ {
			v := time.Millisecond
			if i >= 1000-outliers {
				v = time.Second
			}
			ds = append(ds, v)
		}
		want := 1.0
		if outliers == 11 {
			want = 1000
		}
		if d := summarizeDurations(ds); d.P99 != want || d.P90 != 1 {
			t.Errorf("%d outliers in 1000: p90 %v, p99 %v ms", outliers, d.P90, d.P99)
		}
	}
	if d := summarizeDurations(nil); d != (Dist{}) {
		t.Errorf("empty sample: %+v", d)
	}
}

// etcdMetrics is an excerpt of etcd 3.4's /metrics.
const etcdMetrics = `# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the server.
# TYPE grpc_server_msg_received_total counter
grpc_server_msg_received_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 1234
grpc_server_msg_received_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 10
grpc_server_msg_received_total{grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1005
grpc_server_msg_received_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 2
grpc_server_msg_received_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0
# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1005
# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.
# TYPE etcd_server_has_leader gauge
etcd_server_has_leader 1
`

func TestSteadyCounts(t *testing.T) {
	before, err := parseGRPCCounts(etcdMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if before[methodKeepAlive] != 1234 || before["Txn"] != 1005 || len(before) != 5 {
		t.Errorf("parsed %v", before)
	}
	after := strings.NewReplacer(`"bidi_stream"} 1234`+"\n", `"bidi_stream"} 1840`+"\n", `"unary"} 10`+"\n", `"unary"} 12`+"\n").Replace(etcdMetrics)
	a, err := parseGRPCCounts(after)
	if err != nil {
		t.Fatal(err)
	}
	delta := a.sub(before)
	if len(delta) != 2 || delta[methodKeepAlive] != 606 || delta["Range"] != 2 {
		t.Errorf("delta %v", delta)
	}
	s := splitSteady(delta, 600, 2*time.Second)
	want := steadyCounts{Seconds: 2, TotalPerSec: 304, FleetKA: 600, FleetKAPerSec: 300,
		VtepdKA: 6, VtepdKAPerSec: 3, Other: 2, OtherPerSec: 1}
	if len(s.ByMethod) != 2 {
		t.Errorf("by method %v", s.ByMethod)
	}
	s.ByMethod = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("split %+v, want %+v", s, want)
	}
	if _, err := parseGRPCCounts("not metrics {"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestStatusField(t *testing.T) {
	status := []byte("Name:\tvtepd\nVmPeak:\t 1262084 kB\nVmRSS:\t   16384 kB\nRssAnon:\t    7424 kB\n")
	if v, err := statusField(status, "VmRSS"); err != nil || v != 16384 {
		t.Errorf("VmRSS = %d, %v", v, err)
	}
	if _, err := statusField(status, "VmSwap"); err == nil {
		t.Error("missing field found")
	}
	if _, err := statusField([]byte("VmRSS:\tlots kB\n"), "VmRSS"); err == nil {
		t.Error("bad number parsed")
	}
}
