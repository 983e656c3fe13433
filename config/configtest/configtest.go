// Package configtest helps test what uses package config: Mutate changes
// any one setting of a Config or Network, so that a test can walk the
// fields by reflection and check how each one is treated.
//
// It is for tests only; nothing else may import it.
package configtest

import (
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
)

// Values Mutate brings in, of the family of the test configurations'
// underlay addresses (198.18.0.0/15).
var (
	NewAddr   = netip.MustParseAddr("198.18.0.250")
	NewPrefix = netip.MustParsePrefix("198.18.250.0/24")
	NewStatic = config.StaticEntry{MAC: fdb.MAC{0x02, 0, 0, 0, 0, 0xfe}, Remote: NewAddr}
)

// Mutate changes the setting v, which must be settable, to another value
// of its type: a number goes up by one (a duration by a second), a flag
// flips, a string grows, an address moves to the next one, a list gets
// one more element. The value need not be valid for config.Parse, but it
// keeps the engine's invariants (an address of the underlay's family).
//
// It knows the types of the fields of config.Config and config.Network by
// name and fails on any other, so that a field of a new type cannot slip
// through a test that mutates every field: teach Mutate the new type.
func Mutate(v reflect.Value) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p += "x"
	case *bool:
		*p = !*p
	case *int:
		*p++
	case *uint16:
		*p++
	case *uint32:
		*p++
	case *time.Duration:
		*p += time.Second
	case *slog.Level:
		*p += 4 // the next named level
	case *netip.Addr:
		if p.IsValid() {
			*p = p.Next()
		} else {
			*p = NewAddr
		}
	case *[]netip.Addr:
		a := NewAddr
		for slices.Contains(*p, a) {
			a = a.Next()
		}
		*p = append(slices.Clip(*p), a)
	case *[]string:
		*p = append(slices.Clip(*p), "http://198.18.0.250:2379")
	case *[]netip.Prefix:
		*p = append(slices.Clip(*p), NewPrefix)
	case *[]config.StaticEntry:
		*p = append(slices.Clip(*p), NewStatic)
	case *[]config.Neighbor:
		*p = append(slices.Clip(*p), config.Neighbor{Address: netip.MustParseAddr("198.18.0.251"), ASN: 65001})
	default:
		return fmt.Errorf("configtest.Mutate: no mutation for type %s", v.Type())
	}
	return nil
}
