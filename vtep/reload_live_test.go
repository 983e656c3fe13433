package vtep

import (
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/config/configtest"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/underlay"
)

// liveTestEngine is an engine over fakes, not running, with one network
// (VNI 200) whose every setting has a value a change can be seen against,
// and a LogLevel to follow log_level.
func liveTestEngine(t *testing.T) *Engine {
	t.Helper()
	nc := netCfg(200, peerB, peerC)
	nc.Static = []config.StaticEntry{{MAC: fdb.MAC{2, 0, 0, 0, 0, 0xaa}, Remote: peerB}}
	nc.Control, nc.ARPSuppress = true, true
	cfg := reloadConfig(nc)
	cfg.MaxMoves, cfg.MoveHold = 1, 10*time.Second // so that move_hold matters
	tp := newFakeTAP("t200")
	e := NewWithDevices(cfg, testLogger(), []underlay.Conn{newFakeConn()}, []Device{{Queues: []FrameQueue{tp}, Closer: tp}}, 1450)
	e.LogLevel = new(slog.LevelVar)
	e.SetControl(newFakeBackend())
	return e
}

// liveCheck checks that a live setting, just reloaded to the value in
// want, is in effect beyond the configuration the engine holds; nil when
// the engine reads the setting from its configuration each time it needs it.
type liveCheck func(t *testing.T, e *Engine, want *config.Config)

// liveNetworkSettings says, for every key of a network's live settings,
// how the running network takes it. A new live setting must be added here.
var liveNetworkSettings = map[string]liveCheck{
	"name": func(t *testing.T, e *Engine, want *config.Config) {
		if got := e.Stats()[0].Name; got != want.Networks[0].Name {
			t.Errorf("stats name %q, want %q", got, want.Networks[0].Name)
		}
	},
	"peers": func(t *testing.T, e *Engine, want *config.Config) {
		if got := e.FloodList(200); !slices.Equal(got, want.Networks[0].Peers) {
			t.Errorf("flood list %v, want %v", got, want.Networks[0].Peers)
		}
	},
	"control": func(t *testing.T, e *Engine, want *config.Config) {
		if got := e.ctl.b.(*fakeBackend).joined[200]; got != want.Networks[0].Control {
			t.Errorf("joined the control plane: %v, want control = %v", got, want.Networks[0].Control)
		}
	},
	"arp_suppress": nil, // read by the TX pipeline, per batch
	"learning":     nil, // read by the receive pipeline, per datagram
	"accept_from":  nil, // read by the receive pipeline, per datagram
	"inner_vlan":   nil, // read by both pipelines, per frame
	"flood_rate":   nil, // read by the TX pipeline, per flood
	"max_entries": func(t *testing.T, e *Engine, want *config.Config) {
		if got := learnable(e, 200); got != want.Networks[0].MaxEntries {
			t.Errorf("the FDB took %d learned entries, want max_entries %d", got, want.Networks[0].MaxEntries)
		}
		n := e.nets.Load().byVNI[200]
		fb := e.ctl.b.(*fakeBackend)
		for i := range 1000 {
			n.local.seenMAC(fb, 200, fdb.MAC{2, 2, 0, 0, byte(i >> 8), byte(i)}, 0)
		}
		if got := len(fb.macs); got != want.Networks[0].MaxEntries {
			t.Errorf("%d local MACs published, want max_entries %d", got, want.Networks[0].MaxEntries)
		}
	},
	"ageing": func(t *testing.T, e *Engine, want *config.Config) {
		ageing := want.Networks[0].Ageing
		mac := fdb.MAC{2, 0, 0, 0, 0, 0x42}
		e.fdb.Learn(200, mac, peerB, 0)
		e.fdb.Expire(int64(ageing - 500*time.Millisecond))
		if _, ok := e.fdb.Lookup(200, mac); !ok {
			t.Errorf("entry expired before the new ageing %v", ageing)
		}
		e.fdb.Expire(int64(ageing + 500*time.Millisecond))
		if _, ok := e.fdb.Lookup(200, mac); ok {
			t.Errorf("entry still there after the new ageing %v", ageing)
		}
	},
	"static": func(t *testing.T, e *Engine, want *config.Config) {
		for _, s := range want.Networks[0].Static {
			if r, ok := e.fdb.Lookup(200, s.MAC); !ok || r != s.Remote {
				t.Errorf("static %s: lookup %v %v, want %v", s.MAC, r, ok, s.Remote)
			}
		}
	},
}

// liveSettings does the same for the top-level live settings.
var liveSettings = map[string]liveCheck{
	"log_level": func(t *testing.T, e *Engine, want *config.Config) {
		if got := e.LogLevel.Level(); got != want.LogLevel {
			t.Errorf("log level %v, want %v", got, want.LogLevel)
		}
	},
	"nice": func(t *testing.T, e *Engine, want *config.Config) {
		if os.Geteuid() != 0 {
			return // a lower nice than now needs CAP_SYS_NICE
		}
		defer setNice(0)
		if got, ok := threadNice(); !ok || got != want.Nice {
			t.Errorf("this thread's nice is %d (%v), want %d", got, ok, want.Nice)
		}
	},
	"busy_poll":         nil, // read by the busy poller and the pipelines, each time traffic comes
	"state_dir":         nil, // read when the state file is written, at shutdown
	"limits.learn_rate": nil, // read by the receive pipeline, per batch
	"limits.max_learned": func(t *testing.T, e *Engine, want *config.Config) {
		if got := learnable(e, 200); got != want.MaxLearned {
			t.Errorf("the FDB took %d learned entries, want max_learned %d", got, want.MaxLearned)
		}
	},
	"limits.max_moves": func(t *testing.T, e *Engine, want *config.Config) {
		if got, _ := flap(e, 200, 0); got != want.MaxMoves {
			t.Errorf("the FDB took %d moves before damping, want max_moves %d", got, want.MaxMoves)
		}
	},
	"limits.move_hold": func(t *testing.T, e *Engine, want *config.Config) {
		mac := fdb.MAC{2, 0, 0, 0, 0, 0x43}
		_, last := flap(e, 200, 0)
		hold := int64(want.MoveHold)
		if r := e.fdb.Learn(200, mac, last, hold-int64(time.Millisecond)); r != fdb.Damped {
			t.Errorf("move before the new move_hold %v: %v, want damped", want.MoveHold, r)
		}
		if r := e.fdb.Learn(200, mac, last, hold); r != fdb.Moved {
			t.Errorf("move after the new move_hold %v: %v, want moved", want.MoveHold, r)
		}
	},
}

// learnable learns new MACs in vni until the FDB refuses one, and
// returns how many it took (at most 1000).
func learnable(e *Engine, vni uint32) int {
	for i := range 1000 {
		if e.fdb.Learn(vni, fdb.MAC{2, 1, 0, 0, byte(i >> 8), byte(i)}, peerB, 0) != fdb.Added {
			return i
		}
	}
	return 1000
}

// flap moves MAC 02:00:00:00:00:43 between peerB and peerC at time now
// until the FDB damps a move; it returns how many moves it took (at most
// 100), and the address the damped move was to.
func flap(e *Engine, vni uint32, now int64) (int, netip.Addr) {
	mac := fdb.MAC{2, 0, 0, 0, 0, 0x43}
	e.fdb.Learn(vni, mac, peerB, now)
	to := peerC
	for moves := range 100 {
		if e.fdb.Learn(vni, mac, to, now) == fdb.Damped {
			return moves, to
		}
		to = map[netip.Addr]netip.Addr{peerB: peerC, peerC: peerB}[to]
	}
	return 100, to
}

// Every live setting of a network, changed alone, is in force after a
// reload, which reports the network as changed and names the key.
func TestReloadEveryLiveNetworkSetting(t *testing.T) {
	eachLiveSetting(t, liveNetworkSettings, "liveNetworkSettings",
		func(cfg *config.Config) *config.Network {
			cfg.Networks = slices.Clone(cfg.Networks)
			return &cfg.Networks[0]
		},
		func(e *Engine) *config.Network { return e.nets.Load().byVNI[200].cfg.Load() },
		"1 changed, 0 unchanged; changed: vni 200 ")
}

// Every live top-level setting, changed alone, is in force after a
// reload, which names the key and reports the network unchanged.
func TestReloadEveryLiveSetting(t *testing.T) {
	eachLiveSetting(t, liveSettings, "liveSettings",
		func(cfg *config.Config) *config.Config { return cfg },
		(*Engine).Config,
		"0 changed, 1 unchanged; changed: ")
}

// eachLiveSetting changes each field of T tagged live alone, in the part
// of a copy of the configuration that edit returns, reloads it, and
// checks that running(e) holds it, that the summary ends in summary and
// the key, and what checks says of the key. checks, called name, must
// list every live field, and no other.
func eachLiveSetting[T any](t *testing.T, checks map[string]liveCheck, name string,
	edit func(*config.Config) *T, running func(*Engine) *T, summary string) {
	typ := reflect.TypeFor[T]()
	for i := range typ.NumField() {
		sf := typ.Field(i)
		if sf.Tag.Get("reload") != config.ReloadLive {
			continue
		}
		key := sf.Tag.Get("key")
		t.Run(key, func(t *testing.T) {
			check, ok := checks[key]
			if !ok {
				t.Fatalf("key %s is tagged live but not in %s: say how the running engine takes it", key, name)
			}
			e := liveTestEngine(t)
			cfg := *e.Config()
			part := edit(&cfg)
			if err := configtest.Mutate(reflect.ValueOf(part).Elem().Field(i)); err != nil {
				t.Fatal(err)
			}
			reloadOne(t, e, &cfg, summary+key)
			sameField(t, "running "+key, running(e), part, i)
			if check != nil {
				check(t, e, &cfg)
			}
		})
	}
	for key := range checks {
		if f, ok := fieldByKey(typ, key); !ok || f.Tag.Get("reload") != config.ReloadLive {
			t.Errorf("%s lists %s, which is not a live setting there", name, key)
		}
	}
}

// A reload that changes a setting only a restart can apply is refused,
// naming it, and changes nothing, not even the live settings that came
// with it.
func TestReloadRestartOnlyRefused(t *testing.T) {
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		sf := typ.Field(i)
		if sf.Tag.Get("reload") != config.ReloadRestart {
			continue
		}
		key := sf.Tag.Get("key")
		t.Run(sf.Name, func(t *testing.T) {
			e := liveTestEngine(t)
			before := e.Config()
			n := e.nets.Load().byVNI[200]
			nc := n.cfg.Load()
			cfg := *before
			cfg.MaxLearned = 1 // live: must not be applied either
			cfg.Networks = append(slices.Clone(before.Networks), netCfg(300))
			cfg.Networks[0].FloodRate = 7
			if err := configtest.Mutate(reflect.ValueOf(&cfg).Elem().Field(i)); err != nil {
				t.Fatal(err)
			}
			summary, err := e.Reload(&cfg)
			want := key + " cannot change without a restart; configuration not applied"
			if err == nil || err.Error() != want || summary != "" {
				t.Fatalf("Reload: %q, %v; want the error %q", summary, err, want)
			}
			if e.Config() != before {
				t.Error("the configuration in force was replaced")
			}
			if tbl := e.nets.Load(); len(tbl.order) != 1 || tbl.byVNI[200] != n || n.cfg.Load() != nc {
				t.Error("the networks changed")
			}
			if got := learnable(e, 200); got != nc.MaxEntries {
				t.Errorf("the FDB took %d learned entries, want max_entries %d: limits.max_learned was applied", got, nc.MaxEntries)
			}
		})
	}
}

// fieldByKey finds the first field of struct type typ tagged with key.
func fieldByKey(typ reflect.Type, key string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		if f := typ.Field(i); f.Tag.Get("key") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func TestReloadSummaryNamesChanges(t *testing.T) {
	e := liveTestEngine(t)
	cfg := *e.Config()
	cfg.LogLevel = slog.LevelDebug
	cfg.Networks = slices.Clone(cfg.Networks)
	cfg.Networks[0].FloodRate, cfg.Networks[0].DropVLAN = 100, true
	summary, err := e.Reload(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := "networks: 0 added, 0 removed, 0 replaced, 1 changed, 0 unchanged; changed: log_level, vni 200 flood_rate inner_vlan"; summary != want {
		t.Errorf("summary %q, want %q", summary, want)
	}
	if summary, _ := e.Reload(&cfg); strings.Contains(summary, "changed:") {
		t.Errorf("the same configuration again: summary %q names changes", summary)
	}
}

// reloadOne reloads cfg, which changes one setting of one kept network,
// and checks the summary's counts from "changed" on.
func reloadOne(t *testing.T, e *Engine, cfg *config.Config, want string) {
	t.Helper()
	summary, err := e.Reload(cfg)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if want = "networks: 0 added, 0 removed, 0 replaced, " + want; summary != want {
		t.Errorf("summary %q, want %q", summary, want)
	}
}

// sameField checks that field i of the structs got and want point to is
// equal.
func sameField[T any](t *testing.T, what string, got, want *T, i int) {
	t.Helper()
	g, w := reflect.ValueOf(got).Elem().Field(i).Interface(), reflect.ValueOf(want).Elem().Field(i).Interface()
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %v, want %v", what, g, w)
	}
}
