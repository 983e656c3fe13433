package etcd

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/internal/etcdtest"
)

// logRec keeps a backend's log lines (and passes them to t.Log).
type logRec struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
	pfx string
}

func (l *logRec) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	l.t.Logf("%s: %s", l.pfx, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logRec) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logRec) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startRefused starts a backend that etcd must refuse, joined to vni with
// a MAC to publish, and records its log.
func startRefused(t *testing.T, s *etcdtest.Server, local string, vni uint32, tweak func(*Config)) (*vtepd, *logRec) {
	t.Helper()
	lr := &logRec{t: t, pfx: local}
	v := startVTEP(t, s, local, func(c *Config) {
		tweak(c)
		c.Log = lr.logger()
	})
	v.b.Join(vni)
	v.b.SetMAC(vni, mac(9))
	return v, lr
}

// checkRefused waits until v counted a failed request and logged it, then
// checks that it never connected, never synced, wrote nothing and is still
// running. leaseOK allows a lease: etcd 3.4 grants one to an anonymous
// client even with auth enabled.
func checkRefused(t *testing.T, what string, v *vtepd, lr *logRec, d time.Duration, leaseOK bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for v.b.C.Errors[control.ReasonRequest].Load() == 0 || !strings.Contains(lr.String(), "cannot connect") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no failed request counted and logged within %v: errors %v, log:\n%s",
				what, d, v.b.Status().Errors, lr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := v.b.Status()
	if st.Connected || (st.LeaseID != 0 && !leaseOK) || st.Revision != 0 {
		t.Errorf("%s: status says it got through: %+v", what, st)
	}
	if v.b.C.Syncs.Load() != 0 || (v.b.C.Leases.Load() != 0 && !leaseOK) || v.b.C.Puts.Load()+v.b.C.Txns.Load() != 0 {
		t.Errorf("%s: syncs %d, leases %d, puts %d, txns %d; want none", what,
			v.b.C.Syncs.Load(), v.b.C.Leases.Load(), v.b.C.Puts.Load(), v.b.C.Txns.Load())
	}
	v.sink.mu.Lock()
	syncs, n := v.sink.syncs, v.sink.state.Len()
	v.sink.mu.Unlock()
	if syncs != 0 || n != 0 {
		t.Errorf("%s: the sink got %d syncs, %d entries; want none", what, syncs, n)
	}
	select {
	case err := <-v.done:
		v.done <- err
		t.Errorf("%s: Run returned %v; it must keep trying until its context ends", what, err)
	default:
	}
}

// TLS with client certificates: two backends with the CA, a certificate
// and its key see each other; one without a client certificate, and one
// that trusts another CA, are refused, count and log it, and keep trying
// without reaching the sink or etcd.
func TestIntegrationTLS(t *testing.T) {
	pki := etcdtest.NewPKI(t, "good")
	other := etcdtest.NewPKI(t, "other")
	s := etcdtest.Start(t, etcdtest.Options{PKI: pki})

	withCert := func(c *Config) { c.CAFile, c.CertFile, c.KeyFile = pki.CAFile, pki.ClientCert, pki.ClientKey }
	a := startVTEP(t, s, addrA.String(), withCert)
	b := startVTEP(t, s, addrB.String(), withCert)
	a.b.Join(100)
	b.b.Join(100)
	a.b.SetMAC(100, mac(1))
	b.b.SetMAC(100, mac(2))
	sees := func(peer netip.Addr, m fdb.MAC) func(*control.State) bool {
		return func(s *control.State) bool {
			v := s.VNIs[100]
			return v != nil && v.VTEPs[peer] == control.DefaultPort && v.MACs[m] == peer &&
				len(v.VTEPs) == 1 && len(v.MACs) == 1
		}
	}
	waitFor(t, a.sink, 10*time.Second, "A sees B over TLS", sees(addrB, mac(2)))
	waitFor(t, b.sink, 10*time.Second, "B sees A over TLS", sees(addrA, mac(1)))
	waitConnected(t, a, true, 5*time.Second)
	if got := getValue(t, s.Client(nil), "/vtepd/v1/vni/100/mac/02:00:00:00:00:01"); got != `{"vtep":"198.18.0.1"}` {
		t.Errorf("A's MAC key holds %q", got)
	}

	// The server's certificate is good, ours is missing.
	noCert, noCertLog := startRefused(t, s, "198.18.0.3", 100, func(c *Config) { c.CAFile = pki.CAFile })
	// Our certificate is good, the server's is not signed by the CA we trust.
	wrongCA, wrongCALog := startRefused(t, s, "198.18.0.4", 100, func(c *Config) {
		c.CAFile, c.CertFile, c.KeyFile = other.CAFile, pki.ClientCert, pki.ClientKey
	})
	checkRefused(t, "no client certificate", noCert, noCertLog, 30*time.Second, false)
	checkRefused(t, "another CA", wrongCA, wrongCALog, 30*time.Second, false)
	// The line says why, not only that a deadline passed. Under TLS 1.3
	// the client's handshake is over before the server checks the
	// client's certificate, so the client may see the server's alert
	// ("tls: bad certificate", "certificate required") or only the
	// connection it closed ("broken pipe", "connection reset").
	if l := noCertLog.String(); !strings.Contains(l, "conn_err=") || !containsAny(l, "tls:", "broken pipe", "connection reset", "EOF") {
		t.Errorf("no client certificate: the log does not name the connection's failure:\n%s", l)
	}
	if l := wrongCALog.String(); !strings.Contains(l, "conn_err=") || !strings.Contains(l, "x509") {
		t.Errorf("another CA: the log does not name the certificate failure:\n%s", l)
	}

	// Nothing of theirs reached etcd, and the good pair is undisturbed.
	for _, key := range []string{"/vtepd/v1/vni/100/vtep/198.18.0.3", "/vtepd/v1/vni/100/vtep/198.18.0.4",
		"/vtepd/v1/vni/100/mac/02:00:00:00:00:09"} {
		if got := getValue(t, s.Client(nil), key); got != "" {
			t.Errorf("%s holds %q", key, got)
		}
	}
	waitFor(t, a.sink, time.Second, "A still sees only B", sees(addrB, mac(2)))

	// They stop when told to, promptly.
	for _, v := range []*vtepd{noCert, wrongCA} {
		start := time.Now()
		v.stop()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a refused backend took %v to stop", d)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
