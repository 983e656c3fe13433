package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
)

// Defaults of Config, as the [control] section documents them.
const (
	DefaultEndpoint = "http://127.0.0.1:2379"
	DefaultPrefix   = "/vtepd"
	DefaultLeaseTTL = 10 * time.Second

	// maxTxnOps is etcd's default --max-txn-ops.
	maxTxnOps      = 128
	requestTimeout = 5 * time.Second
	// keepAliveTimeout is how long a gRPC keepalive ping may go
	// unanswered before the connection counts as lost.
	keepAliveTimeout = 3 * time.Second
	minBackoff       = 100 * time.Millisecond
	maxBackoff       = 2 * time.Second
)

// Config configures a Backend. Zero fields take the defaults above.
type Config struct {
	Endpoints []string
	Prefix    string
	LeaseTTL  time.Duration
	// TLS with a client certificate; any of the three turns TLS on.
	CAFile, CertFile, KeyFile string
	// etcd's own authentication.
	Username, Password string

	// Local is this VTEP's underlay address, registered in every joined
	// VNI; Port its VXLAN port (default control.DefaultPort).
	Local netip.Addr
	Port  uint16
	// MaxEntries caps the remote entries (default control.DefaultMaxEntries).
	MaxEntries int

	Sink control.Sink
	Log  *slog.Logger
	// KeepAliveTime is the gRPC keepalive that notices a stopped server
	// (default 5s, the least etcd accepts by default).
	KeepAliveTime time.Duration
}

// Backend is the etcd control.Backend.
type Backend struct {
	cfg    Config
	prefix string
	tls    *tls.Config
	dec    Decoder
	log    *slog.Logger
	badLog control.LogLimiter

	// C holds the counters that Status and package metrics read.
	C control.Counters

	mu       sync.Mutex
	vnis     map[uint32]bool
	desired  map[Key]Entry // local entries, by key
	dirty    map[Key]struct{}
	written  map[Key]writeRec // what etcd holds from us on the current lease
	ownLease map[int64]bool

	wake   chan struct{} // writer: dirty keys
	resync chan struct{} // watcher: list again (VNIs changed, reconnected)

	viewMu sync.Mutex
	view   *control.State

	stMu      sync.Mutex
	connected bool
	linkUp    bool
	since     time.Time
	// downLogged: a line saying we are not connected was logged since the
	// last "connected" (or since the start).
	downLogged bool
	// connErr is the last request that failed for want of a connection
	// (gRPC Unavailable: refused, TLS handshake, ...), which says why
	// better than the deadline that the client's retries end with.
	connErr error

	watching atomic.Bool // a list succeeded and its watch runs
	revision atomic.Int64
	leaseID  atomic.Int64

	// abandon makes Run end without revoking the lease, as a crash would
	// (tests).
	abandon atomic.Bool
	// listed, when set, runs between a list and the watch that follows
	// it (tests: compact under a watcher that has not started yet).
	listed func(rev int64)
}

type writeRec struct {
	value string
	rev   int64 // mod revision of our put
}

var _ control.Backend = (*Backend)(nil)

// New checks cfg and loads its TLS files; it does not connect.
func New(cfg Config) (*Backend, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{DefaultEndpoint}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("control: lease_ttl %v: less than a second", cfg.LeaseTTL)
	}
	if cfg.Port == 0 {
		cfg.Port = control.DefaultPort
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = control.DefaultMaxEntries
	}
	if cfg.KeepAliveTime == 0 {
		cfg.KeepAliveTime = 5 * time.Second
	}
	if !cfg.Local.IsValid() {
		return nil, errors.New("control: no local underlay address")
	}
	if cfg.Sink == nil {
		return nil, errors.New("control: no sink")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{
		cfg:      cfg,
		prefix:   cleanPrefix(cfg.Prefix),
		log:      cfg.Log.With("control", "etcd"),
		vnis:     make(map[uint32]bool),
		desired:  make(map[Key]Entry),
		dirty:    make(map[Key]struct{}),
		written:  make(map[Key]writeRec),
		ownLease: make(map[int64]bool),
		wake:     make(chan struct{}, 1),
		resync:   make(chan struct{}, 1),
		view:     control.NewState(),
		since:    time.Now(),
	}
	b.dec = Decoder{Prefix: b.prefix, Local: cfg.Local.Unmap(), Serves: b.serves, Port: cfg.Port}
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		t, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("control: tls: %w", err)
		}
		b.tls = t
	}
	return b, nil
}

func (b *Backend) serves(vni uint32) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vnis[vni]
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// setLocked records the desired entry for k (or its absence, with ok
// false) and wakes the writer when that changes anything. b.mu is held.
func (b *Backend) setLocked(k Key, e Entry, ok bool) {
	cur, had := b.desired[k]
	if ok == had && cur == e {
		return
	}
	if ok {
		b.desired[k] = e
	} else {
		delete(b.desired, k)
	}
	b.dirty[k] = struct{}{}
	signal(b.wake)
}

func (b *Backend) vtepKey(vni uint32) Key {
	return Key{VNI: vni, Kind: KindVTEP, VTEP: b.dec.Local}
}

// Join implements control.Backend.
func (b *Backend) Join(vni uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.vnis[vni] {
		return
	}
	b.vnis[vni] = true
	k := b.vtepKey(vni)
	b.setLocked(k, Entry{Key: k, Port: b.cfg.Port}, true)
	for k := range b.desired {
		if k.VNI == vni {
			b.dirty[k] = struct{}{}
		}
	}
	signal(b.resync)
}

// Leave implements control.Backend.
func (b *Backend) Leave(vni uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.vnis[vni] {
		return
	}
	delete(b.vnis, vni)
	for k := range b.desired {
		if k.VNI == vni {
			b.setLocked(k, Entry{}, false)
		}
	}
	signal(b.resync)
}

// SetMAC implements control.Backend.
func (b *Backend) SetMAC(vni uint32, mac fdb.MAC) {
	k := Key{VNI: vni, Kind: KindMAC, MAC: mac}
	b.mu.Lock()
	b.setLocked(k, Entry{Key: Key{VNI: vni, Kind: KindMAC, MAC: mac, VTEP: b.dec.Local}}, true)
	b.mu.Unlock()
}

// DelMAC implements control.Backend.
func (b *Backend) DelMAC(vni uint32, mac fdb.MAC) {
	b.mu.Lock()
	b.setLocked(Key{VNI: vni, Kind: KindMAC, MAC: mac}, Entry{}, false)
	b.mu.Unlock()
}

// SetIP implements control.Backend.
func (b *Backend) SetIP(vni uint32, ip netip.Addr, mac fdb.MAC) {
	ip = ip.Unmap()
	k := Key{VNI: vni, Kind: KindIP, IP: ip}
	b.mu.Lock()
	b.setLocked(k, Entry{Key: Key{VNI: vni, Kind: KindIP, IP: ip, MAC: mac}}, true)
	b.mu.Unlock()
}

// DelIP implements control.Backend.
func (b *Backend) DelIP(vni uint32, ip netip.Addr) {
	b.mu.Lock()
	b.setLocked(Key{VNI: vni, Kind: KindIP, IP: ip.Unmap()}, Entry{}, false)
	b.mu.Unlock()
}

// Status implements control.Backend.
func (b *Backend) Status() control.Status {
	st := control.Status{
		Backend:   "etcd",
		Endpoints: append([]string(nil), b.cfg.Endpoints...),
		Local:     b.dec.Local.String(),
		Revision:  b.revision.Load(),
		LeaseID:   b.leaseID.Load(),
		Errors:    b.C.ErrorMap(),
	}
	b.stMu.Lock()
	st.Connected, st.Since = b.connected, b.since
	b.stMu.Unlock()
	per := control.EntryTable{}
	b.mu.Lock()
	for vni := range b.vnis {
		per.VNI(vni)
	}
	for k := range b.desired {
		switch k.Kind {
		case KindMAC:
			per.VNI(k.VNI).LocalMACs++
		case KindIP:
			per.VNI(k.VNI).LocalIPs++
		}
	}
	st.Pending = len(b.dirty)
	b.mu.Unlock()
	b.viewMu.Lock()
	per.Remote(b.view)
	b.viewMu.Unlock()
	st.Entries = per.Sorted()
	return st
}

// Revision is the etcd revision the view is at.
func (b *Backend) Revision() int64 { return b.revision.Load() }

func (b *Backend) setConnected(up bool, why error) {
	b.stMu.Lock()
	defer b.stMu.Unlock()
	if b.connected == up {
		// A backend that has not connected yet (a wrong certificate,
		// CA or password, or no etcd) says so once; the failures after
		// that are only counted.
		if up || b.downLogged || errors.Is(why, context.Canceled) {
			return
		}
		b.downLogged = true
		b.log.Warn("control: cannot connect, retrying", b.downAttrs(why)...)
		return
	}
	b.connected, b.since = up, time.Now()
	b.downLogged = !up
	if up {
		b.connErr = nil
		b.log.Info("control: connected", "endpoints", b.cfg.Endpoints, "revision", b.revision.Load())
	} else {
		b.log.Warn("control: disconnected, keeping the last view", b.downAttrs(why)...)
	}
}

// downAttrs are the attributes of a line saying we are not connected.
// b.stMu is held.
func (b *Backend) downAttrs(why error) []any {
	attrs := []any{"endpoints", b.cfg.Endpoints, "err", why}
	if b.connErr != nil && !errors.Is(why, context.Canceled) {
		attrs = append(attrs, "conn_err", b.connErr)
	}
	return attrs
}

// recordConnErr is a gRPC interceptor, inside the client's retries, that
// keeps the last error of a request that found no connection: the client
// waits for a ready connection until the deadline, and turns the error
// gRPC gives then, which names the connection's, into the bare deadline.
func (b *Backend) recordConnErr(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	st, _ := status.FromError(err)
	switch {
	case st.Code() == codes.Unavailable:
	case st.Code() == codes.DeadlineExceeded && strings.HasPrefix(st.Message(), "latest balancer error: "):
	default:
		return err
	}
	b.stMu.Lock()
	b.connErr = errors.New(st.Message())
	b.stMu.Unlock()
	return err
}

// link reports whether the gRPC connection is up.
func (b *Backend) link() bool {
	b.stMu.Lock()
	defer b.stMu.Unlock()
	return b.linkUp
}

// Run implements control.Backend.
func (b *Backend) Run(ctx context.Context) error {
	ccfg := clientv3.Config{
		Endpoints:            b.cfg.Endpoints,
		TLS:                  b.tls,
		Username:             b.cfg.Username,
		Password:             b.cfg.Password,
		DialTimeout:          requestTimeout,
		DialKeepAliveTime:    b.cfg.KeepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		PermitWithoutStream:  true,
		Logger:               zap.NewNop(),
		// Reconnect within a couple of seconds of etcd's return (gRPC's
		// default backoff grows to two minutes), so that we republish
		// before the leases that a restarted etcd extends run out.
		DialOptions: []grpc.DialOption{
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           grpcbackoff.Config{BaseDelay: minBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxBackoff},
				MinConnectTimeout: requestTimeout,
			}),
			grpc.WithChainUnaryInterceptor(b.recordConnErr),
		},
	}
	var cli *clientv3.Client
	bo := backoff{}
	for {
		var err error
		if cli, err = clientv3.New(ccfg); err == nil {
			break
		}
		b.C.Error(control.ReasonRequest)
		b.setConnected(false, err)
		if !bo.sleep(ctx) {
			return ctx.Err()
		}
	}
	defer cli.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.monitor(ctx, cli) }()
	go func() { defer wg.Done(); b.writer(ctx, cli) }()
	b.watcher(ctx, cli)
	wg.Wait()
	b.setConnected(false, ctx.Err())
	return ctx.Err()
}

// monitor follows the gRPC connection's state: a connection lost marks the
// backend disconnected; one regained asks the watcher to list again.
func (b *Backend) monitor(ctx context.Context, cli *clientv3.Client) {
	conn := cli.ActiveConnection()
	everUp := false
	for {
		s := conn.GetState()
		if s == connectivity.Idle {
			conn.Connect()
		}
		up := s == connectivity.Ready || s == connectivity.Idle
		b.stMu.Lock()
		was := b.linkUp
		b.linkUp = up
		b.stMu.Unlock()
		switch {
		case was && !up && s != connectivity.Shutdown:
			b.setConnected(false, fmt.Errorf("connection %v", s))
		case !was && up && everUp:
			signal(b.resync)
		}
		everUp = everUp || up
		if !conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// backoff doubles from minBackoff to maxBackoff.
type backoff struct{ d time.Duration }

func (bo *backoff) next() time.Duration {
	switch {
	case bo.d == 0:
		bo.d = minBackoff
	case bo.d < maxBackoff:
		bo.d = min(2*bo.d, maxBackoff)
	}
	return bo.d
}

func (bo *backoff) reset() { bo.d = 0 }

// failed records a request to etcd that failed: it is counted, the backend
// is not connected (and says why), and it waits for the next backoff
// before trying again. False if ctx ended, before or meanwhile.
func (b *Backend) failed(ctx context.Context, bo *backoff, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	b.C.Error(control.ReasonRequest)
	b.setConnected(false, err)
	return bo.sleep(ctx)
}

// sleep waits for the next backoff; false if ctx ended first.
func (bo *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(bo.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// refuse counts and logs (at a limited rate) a refused key or value.
func (b *Backend) refuse(err error) {
	b.C.Error(ReasonOf(err))
	if ok, dropped := b.badLog.Allow(); ok {
		b.log.Warn("control: entry refused", "reason", ReasonOf(err).String(), "err", err, "unlogged", dropped)
	}
}
