package vtep

// Design notes.
//
// Networks come and go while the engine runs (SIGHUP, vtepctl reload), so
// the set of networks is an immutable netTable published through an atomic
// pointer: the receive pipelines load it once per batch and never lock.
// Everything that changes the set (Reload, the admin socket) holds e.mu.
// Within a network, what reload may change in place (the settings
// config.Network tags live: peers, learning, ageing, limits, static
// entries, the name...) lives in a config.Network that is itself swapped
// atomically; what it cannot (tagged replace: VNI, bridge, TAP, group,
// TTL) identifies the network, and a change there replaces the network.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vtepd/vtepd/config"
	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/offload"
	"github.com/vtepd/vtepd/tap"
	"github.com/vtepd/vtepd/underlay"
)

// Sizes of the data plane's batches and buffers.
const (
	// rxBatch datagrams per recvmmsg.
	rxBatch = 64
	// rxBufferSize holds the largest UDP payload an IPv4 or IPv6 datagram
	// can carry, so nothing that arrives is ever truncated.
	rxBufferSize = encap.MaxIPLen
	// txQueue datagrams per sendmmsg: a TAP batch, times the flood fan-out
	// when frames are flooded (a full queue is sent early).
	txQueue = 256

	// With offloads (Device.Offload):

	// offloadReadBatch frames per TAP read batch: each buffer must hold a
	// super-frame, so there are fewer of them.
	offloadReadBatch = 32
	// maxSuperFrame is the longest frame such a TAP hands over: Ethernet,
	// two VLAN tags, and an IPv6 header with 64 KiB of payload.
	maxSuperFrame = ether.HeaderLen + ether.MaxTags*ether.TagLen + encap.IPv6HeaderLen + encap.MaxIPLen
	// txSegments buffers a TX pipeline cuts super-frames into, a full
	// sendmmsg; when they run out, what is queued is sent first.
	txSegments = txQueue
	// rxHeadroom is kept in front of each receive buffer, so that the
	// virtio_net_hdr fits before the inner frame in place of the shorter
	// VXLAN header it follows.
	rxHeadroom = offload.VirtioNetHdrLen - encap.HeaderLen
	// rxSlot is one receive buffer: the headroom, then a datagram, or a
	// virtio_net_hdr and a 64 KiB super-frame coalesced in place.
	rxSlot = offload.VirtioNetHdrLen + max(rxBufferSize-encap.HeaderLen, ether.HeaderLen+encap.MaxIPLen)
)

// The TX pipeline reads the virtio_net_hdr into the headroom in front of
// each frame: it must fit (a compile-time check).
const _ = uint(encap.Headroom - offload.VirtioNetHdrLen)

// Engine is a running VTEP: one underlay socket set shared by every
// network, a TAP per network, and the forwarding database.
type Engine struct {
	log *slog.Logger

	// Now returns monotonic nanoseconds; tests may replace it before Run.
	Now func() int64

	cfg     atomic.Pointer[config.Config] // the configuration in force
	fdb     *fdb.Table
	conns   []underlay.Conn // one per receive queue (SO_REUSEPORT)
	rxp     []*rxPipeline   // the receive pipelines of conns, made by Run
	busy    *busyPoller
	nets    atomic.Pointer[netTable]
	unknown metrics.Counters // drops no network owns
	peers   peerTable
	tapMTU  int
	ifindex int              // underlay interface: groups are joined on it
	trains  *underlay.Trains // UDP GSO send sockets (underlay.udp_gso); nil without

	// mu serializes what changes the networks: Reload, admin commands,
	// and shutdown. It guards groups and the fields of run.
	mu     sync.Mutex
	groups map[netip.Addr]*group
	run    *runState // nil until Run

	// openTAP makes a network's TAP; openSender the sender of its floods
	// to a group (nil: the TAP's Device brings its own). Seams for tests
	// over fakes.
	openTAP    func(nc config.Network) (Device, error)
	openSender func(nc config.Network) (underlay.Conn, error)
	// openGroup joins a group; nil where groups are not supported.
	openGroup func(g netip.Addr) (underlay.Conn, error)
	// checkHost vets what a new network needs from the host (its bridge)
	// before Reload changes anything; nil over fakes.
	checkHost func(nc config.Network) error

	// watchHost follows the TAPs and bridges on the host (netlink) and
	// mends what was deleted under us; nil over fakes.
	watchHost func(ctx context.Context)

	ctl controlPlane // its backend is nil without a control plane

	// LogLevel, when set, follows log_level across reloads.
	LogLevel *slog.LevelVar

	http    *http.Server
	httpLn  net.Listener
	adminLn net.Listener
}

// runState is what Run sets up for the goroutines it and Reload start.
type runState struct {
	fail     func(error)
	done     <-chan struct{} // closed when Run starts shutting down
	rx       sync.WaitGroup
	stopping bool
}

// New checks the host resources the configuration names and takes them:
// the underlay interface, each bridge, the UDP port, the metrics listener
// and admin socket, then the TAPs. If any step fails, New undoes the ones
// before it and returns an error naming the key or resource at fault.
func New(cfg *config.Config, log *slog.Logger) (_ *Engine, err error) {
	e := newEngine(cfg, log)
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	ifindex, underMTU, err := underlay.Interface(cfg.Local, cfg.Interface)
	if err != nil {
		return nil, err
	}
	e.ifindex = ifindex
	overhead := encap.OverheadIPv4
	if cfg.Local.Is6() {
		overhead = encap.OverheadIPv6
	}
	e.tapMTU = underMTU - overhead
	if e.tapMTU < minTAPMTU {
		return nil, fmt.Errorf("underlay MTU %d leaves a TAP MTU of %d, below %d", underMTU, e.tapMTU, minTAPMTU)
	}
	for i, n := range cfg.Networks {
		if err := tap.CheckBridge(n.Bridge); err != nil {
			return nil, fmt.Errorf("network[%d].bridge: %w", i, err)
		}
	}
	if e.conns, err = underlay.Listen(cfg.Local, cfg.Port, rxBatch, cfg.Queues, cfg.UDP6ZeroChecksumRx); err != nil {
		return nil, err
	}
	if cfg.UDPGSO {
		e.trains = underlay.NewTrains(cfg.Local, cfg.SrcPortLow, cfg.SrcPortHigh, log)
	}
	if cfg.MetricsAddr != "" {
		if e.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
	}
	if e.adminLn, err = listenAdmin(cfg, log); err != nil {
		return nil, err
	}
	e.openSender = func(nc config.Network) (underlay.Conn, error) {
		c, err := underlay.GroupSender(e.cfg.Load().Local, e.ifindex, nc.TTL)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", nc.Group, err)
		}
		return c, nil
	}
	e.openTAP = func(nc config.Network) (d Device, err error) {
		cfg := e.cfg.Load()
		dev, err := tap.Create(tap.Config{Name: nc.TAP, Bridge: nc.Bridge, MTU: e.tapMTU, Queues: cfg.Queues, Offload: cfg.Offload})
		if err != nil {
			return Device{}, err
		}
		d.Closer = dev
		d.MAC = fdb.MAC(dev.MAC())
		d.Offload = dev.Offload()
		d.USO = dev.USO()
		for _, q := range dev.Queues() {
			d.Queues = append(d.Queues, q)
		}
		return d, nil
	}
	e.checkHost = func(nc config.Network) error {
		if err := tap.CheckBridge(nc.Bridge); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		return nil
	}
	e.watchHost = e.watchLinks
	e.openGroup = func(g netip.Addr) (underlay.Conn, error) {
		cur := e.cfg.Load()
		return underlay.ListenGroup(g, cur.Port, e.ifindex, rxBatch, cur.UDP6ZeroChecksumRx)
	}
	tbl := &netTable{byVNI: map[uint32]*network{}}
	e.nets.Store(tbl)
	for i, nc := range cfg.Networks {
		n, err := e.openNetwork(nc)
		if err != nil {
			return nil, fmt.Errorf("network[%d]: %w", i, err)
		}
		tbl.byVNI[n.vni] = n
		tbl.order = append(tbl.order, n)
	}
	e.loadState()
	return e, nil
}

func newEngine(cfg *config.Config, log *slog.Logger) *Engine {
	start := time.Now()
	e := &Engine{
		log:    log,
		Now:    func() int64 { return int64(time.Since(start)) },
		fdb:    fdb.New(),
		groups: map[netip.Addr]*group{},
		busy:   newBusyPoller(),
	}
	e.ctl = controlPlane{e: e, installed: control.NewState(), joined: map[uint32]bool{}}
	e.cfg.Store(cfg)
	e.fdb.SetLimits(fdbLimits(cfg))
	e.peers.init(maxPeers)
	return e
}

// fdbLimits are the table-wide FDB limits of cfg's [limits].
func fdbLimits(cfg *config.Config) fdb.Limits {
	return fdb.Limits{MaxLearned: cfg.MaxLearned, MaxMoves: cfg.MaxMoves, MoveHold: cfg.MoveHold, MaxControl: cfg.ControlMaxEntries}
}

// maxAgeTick is the longest time between two passes of ageLoop: the
// kernel's vxlan ages its FDB every 10 s (FDB_AGE_INTERVAL).
const maxAgeTick = 10 * time.Second

// minTAPMTU is the smallest TAP MTU that still carries IPv4 (RFC 791: 68);
// IPv6 inside needs 1280.
const minTAPMTU = 68

// NewWithDevices builds an engine over caller-supplied devices and
// underlay, with no host resources: the seam for tests and benchmarks that
// run the pipelines over in-memory fakes. devs[i] carries cfg.Networks[i];
// each conn gets a receive pipeline. A network with a group floods to it
// through devs[i].Multicast.
func NewWithDevices(cfg *config.Config, log *slog.Logger, conns []underlay.Conn, devs []Device, tapMTU int) *Engine {
	e := newEngine(cfg, log)
	e.conns = conns
	e.tapMTU = tapMTU
	next := 0
	e.openTAP = func(config.Network) (Device, error) {
		if next == len(devs) {
			return Device{}, errors.New("no more devices")
		}
		next++
		return devs[next-1], nil
	}
	tbl := &netTable{byVNI: map[uint32]*network{}}
	for _, nc := range cfg.Networks {
		n, err := e.openNetwork(nc)
		if err != nil {
			panic(err) // the caller's devices and config disagree
		}
		tbl.byVNI[n.vni] = n
		tbl.order = append(tbl.order, n)
	}
	e.nets.Store(tbl)
	return e
}

// startRx starts a receive pipeline for conn; polled says the busy
// poller reads it too (the unicast sockets, not the group receivers).
func (e *Engine) startRx(queue int, conn underlay.Conn, polled bool) {
	p := e.newRxPipeline(queue, conn)
	if polled {
		e.rxp = append(e.rxp, p)
	}
	e.run.rx.Go(func() { e.run.fail(e.rxLoop(p, polled)) })
}

// applyNice gives vtepd's threads the scheduling priority of the nice key;
// a failure (no CAP_SYS_NICE for a negative one) is logged, not fatal.
func (e *Engine) applyNice(nice int) {
	if err := setNice(nice); err != nil {
		e.log.Warn("cannot set the scheduling priority; threads keep theirs", "nice", nice, "err", err)
	}
}

// FDB is the engine's forwarding database.
func (e *Engine) FDB() *fdb.Table { return e.fdb }

// TAPMTU is the MTU given to every TAP.
func (e *Engine) TAPMTU() int { return e.tapMTU }

// config.Config is the configuration in force.
func (e *Engine) Config() *config.Config { return e.cfg.Load() }

// Run forwards until ctx is done or a pipeline fails, then releases
// everything New took. It returns nil on a clean shutdown.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var bg sync.WaitGroup

	e.applyNice(e.cfg.Load().Nice)
	e.mu.Lock()
	e.run = &runState{done: ctx.Done(), fail: func(err error) {
		if err != nil {
			cancel(err)
		}
	}}
	for i, c := range e.conns {
		e.startRx(i, c, true)
	}
	for _, g := range e.groups {
		if g.conn != nil {
			e.startRx(0, g.conn, false)
		}
	}
	tbl := e.nets.Load()
	for _, n := range tbl.order {
		e.startNetwork(n)
	}
	e.run.rx.Go(func() { e.busyPollLoop(ctx.Done()) })
	e.mu.Unlock()

	bg.Go(func() { e.ageLoop(ctx) })
	if e.ctl.b != nil {
		bg.Go(func() { e.ctl.run(ctx) })
	}
	bg.Go(func() { e.dropWatch(ctx) })
	if e.watchHost != nil {
		bg.Go(func() { e.watchHost(ctx) })
	}
	if e.httpLn != nil {
		e.http = &http.Server{Handler: e.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		bg.Go(func() {
			if err := e.http.Serve(e.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.run.fail(fmt.Errorf("metrics: %w", err))
			}
		})
	}
	if e.adminLn != nil {
		bg.Go(func() { e.serveAdmin(ctx, e.adminLn) })
	}
	cfg := e.cfg.Load()
	e.log.Info("forwarding", "local", cfg.Local, "port", cfg.Port, "networks", len(tbl.order),
		"queues", len(e.conns), "tap_mtu", e.tapMTU, "offload", cfg.Offload, "udp_gso", cfg.UDPGSO)
	<-ctx.Done()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.run.stopping = true
	// Stop receiving first, so nothing is written to a TAP being closed.
	for _, c := range e.conns {
		c.Close()
	}
	for g := range e.groups {
		e.groups[g].refs = 1
		e.leaveGroup(g)
	}
	e.run.rx.Wait()
	for _, n := range e.nets.Load().order {
		n.closed.Store(true)
		n.dev.Load().Closer.Close()
	}
	for _, n := range e.nets.Load().order {
		n.tx.Wait()
		if m := n.dev.Load().Multicast; m != nil {
			m.Close()
		}
	}
	if e.trains != nil {
		e.trains.Close() // after the TX pipelines
	}
	if err := e.saveState(); err != nil {
		e.log.Warn("learned FDB not saved", "err", err)
	}
	if e.http != nil {
		shutCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		e.http.Shutdown(shutCtx)
		done()
	}
	if e.adminLn != nil {
		e.adminLn.Close()
	}
	bg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// close releases what New took, for an engine that never ran.
func (e *Engine) close() {
	if tbl := e.nets.Load(); tbl != nil {
		for _, n := range tbl.order {
			closeDevice(*n.dev.Load())
		}
	}
	for g := range e.groups {
		e.groups[g].refs = 1
		e.leaveGroup(g)
	}
	if e.httpLn != nil {
		e.httpLn.Close()
	}
	if e.adminLn != nil {
		e.adminLn.Close()
	}
	for _, c := range e.conns {
		c.Close()
	}
	if e.trains != nil {
		e.trains.Close()
	}
}

// ageLoop expires learned entries, the control plane's local MACs and IP
// bindings, and the UDP GSO sockets of ports no longer in use (package
// underlay). It ticks at a tenth of the shortest ageing time, between
// 100ms and maxAgeTick, so entries leave within a tenth of their time;
// with the default 300 s, every 10 s, as the kernel's vxlan does.
func (e *Engine) ageLoop(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		tick := maxAgeTick
		for _, n := range e.nets.Load().order {
			tick = min(tick, n.cfg.Load().Ageing/10)
		}
		t.Reset(max(tick, 100*time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.fdb.Expire(e.Now())
			e.ctl.expire(e.Now())
			if e.trains != nil {
				e.trains.Sweep(e.Now())
			}
		}
	}
}

// prefault touches every page of a pipeline's buffers as it is made, so
// that they are resident from the start: no page fault on the data path
// the first time a big batch arrives, and a resident size that does not
// creep up as traffic reaches ever more of them.
func prefault(b []byte) []byte {
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 0
	}
	return b
}
