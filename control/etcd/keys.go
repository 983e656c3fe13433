package etcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// The key layout, a contract with operators and other tools (README):
//
//	<prefix>/v1/vni/<vni>/vtep/<underlay-ip>  {"port":4789}
//	<prefix>/v1/vni/<vni>/mac/<mac>           {"vtep":"198.18.0.1"}
//	<prefix>/v1/vni/<vni>/ip/<ip>             {"mac":"02:42:c6:13:00:0a"}
//
// VNIs are decimal, MACs lowercase colon form, IPs netip's canonical text.
// A second spelling of one name would be a second key, so only the
// canonical one is accepted.
const (
	layoutVersion = "/v1/vni/"
	maxVNI        = 1<<24 - 1
)

// Kind is the kind of entry a key names.
type Kind uint8

const (
	KindVTEP Kind = iota + 1
	KindMAC
	KindIP
)

var kindWords = [...]string{"", "vtep", "mac", "ip"}

func (k Kind) String() string {
	if k >= KindVTEP && k <= KindIP {
		return kindWords[k]
	}
	return "?"
}

// Key is a parsed key: VNI and Kind, and VTEP, MAC or IP by Kind.
type Key struct {
	VNI  uint32
	Kind Kind
	VTEP netip.Addr
	MAC  fdb.MAC
	IP   netip.Addr
}

// Entry is a parsed key with its value: Port for a VTEP, VTEP for a MAC,
// MAC for an IP.
type Entry struct {
	Key
	Port uint16
}

// ID is the key alone: the Key with only the fields its Kind names, as
// the maps of local entries are keyed.
func (k Key) ID() Key {
	id := Key{VNI: k.VNI, Kind: k.Kind}
	switch k.Kind {
	case KindVTEP:
		id.VTEP = k.VTEP
	case KindMAC:
		id.MAC = k.MAC
	case KindIP:
		id.IP = k.IP
	}
	return id
}

// BadError is a refused key or value, with the Reason it is counted under.
type BadError struct {
	Reason control.Reason
	Err    error
}

func (e *BadError) Error() string { return e.Reason.String() + ": " + e.Err.Error() }
func (e *BadError) Unwrap() error { return e.Err }

func bad(r control.Reason, format string, args ...any) error {
	return &BadError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the Reason of a BadError, or ReasonKey.
func ReasonOf(err error) control.Reason {
	var b *BadError
	if errors.As(err, &b) {
		return b.Reason
	}
	return control.ReasonKey
}

// cleanPrefix drops trailing slashes: "/vtepd/" and "/vtepd" are one prefix.
func cleanPrefix(p string) string { return strings.TrimRight(p, "/") }

// vniPrefix is where every key of the layout lives.
func vniPrefix(prefix string) string { return cleanPrefix(prefix) + layoutVersion }

// FormatKey is the key of k under prefix.
func FormatKey(prefix string, k Key) string {
	var id string
	switch k.Kind {
	case KindVTEP:
		id = k.VTEP.String()
	case KindMAC:
		id = k.MAC.String()
	case KindIP:
		id = k.IP.String()
	}
	return vniPrefix(prefix) + strconv.FormatUint(uint64(k.VNI), 10) + "/" + k.Kind.String() + "/" + id
}

// ParseKey parses a key of the layout under prefix. It checks the names
// only; family, VNI and value checks are Decoder's.
func ParseKey(prefix, key string) (Key, error) {
	var k Key
	rest, ok := strings.CutPrefix(key, vniPrefix(prefix))
	if !ok {
		return k, bad(control.ReasonKey, "key %q: not under %q", key, vniPrefix(prefix))
	}
	vniText, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return k, bad(control.ReasonKey, "key %q: no kind", key)
	}
	vni, err := strconv.ParseUint(vniText, 10, 32)
	if err != nil || vni > maxVNI || strconv.FormatUint(vni, 10) != vniText {
		return k, bad(control.ReasonKey, "key %q: bad vni %q", key, vniText)
	}
	k.VNI = uint32(vni)
	kind, id, ok := strings.Cut(rest, "/")
	if !ok {
		return k, bad(control.ReasonKey, "key %q: no name", key)
	}
	switch kind {
	case "vtep":
		k.Kind = KindVTEP
		k.VTEP, err = parseHostIP(id)
	case "mac":
		k.Kind = KindMAC
		k.MAC, err = parseHostMAC(id)
	case "ip":
		k.Kind = KindIP
		k.IP, err = parseHostIP(id)
	default:
		return k, bad(control.ReasonKey, "key %q: unknown kind %q", key, kind)
	}
	if err != nil {
		return k, fmt.Errorf("key %q: %w", key, err)
	}
	return k, nil
}

// parseHostIP accepts the canonical text of a unicast address without a
// zone; an IPv4-mapped IPv6 address is refused (write the IPv4 one).
func parseHostIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, bad(control.ReasonIP, "ip %q: %v", s, err)
	}
	if ip.Zone() != "" || ip.Is4In6() || ip.String() != s {
		return ip, bad(control.ReasonIP, "ip %q: not canonical", s)
	}
	if ip.IsUnspecified() || ip.IsMulticast() || (ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return ip, bad(control.ReasonIP, "ip %q: not a host address", s)
	}
	return ip, nil
}

// parseHostMAC accepts the canonical form of a unicast, non-zero MAC.
func parseHostMAC(s string) (fdb.MAC, error) {
	m, err := fdb.ParseMAC(s)
	if err != nil {
		return m, bad(control.ReasonMAC, "%v", err)
	}
	// fdb.ParseMAC also takes upper case and '-' separators; keys must have
	// one spelling, the lowercase colon form String writes.
	if m.String() != s {
		return m, bad(control.ReasonMAC, "mac %q: not in aa:bb:cc:dd:ee:ff form", s)
	}
	if !m.IsUnicast() {
		return m, bad(control.ReasonGroupMAC, "mac %s: broadcast or multicast", s)
	}
	if m.IsZero() {
		return m, bad(control.ReasonMAC, "mac %s: zero", s)
	}
	return m, nil
}

// The values. Unknown fields are ignored, so that a later writer may add
// some; a missing port means the VXLAN default.
type (
	vtepValue struct {
		Port *int `json:"port"`
	}
	macValue struct {
		VTEP string `json:"vtep"`
	}
	ipValue struct {
		MAC string `json:"mac"`
	}
)

// Decoder turns keys and values into entries, with the checks that need
// this VTEP's context.
type Decoder struct {
	Prefix string
	// Local is this VTEP's underlay address: VTEPs of the other family are
	// refused (ReasonFamily).
	Local netip.Addr
	// Serves reports whether a VNI is served here; nil serves all.
	Serves func(vni uint32) bool
	// Port, when set, is the one UDP port a VTEP may register: the data
	// plane sends every datagram to its own port (ReasonPort).
	Port uint16
}

// DecodeKey parses key and checks its VNI and family.
func (d *Decoder) DecodeKey(key string) (Key, error) {
	k, err := ParseKey(d.Prefix, key)
	if err != nil {
		return k, err
	}
	if d.Serves != nil && !d.Serves(k.VNI) {
		return k, bad(control.ReasonVNI, "key %q: vni %d not served here", key, k.VNI)
	}
	if k.Kind == KindVTEP {
		if err := d.checkFamily(k.VTEP); err != nil {
			return k, fmt.Errorf("key %q: %w", key, err)
		}
	}
	return k, nil
}

func (d *Decoder) checkFamily(a netip.Addr) error {
	if d.Local.IsValid() && a.Is4() != d.Local.Is4() {
		return bad(control.ReasonFamily, "vtep %v: not of the family of %v", a, d.Local)
	}
	return nil
}

// Decode parses a key and its value.
func (d *Decoder) Decode(key string, value []byte) (Entry, error) {
	k, err := d.DecodeKey(key)
	if err != nil {
		return Entry{Key: k}, err
	}
	e := Entry{Key: k}
	if err := decodeValue(&e, value); err != nil {
		return e, fmt.Errorf("key %q: %w", key, err)
	}
	if e.Kind == KindVTEP && d.Port != 0 && e.Port != d.Port {
		return e, fmt.Errorf("key %q: %w", key, bad(control.ReasonPort, "port %d: this VTEP sends to port %d only", e.Port, d.Port))
	}
	if e.Kind == KindMAC {
		if err := d.checkFamily(e.VTEP); err != nil {
			return e, fmt.Errorf("key %q: %w", key, err)
		}
	}
	return e, nil
}

func decodeValue(e *Entry, value []byte) error {
	switch e.Kind {
	case KindVTEP:
		v, err := unmarshalValue[vtepValue](value)
		if err != nil {
			return err
		}
		e.Port = control.DefaultPort
		if v.Port != nil {
			if *v.Port < 1 || *v.Port > 65535 {
				return bad(control.ReasonJSON, "value %q: port out of range", value)
			}
			e.Port = uint16(*v.Port)
		}
	case KindMAC:
		v, err := unmarshalValue[macValue](value)
		if err != nil {
			return err
		}
		ip, err := parseHostIP(v.VTEP)
		if err != nil {
			return err
		}
		e.VTEP = ip
	case KindIP:
		v, err := unmarshalValue[ipValue](value)
		if err != nil {
			return err
		}
		m, err := parseHostMAC(v.MAC)
		if err != nil {
			return err
		}
		e.MAC = m
	}
	return nil
}

// unmarshalValue decodes a JSON value; a malformed one is ReasonJSON.
func unmarshalValue[V any](value []byte) (V, error) {
	var v V
	if err := json.Unmarshal(value, &v); err != nil {
		return v, bad(control.ReasonJSON, "value %q: %v", value, err)
	}
	return v, nil
}

// EncodeValue is the value this VTEP writes for key k: port for a VTEP
// key, vtep for a MAC key, mac for an IP key.
func EncodeValue(k Kind, port uint16, vtep netip.Addr, mac fdb.MAC) string {
	switch k {
	case KindVTEP:
		return `{"port":` + strconv.Itoa(int(port)) + `}`
	case KindMAC:
		return `{"vtep":"` + vtep.String() + `"}`
	default:
		return `{"mac":"` + mac.String() + `"}`
	}
}
