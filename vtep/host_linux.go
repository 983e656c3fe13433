package vtep

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vtepd/vtepd/config"
)

// underlayLink returns the index and MTU of [underlay] interface, or of
// the interface that holds [underlay] local: its MTU sizes the TAPs, and
// groups are joined on it.
func underlayLink(cfg *config.Config) (index, mtu int, err error) {
	attrs, err := underlayAttrs(cfg)
	if err != nil {
		return 0, 0, err
	}
	return attrs.Index, attrs.MTU, nil
}

func underlayAttrs(cfg *config.Config) (*netlink.LinkAttrs, error) {
	if cfg.Interface != "" {
		link, err := netlink.LinkByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("underlay.interface: %q: %w", cfg.Interface, err)
		}
		return link.Attrs(), nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("underlay.local: listing addresses: %w", err)
	}
	for _, a := range addrs {
		if !a.IP.Equal(cfg.Local.AsSlice()) {
			continue
		}
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return nil, fmt.Errorf("underlay.local: interface of %s: %w", cfg.Local, err)
		}
		return link.Attrs(), nil
	}
	return nil, fmt.Errorf("underlay.local: %s is not an address of any interface of this host", cfg.Local)
}

// checkBridge reports whether name is an existing Linux bridge.
func checkBridge(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("bridge %q not found", name)
		}
		return fmt.Errorf("bridge %q: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("%q is a %s, not a bridge", name, link.Type())
	}
	return nil
}
