package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// fleet is the simulated VTEPs: a few etcd clients shared by all of them,
// one lease per VTEP kept alive, and each VTEP's keys on its own lease,
// as every vtepd keeps its keys on one lease of its own.
//
// The keepalives do not go through clientv3's lessor but through one
// LeaseKeepAlive stream per client that the fleet drives itself, which
// puts on the wire what the lessor would (one request per lease every
// third of its TTL, on one stream) and lets the fleet count exactly what
// it sent: quiesce reads etcd's counters while none of the fleet's
// keepalives is in flight, so that whatever else etcd counted in a window
// is the vtepd's.
type fleet struct {
	l       layout
	ttl     time.Duration
	clis    []*clientv3.Client
	leases  []clientv3.LeaseID // by VTEP
	keepers []*keeper

	// quiet is held by a keeper from the first keepalive of a burst to
	// the last answer, and by quiesce.
	quiet sync.Mutex
	// lost is the first keepalive failure: a lease gone, or a stream
	// broken. A run with a lost lease measured a fleet that shrank.
	lostOnce  sync.Once
	lost      atomic.Pointer[error]
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// keepalivePeriod is how often a lease of ttl is kept alive: a third of
// its TTL, as clientv3's lessor does.
func keepalivePeriod(ttl time.Duration) time.Duration { return ttl / 3 }

// keeperTick is how often a keeper looks for leases due, as the lessor's
// send loop does (every 500 ms).
const keeperTick = 500 * time.Millisecond

// requestTimeout bounds one request of the fleet.
const requestTimeout = 10 * time.Second

// newFleet connects nclients clients to endpoints through dial (which
// reaches the lab's namespace).
func newFleet(l layout, endpoints []string, dial func(context.Context, string) (net.Conn, error), nclients int, ttl time.Duration) (*fleet, error) {
	f := &fleet{l: l, ttl: ttl}
	for i := 0; i < nclients; i++ {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
		})
		if err != nil {
			f.close()
			return nil, fmt.Errorf("etcd client: %w", err)
		}
		f.clis = append(f.clis, cli)
	}
	return f, nil
}

// client is the client VTEP i uses.
func (f *fleet) client(i int) *clientv3.Client { return f.clis[i%len(f.clis)] }

// forEach runs fn for every VTEP, parallel at a time, and returns the
// first error.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// grant gives every VTEP its lease.
func (f *fleet) grant(ctx context.Context, parallel int) error {
	f.leases = make([]clientv3.LeaseID, f.l.vteps)
	secs := int64((f.ttl + time.Second - 1) / time.Second)
	return forEach(ctx, f.l.vteps, parallel, func(ctx context.Context, i int) error {
		gctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		g, err := f.client(i).Grant(gctx, secs)
		if err != nil {
			return fmt.Errorf("vtep %d: grant: %w", i, err)
		}
		f.leases[i] = g.ID
		return nil
	})
}

// publish writes every VTEP's keys on its lease, a transaction of at most
// maxTxnOps puts at a time, and returns the transactions and puts made.
func (f *fleet) publish(ctx context.Context, parallel int) (txns, puts int, err error) {
	var nt, np atomic.Int64
	err = forEach(ctx, f.l.vteps, parallel, func(ctx context.Context, i int) error {
		for _, c := range chunks(f.l.vtepKVs(i), maxTxnOps) {
			ops := make([]clientv3.Op, len(c))
			for j, p := range c {
				ops[j] = clientv3.OpPut(p.key, p.value, clientv3.WithLease(f.leases[i]))
			}
			tctx, cancel := context.WithTimeout(ctx, requestTimeout)
			_, err := f.client(i).Txn(tctx).Then(ops...).Commit()
			cancel()
			if err != nil {
				return fmt.Errorf("vtep %d: txn of %d puts: %w", i, len(ops), err)
			}
			nt.Add(1)
			np.Add(int64(len(ops)))
		}
		return nil
	})
	return int(nt.Load()), int(np.Load()), err
}

// put makes one change: a transaction of one put on its owner's lease,
// as vtepd's writer sends a MAC it saw appear.
func (f *fleet) put(ctx context.Context, c change) error {
	tctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err := f.client(c.owner).Txn(tctx).Then(clientv3.OpPut(c.kv.key, c.kv.value, clientv3.WithLease(f.leases[c.owner]))).Commit()
	return err
}

// keeper keeps the leases of one client alive over one stream.
type keeper struct {
	f      *fleet
	cli    *clientv3.Client
	leases []clientv3.LeaseID
	next   []time.Time
	sent   atomic.Uint64
	acked  atomic.Uint64
	ack    chan struct{}
}

// keepAlive starts keeping every lease alive until ctx ends; the first
// due times are spread over a period, as leases granted at different
// moments would be.
func (f *fleet) keepAlive(ctx context.Context) error {
	period := keepalivePeriod(f.ttl)
	now := time.Now()
	for c, cli := range f.clis {
		k := &keeper{f: f, cli: cli, ack: make(chan struct{}, 1)}
		for i := c; i < len(f.leases); i += len(f.clis) {
			k.leases = append(k.leases, f.leases[i])
			k.next = append(k.next, now.Add(period*time.Duration(len(k.next))/time.Duration(max(1, f.l.vteps/len(f.clis)))))
		}
		stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(ctx)
		if err != nil {
			return fmt.Errorf("keepalive stream: %w", err)
		}
		f.keepers = append(f.keepers, k)
		f.wg.Add(2)
		go func() { defer f.wg.Done(); k.recv(ctx, stream) }()
		go func() { defer f.wg.Done(); k.send(ctx, stream) }()
	}
	return nil
}

func (f *fleet) fail(err error) {
	f.lostOnce.Do(func() { f.lost.Store(&err) })
}

// err is the first keepalive failure, if any.
func (f *fleet) err() error {
	if p := f.lost.Load(); p != nil {
		return *p
	}
	return nil
}

func (k *keeper) recv(ctx context.Context, stream pb.Lease_LeaseKeepAliveClient) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				k.f.fail(fmt.Errorf("keepalive stream: %w", err))
			}
			return
		}
		if resp.TTL <= 0 {
			k.f.fail(fmt.Errorf("lease %x lost (keepalive answered TTL %d)", resp.ID, resp.TTL))
		}
		k.acked.Add(1)
		select {
		case k.ack <- struct{}{}:
		default:
		}
	}
}

func (k *keeper) send(ctx context.Context, stream pb.Lease_LeaseKeepAliveClient) {
	period := keepalivePeriod(k.f.ttl)
	tick := time.NewTicker(keeperTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k.f.quiet.Lock()
		err := k.burst(ctx, stream, period)
		k.f.quiet.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				k.f.fail(err)
			}
			return
		}
	}
}

// burst sends the keepalives due and waits for their answers.
func (k *keeper) burst(ctx context.Context, stream pb.Lease_LeaseKeepAliveClient, period time.Duration) error {
	now := time.Now()
	for i, id := range k.leases {
		if now.Before(k.next[i]) {
			continue
		}
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
			return fmt.Errorf("keepalive send: %w", err)
		}
		k.sent.Add(1)
		k.next[i] = now.Add(period)
	}
	deadline := time.NewTimer(requestTimeout)
	defer deadline.Stop()
	for k.acked.Load() < k.sent.Load() {
		select {
		case <-k.ack:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("keepalives unanswered for 10 s")
		}
	}
	return nil
}

// quiesce runs fn while none of the fleet's keepalives is in flight and
// returns how many the fleet has sent (and had answered) so far.
func (f *fleet) quiesce(fn func() error) (uint64, error) {
	f.quiet.Lock()
	defer f.quiet.Unlock()
	var n uint64
	for _, k := range f.keepers {
		n += k.sent.Load()
	}
	return n, fn()
}

// close stops the clients, once; the keepers end with the context given
// to keepAlive, which the caller cancels first. The leases are left to
// expire with the lab's etcd.
func (f *fleet) close() {
	f.closeOnce.Do(func() {
		for _, c := range f.clis {
			c.Close()
		}
		f.wg.Wait()
	})
}
