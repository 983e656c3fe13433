package etcd

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/control"
)

var (
	errResync      = errors.New("resync asked")
	errWatchClosed = errors.New("watch channel closed")
)

// watcher lists and watches until ctx ends. Between a failed list and the
// next good one the last view stays: nothing reaches the sink.
func (b *Backend) watcher(ctx context.Context, cli *clientv3.Client) {
	bo := backoff{}
	for ctx.Err() == nil {
		// A resync asked before this list is served by it.
		select {
		case <-b.resync:
		default:
		}
		rev, err := b.list(ctx, cli)
		if err != nil {
			if !b.failed(ctx, &bo, err) {
				return
			}
			continue
		}
		bo.reset()
		b.watching.Store(true)
		if b.link() && b.leaseID.Load() != 0 {
			b.setConnected(true, nil)
		}
		if b.listed != nil {
			b.listed(rev)
		}
		err = b.watch(ctx, cli, rev)
		b.watching.Store(false)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrCompacted):
			b.C.Error(control.ReasonCompacted)
			b.log.Info("control: watch behind a compaction, listing again", "revision", b.revision.Load())
		case errors.Is(err, errResync):
		default:
			b.failed(ctx, &bo, err)
		}
	}
}

// list reads every key of the layout at one revision, builds the remote
// view and hands it to the sink. On error nothing changes.
func (b *Backend) list(ctx context.Context, cli *clientv3.Client) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 4*requestTimeout)
	defer cancel()
	resp, err := cli.Get(lctx, vniPrefix(b.prefix), clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	next := control.NewState()
	n := 0
	ours := make(map[Key]int64) // our keys in the store, at their mod revision
	for _, kv := range resp.Kvs {
		e, remote, err := b.decode(kv)
		if err != nil {
			b.refuse(err)
			continue
		}
		if !remote {
			ours[e.ID()] = kv.ModRevision
			continue
		}
		if n >= b.cfg.MaxEntries {
			b.C.Error(control.ReasonCap)
			continue
		}
		n++
		put(next, e)
	}
	rev := resp.Header.Revision
	b.checkOurs(ours)
	b.viewMu.Lock()
	b.view = next
	b.viewMu.Unlock()
	b.revision.Store(rev)
	b.C.Syncs.Add(1)
	b.cfg.Sink.Sync(next.Clone())
	return rev, nil
}

// watch follows changes after rev until the watch fails, falls behind a
// compaction (ErrCompacted), or a resync is asked.
func (b *Backend) watch(ctx context.Context, cli *clientv3.Client, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, vniPrefix(b.prefix), clientv3.WithPrefix(), clientv3.WithRev(rev+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.resync:
			return errResync
		case resp, ok := <-wch:
			if !ok {
				return errWatchClosed
			}
			if resp.CompactRevision != 0 {
				return rpctypes.ErrCompacted
			}
			if err := resp.Err(); err != nil {
				return err
			}
			var evs []control.Event
			for _, ev := range resp.Events {
				evs = b.apply(evs, ev)
			}
			if resp.Header.Revision > b.revision.Load() {
				b.revision.Store(resp.Header.Revision)
			}
			if len(evs) > 0 {
				b.C.Events.Add(uint64(len(evs)))
				b.cfg.Sink.Update(evs)
			}
		}
	}
}

// decode parses kv and says whether it is a remote entry (false: one of
// ours). A remote entry that overwrote one of ours after our write makes
// us forget ours (see the package's design notes).
func (b *Backend) decode(kv *mvccpb.KeyValue) (Entry, bool, error) {
	e, err := b.dec.Decode(string(kv.Key), kv.Value)
	if err != nil {
		return e, false, err
	}
	ours := false
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e.Kind {
	case KindVTEP:
		ours = e.VTEP == b.dec.Local
	case KindMAC:
		ours = e.VTEP == b.dec.Local
	case KindIP:
		ours = b.ownLease[kv.Lease]
	}
	if !ours {
		id := e.ID()
		if rec, ok := b.written[id]; ok && kv.ModRevision > rec.rev {
			delete(b.written, id)
			delete(b.desired, id)
			delete(b.dirty, id)
		}
	}
	return e, !ours, nil
}

// apply applies one watch event to the view and appends what the sink
// must hear.
func (b *Backend) apply(evs []control.Event, ev *clientv3.Event) []control.Event {
	if ev.Type == clientv3.EventTypeDelete {
		k, err := ParseKey(b.prefix, string(ev.Kv.Key))
		if err != nil {
			return evs // counted when it was put
		}
		b.deletedOurs(k, ev.PrevKv)
		return b.remove(evs, k)
	}
	e, remote, err := b.decode(ev.Kv)
	if err != nil {
		b.refuse(err)
		if k, kerr := ParseKey(b.prefix, string(ev.Kv.Key)); kerr == nil {
			return b.remove(evs, k)
		}
		return evs
	}
	if !remote {
		return b.remove(evs, e.ID())
	}
	b.viewMu.Lock()
	defer b.viewMu.Unlock()
	v := b.view.VNI(e.VNI)
	known := false
	switch e.Kind {
	case KindVTEP:
		old, ok := v.VTEPs[e.VTEP]
		if known = ok; ok && old == e.Port {
			return evs
		}
	case KindMAC:
		old, ok := v.MACs[e.MAC]
		if known = ok; ok && old == e.VTEP {
			return evs
		}
	case KindIP:
		old, ok := v.IPs[e.IP]
		if known = ok; ok && old == e.MAC {
			return evs
		}
	}
	if !known && b.view.Len() >= b.cfg.MaxEntries {
		b.C.Error(control.ReasonCap)
		if v.Len() == 0 {
			delete(b.view.VNIs, e.VNI)
		}
		return evs
	}
	put(b.view, e)
	return append(evs, added(e))
}

// checkOurs compares what a list found of our keys with what we wrote:
// one that is missing or was written since (by someone else, or deleted
// while no watch was there to see it) is written again if desired. After
// a lease kept through an outage, this is what finds the keys lost
// meanwhile without writing the others.
func (b *Backend) checkOurs(found map[Key]int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, rec := range b.written {
		if found[k] == rec.rev {
			continue
		}
		delete(b.written, k)
		if _, want := b.desired[k]; want {
			b.dirty[k] = struct{}{}
			signal(b.wake)
		}
	}
}

// deletedOurs notices a delete of one of our keys that we did not ask for
// (an operator, or our expired lease): it is written again if desired.
func (b *Backend) deletedOurs(k Key, prev *mvccpb.KeyValue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.written[k]
	if !ok || (prev != nil && prev.ModRevision != rec.rev) {
		return
	}
	delete(b.written, k)
	if _, want := b.desired[k]; want {
		b.dirty[k] = struct{}{}
		signal(b.wake)
	}
}

// remove drops k's entry from the view, if there is one.
func (b *Backend) remove(evs []control.Event, k Key) []control.Event {
	b.viewMu.Lock()
	defer b.viewMu.Unlock()
	v := b.view.VNIs[k.VNI]
	if v == nil {
		return evs
	}
	switch k.Kind {
	case KindVTEP:
		if port, ok := v.VTEPs[k.VTEP]; ok {
			delete(v.VTEPs, k.VTEP)
			evs = append(evs, control.Event{Kind: control.VTEPLeft, VNI: k.VNI, VTEP: k.VTEP, Port: port})
		}
	case KindMAC:
		if vtep, ok := v.MACs[k.MAC]; ok {
			delete(v.MACs, k.MAC)
			evs = append(evs, control.Event{Kind: control.MACRemoved, VNI: k.VNI, MAC: k.MAC, VTEP: vtep})
		}
	case KindIP:
		if mac, ok := v.IPs[k.IP]; ok {
			delete(v.IPs, k.IP)
			evs = append(evs, control.Event{Kind: control.IPRemoved, VNI: k.VNI, IP: k.IP, MAC: mac})
		}
	}
	if v.Len() == 0 {
		delete(b.view.VNIs, k.VNI)
	}
	return evs
}

func put(s *control.State, e Entry) {
	v := s.VNI(e.VNI)
	switch e.Kind {
	case KindVTEP:
		v.VTEPs[e.VTEP] = e.Port
	case KindMAC:
		v.MACs[e.MAC] = e.VTEP
	case KindIP:
		v.IPs[e.IP] = e.MAC
	}
}

func added(e Entry) control.Event {
	switch e.Kind {
	case KindVTEP:
		return control.Event{Kind: control.VTEPJoined, VNI: e.VNI, VTEP: e.VTEP, Port: e.Port}
	case KindMAC:
		return control.Event{Kind: control.MACAdded, VNI: e.VNI, MAC: e.MAC, VTEP: e.VTEP}
	default:
		return control.Event{Kind: control.IPAdded, VNI: e.VNI, IP: e.IP, MAC: e.MAC}
	}
}
