// Command soak runs vtepd for a long time under mixed, churning and hostile
// traffic and checks that it stays healthy: RSS, goroutines and open file
// descriptors flat after warm-up, nothing crashed, every hostile datagram
// counted under its drop reason, the attacker never learned, and no more
// legitimate traffic lost than the kernel's own VXLAN loses under the same
// load on the same run.
//
// The lab (internal/topo): three hosts a, b, c on one underlay segment
// (198.18.0.1-3/16), each with a bridge and a container (198.19.0.1-3,
// MTU 1450, VNI 200), and an attacker x on the same segment at 198.18.1.1,
// outside vtepd's accept_from (198.18.0.0/24). The run has two phases,
// with the same workload: first the kernel's vxlan on every host (full
// mesh of flood peers, 5 s ageing), the loss reference; then vtepd on
// every host (5 s ageing, max_entries 4096, accept_from), sampled every
// -interval: RSS and open fds from /proc, goroutines, Go heap, FDB size,
// counters and /fdb from its metrics listener.
//
// The workload (traffic_linux.go; this binary re-executes itself in the
// namespaces for each part):
//
//	flows    sequence-numbered UDP between every ordered pair of
//	         containers, -rate datagrams/s each, sizes 16..1422 bytes;
//	         receivers count every datagram, so loss is exact
//	tcp      an iperf3 burst (-tcp-rate for -tcp-burst) every -tcp-every,
//	         rotating over the pairs
//	churn    -churn new MACs a second, spread over the containers, sent
//	         as broadcasts; every fifth moves to the next container a
//	         second later; then all fall silent and age out
//	hostile  from the attacker, -hostile datagrams/s to each VTEP:
//	         too short, bad flags, unknown VNI, inner frame too short,
//	         and well-formed frames from outside accept_from
//
// Before each phase's traffic, one unthrottled TCP burst crosses every
// ordered pair, so that vtepd's preallocated batch buffers are resident
// before anything is measured. A sender the machine leaves unscheduled
// gives up what it is more than 100 ms behind rather than bursting to
// catch up (counted as given up, neither sent nor lost).
//
// Judging. Goroutines and fds are judged after the warm-up (-warmup, by
// default a fifth of the vtepd phase and at least 10 s); RSS only from
// the second garbage collection after it, when the Go heap has been
// through a full cycle from a settled live heap; each series as rolling
// medians of 3 samples, so that one transient sample does not decide. A
// flat series moves by at most -tolerance of its minimum (goroutines and
// fds: or by 2). The fds judged leave out vtepd's UDP GSO port sockets
// (vtep_udp_gso_sockets), which come and go with the flows by design. Legitimate loss: vtepd's loss rate at most the kernel's
// (plus -loss-slack). A vtepd that answers no scrape for 30 s has hung.
//
// Usage (root; `sudo make soak` builds vtepd first, SOAK_SECONDS=600):
//
//	go run ./soak [-duration 600s] [-kernel-share 0.25] [-interval 2s]
//	              [-gogc N] [-vtepd bin/vtepd] [-out soak/results]
//
// At Go's default GOGC, vtepd's GC cycle under this load is about a
// minute, so a run shorter than about five minutes cannot judge RSS;
// -gogc 10 (what TestIntegrationSoakShort, the one-minute version in
// `make test`, uses) shortens the cycle to a second or two.
//
// It prints a table and the verdict of each criterion, writes latest.json
// and a timestamped copy to -out, and exits 1 if a criterion failed (or
// the soak could not be run). The lab is removed on every exit path,
// including Ctrl-C.
//
// What it shares with the benchmark (bench/) lives in internal/harness:
// the preflight, the hosts and containers of the lab, starting vtepd, the
// AF_PACKET sender under the churn, the -duration flag and the hidden
// subcommands' plumbing. This package keeps its workload, its sampling
// and its judgement.
package main
