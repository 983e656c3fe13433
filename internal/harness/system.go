package harness

import (
	"os/exec"
	"runtime"
	"strings"
)

// System describes where a run was made, as both harnesses write it into
// their results.
type System struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	Commit string `json:"commit,omitempty"` // of the work tree, "-dirty" if modified
}

// ThisSystem describes this machine and the work tree the harness runs
// from (git, when there is one).
func ThisSystem() System {
	s := System{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kernel: kernelRelease()}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		s.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			s.Commit += "-dirty"
		}
	}
	return s
}
