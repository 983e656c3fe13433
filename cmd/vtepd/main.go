package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	// Named so: the integration tests of this package have a func config.
	configfile "github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/vtep"
)

func main() {
	os.Exit(run())
}

func run() int {
	if linuxOnly {
		fmt.Fprintln(os.Stderr, "vtepd runs on Linux only")
		return 1
	}
	configPath := flag.String("config", "/etc/vtepd/vtepd.toml", "configuration file (TOML)")
	logLevel := flag.String("log-level", "", "log level: debug, info, warn or error (default: the config's log_level, else info)")
	flag.Parse()

	// Catch signals before anything is created: a SIGTERM while starting
	// must still lead to a clean shutdown that removes the TAPs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	cfg, err := configfile.Load(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 2
	}
	var level slog.LevelVar
	level.Set(cfg.LogLevel)
	if *logLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*logLevel)); err != nil {
			fmt.Fprintf(os.Stderr, "vtepd: -log-level: %v\n", err)
			return 2
		}
		level.Set(l)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))

	ctl, sink, err := newControl(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 2
	}
	engine, err := vtep.New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 1
	}
	if ctl != nil {
		sink.Sink = engine.ControlSink()
		engine.SetControl(ctl)
	}
	if *logLevel == "" {
		engine.LogLevel = &level // a -log-level flag wins over reloads
	}
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading", "config", *configPath)
			engine.ReloadFile() // logs the outcome
		}
	}()
	if err := engine.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "vtepd: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
