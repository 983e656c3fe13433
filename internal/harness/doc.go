// Package harness holds what the benchmark harness (bench/) and the soak
// (soak/) both need to read the tools they drive: iperf3's JSON report,
// and short excerpts of a command's output for error messages.
package harness
