package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vtepd/vtepd/internal/harness"
)

// options are the soak's settings.
type options struct {
	duration    time.Duration // traffic time, both phases
	kernelShare float64       // of duration, given to the kernel phase
	interval    time.Duration
	warmup      time.Duration // 0: a fifth of the vtepd phase, 10 s at least
	flowRate    int
	churnRate   int
	hostileRate int
	tcpRate     string
	tcpBurst    time.Duration
	tcpEvery    time.Duration
	queues      int
	vtepd       string
	out         string
	gogc        int     // GOGC of vtepd; 0: Go's default
	tolerance   float64 // flatness, as a fraction
	lossSlack   float64 // added to the kernel's loss rate
	progress    func(string)
}

// defaultOptions are the flags' defaults.
func defaultOptions() options {
	return options{
		duration:    600 * time.Second,
		kernelShare: 0.25,
		interval:    2 * time.Second,
		flowRate:    200,
		churnRate:   50,
		hostileRate: 100,
		tcpRate:     "200M",
		tcpBurst:    3 * time.Second,
		tcpEvery:    8 * time.Second,
		vtepd:       "bin/vtepd",
		out:         "soak/results",
		tolerance:   0.10,
	}
}

// check refuses settings the soak cannot run with.
func (o options) check() error {
	switch {
	case o.duration < 20*time.Second:
		return errors.New("-duration must be at least 20s")
	case o.kernelShare <= 0 || o.kernelShare >= 0.9:
		return errors.New("-kernel-share must be in (0, 0.9)")
	case o.interval < 100*time.Millisecond:
		return errors.New("-interval must be at least 100ms")
	case o.flowRate < 1 || o.flowRate > 100000:
		return errors.New("-rate must be in 1..100000")
	case o.churnRate < 1 || o.churnRate > 256:
		return errors.New("-churn must be in 1..256")
	case o.hostileRate < len(hostileKinds) || o.hostileRate > 100000:
		return fmt.Errorf("-hostile must be in %d..100000", len(hostileKinds))
	case o.tcpBurst < time.Second || o.tcpEvery < 0:
		return errors.New("-tcp-burst must be at least 1s, -tcp-every not negative")
	case o.queues < 0 || o.gogc < 0:
		return errors.New("-queues and -gogc must not be negative")
	case o.tolerance <= 0 || o.lossSlack < 0:
		return errors.New("-tolerance must be positive, -loss-slack not negative")
	}
	return nil
}

// phases splits the run into the kernel's share and vtepd's, and picks
// the warm-up: a fifth of the vtepd phase, at least 10 s, at most half.
func (o options) phases() (kernel, vtepd, warmup time.Duration) {
	kernel = max((time.Duration(float64(o.duration) * o.kernelShare)).Round(time.Second), 5*time.Second)
	vtepd = o.duration - kernel
	warmup = o.warmup
	if warmup == 0 {
		warmup = min(max(vtepd/5, 10*time.Second), vtepd/2).Round(time.Second)
	}
	return kernel, vtepd, warmup
}

func main() {
	// Hidden subcommands: the soak re-executes itself inside the lab's
	// namespaces as the workload's processes.
	harness.RunHidden(os.Args[1:], subcommands)

	o := defaultOptions()
	flag.Var(harness.SecondsFlag(&o.duration, 7*24*time.Hour, "600s"), "duration", "traffic time of both phases together: a Go duration (600s) or plain seconds")
	flag.Float64Var(&o.kernelShare, "kernel-share", o.kernelShare, "share of -duration run over the kernel's vxlan, the loss reference")
	flag.DurationVar(&o.interval, "interval", o.interval, "time between samples of each vtepd")
	flag.DurationVar(&o.warmup, "warmup", 0, "start of the vtepd phase left out of the flatness checks; 0: a fifth of it, at least 10s")
	flag.IntVar(&o.flowRate, "rate", o.flowRate, "UDP datagrams per second per ordered pair of containers")
	flag.IntVar(&o.churnRate, "churn", o.churnRate, "new MACs per second (1..256)")
	flag.IntVar(&o.hostileRate, "hostile", o.hostileRate, "hostile datagrams per second to each VTEP, all kinds together")
	flag.StringVar(&o.tcpRate, "tcp-rate", o.tcpRate, "iperf3 -b of each TCP burst")
	flag.DurationVar(&o.tcpBurst, "tcp-burst", o.tcpBurst, "length of each TCP burst (whole seconds)")
	flag.DurationVar(&o.tcpEvery, "tcp-every", o.tcpEvery, "time between TCP bursts; 0: none")
	flag.IntVar(&o.queues, "queues", 0, "vtepd queues (config `queues`); 0 leaves vtepd's default, NumCPU")
	flag.StringVar(&o.vtepd, "vtepd", o.vtepd, "vtepd binary (make build)")
	flag.StringVar(&o.out, "out", o.out, `directory for latest.json and timestamped copies; "" writes none`)
	flag.IntVar(&o.gogc, "gogc", 0, "run vtepd with GOGC=N, a shorter GC cycle for a short run; 0: Go's default, 100")
	flag.Float64Var(&o.tolerance, "tolerance", o.tolerance, "how far RSS, goroutines and fds may move after warm-up, as a fraction")
	flag.Float64Var(&o.lossSlack, "loss-slack", 0, "loss rate vtepd may have beyond the kernel's, as a fraction")
	harness.ParseFlags("soak",
		"vtepd under churn and hostile traffic for a while: leaks, crashes, drops, loss against the kernel's vxlan.",
		func() error { return o.check() }) // not o.check, which would copy o before the flags are parsed
	o.progress = func(line string) { fmt.Fprintln(os.Stderr, line) }

	// topo closes the lab on SIGINT/SIGTERM and re-raises the signal; a
	// workload cut short by it must not read as a failure of vtepd.
	interrupted := harness.WatchInterrupt()
	res, err := runSoak(o)
	harness.ExitIfFailed("soak", "could not run", err, interrupted)
	res.printTable(os.Stdout)
	if o.out != "" {
		path, err := res.write(o.out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak: writing results: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "soak: results in %s\n", path)
	}
	if !res.Pass {
		os.Exit(1)
	}
}
