package etcd

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/control"
)

func TestDecode(t *testing.T) {
	d := Decoder{Prefix: "/vtepd/", Local: netip.MustParseAddr("198.18.0.1"), Serves: func(v uint32) bool { return v != 9 }, Port: 4789}
	tests := []struct {
		key, value string
		want       Entry
		reason     control.Reason // when it must fail
	}{
		{key: "/vtepd/v1/vni/100/vtep/198.18.0.2", value: `{"port":4789}`,
			want: Entry{Key: Key{VNI: 100, Kind: KindVTEP, VTEP: netip.MustParseAddr("198.18.0.2")}, Port: 4789}},
		{key: "/vtepd/v1/vni/100/vtep/198.18.0.2", value: `{}`,
			want: Entry{Key: Key{VNI: 100, Kind: KindVTEP, VTEP: netip.MustParseAddr("198.18.0.2")}, Port: control.DefaultPort}},
		{key: "/vtepd/v1/vni/16777215/mac/02:42:c6:13:00:0a", value: `{"vtep":"198.18.0.1","extra":1}`,
			want: Entry{Key: Key{VNI: 16777215, Kind: KindMAC, MAC: mac1, VTEP: netip.MustParseAddr("198.18.0.1")}}},
		{key: "/vtepd/v1/vni/0/ip/fd00::1", value: `{"mac":"02:42:c6:13:00:0a"}`,
			want: Entry{Key: Key{VNI: 0, Kind: KindIP, IP: netip.MustParseAddr("fd00::1"), MAC: mac1}}},

		{key: "/other/v1/vni/1/mac/02:42:c6:13:00:0a", value: `{}`, reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/16777216/mac/02:42:c6:13:00:0a", reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/+1/mac/02:42:c6:13:00:0a", reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/1", reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/1/mac", reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/1/arp/x", reason: control.ReasonKey},
		{key: "/vtepd/v1/vni/9/mac/02:42:c6:13:00:0a", value: `{"vtep":"198.18.0.2"}`, reason: control.ReasonVNI},
		{key: "/vtepd/v1/vni/1/mac/02-42-c6-13-00-0a", reason: control.ReasonMAC},
		{key: "/vtepd/v1/vni/1/mac/02:42:C6:13:00:0A", reason: control.ReasonMAC},
		{key: "/vtepd/v1/vni/1/mac/00:00:00:00:00:00", reason: control.ReasonMAC},
		{key: "/vtepd/v1/vni/1/mac/01:00:5e:00:00:01", reason: control.ReasonGroupMAC},
		{key: "/vtepd/v1/vni/1/ip/010.0.0.1", reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/ip/fd00:0::1", reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/ip/::ffff:10.0.0.1", reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/ip/fe80::1%eth0", reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/ip/224.0.0.1", reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/vtep/2001:db8::1", value: `{"port":4789}`, reason: control.ReasonFamily},
		{key: "/vtepd/v1/vni/1/vtep/198.18.0.2", value: `{"port":0}`, reason: control.ReasonJSON},
		{key: "/vtepd/v1/vni/1/vtep/198.18.0.2", value: `{"port":65536}`, reason: control.ReasonJSON},
		{key: "/vtepd/v1/vni/1/vtep/198.18.0.2", value: `port=1`, reason: control.ReasonJSON},
		{key: "/vtepd/v1/vni/1/vtep/198.18.0.2", value: `{"port":8472}`, reason: control.ReasonPort},
		{key: "/vtepd/v1/vni/1/mac/02:42:c6:13:00:0a", value: `{"vtep":"2001:db8::1"}`, reason: control.ReasonFamily},
		{key: "/vtepd/v1/vni/1/mac/02:42:c6:13:00:0a", value: `{"vtep":""}`, reason: control.ReasonIP},
		{key: "/vtepd/v1/vni/1/ip/10.0.0.1", value: `{"mac":"ff:ff:ff:ff:ff:ff"}`, reason: control.ReasonGroupMAC},
		{key: "/vtepd/v1/vni/1/ip/10.0.0.1", value: `{"mac":"33:33:00:00:00:01"}`, reason: control.ReasonGroupMAC},
		{key: "/vtepd/v1/vni/1/ip/10.0.0.1", value: `{"mac":"nope"}`, reason: control.ReasonMAC},
		{key: "/vtepd/v1/vni/1/ip/10.0.0.1", value: `{"mac":1}`, reason: control.ReasonJSON},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.value, func(t *testing.T) {
			got, err := d.Decode(tt.key, []byte(tt.value))
			if tt.reason != 0 || tt.want == (Entry{}) {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if r := ReasonOf(err); r != tt.reason {
					t.Fatalf("reason %v, want %v (%v)", r, tt.reason, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
			// Round trip: the key and value we would write parse back.
			id := got.ID()
			if k := FormatKey("/vtepd", id); k != tt.key {
				t.Errorf("FormatKey = %q", k)
			}
			v := EncodeValue(got.Kind, got.Port, got.VTEP, got.MAC)
			back, err := d.Decode(tt.key, []byte(v))
			if err != nil || back != got {
				t.Errorf("value %s decodes to %+v, %v", v, back, err)
			}
		})
	}
}

// parseHostMAC takes only the canonical spelling of a host MAC, though
// fdb.ParseMAC takes more.
func TestParseHostMAC(t *testing.T) {
	m, err := parseHostMAC("02:42:c6:13:00:0a")
	if err != nil || m != mac1 || m.String() != "02:42:c6:13:00:0a" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"", "02:42:c6:13:00", "02:42:C6:13:00:0a", "02-42-c6-13-00-0a", "02:42:c6:13:00:0g", "02:42:c6:13:00:0a:"} {
		if _, err := parseHostMAC(bad); ReasonOf(err) != control.ReasonMAC {
			t.Errorf("%q: %v, want %v", bad, err, control.ReasonMAC)
		}
	}
	if _, err := parseHostMAC("ff:ff:ff:ff:ff:ff"); ReasonOf(err) != control.ReasonGroupMAC {
		t.Errorf("broadcast: %v", err)
	}
	if _, err := parseHostMAC("02:00:00:00:00:00"); err != nil {
		t.Errorf("unicast: %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"/vtepd/v1/vni/100/vtep/198.18.0.2",
		"/vtepd/v1/vni/1/mac/02:42:c6:13:00:0a",
		"/vtepd/v1/vni/1/ip/fd00::1",
		"/vtepd/v1/vni/1/ip/10.0.0.1",
		"/vtepd/v1/vni/01/mac/x",
		"/vtepd/v1/vni/1/ip/::ffff:1.2.3.4",
	} {
		f.Add(s, []byte(`{"port":4789,"vtep":"198.18.0.1","mac":"02:42:c6:13:00:0a"}`))
	}
	d := Decoder{Prefix: "/vtepd", Local: netip.MustParseAddr("198.18.0.1")}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		k, err := ParseKey("/vtepd", key)
		if err != nil {
			if _, ok := err.(interface{ Unwrap() error }); !ok {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		// Only canonical keys parse, so a parsed key formats back to itself.
		if got := FormatKey("/vtepd", k); got != key {
			t.Fatalf("FormatKey(ParseKey(%q)) = %q", key, got)
		}
		e, err := d.Decode(key, value)
		if err != nil {
			return
		}
		if e.Kind == KindIP && (!e.MAC.IsUnicast() || e.MAC.IsZero()) {
			t.Fatalf("accepted a group or zero MAC: %+v", e)
		}
		if e.Kind == KindMAC && !e.VTEP.Is4() {
			t.Fatalf("accepted a VTEP of the wrong family: %+v", e)
		}
	})
}
