//go:build linux

package topo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
)

// ifNamePattern is what a Linux interface name may look like (IFNAMSIZ-1).
var ifNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// DockerBridge is a user-defined Docker network in one host, where br0
// stands for docker0: the bridge that
//
//	docker network create --opt com.docker.network.bridge.name=NAME \
//	    --opt com.docker.network.driver.mtu=MTU --subnet S --gateway G NET
//
// makes. Run attaches containers to it the way `docker run --network NET
// --ip A` does. What it copies from Docker's bridge driver, because vtepd's
// guide depends on it:
//
//   - the bridge gets the gateway address and the network's MTU. Like
//     Docker's, the MTU is set on the bridge itself; set to anything but the
//     kernel's initial 1500 it stays put, while at 1500 the bridge follows
//     its smallest port, as with Docker;
//   - each container's veth pair is created in the host namespace with two
//     "veth" + 7 hex digit names and the network's MTU on both ends; the
//     host end joins the bridge, the other end moves into the container
//     namespace and is renamed eth0 there;
//   - eth0 gets the MAC classic Docker derives from the address (02:42 and
//     the four IPv4 bytes), the address, and a default route via the
//     gateway.
//
// What it leaves out: iptables rules, NAT, and the br_netfilter sysctls.
type DockerBridge struct {
	Name    string       // the bridge's interface name, e.g. "vx200"
	Gateway netip.Prefix // the bridge's own address; its prefix is the subnet
	MTU     int          // bridge and veth MTU (com.docker.network.driver.mtu)
	Host    *Host
}

// AddDockerBridge creates bridge name in h with address gateway and MTU
// mtu, and brings it up. Docker's default when the MTU option is left out
// is 1500, the MTU of an Ethernet underlay; pass that to reproduce a
// network created without the option.
func (h *Host) AddDockerBridge(name string, gateway netip.Prefix, mtu int) (*DockerBridge, error) {
	if !ifNamePattern.MatchString(name) {
		return nil, fmt.Errorf("topo: bridge name %q does not match %s", name, ifNamePattern)
	}
	if !gateway.IsValid() || !gateway.Addr().Is4() {
		return nil, fmt.Errorf("topo: bridge %s: gateway must be an IPv4 prefix", name)
	}
	if err := checkAddr(gateway.Addr()); err != nil {
		return nil, err
	}
	if mtu < 576 || mtu > 65535 {
		return nil, fmt.Errorf("topo: bridge %s: MTU %d out of range", name, mtu)
	}
	err := runAll(
		[]string{"ip", "-n", h.NS, "link", "add", "name", name, "type", "bridge"},
		[]string{"ip", "-n", h.NS, "link", "set", name, "mtu", strconv.Itoa(mtu)},
		[]string{"ip", "-n", h.NS, "addr", "add", gateway.String(), "dev", name},
		[]string{"ip", "-n", h.NS, "link", "set", name, "up"},
	)
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: bridge %s: %w", h.Name, name, err)
	}
	return &DockerBridge{Name: name, Gateway: gateway, MTU: mtu, Host: h}, nil
}

// Run creates container name on the bridge with address addr (in the
// bridge's subnet), as `docker run --network ... --ip addr` does. The
// container's namespace is <lab>-<host>-<name>, as for AddContainer.
func (b *DockerBridge) Run(name string, addr netip.Addr) (*Container, error) {
	h := b.Host
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("topo: container name %q does not match %s", name, validName)
	}
	if !addr.Is4() || !b.Gateway.Contains(addr) || addr == b.Gateway.Addr() {
		return nil, fmt.Errorf("topo: container %s: %v is not a free IPv4 address of %v", name, addr, b.Gateway.Masked())
	}
	if err := checkAddr(addr); err != nil {
		return nil, err
	}
	hostEnd, err := vethName()
	if err != nil {
		return nil, err
	}
	peerEnd, err := vethName()
	if err != nil {
		return nil, err
	}
	a4 := addr.As4()
	mac := net.HardwareAddr{0x02, 0x42, a4[0], a4[1], a4[2], a4[3]}

	c := &Container{Name: name, NS: h.NS + "-" + name, Addr: netip.PrefixFrom(addr, b.Gateway.Bits()), MTU: b.MTU, Host: h}
	if err := h.lab.addNamespace(c.NS); err != nil {
		return nil, err
	}
	m := strconv.Itoa(b.MTU)
	err = runAll(
		[]string{"ip", "-n", c.NS, "link", "set", "lo", "up"},
		[]string{"ip", "-n", h.NS, "link", "add", "name", hostEnd, "mtu", m, "type", "veth", "peer", "name", peerEnd, "mtu", m},
		[]string{"ip", "-n", h.NS, "link", "set", hostEnd, "master", b.Name},
		[]string{"ip", "-n", h.NS, "link", "set", peerEnd, "netns", c.NS},
		[]string{"ip", "-n", c.NS, "link", "set", peerEnd, "name", "eth0", "address", mac.String()},
		[]string{"ip", "-n", c.NS, "addr", "add", c.Addr.String(), "dev", "eth0"},
		[]string{"ip", "-n", c.NS, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", c.NS, "route", "add", "default", "via", b.Gateway.Addr().String(), "dev", "eth0"},
		[]string{"ip", "-n", h.NS, "link", "set", hostEnd, "up"},
	)
	if err != nil {
		return nil, fmt.Errorf("topo: container %s on %s/%s: %w", name, h.Name, b.Name, err)
	}
	return c, nil
}

// vethName returns a name like Docker's: "veth" and 7 random hex digits.
func vethName() (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("topo: random veth name: %w", err)
	}
	return "veth" + hex.EncodeToString(r[:])[:7], nil
}

// Do runs fn on an OS thread switched into the container's namespace, as
// Host.Do does for a host: a listener or connection fn opens there stays
// the container's, and may be used from any goroutine afterwards.
func (c *Container) Do(fn func() error) error { return doInNS(c.NS, fn) }
