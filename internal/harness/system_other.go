//go:build !linux

package harness

// kernelRelease is not known beyond Linux, where the harnesses cannot run.
func kernelRelease() string { return "" }
