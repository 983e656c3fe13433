//go:build linux

package topo

// Design notes: a real Docker engine per lab host.
//
// DockerBridge (docker_linux.go) imitates what Docker's bridge driver does;
// Dockerd runs the engine itself, so that what the README's Docker guide
// promises is checked against Docker's own veths, MACs, MTU handling and
// iptables rules rather than against our reading of them.
//
// Each Dockerd is `nsenter --net=/run/netns/<host ns> dockerd ...`: only the
// network namespace is the host's. `ip netns exec` would also give it a
// mount namespace with a fresh /sys, which hides the cgroup mounts dockerd
// needs. So dockerd shares this machine's mount namespace and cgroup tree,
// and everything it writes there is kept apart by path:
//
//   - all state lives in one temporary directory, Dir: data-root "data"
//     (which dockerd bind-mounts on itself to make it a shared mount),
//     exec-root "exec" (the managed containerd's config, sockets and state,
//     runc's state, the containers' netns bind mounts), the API socket, the
//     pidfile, and a daemon.json of our own, so that
//     /etc/docker/daemon.json is not read; for dockerd before 23.0 it also
//     moves the trust key dockerd makes up from /etc/docker/key.json to Dir;
//   - containers go to cgroup "/topo-<host ns>" (--cgroup-parent, with the
//     cgroupfs driver) in every hierarchy;
//   - the storage driver is vfs: an image layer is a plain directory, so no
//     container leaves an overlay mount behind, and the image is a 2 MB
//     busybox;
//   - Docker's iptables rules stay on (--iptables=true): the FORWARD policy
//     DROP and the per-bridge ACCEPT rules are part of what the guide must
//     survive. iptables is per network namespace, and dockerd's children
//     (iptables, containerd, the shims) inherit its namespace.
//
// What the engine still puts outside Dir, all shared with a system Docker
// and left in place: empty directories /opt/containerd (containerd's "opt"
// plugin), /run/docker/plugins, and /run/containerd/s, where containerd
// 1.5+ puts every shim's socket whatever its state directory (the name is
// a hash of containerd's address, so instances never collide; Close removes
// ours).
//
// Close takes the engine down in the order that leaves least behind:
// `docker rm -f` of every container while the daemon runs, then SIGTERM to
// dockerd (which stops its containerd and unmounts what it mounted),
// SIGKILL after a grace period. Then it sweeps up what a killed daemon
// leaves: processes (identified by Dir in their command line, by a
// container's network namespace, or as descendants of either; each by PID
// and start time, SIGTERM then SIGKILL), shim sockets, mounts under Dir,
// the cgroups, and Dir itself.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// dockerdStartTimeout bounds the wait for the API to answer.
	dockerdStartTimeout = 30 * time.Second
	// dockerdStopGrace is how long dockerd gets after SIGTERM; with its
	// containers already removed it needs about 3 s.
	dockerdStopGrace = 15 * time.Second
	// sweepGrace is how long leftover processes get after SIGTERM.
	sweepGrace = 2 * time.Second
	// containerdNamespace is dockerd's namespace in its containerd.
	containerdNamespace = "moby"
	// shimSocketDir is where containerd 1.5+ puts shim sockets.
	shimSocketDir = "/run/containerd/s"
	cgroupRoot    = "/sys/fs/cgroup"
)

// Dockerd is a Docker engine running in a lab host's network namespace.
// Its methods drive it with the docker CLI, as a user of the README would.
// They are safe for concurrent use.
type Dockerd struct {
	Host   *Host
	Dir    string // everything of this instance; see the design notes
	Socket string // the API socket: docker -H unix://<Socket>

	inst         *dockerInstall
	cgroupParent string
	proc         *Proc

	mu  sync.Mutex
	ids []string // containers Run, for their shim sockets

	closeOnce sync.Once
	closeErr  error
}

// StartDockerd starts dockerd in h's network namespace and waits until its
// API answers. The lab closes it (Dockerd.Close) when it closes, if the
// caller has not.
func (h *Host) StartDockerd() (*Dockerd, error) {
	inst, err := findDocker()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "topo-dockerd-")
	if err != nil {
		return nil, fmt.Errorf("topo: host %s: dockerd: %w", h.Name, err)
	}
	d := &Dockerd{
		Host:         h,
		Dir:          dir,
		Socket:       filepath.Join(dir, "docker.sock"),
		inst:         inst,
		cgroupParent: "/topo-" + h.NS,
	}
	// An empty configuration but for where dockerd before 23.0 keeps the
	// key it makes up (a daemon.json key only; removed in 23.0 with the
	// key itself).
	conf := "{}\n"
	if inst.major < 23 {
		conf = fmt.Sprintf("{%q: %q}\n", "deprecated-key-path", filepath.Join(dir, "key.json"))
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(conf), 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("topo: host %s: dockerd: %w", h.Name, err), os.RemoveAll(dir))
	}
	// Registered first, so that whatever happens next is undone.
	if err := h.lab.onClose(d.Close); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	args := []string{
		"--net=" + filepath.Join(netnsDir, h.NS), inst.dockerd,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://" + d.Socket,
		"--bridge=none",
		"--iptables=true",
		"--storage-driver=vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", d.cgroupParent,
	}
	p, err := h.lab.startCmd(h.Name, "dockerd", inst.nsenter, args)
	if err != nil {
		return nil, errors.Join(err, d.Close())
	}
	d.proc = p
	if err := d.waitReady(); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// String names the engine for logs: "dockerd@a (pid 1234)".
func (d *Dockerd) String() string {
	if d.proc == nil {
		return "dockerd@" + d.Host.Name
	}
	return d.proc.String()
}

// Proc is the dockerd process, for its output.
func (d *Dockerd) Proc() *Proc { return d.proc }

// waitReady waits until the API answers /_ping, checking on the way that
// dockerd runs in the host's network namespace and no other.
func (d *Dockerd) waitReady() error {
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				return dl.DialContext(ctx, "unix", d.Socket)
			},
			DisableKeepAlives: true,
		},
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(dockerdStartTimeout)
	// nsenter joins the namespace before it execs dockerd: as soon as
	// the process is dockerd, its namespace is final. Checked early, so
	// that a mistake here would stop dockerd before it sets up iptables.
	nsChecked := false
	checkNetns := func() error {
		if err := sameNetns(fmt.Sprintf("/proc/%d/ns/net", d.proc.PID()), filepath.Join(netnsDir, d.Host.NS)); err != nil {
			return fmt.Errorf("topo: %v: %w", d, err)
		}
		nsChecked = true
		return nil
	}
	for {
		if d.proc.Exited() {
			code, err := d.proc.Wait(time.Second)
			return fmt.Errorf("topo: %v exited (code %d, %v) before answering:\n%s", d, code, err, tailLines(d.proc.Output(), 40))
		}
		if !nsChecked {
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", d.proc.PID())); err == nil && exe == d.inst.dockerd {
				if err := checkNetns(); err != nil {
					return err
				}
			}
		}
		resp, err := client.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Only dockerd serves the API: it has exec'd by now.
				if !nsChecked {
					return checkNetns()
				}
				return nil
			}
			err = fmt.Errorf("GET /_ping: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topo: %v: API not ready within %v: %w", d, dockerdStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameNetns fails unless the two paths name the same network namespace.
func sameNetns(a, b string) error {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return fmt.Errorf("stat %s: %w", a, err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return fmt.Errorf("stat %s: %w", b, err)
	}
	if sa.Dev != sb.Dev || sa.Ino != sb.Ino {
		return fmt.Errorf("%s is network namespace %d, not %s's %d", a, sa.Ino, b, sb.Ino)
	}
	return nil
}

// Command returns the docker CLI command `docker -H unix://<Socket> args...`
// for the caller to wire up and run, e.g. with a stdin or a streamed
// stdout. The CLI runs with DOCKER_* cleared from its environment and its
// own configuration directory under Dir, so that neither the user's
// contexts nor their ~/.docker/config.json (which may inject proxy
// settings into containers) take part.
func (d *Dockerd) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.inst.docker, append([]string{"-H", "unix://" + d.Socket}, args...)...)
	env := []string{"DOCKER_CONFIG=" + filepath.Join(d.Dir, "cli")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.WaitDelay = time.Second
	return cmd
}

// Docker runs the docker CLI against this engine (see Command) to
// completion, bounded by a timeout, and returns its standard output. The
// error names the command and carries its standard error.
func (d *Dockerd) Docker(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := d.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("topo: host %s: docker %s: %w: %s", d.Host.Name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// ImportBusybox makes image ref from this machine's static busybox
// (Debian's busybox-static): /bin/busybox and a symbolic link to it for
// each applet, where `busybox --list-full` puts it. No registry is needed.
func (d *Dockerd) ImportBusybox(ref string) error {
	img, err := busyboxTar()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := d.Command(ctx, "import", "-", ref)
	cmd.Stdin = bytes.NewReader(img)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("topo: host %s: docker import - %s: %w: %s", d.Host.Name, ref, err, bytes.TrimSpace(out))
	}
	return nil
}

// DockerNetwork is a user-defined bridge network, as
//
//	docker network create --opt com.docker.network.bridge.name=<Bridge> \
//	    --opt com.docker.network.driver.mtu=<MTU> \
//	    --subnet <Subnet> --gateway <Gateway> <Name>
//
// creates it.
type DockerNetwork struct {
	Name    string       // the network's name, e.g. "overlay200"
	Bridge  string       // com.docker.network.bridge.name; "" lets Docker name it br-<id>
	MTU     int          // com.docker.network.driver.mtu; 0 leaves Docker's 1500
	Subnet  netip.Prefix // in the lab ranges
	Gateway netip.Addr   // in Subnet; Docker gives it to the bridge
}

// Network creates n.
func (d *Dockerd) Network(n DockerNetwork) error {
	if !validDockerName.MatchString(n.Name) {
		return fmt.Errorf("topo: docker network name %q does not match %s", n.Name, validDockerName)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Contains(n.Gateway) {
		return fmt.Errorf("topo: docker network %s: gateway %v is not in subnet %v", n.Name, n.Gateway, n.Subnet)
	}
	if err := checkPrefix(n.Subnet); err != nil {
		return err
	}
	args := []string{"network", "create"}
	if n.Bridge != "" {
		if !ifNamePattern.MatchString(n.Bridge) {
			return fmt.Errorf("topo: docker network %s: bridge name %q does not match %s", n.Name, n.Bridge, ifNamePattern)
		}
		args = append(args, "--opt", "com.docker.network.bridge.name="+n.Bridge)
	}
	if n.MTU != 0 {
		args = append(args, "--opt", "com.docker.network.driver.mtu="+strconv.Itoa(n.MTU))
	}
	args = append(args, "--subnet", n.Subnet.Masked().String(), "--gateway", n.Gateway.String(), n.Name)
	_, err := d.Docker(args...)
	return err
}

// validDockerName is what container and network names may look like here:
// a container's also becomes part of a namespace name.
var validDockerName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// DockerContainer is a container a Dockerd runs.
type DockerContainer struct {
	Name string
	ID   string
	PID  int              // its first process, as docker inspect reports it
	Addr netip.Prefix     // its address on the network it was run on
	MAC  net.HardwareAddr // what Docker gave its interface on that network

	// Net is the container's network namespace as a Container of the
	// lab, named <host ns>-<name> (ip netns attach), so that the lab's
	// helpers work on it: Ping, Do, MAC, WaitReachable, Exec (ip netns
	// exec). The lab deletes the name when it closes.
	Net *Container

	Dockerd *Dockerd
}

// Run runs a container the way `docker run -d --name <name> --network
// <network> --ip <ip> <image> <cmd...>` does and returns it once running.
func (d *Dockerd) Run(name, network string, ip netip.Addr, image string, cmd ...string) (*DockerContainer, error) {
	if !validDockerName.MatchString(name) {
		return nil, fmt.Errorf("topo: container name %q does not match %s", name, validDockerName)
	}
	if err := checkAddr(ip); err != nil {
		return nil, err
	}
	args := append([]string{"run", "-d", "--name", name, "--network", network, "--ip", ip.String(), image}, cmd...)
	out, err := d.Docker(args...)
	if id := strings.TrimSpace(string(out)); id != "" {
		d.mu.Lock()
		d.ids = append(d.ids, id)
		d.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	info, err := d.Inspect(name)
	if err != nil {
		return nil, err
	}
	ep, ok := info.Networks[network]
	if !ok || !info.Running || info.PID <= 0 {
		return nil, fmt.Errorf("topo: host %s: container %s: not running on %s: %+v", d.Host.Name, name, network, info)
	}
	c := &DockerContainer{Name: name, ID: info.ID, PID: info.PID, Addr: ep.Addr, MAC: ep.MAC, Dockerd: d}
	h := d.Host
	c.Net = &Container{Name: name, NS: h.NS + "-" + name, Addr: ep.Addr, Host: h}
	if err := h.lab.attachNamespace(c.Net.NS, c.PID); err != nil {
		return nil, fmt.Errorf("topo: host %s: container %s: %w", h.Name, name, err)
	}
	eth0, err := linkAttrs(c.Net.NS, "eth0")
	if err != nil {
		return nil, err
	}
	c.Net.MTU = eth0.MTU
	return c, nil
}

// DockerInspect is what Inspect reports of a container.
type DockerInspect struct {
	ID       string
	PID      int // 0 unless running
	Running  bool
	Networks map[string]DockerEndpoint
}

// DockerEndpoint is a container's interface on one network.
type DockerEndpoint struct {
	Addr netip.Prefix
	MAC  net.HardwareAddr
}

// Inspect reads a container's state with `docker inspect`.
func (d *Dockerd) Inspect(name string) (*DockerInspect, error) {
	out, err := d.Docker("inspect", "--type", "container", name)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		ID    string `json:"Id"`
		State struct {
			Running bool
			Pid     int
		}
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress   string
				IPPrefixLen int
				MacAddress  string
			}
		}
	}
	if err := json.Unmarshal(out, &raw); err != nil || len(raw) != 1 {
		return nil, fmt.Errorf("topo: host %s: docker inspect %s: %d objects, %v", d.Host.Name, name, len(raw), err)
	}
	r := raw[0]
	info := &DockerInspect{ID: r.ID, PID: r.State.Pid, Running: r.State.Running, Networks: map[string]DockerEndpoint{}}
	for name, ep := range r.NetworkSettings.Networks {
		var e DockerEndpoint
		if a, err := netip.ParseAddr(ep.IPAddress); err == nil {
			e.Addr = netip.PrefixFrom(a, ep.IPPrefixLen)
		}
		if mac, err := net.ParseMAC(ep.MacAddress); err == nil {
			e.MAC = mac
		}
		info.Networks[name] = e
	}
	return info, nil
}

// Exec runs `docker exec <container> args...` to completion (bounded by a
// timeout) and returns its standard output.
func (c *DockerContainer) Exec(args ...string) ([]byte, error) {
	return c.Dockerd.Docker(append([]string{"exec", c.Name}, args...)...)
}

// Nsenter runs a program of this machine in the container's network
// namespace, as `nsenter -n -t <PID> bin args...` does: the guide's way to
// use the host's ping whatever the image contains.
func (c *DockerContainer) Nsenter(bin string, args ...string) ([]byte, error) {
	return run(c.Dockerd.inst.nsenter, append([]string{"-n", "-t", strconv.Itoa(c.PID), bin}, args...)...)
}

// Close removes the engine's containers, stops dockerd and cleans up
// everything it left; see the design notes. It is idempotent, and the lab
// calls it when it closes.
func (d *Dockerd) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Dockerd) close() error {
	var errs []error
	if d.proc != nil && !d.proc.Exited() {
		out, err := d.Docker("ps", "-aq")
		if ids := strings.Fields(string(out)); err == nil && len(ids) > 0 {
			_, err = d.Docker(append([]string{"rm", "-f"}, ids...)...)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if d.proc != nil {
		if err := d.proc.stop(dockerdStopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, d.sweep()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topo: closing dockerd@%s: %w", d.Host.Name, err)
	}
	return nil
}

// sweep removes what a daemon that did not shut down cleanly leaves:
// processes, shim sockets, mounts, cgroups, and then Dir.
func (d *Dockerd) sweep() []error {
	var errs []error
	// Containers first, with SIGKILL as `docker rm -f` would: their shims,
	// still running, reap them. Then the daemons.
	ctrs, others := d.leftoverProcs()
	if err := killAll(ctrs, 0); err != nil {
		errs = append(errs, err)
	}
	if err := killAll(others, sweepGrace); err != nil {
		errs = append(errs, err)
	}
	for _, id := range d.containerIDs() {
		sock := shimSocket(filepath.Join(d.Dir, "exec", "containerd", "containerd.sock"), id)
		if fi, err := os.Lstat(sock); err == nil && fi.Mode().Type() == fs.ModeSocket {
			if err := os.Remove(sock); err != nil {
				errs = append(errs, err)
			}
		}
	}
	mounted, err := unmountUnder(d.Dir)
	if err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroup(d.cgroupParent); err != nil {
		errs = append(errs, err)
	}
	if !mounted {
		if err := os.RemoveAll(d.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// containerIDs lists the containers this engine ran, from Run and from
// the state directories of containerd and runc.
func (d *Dockerd) containerIDs() []string {
	d.mu.Lock()
	ids := append([]string(nil), d.ids...)
	d.mu.Unlock()
	for _, dir := range []string{
		filepath.Join(d.Dir, "exec", "containerd", "daemon", "io.containerd.runtime.v2.task", containerdNamespace),
		filepath.Join(d.Dir, "exec", "runtime-runc", containerdNamespace),
	} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// shimSocket is where containerd 1.5+ (runtime/v2/shim.SocketAddress)
// puts the socket of a task's shim: the SHA-256 of containerd's address,
// namespace and container ID, under a fixed directory.
func shimSocket(containerdAddr, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(containerdAddr, containerdNamespace, id)))
	return filepath.Join(shimSocketDir, hex.EncodeToString(sum[:]))
}

// procRef names a process by PID and start time, so that a PID reused by
// an unrelated process is never signalled.
type procRef struct {
	pid   int
	start uint64
}

// leftoverProcs lists the processes that belong to this engine: ctrs,
// those in one of its containers' network namespaces (whose bind mounts
// are under Dir/exec/netns), and others: those whose command line names a
// path under Dir (dockerd, its containerd, the shims, docker CLI
// commands) and the descendants of any. Never this process.
func (d *Dockerd) leftoverProcs() (ctrs, others []procRef) {
	marker := []byte(d.Dir + "/")
	netnsInodes := map[uint64]bool{}
	entries, _ := os.ReadDir(filepath.Join(d.Dir, "exec", "netns"))
	for _, e := range entries {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(d.Dir, "exec", "netns", e.Name()), &st) == nil && st.Dev == nsfsDev() {
			netnsInodes[st.Ino] = true
		}
	}
	type info struct {
		ppid  int
		start uint64
	}
	all := map[int]info{}
	ours := map[int]bool{}
	inCtr := map[int]bool{}
	self := os.Getpid()
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		ppid, start, state, err := procStat(pid)
		if err != nil || state == 'Z' {
			continue
		}
		all[pid] = info{ppid, start}
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, marker) {
			ours[pid] = true
			continue
		}
		var st unix.Stat_t
		if len(netnsInodes) > 0 && unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && netnsInodes[st.Ino] {
			ours[pid] = true
			inCtr[pid] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for pid, in := range all {
			if !ours[pid] && ours[in.ppid] {
				ours[pid] = true
				grew = true
			}
		}
	}
	for pid := range ours {
		if inCtr[pid] {
			ctrs = append(ctrs, procRef{pid, all[pid].start})
		} else {
			others = append(others, procRef{pid, all[pid].start})
		}
	}
	return ctrs, others
}

// nsfsDev is the device of the nsfs file system, which every namespace
// file is on.
var nsfsDev = sync.OnceValue(func() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &st) != nil {
		return 0
	}
	return st.Dev
})

// procStat reads a process's parent, start time (clock ticks after boot)
// and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, start uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 of proc(5), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return ppid, start, f[0][0], nil
}

// alive reports whether p is still running: same PID, same start time,
// not a zombie.
func (p procRef) alive() bool {
	_, start, state, err := procStat(p.pid)
	return err == nil && start == p.start && state != 'Z'
}

// killAll sends SIGTERM to every process of refs, and SIGKILL to those
// still running after grace; with a grace of 0, SIGKILL at once.
func killAll(refs []procRef, grace time.Duration) error {
	if len(refs) == 0 {
		return nil
	}
	waitGone := func(timeout time.Duration) []procRef {
		deadline := time.Now().Add(timeout)
		for {
			var left []procRef
			for _, p := range refs {
				if p.alive() {
					left = append(left, p)
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				return left
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	left := refs
	if grace > 0 {
		for _, p := range refs {
			if p.alive() {
				_ = syscall.Kill(p.pid, syscall.SIGTERM)
			}
		}
		left = waitGone(grace)
	}
	for _, p := range left {
		if p.alive() {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	if left = waitGone(5 * time.Second); len(left) > 0 {
		return fmt.Errorf("processes %v still running after SIGKILL", left)
	}
	return nil
}

// unmountUnder detaches every mount at or below dir, deepest first, and
// reports whether any is left.
func unmountUnder(dir string) (mounted bool, err error) {
	var errs []error
	for round := 0; round < 4; round++ {
		mps, err := mountsUnder(dir)
		if err != nil {
			return true, err
		}
		if len(mps) == 0 {
			return false, nil
		}
		// Deepest first: a longer path cannot be a parent of a shorter one.
		slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
		errs = errs[:0]
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("umount %s: %w", mp, err))
			}
		}
	}
	mps, err := mountsUnder(dir)
	if err != nil {
		return true, err
	}
	if len(mps) > 0 {
		return true, errors.Join(append(errs, fmt.Errorf("still mounted: %v", mps))...)
	}
	return false, nil
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	return mps, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroup removes cgroup parent, and any cgroup left below it, from
// every hierarchy: the unified one and each cgroup v1 controller's. It
// only ever calls rmdir, which the kernel refuses for a cgroup that still
// has processes.
func removeCgroup(parent string) error {
	roots := []string{cgroupRoot}
	if entries, err := os.ReadDir(cgroupRoot); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				roots = append(roots, filepath.Join(cgroupRoot, e.Name()))
			}
		}
	}
	var errs []error
	for _, root := range roots {
		top := filepath.Join(root, parent)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Children before parents; a cgroup empties a moment after its
		// last process is reaped.
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 50; try++ {
				if err = unix.Rmdir(dirs[i]); err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// dockerInstall is the Docker installation the lab uses.
type dockerInstall struct {
	dockerd string // absolute, symlinks resolved (as /proc/<pid>/exe shows it)
	docker  string // the CLI
	nsenter string
	version string // dockerd's, e.g. "20.10.24+dfsg1"
	major   int
}

var dockerVersion = regexp.MustCompile(`version ([0-9]+)\.[0-9]+\.[^ ,]+`)

// findDocker locates dockerd, a docker CLI, nsenter and busybox, once.
// The CLI is the first `docker` on PATH of dockerd's own version, or the
// first `docker` on PATH if none is: a CLI from elsewhere (a newer static
// one in /usr/local/bin) also works, as the API is negotiated, but the
// distribution's pair is the one the guide's users run.
var findDocker = sync.OnceValues(func() (*dockerInstall, error) {
	inst := &dockerInstall{}
	p, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("topo: %w (Debian: apt-get install docker.io)", err)
	}
	if inst.dockerd, err = filepath.EvalSymlinks(p); err != nil {
		return nil, fmt.Errorf("topo: dockerd: %w", err)
	}
	out, err := run(inst.dockerd, "--version")
	if err != nil {
		return nil, err
	}
	m := dockerVersion.FindStringSubmatch(string(out))
	if m == nil {
		return nil, fmt.Errorf("topo: dockerd --version: no version in %q", out)
	}
	inst.version = strings.TrimPrefix(m[0], "version ")
	inst.major, _ = strconv.Atoi(m[1])

	seen := map[string]bool{}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		cand, err := exec.LookPath(filepath.Join(dir, "docker"))
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(cand)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if inst.docker == "" {
			inst.docker = real
		}
		if out, err := run(real, "--version"); err == nil {
			if m := dockerVersion.FindStringSubmatch(string(out)); m != nil && strings.TrimPrefix(m[0], "version ") == inst.version {
				inst.docker = real
				break
			}
		}
	}
	if inst.docker == "" {
		return nil, errors.New("topo: no docker CLI on PATH (Debian: apt-get install docker.io)")
	}
	if inst.nsenter, err = exec.LookPath("nsenter"); err != nil {
		return nil, fmt.Errorf("topo: %w (Debian: util-linux)", err)
	}
	if _, err := busyboxPath(); err != nil {
		return nil, err
	}
	return inst, nil
})

// busyboxPath finds busybox and checks that it is statically linked: the
// image has no libc.
func busyboxPath() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("topo: %w (Debian: apt-get install busybox-static)", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("topo: busybox: %w", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("topo: %s is dynamically linked; the image needs a static one (Debian: apt-get install busybox-static)", p)
		}
	}
	return p, nil
}

// busyboxTar is the image ImportBusybox imports, built once.
var busyboxTar = sync.OnceValues(func() ([]byte, error) {
	bin, err := busyboxPath()
	if err != nil {
		return nil, err
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("topo: busybox: %w", err)
	}
	out, err := run(bin, "--list-full")
	if err != nil {
		return nil, err
	}
	const self = "bin/busybox"
	links := []string{}
	dirs := map[string]bool{"bin": true, "tmp": true}
	for _, l := range strings.Fields(string(out)) {
		l = strings.TrimPrefix(path.Clean(l), "/")
		if l == self || strings.HasPrefix(l, "..") || l == "." {
			continue
		}
		links = append(links, l)
		for d := path.Dir(l); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	slices.Sort(dirList) // parents sort before their children
	hdrs := []*tar.Header{}
	for _, d := range dirList {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: mtime})
	}
	hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeReg, Name: self, Mode: 0o755, Size: int64(len(exe)), ModTime: mtime})
	for _, l := range links {
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeSymlink, Name: l, Linkname: "/" + self, Mode: 0o777, ModTime: mtime})
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("topo: busybox image: %w", err)
		}
		if h.Name == self {
			if _, err := io.Copy(tw, bytes.NewReader(exe)); err != nil {
				return nil, fmt.Errorf("topo: busybox image: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("topo: busybox image: %w", err)
	}
	return buf.Bytes(), nil
})
