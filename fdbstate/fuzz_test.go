package fdbstate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary files to Load, for an IPv4 and an IPv6
// instance. It must never panic; a refusal is one of the sentinels; a
// file it accepts holds only entries that the engine may learn without
// checking again, and round-trips: Save writes those entries, and Load
// gives them back, with ages as exact as seconds in a float64 can be.
//
// The seeds are the files of TestLoad, good and bad, and the file vtepd
// wrote before this package existed.
func FuzzLoad(f *testing.F) {
	old, err := os.ReadFile("testdata/v1-before-fdbstate.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(old)
	for _, seed := range []string{
		v1(good),
		v1(),
		v1(good, entry("02:00:00:00:00:03", "198.18.0.3", "0.123456789"), entry("52-54-00-12-34-56", "203.0.113.9", "1e300")),
		header(self6, written) + entry("02:00:00:00:00:02", "2001:db8::2", "0.5") + "]}",
		header(self4, now) + good + "]}",
		header(self4, now.AddDate(-24, 0, 0)) + good + "]}",
		header(self4, now.Add(1)) + good + "]}",
		`{"version": 1, "entries": [garbage`,
		`{"version":2,"entries":{"200":["02:00:00:00:00:02"]}}`,
		v1(good, entry("zz", "198.18.0.2", "1")),
		v1(entry("01:00:5e:00:00:01", "198.18.0.2", "1")),
		v1(entry("02:00:00:00:00:02", "::ffff:198.18.0.2", "1")),
		v1(entry("02:00:00:00:00:02", "198.18.0.1", "1")),
		v1(entry("02:00:00:00:00:02", "198.18.0.2", "-1")),
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "in.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, inst := range []Instance{self4, self6} {
			got, err := Load(path, inst, now)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrOtherInstance) && !errors.Is(err, ErrFuture) {
					t.Fatalf("Load: %v, not one of the sentinels", err)
				}
				if got.Entries != nil {
					t.Fatalf("Load refused the file (%v) but returned %d entries", err, len(got.Entries))
				}
				continue
			}
			for i, e := range got.Entries {
				r := e.Remote
				if !e.MAC.IsUnicast() || e.MAC.IsZero() || r.Is4() != inst.Local.Is4() || r == inst.Local || !r.IsGlobalUnicast() || e.Age < 0 {
					t.Fatalf("Load accepted entry %d: %+v", i, e)
				}
			}

			out := filepath.Join(dir, "out")
			p, err := Save(out, inst, got.Entries, now)
			if err != nil {
				t.Fatalf("Save of what Load accepted: %v", err)
			}
			again, err := Load(p, inst, now)
			if err != nil {
				t.Fatalf("Load of what Save wrote from what Load accepted: %v", err)
			}
			if !again.Written.Equal(now) || len(again.Entries) != len(got.Entries) {
				t.Fatalf("round trip: written %v, %d entries; want %v, %d", again.Written, len(again.Entries), now, len(got.Entries))
			}
			for i, e := range again.Entries {
				want := got.Entries[i]
				// A float64 of seconds holds about 16 digits; its
				// conversions back to nanoseconds truncate.
				tolerance := want.Age>>45 + 2
				if d := e.Age - want.Age; d > tolerance || d < -tolerance {
					t.Fatalf("round trip of entry %d: age %d, want %d (±%d)", i, e.Age, want.Age, tolerance)
				}
				e.Age = want.Age
				if e != want {
					t.Fatalf("round trip of entry %d: %+v, want %+v", i, e, want)
				}
			}
		}
	})
}
