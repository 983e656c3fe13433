// Package harness holds what the benchmark (bench/) and the soak (soak/)
// share, so that each of them keeps only its own workloads, judgements and
// reports:
//
//   - the command line: the -duration flag that also takes plain seconds
//     (Seconds), the hidden subcommands each binary runs when it
//     re-executes itself inside the lab's namespaces (RunHidden, and the
//     ReadyLine they print once listening), and noticing the Ctrl-C that
//     internal/topo answers by removing the lab (WatchInterrupt);
//   - the lab: the preflight checks (Preflight), hosts with one container
//     each on internal/topo (AddHosts, CloseLab), vtepd started on every
//     host and waited for until healthy (StartVtepds, WaitHealthy), and
//     waiting for the processes the harnesses start (Wait, WaitReady);
//   - the wire: a send-only AF_PACKET socket that puts prebuilt Ethernet
//     frames on a container's interface (PacketSender);
//   - reading what the tools and the hidden subcommands print: iperf3's
//     JSON report (ParseIperf), the last JSON line of a subcommand
//     (LastJSONLine), excerpts of output for error messages (Tail); and
//     the machine a run was made on (System);
//   - their own integration tests: the daemon built for the test (VtepdBin)
//     and the check that a run left none of its lab's namespaces behind
//     (NoNamespacesLeft).
//
// It must not hold anything only one of them needs (the benchmark's
// workloads and tables, the soak's traffic and verdicts), and it changes no
// output or file format of either: error texts that differ between them
// are the callers' to write, from what these functions return.
//
// What touches namespaces, sockets or processes is Linux-only
// (*_linux.go); PacketSender has a stub that says so elsewhere.
package harness
