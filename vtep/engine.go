package vtep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vtepd/vtepd/encap"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/metrics"
	"github.com/vtepd/vtepd/tap"
)

// Sizes of the data plane's batches and buffers.
const (
	// rxBatch datagrams per recvmmsg.
	rxBatch = 64
	// rxBufferSize holds the largest UDP payload an IPv4 or IPv6 datagram
	// can carry, so nothing that arrives is ever truncated.
	rxBufferSize = 65535
	// txQueue datagrams per sendmmsg: a TAP batch, times the flood fan-out
	// when frames are flooded (a full queue is sent early).
	txQueue = 256
)

// FrameQueue is one queue of the local side of a network: the TAP on the
// bridge. A TAP has one queue per core (IFF_MULTI_QUEUE).
type FrameQueue interface {
	// Read blocks for at least one frame, then returns up to len(bufs)
	// frames, frame i at bufs[i][offset:offset+sizes[i]].
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write delivers one frame to the bridge.
	Write(frame []byte) (int, error)
	BatchSize() int
	Name() string
}

// Device is a network's local end, its TAP (queues, and how to remove
// it), and the sender of its floods to a multicast group, if it has one.
type Device struct {
	Queues    []FrameQueue
	Closer    io.Closer
	Multicast BatchConn // nil without a group
}

// Engine is a running VTEP: one underlay socket set shared by every
// network, a TAP per network, and the forwarding database.
type Engine struct {
	cfg *Config
	log *slog.Logger

	// Now returns monotonic nanoseconds; tests may replace it before Run.
	Now func() int64

	fdb      *fdb.Table
	conns    []BatchConn         // one per receive queue (SO_REUSEPORT)
	groups   []BatchConn         // one receiver per multicast group joined
	nets     map[uint32]*network // read-only once built
	netOrder []*network          // in configuration order
	unknown  metrics.Counters    // drops no network owns
	tapMTU   int
	http     *http.Server
	httpLn   net.Listener
}

// network is the state of one [[network]] section.
type network struct {
	cfg      NetworkConfig
	vni      uint32
	label    string
	index    int // in netOrder
	dev      Device
	counters metrics.Counters
}

// New checks the host resources the configuration names and takes them:
// the underlay interface, each bridge, the UDP port, the metrics listener,
// then the TAPs. If any step fails, New undoes the ones before it and
// returns an error naming the key or resource at fault.
func New(cfg *Config, log *slog.Logger) (_ *Engine, err error) {
	start := time.Now()
	e := &Engine{
		cfg:  cfg,
		log:  log,
		Now:  func() int64 { return int64(time.Since(start)) },
		fdb:  fdb.New(),
		nets: make(map[uint32]*network),
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	under, err := underlayLink(cfg)
	if err != nil {
		return nil, err
	}
	underMTU := under.MTU
	overhead := encap.OverheadIPv4
	if cfg.Local.Is6() {
		overhead = encap.OverheadIPv6
	}
	e.tapMTU = underMTU - overhead
	if e.tapMTU < minTAPMTU {
		return nil, fmt.Errorf("underlay MTU %d leaves a TAP MTU of %d, below %d", underMTU, e.tapMTU, minTAPMTU)
	}
	for i, n := range cfg.Networks {
		if err := checkBridge(n.Bridge); err != nil {
			return nil, fmt.Errorf("network[%d].bridge: %w", i, err)
		}
	}
	if e.conns, err = listenUnderlay(cfg.Local, cfg.Port, rxBatch, cfg.Queues, cfg.UDP6ZeroChecksumRx); err != nil {
		return nil, err
	}
	senders := map[uint32]BatchConn{}
	defer func() {
		if err != nil {
			for _, c := range senders {
				c.Close()
			}
		}
	}()
	joined := map[netip.Addr]bool{}
	for i, n := range cfg.Networks {
		if !n.Group.IsValid() {
			continue
		}
		if !joined[n.Group] {
			g, err := openGroupReceiver(n.Group, cfg.Port, under.Index, rxBatch, cfg.UDP6ZeroChecksumRx)
			if err != nil {
				return nil, fmt.Errorf("network[%d].group: %w", i, err)
			}
			e.groups = append(e.groups, g)
			joined[n.Group] = true
		}
		if senders[n.VNI], err = openMulticastSender(cfg.Local, under.Index, n.TTL); err != nil {
			return nil, fmt.Errorf("network[%d].group: %w", i, err)
		}
	}
	if cfg.MetricsAddr != "" {
		if e.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
	}
	for i, nc := range cfg.Networks {
		dev, err := tap.Create(tap.Config{Name: nc.TAP, Bridge: nc.Bridge, MTU: e.tapMTU, Queues: cfg.Queues})
		if err != nil {
			return nil, fmt.Errorf("network[%d]: %w", i, err)
		}
		d := Device{Closer: dev, Multicast: senders[nc.VNI]}
		for _, q := range dev.Queues() {
			d.Queues = append(d.Queues, q)
		}
		delete(senders, nc.VNI) // the network owns it now
		e.addNetwork(nc, d)
	}
	return e, nil
}

// minTAPMTU is the smallest TAP MTU that still carries IPv4 (RFC 791: 68);
// IPv6 inside needs 1280.
const minTAPMTU = 68

// NewWithDevices builds an engine over caller-supplied devices and
// underlay, with no host resources: the seam for tests and benchmarks that
// run the pipelines over in-memory fakes. devs[i] carries cfg.Networks[i];
// each conn gets a receive pipeline. A network with a group floods to it
// through devs[i].Multicast.
func NewWithDevices(cfg *Config, log *slog.Logger, conns []BatchConn, devs []Device, tapMTU int) *Engine {
	start := time.Now()
	e := &Engine{
		cfg:    cfg,
		log:    log,
		Now:    func() int64 { return int64(time.Since(start)) },
		fdb:    fdb.New(),
		nets:   make(map[uint32]*network),
		conns:  conns,
		tapMTU: tapMTU,
	}
	for i, nc := range cfg.Networks {
		e.addNetwork(nc, devs[i])
	}
	return e
}

func (e *Engine) addNetwork(nc NetworkConfig, dev Device) {
	n := &network{cfg: nc, vni: nc.VNI, label: strconv.FormatUint(uint64(nc.VNI), 10), index: len(e.netOrder), dev: dev}
	e.fdb.SetNetwork(n.vni, fdb.Network{MaxEntries: n.cfg.MaxEntries, Ageing: n.cfg.Ageing})
	for _, s := range n.cfg.Static {
		// Validation already vetted these; an error here is a bug.
		if err := e.fdb.AddStatic(n.vni, s.MAC, s.Remote); err != nil {
			panic(fmt.Sprintf("static entry %s: %v", s.MAC, err))
		}
	}
	e.nets[n.vni] = n
	e.netOrder = append(e.netOrder, n)
}

// FDB is the engine's forwarding database.
func (e *Engine) FDB() *fdb.Table { return e.fdb }

// TAPMTU is the MTU given to every TAP.
func (e *Engine) TAPMTU() int { return e.tapMTU }

// Run forwards until ctx is done or a pipeline fails, then releases
// everything New took. It returns nil on a clean shutdown.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		if err != nil {
			cancel(err)
		}
	}
	var rxWG, txWG, bgWG sync.WaitGroup
	for i, c := range e.conns {
		rxWG.Go(func() { fail(e.rxLoop(i, c)) })
	}
	for _, c := range e.groups {
		rxWG.Go(func() { fail(e.rxLoop(0, c)) })
	}
	for _, n := range e.netOrder {
		for i, q := range n.dev.Queues {
			txWG.Go(func() { fail(e.txLoop(n, q, e.conns[i%len(e.conns)])) })
		}
	}
	bgWG.Go(func() { e.ageLoop(ctx) })
	if e.httpLn != nil {
		e.http = &http.Server{Handler: e.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		bgWG.Go(func() {
			if err := e.http.Serve(e.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail(fmt.Errorf("metrics: %w", err))
			}
		})
	}
	e.log.Info("forwarding", "local", e.cfg.Local, "port", e.cfg.Port, "networks", len(e.netOrder),
		"queues", len(e.conns), "tap_mtu", e.tapMTU)
	<-ctx.Done()

	// Stop receiving first, so nothing is written to a TAP being closed.
	e.closeUnderlay()
	rxWG.Wait()
	for _, n := range e.netOrder {
		n.dev.Closer.Close()
	}
	txWG.Wait()
	for _, n := range e.netOrder {
		if n.dev.Multicast != nil {
			n.dev.Multicast.Close()
		}
	}
	if e.http != nil {
		shutCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		e.http.Shutdown(shutCtx)
		done()
	}
	bgWG.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// close releases what New took, for an engine that never ran.
func (e *Engine) close() {
	for _, n := range e.netOrder {
		n.dev.Closer.Close()
		if n.dev.Multicast != nil {
			n.dev.Multicast.Close()
		}
	}
	if e.httpLn != nil {
		e.httpLn.Close()
	}
	e.closeUnderlay()
}

// closeUnderlay closes the receive sockets, leaving the groups joined.
func (e *Engine) closeUnderlay() {
	for _, c := range e.conns {
		c.Close()
	}
	for _, c := range e.groups {
		if err := c.Close(); err != nil {
			e.log.Warn("leaving multicast group", "err", err)
		}
	}
}

func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// ageLoop expires learned entries. It ticks at a tenth of the shortest
// ageing time, between 100ms and 1s, so entries leave close to on time.
func (e *Engine) ageLoop(ctx context.Context) {
	tick := time.Second
	for _, n := range e.netOrder {
		tick = min(tick, n.cfg.Ageing/10)
	}
	tick = max(tick, 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.fdb.Expire(e.Now())
		}
	}
}

// Snapshot returns the metrics rows of every network, and of the drops no
// network owns.
func (e *Engine) Snapshot() []metrics.VNI {
	rows := make([]metrics.VNI, 0, len(e.netOrder)+1)
	for _, n := range e.netOrder {
		row := metrics.VNI{Label: n.label, Counters: &n.counters}
		if s, ok := e.fdb.Stats(n.vni); ok {
			row.FDB = metrics.FDBStats{
				Learned: s.Learned, Static: s.Static,
				LearnedTotal: s.LearnedTotal, Moves: s.Moves, Refused: s.Refused, Expired: s.Expired,
			}
		}
		rows = append(rows, row)
	}
	return append(rows, metrics.VNI{Label: metrics.UnknownVNILabel, Counters: &e.unknown, DropsOnly: true})
}

// FDBEntry is one row of GET /fdb.
type FDBEntry struct {
	VNI        uint32  `json:"vni"`
	MAC        string  `json:"mac"`
	Remote     string  `json:"remote"`
	Type       string  `json:"type"`
	AgeSeconds float64 `json:"age_seconds"`
}

// FDBEntries lists the forwarding database, by VNI then MAC.
func (e *Engine) FDBEntries() []FDBEntry {
	entries := e.fdb.Entries(e.Now())
	out := make([]FDBEntry, 0, len(entries))
	for _, en := range entries {
		out = append(out, FDBEntry{
			VNI:        en.VNI,
			MAC:        en.MAC.String(),
			Remote:     en.Remote.String(),
			Type:       en.Type.String(),
			AgeSeconds: en.Age.Seconds(),
		})
	}
	return out
}

// Peers returns each network's flood list, for logs and tools.
func (e *Engine) Peers(vni uint32) []netip.Addr {
	if n, ok := e.nets[vni]; ok {
		return slices.Clone(n.cfg.Peers)
	}
	return nil
}
