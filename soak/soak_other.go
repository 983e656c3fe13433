//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("needs Linux network namespaces; not supported on %s", runtime.GOOS)

func runSoak(options) (*Results, error) { return nil, errUnsupported }

// subcommands is empty: there is no lab to run them in.
var subcommands map[string]func([]string) error
