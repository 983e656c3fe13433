// Package config owns vtepd's configuration file: its TOML schema, the
// validation that turns a document into a Config (every address parsed,
// every default filled in, each mistake reported with its key and line),
// and the classification of every setting for a live reload (reload.go):
// applied live, needing a restart, or, for a network, replacing it.
//
// It is pure: it reads the file it is given and nothing else. It must not
// touch the host (netlink, sockets, devices), export metrics, or import
// the engine (package vtep), which consumes a Config and applies the
// differences that Diff and DiffNetwork report.
package config
