package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vtepd/vtepd/encap"
)

// FuzzConfig feeds arbitrary documents to Parse. It must never
// panic; a refusal is one line that names the file (what vtepd prints and
// exits with); and a configuration it accepts holds every invariant that
// the engine relies on without checking again.
//
// The seeds are the example files under configs/, this package's full
// test configuration, a few near misses, and testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	examples, err := filepath.Glob(filepath.Join("..", "configs", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	if len(examples) == 0 {
		f.Fatal("no configs/*.toml to seed from")
	}
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(fullConfig))
	const underlay = "[underlay]\nlocal = \"198.18.0.1\"\n"
	for _, broken := range []string{
		"",
		underlay,
		underlay + "[[network]]\nvni = 200\nbridge = \"br0\"\n",
		underlay + "[[network]]\nvni = 16777216\nbridge = \"br0\"\n",
		underlay + "[[network]]\nvni = -1\nbridge = \"br0\"\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\n[[network]]\nvni = 1\nbridge = \"br1\"\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\ntap = \"sixteen-chars-xx\"\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\npeers = [\"2001:db8::2\"]\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\naccept_from = [\"2001:db8::/32\", \"198.18.0.0/33\"]\n",
		underlay + "src_port_range = [65535, 1]\n[[network]]\nvni = 1\nbridge = \"br0\"\n",
		underlay + "port = 0\n[[network]]\nvni = 1\nbridge = \"br0\"\n",
		"state_dir = \"relative\"\n" + underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\n",
		"[limits]\nlearn_rate = -5\n" + underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\ninner_vlan = \"strip\"\nflood_rate = 1e3\n",
		underlay + "[[network]]\nvni = 1\nbridge = \"br0\"\n  [[network.static]]\n  mac = \"01:00:5e:00:00:01\"\n  remote = \"198.18.0.2\"\n",
		"[underlay\nlocal = ",
		"[[network]]\n[[network.static]]\n[[network.static]]\nmac = 1\n",
	} {
		f.Add([]byte(broken))
	}

	const name = "fuzz.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(name, data)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and the error %q", err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "config "+name+": ") {
				t.Errorf("error does not name the file: %q", msg)
			}
			return
		}
		checkConfigInvariants(t, cfg)
	})
}

// checkConfigInvariants reports every way in which an accepted Config
// breaks what validation promises.
func checkConfigInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	local := cfg.Local
	sameFamily := func(a netip.Addr) bool { return a.Unmap().Is4() == local.Is4() }
	if !local.IsValid() || local.IsUnspecified() || local.IsMulticast() || local.Zone() != "" {
		t.Errorf("underlay.local %v is not a usable unicast address", local)
	}
	if cfg.Port == 0 {
		t.Error("underlay.port is 0")
	}
	if cfg.SrcPortLow == 0 || cfg.SrcPortLow > cfg.SrcPortHigh {
		t.Errorf("src_port_range [%d, %d] is not ordered within 1..65535", cfg.SrcPortLow, cfg.SrcPortHigh)
	}
	if cfg.Queues < 1 || cfg.Queues > maxQueues {
		t.Errorf("queues %d out of 1..%d", cfg.Queues, maxQueues)
	}
	if len(cfg.Interface) > maxIfNameLen {
		t.Errorf("underlay.interface %q longer than %d", cfg.Interface, maxIfNameLen)
	}
	for _, p := range []struct{ key, path string }{{"state_dir", cfg.StateDir}, {"admin.socket", cfg.AdminSocket}} {
		if p.path != "" && !strings.HasPrefix(p.path, "/") {
			t.Errorf("%s %q is neither empty nor absolute", p.key, p.path)
		}
	}
	if cfg.LearnRate < 0 || cfg.MaxLearned < 0 || cfg.MaxMoves < 0 || cfg.MoveHold <= 0 {
		t.Errorf("limits out of range: learn_rate %d, max_learned %d, max_moves %d, move_hold %v",
			cfg.LearnRate, cfg.MaxLearned, cfg.MaxMoves, cfg.MoveHold)
	}
	if len(cfg.Networks) == 0 {
		t.Error("no networks")
	}
	vnis := map[uint32]bool{}
	taps := map[string]bool{}
	bridges := map[string]bool{}
	for i, n := range cfg.Networks {
		if n.VNI > encap.MaxVNI {
			t.Errorf("network[%d]: VNI %d above %d", i, n.VNI, encap.MaxVNI)
		}
		if vnis[n.VNI] {
			t.Errorf("network[%d]: VNI %d used twice", i, n.VNI)
		}
		vnis[n.VNI] = true
		if n.TAP == "" || len(n.TAP) > maxIfNameLen || strings.ContainsAny(n.TAP, "/ %") {
			t.Errorf("network[%d]: TAP name %q unusable", i, n.TAP)
		}
		if taps[n.TAP] {
			t.Errorf("network[%d]: TAP %q used twice", i, n.TAP)
		}
		taps[n.TAP] = true
		if n.Bridge == "" || len(n.Bridge) > maxIfNameLen {
			t.Errorf("network[%d]: bridge name %q unusable", i, n.Bridge)
		}
		if bridges[n.Bridge] {
			t.Errorf("network[%d]: bridge %q used twice", i, n.Bridge)
		}
		bridges[n.Bridge] = true
		if n.Name == "" {
			t.Errorf("network[%d]: empty name", i)
		}
		seen := map[netip.Addr]bool{}
		for _, p := range n.Peers {
			switch {
			case !p.IsValid() || p.IsUnspecified() || p.IsMulticast():
				t.Errorf("network[%d]: peer %v is not unicast", i, p)
			case !sameFamily(p):
				t.Errorf("network[%d]: peer %v not of the family of local %v", i, p, local)
			case p == local:
				t.Errorf("network[%d]: own address %v left in the flood list", i, p)
			case seen[p]:
				t.Errorf("network[%d]: peer %v listed twice", i, p)
			}
			seen[p] = true
		}
		if n.Group.IsValid() && (!n.Group.IsMulticast() || !sameFamily(n.Group)) {
			t.Errorf("network[%d]: group %v not a multicast address of local's family", i, n.Group)
		}
		if n.TTL < 1 || n.TTL > 255 {
			t.Errorf("network[%d]: ttl %d out of 1..255", i, n.TTL)
		}
		if n.Ageing <= 0 {
			t.Errorf("network[%d]: ageing %v not positive", i, n.Ageing)
		}
		if n.MaxEntries < 1 || n.MaxEntries > 1<<24 {
			t.Errorf("network[%d]: max_entries %d out of 1..%d", i, n.MaxEntries, 1<<24)
		}
		if n.FloodRate < 0 {
			t.Errorf("network[%d]: flood_rate %d negative", i, n.FloodRate)
		}
		for _, p := range n.AcceptFrom {
			// Exactly local's family, not an IPv4-mapped IPv6 prefix:
			// netip.Prefix.Contains never matches across families, so such
			// a prefix would refuse every sender.
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4() != local.Is4() {
				t.Errorf("network[%d]: accept_from %v is not a masked prefix of local's family", i, p)
			}
		}
		macs := map[string]bool{}
		for _, s := range n.Static {
			if !s.MAC.IsUnicast() || s.MAC.IsZero() || macs[s.MAC.String()] {
				t.Errorf("network[%d]: static MAC %v not unicast or listed twice", i, s.MAC)
			}
			macs[s.MAC.String()] = true
			if !s.Remote.IsValid() || s.Remote == local || !sameFamily(s.Remote) || s.Remote.IsUnspecified() || s.Remote.IsMulticast() {
				t.Errorf("network[%d]: static %v -> %v is not a unicast remote of local's family", i, s.MAC, s.Remote)
			}
		}
	}
}
