//go:build linux

package topo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// VXLAN encapsulation overhead on the underlay: outer IP + UDP 8 + VXLAN 8
// + inner Ethernet 14. The kernel VXLAN link and a vtepd TAP both get the
// underlay MTU minus this.
const (
	vxlanOverheadIPv4 = 20 + 8 + 8 + 14 // 50
	vxlanOverheadIPv6 = 40 + 8 + 8 + 14 // 70
)

// DefaultMTU is the underlay MTU AddHost uses when given 0.
const DefaultMTU = 1500

// Host is a namespace "<lab>-<name>" standing for one machine: eth0 on the
// lab's underlay segment, lo, and an empty bridge br0 (its "docker0").
type Host struct {
	Name     string       // as given to AddHost
	NS       string       // namespace name
	Underlay netip.Addr   // address on eth0
	Prefix   netip.Prefix // Underlay with its prefix length
	MTU      int          // eth0 MTU

	lab   *Lab
	index int // this host's underlay veth is uh<index>

	// containers counts containers, naming their host-side veths vc<n>;
	// guarded by lab.mu.
	containers int
}

// AddHost creates namespace <lab>-<name> with eth0 (address underlay,
// MTU mtu or DefaultMTU if 0) on the underlay bridge, lo up and bridge br0
// up without an address. name must match [a-z][a-z0-9]{0,11}.
func (l *Lab) AddHost(name string, underlay netip.Prefix, mtu int) (*Host, error) {
	if !validName.MatchString(name) || name == "u" { // "<lab>-u" is the underlay
		return nil, fmt.Errorf("topo: host name %q does not match %s or is \"u\"", name, validName)
	}
	if !underlay.IsValid() {
		return nil, fmt.Errorf("topo: host %s: invalid underlay prefix", name)
	}
	if err := checkAddr(underlay.Addr()); err != nil {
		return nil, err
	}
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 576 || mtu > 65535 {
		return nil, fmt.Errorf("topo: host %s: MTU %d out of range", name, mtu)
	}

	l.mu.Lock()
	h := &Host{
		Name:     name,
		NS:       l.name + "-" + name,
		Underlay: underlay.Addr(),
		Prefix:   underlay,
		MTU:      mtu,
		lab:      l,
		index:    l.hosts,
	}
	l.hosts++
	l.mu.Unlock()

	if err := l.addNamespace(h.NS); err != nil {
		return nil, err
	}
	uh := "uh" + strconv.Itoa(h.index)
	m := strconv.Itoa(mtu)
	addr := append([]string{"ip", "-n", h.NS, "addr", "add", underlay.String(), "dev", "eth0"}, nodad(underlay.Addr())...)
	err := runAll(
		[]string{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		[]string{"ip", "-n", l.underlay, "link", "add", "name", uh, "mtu", m, "type", "veth",
			"peer", "name", "eth0", "mtu", m, "netns", h.NS},
		[]string{"ip", "-n", l.underlay, "link", "set", uh, "master", "br0", "up"},
		addr,
		[]string{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", h.NS, "link", "add", "name", "br0", "type", "bridge"},
		[]string{"ip", "-n", h.NS, "link", "set", "br0", "up"},
	)
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: %w", name, err)
	}
	return h, nil
}

// nodad makes IPv6 addresses usable at once instead of after duplicate
// address detection.
func nodad(a netip.Addr) []string {
	if a.Is6() && !a.Is4In6() {
		return []string{"nodad"}
	}
	return nil
}

// VXLANMTU is the MTU of a VXLAN device over this host's underlay: the
// underlay MTU minus the encapsulation overhead of its address family.
func (h *Host) VXLANMTU() int {
	if h.Underlay.Is4() {
		return h.MTU - vxlanOverheadIPv4
	}
	return h.MTU - vxlanOverheadIPv6
}

// AddKernelVXLAN creates the kernel's VXLAN device vx0 as in the Docker
// experiment: VNI vni, local = the host's underlay address, UDP port port,
// learning on, remote = peers[0], MTU VXLANMTU, enslaved to br0 and up.
// Further peers are added as all-zero FDB entries ("bridge fdb append
// 00:00:00:00:00:00 dst PEER dev vx0"), the kernel's head-end replication
// list. A host has at most one vx0. See AddKernelVXLANWith for groups,
// other bridges and checksum options.
func (h *Host) AddKernelVXLAN(vni uint32, port int, peers ...netip.Addr) error {
	return h.AddKernelVXLANWith(KernelVXLAN{VNI: vni, Port: port, Peers: peers})
}

// KernelFDB returns the output of `bridge fdb show dev vx0`.
func (h *Host) KernelFDB() (string, error) {
	out, err := run("bridge", "-n", h.NS, "fdb", "show", "dev", "vx0")
	return string(out), err
}

// Exec runs a command in the host namespace to completion (bounded by a
// timeout) and returns its combined output; the error names the command
// and carries the output.
func (h *Host) Exec(name string, args ...string) ([]byte, error) {
	return nsExec(h.NS, name, args...)
}

func nsExec(ns, name string, args ...string) ([]byte, error) {
	return run("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Start runs bin inside the host namespace (ip netns exec, which execs
// bin, so the PID is bin's) with stdout and stderr captured. The process
// is stopped by Lab.Close if it is still running.
func (h *Host) Start(bin string, args ...string) (*Proc, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: %w", h.Name, err)
	}
	return h.lab.start(h.Name, h.NS, path, args)
}

// Do runs fn on an OS thread switched into the host's namespace. Sockets
// fn creates belong to that namespace for their whole life, so a test can
// open a UDP socket with the host's underlay address, or dial 127.0.0.1
// there. fn must not start goroutines that expect to be in the namespace.
// A panic in fn is re-raised in the caller.
func (h *Host) Do(fn func() error) error { return doInNS(h.NS, fn) }

func doInNS(ns string, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		val      any
	}
	done := make(chan result, 1)
	go func() {
		// The thread stays locked, and so dies with this goroutine, unless
		// its namespace is restored: a thread in the wrong namespace must
		// never run other goroutines.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("topo: current netns: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("topo: netns %s: %w", ns, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("topo: enter netns %s: %w", ns, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if v := recover(); v != nil {
					r = result{panicked: true, val: v}
				}
			}()
			r.err = fn()
		}()
		if err := netns.Set(orig); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("topo: leave netns %s: %w", ns, err))
		} else {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.val)
	}
	return r.err
}

// DialContext dials from inside the host namespace (see Do).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are made inside the host
// namespace, without proxies or connection reuse.
func (h *Host) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       h.DialContext,
			DisableKeepAlives: true,
		},
	}
}

// HTTPGet fetches url from inside the host namespace (5 s timeout) and
// returns the body; a status other than 200 is an error that carries it.
func (h *Host) HTTPGet(url string) ([]byte, error) {
	resp, err := h.HTTPClient(5 * time.Second).Get(url)
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: GET %s: %w", h.Name, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("topo: host %s: GET %s: %s: %s", h.Name, url, resp.Status, body)
	}
	return body, nil
}

// Link returns the attributes of a link in the host namespace, read over
// netlink.
func (h *Host) Link(name string) (*netlink.LinkAttrs, error) { return linkAttrs(h.NS, name) }

// LinkExists reports whether the host namespace has a link of that name.
func (h *Host) LinkExists(name string) bool {
	_, err := linkAttrs(h.NS, name)
	return err == nil
}

func linkAttrs(ns, name string) (*netlink.LinkAttrs, error) {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("topo: netns %s: %w", ns, err)
	}
	defer nsh.Close()
	// The handle's socket pins the namespace: close it before returning.
	nh, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("topo: netlink in %s: %w", ns, err)
	}
	defer nh.Close()
	link, err := nh.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("topo: netns %s: link %s: %w", ns, name, err)
	}
	return link.Attrs(), nil
}
