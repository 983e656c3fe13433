package vtep

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vtepd/vtepd/fdb"
)

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *testEngine {
		te := newTestEngine(t)
		cfg := *te.cfg.Load()
		cfg.StateDir = dir
		te.cfg.Store(&cfg)
		return te
	}
	a := start()
	a.Now = func() int64 { return int64(100 * time.Second) }
	a.fdb.Learn(200, macRemote, peerB, int64(90*time.Second)) // 10 s old
	a.fdb.AddStatic(200, fdb.MAC{2, 0, 0, 0, 0, 0x55}, peerC)
	if err := a.saveState(); err != nil {
		t.Fatal(err)
	}

	b := start()
	if n := b.loadState(); n != 1 {
		t.Fatalf("restored %d entries, want the learned one", n)
	}
	entries := b.fdb.Entries(b.Now())
	if len(entries) != 1 || entries[0].MAC != macRemote || entries[0].Remote != peerB {
		t.Fatalf("after restart: %+v", entries)
	}
	if age := entries[0].Age; age < 10*time.Second || age > 15*time.Second {
		t.Errorf("restored age %v, want the saved 10s plus the time down", age)
	}

	path := statePath(b.cfg.Load())
	for _, bad := range []struct{ name, content string }{
		{"corrupt", "{not json"},
		{"stale", `{"version":1,"written":"2001-01-01T00:00:00Z","netns":"` + netnsID() + `","local":"198.18.0.1","port":4789,"entries":[{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1}]}`},
		{"good then bad", `{"version":1,"written":"` + time.Now().Format(time.RFC3339) + `","netns":"` + netnsID() + `","local":"198.18.0.1","port":4789,"entries":[{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1},{"vni":200,"mac":"zz","remote":"198.18.0.2","age_seconds":1}]}`},
		{"group remote", `{"version":1,"written":"` + time.Now().Format(time.RFC3339) + `","netns":"` + netnsID() + `","local":"198.18.0.1","port":4789,"entries":[{"vni":200,"mac":"02:00:00:00:00:02","remote":"239.1.1.1","age_seconds":1}]}`},
		{"huge age", `{"version":1,"written":"` + time.Now().Format(time.RFC3339) + `","netns":"` + netnsID() + `","local":"198.18.0.1","port":4789,"entries":[{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1e300}]}`},
		{"other instance", `{"version":1,"written":"` + time.Now().Format(time.RFC3339) + `","netns":"net:[1]","local":"198.18.0.1","port":4789,"entries":[{"vni":200,"mac":"02:00:00:00:00:02","remote":"198.18.0.2","age_seconds":1}]}`},
	} {
		if err := os.WriteFile(path, []byte(bad.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if n := start().loadState(); n != 0 {
			t.Errorf("%s state file: restored %d entries", bad.name, n)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, ".fdb-*")); len(files) != 0 {
		t.Errorf("temporary files left: %v", files)
	}
}
