//go:build linux

package topo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrTimeout is returned (wrapped) by Proc.Wait when the process is still
// running at the deadline.
var ErrTimeout = errors.New("topo: timed out waiting for process")

// Proc is a process started by Host.Start. Its output is kept in memory
// for the life of the Proc.
type Proc struct {
	host string
	name string
	cmd  *exec.Cmd

	mu       sync.Mutex
	combined bytes.Buffer // stdout and stderr, interleaved
	stderr   bytes.Buffer

	done    chan struct{} // closed when Wait has returned
	waitErr error
}

// start launches path in namespace ns via `ip netns exec`, which execs
// path in place, so the PID we hold is the program's own.
func (l *Lab) start(host, ns, path string, args []string) (*Proc, error) {
	return l.startCmd(host, filepath.Base(path), "ip", append([]string{"netns", "exec", ns, path}, args...))
}

// startCmd launches bin with args as a process of the lab named name on
// host. bin must exec the program it runs in place (ip netns exec and
// nsenter do), so that the PID is the program's. Pdeathsig kills it if the
// test binary dies before Close could.
func (l *Lab) startCmd(host, name, bin string, args []string) (*Proc, error) {
	p := &Proc{host: host, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = procWriter{p, false}
	p.cmd.Stderr = procWriter{p, true}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = time.Second // don't hang on pipes held by grandchildren

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return nil, ErrClosed
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("topo: host %s: start %s: %w", host, name, err)
	}
	l.procs = append(l.procs, p)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

type procWriter struct {
	p      *Proc
	stderr bool
}

func (w procWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.combined.Write(b)
	if w.stderr {
		w.p.stderr.Write(b)
	}
	return len(b), nil
}

// String names the process for logs: "vtepd@a (pid 1234)".
func (p *Proc) String() string {
	return fmt.Sprintf("%s@%s (pid %d)", p.name, p.host, p.PID())
}

// PID is the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output returns everything the process wrote so far, stdout and stderr
// interleaved.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.combined.String()
}

// Stderr returns what the process wrote to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Signal sends sig to the process. Signalling a process that has exited
// returns os.ErrProcessDone.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code. A non-zero exit is not an error; death by a signal is (code -1),
// and so is still running at the deadline (wrapping ErrTimeout).
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return -1, fmt.Errorf("%v: %w after %v", p, ErrTimeout, timeout)
	}
	st := p.cmd.ProcessState
	if st == nil {
		return -1, fmt.Errorf("%v: %w", p, p.waitErr)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Errorf("%v: killed by signal %d (%v)", p, int(ws.Signal()), ws.Signal())
	}
	return st.ExitCode(), nil
}

// stop ends a running process: SIGTERM, then SIGKILL after grace.
func (p *Proc) stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%v: SIGTERM: %w", p, err)
	}
	if _, err := p.Wait(grace); !errors.Is(err, ErrTimeout) {
		return nil
	}
	// A Go program dumps its goroutines on SIGQUIT and exits: what hung.
	_ = p.Signal(syscall.SIGQUIT)
	if _, err := p.Wait(2 * time.Second); !errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%v: did not exit within %v of SIGTERM; killed by SIGQUIT, which wrote:\n%s", p, grace, tailLines(p.Stderr(), 400))
	}
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%v: SIGKILL: %w", p, err)
	}
	if _, err := p.Wait(5 * time.Second); errors.Is(err, ErrTimeout) {
		return err
	}
	return fmt.Errorf("%v: did not exit within %v of SIGTERM; killed", p, grace)
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
