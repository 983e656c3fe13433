//go:build linux

package topo

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a`:             "/tmp/a",
		`/tmp/a\040b`:        "/tmp/a b",
		`/tmp/a\134b\011c`:   "/tmp/a\\b\tc",
		`/tmp/trailing\04`:   `/tmp/trailing\04`,
		`/tmp/not\9octal`:    `/tmp/not\9octal`,
		`/tmp/end\040`:       "/tmp/end ",
		`\040leading\040two`: " leading two",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcStat(t *testing.T) {
	ppid, start, state, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ppid != os.Getppid() || start == 0 || state == 'Z' {
		t.Errorf("procStat(self) = ppid %d, start %d, state %c; want ppid %d", ppid, start, state, os.Getppid())
	}
}

// TestBusyboxTar checks the image ImportBusybox builds: the static busybox
// and a link to it for each applet, which `docker run ... sleep` needs.
func TestBusyboxTar(t *testing.T) {
	if _, err := busyboxPath(); err != nil {
		t.Skip(err)
	}
	img, err := busyboxTar()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(img))
	entries := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	if h := entries["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Size < 100000 {
		t.Errorf("bin/busybox: %+v", h)
	}
	for _, applet := range []string{"bin/sh", "bin/sleep", "bin/ping", "usr/bin/nc"} {
		if h := entries[applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/busybox" {
			t.Errorf("%s: %+v, want a link to /bin/busybox", applet, h)
		}
	}
	if h := entries["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/: %+v", h)
	}
}

// TestIntegrationDockerd runs a real Docker engine in a lab host: a named
// bridge network with its MTU, a container on it, Docker's iptables rules
// in the host's namespace. Then it kills dockerd the hard way, as a crash
// would, and checks that Close still leaves nothing behind: no process,
// mount, shim socket, cgroup or file.
func TestIntegrationDockerd(t *testing.T) {
	t.Parallel()
	RequireDocker(t)
	l := NewT(t, "tdk")
	h, err := l.AddHost("a", netip.MustParsePrefix("198.18.0.1/24"), 1500)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.StartDockerd()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ImportBusybox("topo/busybox"); err != nil {
		t.Fatal(err)
	}
	gw := netip.MustParseAddr("198.19.7.1")
	n := DockerNetwork{Name: "net7", Bridge: "vx7", MTU: 1400, Subnet: netip.MustParsePrefix("198.19.7.0/24"), Gateway: gw}
	if err := d.Network(n); err != nil {
		t.Fatal(err)
	}
	c, err := d.Run("c1", "net7", netip.MustParseAddr("198.19.7.10"), "topo/busybox", "sleep", "86400")
	if err != nil {
		t.Fatal(err)
	}

	br, err := h.Link("vx7")
	if err != nil {
		t.Fatal(err)
	}
	if br.MTU != n.MTU || c.Net.MTU != n.MTU {
		t.Errorf("MTU of bridge %d, of the container's eth0 %d; want %d", br.MTU, c.Net.MTU, n.MTU)
	}
	if c.Addr.String() != "198.19.7.10/24" {
		t.Errorf("container address %v, want 198.19.7.10/24", c.Addr)
	}
	mac, err := c.Net.MAC()
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != c.MAC.String() {
		t.Errorf("eth0 has MAC %v, docker inspect says %v", mac, c.MAC)
	}
	// The three ways in: docker exec, the attached namespace, nsenter.
	if out, err := c.Exec("ping", "-c", "1", "-W", "2", gw.String()); err != nil {
		t.Errorf("docker exec ping: %v\n%s", err, out)
	}
	if err := c.Net.Ping(gw, 1, 56, true); err != nil {
		t.Error(err)
	}
	if out, err := c.Nsenter("ip", "-o", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(string(out), "198.19.7.10/24") {
		t.Errorf("nsenter ip addr: %v\n%s", err, out)
	}
	rules, err := h.Exec("iptables", "-S", "FORWARD")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-P FORWARD DROP", "-A FORWARD -i vx7 -o vx7 -j ACCEPT"} {
		if !strings.Contains(string(rules), want) {
			t.Errorf("the host's FORWARD chain lacks %q:\n%s", want, rules)
		}
	}

	// A crash: dockerd gets SIGKILL. Its containerd goes with it, the
	// shim and the container stay, and so do the mounts.
	if err := d.Proc().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Proc().Wait(5 * time.Second); err == nil {
		t.Fatal("dockerd survived SIGKILL")
	}
	if ctrs, others := d.leftoverProcs(); len(ctrs) == 0 || len(others) == 0 {
		t.Errorf("outlived dockerd: container processes %v, others %v; want both, or the sweep below tests nothing", ctrs, others)
	}
	if mps, _ := mountsUnder(d.Dir); len(mps) == 0 {
		t.Error("no mounts outlived dockerd; the sweep below tests nothing")
	}
	shim := shimSocket(filepath.Join(d.Dir, "exec", "containerd", "containerd.sock"), c.ID)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if ctrs, others := d.leftoverProcs(); len(ctrs)+len(others) > 0 {
		t.Errorf("processes left: %v %v", ctrs, others)
	}
	if mps, err := mountsUnder(d.Dir); err != nil || len(mps) > 0 {
		t.Errorf("mounts left: %v %v", mps, err)
	}
	for _, p := range []string{d.Dir, shim, filepath.Join(cgroupRoot, "pids", d.cgroupParent), filepath.Join(cgroupRoot, d.cgroupParent)} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	// Gone, or a zombie until PID 1 reaps it.
	if _, _, state, err := procStat(c.PID); err == nil && state != 'Z' {
		t.Errorf("the container's process %d is still running (state %c) after Close", c.PID, state)
	}
}
