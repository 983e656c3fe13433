//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

func run(options, func(string, ...any)) (*Results, error) {
	return nil, fmt.Errorf("needs Linux network namespaces; not supported on %s", runtime.GOOS)
}
