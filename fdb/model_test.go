package fdb

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// model is a plain-map reference implementation of Table, one operation at
// a time with no concurrency, written for obviousness rather than speed.
type model struct {
	nets    map[uint32]*modelNet
	entries map[key]*modelEntry
	// maxControl is Limits.MaxControl; global counts what GlobalStats
	// does (learning has no table-wide cap here).
	maxControl int
	global     GlobalStats
}

type modelNet struct {
	n     Network
	stats Stats
}

type modelEntry struct {
	remote   netip.Addr
	typ      Type
	lastSeen int64
}

func newModel() *model {
	return &model{nets: map[uint32]*modelNet{}, entries: map[key]*modelEntry{}}
}

func (m *model) setNetwork(vni uint32, n Network) {
	if mn, ok := m.nets[vni]; ok {
		mn.n = n
		return
	}
	m.nets[vni] = &modelNet{n: n}
}

func (m *model) removeNetwork(vni uint32) {
	delete(m.nets, vni)
	for k, e := range m.entries {
		if k.vni == vni {
			m.uncount(e)
			delete(m.entries, k)
		}
	}
}

// uncount takes an entry that goes out of the table-wide counts.
func (m *model) uncount(e *modelEntry) {
	switch e.typ {
	case Learned:
		m.global.Learned--
	case Control:
		m.global.Control--
	}
}

func (m *model) learn(vni uint32, mac MAC, remote netip.Addr, now int64) LearnResult {
	mn := m.nets[vni]
	if mn == nil || !mac.IsUnicast() || mac.IsZero() || !remote.IsValid() {
		return Ignored
	}
	remote = remote.Unmap()
	e := m.entries[key{vni, mac}]
	switch {
	case e == nil:
		if mn.stats.Learned >= mn.n.MaxEntries {
			mn.stats.Refused++
			return Refused
		}
		m.entries[key{vni, mac}] = &modelEntry{remote: remote, typ: Learned, lastSeen: now}
		mn.stats.Learned++
		mn.stats.LearnedTotal++
		m.global.Learned++
		return Added
	case e.typ != Learned:
		return Ignored
	case e.remote == remote:
		if now-e.lastSeen > int64(100*time.Millisecond) {
			e.lastSeen = now
		}
		return Refreshed
	default:
		e.remote = remote
		e.lastSeen = now
		mn.stats.Moves++
		return Moved
	}
}

func (m *model) addStatic(vni uint32, mac MAC, remote netip.Addr) error {
	mn := m.nets[vni]
	switch {
	case !mac.IsUnicast() || mac.IsZero():
		return ErrNotUnicast
	case !remote.IsValid():
		return ErrInvalidRemote
	case mn == nil:
		return ErrUnknownNetwork
	}
	if e := m.entries[key{vni, mac}]; e != nil {
		m.uncount(e)
		mn.stats.add(e.typ, -1)
	}
	m.entries[key{vni, mac}] = &modelEntry{remote: remote.Unmap(), typ: Static}
	mn.stats.Static++
	return nil
}

// add adds n to the count of entries of type typ.
func (s *Stats) add(typ Type, n int) {
	switch typ {
	case Learned:
		s.Learned += n
	case Static:
		s.Static += n
	case Control:
		s.Control += n
	}
}

func (m *model) addControl(vni uint32, mac MAC, remote netip.Addr) (bool, error) {
	mn := m.nets[vni]
	switch {
	case !mac.IsUnicast() || mac.IsZero():
		return false, ErrNotUnicast
	case !remote.IsValid():
		return false, ErrInvalidRemote
	case mn == nil:
		return false, ErrUnknownNetwork
	}
	remote = remote.Unmap()
	e := m.entries[key{vni, mac}]
	switch {
	case e != nil && e.typ == Static:
		return false, ErrStaticEntry
	case e != nil && e.typ == Control:
		changed := e.remote != remote
		e.remote = remote
		return changed, nil
	case m.maxControl > 0 && m.global.Control >= m.maxControl:
		mn.stats.ControlRefused++
		m.global.ControlRefused++
		return false, ErrControlFull
	case e != nil: // learned
		mn.stats.Learned--
		m.global.Learned--
	}
	m.entries[key{vni, mac}] = &modelEntry{remote: remote, typ: Control}
	mn.stats.Control++
	m.global.Control++
	return true, nil
}

func (m *model) deleteControl(vni uint32, mac MAC, remote netip.Addr) bool {
	e := m.entries[key{vni, mac}]
	if e == nil || e.typ != Control || !remote.IsValid() || e.remote != remote.Unmap() {
		return false
	}
	return m.delete(vni, mac)
}

func (m *model) delete(vni uint32, mac MAC) bool {
	e := m.entries[key{vni, mac}]
	if e == nil {
		return false
	}
	m.uncount(e)
	m.nets[vni].stats.add(e.typ, -1)
	delete(m.entries, key{vni, mac})
	return true
}

func (m *model) expire(now int64) int {
	n := 0
	for k, e := range m.entries {
		mn := m.nets[k.vni]
		if e.typ == Learned && mn.n.Ageing > 0 && now-e.lastSeen >= int64(mn.n.Ageing) {
			delete(m.entries, k)
			mn.stats.Learned--
			mn.stats.Expired++
			m.global.Learned--
			n++
		}
	}
	return n
}

func (m *model) lookup(vni uint32, mac MAC) (netip.Addr, bool) {
	if e := m.entries[key{vni, mac}]; e != nil {
		return e.remote, true
	}
	return netip.Addr{}, false
}

func (m *model) list(now int64) []Entry {
	var out []Entry
	for k, e := range m.entries {
		ent := Entry{VNI: k.vni, MAC: k.mac, Remote: e.remote, Type: e.typ}
		if e.typ == Learned {
			ent.Age = time.Duration(max(now-e.lastSeen, 0))
		}
		out = append(out, ent)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), bytes.Compare(a.MAC[:], b.MAC[:]))
	})
	return out
}

// TestAgainstModel applies a long random, but seeded and so repeatable,
// sequence of operations to a Table and to the model and compares every
// result, and the whole contents and counters at intervals.
func TestAgainstModel(t *testing.T) {
	ops := 50000
	if testing.Short() {
		ops = 5000
	}
	checkAgainstModel(t, rand.New(rand.NewPCG(7348, 4789)), ops)
}

// FuzzOps drives the table and the model with an operation sequence the
// fuzzer chooses, byte by byte, and requires them to agree throughout.
func FuzzOps(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("learn, move, expire, delete, learn again"))
	f.Add([]byte("control: add, replace learned, move, lose to static, withdraw"))
	seed := make([]byte, 512)
	for i := range seed {
		seed[i] = byte(i * 37)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{b: data}
		checkAgainstModel(t, src, min(len(data)/3, 3000))
	})
}

// opSource picks operations and their arguments.
type opSource interface {
	IntN(n int) int
	Int64N(n int64) int64
}

// byteSource is an opSource reading the fuzzer's bytes, two at a time,
// and zeros when they run out.
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) next() uint64 {
	var v uint64
	for range 2 {
		v <<= 8
		if s.i < len(s.b) {
			v |= uint64(s.b[s.i])
			s.i++
		}
	}
	return v
}

func (s *byteSource) IntN(n int) int       { return int(s.next() % uint64(n)) }
func (s *byteSource) Int64N(n int64) int64 { return int64(s.next() % uint64(n)) }

// checkAgainstModel applies ops operations chosen by rng to a table and
// to the reference model, and fails at the first disagreement.
func checkAgainstModel(t *testing.T, rng opSource, ops int) {
	t.Helper()
	tb, ref := New(), newModel()
	vnis := []uint32{1, 2, 3, 0xffffff}
	nets := []Network{
		{MaxEntries: 8, Ageing: 2 * time.Second},
		{MaxEntries: 30, Ageing: 5 * time.Second},
		{MaxEntries: 0, Ageing: time.Second},
		{MaxEntries: 4},
	}
	macs := []MAC{mcast, bcast, zeroMA}
	for i := range 40 {
		macs = append(macs, mac(i))
	}
	remotes := []netip.Addr{
		{}, addr("192.0.2.1"), addr("192.0.2.2"), addr("::ffff:192.0.2.2"), addr("2001:db8::1"),
	}
	for _, v := range vnis[:3] {
		n := nets[rng.IntN(len(nets))]
		tb.SetNetwork(v, n)
		ref.setNetwork(v, n)
	}
	// Small enough that the cap is reached, and entries must go to make
	// room again.
	ref.maxControl = 12
	tb.SetLimits(Limits{MaxControl: ref.maxControl})

	now := int64(0)
	for i := range ops {
		now += rng.Int64N(int64(300 * time.Millisecond))
		vni := vnis[rng.IntN(len(vnis))]
		m := macs[rng.IntN(len(macs))]
		remote := remotes[rng.IntN(len(remotes))]

		var desc string
		var got, want any
		switch p := rng.IntN(1000); {
		case p < 450:
			desc = fmt.Sprintf("Learn(%d, %v, %v, %d)", vni, m, remote, now)
			got, want = tb.Learn(vni, m, remote, now), ref.learn(vni, m, remote, now)
		case p < 500:
			desc = fmt.Sprintf("AddStatic(%d, %v, %v)", vni, m, remote)
			got, want = tb.AddStatic(vni, m, remote), ref.addStatic(vni, m, remote)
		case p < 560:
			desc = fmt.Sprintf("AddControl(%d, %v, %v)", vni, m, remote)
			c, err := tb.AddControl(vni, m, remote)
			rc, rerr := ref.addControl(vni, m, remote)
			got, want = controlResult{c, err}, controlResult{rc, rerr}
		case p < 600:
			// Mostly the remote the entry has, so that some withdrawals
			// find their route.
			if e := ref.entries[key{vni, m}]; e != nil && rng.IntN(4) != 0 {
				remote = e.remote
			}
			desc = fmt.Sprintf("DeleteControl(%d, %v, %v)", vni, m, remote)
			got, want = tb.DeleteControl(vni, m, remote), ref.deleteControl(vni, m, remote)
		case p < 680:
			desc = fmt.Sprintf("Delete(%d, %v)", vni, m)
			got, want = tb.Delete(vni, m), ref.delete(vni, m)
		case p < 760:
			desc = fmt.Sprintf("Expire(%d)", now)
			got, want = tb.Expire(now), ref.expire(now)
		case p < 990:
			desc = fmt.Sprintf("Lookup(%d, %v)", vni, m)
			a, ok := tb.Lookup(vni, m)
			b, ok2 := ref.lookup(vni, m)
			got, want = fmt.Sprint(a, ok), fmt.Sprint(b, ok2)
		case p < 995:
			desc = fmt.Sprintf("RemoveNetwork(%d)", vni)
			tb.RemoveNetwork(vni)
			ref.removeNetwork(vni)
		default:
			n := nets[rng.IntN(len(nets))]
			desc = fmt.Sprintf("SetNetwork(%d, %+v)", vni, n)
			tb.SetNetwork(vni, n)
			ref.setNetwork(vni, n)
		}
		if diff := gocmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("op %d: %s (-model +table):\n%s", i, desc, diff)
		}
		if i%100 == 0 || i == ops-1 {
			if diff := gocmp.Diff(ref.list(now), tb.Entries(now), cmpOpts...); diff != "" {
				t.Fatalf("after op %d (%s): Entries (-model +table):\n%s", i, desc, diff)
			}
			for _, v := range vnis {
				s, ok := tb.Stats(v)
				var gotS, wantS *Stats
				if ok {
					gotS = &s
				}
				if mn := ref.nets[v]; mn != nil {
					wantS = &mn.stats
				}
				if diff := gocmp.Diff(wantS, gotS); diff != "" {
					t.Fatalf("after op %d (%s): Stats(%d) (-model +table):\n%s", i, desc, v, diff)
				}
			}
			if diff := gocmp.Diff(ref.global, tb.GlobalStats()); diff != "" {
				t.Fatalf("after op %d (%s): GlobalStats (-model +table):\n%s", i, desc, diff)
			}
			checkInvariants(t, tb)
		}
	}
}
