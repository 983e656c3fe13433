package vtep

// Warm restart: which entries go to the state file and come back from it,
// and the log lines; package fdbstate owns the file.

import (
	"errors"
	"io/fs"
	"time"

	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/fdbstate"
)

// saveState writes the learned entries to the state file, if there is one.
func (e *Engine) saveState() error {
	cfg := e.cfg.Load()
	if cfg.StateDir == "" {
		return nil
	}
	var learned []fdbstate.Entry
	for _, en := range e.fdb.Entries(e.Now()) {
		if en.Type == fdb.Learned {
			learned = append(learned, fdbstate.Entry{VNI: en.VNI, MAC: en.MAC, Remote: en.Remote, Age: en.Age})
		}
	}
	path, err := fdbstate.Save(cfg.StateDir, fdbstate.Self(cfg.Local, cfg.Port), learned, time.Now())
	if err == nil {
		e.log.Info("learned FDB saved", "file", path, "entries", len(learned))
	}
	return err
}

// loadState restores the state file's entries of networks that learn, and
// returns how many it restored.
func (e *Engine) loadState() int {
	cfg := e.cfg.Load()
	if cfg.StateDir == "" {
		return 0
	}
	self := fdbstate.Self(cfg.Local, cfg.Port)
	path := fdbstate.Path(cfg.StateDir, self)
	f, err := fdbstate.Load(path, self, time.Now())
	warn := func(msg string, args ...any) int {
		e.log.Warn(msg, append([]any{"file", path}, args...)...)
		return 0
	}
	var bad *fdbstate.EntryError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0
	case errors.Is(err, fdbstate.ErrOtherInstance):
		e.log.Info("state file of another instance, ignored", "file", path)
		return 0
	case errors.Is(err, fdbstate.ErrVersion):
		return warn("state file of another version, ignored", "version", f.Version)
	case errors.Is(err, fdbstate.ErrFuture):
		return warn("state file written in the future, ignored", "written", f.Written)
	case errors.As(err, &bad) && bad.Field == "mac":
		return warn("state file corrupt, ignored", "entry", bad.MAC)
	case errors.As(err, &bad):
		return warn("state file corrupt, ignored", "entry", bad.MAC, bad.Field, bad.Value)
	case errors.Is(err, fdbstate.ErrCorrupt):
		return warn("state file corrupt, ignored", "err", err)
	case err != nil:
		return warn("state file unreadable, ignored", "err", err)
	}
	nets := e.nets.Load().byVNI
	now := e.Now()
	restored, stale := 0, 0
	for _, en := range f.Entries {
		switch n := nets[en.VNI]; {
		case n == nil || !n.cfg.Load().Learning: // not restored
		case en.Age >= n.cfg.Load().Ageing:
			stale++
		case e.fdb.Learn(en.VNI, en.MAC, en.Remote, now-int64(en.Age)) == fdb.Added:
			restored++
		}
	}
	if restored == 0 && stale > 0 {
		return warn("state file stale, ignored", "written", f.Written)
	}
	e.log.Info("learned FDB restored", "file", path, "entries", restored, "expired_meanwhile", stale)
	return restored
}
