package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Preflight checks what a run needs before anything is built: root (for
// network namespaces; target is the make target to suggest, "bench" or
// "soak"), every program in tools on the PATH, and an executable vtepd
// binary at vtepd. It returns vtepd's absolute path, and the path of this
// binary, which the harness re-executes in the lab as its hidden
// subcommands.
func Preflight(target string, tools []string, vtepd string) (vtepdPath, self string, err error) {
	if os.Geteuid() != 0 {
		return "", "", errors.New("needs root for network namespaces: sudo make " + target)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return "", "", fmt.Errorf("%s not found (make deps installs it): %w", tool, err)
		}
	}
	path, err := filepath.Abs(vtepd)
	if err != nil {
		return "", "", err
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("vtepd binary %s missing or not executable (make build)", path)
	}
	if self, err = os.Executable(); err != nil {
		return "", "", fmt.Errorf("finding own binary: %w", err)
	}
	return path, self, nil
}
