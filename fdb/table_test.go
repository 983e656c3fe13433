package fdb

import (
	"fmt"
	"math/bits"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateErrors(),
}

// mac returns a locally administered unicast MAC numbered i.
func mac(i int) MAC {
	return MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

var (
	mcast  = MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	bcast  = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMA = MAC{}
)

// addr parses an address; "" is the invalid zero Addr.
func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// op is one step of a table test: do runs it and returns what is compared
// with want.
type op struct {
	desc string
	do   func(*Table) any
	want any
}

func learnOp(vni uint32, m MAC, remote string, now time.Duration, want LearnResult) op {
	return op{
		desc: fmt.Sprintf("Learn(%d, %v, %q, %v)", vni, m, remote, now),
		do:   func(t *Table) any { return t.Learn(vni, m, addr(remote), int64(now)) },
		want: want,
	}
}

func staticOp(vni uint32, m MAC, remote string, want error) op {
	return op{
		desc: fmt.Sprintf("AddStatic(%d, %v, %q)", vni, m, remote),
		do:   func(t *Table) any { return t.AddStatic(vni, m, addr(remote)) },
		want: want,
	}
}

// controlResult is what AddControl returned, for comparing in ops.
type controlResult struct {
	Changed bool
	Err     error
}

func controlOp(vni uint32, m MAC, remote string, changed bool, want error) op {
	return op{
		desc: fmt.Sprintf("AddControl(%d, %v, %q)", vni, m, remote),
		do: func(t *Table) any {
			changed, err := t.AddControl(vni, m, addr(remote))
			return controlResult{changed, err}
		},
		want: controlResult{changed, want},
	}
}

func deleteControlOp(vni uint32, m MAC, remote string, want bool) op {
	return op{
		desc: fmt.Sprintf("DeleteControl(%d, %v, %q)", vni, m, remote),
		do:   func(t *Table) any { return t.DeleteControl(vni, m, addr(remote)) },
		want: want,
	}
}

func deleteOp(vni uint32, m MAC, want bool) op {
	return op{
		desc: fmt.Sprintf("Delete(%d, %v)", vni, m),
		do:   func(t *Table) any { return t.Delete(vni, m) },
		want: want,
	}
}

func expireOp(now time.Duration, want int) op {
	return op{
		desc: fmt.Sprintf("Expire(%v)", now),
		do:   func(t *Table) any { return t.Expire(int64(now)) },
		want: want,
	}
}

// lookupOp wants the remote's text, or "" for no entry.
func lookupOp(vni uint32, m MAC, want string) op {
	return op{
		desc: fmt.Sprintf("Lookup(%d, %v)", vni, m),
		do: func(t *Table) any {
			a, ok := t.Lookup(vni, m)
			if !ok {
				return ""
			}
			return a.String()
		},
		want: want,
	}
}

// statsOp wants the VNI's stats, or nil for an unknown VNI.
func statsOp(vni uint32, want *Stats) op {
	return op{
		desc: fmt.Sprintf("Stats(%d)", vni),
		do: func(t *Table) any {
			s, ok := t.Stats(vni)
			if !ok {
				return (*Stats)(nil)
			}
			return &s
		},
		want: want,
	}
}

func setNetworkOp(vni uint32, n Network) op {
	return op{
		desc: fmt.Sprintf("SetNetwork(%d, %+v)", vni, n),
		do:   func(t *Table) any { t.SetNetwork(vni, n); return nil },
	}
}

func removeNetworkOp(vni uint32) op {
	return op{
		desc: fmt.Sprintf("RemoveNetwork(%d)", vni),
		do:   func(t *Table) any { t.RemoveNetwork(vni); return nil },
	}
}

// withNetworks returns a new Table with the networks set.
func withNetworks(nets map[uint32]Network) *Table {
	tb := New()
	for vni, n := range nets {
		tb.SetNetwork(vni, n)
	}
	return tb
}

// runOps runs the ops on tb in turn and stops the test at the first whose
// result is not the one wanted.
func runOps(t *testing.T, tb *Table, ops []op) {
	t.Helper()
	for _, o := range ops {
		if diff := cmp.Diff(o.want, o.do(tb), cmpOpts...); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", o.desc, diff)
		}
	}
}

// checkEntries reports whether tb's entries are want, and fails the test
// if not.
func checkEntries(t *testing.T, tb *Table, want []Entry) bool {
	t.Helper()
	got := tb.Entries(0)
	diff := cmp.Diff(want, got, cmpOpts...)
	if diff != "" {
		t.Errorf("Entries(0) (-want +got):\n%s", diff)
	}
	// Get finds each listed entry as Entries lists it.
	for _, en := range got {
		if g, ok := tb.Get(en.VNI, en.MAC, 0); !ok || g != en {
			t.Errorf("Get(%d, %v) = %+v, %v; Entries has %+v", en.VNI, en.MAC, g, ok, en)
			diff = "get"
		}
	}
	if g, ok := tb.Get(1, MAC{0x02, 0xff, 0xff, 0xff, 0xff, 0xfe}, 0); ok {
		t.Errorf("Get of a MAC no test uses = %+v, true", g)
	}
	return diff == ""
}

// withShard calls f with the key's shard, under its lock.
func withShard(tb *Table, k key, f func(s *shard)) {
	s := tb.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// tableTest is a case of TestTable: the ops run on a table with the
// networks nets, then its entries at entriesAt must be want.
type tableTest struct {
	name      string
	nets      map[uint32]Network
	ops       []op
	entriesAt time.Duration
	want      []Entry
}

// pinKind is a type of entry that is set from outside the data plane,
// Static or Control: learning neither changes nor ages it, and it does
// not count against MaxEntries.
type pinKind struct {
	typ Type
	// add sets an entry and wants err; a control entry that is set must
	// report a change.
	add func(vni uint32, m MAC, remote string, err error) op
	// stats returns s with n entries of the type.
	stats func(s Stats, n int) *Stats
}

var pinKinds = []pinKind{
	{
		typ:   Static,
		add:   staticOp,
		stats: func(s Stats, n int) *Stats { s.Static = n; return &s },
	},
	{
		typ: Control,
		add: func(vni uint32, m MAC, remote string, err error) op {
			return controlOp(vni, m, remote, err == nil, err)
		},
		stats: func(s Stats, n int) *Stats { s.Control = n; return &s },
	},
}

// pinnedTests are the cases of TestTable that static and control entries
// share.
func pinnedTests(k pinKind) []tableTest {
	const (
		r1 = "192.0.2.1"
		r2 = "192.0.2.2"
	)
	std := Network{MaxEntries: 100, Ageing: 300 * time.Second}
	return []tableTest{
		{
			name: fmt.Sprintf("learning does not change a %v entry", k.typ),
			nets: map[uint32]Network{10: std},
			ops: []op{
				k.add(10, mac(1), r1, nil),
				learnOp(10, mac(1), r2, time.Second, Ignored),
				learnOp(10, mac(1), r1, time.Second, Ignored),
				lookupOp(10, mac(1), r1),
				statsOp(10, k.stats(Stats{}, 1)),
			},
			entriesAt: time.Hour,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: k.typ}},
		},
		{
			name: fmt.Sprintf("%v replaces learned and gives its room back", k.typ),
			nets: map[uint32]Network{10: {MaxEntries: 2, Ageing: time.Minute}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(2), r2, 0, Added),
				learnOp(10, mac(3), r1, 0, Refused),
				k.add(10, mac(1), r1, nil), // same remote: still a change
				k.add(10, mac(2), r1, nil),
				lookupOp(10, mac(1), r1),
				lookupOp(10, mac(2), r1),
				statsOp(10, k.stats(Stats{LearnedTotal: 2, Refused: 1}, 2)),
				learnOp(10, mac(1), r2, time.Second, Ignored),
				// The replaced entries no longer take learning room.
				learnOp(10, mac(3), r1, time.Second, Added),
				learnOp(10, mac(4), r1, time.Second, Added),
				// Nor do new ones when learning is full.
				k.add(10, mac(5), r2, nil),
				statsOp(10, k.stats(Stats{Learned: 2, LearnedTotal: 4, Refused: 1}, 3)),
			},
			entriesAt: 2 * time.Second,
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: k.typ},
				{VNI: 10, MAC: mac(2), Remote: addr(r1), Type: k.typ},
				{VNI: 10, MAC: mac(3), Remote: addr(r1), Type: Learned, Age: time.Second},
				{VNI: 10, MAC: mac(4), Remote: addr(r1), Type: Learned, Age: time.Second},
				{VNI: 10, MAC: mac(5), Remote: addr(r2), Type: k.typ},
			},
		},
		{
			name: fmt.Sprintf("%v entries do not age", k.typ),
			nets: map[uint32]Network{10: {MaxEntries: 10, Ageing: 10 * time.Second}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(2), r1, 0, Added),
				k.add(10, mac(2), r2, nil),
				expireOp(1000*time.Hour, 1),
				lookupOp(10, mac(2), r2),
				statsOp(10, k.stats(Stats{LearnedTotal: 2, Expired: 1}, 1)),
			},
			entriesAt: 1000 * time.Hour,
			want:      []Entry{{VNI: 10, MAC: mac(2), Remote: addr(r2), Type: k.typ}},
		},
		{
			name: fmt.Sprintf("bad %v entries", k.typ),
			nets: map[uint32]Network{10: std},
			ops: []op{
				k.add(10, mcast, r1, ErrNotUnicast),
				k.add(10, bcast, r1, ErrNotUnicast),
				k.add(10, zeroMA, r1, ErrNotUnicast),
				k.add(10, mac(1), "", ErrInvalidRemote),
				k.add(11, mac(1), r1, ErrUnknownNetwork),
				lookupOp(10, bcast, ""),
				statsOp(10, &Stats{}),
			},
		},
	}
}

func TestTable(t *testing.T) {
	const (
		r1 = "192.0.2.1"
		r2 = "192.0.2.2"
		r6 = "2001:db8::1"
	)
	std := Network{MaxEntries: 100, Ageing: 300 * time.Second}
	tests := []tableTest{
		{
			name: "learn",
			nets: map[uint32]Network{10: std},
			ops: []op{
				lookupOp(10, mac(1), ""),
				learnOp(10, mac(1), r1, time.Second, Added),
				lookupOp(10, mac(1), r1),
				statsOp(10, &Stats{Learned: 1, LearnedTotal: 1}),
			},
			entriesAt: 3 * time.Second,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned, Age: 2 * time.Second}},
		},
		{
			name: "refresh resets age",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(1), r1, 10*time.Second, Refreshed),
				statsOp(10, &Stats{Learned: 1, LearnedTotal: 1}),
			},
			entriesAt: 10*time.Second + 500*time.Millisecond,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned, Age: 500 * time.Millisecond}},
		},
		{
			name: "refresh within 100ms does not store",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mac(1), r1, time.Second, Added),
				learnOp(10, mac(1), r1, time.Second+100*time.Millisecond, Refreshed),
			},
			entriesAt: 2 * time.Second,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned, Age: time.Second}},
		},
		{
			name: "refresh with an older now does not move time back",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mac(1), r1, 5*time.Second, Added),
				learnOp(10, mac(1), r1, time.Second, Refreshed),
			},
			entriesAt: 6 * time.Second,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned, Age: time.Second}},
		},
		{
			name: "move",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(1), r2, 50*time.Millisecond, Moved),
				lookupOp(10, mac(1), r2),
				learnOp(10, mac(1), r2, 60*time.Millisecond, Refreshed),
				learnOp(10, mac(1), r6, 70*time.Millisecond, Moved),
				statsOp(10, &Stats{Learned: 1, LearnedTotal: 1, Moves: 2}),
			},
			entriesAt: time.Second,
			want:      []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r6), Type: Learned, Age: 930 * time.Millisecond}},
		},
		{
			name: "IPv4-mapped remote is stored as IPv4",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mac(1), "::ffff:"+r1, 0, Added),
				learnOp(10, mac(1), r1, time.Second, Refreshed),
				lookupOp(10, mac(1), r1),
				staticOp(10, mac(2), "::ffff:"+r2, nil),
				lookupOp(10, mac(2), r2),
			},
			entriesAt: time.Second,
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned},
				{VNI: 10, MAC: mac(2), Remote: addr(r2), Type: Static},
			},
		},
		{
			name: "static changes remote of static",
			nets: map[uint32]Network{10: std},
			ops: []op{
				staticOp(10, mac(1), r1, nil),
				staticOp(10, mac(1), r2, nil),
				lookupOp(10, mac(1), r2),
				statsOp(10, &Stats{Static: 1}),
			},
			want: []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r2), Type: Static}},
		},
		{
			name: "ageing",
			nets: map[uint32]Network{10: {MaxEntries: 10, Ageing: 10 * time.Second}},
			ops: []op{
				learnOp(10, mac(1), r1, time.Second, Added),
				learnOp(10, mac(2), r1, 2*time.Second, Added),
				staticOp(10, mac(3), r2, nil),
				expireOp(11*time.Second-1, 0),
				lookupOp(10, mac(1), r1),
				expireOp(11*time.Second, 1),
				lookupOp(10, mac(1), ""),
				lookupOp(10, mac(2), r1),
				expireOp(12*time.Second, 1),
				expireOp(1000*time.Hour, 0),
				lookupOp(10, mac(3), r2),
				statsOp(10, &Stats{Static: 1, LearnedTotal: 2, Expired: 2}),
			},
			entriesAt: 1000 * time.Hour,
			want:      []Entry{{VNI: 10, MAC: mac(3), Remote: addr(r2), Type: Static}},
		},
		{
			name: "refresh postpones ageing",
			nets: map[uint32]Network{10: {MaxEntries: 10, Ageing: 10 * time.Second}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(1), r1, 5*time.Second, Refreshed),
				expireOp(10*time.Second, 0),
				expireOp(15*time.Second, 1),
			},
		},
		{
			name: "ageing is per VNI and zero means never",
			nets: map[uint32]Network{
				10: {MaxEntries: 10, Ageing: 10 * time.Second},
				20: {MaxEntries: 10, Ageing: 20 * time.Second},
				30: {MaxEntries: 10},
			},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(20, mac(1), r1, 0, Added),
				learnOp(30, mac(1), r1, 0, Added),
				expireOp(10*time.Second, 1),
				expireOp(20*time.Second, 1),
				expireOp(1000*time.Hour, 0),
			},
			entriesAt: time.Hour,
			want:      []Entry{{VNI: 30, MAC: mac(1), Remote: addr(r1), Type: Learned, Age: time.Hour}},
		},
		{
			name: "max entries",
			nets: map[uint32]Network{10: {MaxEntries: 2, Ageing: 10 * time.Second}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(2), r1, time.Second, Added),
				learnOp(10, mac(3), r1, time.Second, Refused),
				learnOp(10, mac(3), r1, time.Second, Refused),
				// Refresh and move still work when full.
				learnOp(10, mac(1), r1, 2*time.Second, Refreshed),
				learnOp(10, mac(2), r2, 2*time.Second, Moved),
				// Static entries do not count.
				staticOp(10, mac(9), r2, nil),
				statsOp(10, &Stats{Learned: 2, Static: 1, LearnedTotal: 2, Moves: 1, Refused: 2}),
				// Delete makes room.
				deleteOp(10, mac(1), true),
				learnOp(10, mac(3), r1, 3*time.Second, Added),
				learnOp(10, mac(4), r1, 3*time.Second, Refused),
				// So does Expire.
				expireOp(12*time.Second, 1),
				learnOp(10, mac(4), r1, 12*time.Second, Added),
				statsOp(10, &Stats{Learned: 2, Static: 1, LearnedTotal: 4, Moves: 1, Refused: 3, Expired: 1}),
			},
			entriesAt: 12 * time.Second,
			want: []Entry{
				{VNI: 10, MAC: mac(3), Remote: addr(r1), Type: Learned, Age: 9 * time.Second},
				{VNI: 10, MAC: mac(4), Remote: addr(r1), Type: Learned},
				{VNI: 10, MAC: mac(9), Remote: addr(r2), Type: Static},
			},
		},
		{
			name: "max entries zero leaves no room",
			nets: map[uint32]Network{10: {MaxEntries: 0, Ageing: time.Minute}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Refused),
				staticOp(10, mac(1), r1, nil),
				statsOp(10, &Stats{Static: 1, Refused: 1}),
			},
			want: []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Static}},
		},
		{
			name: "SetNetwork updates settings and keeps entries and counters",
			nets: map[uint32]Network{10: {MaxEntries: 1, Ageing: time.Minute}},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(10, mac(2), r1, 0, Refused),
				setNetworkOp(10, Network{MaxEntries: 3, Ageing: 10 * time.Second}),
				learnOp(10, mac(2), r1, 0, Added),
				learnOp(10, mac(3), r1, 0, Added),
				setNetworkOp(10, Network{MaxEntries: 1, Ageing: 10 * time.Second}),
				lookupOp(10, mac(3), r1),
				learnOp(10, mac(4), r1, 0, Refused),
				statsOp(10, &Stats{Learned: 3, LearnedTotal: 3, Refused: 2}),
				expireOp(10*time.Second, 3),
			},
		},
		{
			name: "learning ignores non-unicast and zero MACs and invalid remotes",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(10, mcast, r1, 0, Ignored),
				learnOp(10, bcast, r1, 0, Ignored),
				learnOp(10, zeroMA, r1, 0, Ignored),
				learnOp(10, mac(1), "", 0, Ignored),
				lookupOp(10, bcast, ""),
				statsOp(10, &Stats{}),
			},
		},
		{
			name: "unknown VNI",
			nets: map[uint32]Network{10: std},
			ops: []op{
				learnOp(11, mac(1), r1, 0, Ignored),
				staticOp(11, mac(1), r1, ErrUnknownNetwork),
				lookupOp(11, mac(1), ""),
				deleteOp(11, mac(1), false),
				statsOp(11, nil),
			},
		},
		{
			name: "VNIs are kept apart",
			nets: map[uint32]Network{10: std, 20: std},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				learnOp(20, mac(1), r2, 0, Added),
				lookupOp(10, mac(1), r1),
				lookupOp(20, mac(1), r2),
				staticOp(20, mac(2), r6, nil),
				lookupOp(10, mac(2), ""),
				deleteOp(10, mac(2), false),
				learnOp(10, mac(2), r1, 0, Added),
				deleteOp(20, mac(1), true),
				lookupOp(10, mac(1), r1),
				statsOp(10, &Stats{Learned: 2, LearnedTotal: 2}),
				statsOp(20, &Stats{Static: 1, LearnedTotal: 1}),
			},
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned},
				{VNI: 10, MAC: mac(2), Remote: addr(r1), Type: Learned},
				{VNI: 20, MAC: mac(2), Remote: addr(r6), Type: Static},
			},
		},
		{
			name: "delete",
			nets: map[uint32]Network{10: std},
			ops: []op{
				deleteOp(10, mac(1), false),
				learnOp(10, mac(1), r1, 0, Added),
				staticOp(10, mac(2), r1, nil),
				deleteOp(10, mac(1), true),
				deleteOp(10, mac(2), true),
				deleteOp(10, mac(2), false),
				lookupOp(10, mac(1), ""),
				statsOp(10, &Stats{LearnedTotal: 1}),
			},
		},
		{
			name: "RemoveNetwork",
			nets: map[uint32]Network{10: std, 20: std},
			ops: []op{
				learnOp(10, mac(1), r1, 0, Added),
				staticOp(10, mac(2), r1, nil),
				learnOp(20, mac(1), r2, 0, Added),
				removeNetworkOp(10),
				removeNetworkOp(10),
				removeNetworkOp(99),
				lookupOp(10, mac(1), ""),
				lookupOp(10, mac(2), ""),
				lookupOp(20, mac(1), r2),
				statsOp(10, nil),
				learnOp(10, mac(1), r1, 0, Ignored),
				staticOp(10, mac(1), r1, ErrUnknownNetwork),
				// Created again, it starts empty with fresh counters.
				setNetworkOp(10, std),
				statsOp(10, &Stats{}),
				learnOp(10, mac(3), r1, 0, Added),
				statsOp(10, &Stats{Learned: 1, LearnedTotal: 1}),
			},
			want: []Entry{
				{VNI: 10, MAC: mac(3), Remote: addr(r1), Type: Learned},
				{VNI: 20, MAC: mac(1), Remote: addr(r2), Type: Learned},
			},
		},
		{
			name: "control entries",
			nets: map[uint32]Network{10: std},
			ops: []op{
				controlOp(10, mac(1), r1, true, nil),
				lookupOp(10, mac(1), r1),
				controlOp(10, mac(1), r1, false, nil),
				controlOp(10, mac(1), "::ffff:"+r1, false, nil),
				controlOp(10, mac(1), r6, true, nil), // the MAC moved
				lookupOp(10, mac(1), r6),
				controlOp(10, mac(2), "::ffff:"+r2, true, nil),
				lookupOp(10, mac(2), r2),
				statsOp(10, &Stats{Control: 2}),
			},
			entriesAt: time.Hour,
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r6), Type: Control},
				{VNI: 10, MAC: mac(2), Remote: addr(r2), Type: Control},
			},
		},
		{
			name: "static wins over control",
			nets: map[uint32]Network{10: std},
			ops: []op{
				staticOp(10, mac(1), r1, nil),
				controlOp(10, mac(1), r2, false, ErrStaticEntry),
				controlOp(10, mac(1), r1, false, ErrStaticEntry),
				controlOp(10, mac(2), r2, true, nil),
				staticOp(10, mac(2), r1, nil),
				lookupOp(10, mac(2), r1),
				deleteControlOp(10, mac(1), r1, false),
				deleteControlOp(10, mac(2), r1, false),
				statsOp(10, &Stats{Static: 2}),
			},
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Static},
				{VNI: 10, MAC: mac(2), Remote: addr(r1), Type: Static},
			},
		},
		{
			name: "DeleteControl",
			nets: map[uint32]Network{10: std},
			ops: []op{
				deleteControlOp(10, mac(1), r1, false),
				controlOp(10, mac(1), r1, true, nil),
				deleteControlOp(10, mac(1), r2, false), // moved since
				deleteControlOp(10, mac(1), "", false),
				deleteControlOp(10, zeroMA, r1, false),
				deleteControlOp(11, mac(1), r1, false),
				deleteControlOp(10, mac(1), "::ffff:"+r1, true),
				deleteControlOp(10, mac(1), r1, false),
				lookupOp(10, mac(1), ""),
				// A learned entry is the data plane's.
				learnOp(10, mac(1), r1, 0, Added),
				deleteControlOp(10, mac(1), r1, false),
				// Delete removes any type.
				controlOp(10, mac(2), r6, true, nil),
				deleteOp(10, mac(2), true),
				statsOp(10, &Stats{Learned: 1, LearnedTotal: 1}),
			},
			want: []Entry{{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Learned}},
		},
		{
			name: "RemoveNetwork removes control entries",
			nets: map[uint32]Network{10: std, 20: std},
			ops: []op{
				controlOp(10, mac(1), r1, true, nil),
				controlOp(20, mac(1), r2, true, nil),
				removeNetworkOp(10),
				lookupOp(10, mac(1), ""),
				controlOp(10, mac(1), r1, false, ErrUnknownNetwork),
				setNetworkOp(10, std),
				statsOp(10, &Stats{}),
				lookupOp(10, mac(1), ""),
				controlOp(10, mac(1), r1, true, nil),
			},
			want: []Entry{
				{VNI: 10, MAC: mac(1), Remote: addr(r1), Type: Control},
				{VNI: 20, MAC: mac(1), Remote: addr(r2), Type: Control},
			},
		},
		{
			name: "entries are sorted by VNI then MAC",
			nets: map[uint32]Network{1: std, 2: std, 0xffffff: std},
			ops: []op{
				learnOp(0xffffff, MAC{0x02, 0, 0, 0, 0, 1}, r1, 0, Added),
				learnOp(2, MAC{0xfe, 0, 0, 0, 0, 0}, r1, 0, Added),
				learnOp(2, MAC{0x02, 0xff, 0, 0, 0, 0}, r1, 0, Added),
				learnOp(2, MAC{0x02, 0, 0, 0, 0, 0xff}, r1, 0, Added),
				staticOp(1, MAC{0x04, 0, 0, 0, 0, 0}, r1, nil),
			},
			want: []Entry{
				{VNI: 1, MAC: MAC{0x04, 0, 0, 0, 0, 0}, Remote: addr(r1), Type: Static},
				{VNI: 2, MAC: MAC{0x02, 0, 0, 0, 0, 0xff}, Remote: addr(r1), Type: Learned},
				{VNI: 2, MAC: MAC{0x02, 0xff, 0, 0, 0, 0}, Remote: addr(r1), Type: Learned},
				{VNI: 2, MAC: MAC{0xfe, 0, 0, 0, 0, 0}, Remote: addr(r1), Type: Learned},
				{VNI: 0xffffff, MAC: MAC{0x02, 0, 0, 0, 0, 1}, Remote: addr(r1), Type: Learned},
			},
		},
	}
	for _, k := range pinKinds {
		tests = append(tests, pinnedTests(k)...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := withNetworks(tt.nets)
			runOps(t, tb, tt.ops)
			if diff := cmp.Diff(tt.want, tb.Entries(int64(tt.entriesAt)), cmpOpts...); diff != "" {
				t.Errorf("Entries(%v) (-want +got):\n%s", tt.entriesAt, diff)
			}
			checkInvariants(t, tb)
		})
	}
}

// checkInvariants checks the table's internal bookkeeping: every used
// slot holds a key of its shard that probing finds there (so no key is
// held twice and no run is broken), belongs to a live network and is not
// claimed, and has a remote; free slots are clear; each table's count
// matches its used slots and respects the load limit; the remotes' counts
// match the entries pointing at them; and each VNI's Learned and Static
// counts match its entries.
func checkInvariants(t *testing.T, tb *Table) {
	t.Helper()
	type counts struct{ learned, static, control int }
	got := map[*vniState]*counts{}
	refs := map[uint32]int32{}
	for si := range tb.shards {
		s := &tb.shards[si]
		s.mu.RLock()
		tab := s.tab.Load()
		if n := len(tab.slots); n&(n-1) != 0 || len(tab.info) != n || tab.shift != uint(64-bits.TrailingZeros(uint(n))) {
			t.Errorf("shard %d: table of %d slots, %d infos, shift %d", si, n, len(tab.info), tab.shift)
		}
		if tab != emptyTable && tab.count*loadDen > len(tab.slots)*loadNum {
			t.Errorf("shard %d: %d entries in %d slots", si, tab.count, len(tab.slots))
		}
		used := 0
		for j := range tab.slots {
			sl, in := &tab.slots[j], &tab.info[j]
			k0, m := sl.key.Load(), sl.meta.Load()
			if k0 == 0 {
				if m != 0 || in.lastSeen.Load() != 0 || in.net.Load() != nil {
					t.Errorf("shard %d slot %d: free but not clear", si, j)
				}
				continue
			}
			used++
			k := unpackKey(k0, m)
			if m&metaBusy != 0 {
				t.Errorf("shard %d slot %d (%d %v): claimed", si, j, k.vni, k.mac)
			}
			if typ := metaType(m); typ != Learned && typ != Static && typ != Control {
				t.Errorf("shard %d slot %d (%d %v): type %v", si, j, k.vni, k.mac, typ)
			} else if typ != Learned && (in.lastSeen.Load() != 0 || in.since != 0 || in.moves != 0) {
				t.Errorf("shard %d slot %d (%d %v): %v with a last-seen time or damping state", si, j, k.vni, k.mac, typ)
			}
			h := hash(k.vni, k.mac)
			k0w, k1w := packKey(k.vni, k.mac)
			if i, _, ok := tab.find(h, k0w, k1w); !ok || i != j {
				t.Errorf("shard %d slot %d (%d %v): probing finds %d, %v", si, j, k.vni, k.mac, i, ok)
			}
			if shardIndex(k.vni, k.mac) != uint(si) {
				t.Errorf("shard %d slot %d: key %d %v belongs in shard %d", si, j, k.vni, k.mac, shardIndex(k.vni, k.mac))
			}
			if a, ok := tb.rem.addr(m); !ok || !a.IsValid() || a.Is4In6() || a.Is4() == (m&metaV6 != 0) {
				t.Errorf("shard %d slot %d (%d %v): remote %#x is %v", si, j, k.vni, k.mac, metaRemote(m), a)
			}
			if m&metaV6 != 0 {
				refs[uint32(m)]++
			}
			st := in.net.Load()
			if st == nil || st.removed.Load() {
				t.Errorf("shard %d slot %d: entry of a removed network", si, j)
				continue
			}
			c := got[st]
			if c == nil {
				c = &counts{}
				got[st] = c
			}
			switch metaType(m) {
			case Learned:
				c.learned++
			case Static:
				c.static++
			case Control:
				c.control++
			}
		}
		if used != tab.count {
			t.Errorf("shard %d: %d used slots, count %d", si, used, tab.count)
		}
		s.mu.RUnlock()
	}
	var total counts
	for _, c := range got {
		total.learned += c.learned
		total.control += c.control
	}
	if g := tb.g.learned.Load(); int(g) != total.learned {
		t.Errorf("table-wide counter says %d learned, entries say %d", g, total.learned)
	}
	if g := tb.g.control.Load(); int(g) != total.control {
		t.Errorf("table-wide counter says %d control, entries say %d", g, total.control)
	}
	for vni, st := range *tb.nets.Load() {
		c := got[st]
		if c == nil {
			c = &counts{}
		}
		delete(got, st)
		if l, s, k := st.learned.Load(), st.static.Load(), st.control.Load(); int(l) != c.learned || int(s) != c.static || int(k) != c.control {
			t.Errorf("VNI %d: counters say %d learned, %d static, %d control; entries say %d, %d, %d",
				vni, l, s, k, c.learned, c.static, c.control)
		}
	}
	if len(got) != 0 {
		t.Errorf("%d networks own entries but are not published", len(got))
	}

	r := &tb.rem
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.refs {
		if refs[uint32(i)] != n {
			t.Errorf("remote %d: counted %d times, %d entries point at it", i, n, refs[uint32(i)])
		}
		p := r.load(uint32(i))
		if n > 0 && (p == nil || r.index[*p] != uint32(i)) {
			t.Errorf("remote %d (%v): in use but not indexed", i, p)
		}
		if n == 0 && p != nil && r.index[*p] == uint32(i) && !r.queued[i] {
			t.Errorf("remote %d (%v): idle but not queued for reuse", i, *p)
		}
	}
	if len(r.index) > len(r.refs) {
		t.Errorf("%d remotes indexed, %d slots", len(r.index), len(r.refs))
	}
}

// countsFromEntries counts each VNI's entries the way a user of the
// package would, to check Stats against.
func countsFromEntries(entries []Entry) map[uint32]Stats {
	m := map[uint32]Stats{}
	for _, e := range entries {
		s := m[e.VNI]
		switch e.Type {
		case Learned:
			s.Learned++
		case Static:
			s.Static++
		case Control:
			s.Control++
		}
		m[e.VNI] = s
	}
	return m
}

func TestTypeAndResultStrings(t *testing.T) {
	got := []string{
		Learned.String(), Static.String(), Control.String(), Type(0).String(),
		Refreshed.String(), Added.String(), Moved.String(), Refused.String(), Ignored.String(), Damped.String(), LearnResult(9).String(),
	}
	want := []string{
		"learned", "static", "control", "Type(0)",
		"refreshed", "added", "moved", "refused", "ignored", "damped", "LearnResult(9)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestShardSize(t *testing.T) {
	if size := reflect.TypeFor[shard]().Size(); size%64 != 0 {
		t.Errorf("shard is %d bytes; adjust its padding to a multiple of 64", size)
	}
}

// TestShardSpread checks that sequential MACs, and one MAC in sequential
// VNIs, spread evenly over the shards.
func TestShardSpread(t *testing.T) {
	const n = 64 * numShards
	for _, tc := range []struct {
		name string
		key  func(i int) (uint32, MAC)
	}{
		{"sequential MACs", func(i int) (uint32, MAC) { return 1, mac(i) }},
		{"sequential VNIs", func(i int) (uint32, MAC) { return uint32(i), mac(1) }},
		{"OUI-sequential MACs", func(i int) (uint32, MAC) {
			return 7, MAC{0x52, 0x54, 0x00, byte(i), byte(i >> 8), byte(i >> 16)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hist [numShards]int
			for i := range n {
				hist[shardIndex(tc.key(i))]++
			}
			lo, hi := n, 0
			for _, c := range hist {
				lo, hi = min(lo, c), max(hi, c)
			}
			// An even spread puts 64 in each; allow for a fair hash's
			// variance, not for clustering.
			if lo < 32 || hi > 112 {
				t.Errorf("shard loads range over [%d, %d], want about 64", lo, hi)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	tb := New()
	tb.SetNetwork(1, Network{MaxEntries: 1 << 20, Ageing: time.Minute})
	tb.SetNetwork(2, Network{MaxEntries: 0, Ageing: time.Minute})
	tb.SetNetwork(4, Network{}) // control entries only
	const n = 4096
	r1, r2 := addr("192.0.2.1"), addr("2001:db8::2")
	for i := range n {
		tb.Learn(1, mac(i), r1, 0)
		if _, err := tb.AddControl(4, mac(i), r1); err != nil {
			t.Fatal(err)
		}
	}
	now := int64(0)
	i := 0
	next := func() MAC { i = (i + 1) % n; return mac(i) }

	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Lookup hit", func() { tb.Lookup(1, next()) }},
		{"Lookup miss", func() { tb.Lookup(1, mac(n+i)) }},
		{"Learn refresh, within slack", func() { tb.Learn(1, next(), r1, now) }},
		{"Learn refresh, storing", func() { now += int64(time.Second); tb.Learn(1, next(), r1, now) }},
		{"Learn move", func() {
			m := next()
			tb.Learn(1, m, r2, now)
			tb.Learn(1, m, r1, now)
		}},
		{"Learn refused", func() { tb.Learn(2, next(), r1, now) }},
		{"Learn ignored", func() { tb.Learn(3, next(), r1, now) }},
		{"Delete and Learn again", func() {
			// The new-entry path, with the shard's free list and map
			// already sized for the entry.
			m := next()
			tb.Delete(1, m)
			if tb.Learn(1, m, r1, now) != Added {
				t.Fatal("not added")
			}
		}},
		{"AddControl unchanged", func() { tb.AddControl(4, next(), r1) }},
		{"AddControl move", func() {
			m := next()
			tb.AddControl(4, m, r2)
			tb.AddControl(4, m, r1)
		}},
		{"DeleteControl and AddControl again", func() {
			m := next()
			tb.DeleteControl(4, m, r1)
			if changed, err := tb.AddControl(4, m, r1); !changed || err != nil {
				t.Fatal("not added:", err)
			}
		}},
		{"Learn ignored by a control entry", func() { tb.Learn(4, next(), r2, now) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f() // warm up: let the free lists reach their steady size
			if a := testing.AllocsPerRun(1000, tc.f); a != 0 {
				t.Errorf("%v allocations per run, want 0", a)
			}
			// AllocsPerRun rounds the average down; also insist that
			// no single run allocated.
			total := 0.0
			for range 1000 {
				total += testing.AllocsPerRun(1, tc.f)
			}
			if total != 0 {
				t.Errorf("%v allocations in 1000 runs, want 0", total)
			}
		})
	}

	// A sliding window of fresh keys at a constant total: each shard's
	// entry count random-walks, so its slab, free list and map grow to
	// new high-water marks now and then, ever more rarely (measured: a
	// few hundred allocations in the first million operations, none per
	// million after a few million). Only the amortized cost is zero.
	t.Run("Delete oldest and Learn new", func(t *testing.T) {
		j := 0
		window := func() {
			tb.Delete(1, mac(j))
			tb.Learn(1, mac(j+n), r1, now)
			j++
		}
		for range 20 * n {
			window()
		}
		if a := testing.AllocsPerRun(10000, window); a != 0 {
			t.Errorf("%v allocations per run, want 0", a)
		}
	})
	checkInvariants(t, tb)
}
