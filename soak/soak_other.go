//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("needs Linux network namespaces; not supported on %s", runtime.GOOS)

func runSoak(options) (*Results, error) { return nil, errUnsupported }

// runSubcommand recognises no subcommand: there is no lab to run them in.
func runSubcommand([]string) (bool, error) { return false, nil }
