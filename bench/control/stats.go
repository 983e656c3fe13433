package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vtepd/vtepd/internal/promtext"
)

// Dist summarises a sample of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarizeDurations returns the nearest-rank percentiles of ds (which it
// sorts); the zero Dist for none.
func summarizeDurations(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Dist{
		N:    len(ds),
		P50:  ms(percentile(ds, 50)),
		P90:  ms(percentile(ds, 90)),
		P99:  ms(percentile(ds, 99)),
		Max:  ms(ds[len(ds)-1]),
		Mean: ms(sum / time.Duration(len(ds))),
	}
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value that at least p% of the sample is at or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// secs is d in seconds, to the millisecond.
func secs(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)) / 1000 }

// grpcCounts are etcd's gRPC request messages received, by method:
// grpc_server_msg_received_total counts every unary request and every
// message a client sends on a stream (each LeaseKeepAlive of its
// keepalive stream, each watch created on its Watch stream).
type grpcCounts map[string]float64

const grpcReceived = "grpc_server_msg_received_total"

// parseGRPCCounts reads etcd's /metrics.
func parseGRPCCounts(text string) (grpcCounts, error) {
	samples, err := promtext.Parse(text)
	if err != nil {
		return nil, err
	}
	c := grpcCounts{}
	for _, s := range samples {
		if s.Name == grpcReceived {
			c[s.Labels["grpc_method"]] += s.Value
		}
	}
	return c, nil
}

// sub is c minus before, method by method, leaving out methods that did
// not move.
func (c grpcCounts) sub(before grpcCounts) grpcCounts {
	d := grpcCounts{}
	for m, v := range c {
		if dv := v - before[m]; dv != 0 {
			d[m] = dv
		}
	}
	return d
}

func (c grpcCounts) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// methodKeepAlive is the method of lease keepalives.
const methodKeepAlive = "LeaseKeepAlive"

// steadyCounts splits the requests etcd received in a window of nothing
// changing: every method's count, the keepalives the fleet sent (counted
// on its own stream, see fleet.quiesce), and what is left of them for the
// vtepd under test.
type steadyCounts struct {
	Seconds       float64            `json:"window_seconds"`
	ByMethod      map[string]float64 `json:"requests_by_method"`
	TotalPerSec   float64            `json:"requests_per_second"`
	FleetKA       float64            `json:"fleet_keepalives"`
	FleetKAPerSec float64            `json:"fleet_keepalives_per_second"`
	VtepdKA       float64            `json:"vtepd_keepalives"`
	VtepdKAPerSec float64            `json:"vtepd_keepalives_per_second"`
	// Other counts every request that is not a keepalive: in steady
	// state nobody writes, so they are all the vtepd's.
	Other       float64 `json:"other_requests"`
	OtherPerSec float64 `json:"other_requests_per_second"`
}

func splitSteady(delta grpcCounts, fleetKA float64, window time.Duration) steadyCounts {
	s := steadyCounts{Seconds: secs(window), ByMethod: map[string]float64(delta), FleetKA: fleetKA}
	if s.ByMethod == nil {
		s.ByMethod = map[string]float64{}
	}
	s.VtepdKA = delta[methodKeepAlive] - fleetKA
	s.Other = delta.total() - delta[methodKeepAlive]
	if sec := window.Seconds(); sec > 0 {
		s.TotalPerSec = round3(delta.total() / sec)
		s.FleetKAPerSec = round3(fleetKA / sec)
		s.VtepdKAPerSec = round3(s.VtepdKA / sec)
		s.OtherPerSec = round3(s.Other / sec)
	}
	return s
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// statusField reads a "Name:  123 kB" line of /proc/PID/status.
func statusField(status []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}
