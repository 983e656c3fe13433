// Command bench measures vtepd against the kernel's own VXLAN driver and
// answers the question users ask: how close is vtepd to the kernel, and
// what does it cost?
//
// It builds one lab (internal/topo): two hosts on an underlay bridge,
// each with a bridge br0 and a container (MTU 1450) on it, VNI 200 between
// them. Each repetition then runs the same workloads over the kernel's
// vxlan and over vtepd, the order alternating from one repetition to the
// next so that drift (thermal, other tenants of the VM) hits both alike:
//
//	lat   ping every 10 ms for -duration: RTT p50 and p99
//	tcp1  iperf3, one stream: Gbit/s received; CPU seconds per GB of
//	      vtepd (both processes) and of the whole machine
//	tcp4  iperf3, four streams: Gbit/s received
//	pps   64-byte UDP payloads over 64 flows from our own AF_PACKET
//	      generator to our own recvmmsg counter: packets per second
//	      offered and received
//
// and then, once per run rather than per repetition:
//
//	ratesearch  64-byte UDP payloads from an ordinary socket sender
//	      (sendmmsg, paced, a thread per flow) to an ordinary recvmmsg
//	      receiver, 1 and 4 flows: the offered rate searched as FD.io
//	      CSIT's MLRsearch does (1 s trials to bisect, -duration to
//	      confirm) for NDR (no loss) and PDR (0.5% loss), and the
//	      overload curve, delivered against offered up to the sender's
//	      maximum, with its retention (delivered at the maximum ÷ the
//	      most delivered). A progress line per trial; around each
//	      full-length trial, every drop counter of the lab, to say
//	      where the loss went. See ratesearch.go.
//
// Before the first repetition the generator runs once with no overlay up
// (its frames die at the sending host's bridge): its own ceiling, to tell
// a path-limited small-frame figure from a generator-limited one. The
// machine's background load is sampled before and after, since on a shared
// VM it moves every figure.
//
// It prints the medians, the ratio vtepd/kernel, and writes latest.json,
// a timestamped copy, latest.svg (the ratios as bars) and, after a rate
// search, latest-overload.svg (the overload curves) to -out. With
// -pprof, one extra vtepd run of tcp1 (not counted) collects a CPU profile
// of each vtepd and prints its top 10. With -profile-dir DIR, every vtepd
// workload and full-length rate-search trial is profiled as it runs (CPU
// profiles; runtime traces of idle and lat, 2 s of tcp1 and pps; ping -D
// output; each vtepd's CPU time and wake-ups in DIR/cpu.tsv), and the
// opt-in workload idle (-only idle: the overlay up, no traffic, for
// -duration) says what an idle vtepd costs. bench/results/issue12-profile.md
// is what they found.
//
// Usage (root; `sudo make bench` builds vtepd first):
//
//	go run ./bench [-reps 3] [-duration 5s] [-only lat,tcp1,tcp4,pps,ratesearch]
//	               [-queues N] [-udp-gso=false] [-busy-poll 50ms] [-pprof] [-profile-dir DIR]
//	               [-search-trial 1s] [-search-flows 1,4] [-search-precision 0.05]
//	               [-vtepd bin/vtepd] [-out bench/results]
//
// Any workload that cannot run (no ping reply, iperf3 error, no datagram
// counted) ends the run with an error and a non-zero exit status rather
// than a zero in the table. The lab is removed on every exit path,
// including Ctrl-C.
//
// What it shares with the soak (soak/) lives in internal/harness: the
// preflight, the hosts and containers of the lab, starting vtepd, the
// AF_PACKET sender under the generator, the -duration flag and the hidden
// subcommands' plumbing. This package keeps its workloads, the generator
// and counter themselves, the rate search's sender, receiver and search,
// and its statistics, tables and charts.
package main
