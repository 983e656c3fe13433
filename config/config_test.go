package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/fdb"
)

const fullConfig = `queues = 3
offload = false
[underlay]
local = "198.18.0.1"              # this VTEP
port = 4789
src_port_range = [49152, 65535]

[metrics]
listen = "127.0.0.1:9476"
[limits]
learn_rate = 50
max_learned = 1000
max_moves = 5
move_hold = "30s"

[[network]]
name = "demo"
vni = 200
bridge = "br0"
tap = "vtep200"
peers = ["198.18.0.2", "198.18.0.1", "198.18.0.3"]
learning = true
ageing = "300s"
max_entries = 16384

  [[network.static]]
  mac = "02:42:AC:12:00:0B"
  remote = "198.18.0.2"

[[network]]
vni = 300
bridge = "br1"
learning = false
ageing = "1m"
group = "239.1.1.1"
ttl = 4
accept_from = ["198.18.0.0/24", "198.18.1.7"]
flood_rate = 500
inner_vlan = "drop"
`

func TestParse(t *testing.T) {
	cfg, err := Parse("test.toml", []byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Local:       netip.MustParseAddr("198.18.0.1"),
		Port:        4789,
		SrcPortLow:  49152,
		SrcPortHigh: 65535,
		MetricsAddr: "127.0.0.1:9476",
		Queues:      3,
		AdminSocket: DefaultAdminSocket,
		Nice:        DefaultNice,
		StateDir:    DefaultStateDir,
		LearnRate:   50,
		MaxLearned:  1000,
		MaxMoves:    5,
		MoveHold:    30 * time.Second,
		Networks: []Network{{
			Name:       "demo",
			VNI:        200,
			Bridge:     "br0",
			TAP:        "vtep200",
			Peers:      []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")},
			Learning:   true,
			Ageing:     300 * time.Second,
			MaxEntries: 16384,
			TTL:        1,
			Static: []StaticEntry{{
				MAC:    fdb.MAC{0x02, 0x42, 0xac, 0x12, 0x00, 0x0b},
				Remote: netip.MustParseAddr("198.18.0.2"),
			}},
		}, {
			Name:       "vni300",
			VNI:        300,
			Bridge:     "br1",
			TAP:        "vtep300",
			Learning:   false,
			Ageing:     time.Minute,
			MaxEntries: DefaultMaxEntries,
			Group:      netip.MustParseAddr("239.1.1.1"),
			TTL:        4,
			AcceptFrom: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("198.18.1.7/32")},
			FloodRate:  500,
			DropVLAN:   true,
		}},
		configSource: "test.toml",
	}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("min.toml", []byte("[underlay]\nlocal = \"2001:db8::1\"\n[[network]]\nvni = 0\nbridge = \"br0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 4789 || cfg.SrcPortLow != 49152 || cfg.SrcPortHigh != 65535 || cfg.MetricsAddr != DefaultMetricsListen || !cfg.Offload {
		t.Errorf("underlay defaults: %+v", cfg)
	}
	n := cfg.Networks[0]
	if n.TAP != "vtep0" || !n.Learning || n.Ageing != DefaultAgeing || n.MaxEntries != DefaultMaxEntries || n.Name != "vni0" {
		t.Errorf("network defaults: %+v", n)
	}
}

// Each bad configuration must be refused with an error that names the key
// and, where the key is in the file, its line.
func TestParseErrors(t *testing.T) {
	base := "[underlay]\nlocal = \"198.18.0.1\"\n" // lines 1-2
	net := func(extra string) string {
		return base + "[[network]]\nvni = 200\nbridge = \"br0\"\n" + extra // network header on line 3
	}
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", "[underlay]\nlocl = \"198.18.0.1\"\n", []string{"line 2", "underlay.locl", "unknown key"}},
		{"unknown network key", net("colour = \"blue\"\n"), []string{"line 6", "network.colour", "unknown key"}},
		{"unknown static key", net("[[network.static]]\nmacc = \"02:00:00:00:00:01\"\n"), []string{"line 7", "network.static.macc"}},
		{"syntax", base + "[[network]\n", []string{"line"}},
		{"wrong type", base + "port = \"x\"\n", []string{"line 3", "port"}},
		{"local missing", "[[network]]\nvni = 1\nbridge = \"br0\"\n", []string{"underlay.local", "required"}},
		{"local unparsable", "[underlay]\nlocal = \"198.18.0.300\"\n", []string{"line 2", "underlay.local", "198.18.0.300"}},
		{"port range", base + "port = 70000\n[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"line 3", "underlay.port"}},
		{"src ports reversed", base + "src_port_range = [60000, 50000]\n[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"line 3", "underlay.src_port_range"}},
		{"no network", base, []string{"network", "at least one"}},
		{"vni too big", base + "[[network]]\nvni = 16777216\nbridge = \"br0\"\n", []string{"line 4", "network[0].vni", "16777216", "out of range"}},
		{"vni negative", base + "[[network]]\nvni = -1\nbridge = \"br0\"\n", []string{"line 4", "network[0].vni"}},
		{"vni missing", base + "[[network]]\nbridge = \"br0\"\n", []string{"line 3", "network[0].vni", "required"}},
		{"duplicate vni", net("[[network]]\nvni = 200\nbridge = \"br1\"\n"), []string{"line 7", "network[1].vni", "already used"}},
		{"duplicate tap", net("tap = \"t\"\n[[network]]\nvni = 201\nbridge = \"br1\"\ntap = \"t\"\n"), []string{"line 10", "network[1].tap"}},
		{"shared bridge", net("[[network]]\nvni = 201\nbridge = \"br0\"\n"), []string{"line 8", "network[1].bridge"}},
		{"bridge missing", base + "[[network]]\nvni = 200\n", []string{"network[0].bridge", "required"}},
		{"peer unparsable", net("peers = [\"198.18.0.2\", \"nope\"]\n"), []string{"line 6", "network[0].peers[1]", "nope"}},
		{"peer family", net("peers = [\"2001:db8::2\"]\n"), []string{"line 6", "network[0].peers[0]", "family"}},
		{"peer twice", net("peers = [\"198.18.0.2\", \"198.18.0.2\"]\n"), []string{"network[0].peers[1]", "twice"}},
		{"peer multicast", net("peers = [\"239.1.1.1\"]\n"), []string{"network[0].peers[0]", "unicast"}},
		{"ageing", net("ageing = \"5 minutes\"\n"), []string{"line 6", "network[0].ageing"}},
		{"max_entries", net("max_entries = 0\n"), []string{"line 6", "network[0].max_entries"}},
		{"tap name", net("tap = \"a-very-long-tap-name\"\n"), []string{"line 6", "network[0].tap"}},
		{"static mac", net("[[network.static]]\nmac = \"02:42:zz:12:00:0b\"\nremote = \"198.18.0.2\"\n"), []string{"line 7", "network[0].static[0].mac"}},
		{"static multicast mac", net("[[network.static]]\nmac = \"01:00:5e:00:00:01\"\nremote = \"198.18.0.2\"\n"), []string{"network[0].static[0].mac", "unicast"}},
		{"static remote self", net("[[network.static]]\nmac = \"02:42:ac:12:00:0b\"\nremote = \"198.18.0.1\"\n"), []string{"line 8", "network[0].static[0].remote", "own address"}},
		{"static remote missing", net("[[network.static]]\nmac = \"02:42:ac:12:00:0b\"\n"), []string{"network[0].static[0].remote", "required"}},
		{"second network static", net("[[network]]\nvni = 201\nbridge = \"br1\"\n[[network.static]]\nmac = \"02:42:ac:12:00:0b\"\nremote = \"nope\"\n"), []string{"line 11", "network[1].static[0].remote"}},
		{"queues", "queues = 0\n" + base + "[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"line 1", "queues", "out of range"}},
		{"group unicast", net("group = \"198.18.0.9\"\n"), []string{"line 6", "network[0].group", "not a multicast"}},
		{"group family", net("group = \"ff05::1\"\n"), []string{"line 6", "network[0].group", "family"}},
		{"ttl range", net("group = \"239.1.1.1\"\nttl = 0\n"), []string{"line 7", "network[0].ttl"}},
		{"ttl without group", net("ttl = 3\n"), []string{"line 6", "network[0].ttl", "group"}},
		{"admin socket relative", net("[admin]\nsocket = \"vtepd.sock\"\n"), []string{"line 7", "admin.socket", "absolute"}},
		{"log level", "log_level = \"loud\"\n" + net(""), []string{"line 1", "log_level"}},
		{"accept_from", net("accept_from = [\"198.18.0.0/33\"]\n"), []string{"line 6", "network[0].accept_from[0]"}},
		{"accept_from family", net("accept_from = [\"2001:db8::/32\"]\n"), []string{"network[0].accept_from[0]", "family"}},
		{"flood_rate", net("flood_rate = -1\n"), []string{"line 6", "network[0].flood_rate"}},
		{"inner_vlan", net("inner_vlan = \"strip\"\n"), []string{"line 6", "network[0].inner_vlan"}},
		{"learn_rate", net("[limits]\nlearn_rate = -5\n"), []string{"line 7", "limits.learn_rate"}},
		{"move_hold", net("[limits]\nmove_hold = \"soon\"\n"), []string{"line 7", "limits.move_hold"}},
		{"busy_poll", "busy_poll = \"fast\"\n" + net(""), []string{"line 1", "busy_poll"}},
		{"busy_poll negative", "busy_poll = \"-1ms\"\n" + net(""), []string{"line 1", "busy_poll"}},
		{"busy_poll too long", "busy_poll = \"1m\"\n" + net(""), []string{"line 1", "busy_poll", "10s"}},
		{"state_dir", "state_dir = \"state\"\n" + net(""), []string{"line 1", "state_dir"}},
		{"accept_from mapped", net("accept_from = [\"::ffff:198.18.0.0/120\"]\n"), []string{"network[0].accept_from[0]", "IPv4 form"}},
		{"bridge name", net("") + "[[network]]\nvni = 7\nbridge = \"b r\"\n", []string{"network[1].bridge", "interface name"}},
		{"tap dots", net("tap = \"..\"\n"), []string{"network[0].tap", "interface name"}},
		{"interface colon", "[underlay]\nlocal = \"198.18.0.1\"\ninterface = \"eth0:1\"\n[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"line 3", "underlay.interface"}},
		{"newline in parser message", base + "port = 0b\n", []string{"line"}},
		{"udp_gso without offload", "offload = false\n" + strings.Replace(base, "[underlay]\n", "[underlay]\nudp_gso = true\n", 1) + "[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"underlay.udp_gso", "offload"}},
		{"metrics listen", base + "[metrics]\nlisten = \"nowhere\"\n[[network]]\nvni = 1\nbridge = \"b\"\n", []string{"line 4", "metrics.listen"}},
		{"control backend", net("[control]\nbackend = \"consul\"\n"), []string{"line 7", "control.backend", "consul"}},
		{"control backend empty", net("[control]\nbackend = \"\"\n"), []string{"line 7", "control.backend"}},
		{"control key without backend", net("[control]\nprefix = \"/x\"\n"), []string{"control.backend", "control.prefix"}},
		{"control endpoint", net("[control]\nbackend = \"etcd\"\nendpoints = [\"http://198.18.0.9:2379\", \"198.18.0.9:2379\"]\n"), []string{"line 8", "control.endpoints[1]"}},
		{"control endpoints empty", net("[control]\nbackend = \"etcd\"\nendpoints = []\n"), []string{"line 8", "control.endpoints"}},
		{"control prefix", net("[control]\nbackend = \"etcd\"\nprefix = \"vtepd\"\n"), []string{"line 8", "control.prefix"}},
		{"control lease_ttl short", net("[control]\nbackend = \"etcd\"\nlease_ttl = \"1s\"\n"), []string{"line 8", "control.lease_ttl"}},
		{"control lease_ttl fraction", net("[control]\nbackend = \"etcd\"\nlease_ttl = \"2500ms\"\n"), []string{"line 8", "control.lease_ttl", "whole"}},
		{"control max_entries", net("[control]\nbackend = \"etcd\"\nmax_entries = 0\n"), []string{"line 8", "control.max_entries"}},
		{"control cert without key", net("[control]\nbackend = \"etcd\"\ncert_file = \"/etc/c.pem\"\n"), []string{"control.cert_file", "key_file"}},
		{"control relative ca", net("[control]\nbackend = \"etcd\"\nca_file = \"ca.pem\"\n"), []string{"line 8", "control.ca_file", "absolute"}},
		{"control password alone", net("[control]\nbackend = \"etcd\"\npassword = \"x\"\n"), []string{"line 8", "control.password", "username"}},
		{"network control without backend", net("control = true\n"), []string{"line 6", "network[0].control", "control.backend"}},
		{"evpn without asn", net("[control]\nbackend = \"evpn\"\n[[control.neighbor]]\naddress = \"198.18.0.4\"\n"), []string{"control.asn", "required"}},
		{"evpn asn range", net("[control]\nbackend = \"evpn\"\nasn = 0\n"), []string{"line 8", "control.asn"}},
		{"evpn etcd key", net("[control]\nbackend = \"evpn\"\nasn = 65000\nendpoints = [\"http://198.18.0.9:2379\"]\n"), []string{"line 9", "control.endpoints", "etcd"}},
		{"etcd evpn key", net("[control]\nbackend = \"etcd\"\nasn = 65000\n"), []string{"control.asn", "evpn"}},
		{"evpn router_id v6", net("[control]\nbackend = \"evpn\"\nasn = 65000\nrouter_id = \"2001:db8::1\"\n"), []string{"line 9", "control.router_id", "IPv4"}},
		{"evpn neighbor address", net("[control]\nbackend = \"evpn\"\nasn = 65000\n[[control.neighbor]]\nasn = 65001\n[[control.neighbor]]\naddress = \"nowhere\"\n"), []string{"line 9", "control.neighbor[0].address", "required"}},
		{"evpn neighbor bad", net("[control]\nbackend = \"evpn\"\nasn = 65000\n[[control.neighbor]]\naddress = \"198.18.0.4\"\n[[control.neighbor]]\naddress = \"198.18.0.4\"\n"), []string{"line 12", "control.neighbor[1].address", "already"}},
		{"evpn neighbor asn", net("[control]\nbackend = \"evpn\"\nasn = 65000\n[[control.neighbor]]\naddress = \"198.18.0.4\"\nasn = -1\n"), []string{"line 11", "control.neighbor[0].asn"}},
		{"evpn listen_port", net("[control]\nbackend = \"evpn\"\nasn = 65000\nlisten_port = 0\n"), []string{"control.listen_port", "no session"}},
		{"evpn route_target", net("route_target = \"65000\"\n[control]\nbackend = \"evpn\"\nasn = 65000\n"), []string{"line 6", "network[0].route_target"}},
		{"evpn route_distinguisher", net("route_distinguisher = \"198.18.0.1:70000\"\n[control]\nbackend = \"evpn\"\nasn = 65000\n"), []string{"line 6", "network[0].route_distinguisher", "65535"}},
		{"route_target without evpn", net("route_target = \"65000:1\"\n"), []string{"line 6", "network[0].route_target", "evpn"}},
		{"arp_suppress without control", net("arp_suppress = true\n"), []string{"line 6", "network[0].arp_suppress"}},
		{"arp_suppress off control", net("control = false\narp_suppress = true\n[control]\nbackend = \"etcd\"\n"), []string{"line 7", "network[0].arp_suppress"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bad.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestLocateKeys(t *testing.T) {
	loc := locateKeys([]byte(fullConfig))
	for key, line := range map[string]int{
		"underlay.local":               4,
		"underlay.port":                5,
		"network[0]":                   16,
		"network[0].peers":             21,
		"network[0].static[0]":         26,
		"network[0].static[0].remote":  28,
		"network[1].vni":               31,
		"network[1].static[0].nothing": 30, // falls back to the [[network]] header
	} {
		if got := loc.line(key); got != line {
			t.Errorf("line(%q) = %d, want %d", key, got, line)
		}
	}
	if got := loc.firstLine("network.ageing"); got != 23 {
		t.Errorf("firstLine(network.ageing) = %d, want 23", got)
	}
}

func TestParseBusyPoll(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{{"", 0}, {`busy_poll = "0s"`, 0}, {`busy_poll = "50ms"`, 50 * time.Millisecond}, {`busy_poll = "10s"`, 10 * time.Second}} {
		doc := tt.value + "\n[underlay]\nlocal = \"198.18.0.1\"\n[[network]]\nvni = 200\nbridge = \"br0\"\n"
		cfg, err := Parse("busy.toml", []byte(doc))
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		if cfg.BusyPoll != tt.want {
			t.Errorf("%q: BusyPoll = %v, want %v", tt.value, cfg.BusyPoll, tt.want)
		}
	}
}

func TestParseNice(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int
	}{{"", DefaultNice}, {"nice = 0", 0}, {"nice = -20", -20}, {"nice = 19", 19}} {
		doc := tt.value + "\n[underlay]\nlocal = \"198.18.0.1\"\n[[network]]\nvni = 200\nbridge = \"br0\"\n"
		cfg, err := Parse("nice.toml", []byte(doc))
		if err != nil {
			t.Errorf("%q: %v", tt.value, err)
			continue
		}
		if cfg.Nice != tt.want {
			t.Errorf("%q: Nice = %d, want %d", tt.value, cfg.Nice, tt.want)
		}
	}
	for _, bad := range []string{"nice = -21", "nice = 20", `nice = "high"`} {
		doc := bad + "\n[underlay]\nlocal = \"198.18.0.1\"\n[[network]]\nvni = 200\nbridge = \"br0\"\n"
		if _, err := Parse("nice.toml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "nice") || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming nice and line 1", bad, err)
		}
	}
}

func TestParseControl(t *testing.T) {
	const head = "[underlay]\nlocal = \"198.18.0.1\"\n"
	nets := "[[network]]\nvni = 200\nbridge = \"br0\"\n[[network]]\nvni = 201\nbridge = \"br1\"\ncontrol = false\n" +
		"[[network]]\nvni = 202\nbridge = \"br2\"\narp_suppress = false\n"

	cfg, err := Parse("none.toml", []byte(head+"[[network]]\nvni = 200\nbridge = \"br0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ControlBackend != "" || cfg.ControlEndpoints != nil || cfg.Networks[0].Control || cfg.Networks[0].ARPSuppress {
		t.Errorf("without [control]: %+v", cfg)
	}

	cfg, err = Parse("defaults.toml", []byte(head+"[control]\nbackend = \"etcd\"\n"+nets))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ControlBackend != "etcd" || !slices.Equal(cfg.ControlEndpoints, []string{DefaultControlEndpoint}) ||
		cfg.ControlPrefix != "/vtepd" || cfg.ControlLeaseTTL != 10*time.Second || cfg.ControlMaxEntries != 262144 {
		t.Errorf("[control] defaults: %+v", cfg)
	}
	var got []string
	for _, n := range cfg.Networks {
		got = append(got, fmt.Sprintf("%d control=%v arp_suppress=%v", n.VNI, n.Control, n.ARPSuppress))
	}
	want := []string{"200 control=true arp_suppress=true", "201 control=false arp_suppress=false", "202 control=true arp_suppress=false"}
	if !slices.Equal(got, want) {
		t.Errorf("networks: %q, want %q", got, want)
	}

	cfg, err = Parse("full.toml", []byte(head+`[control]
backend = "etcd"
endpoints = ["https://198.18.0.7:2379", "https://198.18.0.8:2379/"]
prefix = "/lab/vtepd"
lease_ttl = "3s"
max_entries = 1000
ca_file = "/etc/vtepd/ca.pem"
cert_file = "/etc/vtepd/client.pem"
key_file = "/etc/vtepd/client-key.pem"
username = "vtepd"
password = "secret"
`+nets))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ControlPrefix != "/lab/vtepd" || cfg.ControlLeaseTTL != 3*time.Second || cfg.ControlMaxEntries != 1000 ||
		len(cfg.ControlEndpoints) != 2 || cfg.ControlCAFile != "/etc/vtepd/ca.pem" || cfg.ControlCertFile != "/etc/vtepd/client.pem" ||
		cfg.ControlKeyFile != "/etc/vtepd/client-key.pem" || cfg.ControlUsername != "vtepd" || cfg.ControlPassword != "secret" {
		t.Errorf("[control] as written: %+v", cfg)
	}
}

func TestParseEVPN(t *testing.T) {
	cfg, err := Parse("evpn.toml", []byte(`[underlay]
local = "198.18.0.1"
[control]
backend = "evpn"
asn = 65000
[[control.neighbor]]
address = "198.18.0.4"
[[control.neighbor]]
address = "2001:db8::4"
asn = 65001
password = "fabric"
[[network]]
vni = 200
bridge = "br0"
[[network]]
vni = 70000
bridge = "br1"
route_target = "65000:7"
route_distinguisher = "65000:70000"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Neighbor{
		{Address: netip.MustParseAddr("198.18.0.4"), ASN: 65000},
		{Address: netip.MustParseAddr("2001:db8::4"), ASN: 65001, Password: "fabric"},
	}
	if cfg.ControlASN != 65000 || cfg.ControlRouterID != netip.MustParseAddr("198.18.0.1") ||
		cfg.ControlListenPort != 179 || !slices.Equal(cfg.ControlNeighbors, want) || cfg.ControlMaxEntries != DefaultControlMaxEntries {
		t.Errorf("[control] evpn: %+v", cfg)
	}
	var got []string
	for _, n := range cfg.Networks {
		got = append(got, fmt.Sprintf("%d rt=%s rd=%s control=%v", n.VNI, n.RouteTarget, n.RouteDistinguisher, n.Control))
	}
	wantNets := []string{"200 rt=65000:200 rd=198.18.0.1:200 control=true", "70000 rt=65000:7 rd=65000:70000 control=true"}
	if !slices.Equal(got, wantNets) {
		t.Errorf("networks: %q, want %q", got, wantNets)
	}
}
