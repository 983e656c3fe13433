package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// Hidden subcommands (pktgen_linux.go, udprate_linux.go).
const (
	cmdPktgen  = "_pktgen"
	cmdPktsink = "_pktsink"
	cmdUDPGen  = "_udpgen"
	cmdUDPSink = "_udpsink"
)

// options are the harness's flags.
type options struct {
	reps     int
	duration time.Duration
	out      string
	vtepd    string
	only     string
	queues   int
	udpGSO   bool
	busyPoll time.Duration
	pprof    bool
	// profileDir, when set, gets CPU profiles and traces of each vtepd
	// during every workload (profile_linux.go).
	profileDir string
	flows      int

	// The rate search (ratesearch.go).
	searchTrial     time.Duration
	searchFlows     []int
	searchPrecision float64
}

func main() {
	// Hidden subcommands: the harness re-executes itself inside container
	// namespaces as the small-frame generator and counter.
	harness.RunHidden(os.Args[1:], map[string]func([]string) error{
		cmdPktgen: runPktgen, cmdPktsink: runPktsink, cmdUDPGen: runUDPGen, cmdUDPSink: runUDPSink})

	var o options
	flag.IntVar(&o.reps, "reps", 3, "repetitions per mode; medians are reported")
	o.duration = 5 * time.Second
	flag.Var(harness.SecondsFlag(&o.duration, 24*time.Hour, "5s"), "duration", "length of each measurement: a Go duration (5s) or plain seconds (5)")
	flag.StringVar(&o.out, "out", "bench/results", "directory for latest.json, latest.svg, latest-overload.svg, timestamped copies and profiles")
	flag.StringVar(&o.vtepd, "vtepd", "bin/vtepd", "vtepd binary (make build)")
	flag.StringVar(&o.only, "only", "all", "comma-separated subset of workloads: lat,tcp1,tcp4,pps,ratesearch; idle (only when named: the overlay up, no traffic, for -duration)")
	flag.IntVar(&o.queues, "queues", 0, "vtepd queues (config `queues`); 0 leaves vtepd's default, NumCPU")
	flag.DurationVar(&o.busyPoll, "busy-poll", 0, "run vtepd with busy_poll set to this (0: off, vtepd's default)")
	flag.BoolVar(&o.udpGSO, "udp-gso", true, "run vtepd with underlay.udp_gso (its default); -udp-gso=false measures datagram by datagram sending")
	flag.BoolVar(&o.pprof, "pprof", false, "profile each vtepd during an extra TCP single-stream run and print the top 10")
	flag.StringVar(&o.profileDir, "profile-dir", "", "save a CPU profile of each vtepd during every vtepd workload (and full-length rate-search trial), "+
		"a runtime trace during idle and lat (the first 2s of tcp1 and pps), and each vtepd's CPU time and wake-ups (cpu.tsv) to this directory")
	flag.IntVar(&o.flows, "flows", 64, "UDP flows (source ports) of the small-frame generator (pps)")
	o.searchTrial = time.Second
	flag.Var(harness.SecondsFlag(&o.searchTrial, time.Hour, "1s"), "search-trial",
		"length of each ratesearch trial while bisecting; the confirmations and the maximum last -duration")
	searchFlows := flag.String("search-flows", "1,4", "ratesearch: comma-separated flow counts, a search each")
	flag.Float64Var(&o.searchPrecision, "search-precision", 0.05, "ratesearch: bisect until (upper-lower)/upper is at most this")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bench [flags] (as root)\n\nvtepd against the kernel's VXLAN: throughput, small-frame rate, latency, CPU.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	o.searchFlows, err = parseFlowCounts(*searchFlows)
	if err != nil || o.reps < 1 || o.duration < time.Second || o.flows < 1 || o.flows > 4096 || o.queues < 0 || o.busyPoll < 0 ||
		o.searchTrial < 100*time.Millisecond || !(o.searchPrecision > 0 && o.searchPrecision < 1) {
		fmt.Fprintln(os.Stderr, "bench: need -reps >= 1, -duration >= 1s, -flows in 1..4096, -queues >= 0, -busy-poll >= 0, "+
			"-search-trial >= 100ms, -search-precision in (0, 1), -search-flows a list of 1..64")
		os.Exit(2)
	}
	// topo closes the lab on SIGINT/SIGTERM and re-raises the signal; a
	// workload cut short by it must not read as a failure of the path.
	interrupted := harness.WatchInterrupt()
	if err := runBench(o); err != nil {
		if interrupted() {
			fmt.Fprintln(os.Stderr, "bench: interrupted; lab removed")
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", err)
		os.Exit(1)
	}
}
