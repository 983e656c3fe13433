package vtep

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vtepd/vtepd/admin"
)

func TestAdminFDBCommands(t *testing.T) {
	te := newTestEngine(t)
	vni := func(v uint32) *uint32 { return &v }
	for _, tt := range []struct {
		name string
		req  admin.Request
		err  string // substring of the error; "" for success
	}{
		{"add", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, ""},
		{"add bad mac", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "zz", Remote: "198.18.0.2"}, "not a MAC"},
		{"add group mac", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "01:00:5e:00:00:01", Remote: "198.18.0.2"}, "unicast"},
		{"add unknown vni", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(999), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, "unknown VNI 999"},
		{"add wrong family", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "2001:db8::2"}, "family"},
		{"add self", admin.Request{Cmd: admin.CmdFDBAdd, VNI: vni(200), MAC: "02:00:00:00:00:aa", Remote: "198.18.0.1"}, "own address"},
		{"add no vni", admin.Request{Cmd: admin.CmdFDBAdd, MAC: "02:00:00:00:00:aa", Remote: "198.18.0.2"}, "vni is required"},
		{"show unknown vni", admin.Request{Cmd: admin.CmdFDBShow, VNI: vni(7)}, "unknown VNI 7"},
		{"del", admin.Request{Cmd: admin.CmdFDBDel, VNI: vni(200), MAC: "02:00:00:00:00:aa"}, ""},
		{"del again", admin.Request{Cmd: admin.CmdFDBDel, VNI: vni(200), MAC: "02:00:00:00:00:aa"}, "no entry"},
		{"unknown command", admin.Request{Cmd: "fdb flush"}, "unknown command"},
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
	resp := te.Admin(admin.Request{Cmd: admin.CmdStats})
	if len(resp.Stats) != 2 || resp.Stats[0].VNI != "200" || resp.Stats[1].VNI != "unknown" {
		t.Errorf("stats %+v", resp.Stats)
	}
}

// The socket carries admin.Call's requests to Admin and its answers back.
func TestAdminSocket(t *testing.T) {
	te := newTestEngine(t)
	cfg := *te.Config()
	cfg.AdminSocket = filepath.Join(t.TempDir(), "vtepd.sock")
	ln, err := listenAdmin(&cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		te.serveAdmin(ctx, ln)
		close(done)
	}()
	defer func() {
		cancel()
		ln.Close()
		<-done
	}()
	resp, err := admin.Call(cfg.AdminSocket, admin.Request{Cmd: admin.CmdStats})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Stats) != 2 || resp.Stats[0].Name != "demo" {
		t.Errorf("stats over the socket: %+v", resp)
	}
	resp, err = admin.Call(cfg.AdminSocket, admin.Request{Cmd: "fdb flush"})
	if err != nil || !strings.Contains(resp.Error, "unknown command") {
		t.Errorf("unknown command over the socket: %+v, %v", resp, err)
	}
}
