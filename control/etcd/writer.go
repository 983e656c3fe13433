package etcd

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/control"
)

var errLeaseLost = errors.New("lease lost")

// writer holds the lease and reconciles etcd with the desired local state
// until ctx ends, then revokes the lease so that our keys vanish at once.
func (b *Backend) writer(ctx context.Context, cli *clientv3.Client) {
	var (
		lease    clientv3.LeaseID
		ka       <-chan *clientv3.LeaseKeepAliveResponse
		kaCancel = func() {}
		bo       backoff
		retry    <-chan time.Time
		// silent is the lease whose keepalives went unanswered for a
		// TTL: it may live on (an etcd that restarts extends its
		// leases), and is taken up again if it does.
		silent clientv3.LeaseID
	)
	defer func() { kaCancel() }()
	ttl := int64((b.cfg.LeaseTTL + time.Second - 1) / time.Second)
	for {
		if lease == 0 && silent != 0 {
			ch, cancel, alive, err := b.resume(ctx, cli, silent)
			switch {
			case err != nil:
				if !b.failed(ctx, &bo, err) {
					return
				}
				continue
			case alive:
				lease, ka, kaCancel = silent, ch, cancel
				bo.reset()
			default:
				b.loseLease(silent, errors.New("expired while its keepalives went unanswered"))
			}
			silent = 0
		}
		if lease == 0 {
			id, ch, cancel, err := b.grant(ctx, cli, ttl)
			if err != nil {
				// Without a lease we are not connected (the watcher
				// asks for one too), and a backend that never was
				// says why now rather than when the list, with its
				// longer deadline, gives up.
				if !b.failed(ctx, &bo, err) {
					return
				}
				continue
			}
			lease, ka, kaCancel = id, ch, cancel
			bo.reset()
		}
		retry = nil
		switch err := b.reconcile(ctx, cli, lease); {
		case errors.Is(err, errLeaseLost):
			b.loseLease(lease, err)
			kaCancel()
			lease = 0
			continue
		case err != nil && ctx.Err() == nil:
			b.C.Error(control.ReasonRequest)
			retry = time.After(bo.next())
		case err == nil:
			bo.reset()
		}
		select {
		case <-ctx.Done():
			kaCancel()
			if !b.abandon.Load() {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				cli.Revoke(rctx, lease)
				cancel()
			}
			return
		case _, ok := <-ka:
			if !ok {
				// The client gave up keeping the lease alive: etcd
				// did not answer for a TTL, or the lease is gone.
				// Which one, resume finds out once etcd answers.
				kaCancel()
				silent, lease = lease, 0
				b.leaseID.Store(0)
				b.setConnected(false, errors.New("lease keepalives unanswered"))
			}
		case <-b.wake:
		case <-retry:
		}
	}
}

// grant gets a new lease and keeps it alive; every local key is then
// written again, since the old lease's keys are gone or going.
func (b *Backend) grant(ctx context.Context, cli *clientv3.Client, ttl int64) (clientv3.LeaseID, <-chan *clientv3.LeaseKeepAliveResponse, context.CancelFunc, error) {
	// A Grant proposed as the leader dies can be lost with it, and then
	// waits for its deadline. The old lease, which we gave up because
	// its keepalives went unanswered for a TTL, lives on: the new leader
	// extends every lease by about an election timeout. A deadline
	// longer than that leaves our keys to vanish with the old lease
	// before the new one holds them; half the TTL leaves time for a
	// second try.
	gctx, cancel := context.WithTimeout(ctx, min(requestTimeout, b.cfg.LeaseTTL/2))
	g, err := cli.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return 0, nil, nil, err
	}
	kctx, kcancel := context.WithCancel(ctx)
	ch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		kcancel()
		return 0, nil, nil, err
	}
	if b.C.Leases.Add(1) > 1 {
		// Registered again after a loss: list again too, since what
		// led to the loss (an outage) may have hidden changes.
		signal(b.resync)
	}
	b.mu.Lock()
	b.ownLease[int64(g.ID)] = true
	clear(b.written)
	for k := range b.desired {
		b.dirty[k] = struct{}{}
	}
	b.mu.Unlock()
	b.leaseID.Store(int64(g.ID))
	b.log.Info("control: lease granted", "lease", int64(g.ID), "ttl", ttl)
	if b.watching.Load() && b.link() {
		b.setConnected(true, nil)
	}
	return g.ID, ch, kcancel, nil
}

// resume asks etcd whether lease, whose keepalives went unanswered, still
// lives, and keeps it alive again if it does: our keys are still on it,
// and nothing needs to be written. After an etcd restart every vtepd would
// otherwise write all its keys again at once, on a new lease. An error
// means etcd did not answer.
func (b *Backend) resume(ctx context.Context, cli *clientv3.Client, lease clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, context.CancelFunc, bool, error) {
	tctx, cancel := context.WithTimeout(ctx, min(requestTimeout, b.cfg.LeaseTTL/2))
	r, err := cli.TimeToLive(tctx, lease)
	cancel()
	if err != nil {
		return nil, nil, false, err
	}
	if r.TTL <= 0 {
		return nil, nil, false, nil
	}
	kctx, kcancel := context.WithCancel(ctx)
	ch, err := cli.KeepAlive(kctx, lease)
	if err != nil {
		kcancel()
		return nil, nil, false, err
	}
	b.leaseID.Store(int64(lease))
	b.log.Info("control: lease kept", "lease", int64(lease), "ttl_left", r.TTL)
	if b.watching.Load() && b.link() {
		b.setConnected(true, nil)
	}
	return ch, kcancel, true, nil
}

// loseLease: our registration is gone, so we are not connected until a
// new lease is granted and a list has resynced the view.
func (b *Backend) loseLease(id clientv3.LeaseID, why error) {
	b.C.Error(control.ReasonLease)
	b.leaseID.Store(0)
	b.log.Warn("control: lease lost, registering again", "lease", int64(id), "err", why)
	b.setConnected(false, why)
}

type putOp struct {
	k   Key
	key string
	val string
}

type delOp struct {
	k   Key
	key string
	rec writeRec
}

// reconcile writes the dirty keys: a put where the desired value differs
// from what we wrote, a compare-and-delete where we wrote a key no longer
// desired. Keys it could not write stay dirty.
func (b *Backend) reconcile(ctx context.Context, cli *clientv3.Client, lease clientv3.LeaseID) error {
	var puts []putOp
	var dels []delOp
	b.mu.Lock()
	for k := range b.dirty {
		e, want := b.desired[k]
		want = want && b.vnis[k.VNI]
		rec, wrote := b.written[k]
		switch {
		case want:
			val := EncodeValue(k.Kind, e.Port, e.VTEP, e.MAC)
			if !wrote || rec.value != val {
				puts = append(puts, putOp{k, FormatKey(b.prefix, k), val})
			}
		case wrote:
			dels = append(dels, delOp{k, FormatKey(b.prefix, k), rec})
		}
	}
	clear(b.dirty)
	b.mu.Unlock()

	requeue := func() {
		b.mu.Lock()
		for _, p := range puts {
			b.dirty[p.k] = struct{}{}
		}
		for _, d := range dels {
			b.dirty[d.k] = struct{}{}
		}
		b.mu.Unlock()
	}
	for len(puts) > 0 {
		n := min(len(puts), maxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, p := range puts[:n] {
			ops[i] = clientv3.OpPut(p.key, p.val, clientv3.WithLease(lease))
		}
		tctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			requeue()
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return errLeaseLost
			}
			return err
		}
		b.C.Txns.Add(1)
		b.C.Puts.Add(uint64(n))
		b.mu.Lock()
		for _, p := range puts[:n] {
			b.written[p.k] = writeRec{value: p.val, rev: resp.Header.Revision}
		}
		b.mu.Unlock()
		puts = puts[n:]
	}
	for len(dels) > 0 {
		d := dels[0]
		tctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := cli.Txn(tctx).
			If(clientv3.Compare(clientv3.ModRevision(d.key), "=", d.rec.rev)).
			Then(clientv3.OpDelete(d.key)).Commit()
		cancel()
		if err != nil {
			requeue()
			return err
		}
		b.C.Txns.Add(1)
		if resp.Succeeded {
			b.C.Deletes.Add(1)
		}
		b.log.Debug("control: delete", "key", d.key, "rev", d.rec.rev, "deleted", resp.Succeeded)
		b.mu.Lock()
		if b.written[d.k] == d.rec {
			delete(b.written, d.k)
		}
		b.mu.Unlock()
		dels = dels[1:]
	}
	return nil
}
