package fdb

import (
	"math"
	"sync/atomic"
	"time"
)

// Network holds the per-VNI settings of the table.
type Network struct {
	// MaxEntries caps the number of learned entries in the VNI. Zero (or a
	// negative value) leaves no room for learning; static entries are not
	// counted. Lowering it below the current count keeps the existing
	// entries and refuses new ones until enough have gone.
	MaxEntries int
	// Ageing is how long a learned entry may go unseen before Expire
	// removes it. Zero (or a negative value) means learned entries never
	// age, as with the kernel's "ageing 0".
	Ageing time.Duration
}

// Stats are the counters of one VNI. Learned, Static and Control are
// current entry counts; the others are totals since the VNI was created by
// SetNetwork.
type Stats struct {
	Learned, Static, Control int
	// LearnedTotal counts entries added by learning, Moves counts learned
	// entries that changed remote, Refused counts learn attempts turned
	// away because the VNI, or the whole table, was full, Expired counts
	// entries removed by Expire.
	LearnedTotal, Moves, Refused, Expired uint64
	// Damped counts moves refused by move damping (Limits.MaxMoves).
	Damped uint64
	// ControlRefused counts AddControl calls refused because the table
	// held Limits.MaxControl control entries.
	ControlRefused uint64
}

// vniState holds one VNI's settings and counters. The pointer is stable for
// the life of the VNI: SetNetwork on an existing VNI updates the settings
// in place.
type vniState struct {
	maxEntries atomic.Int64
	ageing     atomic.Int64 // nanoseconds; <= 0: never

	// removed is set by RemoveNetwork, under Table.cfg, before a newer
	// state for the same VNI can be published. Writers check it under the
	// shard lock before inserting, so nothing is added behind the sweep.
	removed atomic.Bool

	learned, static, control                      atomic.Int64
	learnedTotal, moves, refused, expired, damped atomic.Uint64
	controlRefused                                atomic.Uint64
}

func (st *vniState) set(n Network) {
	st.maxEntries.Store(int64(max(n.MaxEntries, 0)))
	st.ageing.Store(int64(max(n.Ageing, 0)))
}

func (t *Table) network(vni uint32) *vniState {
	return (*t.nets.Load())[vni]
}

// SetNetwork creates the VNI or updates its settings. Updating keeps the
// VNI's entries and counters; new settings apply from the next Learn or
// Expire.
func (t *Table) SetNetwork(vni uint32, n Network) {
	if t.setNetwork(vni, n) {
		// Expire has passed over the network's entries, which did
		// not age; it must not pass over them by the old bounds.
		for i := range t.shards {
			s := &t.shards[i]
			s.mu.Lock()
			if tb := s.tab.Load(); tb != emptyTable {
				tb.oldest.Store(math.MinInt64)
			}
			s.mu.Unlock()
		}
	}
}

// setNetwork is SetNetwork but for the shards, and reports whether an
// existing network that did not age now does.
func (t *Table) setNetwork(vni uint32, n Network) bool {
	t.cfg.Lock()
	defer t.cfg.Unlock()
	cur := *t.nets.Load()
	if st, ok := cur[vni]; ok {
		started := st.ageing.Load() <= 0 && n.Ageing > 0
		st.set(n)
		return started
	}
	st := &vniState{}
	st.set(n)
	next := make(map[uint32]*vniState, len(cur)+1)
	for v, s := range cur {
		next[v] = s
	}
	next[vni] = st
	t.nets.Store(&next)
	return false
}

// RemoveNetwork drops the VNI, its entries of every type, and its
// counters. Removing an unknown VNI does nothing. Lookups racing with the
// removal may still find the VNI's entries until it returns.
func (t *Table) RemoveNetwork(vni uint32) {
	if st := t.unpublish(vni); st != nil {
		t.sweep(st)
	}
}

// unpublish takes the VNI out of the published map and marks its state
// removed, both under cfg, so that a later SetNetwork's new state never
// coexists with an unmarked old one.
func (t *Table) unpublish(vni uint32) *vniState {
	t.cfg.Lock()
	defer t.cfg.Unlock()
	cur := *t.nets.Load()
	st, ok := cur[vni]
	if !ok {
		return nil
	}
	next := make(map[uint32]*vniState, len(cur))
	for v, s := range cur {
		if v != vni {
			next[v] = s
		}
	}
	t.nets.Store(&next)
	st.removed.Store(true)
	return st
}

// sweep removes the entries counted by a removed state, shard by shard.
// Entries of a newer state for the same VNI are left alone.
func (t *Table) sweep(st *vniState) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		tb := s.tab.Load()
		for j := 0; j < len(tb.slots); {
			if tb.slots[j].key.Load() != 0 && tb.info[j].net.Load() == st {
				s.removeAt(j) // another entry may have moved into j
				continue
			}
			j++
		}
		if tb.count == 0 && tb != emptyTable {
			// Give the memory of an emptied shard back.
			s.tab.Store(emptyTable)
		}
		s.mu.Unlock()
	}
}

// Stats returns the VNI's counters, or false if the VNI is unknown.
func (t *Table) Stats(vni uint32) (Stats, bool) {
	st := t.network(vni)
	if st == nil {
		return Stats{}, false
	}
	return Stats{
		Learned:        int(st.learned.Load()),
		Static:         int(st.static.Load()),
		Control:        int(st.control.Load()),
		LearnedTotal:   st.learnedTotal.Load(),
		Moves:          st.moves.Load(),
		Refused:        st.refused.Load(),
		Expired:        st.expired.Load(),
		Damped:         st.damped.Load(),
		ControlRefused: st.controlRefused.Load(),
	}, true
}
