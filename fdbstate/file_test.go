package fdbstate

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtepd/vtepd/fdb"
)

var (
	self4 = Instance{Netns: "net:[4026531840]", Local: netip.MustParseAddr("198.18.0.1"), Port: 4789}
	self6 = Instance{Netns: "net:[4026531840]", Local: netip.MustParseAddr("2001:db8::1"), Port: 4789}
	// now is when the tests restart; files are written 10s before.
	now     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	written = now.Add(-10 * time.Second)

	macA = fdb.MAC{0x02, 0, 0, 0, 0, 0x02}
	macB = fdb.MAC{0x02, 0, 0, 0, 0, 0x03}
)

// header is the start of a version 1 file of inst written at w, up to
// and with the opening bracket of its entries.
func header(inst Instance, w time.Time) string {
	return fmt.Sprintf(`{"version":1,"written":%q,"netns":%q,"local":%q,"port":%d,"entries":[`,
		w.Format(time.RFC3339Nano), inst.Netns, inst.Local, inst.Port)
}

// v1 is a version 1 file of self4 written 10s before now with entries,
// each given as JSON.
func v1(entries ...string) string {
	return header(self4, written) + strings.Join(entries, ",") + "]}"
}

// entry is an entry of a file: vni 200 and the given fields, as JSON.
func entry(mac, remote string, age string) string {
	return fmt.Sprintf(`{"vni":200,"mac":%q,"remote":%q,"age_seconds":%s}`, mac, remote, age)
}

// addrs compares netip.Addrs for cmp.Diff.
var addrs = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

var good = entry("02:00:00:00:00:02", "198.18.0.2", "1")

func TestLoad(t *testing.T) {
	for _, tt := range []struct {
		name    string
		content string
		inst    Instance // self4 if not set
		want    File     // for an error, the header Load still returns
		err     error    // the sentinel, or nil
		field   string   // for an *EntryError: the field at fault
		index   int      // and the entry
	}{
		{name: "one entry", content: v1(good),
			want: File{1, written, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), 11 * time.Second}}}},
		{name: "entries in the file's order, fractional ages",
			content: v1(entry("02:00:00:00:00:03", "198.18.0.3", "0.25"), entry("02-00-00-00-00-02", "198.18.0.2", "2.5")),
			want: File{1, written, []Entry{
				{200, macB, netip.MustParseAddr("198.18.0.3"), 10250 * time.Millisecond},
				{200, macA, netip.MustParseAddr("198.18.0.2"), 12500 * time.Millisecond},
			}}},
		{name: "IPv6", inst: self6, content: header(self6, written) + entry("02:00:00:00:00:02", "2001:db8::2", "0") + "]}",
			want: File{1, written, []Entry{{200, macA, netip.MustParseAddr("2001:db8::2"), 10 * time.Second}}}},
		{name: "no entries", content: v1(), want: File{1, written, []Entry{}}},
		{name: "null entries", content: strings.TrimSuffix(header(self4, written), "[") + "null}", want: File{1, written, []Entry{}}},
		{name: "unknown fields ignored", content: `{"extra":[1],` + v1(good)[1:],
			want: File{1, written, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), 11 * time.Second}}}},
		{name: "written now", content: header(self4, now) + good + "]}",
			want: File{1, now, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), time.Second}}}},
		// Stale entries are the caller's to skip: Load only ages them.
		{name: "written long ago", content: header(self4, now.AddDate(-24, 0, 0)) + good + "]}",
			want: File{1, now.AddDate(-24, 0, 0), []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), now.Sub(now.AddDate(-24, 0, 0)) + time.Second}}}},
		{name: "huge age saturates", content: v1(entry("02:00:00:00:00:02", "198.18.0.2", "1e300")),
			want: File{1, written, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), maxAge}}}},
		{name: "time down saturates", content: strings.Replace(v1(good), written.Format(time.RFC3339Nano), "0001-01-01T00:00:00Z", 1),
			want: File{1, time.Time{}, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), maxAge}}}},

		{name: "not JSON", content: "{not json", err: ErrCorrupt},
		{name: "empty", content: "", err: ErrCorrupt},
		{name: "truncated", content: `{"version": 1, "entries": [garbage`, err: ErrCorrupt},
		{name: "field of the wrong type", content: strings.Replace(v1(good), `"port":4789`, `"port":"4789"`, 1), err: ErrCorrupt},
		{name: "age too large for a float64", content: v1(entry("02:00:00:00:00:02", "198.18.0.2", "1e400")), err: ErrCorrupt},

		{name: "no version", content: `{"written":"2025-03-01T12:00:00Z"}`, err: ErrVersion},
		{name: "version 2", content: strings.Replace(v1(good), `"version":1`, `"version":2`, 1), err: ErrVersion, want: File{Version: 2}},
		{name: "version 2, entries of another shape", content: `{"version":2,"entries":{"200":["02:00:00:00:00:02"]}}`,
			err: ErrVersion, want: File{Version: 2}},

		{name: "other netns", content: strings.Replace(v1(good), self4.Netns, "net:[1]", 1), err: ErrOtherInstance, want: File{Version: 1, Written: written}},
		{name: "no netns", content: strings.Replace(v1(good), self4.Netns, "", 1), err: ErrOtherInstance, want: File{Version: 1, Written: written}},
		{name: "other local", content: strings.Replace(v1(good), `"local":"198.18.0.1"`, `"local":"198.18.0.9"`, 1), err: ErrOtherInstance, want: File{Version: 1, Written: written}},
		{name: "other port", content: strings.Replace(v1(good), `"port":4789`, `"port":8472`, 1), err: ErrOtherInstance, want: File{Version: 1, Written: written}},
		{name: "other family", inst: self6, content: v1(good), err: ErrOtherInstance, want: File{Version: 1, Written: written}},

		{name: "future", content: header(self4, now.Add(time.Second)) + good + "]}", err: ErrFuture, want: File{Version: 1, Written: now.Add(time.Second)}},

		{name: "good then bad MAC", content: v1(good, entry("zz", "198.18.0.2", "1")), err: ErrCorrupt, field: "mac", index: 1},
		{name: "MAC of mixed separators", content: v1(entry("02:00-00:00:00:02", "198.18.0.2", "1")), err: ErrCorrupt, field: "mac"},
		{name: "group MAC", content: v1(entry("01:00:5e:00:00:01", "198.18.0.2", "1")), err: ErrCorrupt, field: "mac"},
		{name: "broadcast MAC", content: v1(entry("ff:ff:ff:ff:ff:ff", "198.18.0.2", "1")), err: ErrCorrupt, field: "mac"},
		{name: "zero MAC", content: v1(entry("00:00:00:00:00:00", "198.18.0.2", "1")), err: ErrCorrupt, field: "mac"},
		{name: "no MAC", content: v1(`{"vni":200,"remote":"198.18.0.2","age_seconds":1}`), err: ErrCorrupt, field: "mac"},
		{name: "remote not an address", content: v1(entry("02:00:00:00:00:02", "vtep-b", "1")), err: ErrCorrupt, field: "remote"},
		{name: "no remote", content: v1(`{"vni":200,"mac":"02:00:00:00:00:02","age_seconds":1}`), err: ErrCorrupt, field: "remote"},
		{name: "IPv6 remote of an IPv4 local", content: v1(entry("02:00:00:00:00:02", "2001:db8::2", "1")), err: ErrCorrupt, field: "remote"},
		{name: "IPv4-mapped remote", content: v1(entry("02:00:00:00:00:02", "::ffff:198.18.0.2", "1")), err: ErrCorrupt, field: "remote"},
		{name: "IPv4 remote of an IPv6 local", inst: self6, content: header(self6, written) + good + "]}", err: ErrCorrupt, field: "remote"},
		{name: "remote is local", content: v1(entry("02:00:00:00:00:02", "198.18.0.1", "1")), err: ErrCorrupt, field: "remote"},
		{name: "group remote", content: v1(entry("02:00:00:00:00:02", "239.1.1.1", "1")), err: ErrCorrupt, field: "remote"},
		{name: "unspecified remote", content: v1(entry("02:00:00:00:00:02", "0.0.0.0", "1")), err: ErrCorrupt, field: "remote"},
		{name: "loopback remote", content: v1(entry("02:00:00:00:00:02", "127.0.0.1", "1")), err: ErrCorrupt, field: "remote"},
		{name: "link-local remote", content: v1(entry("02:00:00:00:00:02", "169.254.0.2", "1")), err: ErrCorrupt, field: "remote"},
		{name: "broadcast remote", content: v1(entry("02:00:00:00:00:02", "255.255.255.255", "1")), err: ErrCorrupt, field: "remote"},
		{name: "IPv6 link-local remote", inst: self6, content: header(self6, written) + entry("02:00:00:00:00:02", "fe80::2", "1") + "]}", err: ErrCorrupt, field: "remote"},
		{name: "negative age", content: v1(good, good, entry("02:00:00:00:00:02", "198.18.0.2", "-1")), err: ErrCorrupt, field: "age_seconds", index: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inst := tt.inst
			if inst == (Instance{}) {
				inst = self4
			}
			if tt.field != "" { // the header was read
				tt.want = File{Version: 1, Written: written}
			}
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path, inst, now)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Load: %v, want %v", err, tt.err)
			}
			var bad *EntryError
			if errors.As(err, &bad) != (tt.field != "") {
				t.Fatalf("Load: %v; want an *EntryError: %v", err, tt.field != "")
			}
			if bad != nil && (bad.Field != tt.field || bad.Index != tt.index) {
				t.Errorf("entry error of field %q of entry %d, want %q of %d: %v", bad.Field, bad.Index, tt.field, tt.index, err)
			}
			if diff := cmp.Diff(tt.want, got, addrs); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

// A file written before this package existed (vtepd's own, from the
// commit before) loads, and Save writes it again byte for byte.
func TestFormatUnchanged(t *testing.T) {
	const path = "testdata/v1-before-fdbstate.json"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inst := Instance{Netns: "net:[4026531833]", Local: netip.MustParseAddr("198.18.0.1"), Port: 4789}
	w, err := time.Parse(time.RFC3339Nano, "2026-12-06T11:37:40.732700906+01:00")
	if err != nil {
		t.Fatal(err)
	}
	saved := []Entry{
		{200, macA, netip.MustParseAddr("198.18.0.2"), 10 * time.Second},
		{200, fdb.MAC{0x02, 0xab, 0xcd, 0, 0, 3}, netip.MustParseAddr("198.18.0.3"), 1500 * time.Millisecond},
		{200, fdb.MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}, netip.MustParseAddr("198.18.7.9"), 123456789},
	}
	got, err := Load(path, inst, w.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Written.Equal(w) {
		t.Errorf("written %v, want %v", got.Written, w)
	}
	for i, e := range got.Entries {
		saved := saved[i]
		saved.Age += 5 * time.Second
		if e != saved {
			t.Errorf("entry %d: %+v, want %+v", i, e, saved)
		}
	}
	if len(got.Entries) != len(saved) {
		t.Errorf("%d entries, want %d", len(got.Entries), len(saved))
	}

	dir := t.TempDir()
	p, err := Save(dir, inst, saved, w)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(old) {
		t.Errorf("Save wrote\n%s\nwant, as vtepd wrote before,\n%s", data, old)
	}
}

func TestSaveLoad(t *testing.T) {
	for _, tt := range []struct {
		name    string
		inst    Instance
		entries []Entry
	}{
		{"none", self4, nil},
		{"IPv4", self4, []Entry{
			{200, macA, netip.MustParseAddr("198.18.0.2"), 10 * time.Second},
			{300, macB, netip.MustParseAddr("198.18.0.3"), 0},
			{16777215, macB, netip.MustParseAddr("203.0.113.9"), 1500 * time.Millisecond},
		}},
		{"IPv6", self6, []Entry{{200, macA, netip.MustParseAddr("2001:db8::2"), 90 * time.Millisecond}}},
		{"saturated age", self4, []Entry{{200, macA, netip.MustParseAddr("198.18.0.2"), maxAge}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state") // Save creates it
			path, err := Save(dir, tt.inst, tt.entries, written)
			if err != nil {
				t.Fatal(err)
			}
			if path != Path(dir, tt.inst) {
				t.Errorf("saved to %s, want %s", path, Path(dir, tt.inst))
			}
			got, err := Load(path, tt.inst, now)
			if err != nil {
				t.Fatal(err)
			}
			want := []Entry{}
			for _, e := range tt.entries {
				e.Age = addAge(e.Age.Seconds(), 10*time.Second)
				want = append(want, e)
			}
			if diff := cmp.Diff(File{Version, written, want}, got, addrs); diff != "" {
				t.Errorf("Load after Save (-want +got):\n%s", diff)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("state_dir created with mode %v, %v; want 0700", fi.Mode().Perm(), err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("state file of mode %v, %v; want 0600", fi.Mode().Perm(), err)
			}
			// Saving again replaces the file, and leaves no temporary one.
			if _, err := Save(dir, tt.inst, nil, now); err != nil {
				t.Fatal(err)
			}
			if got, err := Load(path, tt.inst, now); err != nil || len(got.Entries) != 0 {
				t.Errorf("after saving nothing: %d entries, %v", len(got.Entries), err)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 1 {
				t.Errorf("files in state_dir: %v, want the state file only", files)
			}
		})
	}
}

func TestSaveFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		if _, err := Save(dir, self4, nil, now); err == nil || !strings.HasPrefix(err.Error(), "fdbstate: save: ") {
			t.Errorf("Save into %s: %v, want an error", dir, err)
		}
	}
}

func TestLoadFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none.json"), self4, now); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of no file: %v, want fs.ErrNotExist", err)
	}
	_, err := Load(dir, self4, now) // a directory: unreadable
	for _, sentinel := range []error{fs.ErrNotExist, ErrCorrupt, ErrVersion, ErrOtherInstance, ErrFuture} {
		if err == nil || errors.Is(err, sentinel) {
			t.Errorf("Load of a directory: %v, want an error that is not %v", err, sentinel)
		}
	}
}

// Ages that JSON cannot carry, checked all the same.
func TestVetAge(t *testing.T) {
	for _, age := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1e-9, -math.MaxFloat64} {
		_, err := self4.vet(entryV1{200, "02:00:00:00:00:02", "198.18.0.2", age}, 0)
		if err == nil || err.Field != "age_seconds" {
			t.Errorf("age %v: %v, want an error of age_seconds", age, err)
		}
	}
	if e, err := self4.vet(entryV1{200, "02:00:00:00:00:02", "198.18.0.2", math.Copysign(0, -1)}, 0); err != nil || e.Age != 0 {
		t.Errorf("age -0: %v, %v; want 0", e.Age, err)
	}
}

func TestAddAge(t *testing.T) {
	for _, tt := range []struct {
		seconds float64
		down    time.Duration
		want    time.Duration
	}{
		{0, 0, 0},
		{1.5, time.Second, 2500 * time.Millisecond},
		{0.123456789, 0, 123456789},
		{9.2e9, 0, 9.2e9 * time.Second},
		{9.2e9, 23e15, 9.223e18},
		{9.2e9, 24e15, maxAge},
		{9.3e9, 0, maxAge},
		{1, maxAge, maxAge},
		{1, maxAge - time.Second, maxAge},
		{1, maxAge - time.Second - 1, maxAge - 1},
		{1e300, 0, maxAge},
	} {
		if got := addAge(tt.seconds, tt.down); got != tt.want {
			t.Errorf("addAge(%v, %v) = %v, want %v", tt.seconds, tt.down, got, tt.want)
		}
	}
	// Around 2^63 ns, where a conversion could overflow.
	s := maxAge.Seconds()
	for range 100 {
		s = math.Nextafter(s, 0)
	}
	for range 200 {
		s = math.Nextafter(s, math.Inf(1))
		if got := addAge(s, 0); got < maxAge-time.Millisecond {
			t.Fatalf("addAge(%v, 0) = %d, want about %d", s, got, maxAge)
		}
	}
}

func TestPath(t *testing.T) {
	for _, tt := range []struct {
		inst Instance
		want string
	}{
		{self4, "/var/lib/vtepd/fdb-198.18.0.1-4789.json"},
		{self6, "/var/lib/vtepd/fdb-2001:db8::1-4789.json"},
		{Instance{Netns: "net:[1]", Local: self4.Local, Port: 8472}, "/var/lib/vtepd/fdb-198.18.0.1-8472.json"},
	} {
		if got := Path("/var/lib/vtepd", tt.inst); got != tt.want {
			t.Errorf("Path(%+v) = %s, want %s", tt.inst, got, tt.want)
		}
	}
}

func TestSelf(t *testing.T) {
	got := Self(self4.Local, 4789)
	if got.Local != self4.Local || got.Port != 4789 {
		t.Errorf("Self = %+v", got)
	}
	if runtime.GOOS == "linux" && !strings.HasPrefix(got.Netns, "net:[") {
		t.Errorf("Self's netns %q, want net:[inode]", got.Netns)
	}
}
