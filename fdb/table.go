package fdb

import (
	"bytes"
	"cmp"
	"encoding/binary"
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

// Errors returned, wrapped, by AddStatic.
var (
	ErrUnknownNetwork = errors.New("fdb: unknown VNI")
	ErrNotUnicast     = errors.New("fdb: MAC is not a unicast address")
	ErrInvalidRemote  = errors.New("fdb: invalid remote address")
)

const (
	// shardBits sets the number of shards. 256 shards keep two goroutines
	// learning or expiring in the same shard rare even with many cores.
	shardBits = 8
	numShards = 1 << shardBits

	// refreshSlack is how stale a learned entry's last-seen time may get
	// before a refresh stores a new one. Storing on every packet would
	// bounce the entry's cache line between the cores that receive from
	// the same remote; 100ms is nothing next to an ageing time of minutes.
	refreshSlack = int64(100 * time.Millisecond)

	// A shard's table grows when adding an entry would fill more than
	// loadNum/loadDen of its slots, to twice the size. Linear probing at
	// half that load finds a key in its home slot about three times in
	// four, and mostly in the same cache line otherwise.
	loadNum, loadDen = 3, 4
	// minSlots is the size of a shard's first table.
	minSlots = 8

	// fastTries bounds how often Learn retries its lock-free look when a
	// writer gets in the way before it takes the shard's lock.
	fastTries = 4
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
	// Refused: the VNI already holds MaxEntries learned entries, or the
	// table Limits.MaxLearned in all VNIs.
	Refused
	// Ignored: a static entry holds the key, the VNI is unknown, the MAC
	// is zero or not unicast, or the remote is not a valid address.
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

// Stats are the counters of one VNI. Learned and Static are current entry
// counts; the others are totals since the VNI was created by SetNetwork.
type Stats struct {
	Learned, Static int
	// LearnedTotal counts entries added by learning, Moves counts learned
	// entries that changed remote, Refused counts learn attempts turned
	// away because the VNI, or the whole table, was full, Expired counts
	// entries removed by Expire.
	LearnedTotal, Moves, Refused, Expired uint64
	// Damped counts moves refused by move damping (Limits.MaxMoves).
	Damped uint64
}

// Limits are the table-wide learning limits, set with SetLimits. The zero
// value sets none.
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
}

// GlobalStats are the table-wide learning counters.
type GlobalStats struct {
	// Learned is the number of learned entries in all VNIs.
	Learned int
	// Refused counts learn attempts refused because the table held
	// Limits.MaxLearned learned entries (while the VNI had room); they are
	// also counted in their VNI's Stats.Refused.
	Refused uint64
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

// global is the table-wide part of the learning state, which the shards
// point at.
type global struct {
	maxLearned atomic.Int64 // <= 0: no cap
	maxMoves   atomic.Int64 // <= 0: no damping
	moveHold   atomic.Int64 // nanoseconds

	// The counters are written by every learner that adds or removes an
	// entry: keep them off the line of the settings, read by all.
	_ [64 - 24]byte

	// learned counts the learned entries of all networks, including those
	// of removed networks not swept yet. Like vniState.learned, it is
	// taken with a compare-and-swap before an entry is inserted.
	learned atomic.Int64
	refused atomic.Uint64
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

// full reports whether the table-wide cap has been reached.
func (g *global) full() bool {
	m := g.maxLearned.Load()
	return m > 0 && g.learned.Load() >= m
}

// key identifies an entry.
type key struct {
	vni uint32
	mac MAC
}

// shard is one slice of the table: the lock that serializes its writers,
// and where they find its table. Lock-free readers do not touch it.
type shard struct {
	mu  sync.RWMutex
	tab *atomic.Pointer[table] // in Table.tabs
	rem *remotes
	g   *global // Table.g

	// Pad to 128 bytes so that neighbouring shards' locks do not share a
	// cache line (or an adjacent-line prefetch pair). The fields above
	// take 48 bytes on 64-bit platforms; TestShardSize checks the sum.
	_ [80]byte
}

// table is one generation of a shard's entries: an open-addressing hash
// table with linear probing, read without locks.
//
// Readers (Lookup, and Learn's first look) take no lock and write nothing
// shared: they load seq, probe slots with atomic loads, and load seq
// again; if it was odd or has changed, a writer overlapped and they retry.
// Writers hold the shard's lock and make every change to slots and info
// between two increments of seq (a seqlock), except for refreshes of
// lastSeen (see metaBusy). A table that must grow is copied into a new one
// that then replaces it in Table.tabs; the copy leaves the old one's
// entries as they were, so its readers still see a consistent, if stale,
// table. Expire and Entries scan under the shard's read lock, which only
// keeps writers out.
//
// The lengths and shift never change once the table is published; count
// is guarded by the shard's lock.
type table struct {
	seq   atomic.Uint64
	slots []slot     // what Lookup probes
	info  []slotInfo // the rest of the entry in the slot at the same index
	shift uint       // 64 - log2(len(slots))
	count int

	// oldest is at most the last-seen time of every learned entry of a
	// network that ages (math.MaxInt64 if there is none), so that Expire
	// can pass over a table with nothing due without reading its entries.
	// Refreshes only move last-seen times forward, so they leave it true.
	// Adding and moving entries lower it, under the lock; Expire raises it
	// to the oldest time it has read when it has read them all, under the
	// read lock at least; SetNetwork lowers it, under the lock, when a
	// network starts ageing.
	oldest atomic.Int64
}

// emptyTable is where every shard starts, and what a shard emptied by
// RemoveNetwork goes back to. It is shared and never written: adding to
// it always grows the shard first, since count+1 exceeds its capacity.
var emptyTable = newTable(1)

// slot is what Lookup reads of an entry: 16 bytes, four to a cache line,
// so that the probed array is as small as it can be and stays in cache as
// long as it can. A slot with key 0 is empty: an entry's MAC is never zero.
type slot struct {
	// key is the MAC in the top 48 bits (see macBits) and the VNI's low
	// 16 bits.
	key atomic.Uint64
	// meta holds the rest of the key and the remote; see the meta*
	// constants.
	meta atomic.Uint64
}

// slotInfo is what Learn and the writers need beyond the slot.
type slotInfo struct {
	// lastSeen is the now of the last Learn that added, moved or
	// refreshed the entry; 0 for static entries.
	lastSeen atomic.Int64
	// net is the network whose counters count the entry. Keeping it
	// rather than looking the VNI up again means an entry is always
	// uncounted from the state that counted it, even if the VNI has been
	// removed and created again in between, and lets Learn tell an entry
	// of the live network from one left over by an earlier incarnation.
	net atomic.Pointer[vniState]

	// Move damping (Limits.MaxMoves), read and written only under the
	// shard's lock, never by lock-free readers. moves counts the entry's
	// moves in the one-second window that started at since; while it is
	// -1, the entry is held where it is until since.
	since int64
	moves int32
}

// Layout of slot.meta.
//
// metaBusy is a lock bit on the slot's identity. A refresh that is about
// to store lastSeen without the shard's lock first sets it with a
// compare-and-swap against the meta word it read, then checks the slot
// again; writers set it (waiting for a refresh that holds it) before they
// change, move or clear the slot. So a refresh never stores into a slot
// that has been given to another entry since it looked, and a writer
// never copies a lastSeen that a refresh is about to change. Readers that
// only look, Lookup among them, ignore the bit.
const (
	// Bits 0-31 and 50 are the remote: an IPv4 address itself (see
	// addr4), or, with metaV6 set, an index into Table.rem.
	metaRemoteMask = 1<<32 - 1 | metaV6
	metaVNIShift   = 32 // bits 32-47: the VNI's high 16 bits
	metaVNIMask    = 0xffff << metaVNIShift
	metaTypeShift  = 48 // bits 48-49: Type
	metaV6         = 1 << 50
	metaBusy       = 1 << 63
)

func metaType(m uint64) Type { return Type(m >> metaTypeShift & 3) }

func metaRemote(m uint64) uint64 { return m & metaRemoteMask }

// macBits returns the MAC as a 48-bit integer, little-endian as that takes
// two loads; only equality and the hash depend on the order.
func macBits(m MAC) uint64 {
	return uint64(binary.LittleEndian.Uint32(m[:4])) | uint64(binary.LittleEndian.Uint16(m[4:]))<<32
}

// packKey returns the key word of the entry for (vni, mac) and the bits of
// its meta word that hold the rest of the VNI.
func packKey(vni uint32, m MAC) (k0, k1 uint64) {
	return macBits(m)<<16 | uint64(vni&0xffff), uint64(vni>>16) << metaVNIShift
}

// unpackKey is the inverse of packKey.
func unpackKey(k0, meta uint64) key {
	k := key{vni: uint32(meta&metaVNIMask>>metaVNIShift)<<16 | uint32(k0&0xffff)}
	binary.LittleEndian.PutUint32(k.mac[:4], uint32(k0>>16))
	binary.LittleEndian.PutUint16(k.mac[4:], uint16(k0>>48))
	return k
}

// hash is a multiplicative hash of the key. The top bits of a product
// depend on every bit of its operands, so sequential MACs and VNIs spread;
// the top shardBits pick the shard and the bits below them the home slot
// in the shard's table.
func hash(vni uint32, m MAC) uint64 {
	return hashBits(vni, macBits(m))
}

func hashBits(vni uint32, mac uint64) uint64 {
	return (mac ^ uint64(vni)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
}

// hashSlot recomputes the hash of the entry held in a slot's words.
func hashSlot(k0, meta uint64) uint64 {
	return hashBits(unpackKey(k0, meta).vni, k0>>16)
}

func shardIndex(vni uint32, m MAC) uint {
	return uint(hash(vni, m) >> (64 - shardBits))
}

// home is the position where probing for a key with hash h starts.
func (tb *table) home(h uint64) int {
	return int(h << shardBits >> tb.shift)
}

// find probes for the key and returns its position and meta word. It takes
// no lock: under a writer, what it returns is only good if the caller's
// seqlock check passes. It stops at the first empty slot, and after one
// lap whatever it reads, so it ends even on a torn table.
func (tb *table) find(h, k0, k1 uint64) (int, uint64, bool) {
	slots := tb.slots
	mask := len(slots) - 1
	i := tb.home(h)
	for range slots {
		sl := &slots[i&mask]
		w := sl.key.Load()
		if w == 0 {
			break // checked first: k0 is 0 for a lookup of the zero MAC
		}
		if w == k0 {
			if m := sl.meta.Load(); m&metaVNIMask == k1 {
				return i & mask, m, true
			}
		}
		i++
	}
	return 0, 0, false
}

// claim sets the slot's busy bit, waiting while a refresh holds it, and
// returns the meta word without the bit. The caller stores a meta word to
// release the slot.
func (sl *slot) claim() uint64 {
	for spins := 0; ; spins++ {
		m := sl.meta.Load()
		if m&metaBusy == 0 && sl.meta.CompareAndSwap(m, m|metaBusy) {
			return m
		}
		if spins >= 16 {
			// The holder is a refresh between two stores; it was
			// preempted if it is taking this long.
			runtime.Gosched()
		}
	}
}

// touch records that the entry was seen at now, skipping the store while
// the recorded time is no more than refreshSlack old, and never moving it
// back. The load and store are not one atomic step: two refreshes racing
// may leave the older of their two nows, which differ by no more than the
// callers' batches do. The caller holds the shard's lock or the slot's
// busy bit, so the slot still holds the entry it means.
func (in *slotInfo) touch(now int64) {
	if now-in.lastSeen.Load() > refreshSlack {
		in.lastSeen.Store(now)
	}
}

// move copies src into in. The caller holds the claim on src's slot.
func (in *slotInfo) move(src *slotInfo) {
	in.lastSeen.Store(src.lastSeen.Load())
	in.net.Store(src.net.Load())
	in.since, in.moves = src.since, src.moves
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
	if in.moves == 0 || now-in.since >= int64(time.Second) {
		in.since, in.moves = now, 0 // a new window
	}
	if int64(in.moves) >= maxMoves {
		in.since, in.moves = now+max(g.moveHold.Load(), 0), -1
		return false
	}
	in.moves++
	return true
}

// ageing returns the ageing time of the entry in slot i and its last-seen
// time, or an ageing time of 0 if the slot holds no learned entry (an
// empty slot's meta word is 0). The caller holds the shard's lock, read or
// write.
func (tb *table) ageing(i int) (ageing, lastSeen int64) {
	if metaType(tb.slots[i].meta.Load()) != Learned {
		return 0, 0
	}
	in := &tb.info[i]
	return in.net.Load().ageing.Load(), in.lastSeen.Load()
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

	learned, static                               atomic.Int64
	learnedTotal, moves, refused, expired, damped atomic.Uint64
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

func (t *Table) network(vni uint32) *vniState {
	return (*t.nets.Load())[vni]
}

// SetLimits sets the table-wide learning limits. They apply from the next
// Learn; entries and counters are kept.
func (t *Table) SetLimits(l Limits) {
	t.g.maxLearned.Store(int64(max(l.MaxLearned, 0)))
	t.g.maxMoves.Store(int64(max(l.MaxMoves, 0)))
	t.g.moveHold.Store(int64(max(l.MoveHold, 0)))
}

// GlobalStats returns the table-wide learning counters.
func (t *Table) GlobalStats() GlobalStats {
	return GlobalStats{Learned: int(t.g.learned.Load()), Refused: t.g.refused.Load()}
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

// Lookup returns the remote VTEP for the MAC in the VNI. It takes no lock,
// writes no shared memory and does not allocate.
func (t *Table) Lookup(vni uint32, mac MAC) (netip.Addr, bool) {
	// This is find and remotes.addr written out: the calls cost a fifth
	// of a lookup that hits in the cache. Once the table outgrows the
	// cache, what costs is the wait for the slot's line, and how many
	// later lookups the processor can start meanwhile: fewer, the more
	// instructions and dependent loads a lookup takes.
	x := macBits(mac)
	h := hashBits(vni, x)
	tp := &t.tabs[h>>(64-shardBits)]
	k0, k1 := x<<16|uint64(vni&0xffff), uint64(vni>>16)<<metaVNIShift
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
		if tries%64 == 0 {
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
		if metaType(m) == Static {
			return Ignored
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
		case metaType(m) == Static:
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
	h := hash(k.vni, k.mac)
	k0, k1 := packKey(k.vni, k.mac)
	tb := s.tab.Load()
	if i, _, ok := tb.find(h, k0, k1); ok {
		if tb.info[i].net.Load() == st {
			r := s.rem.acquire(remote)
			sl := &tb.slots[i]
			tb.seq.Add(1)
			m := sl.claim()
			if metaType(m) == Learned {
				st.learned.Add(-1)
				s.g.learned.Add(-1)
				st.static.Add(1)
			}
			tb.info[i].lastSeen.Store(0)
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

// Delete removes the entry for the key, static or learned, and reports
// whether there was one.
func (t *Table) Delete(vni uint32, mac MAC) bool {
	h := hash(vni, mac)
	s := &t.shards[h>>(64-shardBits)]
	k0, k1 := packKey(vni, mac)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _, ok := s.tab.Load().find(h, k0, k1)
	if ok {
		s.removeAt(i)
	}
	return ok
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

// mayExpire reports whether an entry of the table may be due at now, given
// the shortest ageing time of any network. The difference is taken
// unsigned, where it cannot overflow.
func (tb *table) mayExpire(now, minAgeing int64) bool {
	oldest := tb.oldest.Load()
	return oldest <= now && uint64(now)-uint64(oldest) >= uint64(minAgeing)
}

// scan reports whether an entry of the table is due to expire at now. If
// none is, it raises oldest to the oldest last-seen time it read. The
// caller holds the shard's lock, read or write.
func (tb *table) scan(now int64) bool {
	oldest := int64(math.MaxInt64)
	for j := range tb.slots {
		if ageing, seen := tb.ageing(j); ageing > 0 {
			if now-seen >= ageing {
				return true
			}
			oldest = min(oldest, seen)
		}
	}
	tb.oldest.Store(oldest)
	return false
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
		Damped:       st.damped.Load(),
	}, true
}

// newTable returns an empty table of n slots, a power of two.
func newTable(n int) *table {
	tb := &table{slots: make([]slot, n), info: make([]slotInfo, n), shift: 64}
	for ; n > 1; n >>= 1 {
		tb.shift--
	}
	tb.oldest.Store(math.MaxInt64)
	return tb
}

// seen lowers oldest for a learned entry last seen at now. The caller holds
// the lock.
func (tb *table) seen(now int64) {
	if now < tb.oldest.Load() {
		tb.oldest.Store(now)
	}
}

// insert puts a new entry in the shard, growing its table first if it is
// full. The caller holds the lock, has counted the entry and acquired r.
func (s *shard) insert(h, k0, k1, r uint64, typ Type, st *vniState, now int64) {
	tb := s.tab.Load()
	if (tb.count+1)*loadDen > len(tb.slots)*loadNum {
		tb = s.grow()
	}
	mask := len(tb.slots) - 1
	i := tb.home(h)
	for tb.slots[i].key.Load() != 0 {
		i = (i + 1) & mask
	}
	// An empty slot cannot be claimed: a refresh only claims the meta
	// word of an entry it found.
	sl, in := &tb.slots[i], &tb.info[i]
	tb.seq.Add(1)
	in.lastSeen.Store(now)
	in.net.Store(st)
	in.since, in.moves = 0, 0
	sl.meta.Store(k1 | uint64(typ)<<metaTypeShift | r)
	sl.key.Store(k0)
	tb.seq.Add(1)
	tb.count++
	if typ == Learned {
		tb.seen(now)
	}
}

// grow copies the shard's entries into a table twice the size and
// publishes it. Each old slot is claimed as it is copied and never
// released, so a refresh still looking at the old table cannot store a
// lastSeen that the copy would lose; it retries and finds the new table.
// Readers of the old table still get right answers until they move on.
func (s *shard) grow() *table {
	old := s.tab.Load()
	n := max(2*len(old.slots), minSlots)
	tb := newTable(n)
	mask := n - 1
	for i := range old.slots {
		o := &old.slots[i]
		k0 := o.key.Load()
		if k0 == 0 {
			continue
		}
		m := o.claim()
		j := tb.home(hashSlot(k0, m))
		for tb.slots[j].key.Load() != 0 {
			j = (j + 1) & mask
		}
		tb.slots[j].key.Store(k0)
		tb.slots[j].meta.Store(m)
		tb.info[j].move(&old.info[i])
	}
	tb.count = old.count
	tb.oldest.Store(old.oldest.Load())
	s.tab.Store(tb)
	return tb
}

// removeAt removes the entry at position i of the shard's table, uncounts
// it and releases its remote. The caller holds the lock. Linear probing
// needs no tombstones: the entries after i in its run that could live at
// i are shifted back (backward-shift deletion), all inside one write
// section of the seqlock, so readers never see the run broken.
func (s *shard) removeAt(i int) {
	tb := s.tab.Load()
	mask := len(tb.slots) - 1
	tb.seq.Add(1)
	m := tb.slots[i].claim()
	st := tb.info[i].net.Load()
	switch metaType(m) {
	case Learned:
		st.learned.Add(-1)
		s.g.learned.Add(-1)
	case Static:
		st.static.Add(-1)
	}
	// i is claimed and free to overwrite. Find a later entry of the run
	// whose home is not in (i, j], move it to i, and go on with its old
	// place.
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		next := &tb.slots[j]
		k0 := next.key.Load()
		if k0 == 0 {
			break
		}
		nm := next.meta.Load() &^ metaBusy
		if home := tb.home(hashSlot(k0, nm)); (j-home)&mask < (j-i)&mask {
			continue
		}
		nm = next.claim()
		tb.info[i].move(&tb.info[j])
		tb.slots[i].key.Store(k0)
		if testHookMove != nil {
			testHookMove() // with slot i torn: the new key, the old meta
		}
		tb.slots[i].meta.Store(nm) // releases i
		i = j
	}
	// Clear the slot; its info holds no pointer for the garbage collector.
	tb.info[i].lastSeen.Store(0)
	tb.info[i].net.Store(nil)
	tb.info[i].since, tb.info[i].moves = 0, 0
	tb.slots[i].key.Store(0)
	tb.slots[i].meta.Store(0) // releases i
	tb.seq.Add(1)
	tb.count--
	s.rem.release(metaRemote(m))
}

// remotes interns the IPv6 remote addresses of the table's entries, so
// that a slot holds a 32-bit index rather than a 24-byte netip.Addr, and
// counts the entries that point at each. (IPv4 addresses fit in the slot
// itself, which saves a lookup two dependent loads.) VTEPs are few, but
// learning takes addresses from the network, so indices whose count falls
// to zero are reused, oldest first, for new addresses: the list never
// holds more than the most addresses in use at once.
type remotes struct {
	// list is read without locking. Its element i is replaced only while
	// no entry points at i. A reader that got i from a slot notices with
	// the table's seqlock: dropping the last pointer to i went through a
	// write section after the reader's look.
	list atomic.Pointer[remoteList]

	mu    sync.Mutex
	index map[netip.Addr]uint32
	refs  []int32
	// idle holds, oldest first from idle[head], the indices whose count
	// fell to zero; queued[i] says whether i is among them. An index is
	// checked again when taken, as it may have been acquired since.
	idle   []uint32
	head   int
	queued []bool
}

// remoteList is the readers' view of remotes. It is replaced by a longer
// copy when it is full.
type remoteList struct {
	addrs []atomic.Pointer[netip.Addr]
}

func (r *remotes) init() {
	r.index = make(map[netip.Addr]uint32)
	r.list.Store(&remoteList{})
}

// addr4 returns the IPv4 address held in a meta word, where it is kept in
// the byte order that makes this a byte swap.
func addr4(m uint64) netip.Addr {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(m))
	return netip.AddrFrom4(b)
}

// addr returns the remote of the meta word m, or false if there is none: a
// reader that sees none has read a torn slot, and its seqlock check fails.
func (r *remotes) addr(m uint64) (netip.Addr, bool) {
	if m&metaV6 == 0 {
		return addr4(m), true
	}
	if p := r.load(uint32(m)); p != nil {
		return *p, true
	}
	return netip.Addr{}, false
}

// load returns the IPv6 address with index i, or nil if there is none.
func (r *remotes) load(i uint32) *netip.Addr {
	l := r.list.Load()
	if int(i) >= len(l.addrs) {
		return nil
	}
	return l.addrs[i].Load()
}

// is reports whether the meta word m holds the remote a.
func (r *remotes) is(m uint64, a netip.Addr) bool {
	if m&metaV6 == 0 {
		if !a.Is4() {
			return false
		}
		b := a.As4()
		return binary.LittleEndian.Uint32(b[:]) == uint32(m)
	}
	p := r.load(uint32(m))
	return p != nil && *p == a
}

// acquire returns the meta bits for the remote a, interning it if it is a
// new IPv6 address, and counts one more entry pointing at it.
func (r *remotes) acquire(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.LittleEndian.Uint32(b[:])) // see addr4
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[a]
	if !ok {
		i = r.slot()
		p := new(netip.Addr) // not &a, which would allocate on every call
		*p = a
		r.list.Load().addrs[i].Store(p)
		r.index[a] = i
	}
	r.refs[i]++
	return metaV6 | uint64(i)
}

// slot returns an index for a new address: the oldest idle one, forgotten,
// or else a new one at the end of the list. The caller holds mu.
func (r *remotes) slot() uint32 {
	l := r.list.Load()
	for r.head < len(r.idle) {
		i := r.idle[r.head]
		r.head++
		r.queued[i] = false
		if r.refs[i] == 0 {
			delete(r.index, *l.addrs[i].Load())
			return i
		}
	}
	r.idle, r.head = r.idle[:0], 0
	i := uint32(len(r.refs))
	if int(i) == len(l.addrs) {
		next := &remoteList{addrs: make([]atomic.Pointer[netip.Addr], max(2*len(l.addrs), 16))}
		for j := range l.addrs {
			next.addrs[j].Store(l.addrs[j].Load())
		}
		r.list.Store(next)
	}
	r.refs = append(r.refs, 0)
	r.queued = append(r.queued, false)
	return i
}

// release counts one entry fewer pointing at the remote of meta bits m.
func (r *remotes) release(m uint64) {
	if m&metaV6 == 0 {
		return
	}
	i := uint32(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refs[i]--; r.refs[i] == 0 && !r.queued[i] {
		if r.head > 0 && r.head >= len(r.idle)/2 {
			// Move the queue back to the front of its array rather
			// than let append grow it.
			n := copy(r.idle, r.idle[r.head:])
			r.idle, r.head = r.idle[:n], 0
		}
		r.idle = append(r.idle, i)
		r.queued[i] = true
	}
}
