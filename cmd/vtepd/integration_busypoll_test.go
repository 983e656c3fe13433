//go:build linux

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/vtepd/vtepd/internal/topo"
)

// busy_poll: both daemons carry pings while polling, account for the time
// they polled, and stop polling once traffic stops.
func TestIntegrationBusyPoll(t *testing.T) {
	t.Parallel()
	lab := topo.NewT(t, "vbp")
	nodes := newNodes(t, lab, 2)
	for i, n := range nodes {
		n.runVtepd(t, "state_dir = \"\"\nbusy_poll = \"100ms\"\n\n"+configBody(n.host, peersOf(nodes, i)))
	}
	pingEach(t, nodes)
	for i, n := range nodes {
		other := nodes[1-i]
		expectFDB(t, n.host, other.mac, "learned", other.host.Underlay)
		if v := metric(t, n.host, "vtep_busy_poll_seconds_total"); v <= 0 {
			t.Errorf("%s: vtep_busy_poll_seconds_total = %v after pings, want > 0", n.host.Name, v)
		}
		eventually(t, 5*time.Second, n.host.Name+" busy poller asleep", func() error {
			if v := metric(t, n.host, "vtep_busy_polling"); v != 0 {
				return fmt.Errorf("vtep_busy_polling = %v", v)
			}
			return nil
		})
	}
	// Asleep, it still carries traffic, and wakes up for it.
	before := metric(t, nodes[0].host, "vtep_busy_poll_seconds_total")
	if err := nodes[0].ctr.Ping(nodes[1].ctr.Addr.Addr(), 1, 56, false); err != nil {
		t.Fatal(err)
	}
	if after := metric(t, nodes[0].host, "vtep_busy_poll_seconds_total"); after <= before {
		t.Errorf("vtep_busy_poll_seconds_total stayed at %v across a ping", after)
	}
}
