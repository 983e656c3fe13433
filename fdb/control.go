package fdb

import (
	"fmt"
	"net/netip"
)

// Control entries are the MAC routes of a control plane: it installs one
// with AddControl when it hears that a MAC is behind a VTEP, replaces it
// when the MAC moves, and withdraws it with DeleteControl when the route
// goes. The control plane keeps the set of routes it wants and diffs it
// against what it has installed; the table only keeps what is installed,
// so both calls are idempotent and report whether they changed anything.
//
// Design notes. DeleteControl takes the remote being withdrawn, and
// removes the entry only if it still points there: when a MAC moves, the
// route from the new VTEP may arrive before the old one is withdrawn (BGP
// EVPN makes no promise of order between peers), and the late withdrawal
// must not take the new route with it. It removes only control entries: a
// static entry outranks the route, and a learned one can only be there if
// no route was installed (the cap refused it, or it was deleted), so it
// is the data plane's, not the control plane's, to remove.
//
// A route refused because a static entry holds the key is not counted: a
// control plane retries every route it wants on each resync, so a count
// of attempts would measure resyncs, not conflicts. Nor is it remembered:
// when the static entry goes, the control plane must install the route
// again. Routes refused by Limits.MaxControl are counted, in the VNI's
// Stats.ControlRefused and in GlobalStats.ControlRefused, as they are
// the sign of a control plane gone wrong.

// AddControl installs a control entry, or changes the remote of an
// existing one, and reports whether the table changed: it did not if the
// key already had a control entry with that remote. A learned entry for
// the key is replaced; a static one is kept, and AddControl returns
// ErrStaticEntry. A new control entry, or one replacing a learned entry,
// is refused with ErrControlFull if the table already holds
// Limits.MaxControl control entries. The MAC must be unicast and
// non-zero, the remote valid, and the VNI known; IPv4-mapped IPv6 remotes
// are stored as IPv4.
func (t *Table) AddControl(vni uint32, mac MAC, remote netip.Addr) (bool, error) {
	if !mac.IsUnicast() || mac.IsZero() {
		return false, fmt.Errorf("%w: %v", ErrNotUnicast, mac)
	}
	if !remote.IsValid() {
		return false, fmt.Errorf("%w for %v", ErrInvalidRemote, mac)
	}
	st := t.network(vni)
	if st == nil {
		return false, fmt.Errorf("%w %d", ErrUnknownNetwork, vni)
	}
	k := key{vni, mac}
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addControlLocked(k, remote.Unmap(), st)
}

// addControlLocked is the part of AddControl done under the shard's lock.
func (s *shard) addControlLocked(k key, remote netip.Addr, st *vniState) (bool, error) {
	if st.removed.Load() {
		return false, fmt.Errorf("%w %d", ErrUnknownNetwork, k.vni)
	}
	h := hash(k.vni, k.mac)
	k0, k1 := packKey(k.vni, k.mac)
	tb := s.tab.Load()
	i, m, ok := tb.find(h, k0, k1)
	if ok && tb.info[i].net.Load() != st {
		s.removeAt(i) // stale, see learnLocked
		ok = false
	}
	if !ok {
		if !s.reserveControl(st) {
			return false, fmt.Errorf("%w: %d %v", ErrControlFull, k.vni, k.mac)
		}
		s.insert(h, k0, k1, s.rem.acquire(remote), Control, st, 0)
		st.control.Add(1)
		return true, nil
	}
	switch metaType(m) {
	case Static:
		return false, fmt.Errorf("%w: %d %v", ErrStaticEntry, k.vni, k.mac)
	case Control:
		if s.rem.is(m, remote) {
			return false, nil
		}
	default: // learned: the route takes its place
		if !s.reserveControl(st) {
			return false, fmt.Errorf("%w: %d %v", ErrControlFull, k.vni, k.mac)
		}
		st.learned.Add(-1)
		s.g.learned.Add(-1)
		st.control.Add(1)
	}
	// Change the entry in place. A refresh of the learned entry it was
	// may hold the busy bit; claim waits for it, and the refresh finds
	// the slot changed and gives up.
	r := s.rem.acquire(remote)
	sl, in := &tb.slots[i], &tb.info[i]
	tb.seq.Add(1)
	m = sl.claim()
	in.lastSeen.Store(0)
	in.since, in.moves = 0, 0
	sl.meta.Store(k1 | uint64(Control)<<metaTypeShift | r)
	tb.seq.Add(1)
	s.rem.release(metaRemote(m))
	return true, nil
}

// reserveControl takes room for one more control entry of the VNI, or
// counts the refusal.
func (s *shard) reserveControl(st *vniState) bool {
	if s.g.reserveControl() {
		return true
	}
	st.controlRefused.Add(1)
	s.g.controlRefused.Add(1)
	return false
}

// DeleteControl withdraws a control route: it removes the entry for the
// key if it is a control entry pointing at remote, and reports whether it
// did. Static and learned entries, and control entries that point
// elsewhere (the MAC has moved since), are left alone.
func (t *Table) DeleteControl(vni uint32, mac MAC, remote netip.Addr) bool {
	if !remote.IsValid() {
		return false
	}
	return t.remove(vni, mac, remote.Unmap())
}
