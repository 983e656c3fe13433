package main

import (
	"fmt"
	"log/slog"

	configfile "github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/control/etcd"
	"github.com/vtepd/vtepd/control/evpn"
)

// laterSink lets the backend be made, and its configuration checked,
// before the engine that receives its view: a backend that cannot be made
// must leave no TAP behind. Its Sink is set before the backend runs.
type laterSink struct{ control.Sink }

// newControl makes the backend that [control] configures, or returns nil
// when there is none.
func newControl(cfg *configfile.Config, log *slog.Logger) (control.Backend, *laterSink, error) {
	switch cfg.ControlBackend {
	case "":
		return nil, nil, nil
	case "etcd":
	case "evpn":
		return newEVPN(cfg, log)
	default:
		return nil, nil, fmt.Errorf("control.backend: %q is not supported", cfg.ControlBackend)
	}
	sink := &laterSink{}
	b, err := etcd.New(etcd.Config{
		Endpoints:  cfg.ControlEndpoints,
		Prefix:     cfg.ControlPrefix,
		LeaseTTL:   cfg.ControlLeaseTTL,
		CAFile:     cfg.ControlCAFile,
		CertFile:   cfg.ControlCertFile,
		KeyFile:    cfg.ControlKeyFile,
		Username:   cfg.ControlUsername,
		Password:   cfg.ControlPassword,
		Local:      cfg.Local,
		Port:       cfg.Port,
		MaxEntries: cfg.ControlMaxEntries,
		Sink:       sink,
		Log:        log,
	})
	if err != nil {
		// The one thing New checks that validation could not: the TLS
		// files, which it reads.
		return nil, nil, fmt.Errorf("control.ca_file, cert_file, key_file: %w", err)
	}
	return b, sink, nil
}

// newEVPN makes the BGP EVPN backend. Each network's route target and
// distinguisher reach it through the engine's JoinWith.
func newEVPN(cfg *configfile.Config, log *slog.Logger) (control.Backend, *laterSink, error) {
	sink := &laterSink{}
	ns := make([]evpn.Neighbor, len(cfg.ControlNeighbors))
	for i, n := range cfg.ControlNeighbors {
		ns[i] = evpn.Neighbor{Address: n.Address, ASN: n.ASN, Password: n.Password}
	}
	b, err := evpn.New(evpn.Config{
		ASN:        cfg.ControlASN,
		RouterID:   cfg.ControlRouterID,
		ListenPort: cfg.ControlListenPort,
		Neighbors:  ns,
		Local:      cfg.Local,
		Port:       cfg.Port,
		MaxEntries: cfg.ControlMaxEntries,
		Sink:       sink,
		Log:        log,
	})
	if err != nil {
		return nil, nil, err
	}
	return b, sink, nil
}
