package harness

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// AddHosts builds the harnesses' hosts in lab: one per name, hosts[i] at
// underlay(i) on the underlay segment with MTU mtu, each with one
// container "c1" at container(i) on its bridge br0, at the MTU that leaves
// room for VXLAN. each, if not nil, is called with every host and its
// container as soon as both exist, for what one harness sets up beyond
// that (a MAC, the bridge's ageing). On error, what was built stays in
// lab, which removes it on Close.
func AddHosts(lab *topo.Lab, names []string, underlay, container func(i int) netip.Prefix, mtu int,
	each func(i int, h *topo.Host, c *topo.Container) error) ([]*topo.Host, []*topo.Container, error) {
	var hosts []*topo.Host
	var ctrs []*topo.Container
	for i, name := range names {
		h, err := lab.AddHost(name, underlay(i), mtu)
		if err != nil {
			return nil, nil, err
		}
		c, err := h.AddContainer("c1", container(i), h.VXLANMTU())
		if err != nil {
			return nil, nil, err
		}
		if each != nil {
			if err := each(i, h, c); err != nil {
				return nil, nil, err
			}
		}
		hosts, ctrs = append(hosts, h), append(ctrs, c)
	}
	return hosts, ctrs, nil
}

// CloseLab closes lab and joins its failure to *err, for
//
//	defer harness.CloseLab(lab, &err)
//
// in a function with a named error result.
func CloseLab(lab *topo.Lab, err *error) {
	if cerr := lab.Close(); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("closing lab %s: %w", lab.Name(), cerr))
	}
}

// healthTimeout is how long a vtepd may take to answer /healthz.
const healthTimeout = 10 * time.Second

// StartVtepds starts a vtepd on every host and waits until each answers
// GET /healthz on metricsAddr (inside its host). config(i) is the
// configuration of hosts[i]; it is written to <host>.toml in a temporary
// directory named after pattern (as os.MkdirTemp takes it), which lives
// only until every vtepd has read it. command(path) is the program and
// arguments that start vtepd with the file at path.
//
// It returns the processes started, in the order of hosts, also on error
// (the lab stops them on Close).
func StartVtepds(hosts []*topo.Host, pattern, metricsAddr string, config func(i int) string,
	command func(path string) (bin string, args []string)) ([]*topo.Proc, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var procs []*topo.Proc
	for i, h := range hosts {
		path := filepath.Join(dir, h.Name+".toml")
		if err := os.WriteFile(path, []byte(config(i)), 0o644); err != nil {
			return procs, err
		}
		bin, args := command(path)
		p, err := h.Start(bin, args...)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	for i, h := range hosts {
		if err := WaitHealthy(h, procs[i], metricsAddr, healthTimeout); err != nil {
			return procs, err
		}
	}
	return procs, nil
}

// WaitHealthy polls GET http://metricsAddr/healthz inside h until vtepd
// (process p) answers, for up to timeout; a vtepd that exits meanwhile
// fails at once, with the end of its output.
func WaitHealthy(h *topo.Host, p *topo.Proc, metricsAddr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("vtepd on %s exited at start:\n%s", h.Name, Tail([]byte(p.Output()), 2000))
		}
		_, err := h.HTTPGet("http://" + metricsAddr + "/healthz")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vtepd on %s not healthy within %v: %w", h.Name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reapAfterKill is how long Wait gives a killed process to be reaped.
const reapAfterKill = 5 * time.Second

// Wait waits up to timeout for p and returns its exit status. A process
// still running then is killed (SIGKILL) and reaped, and the error wraps
// topo.ErrTimeout; its output so far stays readable with p.Output.
func Wait(p *topo.Proc, timeout time.Duration) (int, error) {
	code, err := p.Wait(timeout)
	if errors.Is(err, topo.ErrTimeout) {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait(reapAfterKill)
	}
	return code, err
}

// WaitReady waits until p has printed line as a whole line (ReadyLine, for
// a hidden subcommand), and says whether it did: false if p exited first
// or deadline passed.
func WaitReady(p *topo.Proc, line string, deadline time.Time) bool {
	for !strings.Contains(p.Output(), line+"\n") {
		if p.Exited() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
