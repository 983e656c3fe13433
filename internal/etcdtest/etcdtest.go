// Package etcdtest runs real etcd servers for tests: Debian's etcd-server
// (or the binary VTEPD_ETCD names), each member with its own data
// directory, on the loopback of the test's own namespace or on an address
// inside a lab namespace, optionally over TLS with client certificates,
// and stopped by PID when the test ends. It is for tests only.
package etcdtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// RequireEnv set to "1" makes a test that cannot run fail instead of
// skipping, as in internal/topo.
const RequireEnv = "VTEPD_REQUIRE_PRIVILEGED"

// Binary is Debian's etcd-server unless VTEPD_ETCD names another (a
// current release, to check the client against it). It skips the test
// under -short, or when etcd is missing and the test may skip.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped under -short")
	}
	bin := os.Getenv("VTEPD_ETCD")
	if bin == "" {
		bin = "/usr/bin/etcd"
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv(RequireEnv) == "1" || os.Geteuid() == 0 {
		t.Fatalf("%s not found: apt-get install -y etcd-server etcd-client (make deps)", bin)
	}
	t.Skipf("%s not found; install etcd-server, or set %s=1 to fail instead", bin, RequireEnv)
	return ""
}

// Options place a server. The zero value is one member on a free port of
// 127.0.0.1 in the test's own namespace, over plain HTTP.
type Options struct {
	// Netns runs etcd in that network namespace (its name under
	// /var/run/netns), listening on Addr; Dial reaches it from the test.
	Netns string
	Addr  netip.Addr
	Dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	// PKI serves the client URL over https and requires a client
	// certificate signed by its CA.
	PKI *PKI
}

// Server is one etcd member.
type Server struct {
	t         testing.TB
	opts      Options
	bin, dir  string
	name      string
	ClientURL string
	PeerURL   string
	cluster   string // --initial-cluster
	// HTTP reaches the client URL (health, metrics), with the PKI's
	// client certificate under TLS.
	HTTP *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start starts one member and waits until it is healthy.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ss := StartCluster(t, opts, 1)
	return ss[0]
}

// StartCluster starts an n-member cluster, members on ports of their own
// at the same address, and waits until each is healthy.
func StartCluster(t testing.TB, opts Options, n int) []*Server {
	t.Helper()
	bin := Binary(t)
	if !opts.Addr.IsValid() {
		opts.Addr = netip.MustParseAddr("127.0.0.1")
	}
	scheme := "http"
	if opts.PKI != nil {
		scheme = "https"
	}
	ss := make([]*Server, n)
	var cluster []string
	for i := range ss {
		s := &Server{
			t: t, opts: opts, bin: bin, dir: t.TempDir(), name: fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://%s", scheme, netip.AddrPortFrom(opts.Addr, uint16(freePort(t, opts)))),
			PeerURL:   fmt.Sprintf("http://%s", netip.AddrPortFrom(opts.Addr, uint16(freePort(t, opts)))),
			HTTP:      &http.Client{Timeout: 5 * time.Second},
			out:       new(bytes.Buffer),
		}
		tr := &http.Transport{DialContext: opts.Dial}
		if opts.PKI != nil {
			tr.TLSClientConfig = opts.PKI.ClientTLS(t)
		}
		s.HTTP.Transport = tr
		cluster = append(cluster, s.name+"="+s.PeerURL)
		ss[i] = s
	}
	for _, s := range ss {
		s.cluster = strings.Join(cluster, ",")
		s.launch()
		t.Cleanup(func() {
			s.Kill()
			if t.Failed() {
				s.mu.Lock()
				t.Logf("etcd %s output:\n%s", s.name, tail(s.out.String(), 3000))
				s.mu.Unlock()
			}
		})
	}
	for _, s := range ss {
		s.waitHealthy()
	}
	return ss
}

// freePort returns a TCP port nothing listens on at the address: in the
// test's namespace, one the kernel picks; in a lab namespace, which is
// empty but for what the test starts, one from a counter.
func freePort(t testing.TB, opts Options) int {
	t.Helper()
	if opts.Netns != "" {
		return 2378 + int(nextPort.Add(1))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nextPort numbers the ports of lab namespaces from 2379 up.
var nextPort atomic.Int32

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// launch runs the member's process, on its data directory and ports.
func (s *Server) launch() {
	s.t.Helper()
	args := []string{
		"--name", s.name,
		"--data-dir", s.dir,
		"--listen-client-urls", s.ClientURL,
		"--advertise-client-urls", s.ClientURL,
		"--listen-peer-urls", s.PeerURL,
		"--initial-advertise-peer-urls", s.PeerURL,
		"--initial-cluster", s.cluster,
		"--initial-cluster-token", "vtepd-test",
	}
	if p := s.opts.PKI; p != nil {
		args = append(args, "--cert-file", p.ServerCert, "--key-file", p.ServerKey,
			"--client-cert-auth", "--trusted-ca-file", p.CAFile)
	}
	name := s.bin
	if s.opts.Netns != "" {
		// nsenter execs etcd: the PID stays etcd's.
		args = append([]string{"--net=/var/run/netns/" + s.opts.Netns, s.bin}, args...)
		name = "nsenter"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	cmd.Stdout = lockedWriter{&s.mu, s.out}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
}

func (s *Server) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.Healthy()
		if err == nil {
			return
		}
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			s.t.Fatalf("etcd %s exited: %s", s.name, tail(s.Output(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd %s not healthy: %v", s.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Healthy asks the member's /health.
func (s *Server) Healthy() error {
	resp, err := s.HTTP.Get(s.ClientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := new(bytes.Buffer)
	body.ReadFrom(resp.Body)
	if !strings.Contains(body.String(), `"true"`) {
		return fmt.Errorf("health: %s", body)
	}
	return nil
}

// Output is what the member printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Name is the member's name in the cluster.
func (s *Server) Name() string { return s.name }

// Restart runs the member again, on the same data and ports, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.launch()
	s.waitHealthy()
}

// Kill stops the member with SIGKILL, by its PID, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Kill()
	<-done
}

// Signal sends sig to the member (SIGSTOP and SIGCONT freeze and thaw it).
func (s *Server) Signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("etcd %s: not running", s.name)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		// Say how it ended: something outside the test may have killed it.
		s.t.Fatalf("etcd %s: %v: %v", s.name, err, s.cmd.ProcessState)
	}
}

// Client is a plain client of the member, the operator's etcdctl (with
// the PKI's client certificate under TLS), with tweak applied to its
// configuration; closed when the test ends.
func (s *Server) Client(tweak func(*clientv3.Config)) *clientv3.Client {
	s.t.Helper()
	cfg := clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if s.opts.PKI != nil {
		cfg.TLS = s.opts.PKI.ClientTLS(s.t)
	}
	if d := s.opts.Dial; d != nil {
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d(ctx, "tcp", addr)
		}))
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Metric sums the samples of the member's /metrics whose line starts
// with name.
func (s *Server) Metric(name string) float64 {
	s.t.Helper()
	resp, err := s.HTTP.Get(s.ClientURL + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
