package etcd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// requireEnv mirrors internal/topo: set to "1", a test that cannot run
// fails instead of skipping.
const requireEnv = "VTEPD_REQUIRE_PRIVILEGED"

// etcdBinary is Debian's etcd-server unless VTEPD_ETCD names another (a
// current release, to check the client against it).
func etcdBinary(t *testing.T) string {
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
	if os.Getenv(requireEnv) == "1" || os.Geteuid() == 0 {
		t.Fatalf("%s not found: apt-get install -y etcd-server etcd-client (make deps)", bin)
	}
	t.Skipf("%s not found; install etcd-server, or set %s=1 to fail instead", bin, requireEnv)
	return ""
}

// etcdServer is one etcd member on 127.0.0.1 with its own data directory,
// stopped by PID when the test ends.
type etcdServer struct {
	t         *testing.T
	bin, dir  string
	clientURL string
	peerURL   string
	// tls, when set, serves the client URL over https and requires a
	// client certificate signed by its CA; http reaches the client URL
	// (health, metrics) with the helper's own client certificate.
	tls  *testPKI
	http *http.Client
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	return startEtcdTLS(t, nil)
}

// startEtcdTLS starts etcd with https client URLs, its server certificate
// from pki and --client-cert-auth trusting pki's CA; plain http with nil.
func startEtcdTLS(t *testing.T, pki *testPKI) *etcdServer {
	t.Helper()
	scheme := "http"
	if pki != nil {
		scheme = "https"
	}
	s := &etcdServer{
		t:         t,
		bin:       etcdBinary(t),
		dir:       t.TempDir(),
		clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		tls:       pki,
		http:      &http.Client{Timeout: 5 * time.Second},
	}
	if pki != nil {
		s.http.Transport = &http.Transport{TLSClientConfig: pki.clientTLS(t)}
	}
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("etcd output:\n%s", tail(s.out.String(), 4000))
			s.mu.Unlock()
		}
	})
	return s
}

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

// start runs etcd (again, on the same data and ports) and waits for health.
func (s *etcdServer) start() {
	s.t.Helper()
	args := []string{
		"--name", "t",
		"--data-dir", s.dir,
		"--listen-client-urls", s.clientURL,
		"--advertise-client-urls", s.clientURL,
		"--listen-peer-urls", s.peerURL,
		"--initial-advertise-peer-urls", s.peerURL,
		"--initial-cluster", "t=" + s.peerURL,
	}
	if s.tls != nil {
		args = append(args,
			"--cert-file", s.tls.serverCert,
			"--key-file", s.tls.serverKey,
			"--client-cert-auth",
			"--trusted-ca-file", s.tls.caFile,
		)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	s.mu.Lock()
	if s.out == nil {
		s.out = new(bytes.Buffer)
	}
	cmd.Stdout = lockedWriter{&s.mu, s.out}
	cmd.Stderr = cmd.Stdout
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.http.Get(s.clientURL + "/health")
		if err == nil {
			body := new(bytes.Buffer)
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(body.String(), `"true"`) {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("etcd exited: %s", tail(s.out.String(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops etcd with SIGKILL, by its PID, and waits for it.
func (s *etcdServer) kill() {
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

func (s *etcdServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		// Say how it ended: something outside the test may have killed it.
		s.t.Fatalf("etcd: %v: %v", err, s.cmd.ProcessState)
	}
}

// client is a plain client, the operator's etcdctl (with the helper's
// client certificate under TLS).
func (s *etcdServer) client() *clientv3.Client {
	s.t.Helper()
	return s.clientWith(func(*clientv3.Config) {})
}

// clientWith is client with tweak applied to its config (credentials).
func (s *etcdServer) clientWith(tweak func(*clientv3.Config)) *clientv3.Client {
	s.t.Helper()
	cfg := clientv3.Config{Endpoints: []string{s.clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if s.tls != nil {
		cfg.TLS = s.tls.clientTLS(s.t)
	}
	tweak(&cfg)
	c, err := clientv3.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// metric sums the samples of etcd's /metrics whose line starts with name.
func (s *etcdServer) metric(name string) float64 {
	s.t.Helper()
	resp, err := s.http.Get(s.clientURL + "/metrics")
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

// recSink records what a backend tells the engine.
type recSink struct {
	mu         sync.Mutex
	state      *control.State
	syncs      int
	emptySyncs int // Syncs that emptied a non-empty view
	events     []control.Event
}

func newRecSink() *recSink { return &recSink{state: control.NewState()} }

func (r *recSink) Sync(s *control.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	if s.Len() == 0 && r.state.Len() > 0 {
		r.emptySyncs++ // a Sync that emptied a view
	}
	r.events = append(r.events, control.Diff(r.state, s)...)
	r.state = s
}

func (r *recSink) Update(evs []control.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	r.state.Apply(evs)
}

func (r *recSink) view(f func(s *control.State) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r.state)
}

// waitFor polls cond on the sink's state until it holds or d passes.
func waitFor(t *testing.T, r *recSink, d time.Duration, what string, cond func(s *control.State) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !r.view(cond) {
		if time.Now().After(deadline) {
			r.mu.Lock()
			t.Fatalf("%s: not within %v; state %s", what, d, dump(r.state))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dump(s *control.State) string {
	var b strings.Builder
	for _, e := range control.Diff(nil, s) {
		b.WriteString("\n  " + e.String())
	}
	return b.String()
}

// vtepd is one backend under test, running until the test ends or stop.
type vtepd struct {
	b      *Backend
	sink   *recSink
	cancel context.CancelFunc
	done   chan error
}

func startVTEP(t *testing.T, s *etcdServer, local string, tweak func(*Config)) *vtepd {
	t.Helper()
	return startVTEPWith(t, s, local, tweak, nil)
}

// startVTEPWith runs setup on the backend before Run.
func startVTEPWith(t *testing.T, s *etcdServer, local string, tweak func(*Config), setup func(*Backend)) *vtepd {
	t.Helper()
	v := &vtepd{sink: newRecSink(), done: make(chan error, 1)}
	cfg := Config{
		Endpoints: []string{s.clientURL},
		Prefix:    "/vtepd",
		LeaseTTL:  2 * time.Second,
		Local:     netip.MustParseAddr(local),
		Sink:      v.sink,
		Log:       testLogger(t, local),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.b = b
	if setup != nil {
		setup(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go func() { v.done <- b.Run(ctx) }()
	t.Cleanup(v.stop)
	return v
}

func (v *vtepd) stop() {
	v.cancel()
	<-v.done
	v.done <- nil // later stops return at once
}

var mac1 = fdb.MAC{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0a}

func mac(last byte) fdb.MAC { return fdb.MAC{0x02, 0, 0, 0, 0, last} }

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
