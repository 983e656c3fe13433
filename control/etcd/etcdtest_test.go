package etcd

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtepd/vtepd/control"
	"github.com/vtepd/vtepd/fdb"
	"github.com/vtepd/vtepd/internal/etcdtest"
)

// recSink records what a backend tells the engine.
type recSink struct {
	mu         sync.Mutex
	state      *control.State
	syncs      int
	emptySyncs int // Syncs that emptied a non-empty view
	events     []control.Event
}

func newRecSink() *recSink { return &recSink{state: control.NewState()} }

func (r *recSink) Sync(s *control.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	if s.Len() == 0 && r.state.Len() > 0 {
		r.emptySyncs++ // a Sync that emptied a view
	}
	r.events = append(r.events, control.Diff(r.state, s)...)
	r.state = s
}

func (r *recSink) Update(evs []control.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	r.state.Apply(evs)
}

func (r *recSink) view(f func(s *control.State) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r.state)
}

// waitFor polls cond on the sink's state until it holds or d passes.
func waitFor(t *testing.T, r *recSink, d time.Duration, what string, cond func(s *control.State) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !r.view(cond) {
		if time.Now().After(deadline) {
			r.mu.Lock()
			t.Fatalf("%s: not within %v; state %s", what, d, dump(r.state))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dump(s *control.State) string {
	var b strings.Builder
	for _, e := range control.Diff(nil, s) {
		b.WriteString("\n  " + e.String())
	}
	return b.String()
}

// vtepd is one backend under test, running until the test ends or stop.
type vtepd struct {
	b      *Backend
	sink   *recSink
	cancel context.CancelFunc
	done   chan error
}

func startVTEP(t *testing.T, s *etcdtest.Server, local string, tweak func(*Config)) *vtepd {
	t.Helper()
	return startVTEPWith(t, s, local, tweak, nil)
}

// startVTEPWith runs setup on the backend before Run.
func startVTEPWith(t *testing.T, s *etcdtest.Server, local string, tweak func(*Config), setup func(*Backend)) *vtepd {
	t.Helper()
	v := &vtepd{sink: newRecSink(), done: make(chan error, 1)}
	cfg := Config{
		Endpoints: []string{s.ClientURL},
		Prefix:    "/vtepd",
		LeaseTTL:  2 * time.Second,
		Local:     netip.MustParseAddr(local),
		Sink:      v.sink,
		Log:       testLogger(t, local),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.b = b
	if setup != nil {
		setup(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go func() { v.done <- b.Run(ctx) }()
	t.Cleanup(v.stop)
	return v
}

func (v *vtepd) stop() {
	v.cancel()
	<-v.done
	v.done <- nil // later stops return at once
}

var mac1 = fdb.MAC{0x02, 0x42, 0xc6, 0x13, 0x00, 0x0a}

func mac(last byte) fdb.MAC { return fdb.MAC{0x02, 0, 0, 0, 0, last} }

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
