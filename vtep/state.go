package vtep

// Warm restart: on shutdown the learned FDB goes to a state file, and on
// start it comes back if it is fresh, each entry with the age it had plus
// the time vtepd was down, so a restart does not flood the fabric while
// everything is relearned. The file names the network namespace and local
// address it was written for; a file of another instance (several vtepds in
// namespaces share one file system), a corrupt file or a stale one is
// ignored with a log line.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/fdb"
)

const stateVersion = 1

type stateFile struct {
	Version int          `json:"version"`
	Written time.Time    `json:"written"`
	Netns   string       `json:"netns"`
	Local   string       `json:"local"`
	Port    uint16       `json:"port"`
	Entries []stateEntry `json:"entries"`
}

type stateEntry struct {
	VNI        uint32  `json:"vni"`
	MAC        string  `json:"mac"`
	Remote     string  `json:"remote"`
	AgeSeconds float64 `json:"age_seconds"`
}

// statePath is the state file of this instance, or "" without state_dir.
func statePath(cfg *config.Config) string {
	if cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(cfg.StateDir, fmt.Sprintf("fdb-%s-%d.json", cfg.Local, cfg.Port))
}

// saveState writes the learned entries to the state file.
func (e *Engine) saveState() error {
	cfg := e.cfg.Load()
	path := statePath(cfg)
	if path == "" {
		return nil
	}
	st := stateFile{Version: stateVersion, Written: time.Now(), Netns: netnsID(), Local: cfg.Local.String(), Port: cfg.Port}
	for _, en := range e.fdb.Entries(e.Now()) {
		if en.Type == fdb.Learned {
			st.Entries = append(st.Entries, stateEntry{VNI: en.VNI, MAC: en.MAC.String(), Remote: en.Remote.String(), AgeSeconds: en.Age.Seconds()})
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(cfg.StateDir, ".fdb-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	e.log.Info("learned FDB saved", "file", path, "entries", len(st.Entries))
	return nil
}

// loadState restores what a fresh state file holds for the networks that
// learn; it returns how many entries it restored.
func (e *Engine) loadState() int {
	cfg := e.cfg.Load()
	path := statePath(cfg)
	if path == "" {
		return 0
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	warn := func(msg string, args ...any) int {
		e.log.Warn(msg, append([]any{"file", path}, args...)...)
		return 0
	}
	if err != nil {
		return warn("state file unreadable, ignored", "err", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return warn("state file corrupt, ignored", "err", err)
	}
	if st.Version != stateVersion {
		return warn("state file of another version, ignored", "version", st.Version)
	}
	if st.Netns != netnsID() || st.Local != cfg.Local.String() || st.Port != cfg.Port {
		e.log.Info("state file of another instance, ignored", "file", path)
		return 0
	}
	down := time.Since(st.Written)
	if down < 0 {
		return warn("state file written in the future, ignored", "written", st.Written)
	}
	// Vet every entry before restoring any: a file that is corrupt
	// anywhere is ignored as a whole.
	type restore struct {
		vni    uint32
		mac    fdb.MAC
		remote netip.Addr
		age    time.Duration
	}
	var todo []restore
	nets := e.nets.Load().byVNI
	stale := 0
	for _, se := range st.Entries {
		mac, err1 := fdb.ParseMAC(se.MAC)
		remote, err2 := netip.ParseAddr(se.Remote)
		switch {
		case err1 != nil || err2 != nil || !mac.IsUnicast() || mac.IsZero():
			return warn("state file corrupt, ignored", "entry", se.MAC)
		case remote.Is4() != cfg.Local.Is4() || remote == cfg.Local || !remote.IsGlobalUnicast():
			return warn("state file corrupt, ignored", "entry", se.MAC, "remote", se.Remote)
		case !(se.AgeSeconds >= 0) || math.IsInf(se.AgeSeconds, 0): // also NaN
			return warn("state file corrupt, ignored", "entry", se.MAC, "age_seconds", se.AgeSeconds)
		}
		n := nets[se.VNI]
		if n == nil || !n.cfg.Load().Learning {
			continue
		}
		ageing := n.cfg.Load().Ageing
		if se.AgeSeconds >= ageing.Seconds() || down >= ageing {
			stale++
			continue
		}
		age := time.Duration(se.AgeSeconds*float64(time.Second)) + down
		if age >= ageing {
			stale++
			continue
		}
		todo = append(todo, restore{se.VNI, mac, remote, age})
	}
	now := e.Now()
	restored := 0
	for _, r := range todo {
		if e.fdb.Learn(r.vni, r.mac, r.remote, now-int64(r.age)) == fdb.Added {
			restored++
		}
	}
	if restored == 0 && stale > 0 {
		return warn("state file stale, ignored", "written", st.Written)
	}
	e.log.Info("learned FDB restored", "file", path, "entries", restored, "expired_meanwhile", stale)
	return restored
}

// netnsID names the network namespace vtepd runs in, e.g. "net:[4026531840]".
func netnsID() string {
	id, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ""
	}
	return id
}
