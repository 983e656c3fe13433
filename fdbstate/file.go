package fdbstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vtepd/vtepd/fdb"
)

// Version is the format version that Save writes and Load accepts.
const Version = 1

// The reasons Load refuses a file. Load wraps them; test with errors.Is.
var (
	// ErrOtherInstance: the file was written by a vtepd in another network
	// namespace, or with another local address or port.
	ErrOtherInstance = errors.New("fdbstate: state file of another instance")
	// ErrVersion: the file is in a format version other than Version.
	ErrVersion = errors.New("fdbstate: state file of another version")
	// ErrFuture: the file's written time is later than now.
	ErrFuture = errors.New("fdbstate: state file written in the future")
	// ErrCorrupt: the file does not decode, or one of its entries is
	// wrong (then the error is an *EntryError).
	ErrCorrupt = errors.New("fdbstate: state file corrupt")
)

// maxAge is where ages saturate, some 292 years.
const maxAge = time.Duration(math.MaxInt64)

// Instance is the vtepd a state file belongs to.
type Instance struct {
	Netns string     // network namespace, as /proc/self/ns/net links it: "net:[4026531840]"; "" without /proc
	Local netip.Addr // local underlay address
	Port  uint16     // VXLAN UDP port
}

// Self is this process's instance for the local address and port.
func Self(local netip.Addr, port uint16) Instance {
	netns, _ := os.Readlink("/proc/self/ns/net") // "" on error
	return Instance{Netns: netns, Local: local, Port: port}
}

// Path is the state file of inst in the state directory dir.
func Path(dir string, inst Instance) string {
	return filepath.Join(dir, fmt.Sprintf("fdb-%s-%d.json", inst.Local, inst.Port))
}

// Entry is one learned FDB entry.
type Entry struct {
	VNI    uint32
	MAC    fdb.MAC
	Remote netip.Addr    // underlay address of the remote VTEP
	Age    time.Duration // since the entry was last learned or refreshed
}

// File is what Load read: the file's header and, when Load accepts the
// file, its entries.
type File struct {
	Version int
	Written time.Time // when Save wrote the file, by the wall clock
	// Entries are in the file's order, each with its age now: the age it
	// was saved with plus the time since Written.
	Entries []Entry
}

// An EntryError is an entry that makes Load refuse a file. It wraps
// ErrCorrupt and the reason, Err.
type EntryError struct {
	Index int    // the entry's place in the file, from 0
	MAC   string // its "mac", as written
	Field string // the field at fault, by its JSON name: "mac", "remote" or "age_seconds"
	Value any    // that field as written: a string, or the float64 age
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%v: entry %d (mac %q): %s %v: %v", ErrCorrupt, e.Index, e.MAC, e.Field, e.Value, e.Err)
}

func (e *EntryError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// fileV1 and entryV1 are the format, version 1: the JSON names and the
// types of the fields must not change (see "Format" in doc.go).
type fileV1 struct {
	Version int       `json:"version"`
	Written time.Time `json:"written"`
	Netns   string    `json:"netns"`
	Local   string    `json:"local"`
	Port    uint16    `json:"port"`
	Entries []entryV1 `json:"entries"`
}

type entryV1 struct {
	VNI        uint32  `json:"vni"`
	MAC        string  `json:"mac"`
	Remote     string  `json:"remote"`
	AgeSeconds float64 `json:"age_seconds"`
}

// Save writes entries to the state file of inst in dir, stamped with now,
// creating dir (0700) if need be, and returns the file's path. The file is
// written under a temporary name and renamed into place: it is replaced
// whole or not at all. Entries that Load would refuse make it refuse the
// whole file; the caller saves only entries it learned.
func Save(dir string, inst Instance, entries []Entry, now time.Time) (path string, err error) {
	f := fileV1{Version: Version, Written: now, Netns: inst.Netns, Local: inst.Local.String(), Port: inst.Port}
	for _, e := range entries {
		f.Entries = append(f.Entries, entryV1{VNI: e.VNI, MAC: e.MAC.String(), Remote: e.Remote.String(), AgeSeconds: e.Age.Seconds()})
	}
	data, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("fdbstate: %w", err)
	}
	path = Path(dir, inst)
	if err := writeFile(dir, path, data); err != nil {
		return "", fmt.Errorf("fdbstate: save: %w", err)
	}
	return path, nil
}

// writeFile writes data to path through a temporary file in dir, synced
// before the rename and the directory after it, so that a crash or power
// loss leaves the old file or the new one whole, never an empty one (the
// rename can reach the disk before the data otherwise).
func writeFile(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".fdb-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails after the rename, as it should
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load reads the state file at path and vets all of it for inst, taking
// now as the time of the restart. The error wraps fs.ErrNotExist when there
// is no file, one of ErrOtherInstance, ErrVersion, ErrFuture and ErrCorrupt
// when Load refuses the file, or the error of reading it. When Load refuses
// a file that decoded, the File still holds its Version (and, unless the
// version is wrong, its Written time) but no entries, so that the caller
// can say what it refused.
func Load(path string, inst Instance, now time.Time) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("fdbstate: %w", err)
	}
	return decode(data, inst, now)
}

func decode(data []byte, inst Instance, now time.Time) (File, error) {
	var f fileV1
	if err := json.Unmarshal(data, &f); err != nil {
		// Entries of another version may not decode as version 1's.
		var head struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(data, &head) == nil && head.Version != Version {
			return File{Version: head.Version}, fmt.Errorf("%w: version %d, want %d", ErrVersion, head.Version, Version)
		}
		return File{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Version != Version {
		return File{Version: f.Version}, fmt.Errorf("%w: version %d, want %d", ErrVersion, f.Version, Version)
	}
	out := File{Version: f.Version, Written: f.Written}
	if f.Netns != inst.Netns || f.Local != inst.Local.String() || f.Port != inst.Port {
		return out, fmt.Errorf("%w: netns %q, local %q, port %d", ErrOtherInstance, f.Netns, f.Local, f.Port)
	}
	down := now.Sub(f.Written) // saturates
	if down < 0 {
		return out, fmt.Errorf("%w: written %v, now %v", ErrFuture, f.Written, now)
	}
	entries := make([]Entry, 0, len(f.Entries))
	for i, fe := range f.Entries {
		e, err := inst.vet(fe, down)
		if err != nil {
			err.Index = i
			return out, err
		}
		entries = append(entries, e)
	}
	out.Entries = entries
	return out, nil
}

// vet checks one entry of a file of inst and ages it by down, the time
// since the file was written.
func (inst Instance) vet(fe entryV1, down time.Duration) (Entry, *EntryError) {
	bad := func(field string, value any, err error) (Entry, *EntryError) {
		return Entry{}, &EntryError{MAC: fe.MAC, Field: field, Value: value, Err: err}
	}
	mac, err := fdb.ParseMAC(fe.MAC)
	switch {
	case err != nil:
		return bad("mac", fe.MAC, err)
	case !mac.IsUnicast():
		return bad("mac", fe.MAC, errors.New("a group address"))
	case mac.IsZero():
		return bad("mac", fe.MAC, errors.New("zero"))
	}
	remote, err := netip.ParseAddr(fe.Remote)
	switch {
	case err != nil:
		return bad("remote", fe.Remote, err)
	case remote.Is4() != inst.Local.Is4():
		return bad("remote", fe.Remote, fmt.Errorf("of another address family than local %s", inst.Local))
	case remote == inst.Local:
		return bad("remote", fe.Remote, errors.New("the local address"))
	case !remote.IsGlobalUnicast():
		return bad("remote", fe.Remote, errors.New("not global unicast"))
	}
	if !(fe.AgeSeconds >= 0) || math.IsInf(fe.AgeSeconds, 0) { // also NaN
		return bad("age_seconds", fe.AgeSeconds, errors.New("negative or not finite"))
	}
	return Entry{VNI: fe.VNI, MAC: mac, Remote: remote, Age: addAge(fe.AgeSeconds, down)}, nil
}

// addAge is an age saved in seconds plus down, saturating at maxAge.
func addAge(seconds float64, down time.Duration) time.Duration {
	ns := seconds * float64(time.Second)
	if ns >= float64(maxAge) { // 2^63: every smaller float64 converts
		return maxAge
	}
	saved := time.Duration(ns)
	if saved > maxAge-down {
		return maxAge
	}
	return saved + down
}
