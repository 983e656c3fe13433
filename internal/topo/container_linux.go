//go:build linux

package topo

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"time"
)

// Container is a namespace "<lab>-<host>-<name>" whose eth0 is a veth
// joined to its host's br0, like a Docker container on docker0.
type Container struct {
	Name string       // as given to AddContainer
	NS   string       // namespace name
	Addr netip.Prefix // address on eth0
	MTU  int          // eth0 MTU
	Host *Host
}

// AddContainer creates namespace <lab>-<host>-<name>, a veth whose host
// end (vc<n>) joins br0 and whose other end is the container's eth0 with
// address addr and MTU mtu (both ends), everything up.
func (h *Host) AddContainer(name string, addr netip.Prefix, mtu int) (*Container, error) {
	return h.AddContainerOn("br0", name, addr, mtu)
}

// AddContainerOn is AddContainer with the host end joining bridge, br0 or
// one made by AddBridge. Container names are unique per host, whatever
// their bridge.
func (h *Host) AddContainerOn(bridge, name string, addr netip.Prefix, mtu int) (*Container, error) {
	if !validBridge.MatchString(bridge) {
		return nil, fmt.Errorf("topo: container %s: bridge name %q does not match %s", name, bridge, validBridge)
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("topo: container name %q does not match %s", name, validName)
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("topo: container %s: invalid address", name)
	}
	if err := checkAddr(addr.Addr()); err != nil {
		return nil, err
	}
	if mtu < 576 || mtu > 65535 {
		return nil, fmt.Errorf("topo: container %s: MTU %d out of range", name, mtu)
	}
	l := h.lab
	l.mu.Lock()
	vc := "vc" + strconv.Itoa(h.containers)
	h.containers++
	l.mu.Unlock()

	c := &Container{Name: name, NS: h.NS + "-" + name, Addr: addr, MTU: mtu, Host: h}
	if err := l.addNamespace(c.NS); err != nil {
		return nil, err
	}
	m := strconv.Itoa(mtu)
	err := runAll(
		[]string{"ip", "-n", c.NS, "link", "set", "lo", "up"},
		[]string{"ip", "-n", h.NS, "link", "add", "name", vc, "mtu", m, "type", "veth",
			"peer", "name", "eth0", "mtu", m, "netns", c.NS},
		[]string{"ip", "-n", h.NS, "link", "set", vc, "master", bridge, "up"},
		append([]string{"ip", "-n", c.NS, "addr", "add", addr.String(), "dev", "eth0"}, nodad(addr.Addr())...),
		[]string{"ip", "-n", c.NS, "link", "set", "eth0", "up"},
	)
	if err != nil {
		return nil, fmt.Errorf("topo: container %s on %s: %w", name, h.Name, err)
	}
	return c, nil
}

// MAC returns the hardware address of the container's eth0.
func (c *Container) MAC() (net.HardwareAddr, error) {
	a, err := linkAttrs(c.NS, "eth0")
	if err != nil {
		return nil, err
	}
	return a.HardwareAddr, nil
}

// SetMAC sets the hardware address of the container's eth0, e.g. to give
// containers on two VXLAN segments the same MAC. The link is taken down
// for the change and brought up again, which restores its routes.
func (c *Container) SetMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 || mac[0]&1 != 0 {
		return fmt.Errorf("topo: container %s: %q is not a unicast Ethernet address", c.Name, mac)
	}
	err := runAll(
		[]string{"ip", "-n", c.NS, "link", "set", "eth0", "down"},
		[]string{"ip", "-n", c.NS, "link", "set", "eth0", "address", mac.String()},
		[]string{"ip", "-n", c.NS, "link", "set", "eth0", "up"},
	)
	if err != nil {
		return fmt.Errorf("topo: container %s on %s: %w", c.Name, c.Host.Name, err)
	}
	return nil
}

// Exec runs a command in the container namespace; see Host.Exec.
func (c *Container) Exec(name string, args ...string) ([]byte, error) {
	return nsExec(c.NS, name, args...)
}

// Start runs bin inside the container namespace, e.g. an iperf3 server;
// see Host.Start.
func (c *Container) Start(bin string, args ...string) (*Proc, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("topo: container %s: %w", c.Name, err)
	}
	return c.Host.lab.start(c.Host.Name+"/"+c.Name, c.NS, path, args)
}

// Ping sends count echo requests of size payload bytes to dst, 0.2 s
// apart, waiting 1 s for the last reply; dontFragment adds -M do. Any loss
// is an error carrying ping's output.
func (c *Container) Ping(dst netip.Addr, count, size int, dontFragment bool) error {
	if err := checkAddr(dst); err != nil {
		return err
	}
	args := []string{"-n", "-c", strconv.Itoa(count), "-s", strconv.Itoa(size), "-W", "1", "-i", "0.2"}
	if dontFragment {
		args = append(args, "-M", "do")
	}
	args = append(args, dst.String())
	if _, err := c.Exec("ping", args...); err != nil {
		return fmt.Errorf("topo: %s -> %v: %w", c.Name, dst, err)
	}
	return nil
}

// WaitReachable pings dst once a second until a reply comes back or
// timeout passes; it returns the last ping error on timeout. Use it to wait
// for a data path to come up before asserting on exact ping results.
func (c *Container) WaitReachable(dst netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.Ping(dst, 1, 56, false)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
