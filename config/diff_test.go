package config_test

import (
	"log/slog"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/config/configtest"
)

const diffBase = `[underlay]
local = "198.18.0.1"
[metrics]
listen = "127.0.0.1:9476"
[limits]
max_moves = 5

[[network]]
vni = 100
bridge = "br0"
peers = ["198.18.0.2"]

[[network]]
vni = 200
bridge = "br1"
group = "239.1.1.1"
accept_from = ["198.18.0.0/24"]
`

func parse(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("diff.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDiff(t *testing.T) {
	for _, tt := range []struct {
		name          string
		edit          func(c *config.Config)
		restart, live []string
	}{
		{"same", func(c *config.Config) {}, nil, nil},
		{"port", func(c *config.Config) { c.Port = 4790 }, []string{"underlay.port"}, nil},
		{"source port range named once", func(c *config.Config) { c.SrcPortLow, c.SrcPortHigh = 50000, 60000 },
			[]string{"underlay.src_port_range"}, nil},
		{"metrics", func(c *config.Config) { c.MetricsAddr, c.Pprof = "", true },
			[]string{"metrics.listen", "metrics.pprof"}, nil},
		{"log level and limits", func(c *config.Config) { c.LogLevel, c.MaxMoves = slog.LevelDebug, 0 },
			nil, []string{"log_level", "limits.max_moves"}},
		{"both", func(c *config.Config) { c.Queues, c.BusyPoll = 7, time.Millisecond },
			[]string{"queues"}, []string{"busy_poll"}},
		{"admin socket written out as the default", func(c *config.Config) { c.AdminSocketSet = true }, nil, nil},
		{"networks are DiffNetwork's", func(c *config.Config) { c.Networks = c.Networks[:1] }, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := parse(t, diffBase)
			cfg := parse(t, diffBase)
			tt.edit(cfg)
			restart, live := config.Diff(old, cfg)
			if diff := cmp.Diff(tt.restart, restart); diff != "" {
				t.Errorf("restart keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.live, live); diff != "" {
				t.Errorf("live keys (-want +got):\n%s", diff)
			}
		})
	}
}

// A configuration read again from a file that changed in one place
// differs by that key.
func TestDiffParsed(t *testing.T) {
	for _, tt := range []struct {
		name, extra   string
		restart, live []string
	}{
		{"same file", "", nil, nil},
		{"queues", "queues = 3\n", []string{"queues"}, nil},
		{"state_dir", "state_dir = \"/tmp/vtepd\"\n", nil, []string{"state_dir"}},
		{"busy_poll", "busy_poll = \"50us\"\n", nil, []string{"busy_poll"}},
		{"offload also turns udp_gso off", "offload = false\n", []string{"underlay.udp_gso", "offload"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			restart, live := config.Diff(parse(t, diffBase), parse(t, tt.extra+diffBase))
			if diff := cmp.Diff(tt.restart, restart); diff != "" {
				t.Errorf("restart keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.live, live); diff != "" {
				t.Errorf("live keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffNetwork(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(n *config.Network)
		replace bool
		live    []string
	}{
		{"same", func(n *config.Network) {}, false, nil},
		{"no accept_from, nil or empty", func(n *config.Network) { n.AcceptFrom = []netip.Prefix{} }, false, nil},
		{"accept_from", func(n *config.Network) { n.AcceptFrom = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")} },
			false, []string{"accept_from"}},
		{"flood_rate and inner_vlan", func(n *config.Network) { n.FloodRate, n.DropVLAN = 10, true },
			false, []string{"flood_rate", "inner_vlan"}},
		{"peers reordered", func(n *config.Network) { n.Peers = []netip.Addr{n.Peers[1], n.Peers[0]} },
			false, []string{"peers"}},
		{"bridge", func(n *config.Network) { n.Bridge = "br9" }, true, nil},
		{"ttl", func(n *config.Network) { n.TTL = 2 }, true, nil},
		{"group", func(n *config.Network) { n.Group = netip.Addr{} }, true, nil},
		{"tap and name", func(n *config.Network) { n.TAP, n.Name = "t", "other" }, true, []string{"name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := config.Network{Name: "vni200", VNI: 200, Bridge: "br1", TAP: "vtep200",
				Peers: []netip.Addr{configtest.NewAddr, configtest.NewAddr.Next()}, Group: netip.MustParseAddr("239.1.1.1"), TTL: 1,
				Learning: true, Ageing: time.Minute, MaxEntries: 10}
			nc := old
			nc.Peers = append([]netip.Addr(nil), old.Peers...)
			tt.edit(&nc)
			replace, live := config.DiffNetwork(&old, &nc)
			if replace != tt.replace {
				t.Errorf("replace %v, want %v", replace, tt.replace)
			}
			if diff := cmp.Diff(tt.live, live); diff != "" {
				t.Errorf("live keys (-want +got):\n%s", diff)
			}
		})
	}
}

// Each setting, changed alone, is reported under its own key and class:
// no field is left out of the comparison, whatever its type.
func TestDiffEveryField(t *testing.T) {
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		sf := typ.Field(i)
		class := sf.Tag.Get("reload")
		if class != config.ReloadLive && class != config.ReloadRestart {
			continue
		}
		t.Run(sf.Name, func(t *testing.T) {
			old, cfg := parse(t, diffBase), parse(t, diffBase)
			if err := configtest.Mutate(reflect.ValueOf(cfg).Elem().Field(i)); err != nil {
				t.Fatal(err)
			}
			var wantRestart, wantLive []string
			if key := []string{sf.Tag.Get("key")}; class == config.ReloadRestart {
				wantRestart = key
			} else {
				wantLive = key
			}
			restart, live := config.Diff(old, cfg)
			if !reflect.DeepEqual(restart, wantRestart) || !reflect.DeepEqual(live, wantLive) {
				t.Errorf("restart keys %q, live keys %q; want %q and %q", restart, live, wantRestart, wantLive)
			}
		})
	}
	typ = reflect.TypeFor[config.Network]()
	for i := range typ.NumField() {
		sf := typ.Field(i)
		class := sf.Tag.Get("reload")
		if class == config.ReloadNone {
			continue
		}
		t.Run("Network."+sf.Name, func(t *testing.T) {
			for j, n := range parse(t, diffBase).Networks {
				nc := n
				if err := configtest.Mutate(reflect.ValueOf(&nc).Elem().Field(i)); err != nil {
					t.Fatal(err)
				}
				replace, live := config.DiffNetwork(&n, &nc)
				switch {
				case class == config.ReloadReplace && (!replace || len(live) > 0):
					t.Errorf("network[%d]: replace %v, live %q; want a replacement only", j, replace, live)
				case class == config.ReloadLive && (replace || !reflect.DeepEqual(live, []string{sf.Tag.Get("key")})):
					t.Errorf("network[%d]: replace %v, live %q; want live %q only", j, replace, live, sf.Tag.Get("key"))
				}
			}
		})
	}
}
