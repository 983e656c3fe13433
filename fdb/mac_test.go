package fdb

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    MAC
		wantStr string
		wantErr bool
	}{
		{in: "aa:bb:cc:dd:ee:ff", want: MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, wantStr: "aa:bb:cc:dd:ee:ff"},
		{in: "AA:BB:CC:DD:EE:FF", want: MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, wantStr: "aa:bb:cc:dd:ee:ff"},
		{in: "02-00-5e-10-00-01", want: MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}, wantStr: "02:00:5e:10:00:01"},
		{in: "0a:1B:2c:3D:4e:5F", want: MAC{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}, wantStr: "0a:1b:2c:3d:4e:5f"},
		{in: "00:00:00:00:00:00", want: MAC{}, wantStr: "00:00:00:00:00:00"},
		{in: "ff:ff:ff:ff:ff:ff", want: MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wantStr: "ff:ff:ff:ff:ff:ff"},

		{in: "", wantErr: true},
		{in: "aa:bb:cc:dd:ee", wantErr: true},
		{in: "aa:bb:cc:dd:ee:ff:", wantErr: true},
		{in: "aa:bb:cc:dd:ee:f", wantErr: true},
		{in: "aa:bb:cc:dd:ee:fg", wantErr: true},
		{in: "aa:bb-cc:dd:ee:ff", wantErr: true},
		{in: "aa.bb.cc.dd.ee.ff", wantErr: true},
		{in: "aabb.ccdd.eeff", wantErr: true},
		{in: "aabbccddeeff", wantErr: true},
		{in: "aa:bb:cc:dd:ee:ff:00:11", wantErr: true},
		{in: " aa:bb:cc:dd:ee:f", wantErr: true},
		{in: "aa::bb:cc:dd:ee:f", wantErr: true},
		{in: "+a:bb:cc:dd:ee:ff", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMAC(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidMAC) {
					t.Fatalf("ParseMAC(%q) = %v, %v; want error wrapping ErrInvalidMAC", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMAC(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseMAC(%q) (-want +got):\n%s", tt.in, diff)
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
			back, err := ParseMAC(got.String())
			if err != nil || back != got {
				t.Errorf("ParseMAC(String()) = %v, %v; want %v", back, err, got)
			}
		})
	}
}

func TestMACPredicates(t *testing.T) {
	tests := []struct {
		mac         string
		unicast     bool
		zero        bool
		description string
	}{
		{"02:00:00:00:00:01", true, false, "locally administered unicast"},
		{"00:00:00:00:00:00", true, true, "zero"},
		{"01:00:5e:00:00:01", false, false, "IPv4 multicast"},
		{"33:33:00:00:00:01", false, false, "IPv6 multicast"},
		{"ff:ff:ff:ff:ff:ff", false, false, "broadcast"},
		{"fe:ff:ff:ff:ff:ff", true, false, "group bit clear, all others set"},
	}
	for _, tt := range tests {
		t.Run(tt.description, func(t *testing.T) {
			m, err := ParseMAC(tt.mac)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.IsUnicast(); got != tt.unicast {
				t.Errorf("%v.IsUnicast() = %v, want %v", m, got, tt.unicast)
			}
			if got := m.IsZero(); got != tt.zero {
				t.Errorf("%v.IsZero() = %v, want %v", m, got, tt.zero)
			}
		})
	}
}

func TestMACText(t *testing.T) {
	type conf struct {
		MAC MAC `json:"mac"`
	}
	in := `{"mac":"02-AB-cd-00-00-01"}`
	var c conf
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if want := (MAC{0x02, 0xab, 0xcd, 0, 0, 1}); c.MAC != want {
		t.Fatalf("unmarshal = %v, want %v", c.MAC, want)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"mac":"02:ab:cd:00:00:01"}`, string(out)); diff != "" {
		t.Errorf("marshal (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"mac":"02:ab"}`), &c); !errors.Is(err, ErrInvalidMAC) {
		t.Errorf("unmarshal of a bad MAC: err = %v, want ErrInvalidMAC", err)
	}
	b, _ := c.MAC.AppendText([]byte("mac="))
	if got, want := string(b), "mac=02:ab:cd:00:00:01"; got != want {
		t.Errorf("AppendText = %q, want %q", got, want)
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{
		"aa:bb:cc:dd:ee:ff",
		"AA-BB-CC-DD-EE-FF",
		"aa:bb-cc:dd:ee:ff",
		"aabb.ccdd.eeff",
		"00:00:00:00:00:0g",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidMAC) {
				t.Fatalf("ParseMAC(%q): error %v does not wrap ErrInvalidMAC", s, err)
			}
			return
		}
		// Anything accepted is the canonical form up to case and the
		// choice of separator.
		canon := strings.ToLower(strings.ReplaceAll(s, "-", ":"))
		if got := m.String(); got != canon {
			t.Fatalf("ParseMAC(%q).String() = %q, want %q", s, got, canon)
		}
		if back, err := ParseMAC(m.String()); err != nil || back != m {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}
