package fdb

import (
	"errors"
	"fmt"
)

// ErrInvalidMAC is returned, wrapped, by ParseMAC and MAC.UnmarshalText for
// text that is not six hex octets with consistent ':' or '-' separators.
var ErrInvalidMAC = errors.New("fdb: invalid MAC address")

// MAC is an IEEE 802 MAC-48 address, the inner Ethernet address that keys
// the table. It is a value type so that it can be part of a map key without
// allocating.
type MAC [6]byte

// macTextLen is the length of the only accepted text form,
// "aa:bb:cc:dd:ee:ff": six two-digit octets and five separators.
const macTextLen = 6*2 + 5

// ParseMAC parses "aa:bb:cc:dd:ee:ff". Hex digits may be upper- or
// lower-case and the separator may be ':' or '-', but the same separator
// must be used throughout. Any other form, including the dotted Cisco form
// and EUI-64, is an error wrapping ErrInvalidMAC.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != macTextLen {
		return m, fmt.Errorf("%w %q: want 17 characters", ErrInvalidMAC, s)
	}
	sep := s[2]
	if sep != ':' && sep != '-' {
		return m, fmt.Errorf("%w %q: separator must be ':' or '-'", ErrInvalidMAC, s)
	}
	for i := range m {
		o := i * 3 // offset of octet i in the text
		if i > 0 && s[o-1] != sep {
			return m, fmt.Errorf("%w %q: mixed or missing separators", ErrInvalidMAC, s)
		}
		hi, ok1 := unhex(s[o])
		lo, ok2 := unhex(s[o+1])
		if !ok1 || !ok2 {
			return m, fmt.Errorf("%w %q: bad hex digit", ErrInvalidMAC, s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the lower-case, colon-separated form, "aa:bb:cc:dd:ee:ff".
func (m MAC) String() string {
	var b [macTextLen]byte
	return string(m.appendText(b[:0]))
}

// AppendText appends the String form of m to b.
func (m MAC) AppendText(b []byte) ([]byte, error) {
	return m.appendText(b), nil
}

// MarshalText returns the String form of m, so that a MAC can be written to
// text-based configuration and JSON as "aa:bb:cc:dd:ee:ff".
func (m MAC) MarshalText() ([]byte, error) {
	return m.appendText(make([]byte, 0, macTextLen)), nil
}

// UnmarshalText parses text with ParseMAC, so that configuration decoders
// that know encoding.TextUnmarshaler can fill a MAC directly.
func (m *MAC) UnmarshalText(text []byte) error {
	p, err := ParseMAC(string(text))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

func (m MAC) appendText(b []byte) []byte {
	const digits = "0123456789abcdef"
	for i, o := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[o>>4], digits[o&0x0f])
	}
	return b
}

// IsUnicast reports whether the group (I/G) bit, the least significant bit
// of the first octet, is clear. Broadcast and multicast addresses are never
// learned or configured as static entries.
func (m MAC) IsUnicast() bool { return m[0]&0x01 == 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }
