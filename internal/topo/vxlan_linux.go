//go:build linux

package topo

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Multicast groups a lab may use for VXLAN: administratively scoped IPv4
// (RFC 2365) and IPv6 groups of link to site scope (RFC 7346), so that even
// a lab wired to something by mistake keeps its floods local. The underlay
// bridge is what actually confines them.
var labGroups = []netip.Prefix{
	netip.MustParsePrefix("239.0.0.0/8"),
	netip.MustParsePrefix("ff02::/16"),
	netip.MustParsePrefix("ff05::/16"),
}

// checkGroup refuses multicast groups outside labGroups.
func checkGroup(g netip.Addr) error {
	for _, p := range labGroups {
		if p.Contains(g) {
			return nil
		}
	}
	return fmt.Errorf("topo: group %v is outside the lab's multicast ranges %v", g, labGroups)
}

// validBridge is what names of bridges made by AddBridge look like; with
// the "br" prefix they cannot collide with eth0, vx<n>, vc<n> or a TAP.
var validBridge = regexp.MustCompile(`^br[0-9]{1,2}$`)

// validVXLAN is what names of kernel VXLAN devices look like.
var validVXLAN = regexp.MustCompile(`^vx[0-9]{1,8}$`)

// KernelVXLAN describes a VXLAN device of the kernel's vxlan driver, for
// Host.AddKernelVXLANWith. The zero value of each optional field gives the
// Docker experiment's choice.
type KernelVXLAN struct {
	VNI  uint32
	Port int // UDP destination port, e.g. 4789

	// Peers: remote = Peers[0], unless Group is set, and every other peer
	// an all-zero FDB entry (head-end replication). With Group set, every
	// peer is such an entry, so BUM traffic goes to the group and to them.
	Peers []netip.Addr
	// Group, if valid, is the multicast group for BUM traffic, joined on
	// eth0 (`group G dev eth0`): 239.0.0.0/8, ff02::/16 or ff05::/16.
	Group netip.Addr
	// TTL of the outer packets (hop limit); 0 leaves the kernel's default,
	// which is 1 for a multicast group.
	TTL int

	// Name of the device; default "vx0". KernelFDB reads vx0 only; use
	// KernelFDBOf for another name.
	Name string
	// Bridge the device is enslaved to; default "br0".
	Bridge string

	// UDP6ZeroCsumTx sends IPv6 datagrams with a zero UDP checksum
	// (udp6zerocsumtx); UDP6ZeroCsumRx accepts them (udp6zerocsumrx).
	// By default the kernel sends real checksums and refuses zero ones.
	UDP6ZeroCsumTx, UDP6ZeroCsumRx bool

	// NoLearning turns the data plane's learning off (nolearning), as an
	// EVPN control plane (FRR's zebra) wants its VXLAN devices.
	NoLearning bool
}

// AddKernelVXLANWith creates the kernel VXLAN device described by v, with
// local = the host's underlay address, learning on (unless NoLearning) and MTU VXLANMTU,
// enslaved to its bridge and up.
func (h *Host) AddKernelVXLANWith(v KernelVXLAN) error {
	if v.Name == "" {
		v.Name = "vx0"
	}
	if v.Bridge == "" {
		v.Bridge = "br0"
	}
	if !validVXLAN.MatchString(v.Name) {
		return fmt.Errorf("topo: host %s: kernel VXLAN name %q does not match vx<n>", h.Name, v.Name)
	}
	if v.Bridge != "br0" && !validBridge.MatchString(v.Bridge) {
		return fmt.Errorf("topo: host %s: bridge name %q does not match %s", h.Name, v.Bridge, validBridge)
	}
	for _, p := range v.Peers {
		if err := checkAddr(p); err != nil {
			return err
		}
	}
	if v.Group.IsValid() {
		if err := checkGroup(v.Group); err != nil {
			return err
		}
		if v.Group.Is4() != h.Underlay.Is4() {
			return fmt.Errorf("topo: host %s: group %v and underlay %v differ in address family", h.Name, v.Group, h.Underlay)
		}
	}
	if v.TTL < 0 || v.TTL > 255 {
		return fmt.Errorf("topo: host %s: TTL %d out of range 0..255", h.Name, v.TTL)
	}
	args := []string{"ip", "-n", h.NS, "link", "add", v.Name, "mtu", strconv.Itoa(h.VXLANMTU()),
		"type", "vxlan", "id", strconv.FormatUint(uint64(v.VNI), 10),
		"local", h.Underlay.String(), "dstport", strconv.Itoa(v.Port)}
	appended := v.Peers
	switch {
	case v.Group.IsValid():
		args = append(args, "group", v.Group.String())
	case len(v.Peers) > 0:
		args = append(args, "remote", v.Peers[0].String())
		appended = v.Peers[1:]
	}
	if v.TTL > 0 {
		args = append(args, "ttl", strconv.Itoa(v.TTL))
	}
	if v.UDP6ZeroCsumTx {
		args = append(args, "udp6zerocsumtx")
	}
	if v.UDP6ZeroCsumRx {
		args = append(args, "udp6zerocsumrx")
	}
	if v.NoLearning {
		args = append(args, "nolearning")
	}
	args = append(args, "dev", "eth0")
	cmds := [][]string{args, {"ip", "-n", h.NS, "link", "set", v.Name, "master", v.Bridge, "up"}}
	for _, p := range appended {
		cmds = append(cmds, []string{"bridge", "-n", h.NS, "fdb", "append",
			"00:00:00:00:00:00", "dev", v.Name, "dst", p.String()})
	}
	if err := runAll(cmds...); err != nil {
		return fmt.Errorf("topo: host %s: kernel VXLAN %s: %w", h.Name, v.Name, err)
	}
	return nil
}

// KernelFDBOf returns the output of `bridge fdb show dev DEV`.
func (h *Host) KernelFDBOf(dev string) (string, error) {
	out, err := run("bridge", "-n", h.NS, "fdb", "show", "dev", dev)
	return string(out), err
}

// AddBridge creates another bridge in the host namespace, up and without
// an address, e.g. br1 for a second VXLAN segment beside br0. name must
// match br<n> (one or two digits).
func (h *Host) AddBridge(name string) error {
	if !validBridge.MatchString(name) {
		return fmt.Errorf("topo: host %s: bridge name %q does not match %s", h.Name, name, validBridge)
	}
	err := runAll(
		[]string{"ip", "-n", h.NS, "link", "add", "name", name, "type", "bridge"},
		[]string{"ip", "-n", h.NS, "link", "set", name, "up"},
	)
	if err != nil {
		return fmt.Errorf("topo: host %s: %w", h.Name, err)
	}
	return nil
}

// MulticastGroups lists the IPv4 and IPv6 groups the host has joined on
// dev, as `ip maddr show dev DEV` reports them: whoever joined them, the
// kernel itself (224.0.0.1, ff02::1) included.
func (h *Host) MulticastGroups(dev string) ([]netip.Addr, error) {
	out, err := run("ip", "-n", h.NS, "maddr", "show", "dev", dev)
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: %w", h.Name, err)
	}
	return parseMaddr(string(out))
}

// parseMaddr reads the inet and inet6 lines of ip-maddress(8) output:
//
//	2:	eth0
//		link  33:33:00:00:00:01 users 2
//		inet  239.1.1.1
//		inet6 ff05::100 users 2
func parseMaddr(out string) ([]netip.Addr, error) {
	var groups []netip.Addr
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "inet" && f[0] != "inet6") {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("topo: ip maddr: %q: %w", line, err)
		}
		groups = append(groups, a)
	}
	return groups, nil
}
