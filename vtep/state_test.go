package vtep

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/fdbstate"
)

// stateEngine is a test engine with state_dir dir, networks 200 (learning,
// ageing 1m) and 300 (not learning), and its log in a buffer, without
// times.
func stateEngine(t *testing.T, dir string) (*testEngine, *bytes.Buffer) {
	t.Helper()
	n200 := netCfg(200, peerB)
	n200.TAP = "t200"
	n300 := netCfg(300, peerB)
	n300.TAP, n300.Learning = "t300", false
	te := newTestEngine(t, n200, n300)
	cfg := *te.cfg.Load()
	cfg.StateDir = dir
	te.cfg.Store(&cfg)
	var log bytes.Buffer
	te.log = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	return te, &log
}

// self is the instance of every stateEngine.
func self() fdbstate.Instance { return fdbstate.Self(addr("198.18.0.1"), 4789) }

// Learned entries come back with their age plus the time down; static ones
// are configuration, and not saved.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a, log := stateEngine(t, dir)
	a.Now = func() int64 { return int64(100 * time.Second) }
	a.fdb.Learn(200, macRemote, peerB, int64(90*time.Second)) // 10 s old
	a.fdb.AddStatic(200, fdb.MAC{2, 0, 0, 0, 0, 0x55}, peerC)
	if err := a.saveState(); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("level=INFO msg=\"learned FDB saved\" file=%s entries=1\n", fdbstate.Path(dir, self())); log.String() != want {
		t.Errorf("log: %q, want %q", log, want)
	}

	b, _ := stateEngine(t, dir)
	if n := b.loadState(); n != 1 {
		t.Fatalf("restored %d entries, want the learned one", n)
	}
	entries := b.fdb.Entries(b.Now())
	if len(entries) != 1 || entries[0].MAC != macRemote || entries[0].Remote != peerB || entries[0].Type != fdb.Learned {
		t.Fatalf("after restart: %+v", entries)
	}
	if age := entries[0].Age; age < 10*time.Second || age > 15*time.Second {
		t.Errorf("restored age %v, want the saved 10s plus the time down", age)
	}
}

// Which entries of a good file come back: those of networks that learn,
// still younger than their network's ageing time (1m) with the time down.
func TestStateRestoresFreshLearnedEntries(t *testing.T) {
	fresh := fdbstate.Entry{VNI: 200, MAC: macRemote, Remote: peerB, Age: 10 * time.Second}
	with := func(vni uint32, age time.Duration) fdbstate.Entry {
		return fdbstate.Entry{VNI: vni, MAC: fdb.MAC{2, 0, 0, 0, 0, 0x77}, Remote: peerC, Age: age}
	}
	const restored = `level=INFO msg="learned FDB restored" file=%s entries=%d expired_meanwhile=%d`
	const stale = `level=WARN msg="state file stale, ignored" file=%s written=`
	for _, tt := range []struct {
		name    string
		entries []fdbstate.Entry
		down    time.Duration // before the restart
		want    int           // entries restored
		log     string        // the log line, with %s for the file
	}{
		{"fresh", []fdbstate.Entry{fresh}, 0, 1, fmt.Sprintf(restored, "%s", 1, 0)},
		{"fresh after 40s down", []fdbstate.Entry{fresh}, 40 * time.Second, 1, fmt.Sprintf(restored, "%s", 1, 0)},
		{"none", nil, 0, 0, fmt.Sprintf(restored, "%s", 0, 0)},
		{"network that does not learn", []fdbstate.Entry{with(300, 0)}, 0, 0, fmt.Sprintf(restored, "%s", 0, 0)},
		{"no such network", []fdbstate.Entry{with(400, 0)}, 0, 0, fmt.Sprintf(restored, "%s", 0, 0)},
		{"saved too old", []fdbstate.Entry{with(200, 2*time.Minute)}, 0, 0, stale},
		{"saved at the ageing time", []fdbstate.Entry{with(200, time.Minute)}, 0, 0, stale},
		{"down too long", []fdbstate.Entry{with(200, time.Second)}, 2 * time.Minute, 0, stale},
		{"too old with the time down", []fdbstate.Entry{with(200, 40*time.Second)}, 30 * time.Second, 0, stale},
		{"written 24 years ago", []fdbstate.Entry{fresh}, 24 * 365 * 24 * time.Hour, 0, stale},
		{"saturated age", []fdbstate.Entry{with(200, 1<<63-1)}, 0, 0, stale},
		{"one fresh, one stale", []fdbstate.Entry{with(200, 2*time.Minute), fresh}, 0, 1, fmt.Sprintf(restored, "%s", 1, 1)},
		{"stale and not learning", []fdbstate.Entry{with(200, 2*time.Minute), with(300, 0)}, 0, 0, stale},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, err := fdbstate.Save(dir, self(), tt.entries, time.Now().Add(-tt.down))
			if err != nil {
				t.Fatal(err)
			}
			te, log := stateEngine(t, dir)
			if n := te.loadState(); n != tt.want {
				t.Errorf("restored %d entries, want %d", n, tt.want)
			}
			if want := fmt.Sprintf(tt.log, path); !strings.HasPrefix(log.String(), want) || strings.Count(log.String(), "\n") != 1 {
				t.Errorf("log: %q, want one line %q", log, want)
			}
			var got []fdb.Entry
			for _, e := range te.fdb.Entries(te.Now()) {
				if e.Type == fdb.Learned {
					got = append(got, e)
				}
			}
			if len(got) != tt.want {
				t.Fatalf("learned after the restart: %+v, want %d", got, tt.want)
			}
			if tt.want == 1 {
				if e := got[0]; e.VNI != 200 || e.MAC != macRemote || e.Remote != peerB || e.Age < fresh.Age+tt.down || e.Age > fresh.Age+tt.down+5*time.Second {
					t.Errorf("restored %+v, want %+v aged by %v", e, fresh, tt.down)
				}
			}
		})
	}
}

// What the engine says of a state file it does not restore from, and
// that it restores nothing. The messages and levels are what operators
// and the integration tests look for.
func TestStateRefusedFileLogLine(t *testing.T) {
	inst := self()
	file := func(written time.Time, entries string) string {
		return fmt.Sprintf(`{"version":1,"written":%q,"netns":%q,"local":"198.18.0.1","port":4789,"entries":[%s]}`,
			written.Format(time.RFC3339Nano), inst.Netns, entries)
	}
	const good = `{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1}`
	for _, tt := range []struct {
		name    string
		content string // "" for no file, "/" for a directory
		log     string // the log line's start, with %s for the file
	}{
		{"no file", "", ""},
		{"unreadable", "/", `level=WARN msg="state file unreadable, ignored" file=%s err=`},
		{"not JSON", "{not json", `level=WARN msg="state file corrupt, ignored" file=%s err=`},
		{"another version", `{"version":2}`, `level=WARN msg="state file of another version, ignored" file=%s version=2` + "\n"},
		{"another instance", strings.Replace(file(time.Now(), good), inst.Netns, "net:[1]", 1), `level=INFO msg="state file of another instance, ignored" file=%s` + "\n"},
		{"written in the future", file(time.Now().Add(time.Hour), good), `level=WARN msg="state file written in the future, ignored" file=%s written=`},
		{"good then bad MAC", file(time.Now(), good+`,{"vni":200,"mac":"zz","remote":"198.18.0.2","age_seconds":1}`),
			`level=WARN msg="state file corrupt, ignored" file=%s entry=zz` + "\n"},
		{"group remote", file(time.Now(), `{"vni":200,"mac":"02:00:00:00:00:02","remote":"239.1.1.1","age_seconds":1}`),
			`level=WARN msg="state file corrupt, ignored" file=%s entry=02:00:00:00:00:02 remote=239.1.1.1` + "\n"},
		{"negative age", file(time.Now(), `{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":-1}`),
			`level=WARN msg="state file corrupt, ignored" file=%s entry=02:00:00:00:00:02 age_seconds=-1` + "\n"},
		{"huge age", file(time.Now(), `{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1e300}`),
			`level=WARN msg="state file stale, ignored" file=%s written=`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := fdbstate.Path(dir, inst)
			var err error
			switch tt.content {
			case "":
			case "/":
				err = os.Mkdir(path, 0o700)
			default:
				err = os.WriteFile(path, []byte(tt.content), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			te, log := stateEngine(t, dir)
			if n := te.loadState(); n != 0 || len(te.fdb.Entries(te.Now())) != 0 {
				t.Errorf("restored %d entries: %+v", n, te.fdb.Entries(te.Now()))
			}
			if tt.log == "" {
				if log.Len() != 0 {
					t.Errorf("log: %q, want nothing", log)
				}
				return
			}
			if want := fmt.Sprintf(tt.log, path); !strings.HasPrefix(log.String(), want) || strings.Count(log.String(), "\n") != 1 {
				t.Errorf("log: %q, want one line %q", log, want)
			}
		})
	}
}

// Without a state_dir nothing is saved or restored, and nothing is said.
func TestStateWithoutStateDir(t *testing.T) {
	te, log := stateEngine(t, "")
	te.fdb.Learn(200, macRemote, peerB, 0)
	if err := te.saveState(); err != nil {
		t.Fatal(err)
	}
	if n := te.loadState(); n != 0 || log.Len() != 0 {
		t.Errorf("without state_dir: restored %d, log %q", n, log)
	}
}
