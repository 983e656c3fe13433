# vtepd: `make build`, `sudo make test`, `sudo make demo`.
SHELL    := /bin/bash
GO       ?= go
GOFLAGS  ?=
BIN      := bin
PKGS     := ./...
# Debian packages the tests, the demo and the benchmarks run (etcd: the
# control plane tests start their own server, /usr/bin/etcd; docker.io and
# busybox-static: TestIntegrationDockerEngine starts a dockerd in each
# test host's network namespace and imports busybox as its image; nsenter
# comes with util-linux).
DEB_DEPS := iproute2 iputils-ping iperf3 curl procps etcd-server etcd-client docker.io busybox-static frr gobgpd
# `make fuzz` runs every fuzz target for FUZZTIME; `make test` runs each
# for a fixed number of inputs instead (a time limit can end a run while
# the fuzzer minimises, which Go reports as a failure).
FUZZTIME ?= 2m
FUZZQUICK ?= 5000x

.PHONY: all build test unit deps demo fuzz bench vet cross clean

all: build

# A static binary: no libc needed on the host that runs it.
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BIN)/vtepd ./cmd/vtepd
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BIN)/vtepctl ./cmd/vtepctl

# Install what the tests need when it is missing (a fresh Debian machine).
# Several of these packages are daemons (etcd, dockerd, FRR's zebra and
# bgpd, gobgpd) that the tests start themselves, each in a test's own
# namespace. None may run in the machine's own: a policy-rc.d that forbids
# starting services is in place while they install (unless the machine
# has one already), and on a systemd machine the units of the packages
# installed here are disabled, so that a reboot does not start them either.
deps:
	@missing=""; \
	for p in $(DEB_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		guard=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\n# make deps: no service starts while it installs\nexit 101\n' >/usr/sbin/policy-rc.d; \
			chmod 755 /usr/sbin/policy-rc.d; guard=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
		rc=$$?; \
		[ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; \
		if [ $$rc -eq 0 ] && [ -d /run/systemd/system ]; then \
			units=$$(for p in $$missing; do dpkg -L $$p; done | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket)$$' | xargs -r -n1 basename); \
			[ -z "$$units" ] || systemctl disable --now $$units >/dev/null 2>&1 || true; \
		fi; \
		exit $$rc; \
	fi

vet:
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

# vtepd runs on Linux only, but every package builds elsewhere (stubs in
# *_other.go): a darwin or freebsd build catches a Linux-only call that
# slipped into a portable file.
cross:
	GOOS=darwin $(GO) build ./...
	GOOS=freebsd $(GO) build ./...

# Every test: unit tests under the race detector, the privileged
# integration tests in network namespaces (root), and a short fuzz of each
# fuzz target.
# The short soak runs alone afterwards: it compares loss against the
# kernel's, which other tests running beside it would make noisy.
test: deps vet cross build
	$(GO) test -race -count=1 -timeout 12m -skip TestIntegrationSoakShort $(PKGS)
	$(GO) test -count=1 -timeout 5m -run TestIntegrationSoakShort -v ./soak | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|soak' | tail -40; \
		exit $${PIPESTATUS[0]}
	$(MAKE) fuzz FUZZTIME=$(FUZZQUICK)

unit:
	$(GO) test -race -count=1 -short $(PKGS)

fuzz:
	@set -e; for target in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/^func //' | sort -u); do \
		pkg=$$(dirname $$(grep -rlE "^func $$target\(" --include='*_test.go' . | head -1)); \
		echo "fuzz $$target in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	done

demo: deps build
	./scripts/demo.sh

# vtepd against the kernel's VXLAN (root): throughput, 64-byte pps, RTT,
# CPU per GB; medians, a table, bench/results/latest.{json,svg}; then the
# 64-byte rate search over sockets (NDR, PDR, overload), once,
# bench/results/latest-overload.svg. About 5 minutes with these defaults
# (the search 1.5 to 2 of them); see `go run ./bench -h` for the flags.
BENCHFLAGS ?= -reps 3 -duration 5s
bench: deps build
	$(GO) run ./bench -vtepd $(BIN)/vtepd $(BENCHFLAGS)

# vtepd's control plane on etcd at the scale of issue #11 (root): one
# etcd, 1000 simulated VTEPs × 100 MACs on leases of their own, one vtepd
# watching; full sync time, convergence p50/p99 at 100 changes/s, RSS
# growth, etcd's requests in steady state, each against its target; a
# table and bench/results/control/latest.{json,md}. About a minute; see
# `go run ./bench/control -h` for the flags.
BENCHCONTROLFLAGS ?=
.PHONY: bench-control
bench-control: deps build
	$(GO) run ./bench/control -vtepd $(BIN)/vtepd $(BENCHCONTROLFLAGS)

# vtepd for SOAK_SECONDS of churning, hostile and mixed traffic, a quarter
# of it over the kernel's vxlan for reference (root): RSS, goroutines and
# fds flat, no crash, every hostile datagram counted, no more loss than the
# kernel; a table and soak/results/latest.json. `make test` runs a
# one-minute version (TestIntegrationSoakShort); see `go run ./soak -h`.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: deps build
	$(GO) run ./soak -vtepd $(BIN)/vtepd -duration $(SOAK_SECONDS)

clean:
	rm -rf $(BIN)
