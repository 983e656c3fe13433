package fdb

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned, wrapped, by AddStatic and AddControl.
var (
	ErrUnknownNetwork = errors.New("fdb: unknown VNI")
	ErrNotUnicast     = errors.New("fdb: MAC is not a unicast address")
	ErrInvalidRemote  = errors.New("fdb: invalid remote address")
	// ErrStaticEntry: AddControl found a static entry for the key, which
	// takes precedence.
	ErrStaticEntry = errors.New("fdb: a static entry holds the MAC")
	// ErrControlFull: AddControl would have added a control entry beyond
	// Limits.MaxControl.
	ErrControlFull = errors.New("fdb: too many control entries")
)

const (
	// fastTries bounds how often Learn retries its lock-free look when a
	// writer gets in the way before it takes the shard's lock.
	fastTries = 4

	// lookupYield is how often Lookup retries a look that a writer got
	// in the way of before it yields to the writer.
	lookupYield = 64
)

// Type says where an entry came from.
type Type uint8

const (
	// Learned entries come from received datagrams, are refreshed by them,
	// age out and count against a network's MaxEntries.
	Learned Type = iota + 1
	// Static entries come from configuration. They never age, do not
	// count against MaxEntries and are never changed by learning.
	Static
	// Control entries are MAC routes installed by a control plane. They
	// never age, are never changed by learning, and do not count against
	// MaxEntries or Limits.MaxLearned but against Limits.MaxControl. A
	// static entry for the same key takes precedence over them, and they
	// over a learned one.
	Control
)

func (t Type) String() string {
	switch t {
	case Learned:
		return "learned"
	case Static:
		return "static"
	case Control:
		return "control"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Entry is one row of a snapshot returned by Table.Entries.
type Entry struct {
	VNI    uint32
	MAC    MAC
	Remote netip.Addr
	Type   Type
	// Age is how long ago, relative to the now passed to Entries, the
	// entry was last learned or refreshed. It is zero for static and
	// control entries.
	// Refreshes are recorded with a granularity of about 100ms.
	Age time.Duration
}

// LearnResult says what Learn did.
type LearnResult uint8

const (
	// Refreshed: the entry existed with the same remote; its last-seen
	// time was brought up to date.
	Refreshed LearnResult = iota
	// Added: a new learned entry was created.
	Added
	// Moved: the MAC was known behind another remote; the entry now points
	// at the new one.
	Moved
	// Refused: the VNI already holds MaxEntries learned entries, or the
	// table Limits.MaxLearned in all VNIs.
	Refused
	// Ignored: a static or control entry holds the key, the VNI is
	// unknown, the MAC is zero or not unicast, or the remote is not a
	// valid address.
	Ignored
	// Damped: the MAC would have moved, but it has moved too often (see
	// Limits.MaxMoves); the entry keeps its remote.
	Damped
)

func (r LearnResult) String() string {
	switch r {
	case Refreshed:
		return "refreshed"
	case Added:
		return "added"
	case Moved:
		return "moved"
	case Refused:
		return "refused"
	case Ignored:
		return "ignored"
	case Damped:
		return "damped"
	}
	return "LearnResult(" + strconv.Itoa(int(r)) + ")"
}

// Table is the forwarding database. The zero value is not usable; call New.
// All methods are safe for concurrent use.
type Table struct {
	// tabs[i] is shard i's current table: what Lookup reads first, kept
	// apart from the shards' locks in 2 KiB that stay in cache.
	tabs   [numShards]atomic.Pointer[table]
	shards [numShards]shard

	// rem interns the remote addresses that entries point at.
	rem remotes

	// nets maps VNI to its settings and counters. The map is never
	// modified once published: SetNetwork and RemoveNetwork copy it under
	// cfg and store a new one, so the data path reads it without locking.
	nets atomic.Pointer[map[uint32]*vniState]
	cfg  sync.Mutex

	// g holds the limits and counters of the whole table.
	g global
}

// New returns an empty table with no networks.
func New() *Table {
	t := &Table{}
	for i := range t.shards {
		s := &t.shards[i]
		s.tab = &t.tabs[i]
		s.tab.Store(emptyTable)
		s.rem = &t.rem
		s.g = &t.g
	}
	t.rem.init()
	nets := map[uint32]*vniState{}
	t.nets.Store(&nets)
	return t
}

func (t *Table) shard(k key) *shard {
	return &t.shards[shardIndex(k.vni, k.mac)]
}

// Lookup returns the remote VTEP for the MAC in the VNI. It takes no lock,
// writes no shared memory and does not allocate.
func (t *Table) Lookup(vni uint32, mac MAC) (netip.Addr, bool) {
	// This is find and remotes.addr written out: the calls were a sizeable
	// share of a lookup that hits in the cache. Once the table outgrows the
	// cache, what costs is the wait for the slot's line, and how many
	// later lookups the processor can start meanwhile: fewer, the more
	// instructions and dependent loads a lookup takes.
	x := macBits(mac)
	h := hashBits(vni, x)
	tp := &t.tabs[h>>(64-shardBits)]
	k0, k1 := x<<keyVNIBits|uint64(vni&keyVNIMask), uint64(vni>>keyVNIBits)<<metaVNIShift
	for tries := 1; ; tries++ {
		tb := tp.Load()
		seq := tb.seq.Load()
		slots := tb.slots
		i := tb.home(h)
		m := uint64(0) // the entry's meta word, never 0 as its type is set
		for range slots {
			sl := &slots[i&(len(slots)-1)]
			w := sl.key.Load()
			if w == 0 {
				break
			}
			if w == k0 {
				if mm := sl.meta.Load(); mm&metaVNIMask == k1 {
					m = mm
					break
				}
			}
			i++
		}
		var a netip.Addr
		if m&metaV6 == 0 {
			if m != 0 {
				a = addr4(m)
			}
		} else if p := t.rem.load(uint32(m)); p != nil {
			a = *p
		} else {
			m = 0 // torn; the check below fails
		}
		if tb.seq.Load() == seq && seq&1 == 0 {
			return a, m != 0
		}
		if tries%lookupYield == 0 {
			// The writer has been descheduled in the middle of its
			// change; let it finish.
			runtime.Gosched()
		}
	}
}

// Learn records that a datagram for the VNI carried the inner source MAC
// from the underlay source address remote, at time now (monotonic
// nanoseconds, from the caller's clock). IPv4-mapped IPv6 remotes are
// stored as IPv4.
//
// Refreshing an entry whose remote is unchanged takes no lock, and neither
// does refusing a new entry in a full VNI or table. Learn does not
// allocate unless the shard's table must grow or the remote is new to the
// table.
func (t *Table) Learn(vni uint32, mac MAC, remote netip.Addr, now int64) LearnResult {
	if !mac.IsUnicast() || mac.IsZero() || !remote.IsValid() {
		return Ignored
	}
	st := t.network(vni)
	if st == nil {
		return Ignored
	}
	remote = remote.Unmap()
	h := hash(vni, mac)
	tp := &t.tabs[h>>(64-shardBits)]
	k0, k1 := packKey(vni, mac)

	// The lock-free look. Leaving the loop by break means the entry must
	// change; going round again means a writer got in the way.
	for range fastTries {
		tb := tp.Load()
		seq := tb.seq.Load()
		i, m, ok := tb.find(h, k0, k1)
		if !ok {
			if tb.seq.Load() != seq || seq&1 != 0 {
				continue
			}
			if st.learned.Load() >= st.maxEntries.Load() {
				st.refused.Add(1)
				return Refused
			}
			if t.g.full() {
				st.refused.Add(1)
				t.g.refused.Add(1)
				return Refused
			}
			break
		}
		sl, in := &tb.slots[i], &tb.info[i]
		net := in.net.Load()
		seen := in.lastSeen.Load()
		same := t.rem.is(m, remote)
		if tb.seq.Load() != seq || seq&1 != 0 {
			continue
		}
		if net != st {
			break // left over from an earlier incarnation; see learnLocked
		}
		if metaType(m) != Learned {
			return Ignored // static or control: learning does not touch it
		}
		if !same {
			break // a move
		}
		if now-seen <= refreshSlack {
			return Refreshed
		}
		if testHookStore != nil {
			testHookStore()
		}
		// Store lastSeen under the slot's busy bit. The compare-and-swap
		// fails if a writer has changed or claimed the slot since the
		// look; the slot is checked again in case it was changed and
		// changed back to the same meta word.
		if m&metaBusy != 0 || !sl.meta.CompareAndSwap(m, m|metaBusy) {
			continue
		}
		ours := sl.key.Load() == k0 && in.net.Load() == st && t.rem.is(m, remote)
		if ours {
			in.touch(now)
		}
		sl.meta.Store(m)
		if ours {
			return Refreshed
		}
	}

	s := &t.shards[h>>(64-shardBits)]
	s.mu.Lock()
	r := s.learnLocked(key{vni, mac}, remote, st, now)
	s.mu.Unlock()
	return r
}

// Test hooks, nil but in tests. testHookStore is called by a lock-free
// refresh between its look and its store, so that tests can change the
// table in between; testHookMove by removeAt in the middle of moving an
// entry, so that tests can look at the table then.
var testHookStore, testHookMove func()

// learnLocked is the part of Learn that may modify the shard. The shard may
// have changed since the lock-free look, so everything is checked again.
func (s *shard) learnLocked(k key, remote netip.Addr, st *vniState, now int64) LearnResult {
	if st.removed.Load() {
		return Ignored
	}
	h := hash(k.vni, k.mac)
	k0, k1 := packKey(k.vni, k.mac)
	tb := s.tab.Load()
	if i, m, ok := tb.find(h, k0, k1); ok {
		sl, in := &tb.slots[i], &tb.info[i]
		switch {
		case in.net.Load() != st:
			// Left over from an earlier incarnation of this VNI that
			// RemoveNetwork has not swept yet: st is live, so the
			// entry's state is not. Replace it.
			s.removeAt(i)
		case metaType(m) != Learned:
			return Ignored
		case s.rem.is(m, remote):
			in.touch(now)
			return Refreshed
		default:
			if !in.allowMove(s.g, now) {
				st.damped.Add(1)
				return Damped
			}
			r := s.rem.acquire(remote)
			tb.seq.Add(1)
			m = sl.claim()
			in.lastSeen.Store(now)
			sl.meta.Store(m&^metaRemoteMask | r)
			tb.seq.Add(1)
			tb.seen(now)
			s.rem.release(metaRemote(m))
			st.moves.Add(1)
			return Moved
		}
	}
	if !st.reserve() {
		st.refused.Add(1)
		return Refused
	}
	if !s.g.reserve() {
		st.learned.Add(-1)
		st.refused.Add(1)
		s.g.refused.Add(1)
		return Refused
	}
	s.insert(h, k0, k1, s.rem.acquire(remote), Learned, st, now)
	st.learnedTotal.Add(1)
	return Added
}

// AddStatic installs a static entry, replacing any learned or control
// entry for the key, or changing the remote of an existing static one. The
// MAC must be unicast and non-zero, the remote valid, and the VNI known.
func (t *Table) AddStatic(vni uint32, mac MAC, remote netip.Addr) error {
	if !mac.IsUnicast() || mac.IsZero() {
		return fmt.Errorf("%w: %v", ErrNotUnicast, mac)
	}
	if !remote.IsValid() {
		return fmt.Errorf("%w for %v", ErrInvalidRemote, mac)
	}
	st := t.network(vni)
	if st == nil {
		return fmt.Errorf("%w %d", ErrUnknownNetwork, vni)
	}
	k := key{vni, mac}
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addStaticLocked(k, remote.Unmap(), st)
}

// addStaticLocked is the part of AddStatic done under the shard's lock.
func (s *shard) addStaticLocked(k key, remote netip.Addr, st *vniState) error {
	if st.removed.Load() {
		return fmt.Errorf("%w %d", ErrUnknownNetwork, k.vni)
	}
	h := hash(k.vni, k.mac)
	k0, k1 := packKey(k.vni, k.mac)
	tb := s.tab.Load()
	if i, _, ok := tb.find(h, k0, k1); ok {
		if tb.info[i].net.Load() == st {
			r := s.rem.acquire(remote)
			sl := &tb.slots[i]
			tb.seq.Add(1)
			m := sl.claim()
			switch metaType(m) {
			case Learned:
				st.learned.Add(-1)
				s.g.learned.Add(-1)
				st.static.Add(1)
			case Control:
				st.control.Add(-1)
				s.g.control.Add(-1)
				st.static.Add(1)
			}
			tb.info[i].lastSeen.Store(0)
			tb.info[i].since, tb.info[i].moves = 0, 0
			sl.meta.Store(k1 | uint64(Static)<<metaTypeShift | r)
			tb.seq.Add(1)
			s.rem.release(metaRemote(m))
			return nil
		}
		s.removeAt(i) // stale, see learnLocked
	}
	s.insert(h, k0, k1, s.rem.acquire(remote), Static, st, 0)
	st.static.Add(1)
	return nil
}

// Delete removes the entry for the key, whatever its type, and reports
// whether there was one. A control plane withdraws its routes with
// DeleteControl instead.
func (t *Table) Delete(vni uint32, mac MAC) bool {
	return t.remove(vni, mac, netip.Addr{})
}

// remove is Delete and DeleteControl: it removes the entry for the key and
// reports whether it did. With a valid remote, unmapped, it removes only a
// control entry pointing at remote; with the zero Addr, any entry.
func (t *Table) remove(vni uint32, mac MAC, remote netip.Addr) bool {
	h := hash(vni, mac)
	s := &t.shards[h>>(64-shardBits)]
	k0, k1 := packKey(vni, mac)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, m, ok := s.tab.Load().find(h, k0, k1)
	if !ok || remote.IsValid() && (metaType(m) != Control || !s.rem.is(m, remote)) {
		return false
	}
	s.removeAt(i)
	return true
}

// Expire removes the learned entries that have gone unseen for at least
// their VNI's ageing time at now, and returns how many it removed. Shards
// with nothing to expire are only read-locked, and most are passed over
// without reading their entries.
func (t *Table) Expire(now int64) int {
	// No entry is due before it has gone unseen for the shortest
	// ageing time of any network.
	minAgeing := int64(math.MaxInt64)
	for _, st := range *t.nets.Load() {
		if a := st.ageing.Load(); a > 0 {
			minAgeing = min(minAgeing, a)
		}
	}
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		tb := s.tab.Load()
		due := tb != emptyTable && tb.mayExpire(now, minAgeing) && tb.scan(now)
		s.mu.RUnlock()
		if !due {
			continue
		}
		s.mu.Lock()
		tb = s.tab.Load()
		oldest := int64(math.MaxInt64)
		for j := 0; j < len(tb.slots); {
			// Checked again: a refresh may have come in between.
			ageing, seen := tb.ageing(j)
			if ageing > 0 && now-seen >= ageing {
				tb.info[j].net.Load().expired.Add(1)
				s.removeAt(j) // another entry may have moved into j
				n++
				continue
			}
			if ageing > 0 {
				oldest = min(oldest, seen)
			}
			j++
		}
		tb.oldest.Store(oldest)
		s.mu.Unlock()
	}
	return n
}

// Entries returns a snapshot of the table sorted by VNI, then MAC, with
// ages computed against now. Each shard is read consistently, the table as
// a whole is not.
func (t *Table) Entries(now int64) []Entry {
	var out []Entry
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		tb := s.tab.Load()
		for j := range tb.slots {
			sl, in := &tb.slots[j], &tb.info[j]
			k0 := sl.key.Load()
			if k0 == 0 || in.net.Load().removed.Load() {
				continue
			}
			m := sl.meta.Load()
			k := unpackKey(k0, m)
			a, _ := t.rem.addr(m)
			ent := Entry{VNI: k.vni, MAC: k.mac, Remote: a, Type: metaType(m)}
			if ent.Type == Learned {
				ent.Age = time.Duration(max(now-in.lastSeen.Load(), 0))
			}
			out = append(out, ent)
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(a.VNI, b.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	return out
}

// Get returns the entry for the key, with its age against now, as Entries
// would list it. It takes the shard's read lock: it is for tools, not for
// the data path, which uses Lookup.
func (t *Table) Get(vni uint32, mac MAC, now int64) (Entry, bool) {
	h := hash(vni, mac)
	s := &t.shards[h>>(64-shardBits)]
	k0, k1 := packKey(vni, mac)
	s.mu.RLock()
	defer s.mu.RUnlock()
	tb := s.tab.Load()
	i, m, ok := tb.find(h, k0, k1)
	if !ok || tb.info[i].net.Load().removed.Load() {
		return Entry{}, false
	}
	a, _ := t.rem.addr(m)
	ent := Entry{VNI: vni, MAC: mac, Remote: a, Type: metaType(m)}
	if ent.Type == Learned {
		ent.Age = time.Duration(max(now-tb.info[i].lastSeen.Load(), 0))
	}
	return ent, true
}
