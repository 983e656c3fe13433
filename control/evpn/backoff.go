package evpn

// Reconnecting with backoff. GoBGP retries a neighbor at a fixed,
// jittered interval for as long as it is unreachable. This doubles the
// interval, from connectRetry to maxConnectRetry, each time the neighbor
// has stayed down through a few attempts at the current one, and goes
// back to connectRetry once a session is established: a fleet of vtepds
// does not hammer a route reflector that is down for a while, yet one
// that comes back after a blip is reached within seconds.
//
// GoBGP reads the interval when its connection loop starts, so a new one
// is applied by updating the neighbor's timers and cycling it through
// disabled and enabled, which restarts the loop. That happens only while
// the session is down, so it costs nothing.

import (
	"context"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// attemptsPerStep is how many attempts (on average) a neighbor gets at
// one interval before it doubles.
const attemptsPerStep = 3

// nextRetry is the connect-retry interval for a neighbor that has been
// down for down and was last given retry at changed ago.
func nextRetry(retry time.Duration, up bool, changed time.Duration) time.Duration {
	switch {
	case up:
		return connectRetry
	case retry >= maxConnectRetry:
		return maxConnectRetry
	case changed >= idleHoldTime+attemptsPerStep*3*retry/2:
		return min(2*retry, maxConnectRetry)
	}
	return retry
}

// idleHoldTime is GoBGP's fixed wait before it reconnects a session that
// dropped, or a neighbor just enabled.
const idleHoldTime = 5 * time.Second

// backoff applies nextRetry to every neighbor, once a second, until ctx
// ends.
func (b *Backend) backoff(ctx context.Context, s *server.BgpServer) {
	changed := make([]time.Time, len(b.cfg.Neighbors))
	for i := range changed {
		changed[i] = time.Now()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i, n := range b.cfg.Neighbors {
			b.stMu.Lock()
			ss := &b.sessions[i]
			up, retry := ss.up, ss.retry
			if ss.since.After(changed[i]) {
				changed[i] = ss.since // it went up or down since
			}
			b.stMu.Unlock()
			next := nextRetry(retry, up, time.Since(changed[i]))
			if next == retry {
				continue
			}
			p := b.peer(n)
			p.Timers.Config.ConnectRetry = uint64(next / time.Second)
			if _, err := s.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: p}); err != nil {
				b.log.Debug("control: connect retry not updated", "neighbor", n.Address, "err", err)
				continue
			}
			if !up {
				// Restart GoBGP's connection loop at the new interval.
				addr := n.Address.String()
				s.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr})
				s.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr})
				b.log.Debug("control: neighbor unreachable, retrying less often", "neighbor", n.Address, "connect_retry", next)
			}
			changed[i] = time.Now()
			b.stMu.Lock()
			b.sessions[i].retry = next
			b.stMu.Unlock()
		}
	}
}
