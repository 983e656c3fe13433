package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type CPUTimes struct {
	Busy  uint64 // user + nice + system + irq + softirq + steal
	Idle  uint64 // idle + iowait
	Total uint64 // Busy + Idle
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat. guest and
// guest_nice are left out: the kernel already counts them in user and nice.
func ParseProcStat(data []byte) (CPUTimes, error) {
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return CPUTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9: %q", len(f), line)
		}
		var v [8]uint64 // user nice system idle iowait irq softirq steal
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("/proc/stat: field %d of cpu line: %w", i+1, err)
			}
			v[i] = n
		}
		t := CPUTimes{
			Busy: v[0] + v[1] + v[2] + v[5] + v[6] + v[7],
			Idle: v[3] + v[4],
		}
		t.Total = t.Busy + t.Idle
		return t, nil
	}
	return CPUTimes{}, fmt.Errorf("/proc/stat: %w: no aggregate cpu line", ErrNoData)
}

// BusyPercent is the share of CPU time that was busy between two
// readings, in percent; 0 if the clock did not move.
func BusyPercent(a, b CPUTimes) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
}

// BackgroundBusy returns the percentage of the machine's CPU time that was
// busy over one second, for a harness to read while it does nothing.
func BackgroundBusy() (float64, error) {
	read := func() (CPUTimes, error) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return CPUTimes{}, err
		}
		return ParseProcStat(b)
	}
	t0, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	t1, err := read()
	if err != nil {
		return 0, err
	}
	return BusyPercent(t0, t1), nil
}

// Chown gives files written under sudo to the user who ran sudo, so that
// results can be committed without root.
func Chown(paths ...string) {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil {
		return
	}
	for _, p := range paths {
		_ = os.Chown(p, uid, gid)
	}
}
