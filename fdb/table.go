package fdb

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned, wrapped, by AddStatic.
var (
	ErrUnknownNetwork = errors.New("fdb: unknown VNI")
	ErrNotUnicast     = errors.New("fdb: MAC is not a unicast address")
	ErrInvalidRemote  = errors.New("fdb: invalid remote address")
)

const (
	// shardBits sets the number of shards. 256 shards keep two goroutines
	// learning or expiring in the same shard rare even with many cores,
	// and cost 32 KiB per Table.
	shardBits = 8
	numShards = 1 << shardBits

	// refreshSlack is how stale a learned entry's last-seen time may get
	// before a refresh stores a new one. Storing on every packet would
	// bounce the entry's cache line between the cores that receive from
	// the same remote; 100ms is nothing next to an ageing time of minutes.
	refreshSlack = int64(100 * time.Millisecond)
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
)

func (t Type) String() string {
	switch t {
	case Learned:
		return "learned"
	case Static:
		return "static"
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
	// entry was last learned or refreshed. It is zero for static entries.
	// Refreshes are recorded with a granularity of about 100ms.
	Age time.Duration
}

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
	// Refused: the VNI already holds MaxEntries learned entries.
	Refused
	// Ignored: a static entry holds the key, the VNI is unknown, the MAC
	// is zero or not unicast, or the remote is not a valid address.
	Ignored
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
	}
	return "LearnResult(" + strconv.Itoa(int(r)) + ")"
}

// Stats are the counters of one VNI. Learned and Static are current entry
// counts; the others are totals since the VNI was created by SetNetwork.
type Stats struct {
	Learned, Static int
	// LearnedTotal counts entries added by learning, Moves counts learned
	// entries that changed remote, Refused counts learn attempts turned
	// away because the VNI was full, Expired counts entries removed by
	// Expire.
	LearnedTotal, Moves, Refused, Expired uint64
}

// Table is the forwarding database. The zero value is not usable; call New.
// All methods are safe for concurrent use.
type Table struct {
	shards [numShards]shard

	// nets maps VNI to its settings and counters. The map is never
	// modified once published: SetNetwork and RemoveNetwork copy it under
	// cfg and store a new one, so the data path reads it without locking.
	nets atomic.Pointer[map[uint32]*vniState]
	cfg  sync.Mutex
}

// key identifies an entry.
type key struct {
	vni uint32
	mac MAC
}

// shard is one slice of the table. index maps a key to a ref holding the
// entry's remote and type, all that Lookup needs, and the position of the
// entry's slot in slots: a slab that only grows, with freed positions kept
// on the free list for reuse. A slot holds what is written without the
// write lock (lastSeen) and what Expire, Entries and the RemoveNetwork
// sweep look at, so they walk a dense slice rather than iterate a map.
// Adding an entry allocates only when the slab, free list or map must grow.
type shard struct {
	mu    sync.RWMutex
	index map[key]ref
	slots []slot
	free  []uint32

	// Pad to 128 bytes so that neighbouring shards' locks do not share a
	// cache line (or an adjacent-line prefetch pair). The fields above take
	// 80 bytes on 64-bit platforms; TestShardSize checks the sum.
	_ [48]byte
}

// ref is the index's value: where the entry's slot is, and the two fields
// Lookup and Learn's first look need, kept here to save a cache miss.
type ref struct {
	remote netip.Addr
	slot   uint32
	typ    Type
}

// slot is a table entry. A slot with typ 0 is free.
type slot struct {
	// lastSeen is the now of the last Learn that added, moved or
	// refreshed the entry. Refreshes store it atomically under the
	// shard's read lock; everything else is guarded by the write lock.
	lastSeen atomic.Int64
	// net is the network whose counters count this entry. Keeping it here
	// rather than looking the VNI up again means an entry is always
	// uncounted from the state that counted it, even if the VNI has been
	// removed and created again in between.
	net *vniState
	key key
	typ Type
}

// touch records that the entry was seen at now, skipping the store while
// the recorded time is no more than refreshSlack old, and never moving it
// back. The load and store are not one atomic step: two refreshes racing
// may leave the older of their two nows, which differ by no more than the
// callers' batches do.
func (e *slot) touch(now int64) {
	if now-e.lastSeen.Load() > refreshSlack {
		e.lastSeen.Store(now)
	}
}

// expired reports whether e is a learned entry that has gone unseen for at
// least its network's ageing time at now.
func (e *slot) expired(now int64) bool {
	if e.typ != Learned {
		return false
	}
	ageing := e.net.ageing.Load()
	return ageing > 0 && now-e.lastSeen.Load() >= ageing
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

	learned, static                       atomic.Int64
	learnedTotal, moves, refused, expired atomic.Uint64
}

func (st *vniState) set(n Network) {
	st.maxEntries.Store(int64(max(n.MaxEntries, 0)))
	st.ageing.Store(int64(max(n.Ageing, 0)))
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

// New returns an empty table with no networks.
func New() *Table {
	t := &Table{}
	for i := range t.shards {
		t.shards[i].index = make(map[key]ref)
	}
	nets := map[uint32]*vniState{}
	t.nets.Store(&nets)
	return t
}

// shardIndex picks a shard from a multiplicative hash of the key. The top
// bits of a product depend on every bit of its operands, so sequential MACs
// and VNIs spread across shards.
func shardIndex(vni uint32, m MAC) uint {
	x := uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 |
		uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
	h := (x ^ uint64(vni)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	return uint(h >> (64 - shardBits))
}

func (t *Table) shard(k key) *shard {
	return &t.shards[shardIndex(k.vni, k.mac)]
}

func (t *Table) network(vni uint32) *vniState {
	return (*t.nets.Load())[vni]
}

// SetNetwork creates the VNI or updates its settings. Updating keeps the
// VNI's entries and counters; new settings apply from the next Learn or
// Expire.
func (t *Table) SetNetwork(vni uint32, n Network) {
	t.cfg.Lock()
	defer t.cfg.Unlock()
	cur := *t.nets.Load()
	if st, ok := cur[vni]; ok {
		st.set(n)
		return
	}
	st := &vniState{}
	st.set(n)
	next := make(map[uint32]*vniState, len(cur)+1)
	for v, s := range cur {
		next[v] = s
	}
	next[vni] = st
	t.nets.Store(&next)
}

// RemoveNetwork drops the VNI, its entries, static and learned, and its
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
		for j := range s.slots {
			if s.slots[j].net == st {
				s.removeAt(uint32(j))
			}
		}
		if len(s.index) == 0 && len(s.slots) > 0 {
			// Give the memory of an emptied shard back. Maps never
			// shrink, so replace it.
			s.index = make(map[key]ref)
			s.slots, s.free = nil, nil
		}
		s.mu.Unlock()
	}
}

// Lookup returns the remote VTEP for the MAC in the VNI. It takes only the
// shard's read lock and does not allocate.
func (t *Table) Lookup(vni uint32, mac MAC) (netip.Addr, bool) {
	k := key{vni, mac}
	s := t.shard(k)
	s.mu.RLock()
	r, ok := s.index[k]
	s.mu.RUnlock()
	return r.remote, ok
}

// Learn records that a datagram for the VNI carried the inner source MAC
// from the underlay source address remote, at time now (monotonic
// nanoseconds, from the caller's clock). IPv4-mapped IPv6 remotes are
// stored as IPv4.
//
// Refreshing an entry whose remote is unchanged takes only the shard's read
// lock, and refusing a new entry in a full VNI takes no write lock either.
// Learn does not allocate unless the shard's slab or map must grow.
func (t *Table) Learn(vni uint32, mac MAC, remote netip.Addr, now int64) LearnResult {
	if !mac.IsUnicast() || mac.IsZero() || !remote.IsValid() {
		return Ignored
	}
	st := t.network(vni)
	if st == nil {
		return Ignored
	}
	remote = remote.Unmap()
	k := key{vni, mac}
	s := t.shard(k)

	s.mu.RLock()
	if r, ok := s.index[k]; ok {
		e := &s.slots[r.slot]
		if e.net == st {
			if r.typ == Static {
				s.mu.RUnlock()
				return Ignored
			}
			if r.remote == remote {
				e.touch(now)
				s.mu.RUnlock()
				return Refreshed
			}
		}
	} else if st.learned.Load() >= st.maxEntries.Load() {
		s.mu.RUnlock()
		st.refused.Add(1)
		return Refused
	}
	s.mu.RUnlock()

	s.mu.Lock()
	r := s.learnLocked(k, remote, st, now)
	s.mu.Unlock()
	return r
}

// learnLocked is the part of Learn that may modify the shard. The shard may
// have changed since the read-locked look, so everything is checked again.
func (s *shard) learnLocked(k key, remote netip.Addr, st *vniState, now int64) LearnResult {
	if st.removed.Load() {
		return Ignored
	}
	if r, ok := s.index[k]; ok {
		e := &s.slots[r.slot]
		switch {
		case e.net != st:
			// Left over from an earlier incarnation of this VNI that
			// RemoveNetwork has not swept yet: st is live, so e.net
			// is not. Replace it.
			s.removeAt(r.slot)
		case r.typ == Static:
			return Ignored
		case r.remote == remote:
			e.touch(now)
			return Refreshed
		default:
			r.remote = remote
			s.index[k] = r
			e.lastSeen.Store(now)
			st.moves.Add(1)
			return Moved
		}
	}
	if !st.reserve() {
		st.refused.Add(1)
		return Refused
	}
	s.insert(k, remote, Learned, st, now)
	st.learnedTotal.Add(1)
	return Added
}

// AddStatic installs a static entry, replacing any learned entry for the
// key, or changing the remote of an existing static one. The MAC must be
// unicast and non-zero, the remote valid, and the VNI known.
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
	if r, ok := s.index[k]; ok {
		e := &s.slots[r.slot]
		if e.net == st {
			if r.typ == Learned {
				st.learned.Add(-1)
				st.static.Add(1)
				e.typ = Static
			}
			s.index[k] = ref{remote: remote, slot: r.slot, typ: Static}
			e.lastSeen.Store(0)
			return nil
		}
		s.removeAt(r.slot) // stale, see learnLocked
	}
	s.insert(k, remote, Static, st, 0)
	st.static.Add(1)
	return nil
}

// Delete removes the entry for the key, static or learned, and reports
// whether there was one.
func (t *Table) Delete(vni uint32, mac MAC) bool {
	k := key{vni, mac}
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.index[k]
	if ok {
		s.removeAt(r.slot)
	}
	return ok
}

// Expire removes the learned entries that have gone unseen for at least
// their VNI's ageing time at now, and returns how many it removed. Shards
// with nothing to expire are only read-locked.
func (t *Table) Expire(now int64) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		due := false
		for j := range s.slots {
			if s.slots[j].expired(now) {
				due = true
				break
			}
		}
		s.mu.RUnlock()
		if !due {
			continue
		}
		s.mu.Lock()
		for j := range s.slots {
			// Checked again: a refresh may have come in between.
			if e := &s.slots[j]; e.expired(now) {
				e.net.expired.Add(1)
				s.removeAt(uint32(j))
				n++
			}
		}
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
		for j := range s.slots {
			e := &s.slots[j]
			if e.typ == 0 || e.net.removed.Load() {
				continue
			}
			ent := Entry{VNI: e.key.vni, MAC: e.key.mac, Remote: s.index[e.key].remote, Type: e.typ}
			if e.typ == Learned {
				ent.Age = time.Duration(max(now-e.lastSeen.Load(), 0))
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

// Stats returns the VNI's counters, or false if the VNI is unknown.
func (t *Table) Stats(vni uint32) (Stats, bool) {
	st := t.network(vni)
	if st == nil {
		return Stats{}, false
	}
	return Stats{
		Learned:      int(st.learned.Load()),
		Static:       int(st.static.Load()),
		LearnedTotal: st.learnedTotal.Load(),
		Moves:        st.moves.Load(),
		Refused:      st.refused.Load(),
		Expired:      st.expired.Load(),
	}, true
}

// insert puts a new entry in a free slot. The caller has counted it.
func (s *shard) insert(k key, remote netip.Addr, typ Type, st *vniState, now int64) {
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		i = uint32(len(s.slots))
		s.slots = append(s.slots, slot{})
	}
	e := &s.slots[i]
	e.lastSeen.Store(now)
	e.net = st
	e.key = k
	e.typ = typ
	s.index[k] = ref{remote: remote, slot: i, typ: typ}
}

// removeAt frees slot i and uncounts its entry.
func (s *shard) removeAt(i uint32) {
	e := &s.slots[i]
	switch e.typ {
	case Learned:
		e.net.learned.Add(-1)
	case Static:
		e.net.static.Add(-1)
	}
	delete(s.index, e.key)
	// Clear the slot so it holds no pointers for the garbage collector.
	e.lastSeen.Store(0)
	e.net = nil
	e.key = key{}
	e.typ = 0
	s.free = append(s.free, i)
}
