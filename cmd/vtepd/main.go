// Command vtepd is a userspace VXLAN tunnel endpoint: it joins Linux bridges
// as a TAP port and carries their Ethernet segments to other VTEPs over
// VXLAN (RFC 7348), interoperating with the kernel's own vxlan driver.
//
// Usage:
//
//	vtepd -config /etc/vtepd/vtepd.toml [-log-level info]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vtepd/vtepd/vtep"
)

func main() {
	os.Exit(run())
}

func run() int {
	configPath := flag.String("config", "/etc/vtepd/vtepd.toml", "configuration file (TOML)")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := vtep.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 2
	}
	// Catch signals before New creates anything: a SIGTERM while starting
	// must still lead to a clean shutdown that removes the TAPs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	engine, err := vtep.New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 1
	}
	if err := engine.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
