//go:build linux

package topo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lab ranges: the only addresses a lab may configure or send to.
var labRanges = []netip.Prefix{
	netip.MustParsePrefix("198.18.0.0/15"), // RFC 2544 benchmarking
	netip.MustParsePrefix("2001:db8::/32"), // RFC 3849 documentation
}

const (
	// cmdTimeout bounds every ip/bridge/ping invocation.
	cmdTimeout = 30 * time.Second
	// stopGrace is how long Close waits after SIGTERM before SIGKILL.
	stopGrace = 3 * time.Second
	// netnsDir is where ip-netns(8) keeps its named namespaces.
	netnsDir = "/run/netns"
)

// validName is what lab prefixes, host and container names must look like:
// they become parts of namespace names and must not need quoting anywhere.
var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// ErrClosed is returned by methods that would create something in a lab
// that has been closed.
var ErrClosed = errors.New("topo: lab is closed")

// Lab is a set of network namespaces and processes, all removed by Close.
// Its methods are safe for concurrent use.
type Lab struct {
	name     string
	underlay string // namespace holding the shared underlay bridge

	mu         sync.Mutex
	closing    bool
	closeDone  chan struct{}
	closeErr   error
	namespaces []string // in creation order; deleted in reverse
	hosts      int      // hosts added, naming their underlay veths uh<n>
	procs      []*Proc
	closers    []func() error // run by Close before it stops procs
}

// New creates a lab named prefix plus four random hex digits and its
// underlay namespace "<lab>-u" with a bridge br0 that host veths join.
// prefix must match [a-z][a-z0-9]{0,11}.
func New(prefix string) (*Lab, error) {
	if !validName.MatchString(prefix) {
		return nil, fmt.Errorf("topo: lab prefix %q does not match %s", prefix, validName)
	}
	for attempt := 0; attempt < 8; attempt++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("topo: random lab suffix: %w", err)
		}
		l := &Lab{name: prefix + hex.EncodeToString(b[:]), closeDone: make(chan struct{})}
		l.underlay = l.name + "-u"
		if _, err := os.Stat(netnsDir + "/" + l.underlay); err == nil {
			continue // another lab holds this name; draw again
		}
		register(l)
		if err := l.setupUnderlay(); err != nil {
			return nil, errors.Join(err, l.Close())
		}
		return l, nil
	}
	return nil, fmt.Errorf("topo: no free lab name with prefix %q", prefix)
}

func (l *Lab) setupUnderlay() error {
	if err := l.addNamespace(l.underlay); err != nil {
		return err
	}
	return runAll(
		[]string{"ip", "-n", l.underlay, "link", "set", "lo", "up"},
		[]string{"ip", "-n", l.underlay, "link", "add", "name", "br0", "type", "bridge"},
		[]string{"ip", "-n", l.underlay, "link", "set", "br0", "up"},
	)
}

// Name is the lab's unique name, the prefix of all its namespace names.
func (l *Lab) Name() string { return l.name }

// UnderlayNS is the name of the namespace that holds the underlay bridge,
// e.g. for running tcpdump on br0 there.
func (l *Lab) UnderlayNS() string { return l.underlay }

// Namespaces lists the namespaces the lab has created and not yet deleted.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

// Procs lists the processes started in the lab, running or not.
func (l *Lab) Procs() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.procs...)
}

// addNamespace creates a named namespace and records it for Close. The
// lock is held across creation so that a concurrent Close either sees the
// namespace or makes the creation fail.
func (l *Lab) addNamespace(ns string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	if _, err := os.Stat(netnsDir + "/" + ns); err == nil {
		return fmt.Errorf("topo: namespace %s already exists", ns)
	}
	if _, err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, ns)
	return nil
}

// attachNamespace names the network namespace of process pid ns, as
// `ip netns attach` does, and records the name for Close, which deletes it
// like the namespaces the lab created. The namespace itself lives on as
// long as a process or another mount holds it.
func (l *Lab) attachNamespace(ns string, pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	if _, err := os.Stat(netnsDir + "/" + ns); err == nil {
		return fmt.Errorf("topo: namespace %s already exists", ns)
	}
	if _, err := run("ip", "netns", "attach", ns, strconv.Itoa(pid)); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, ns)
	return nil
}

// onClose registers fn to run when the lab closes, before its processes
// are stopped and its namespaces deleted: for what must be taken down while
// the lab still stands (a Docker engine removes its containers). The
// functions run concurrently and Close waits for them all.
func (l *Lab) onClose(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	l.closers = append(l.closers, fn)
	return nil
}

// Close runs the functions registered with onClose (a Docker engine's
// teardown), then stops every process the lab started (SIGTERM, SIGKILL
// after a grace period, by PID) and deletes every namespace it created or
// attached, which removes the links inside them. Concurrent and repeated
// calls wait for the first one and return its result.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.closeDone
		return l.closeErr
	}
	l.closing = true
	procs := append([]*Proc(nil), l.procs...)
	nss := append([]string(nil), l.namespaces...)
	closers := append([]func() error(nil), l.closers...)
	l.mu.Unlock()

	errs := make([]error, len(closers))
	var wg sync.WaitGroup
	for i, fn := range closers {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	for _, p := range procs {
		if err := p.stop(stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if _, err := run("ip", "netns", "del", nss[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		l.mu.Lock()
		l.namespaces = remove(l.namespaces, nss[i])
		l.mu.Unlock()
	}
	unregister(l)
	l.closeErr = errors.Join(errs...)
	close(l.closeDone)
	return l.closeErr
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// NetnsList returns the names of all named network namespaces
// (`ip netns list`), for asserting that a lab left nothing behind.
func NetnsList() ([]string, error) {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// checkAddr refuses addresses outside the lab ranges.
func checkAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range labRanges {
		if p.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("topo: address %v is outside the lab ranges %v", a, labRanges)
}

// checkPrefix refuses prefixes not wholly inside one of the lab ranges.
func checkPrefix(p netip.Prefix) error {
	for _, r := range labRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr().Unmap()) {
			return nil
		}
	}
	return fmt.Errorf("topo: prefix %v is not inside the lab ranges %v", p, labRanges)
}

// run executes a command with a timeout; its error names the command line
// and carries its combined output.
func run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second // a loaded machine may take seconds to drain the pipes
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

func runAll(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Live labs, closed on SIGINT/SIGTERM so that an interrupted test run
// leaves no namespaces or daemons behind. The signal is then re-raised
// with the disposition the process started with.
var (
	liveMu  sync.Mutex
	live    = map[*Lab]struct{}{}
	sigOnce sync.Once
)

func register(l *Lab) {
	liveMu.Lock()
	live[l] = struct{}{}
	liveMu.Unlock()
	sigOnce.Do(func() {
		// A signal ignored at start-up (SIGINT of a background job) stays
		// ignored: catching it would change what it does to the process.
		var sigs []os.Signal
		for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
			if !signal.Ignored(s) {
				sigs = append(sigs, s)
			}
		}
		if len(sigs) == 0 {
			return
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, sigs...)
		go func() {
			sig := <-ch
			liveMu.Lock()
			labs := make([]*Lab, 0, len(live))
			for l := range live {
				labs = append(labs, l)
			}
			liveMu.Unlock()
			for _, l := range labs {
				if err := l.Close(); err != nil {
					fmt.Fprintf(os.Stderr, "topo: closing lab %s on %v: %v\n", l.name, sig, err)
				}
			}
			signal.Stop(ch)
			signal.Reset(sigs...)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		}()
	})
}

func unregister(l *Lab) {
	liveMu.Lock()
	delete(live, l)
	liveMu.Unlock()
}
