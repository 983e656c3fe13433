// Package frrtest runs real BGP speakers for tests: FRR's zebra and bgpd
// (Debian's frr) and gobgpd (Debian's gobgpd), each inside a lab host's
// network namespace, with their files in a directory of the test's own,
// and stopped by PID when the test ends. It is for tests only.
//
// FRR runs as its own user: each daemon starts as root, reads its
// configuration and drops to frr:frr (-u, -g), so the configuration, pid
// and socket directories are owned by frr. -N <namespace> gives the
// instance a path space of its own, /var/run/frr/<namespace>/, where
// vtysh -N finds its sockets; that directory is created and removed here.
// The vty TCP listeners are off (-P 0): vtysh goes through the sockets.
package frrtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv set to "1" makes a test that cannot run fail instead of
// skipping, as in internal/topo.
const RequireEnv = "VTEPD_REQUIRE_PRIVILEGED"

// Dir holds FRR's daemons in Debian.
const Dir = "/usr/lib/frr"

// need skips (or fails, as root or with RequireEnv) when a program is
// missing, and under -short.
func need(t testing.TB, pkg string, paths ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv(RequireEnv) == "1" || os.Geteuid() == 0 {
				t.Fatalf("%s not found: apt-get install -y %s (make deps)", p, pkg)
			}
			t.Skipf("%s not found; install %s, or set %s=1 to fail instead", p, pkg, RequireEnv)
		}
	}
}

// output collects a daemon's stdout and stderr.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// daemon is one process started in a namespace, by nsenter, which execs
// it: the PID is the daemon's.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *output
}

func start(ns, name, bin string, args ...string) (*daemon, error) {
	d := &daemon{name: name, done: make(chan struct{}), out: &output{}}
	d.cmd = exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + ns, bin}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = procAttr()
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	return d, nil
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits (SIGKILL after grace).
func (d *daemon) stop(sig syscall.Signal, grace time.Duration) {
	if d.exited() {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(grace):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// FRR is zebra and bgpd in one namespace.
type FRR struct {
	t                   testing.TB
	NS                  string
	Dir                 string // configuration and pid files, owned by frr
	run                 string // /var/run/frr/<NS>
	zebraConf, bgpdConf string

	mu          sync.Mutex
	zebra, bgpd *daemon
	uid, gid    int
}

// StartFRR starts zebra and then bgpd in namespace ns, with zebraConf and
// bgpdConf as their configurations, and waits until bgpd answers vtysh.
func StartFRR(t testing.TB, ns, zebraConf, bgpdConf string) *FRR {
	t.Helper()
	need(t, "frr", Dir+"/zebra", Dir+"/bgpd", "/usr/bin/vtysh")
	f := &FRR{t: t, NS: ns, run: "/var/run/frr/" + ns, zebraConf: zebraConf, bgpdConf: bgpdConf}
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("frrtest: %v", err)
	}
	f.uid, _ = strconv.Atoi(u.Uid)
	f.gid, _ = strconv.Atoi(u.Gid)
	// Not t.TempDir: its parent is root's alone, and frr must reach it.
	if f.Dir, err = os.MkdirTemp("", "frrtest-"+ns+"-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("FRR in %s:\n%s", ns, f.Output())
		}
		os.RemoveAll(f.Dir)
		os.RemoveAll(f.run)
	})
	if err := os.Mkdir(f.run, 0o755); err != nil {
		t.Fatalf("frrtest: %v (another instance in namespace %s?)", err, ns)
	}
	for _, p := range []string{f.Dir, f.run} {
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(f.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("zebra.conf", zebraConf)
	f.write("bgpd.conf", bgpdConf)
	f.write("vtysh.conf", "")
	f.Start()
	return f
}

func (f *FRR) write(name, text string) {
	f.t.Helper()
	p := filepath.Join(f.Dir, name)
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chown(p, f.uid, f.gid); err != nil {
		f.t.Fatal(err)
	}
}

func (f *FRR) args(d string) []string {
	return []string{"-N", f.NS, "-f", filepath.Join(f.Dir, d+".conf"), "-i", filepath.Join(f.Dir, d+".pid"),
		"-u", "frr", "-g", "frr", "-P", "0", "--log", "stdout"}
}

// Start runs zebra, then bgpd, and waits until bgpd answers (after Stop
// or Kill: a restart, on the same files).
func (f *FRR) Start() {
	f.t.Helper()
	z, err := start(f.NS, "zebra", Dir+"/zebra", f.args("zebra")...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.zebra = z
	f.mu.Unlock()
	f.waitFile(z, filepath.Join(f.run, "zserv.api"))
	b, err := start(f.NS, "bgpd", Dir+"/bgpd", f.args("bgpd")...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.bgpd = b
	f.mu.Unlock()
	f.waitFile(b, filepath.Join(f.run, "bgpd.vty"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := f.Vtysh("show bgp summary")
		if err == nil {
			return
		}
		if time.Now().After(deadline) || b.exited() {
			f.t.Fatalf("frrtest: bgpd in %s does not answer: %v\n%s", f.NS, err, f.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *FRR) waitFile(d *daemon, p string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if d.exited() {
			f.t.Fatalf("frrtest: %s in %s exited:\n%s", d.name, f.NS, d.out)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("frrtest: %s in %s: no %s", d.name, f.NS, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops bgpd and zebra with SIGTERM, by PID: bgpd sends its peers a
// Cease, and zebra removes what it installed.
func (f *FRR) Stop() { f.stop(syscall.SIGTERM) }

// Kill stops them with SIGKILL.
func (f *FRR) Kill() { f.stop(syscall.SIGKILL) }

func (f *FRR) stop(sig syscall.Signal) {
	f.mu.Lock()
	z, b := f.zebra, f.bgpd
	f.zebra, f.bgpd = nil, nil
	f.mu.Unlock()
	for _, d := range []*daemon{b, z} {
		if d != nil {
			d.cmd.Process.Signal(syscall.SIGCONT) // a frozen daemon must see the signal
			d.stop(sig, 5*time.Second)
		}
	}
	// A daemon killed leaves its sockets; a restart makes them again.
	if sig == syscall.SIGKILL {
		entries, _ := os.ReadDir(f.run)
		for _, e := range entries {
			os.Remove(filepath.Join(f.run, e.Name()))
		}
	}
}

// SignalBGPD sends sig to bgpd (SIGSTOP and SIGCONT freeze and thaw it:
// a peer that stops answering without closing its sessions).
func (f *FRR) SignalBGPD(sig syscall.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bgpd == nil || f.bgpd.exited() {
		f.t.Fatalf("frrtest: bgpd in %s is not running", f.NS)
	}
	if err := f.bgpd.cmd.Process.Signal(sig); err != nil {
		f.t.Fatalf("frrtest: bgpd in %s: %v", f.NS, err)
	}
}

// Vtysh runs vtysh -N on the instance with each command, and returns its
// standard output.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	args := []string{"-N", f.NS, "--config_dir", f.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	cmd := exec.Command("vtysh", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("vtysh %s: %v: %s", strings.Join(cmds, "; "), err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return stdout.String(), fmt.Errorf("vtysh %s: timed out", strings.Join(cmds, "; "))
	}
	return stdout.String(), nil
}

// Output is what the daemons printed, zebra's then bgpd's, of their
// current run.
func (f *FRR) Output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, d := range []*daemon{f.zebra, f.bgpd} {
		if d != nil {
			fmt.Fprintf(&b, "--- %s:\n%s", d.name, tail(d.out.String(), 4000))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// GoBGP is gobgpd in one namespace, its gRPC API on the namespace's
// loopback, which the gobgp client reaches from there.
type GoBGP struct {
	t  testing.TB
	NS string
	d  *daemon
}

// StartGoBGP runs gobgpd with conf (TOML) in namespace ns.
func StartGoBGP(t testing.TB, ns, conf string) *GoBGP {
	t.Helper()
	need(t, "gobgpd", "/usr/bin/gobgpd", "/usr/bin/gobgp")
	p := filepath.Join(t.TempDir(), "gobgpd.toml")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := start(ns, "gobgpd", "/usr/bin/gobgpd", "-f", p, "-p", "--api-hosts", "127.0.0.1:50051", "--pprof-disable")
	if err != nil {
		t.Fatal(err)
	}
	g := &GoBGP{t: t, NS: ns, d: d}
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("gobgpd in %s:\n%s", ns, tail(d.out.String(), 4000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := g.Client("global")
		if err == nil {
			return g
		}
		if time.Now().After(deadline) || d.exited() {
			t.Fatalf("frrtest: gobgpd in %s does not answer: %v\n%s", ns, err, d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client runs the gobgp client in the namespace with args.
func (g *GoBGP) Client(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + g.NS, "/usr/bin/gobgp", "-u", "127.0.0.1", "-p", "50051"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gobgp %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
