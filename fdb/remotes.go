package fdb

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

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

// minRemotes is the length of the list when the first IPv6 remote needs
// it; it doubles each time it fills.
const minRemotes = 16

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
		next := &remoteList{addrs: make([]atomic.Pointer[netip.Addr], max(2*len(l.addrs), minRemotes))}
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
