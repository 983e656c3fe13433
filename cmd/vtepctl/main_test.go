package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vtepd/vtepd/admin"
)

func TestParse(t *testing.T) {
	vni := func(v uint32) *uint32 { return &v }
	for _, tt := range []struct {
		args string
		want admin.Request
		err  string
	}{
		{"fdb show", admin.Request{Cmd: admin.CmdFDBShow}, ""},
		{"fdb show vni 200", admin.Request{Cmd: admin.CmdFDBShow, VNI: vni(200)}, ""},
		{"fdb add 02:42:AC:12:00:0B dst 198.18.0.2 vni 200", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "02:42:ac:12:00:0b", Remote: "198.18.0.2"}, ""},
		{"fdb del 02:42:ac:12:00:0b vni 200", admin.Request{Cmd: admin.CmdFDBDel, VNI: vni(200), MAC: "02:42:ac:12:00:0b"}, ""},
		{"stats", admin.Request{Cmd: admin.CmdStats}, ""},
		{"peers", admin.Request{Cmd: admin.CmdPeers}, ""},
		{"reload", admin.Request{Cmd: admin.CmdReload}, ""},
		{"control", admin.Request{Cmd: admin.CmdControl}, ""},
		{"neigh show", admin.Request{Cmd: admin.CmdNeigh}, ""},
		{"neigh show vni 200", admin.Request{Cmd: admin.CmdNeigh, VNI: vni(200)}, ""},
		{"fdb show vni 200 mac 02:42:AC:12:00:0B", admin.Request{Cmd: admin.CmdFDBShow, VNI: vni(200), MAC: "02:42:ac:12:00:0b"}, ""},
		{"fdb show mac 02:42:ac:12:00:0b", admin.Request{}, "needs vni"},
		{"fdb show vni 200 mac 02:42", admin.Request{}, "not a MAC"},
		{"control now", admin.Request{}, "no arguments"},
		{"neigh", admin.Request{}, "show?"},
		{"neigh flush", admin.Request{}, "show?"},
		{"neigh show vni x", admin.Request{}, "0..16777215"},
		{"", admin.Request{}, "no command"},
		{"fdb add 02:42:ac:12:00 dst 198.18.0.2 vni 200", admin.Request{}, "not a MAC"},
		{"fdb add ff:ff:ff:ff:ff:ff dst 198.18.0.2 vni 200", admin.Request{}, "unicast"},
		{"fdb add 02:42:ac:12:00:0b dst nowhere vni 200", admin.Request{}, "not an IP"},
		{"fdb add 02:42:ac:12:00:0b dst 198.18.0.2", admin.Request{}, "vni N is required"},
		{"fdb add 02:42:ac:12:00:0b vni 200", admin.Request{}, "dst ADDR is required"},
		{"fdb add 02:42:ac:12:00:0b dst 198.18.0.2 vni 16777216", admin.Request{}, "0..16777215"},
		{"fdb show vni", admin.Request{}, "value missing"},
		{"fdb show vni 1 vni 2", admin.Request{}, "twice"},
		{"fdb flush", admin.Request{}, "unknown subcommand"},
		{"stats now", admin.Request{}, "no arguments"},
		{"route show", admin.Request{}, "unknown command"},
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

// vtepctl control for the evpn backend: its sessions and routes, and no
// etcd revision or lease.
func TestPrintControlEVPN(t *testing.T) {
	var b bytes.Buffer
	printControl(&b, &admin.ControlStatus{
		Backend: "evpn", Endpoints: []string{"198.18.0.4", "198.18.0.9"}, Local: "198.18.0.1", Connected: true,
		Errors:           map[string]uint64{"wrong_rt": 2},
		RoutesReceived:   map[string]int{"2": 3, "3": 1},
		RoutesAdvertised: map[string]int{"2": 2, "3": 1},
		Sessions: []admin.ControlSession{
			{Neighbor: "198.18.0.4", ASN: 65000, State: "established", Up: true, Received: map[string]int{"2": 3, "3": 1}, ConnectRetry: 1},
			{Neighbor: "198.18.0.9", ASN: 65001, State: "active", Drops: 1, ConnectRetry: 8},
		},
		Entries: []admin.ControlEntries{{VNI: 200, RemoteVTEPs: 1, RemoteMACs: 3, LocalMACs: 2}},
	})
	want := `backend	evpn
neighbors	198.18.0.4,198.18.0.9
local	198.18.0.1
connected	yes
pending	0
errors	wrong_rt=2
routes received	type-2 3, type-3 1
routes advertised	type-2 2, type-3 1

NEIGHBOR	ASN	STATE	SINCE	TYPE-2	TYPE-3	DROPS	RETRY
198.18.0.4	65000	established	-	3	1	0	1s
198.18.0.9	65001	active	-	0	0	1	8s

VNI	REMOTE VTEPS	REMOTE MACS	REMOTE IPS	LOCAL MACS	LOCAL IPS
200	1	3	0	2	0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
