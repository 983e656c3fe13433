package underlay

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Interface returns the index and MTU of the underlay interface: the one
// called name, or with name empty the one that holds local. Its MTU sizes
// the TAPs, and groups are joined on it. Errors name the configuration
// key at fault (underlay.interface, underlay.local).
func Interface(local netip.Addr, name string) (index, mtu int, err error) {
	attrs, err := interfaceAttrs(local, name)
	if err != nil {
		return 0, 0, err
	}
	return attrs.Index, attrs.MTU, nil
}

func interfaceAttrs(local netip.Addr, name string) (*netlink.LinkAttrs, error) {
	if name != "" {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("underlay.interface: %q: %w", name, err)
		}
		return link.Attrs(), nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("underlay.local: listing addresses: %w", err)
	}
	for _, a := range addrs {
		if !a.IP.Equal(local.AsSlice()) {
			continue
		}
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return nil, fmt.Errorf("underlay.local: interface of %s: %w", local, err)
		}
		return link.Attrs(), nil
	}
	return nil, fmt.Errorf("underlay.local: %s is not an address of any interface of this host", local)
}
