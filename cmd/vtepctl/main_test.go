package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/vtep"
)

func TestParse(t *testing.T) {
	vni := func(v uint32) *uint32 { return &v }
	for _, tt := range []struct {
		args string
		want vtep.AdminRequest
		err  string
	}{
		{"fdb show", vtep.AdminRequest{Cmd: vtep.AdminFDBShow}, ""},
		{"fdb show vni 200", vtep.AdminRequest{Cmd: vtep.AdminFDBShow, VNI: vni(200)}, ""},
		{"fdb add 02:42:AC:12:00:0B dst 198.18.0.2 vni 200", vtep.AdminRequest{Cmd: vtep.AdminFDBAdd, VNI: vni(200), MAC: "02:42:ac:12:00:0b", Remote: "198.18.0.2"}, ""},
		{"fdb del 02:42:ac:12:00:0b vni 200", vtep.AdminRequest{Cmd: vtep.AdminFDBDel, VNI: vni(200), MAC: "02:42:ac:12:00:0b"}, ""},
		{"stats", vtep.AdminRequest{Cmd: vtep.AdminStats}, ""},
		{"peers", vtep.AdminRequest{Cmd: vtep.AdminPeers}, ""},
		{"reload", vtep.AdminRequest{Cmd: vtep.AdminReload}, ""},
		{"", vtep.AdminRequest{}, "no command"},
		{"fdb add 02:42:ac:12:00 dst 198.18.0.2 vni 200", vtep.AdminRequest{}, "not a MAC"},
		{"fdb add ff:ff:ff:ff:ff:ff dst 198.18.0.2 vni 200", vtep.AdminRequest{}, "unicast"},
		{"fdb add 02:42:ac:12:00:0b dst nowhere vni 200", vtep.AdminRequest{}, "not an IP"},
		{"fdb add 02:42:ac:12:00:0b dst 198.18.0.2", vtep.AdminRequest{}, "vni N is required"},
		{"fdb add 02:42:ac:12:00:0b vni 200", vtep.AdminRequest{}, "dst ADDR is required"},
		{"fdb add 02:42:ac:12:00:0b dst 198.18.0.2 vni 16777216", vtep.AdminRequest{}, "0..16777215"},
		{"fdb show vni", vtep.AdminRequest{}, "value missing"},
		{"fdb show vni 1 vni 2", vtep.AdminRequest{}, "twice"},
		{"fdb flush", vtep.AdminRequest{}, "unknown subcommand"},
		{"stats now", vtep.AdminRequest{}, "no arguments"},
		{"route show", vtep.AdminRequest{}, "unknown command"},
	} {
		t.Run(tt.args, func(t *testing.T) {
			got, err := parse(strings.Fields(tt.args))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Bad input exits 2 without contacting vtepd; an unreachable socket exits 1.
func TestRunExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-s", "/nonexistent/vtepd.sock", "fdb", "del", "xx", "vni", "1"}, &out, &errOut); code != 2 {
		t.Errorf("bad MAC: exit %d, want 2 (%s)", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"-s", "/nonexistent/vtepd.sock", "stats"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "cannot reach vtepd") {
		t.Errorf("unreachable: exit %d, stderr %q", code, errOut.String())
	}
}
