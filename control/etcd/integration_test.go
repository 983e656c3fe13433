package etcd

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/internal/etcdtest"
)

var (
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
	ip1   = netip.MustParseAddr("10.0.0.1")
	ip6   = netip.MustParseAddr("fd00::1")
)

func hasMAC(vni uint32, m fdb.MAC, vtep netip.Addr) func(*control.State) bool {
	return func(s *control.State) bool {
		v := s.VNIs[vni]
		return v != nil && v.MACs[m] == vtep
	}
}

func noMAC(vni uint32, m fdb.MAC) func(*control.State) bool {
	return func(s *control.State) bool {
		v := s.VNIs[vni]
		_, ok := v.MACs[m]
		return v == nil || !ok
	}
}

func getValue(t *testing.T, c *clientv3.Client, key string) string {
	t.Helper()
	resp, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// Two vtepds on one etcd see each other's VTEP, MAC and IP entries, and
// neither sees its own.
func TestIntegrationTwoVTEPs(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a := startVTEP(t, s, addrA.String(), nil)
	b := startVTEP(t, s, addrB.String(), nil)
	for _, v := range []*vtepd{a, b} {
		v.b.Join(100)
	}
	a.b.SetMAC(100, mac(1))
	a.b.SetIP(100, ip1, mac(1))
	b.b.SetMAC(100, mac(2))
	b.b.SetIP(100, ip6, mac(2))

	want := func(peer netip.Addr, m fdb.MAC, ip netip.Addr) func(*control.State) bool {
		return func(s *control.State) bool {
			v := s.VNIs[100]
			return v != nil && v.VTEPs[peer] == control.DefaultPort && v.MACs[m] == peer && v.IPs[ip] == m &&
				len(v.VTEPs) == 1 && len(v.MACs) == 1 && len(v.IPs) == 1
		}
	}
	waitFor(t, a.sink, 5*time.Second, "A sees B", want(addrB, mac(2), ip6))
	waitFor(t, b.sink, 5*time.Second, "B sees A", want(addrA, mac(1), ip1))

	c := s.Client(nil)
	if got := getValue(t, c, "/vtepd/v1/vni/100/mac/02:00:00:00:00:01"); got != `{"vtep":"198.18.0.1"}` {
		t.Errorf("A's MAC key holds %q", got)
	}
	if got := getValue(t, c, "/vtepd/v1/vni/100/ip/10.0.0.1"); got != `{"mac":"02:00:00:00:00:01"}` {
		t.Errorf("A's IP key holds %q", got)
	}
	if got := getValue(t, c, "/vtepd/v1/vni/100/vtep/198.18.0.2"); got != `{"port":4789}` {
		t.Errorf("B's VTEP key holds %q", got)
	}
	st := a.b.Status()
	if !st.Connected || st.LeaseID == 0 || st.Revision == 0 || len(st.Entries) != 1 ||
		st.Entries[0] != (control.VNIEntries{VNI: 100, RemoteVTEPs: 1, RemoteMACs: 1, RemoteIPs: 1, LocalMACs: 1, LocalIPs: 1}) {
		t.Errorf("status: %+v", st)
	}

	// Withdrawals reach the other side; Leave withdraws the VNI.
	a.b.DelIP(100, ip1)
	a.b.DelMAC(100, mac(1))
	waitFor(t, b.sink, 5*time.Second, "B sees A's MAC and IP go", func(s *control.State) bool {
		v := s.VNIs[100]
		return v != nil && len(v.MACs) == 0 && len(v.IPs) == 0 && len(v.VTEPs) == 1
	})
	a.b.Leave(100)
	waitFor(t, b.sink, 5*time.Second, "B sees A leave", func(s *control.State) bool { return s.VNIs[100] == nil })
	waitFor(t, a.sink, 5*time.Second, "A drops VNI 100", func(s *control.State) bool { return s.VNIs[100] == nil })
}

// A MAC that moves is overwritten by its new owner; the old owner's late
// delete does not remove it (compare-and-delete), and the MAC can move back.
func TestIntegrationMACMove(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a := startVTEP(t, s, addrA.String(), nil)
	b := startVTEP(t, s, addrB.String(), nil)
	a.b.Join(7)
	b.b.Join(7)
	c := s.Client(nil)
	key := "/vtepd/v1/vni/7/mac/02:42:c6:13:00:0a"

	a.b.SetMAC(7, mac1)
	waitFor(t, b.sink, 5*time.Second, "B sees the MAC behind A", hasMAC(7, mac1, addrA))
	b.b.SetMAC(7, mac1)
	waitFor(t, a.sink, 5*time.Second, "A sees the MAC move to B", hasMAC(7, mac1, addrB))
	waitFor(t, b.sink, 5*time.Second, "B no longer sees it remote", noMAC(7, mac1))

	// A ages the MAC out late: the key is B's now and stays.
	a.b.DelMAC(7, mac1)
	time.Sleep(500 * time.Millisecond)
	if got := getValue(t, c, key); got != `{"vtep":"198.18.0.2"}` {
		t.Fatalf("after A's late delete the key holds %q", got)
	}
	// It moves back: A writes it again.
	a.b.SetMAC(7, mac1)
	waitFor(t, b.sink, 5*time.Second, "B sees the MAC back behind A", hasMAC(7, mac1, addrA))

	// A delete removes only our own value: an operator overwrote A's key,
	// A's delete leaves the operator's value alone.
	if _, err := c.Put(context.Background(), key, `{"vtep":"198.18.0.9"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.sink, 5*time.Second, "B sees the operator's value", hasMAC(7, mac1, netip.MustParseAddr("198.18.0.9")))
	a.b.DelMAC(7, mac1)
	time.Sleep(500 * time.Millisecond)
	if got := getValue(t, c, key); got != `{"vtep":"198.18.0.9"}` {
		t.Fatalf("A deleted a key it no longer owned: %q", got)
	}
	if n := a.b.C.Deletes.Load(); n != 0 {
		t.Errorf("A deleted %d keys it no longer owned", n)
	}
}

// Compare-and-delete, directly: a put by someone else between our put and
// our delete makes the delete a no-op.
func TestIntegrationDeleteOnlyOurs(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a := startVTEP(t, s, addrA.String(), nil)
	a.b.Join(5)
	c := s.Client(nil)
	key := "/vtepd/v1/vni/5/ip/10.0.0.1"
	a.b.SetIP(5, ip1, mac(1))
	deadline := time.Now().Add(5 * time.Second)
	for getValue(t, c, key) == "" {
		if time.Now().After(deadline) {
			t.Fatal("A's IP never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Hold A's writer back while another host writes the same value: the
	// value compares equal but the key is no longer the one A wrote.
	a.b.mu.Lock()
	if _, err := c.Put(context.Background(), key, `{"mac":"02:00:00:00:00:01"}`); err != nil {
		a.b.mu.Unlock()
		t.Fatal(err)
	}
	a.b.setLocked(Key{VNI: 5, Kind: KindIP, IP: ip1}, Entry{}, false)
	a.b.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	if got := getValue(t, c, key); got != `{"mac":"02:00:00:00:00:01"}` {
		t.Fatalf("the other host's key was deleted: %q", got)
	}
	// Our own key goes.
	a.b.SetMAC(5, mac(3))
	mk := "/vtepd/v1/vni/5/mac/02:00:00:00:00:03"
	for getValue(t, c, mk) == "" {
		time.Sleep(20 * time.Millisecond)
	}
	a.b.DelMAC(5, mac(3))
	deadline = time.Now().Add(5 * time.Second)
	for getValue(t, c, mk) != "" {
		if time.Now().After(deadline) {
			t.Fatal("A's own MAC key not deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A vtepd that dies without revoking its lease disappears from the others
// within the lease TTL plus a second; one that stops cleanly at once.
func TestIntegrationLeaseExpiry(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	a := startVTEP(t, s, addrA.String(), nil)
	b := startVTEP(t, s, addrB.String(), nil)
	c := startVTEP(t, s, "198.18.0.3", nil)
	for _, v := range []*vtepd{a, b, c} {
		v.b.Join(1)
	}
	b.b.SetMAC(1, mac(2))
	c.b.SetMAC(1, mac(3))
	waitFor(t, a.sink, 5*time.Second, "A sees B and C", func(s *control.State) bool {
		v := s.VNIs[1]
		return v != nil && len(v.VTEPs) == 2 && len(v.MACs) == 2
	})

	b.b.abandon.Store(true)
	b.stop()
	start := time.Now()
	waitFor(t, a.sink, 2*time.Second+time.Second+500*time.Millisecond, "B's entries vanish", func(s *control.State) bool {
		v := s.VNIs[1]
		_, vtep := v.VTEPs[addrB]
		_, m := v.MACs[mac(2)]
		return !vtep && !m
	})
	t.Logf("a dead vtepd's entries vanished after %v (ttl 2s)", time.Since(start).Round(10*time.Millisecond))

	c.stop()
	waitFor(t, a.sink, time.Second, "C's entries vanish at once", func(s *control.State) bool { return s.VNIs[1] == nil })
}

// Hostile keys, each bad kind, are counted and skipped, and the good keys
// after them are applied; both in the first list and in the watch.
func TestIntegrationHostileKeys(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	c := s.Client(nil)
	bad := []struct {
		key, value string
		reason     control.Reason
	}{
		{"/vtepd/v1/vni/1/mac/02:00:00:00:00:aa", `{"vtep":`, control.ReasonJSON},
		{"/vtepd/v1/vni/1/vtep/198.18.0.50", `{"port":"x"}`, control.ReasonJSON},
		{"/vtepd/v1/vni/1/mac/02:00:00:00:00:AB", `{"vtep":"198.18.0.5"}`, control.ReasonMAC},
		{"/vtepd/v1/vni/1/mac/zz", `{"vtep":"198.18.0.5"}`, control.ReasonMAC},
		{"/vtepd/v1/vni/1/ip/10.0.0.300", `{"mac":"02:00:00:00:00:01"}`, control.ReasonIP},
		{"/vtepd/v1/vni/1/mac/02:00:00:00:00:ac", `{"vtep":"not-an-ip"}`, control.ReasonIP},
		{"/vtepd/v1/vni/1/vtep/2001:db8::1", `{"port":4789}`, control.ReasonFamily},
		{"/vtepd/v1/vni/1/mac/02:00:00:00:00:ad", `{"vtep":"2001:db8::1"}`, control.ReasonFamily},
		{"/vtepd/v1/vni/1/ip/10.0.0.9", `{"mac":"ff:ff:ff:ff:ff:ff"}`, control.ReasonGroupMAC},
		{"/vtepd/v1/vni/1/ip/10.0.0.8", `{"mac":"01:00:5e:00:00:01"}`, control.ReasonGroupMAC},
		{"/vtepd/v1/vni/2/mac/02:00:00:00:00:ae", `{"vtep":"198.18.0.5"}`, control.ReasonVNI},
		{"/vtepd/v1/vni/1/route/x", `{}`, control.ReasonKey},
		{"/vtepd/v1/vni/01/mac/02:00:00:00:00:af", `{"vtep":"198.18.0.5"}`, control.ReasonKey},
	}
	put := func(round int) {
		for i, k := range bad {
			if _, err := c.Put(context.Background(), k.key, k.value); err != nil {
				t.Fatal(err)
			}
			good := fmt.Sprintf("/vtepd/v1/vni/1/mac/02:00:00:00:%02x:%02x", round, i)
			if _, err := c.Put(context.Background(), good, `{"vtep":"198.18.0.5"}`); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(1) // before the vtepd starts: seen by its list
	a := startVTEP(t, s, addrA.String(), nil)
	a.b.Join(1)
	waitFor(t, a.sink, 5*time.Second, "the good keys of the list", func(s *control.State) bool {
		v := s.VNIs[1]
		return v != nil && len(v.MACs) == len(bad)
	})
	want := make(map[control.Reason]uint64)
	for _, k := range bad {
		want[k.reason]++
	}
	// The Join made a second list, which counted the bad keys again:
	// wait for the counts to settle at a multiple, then put them again.
	time.Sleep(300 * time.Millisecond)
	base := make(map[control.Reason]uint64)
	for r := range want {
		base[r] = a.b.C.Errors[r].Load()
		if base[r] == 0 || base[r]%want[r] != 0 {
			t.Errorf("%v after the list: %d, want a multiple of %d", r, base[r], want[r])
		}
	}
	put(2) // while it watches
	waitFor(t, a.sink, 5*time.Second, "the good keys of the watch", func(s *control.State) bool {
		return len(s.VNIs[1].MACs) == 2*len(bad)
	})
	for r, n := range want {
		if got := a.b.C.Errors[r].Load() - base[r]; got != n {
			t.Errorf("%v in the watch: %d, want %d", r, got, n)
		}
	}
	if st := a.b.Status(); st.Errors["bad_json"] == 0 || !st.Connected {
		t.Errorf("status: %+v", st)
	}
}

// Entries beyond the cap are refused and counted, in a list and a watch.
func TestIntegrationCap(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	c := s.Client(nil)
	for i := 0; i < 8; i++ {
		c.Put(context.Background(), fmt.Sprintf("/vtepd/v1/vni/1/mac/02:00:00:00:00:%02x", i), `{"vtep":"198.18.0.5"}`)
	}
	a := startVTEP(t, s, addrA.String(), func(c *Config) { c.MaxEntries = 5 })
	a.b.Join(1)
	waitFor(t, a.sink, 5*time.Second, "capped list", func(s *control.State) bool { return s.Len() == 5 })
	before := a.b.C.Errors[control.ReasonCap].Load()
	if before < 3 {
		t.Errorf("cap refusals after the list: %d, want at least 3", before)
	}
	for i := 8; i < 12; i++ {
		c.Put(context.Background(), fmt.Sprintf("/vtepd/v1/vni/1/ip/10.0.0.%d", i), `{"mac":"02:00:00:00:00:01"}`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.b.C.Errors[control.ReasonCap].Load()-before < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("cap refusals in the watch: %d, want 4", a.b.C.Errors[control.ReasonCap].Load()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.sink.view(func(s *control.State) bool { return s.Len() == 5 }); !n {
		t.Error("the view grew past the cap")
	}
	// A freed place is taken by the next new key.
	c.Delete(context.Background(), "/vtepd/v1/vni/1/mac/02:00:00:00:00:00")
	c.Put(context.Background(), "/vtepd/v1/vni/1/ip/10.0.0.99", `{"mac":"02:00:00:00:00:01"}`)
	waitFor(t, a.sink, 5*time.Second, "freed place taken", func(s *control.State) bool {
		_, ok := s.VNIs[1].IPs[netip.MustParseAddr("10.0.0.99")]
		return ok && s.Len() == 5
	})
}
