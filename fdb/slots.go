package fdb

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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

	// cacheLine is the size of a cache line on common 64-bit processors:
	// the unit of the padding that keeps fields written by different
	// cores apart.
	cacheLine = 64

	// claimSpins is how often claim tries a busy slot before it starts
	// yielding to the refresh that holds it.
	claimSpins = 16

	// hashVNIMul and hashMul are the multipliers of hashBits: 2^64
	// divided by the golden ratio (Fibonacci hashing), which spreads
	// sequential VNIs over the word before they meet the MAC, and the
	// first multiplier of splitmix64's finalizer, an odd constant whose
	// product with any key has well-mixed top bits.
	hashVNIMul = 0x9e3779b97f4a7c15
	hashMul    = 0xbf58476d1ce4e5b9
)

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
	_ [2*cacheLine - 48]byte
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

// newTable returns an empty table of n slots, a power of two.
func newTable(n int) *table {
	tb := &table{slots: make([]slot, n), info: make([]slotInfo, n), shift: 64}
	for ; n > 1; n >>= 1 {
		tb.shift--
	}
	tb.oldest.Store(math.MaxInt64)
	return tb
}

// slot is what Lookup reads of an entry: 16 bytes, four to a cache line,
// so that the probed array is as small as it can be and stays in cache as
// long as it can. A slot with key 0 is empty: an entry's MAC is never zero.
type slot struct {
	// key is the MAC in the top 48 bits (see macBits) and the VNI's low
	// keyVNIBits bits.
	key atomic.Uint64
	// meta holds the rest of the key and the remote; see the meta*
	// constants.
	meta atomic.Uint64
}

// slotInfo is what Learn and the writers need beyond the slot.
type slotInfo struct {
	// lastSeen is the now of the last Learn that added, moved or
	// refreshed the entry; 0 for static and control entries.
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
	// Bits 0-15 of slot.key are the VNI's low 16 bits; bits 16-63 the MAC.
	keyVNIBits = 16
	keyVNIMask = 1<<keyVNIBits - 1

	// Bits 0-31 and 50 are the remote: an IPv4 address itself (see
	// addr4), or, with metaV6 set, an index into Table.rem.
	metaRemoteMask = 1<<32 - 1 | metaV6
	metaVNIShift   = 32 // bits 32-47: the VNI's high 16 bits
	metaVNIMask    = 0xffff << metaVNIShift
	metaTypeShift  = 48 // bits 48-49: Type
	metaTypeMask   = 3 << metaTypeShift
	metaV6         = 1 << 50
	metaBusy       = 1 << 63
)

// Every Type fits in the bits of metaTypeMask; this does not compile if
// one does not.
const _ = metaTypeMask>>metaTypeShift - uint64(Control)

func metaType(m uint64) Type { return Type(m & metaTypeMask >> metaTypeShift) }

func metaRemote(m uint64) uint64 { return m & metaRemoteMask }

// macBits returns the MAC as a 48-bit integer, little-endian as that takes
// two loads; only equality and the hash depend on the order.
func macBits(m MAC) uint64 {
	return uint64(binary.LittleEndian.Uint32(m[:4])) | uint64(binary.LittleEndian.Uint16(m[4:]))<<32
}

// packKey returns the key word of the entry for (vni, mac) and the bits of
// its meta word that hold the rest of the VNI.
func packKey(vni uint32, m MAC) (k0, k1 uint64) {
	return macBits(m)<<keyVNIBits | uint64(vni&keyVNIMask), uint64(vni>>keyVNIBits) << metaVNIShift
}

// unpackKey is the inverse of packKey.
func unpackKey(k0, meta uint64) key {
	k := key{vni: uint32(meta&metaVNIMask>>metaVNIShift)<<keyVNIBits | uint32(k0&keyVNIMask)}
	mac := k0 >> keyVNIBits // as macBits returned it
	binary.LittleEndian.PutUint32(k.mac[:4], uint32(mac))
	binary.LittleEndian.PutUint16(k.mac[4:], uint16(mac>>32))
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
	return (mac ^ uint64(vni)*hashVNIMul) * hashMul
}

// hashSlot recomputes the hash of the entry held in a slot's words.
func hashSlot(k0, meta uint64) uint64 {
	return hashBits(unpackKey(k0, meta).vni, k0>>keyVNIBits)
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
		if spins >= claimSpins {
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

// seen lowers oldest for a learned entry last seen at now. The caller holds
// the lock.
func (tb *table) seen(now int64) {
	if now < tb.oldest.Load() {
		tb.oldest.Store(now)
	}
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
	case Control:
		st.control.Add(-1)
		s.g.control.Add(-1)
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
