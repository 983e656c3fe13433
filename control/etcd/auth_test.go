package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/internal/etcdtest"
)

// etcd's own authentication: with auth enabled through the client API, a
// backend whose user may read and write the prefix works; one with a wrong
// password is refused, and one without credentials may not read or write:
// both count and log it, and keep trying.
func TestIntegrationAuth(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.Client(nil)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.UserAdd(ctx, "root", "rootpw")
	must("user add root", err)
	_, err = c.UserGrantRole(ctx, "root", "root")
	must("grant root", err)
	// vtepd's own user may read and write its prefix, and nothing else.
	_, err = c.RoleAdd(ctx, "vtepd")
	must("role add", err)
	_, err = c.RoleGrantPermission(ctx, "vtepd", "/vtepd/", clientv3.GetPrefixRangeEnd("/vtepd/"), clientv3.PermissionType(clientv3.PermReadWrite))
	must("grant permission", err)
	_, err = c.UserAdd(ctx, "vtepd", "s3cret")
	must("user add vtepd", err)
	_, err = c.UserGrantRole(ctx, "vtepd", "vtepd")
	must("grant vtepd", err)
	_, err = c.AuthEnable(ctx)
	must("auth enable", err)
	if _, err := c.Get(ctx, "/vtepd/"); err == nil {
		t.Fatal("auth enabled, yet an anonymous client may read")
	}
	root := s.Client(func(c *clientv3.Config) { c.Username, c.Password = "root", "rootpw" })

	withUser := func(c *Config) { c.Username, c.Password = "vtepd", "s3cret" }
	a := startVTEP(t, s, addrA.String(), withUser)
	b := startVTEP(t, s, addrB.String(), withUser)
	a.b.Join(100)
	b.b.Join(100)
	a.b.SetMAC(100, mac(1))
	b.b.SetMAC(100, mac(2))
	waitFor(t, a.sink, 10*time.Second, "A sees B with auth", hasMAC(100, mac(2), addrB))
	waitFor(t, b.sink, 10*time.Second, "B sees A with auth", hasMAC(100, mac(1), addrA))
	waitConnected(t, a, true, 5*time.Second)
	if got := getValue(t, root, "/vtepd/v1/vni/100/mac/02:00:00:00:00:01"); got != `{"vtep":"198.18.0.1"}` {
		t.Errorf("A's MAC key holds %q", got)
	}

	wrong, wrongLog := startRefused(t, s, "198.18.0.3", 100, func(c *Config) { c.Username, c.Password = "vtepd", "wrong" })
	anon, anonLog := startRefused(t, s, "198.18.0.4", 100, func(*Config) {})
	checkRefused(t, "wrong password", wrong, wrongLog, 30*time.Second, false)
	if l := wrongLog.String(); !strings.Contains(l, "authentication failed") {
		t.Errorf("wrong password: the log does not say authentication failed:\n%s", l)
	}
	// Without credentials the connection is fine and the list and the
	// writes are denied (etcd 3.4 does grant the lease).
	checkRefused(t, "no credentials", anon, anonLog, 30*time.Second, true)
	if l := anonLog.String(); !strings.Contains(l, "user name is empty") && !strings.Contains(l, "permission denied") {
		t.Errorf("no credentials: the log does not say why:\n%s", l)
	}
	for _, key := range []string{"/vtepd/v1/vni/100/vtep/198.18.0.3", "/vtepd/v1/vni/100/vtep/198.18.0.4",
		"/vtepd/v1/vni/100/mac/02:00:00:00:00:09"} {
		if got := getValue(t, root, key); got != "" {
			t.Errorf("%s holds %q", key, got)
		}
	}
	waitFor(t, a.sink, time.Second, "A still sees B", hasMAC(100, mac(2), addrB))
	if n := a.b.C.Errors[control.ReasonRequest].Load(); n != 0 {
		t.Errorf("the good backend counted %d failed requests", n)
	}
}
