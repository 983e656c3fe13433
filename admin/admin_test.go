package admin

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The wire format is a contract with deployed vtepctl binaries and
// scripts: these are the bytes vtepd and vtepctl exchanged before the
// protocol moved to this package.
func TestWireFormat(t *testing.T) {
	vni := uint32(200)
	for _, tt := range []struct {
		name string
		v    any
		json string
	}{
		{"request", Request{Cmd: CmdFDBAdd, VNI: &vni, MAC: "02:42:ac:12:00:0b", Remote: "198.18.0.2"},
			`{"cmd":"fdb add","vni":200,"mac":"02:42:ac:12:00:0b","remote":"198.18.0.2"}`},
		{"bare request", Request{Cmd: CmdStats}, `{"cmd":"stats"}`},
		{"empty response", Response{}, `{}`},
		{"response", Response{Error: "e", Message: "m",
			FDB: []FDBEntry{{VNI: 200, MAC: "02:42:ac:12:00:0b", Remote: "198.18.0.2", Type: "learned", AgeSeconds: 1.5}},
			Stats: []VNIStats{{VNI: "200", Name: "demo", RxPackets: 1, RxBytes: 2, TxPackets: 3, TxBytes: 4, FloodPackets: 5,
				Drops: map[string]uint64{"source": 6}, FDBLearned: 7, FDBStatic: 8, FDBMoves: 9, FDBRefused: 10}},
			Peers: []PeerStats{{Addr: "198.18.0.2", RxPackets: 1, RxBytes: 2, TxPackets: 3, TxBytes: 4, LastSeen: -1}}},
			`{"error":"e","message":"m",` +
				`"fdb":[{"vni":200,"mac":"02:42:ac:12:00:0b","remote":"198.18.0.2","type":"learned","age_seconds":1.5}],` +
				`"stats":[{"vni":"200","name":"demo","rx_packets":1,"rx_bytes":2,"tx_packets":3,"tx_bytes":4,"flood_packets":5,` +
				`"drops":{"source":6},"fdb_learned":7,"fdb_static":8,"fdb_moves":9,"fdb_refused":10}],` +
				`"peers":[{"addr":"198.18.0.2","rx_packets":1,"rx_bytes":2,"tx_packets":3,"tx_bytes":4,"last_seen_seconds_ago":-1}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.json {
				t.Errorf("marshalled\n%s\nwant\n%s", b, tt.json)
			}
		})
	}
	for cmd, want := range map[string]string{CmdFDBShow: "fdb show", CmdFDBAdd: "fdb add", CmdFDBDel: "fdb del",
		CmdStats: "stats", CmdPeers: "peers", CmdReload: "reload"} {
		if cmd != want {
			t.Errorf("command %q, want %q", cmd, want)
		}
	}
}

// serve answers one connection on a fresh socket with answer, after
// checking the request; answer nil closes the connection unanswered.
func serve(t *testing.T, want Request, answer *Response) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vtepd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req Request
		if err := json.NewDecoder(c).Decode(&req); err != nil {
			t.Errorf("server: %v", err)
			return
		}
		if diff := cmp.Diff(want, req); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
		if answer != nil {
			json.NewEncoder(c).Encode(answer)
		}
	}()
	return path
}

func TestCall(t *testing.T) {
	vni := uint32(200)
	req := Request{Cmd: CmdFDBShow, VNI: &vni}
	answer := Response{FDB: []FDBEntry{{VNI: 200, MAC: "02:00:00:00:00:01", Remote: "198.18.0.2", Type: "static"}}}
	got, err := Call(serve(t, req, &answer), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(answer, got); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

func TestCallErrors(t *testing.T) {
	req := Request{Cmd: CmdReload}
	if _, err := Call(serve(t, req, nil), req); err == nil || !strings.Contains(err.Error(), "without an answer") {
		t.Errorf("connection closed unanswered: %v", err)
	}
	if _, err := Call(filepath.Join(t.TempDir(), "none.sock"), req); err == nil || !strings.Contains(err.Error(), "cannot reach vtepd") {
		t.Errorf("no socket: %v", err)
	}
}

// ServeConn and Call speak to each other; a request that is not JSON
// gets an error, and the handler is not called.
func TestServeConn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vtepd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	calls := make(chan Request, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go ServeConn(c, func(req Request) Response {
				calls <- req
				return Response{Message: "done " + req.Cmd}
			})
		}
	}()
	if resp, err := Call(path, Request{Cmd: CmdReload}); err != nil || resp.Message != "done reload" {
		t.Errorf("Call = %+v, %v", resp, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("not json\n"))
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil || !strings.HasPrefix(resp.Error, "bad request") {
		t.Errorf("bad request answered %+v, %v", resp, err)
	}
	if len(calls) != 1 {
		t.Errorf("handler called %d times, want once", len(calls))
	}
}
