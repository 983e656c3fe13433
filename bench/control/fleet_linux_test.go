package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/internal/etcdtest"
)

// httpGet reads url: etcd's metrics here.
func httpGet(url string) ([]byte, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// TestIntegrationFleet runs a small fleet against a real etcd: every key
// on its VTEP's lease, and the keepalives it counts exactly those etcd
// counts.
func TestIntegrationFleet(t *testing.T) {
	url := etcdtest.Start(t, etcdtest.Options{}).ClientURL
	l := layout{prefix: "/vtepd", vni: 200, vteps: 10, macs: 5, ips: 2, port: 4789}
	var d net.Dialer
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	f, err := newFleet(l, []string{url}, dial, 3, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); f.close() }()
	if err := f.grant(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := f.keepAlive(ctx); err != nil {
		t.Fatal(err)
	}
	txns, puts, err := f.publish(ctx, 4)
	if err != nil || txns != 10 || puts != 80 {
		t.Fatalf("publish: %d txns, %d puts, %v; want 10, 80", txns, puts, err)
	}
	resp, err := f.clis[0].Get(ctx, l.prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	leases := map[int64]bool{}
	for _, kv := range resp.Kvs {
		leases[kv.Lease] = true
	}
	if len(resp.Kvs) != 80 || len(leases) != 10 || leases[0] {
		t.Errorf("etcd holds %d keys on %d leases (%v)", len(resp.Kvs), len(leases), leases)
	}

	counts := func() (uint64, grpcCounts) {
		var c grpcCounts
		n, err := f.quiesce(func() error {
			body, err := httpGet(url + "/metrics")
			if err == nil {
				c, err = parseGRPCCounts(string(body))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, c
	}
	n0, c0 := counts()
	time.Sleep(2500 * time.Millisecond) // a keepalive period is 1 s
	n1, c1 := counts()
	delta := c1.sub(c0)
	if n1-n0 < 10 || delta[methodKeepAlive] != float64(n1-n0) || len(delta) != 1 {
		t.Errorf("fleet sent %d keepalives; etcd counted %v", n1-n0, delta)
	}

	c := l.changeAt(changeMove, 3)
	if err := f.put(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := f.clis[1].Get(ctx, c.kv.key)
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != c.kv.value || got.Kvs[0].Lease != int64(f.leases[c.owner]) {
		t.Errorf("after the move: %v, %v; want %s on the lease of vtep %d", got.Kvs, err, c.kv.value, c.owner)
	}
	if err := f.err(); err != nil {
		t.Error(err)
	}
}
