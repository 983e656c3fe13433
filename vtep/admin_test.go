package vtep

import (
	"strings"
	"testing"
)

func TestAdminFDBCommands(t *testing.T) {
	te := newTestEngine(t)
	vni := func(v uint32) *uint32 { return &v }
	for _, tt := range []struct {
		name string
		req  AdminRequest
		err  string // substring of the error; "" for success
	}{
		{"add", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, ""},
		{"add bad mac", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(200), MAC: "zz", Remote: "198.18.0.2"}, "not a MAC"},
		{"add group mac", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(200), MAC: "01:00:5e:00:00:01", Remote: "198.18.0.2"}, "unicast"},
		{"add unknown vni", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(999), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, "unknown VNI 999"},
		{"add wrong family", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "2001:db8::2"}, "family"},
		{"add self", AdminRequest{Cmd: AdminFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.1"}, "own address"},
		{"add no vni", AdminRequest{Cmd: AdminFDBAdd, MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, "vni is required"},
		{"show unknown vni", AdminRequest{Cmd: AdminFDBShow, VNI: vni(7)}, "unknown VNI 7"},
		{"del", AdminRequest{Cmd: AdminFDBDel, VNI: vni(200), MAC: "02:00:00:00:00:aa"}, ""},
		{"del again", AdminRequest{Cmd: AdminFDBDel, VNI: vni(200), MAC: "02:00:00:00:00:aa"}, "no entry"},
		{"unknown command", AdminRequest{Cmd: "fdb flush"}, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(te.fdb.Entries(0))
			resp := te.Admin(tt.req)
			if tt.err == "" {
				if resp.Error != "" {
					t.Fatalf("error %q", resp.Error)
				}
				return
			}
			if !strings.Contains(resp.Error, tt.err) {
				t.Errorf("error %q, want one with %q", resp.Error, tt.err)
			}
			if after := len(te.fdb.Entries(0)); after != before {
				t.Errorf("a refused command changed the FDB: %d -> %d entries", before, after)
			}
		})
	}
	resp := te.Admin(AdminRequest{Cmd: AdminStats})
	if len(resp.Stats) != 2 || resp.Stats[0].VNI != "200" || resp.Stats[1].VNI != "unknown" {
		t.Errorf("stats %+v", resp.Stats)
	}
}
