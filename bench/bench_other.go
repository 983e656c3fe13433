//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("needs Linux network namespaces; not supported on %s", runtime.GOOS)

func runBench(options) error    { return errUnsupported }
func runPktgen([]string) error  { return errUnsupported }
func runPktsink([]string) error { return errUnsupported }
func runUDPGen([]string) error  { return errUnsupported }
func runUDPSink([]string) error { return errUnsupported }
