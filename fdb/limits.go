package fdb

import (
	"sync/atomic"
	"time"
)

// moveWindow is the window in which move damping counts an entry's moves
// against Limits.MaxMoves.
const moveWindow = time.Second

// Limits are the table-wide limits, on learning and on control entries,
// set with SetLimits. The zero value sets none.
type Limits struct {
	// MaxLearned caps the learned entries of all VNIs together, on top of
	// each VNI's MaxEntries; zero (or a negative value) sets no cap.
	// Lowering it below the current count keeps the existing entries and
	// refuses new ones until enough have gone.
	MaxLearned int
	// MaxMoves damps MAC flapping: a learned entry that has already moved
	// MaxMoves times within a second (measured with the now passed to
	// Learn) does not move again until MoveHold has passed; such moves
	// are refused with Damped. Zero (or a negative value) turns damping
	// off. Refreshes from the entry's current remote are never damped.
	MaxMoves int
	// MoveHold is how long a damped entry stays where it is.
	MoveHold time.Duration
	// MaxControl caps the control entries of all VNIs together, so that a
	// control plane gone wrong cannot fill memory; zero (or a negative
	// value) sets no cap. Control entries are not learned and do not
	// count against MaxLearned or a VNI's MaxEntries, nor learned ones
	// against MaxControl. Lowering it below the current count keeps the
	// existing entries and refuses new ones until enough have gone.
	MaxControl int
}

// GlobalStats are the table-wide counters.
type GlobalStats struct {
	// Learned is the number of learned entries in all VNIs.
	Learned int
	// Refused counts learn attempts refused because the table held
	// Limits.MaxLearned learned entries (while the VNI had room); they are
	// also counted in their VNI's Stats.Refused.
	Refused uint64
	// Control is the number of control entries in all VNIs.
	Control int
	// ControlRefused counts AddControl calls refused with ErrControlFull;
	// they are also counted in their VNI's Stats.ControlRefused.
	ControlRefused uint64
}

// SetLimits sets the table-wide limits. They apply from the next Learn or
// AddControl; entries and counters are kept.
func (t *Table) SetLimits(l Limits) {
	t.g.maxLearned.Store(int64(max(l.MaxLearned, 0)))
	t.g.maxMoves.Store(int64(max(l.MaxMoves, 0)))
	t.g.moveHold.Store(int64(max(l.MoveHold, 0)))
	t.g.maxControl.Store(int64(max(l.MaxControl, 0)))
}

// GlobalStats returns the table-wide counters.
func (t *Table) GlobalStats() GlobalStats {
	return GlobalStats{
		Learned:        int(t.g.learned.Load()),
		Refused:        t.g.refused.Load(),
		Control:        int(t.g.control.Load()),
		ControlRefused: t.g.controlRefused.Load(),
	}
}

// global is the table-wide part of the table's state, which the shards
// point at.
type global struct {
	maxLearned atomic.Int64 // <= 0: no cap
	maxMoves   atomic.Int64 // <= 0: no damping
	moveHold   atomic.Int64 // nanoseconds
	maxControl atomic.Int64 // <= 0: no cap

	// The counters are written by every learner that adds or removes an
	// entry: keep them off the line of the settings, read by all.
	_ [cacheLine - 32]byte

	// learned counts the learned entries of all networks, including those
	// of removed networks not swept yet. Like vniState.learned, it is
	// taken with a compare-and-swap before an entry is inserted.
	learned atomic.Int64
	refused atomic.Uint64
	// control counts the control entries of all networks in the same way.
	// Only the control plane and removals write it, off the data path.
	control        atomic.Int64
	controlRefused atomic.Uint64
}

// reserve takes one unit of table-wide learning room, or reports that
// there is none.
func (g *global) reserve() bool {
	for {
		n := g.learned.Load()
		if m := g.maxLearned.Load(); m > 0 && n >= m {
			return false
		}
		if g.learned.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// reserveControl takes one unit of room for a control entry, or reports
// that there is none. The count is taken with a compare-and-swap, as
// writers in different shards may add control entries at once.
func (g *global) reserveControl() bool {
	for {
		n := g.control.Load()
		if m := g.maxControl.Load(); m > 0 && n >= m {
			return false
		}
		if g.control.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// full reports whether the table-wide cap has been reached.
func (g *global) full() bool {
	m := g.maxLearned.Load()
	return m > 0 && g.learned.Load() >= m
}

// reserve takes one unit of learning room, or reports that there is none.
// Learned is counted before the entry is inserted, with a compare-and-swap,
// so that concurrent learners in different shards cannot overshoot the cap.
func (st *vniState) reserve() bool {
	for {
		n := st.learned.Load()
		if n >= st.maxEntries.Load() {
			return false
		}
		if st.learned.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// allowMove applies move damping to the learned entry whose info is in,
// about to move at now: it reports whether the move may go ahead, and
// counts it if so. The caller holds the shard's lock.
func (in *slotInfo) allowMove(g *global, now int64) bool {
	maxMoves := g.maxMoves.Load()
	if maxMoves <= 0 {
		return true
	}
	if in.moves < 0 {
		if now < in.since {
			return false // held
		}
		in.moves = 0 // the hold is over
	}
	if in.moves == 0 || now-in.since >= int64(moveWindow) {
		in.since, in.moves = now, 0 // a new window
	}
	if int64(in.moves) >= maxMoves {
		in.since, in.moves = now+max(g.moveHold.Load(), 0), -1
		return false
	}
	in.moves++
	return true
}
