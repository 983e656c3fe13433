package encap_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vtepd/vtepd/encap"
)

// The source port range the tests map hashes into: the IANA dynamic range,
// which is what vtepd uses by default.
const (
	portLo = 49152
	portHi = 65535
)

var (
	testDstMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	testSrcMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
)

// Offsets into the frames the builders below make (untagged).
const (
	offIP       = encap.EthernetHeaderLen
	offIPv4Prot = offIP + 9
	offIPv4Src  = offIP + 12
	offIPv4Dst  = offIP + 16
	offL4v4     = offIP + encap.IPv4HeaderLen
	offIPv6Next = offIP + 6
	offIPv6Src  = offIP + 8
	offIPv6Dst  = offIP + 24
	offL4v6     = offIP + encap.IPv6HeaderLen
	tcpLen      = 20
)

// ethernet returns an Ethernet header with the test MACs and etherType.
func ethernet(etherType uint16) []byte {
	b := make([]byte, 0, 128)
	b = append(b, testDstMAC[:]...)
	b = append(b, testSrcMAC[:]...)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// ipv4Frame returns an Ethernet/IPv4 frame carrying a 20-byte transport
// header that starts with the two ports; options are appended to the IPv4
// header (their length must be a multiple of 4).
func ipv4Frame(proto uint8, src, dst [4]byte, sport, dport uint16, options ...byte) []byte {
	b := ethernet(0x0800)
	ihl := (encap.IPv4HeaderLen + len(options)) / 4
	total := ihl*4 + tcpLen
	b = append(b, 0x40|byte(ihl), 0, byte(total>>8), byte(total), 0x12, 0x34, 0x40, 0, 64, proto, 0, 0)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	b = append(b, options...)
	return appendL4(b, sport, dport)
}

// ipv6Frame returns an Ethernet/IPv6 frame whose next header is next,
// followed by ext (already-built extension headers) and a 20-byte transport
// header starting with the two ports.
func ipv6Frame(next uint8, src, dst [16]byte, sport, dport uint16, ext ...byte) []byte {
	b := ethernet(0x86dd)
	payload := len(ext) + tcpLen
	b = append(b, 0x60, 0x01, 0x23, 0x45, byte(payload>>8), byte(payload), next, 64)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	b = append(b, ext...)
	return appendL4(b, sport, dport)
}

// appendL4 appends a TCP-like header: ports, then recognisable filler.
func appendL4(b []byte, sport, dport uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	for i := 4; i < tcpLen; i++ {
		b = append(b, byte(0xe0+i))
	}
	return b
}

// tagged inserts VLAN tags with the given TPIDs (outermost first) after the
// MACs; the VLAN IDs are 100, 101, ...
func tagged(frame []byte, tpids ...uint16) []byte {
	b := append([]byte(nil), frame[:12]...)
	for i, tpid := range tpids {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(100+i))
	}
	return append(b, frame[12:]...)
}

var (
	ip4A = [4]byte{192, 0, 2, 1}
	ip4B = [4]byte{198, 51, 100, 7}
	ip6A = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	ip6B = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 15: 2}
)

func tcp4() []byte { return ipv4Frame(6, ip4A, ip4B, 40001, 443) }
func tcp6() []byte { return ipv6Frame(6, ip6A, ip6B, 40001, 443) }

// ipv4Fragment returns tcp4 with the IPv4 flags/fragment-offset word set.
func ipv4Fragment(flagsOffset uint16) []byte {
	b := tcp4()
	binary.BigEndian.PutUint16(b[offIP+6:], flagsOffset)
	return b
}

// ipv6FragmentHeader returns an IPv6 fragment header for TCP at the given
// offset (in 8-byte units), with the M flag set.
func ipv6FragmentHeader(offset uint16) []byte {
	return []byte{6, 0, byte(offset >> 5), byte(offset<<3) | 1, 0xde, 0xad, 0xbe, 0xef}
}

// hopByHop is an 8-byte hop-by-hop options header (PadN) followed by TCP.
var hopByHop = []byte{6, 0, 1, 4, 0, 0, 0, 0}

func TestFlowHashStable(t *testing.T) {
	// Pinned values: the hash decides which underlay path a flow takes, so a
	// change of algorithm must be deliberate. The TCPv4 value was also
	// computed by an independent Python model of the algorithm in the design
	// notes. Update these only with a note in the change description.
	tests := []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"golden ARP", inner(goldenARP), 0xe2e3e35d},
		{"golden ICMP", inner(goldenICMP), 0x74ededa2},
		{"TCPv4", tcp4(), 0x94091de4},
		{"TCPv6", tcp6(), 0x576b0a37},
		{"short", []byte{1, 2, 3, 4, 5, 6, 7}, 0x36572a51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encap.FlowHash(tt.frame)
			if again := encap.FlowHash(append([]byte(nil), tt.frame...)); again != got {
				t.Errorf("FlowHash not deterministic: %#08x then %#08x", got, again)
			}
			if got != tt.want {
				t.Errorf("FlowHash = %#08x, want %#08x", got, tt.want)
			}
		})
	}
}

// TestFlowHashFields changes one byte of a frame and checks whether the
// hash, and the source port it maps to, change with it.
func TestFlowHashFields(t *testing.T) {
	tcp4Opt := ipv4Frame(6, ip4A, ip4B, 40001, 443, 0x01, 0x01, 0x01, 0x00) // IHL 6: NOP, NOP, NOP, EOL
	tcp6HBH := ipv6Frame(0, ip6A, ip6B, 40001, 443, hopByHop...)
	tcp6Frag0 := ipv6Frame(44, ip6A, ip6B, 40001, 443, ipv6FragmentHeader(0)...)
	tcp6Frag1 := ipv6Frame(44, ip6A, ip6B, 40001, 443, ipv6FragmentHeader(185)...)
	const vlan, qinq, legacy = 0x8100, 0x88a8, 0x9100

	tests := []struct {
		name    string
		frame   []byte
		off     int
		changes bool
	}{
		// Hashed fields.
		{"dst MAC", tcp4(), 5, true},
		{"src MAC", tcp4(), 11, true},
		{"src MAC first byte", tcp4(), 6, true},
		{"EtherType of unknown protocol", ethernet(0x88b5), 13, true},
		{"IPv4 protocol", tcp4(), offIPv4Prot, true},
		{"IPv4 src", tcp4(), offIPv4Src + 3, true},
		{"IPv4 dst", tcp4(), offIPv4Dst, true},
		{"TCP src port", tcp4(), offL4v4 + 1, true},
		{"TCP src port high byte", tcp4(), offL4v4, true},
		{"TCP dst port", tcp4(), offL4v4 + 3, true},
		{"UDP src port", ipv4Frame(17, ip4A, ip4B, 5353, 53), offL4v4 + 1, true},
		{"SCTP dst port", ipv4Frame(132, ip4A, ip4B, 3868, 3868), offL4v4 + 3, true},
		{"IPv4 first fragment port", ipv4Fragment(0x2000), offL4v4 + 1, true},
		{"port behind IPv4 options", tcp4Opt, offL4v4 + 4 + 1, true},
		{"port under 802.1Q", tagged(tcp4(), vlan), offL4v4 + 4 + 1, true},
		{"port under QinQ", tagged(tcp4(), qinq, vlan), offL4v4 + 8 + 3, true},
		{"IPv4 src under QinQ", tagged(tcp4(), qinq, vlan), offIPv4Src + 8, true},
		{"port under legacy QinQ", tagged(tcp4(), legacy, vlan), offL4v4 + 8 + 1, true},
		{"IPv6 dst under legacy QinQ", tagged(tcp6(), legacy), offIPv6Dst + 4 + 2, true},
		{"IPv6 src", tcp6(), offIPv6Src + 15, true},
		{"IPv6 src first byte", tcp6(), offIPv6Src, true},
		{"IPv6 dst", tcp6(), offIPv6Dst + 7, true},
		{"IPv6 next header", tcp6(), offIPv6Next, true},
		{"TCPv6 src port", tcp6(), offL4v6 + 1, true},
		{"TCPv6 dst port", tcp6(), offL4v6 + 3, true},
		{"port behind hop-by-hop", tcp6HBH, offL4v6 + 8 + 1, true},
		{"port behind IPv6 first fragment", tcp6Frag0, offL4v6 + 8 + 1, true},

		// Fields deliberately left out.
		{"IPv4 TOS", tcp4(), offIP + 1, false},
		{"IPv4 total length", tcp4(), offIP + 3, false},
		{"IPv4 ID", tcp4(), offIP + 5, false},
		{"IPv4 TTL", tcp4(), offIP + 8, false},
		{"IPv4 checksum", tcp4(), offIP + 11, false},
		{"TCP sequence number", tcp4(), offL4v4 + 7, false},
		{"IPv4 option", tcp4Opt, offL4v4 + 1, false},
		{"IPv4 non-first fragment port", ipv4Fragment(0x0001), offL4v4 + 1, false},
		{"IPv4 non-first last fragment port", ipv4Fragment(0x00b9), offL4v4 + 3, false},
		{"ICMP identifier", ipv4Frame(1, ip4A, ip4B, 0x0800, 0x1234), offL4v4 + 5, false},
		{"GRE bytes", ipv4Frame(47, ip4A, ip4B, 0, 0x6558), offL4v4 + 3, false},
		{"VLAN ID", tagged(tcp4(), vlan), 15, false},
		{"outer VLAN ID", tagged(tcp4(), qinq, vlan), 15, false},
		{"legacy QinQ VLAN ID", tagged(tcp4(), legacy, vlan), 15, false},
		{"inner VLAN ID under legacy QinQ", tagged(tcp4(), legacy, vlan), 19, false},
		{"IPv6 flow label", tcp6(), offIP + 3, false},
		{"IPv6 payload length", tcp6(), offIP + 5, false},
		{"IPv6 hop limit", tcp6(), offIP + 7, false},
		{"port behind IPv6 non-first fragment", tcp6Frag1, offL4v6 + 8 + 1, false},
		{"IPv6 fragment identification", tcp6Frag0, offL4v6 + 7, false},
		{"ARP payload", inner(goldenARP), 14 + 27, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := encap.FlowHash(tt.frame)
			mutated := append([]byte(nil), tt.frame...)
			mutated[tt.off] ^= 0x01
			after := encap.FlowHash(mutated)
			if changed := after != before; changed != tt.changes {
				t.Errorf("flipping a bit at offset %d: hash %#08x -> %#08x, want changed=%t", tt.off, before, after, tt.changes)
			}
			if !tt.changes {
				return
			}
			if p1, p2 := encap.SourcePort(before, portLo, portHi), encap.SourcePort(after, portLo, portHi); p1 == p2 {
				t.Errorf("flipping a bit at offset %d leaves the source port at %d", tt.off, p1)
			}
		})
	}
}

// TestFlowHashVLANTransparent checks that VLAN tags are skipped, not hashed:
// the same IP flow hashes the same tagged or not.
func TestFlowHashVLANTransparent(t *testing.T) {
	for _, base := range [][]byte{tcp4(), tcp6()} {
		want := encap.FlowHash(base)
		for _, tpids := range [][]uint16{{0x8100}, {0x88a8}, {0x9100}, {0x88a8, 0x8100}, {0x8100, 0x8100}, {0x9100, 0x8100}, {0x9100, 0x9100}} {
			if got := encap.FlowHash(tagged(base, tpids...)); got != want {
				t.Errorf("tags %#04x: hash %#08x, untagged %#08x", tpids, got, want)
			}
		}
		// A third tag is not skipped: the frame hashes as a tagged one.
		for _, tpids := range [][]uint16{{0x88a8, 0x8100, 0x8100}, {0x9100, 0x8100, 0x8100}, {0x9100, 0x9100, 0x9100}} {
			if got := encap.FlowHash(tagged(base, tpids...)); got == want {
				t.Errorf("tags %#04x hash like the untagged frame (%#08x)", tpids, got)
			}
		}
	}
}

// TestFlowHashTruncated hashes every prefix of frames of each shape, with
// no spare capacity so that a read past the end would panic. A field is
// hashed only when the frame holds all of it, so every prefix that holds the
// last hashed byte hashes like the whole frame, and the prefix one byte
// shorter does not.
func TestFlowHashTruncated(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		// complete is the length of the shortest prefix that holds
		// every hashed field.
		complete int
	}{
		{"TCPv4", tcp4(), offL4v4 + 4},
		{"TCPv4 options", ipv4Frame(6, ip4A, ip4B, 1, 2, 0x44, 0x08, 0x05, 0x00, 0, 0, 0, 0), offL4v4 + 8 + 4},
		{"IHL 15", func() []byte { b := tcp4(); b[offIP] = 0x4f; return b }(), offIPv4Dst + 4},
		{"IHL 0", func() []byte { b := tcp4(); b[offIP] = 0x40; return b }(), offIPv4Dst + 4},
		{"IPv4 version 6", func() []byte { b := tcp4(); b[offIP] = 0x65; return b }(), offIP},
		{"IPv4 non-first fragment", ipv4Fragment(0x0010), offIPv4Dst + 4},
		{"ICMPv4", inner(goldenICMP), offIPv4Dst + 4},
		{"QinQ TCPv4", tagged(tcp4(), 0x88a8, 0x8100), offL4v4 + 8 + 4},
		{"TCPv6", tcp6(), offL4v6 + 4},
		{"TCPv6 hop-by-hop", ipv6Frame(0, ip6A, ip6B, 1, 2, hopByHop...), offL4v6 + 8 + 4},
		{"TCPv6 first fragment", ipv6Frame(44, ip6A, ip6B, 1, 2, ipv6FragmentHeader(0)...), offL4v6 + 8 + 4},
		{"TCPv6 non-first fragment", ipv6Frame(44, ip6A, ip6B, 1, 2, ipv6FragmentHeader(9)...), offL4v6 + 8},
		{"IPv6 huge extension header", ipv6Frame(60, ip6A, ip6B, 1, 2, 6, 255, 0, 0, 0, 0, 0, 0), offL4v6 + 8},
		{"ARP", inner(goldenARP), encap.EthernetHeaderLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := encap.FlowHash(tt.frame)
			for n := 0; n <= len(tt.frame); n++ {
				h := encap.FlowHash(tt.frame[:n:n])
				if n >= tt.complete && h != full {
					t.Errorf("prefix of %d bytes hashes %#08x, whole frame %#08x", n, h, full)
				}
				if n == tt.complete-1 && h == full {
					t.Errorf("prefix of %d bytes, one short of the hashed fields, hashes like the whole frame", n)
				}
			}
		})
	}
}

// flowSpread maps flows into [portLo, portHi] and returns the number of
// distinct ports used and a chi-square statistic of the ports over 16
// equal buckets.
func flowSpread(hashes []uint32) (distinct int, chi2 float64) {
	var used [portHi - portLo + 1]bool
	var buckets [16]int
	for _, h := range hashes {
		p := int(encap.SourcePort(h, portLo, portHi)) - portLo
		if !used[p] {
			used[p] = true
			distinct++
		}
		buckets[p*len(buckets)/len(used)]++
	}
	return distinct, chiSquare(buckets[:], len(hashes))
}

// chiSquare is Pearson's statistic for counts against a uniform spread.
func chiSquare(counts []int, total int) float64 {
	expected := float64(total) / float64(len(counts))
	var chi2 float64
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
	}
	return chi2
}

// Spread bounds for 10,000 flows into 16,384 ports. A uniform hash fills
// 16384*(1-e^(-10000/16384)) ≈ 7,488 ports on average, standard deviation
// about 33, so 7,300 is more than five deviations of slack (8,000 would be
// beyond what a perfect hash can do). Over 16 buckets the statistic has 15
// degrees of freedom: mean 15, and above 50 with probability about 1e-5.
const (
	spreadFlows       = 10000
	spreadMinDistinct = 7300
	spreadMaxChi2     = 50
)

func checkSpread(t *testing.T, name string, hashes []uint32) {
	t.Helper()
	distinct, chi2 := flowSpread(hashes)
	t.Logf("%s: %d flows -> %d distinct ports, chi-square %.1f over 16 buckets", name, len(hashes), distinct, chi2)
	if distinct < spreadMinDistinct {
		t.Errorf("%s: %d flows use only %d distinct ports, want at least %d", name, len(hashes), distinct, spreadMinDistinct)
	}
	if chi2 > spreadMaxChi2 {
		t.Errorf("%s: chi-square %.1f over 16 buckets, want at most %d", name, chi2, spreadMaxChi2)
	}

	// The low bits must be as good as the high bits SourcePort uses: the
	// engine or the kernel may reduce the hash in other ways.
	var low [16]int
	for _, h := range hashes {
		low[h&15]++
	}
	if chi2 := chiSquare(low[:], len(hashes)); chi2 > spreadMaxChi2 {
		t.Errorf("%s: chi-square of the low 4 bits %.1f, want at most %d", name, chi2, spreadMaxChi2)
	}
}

func TestFlowHashSpread(t *testing.T) {
	// Random TCP/IPv4 flows.
	rng := rand.New(rand.NewPCG(7, 4789))
	seen := make(map[[12]byte]bool, spreadFlows)
	var random []uint32
	for len(random) < spreadFlows {
		var key [12]byte
		binary.BigEndian.PutUint64(key[:], rng.Uint64())
		binary.BigEndian.PutUint32(key[8:], rng.Uint32())
		if seen[key] {
			continue
		}
		seen[key] = true
		src, dst := [4]byte(key[0:4]), [4]byte(key[4:8])
		sport, dport := binary.BigEndian.Uint16(key[8:]), binary.BigEndian.Uint16(key[10:])
		random = append(random, encap.FlowHash(ipv4Frame(6, src, dst, sport, dport)))
	}
	checkSpread(t, "random TCP/IPv4 flows", random)

	// The common hard case: many connections between two hosts that
	// differ only in consecutive ephemeral source ports.
	var sequential []uint32
	for i := range spreadFlows {
		sequential = append(sequential, encap.FlowHash(ipv4Frame(6, ip4A, ip4B, uint16(32768+i), 443)))
	}
	checkSpread(t, "sequential source ports", sequential)

	// The same over IPv6, varying the low bits of the source address.
	var hosts []uint32
	for i := range spreadFlows {
		src := ip6A
		binary.BigEndian.PutUint32(src[12:], uint32(i))
		hosts = append(hosts, encap.FlowHash(ipv6Frame(17, src, ip6B, 4789, 4789)))
	}
	checkSpread(t, "sequential IPv6 hosts", hosts)
}

// TestFlowHashTagSpread checks that flows behind VLAN tags of every TPID
// package ether knows, the legacy 0x9100 among them, spread over source
// ports as the same flows do untagged: each flow keeps the port it has
// untagged, since the tags are skipped, not hashed. (Before package ether,
// the flow hash did not know 0x9100 and every 0x9100-tagged frame hashed as
// the same non-IP frame: one source port for all of them.)
func TestFlowHashTagSpread(t *testing.T) {
	// Many TCP and UDP flows between two hosts, differing in their
	// ports, over IPv4 and IPv6.
	var flows [][]byte
	for i := range spreadFlows {
		proto := uint8(6)
		if i%2 == 1 {
			proto = 17
		}
		sport, dport := uint16(32768+i/2), uint16(443+i%7)
		if i%3 == 0 {
			flows = append(flows, ipv6Frame(proto, ip6A, ip6B, sport, dport))
		} else {
			flows = append(flows, ipv4Frame(proto, ip4A, ip4B, sport, dport))
		}
	}
	untagged := make([]uint32, len(flows))
	for i, f := range flows {
		untagged[i] = encap.FlowHash(f)
	}
	checkSpread(t, "untagged", untagged)

	for _, tpids := range [][]uint16{{0x8100}, {0x88a8, 0x8100}, {0x9100}, {0x9100, 0x8100}, {0x9100, 0x9100}} {
		hashes := make([]uint32, len(flows))
		moved := 0
		for i, f := range flows {
			hashes[i] = encap.FlowHash(tagged(f, tpids...))
			if encap.SourcePort(hashes[i], portLo, portHi) != encap.SourcePort(untagged[i], portLo, portHi) {
				moved++
			}
		}
		if moved != 0 {
			t.Errorf("tags %#04x: %d of %d flows get another source port than untagged", tpids, moved, len(flows))
		}
		distinctTagged, _ := flowSpread(hashes)
		distinctUntagged, _ := flowSpread(untagged)
		if distinctTagged != distinctUntagged {
			t.Errorf("tags %#04x: %d flows use %d distinct source ports, %d untagged", tpids, len(flows), distinctTagged, distinctUntagged)
		}
		checkSpread(t, fmt.Sprintf("tags %#04x", tpids), hashes)
	}
}

// TestSpreadBoundsRejectBadHashes shows the spread bounds have teeth: a
// constant hash and a hash that ignores the high bits of its input both fail.
func TestSpreadBoundsRejectBadHashes(t *testing.T) {
	constant := make([]uint32, spreadFlows)
	for i := range constant {
		constant[i] = 0x12345678
	}
	if d, chi2 := flowSpread(constant); d >= spreadMinDistinct || chi2 <= spreadMaxChi2 {
		t.Errorf("constant hash passes: %d distinct, chi-square %.1f", d, chi2)
	}

	// The raw source port as the hash: sequential ports all land in the
	// bottom of the range.
	identity := make([]uint32, spreadFlows)
	for i := range identity {
		identity[i] = uint32(32768 + i)
	}
	if d, chi2 := flowSpread(identity); d >= spreadMinDistinct || chi2 <= spreadMaxChi2 {
		t.Errorf("identity hash passes: %d distinct, chi-square %.1f", d, chi2)
	}
}

func TestSourcePort(t *testing.T) {
	tests := []struct {
		name   string
		hash   uint32
		lo, hi uint16
		want   uint16
	}{
		{"lo == hi, hash 0", 0, 4789, 4789, 4789},
		{"lo == hi, hash max", math.MaxUint32, 4789, 4789, 4789},
		{"lo == hi == 0", 0xdeadbeef, 0, 0, 0},
		{"lo == hi == 65535", 0xdeadbeef, 65535, 65535, 65535},
		{"full range, hash 0", 0, 0, 65535, 0},
		{"full range, hash max", math.MaxUint32, 0, 65535, 65535},
		{"full range, middle", 1 << 31, 0, 65535, 32768},
		{"full range is the top 16 bits", 0xabcd1234, 0, 65535, 0xabcd},
		{"dynamic range, hash 0", 0, portLo, portHi, portLo},
		{"dynamic range, hash max", math.MaxUint32, portLo, portHi, portHi},
		{"dynamic range, middle", 1 << 31, portLo, portHi, portLo + 8192},
		{"two ports, low half", 1<<31 - 1, 1000, 1001, 1000},
		{"two ports, high half", 1 << 31, 1000, 1001, 1001},
		{"reversed range gives lo", 0xdeadbeef, 2000, 1000, 2000},
	}
	for _, tt := range tests {
		if got := encap.SourcePort(tt.hash, tt.lo, tt.hi); got != tt.want {
			t.Errorf("%s: SourcePort(%#08x, %d, %d) = %d, want %d", tt.name, tt.hash, tt.lo, tt.hi, got, tt.want)
		}
	}
}

func FuzzFlowHash(f *testing.F) {
	for _, g := range goldens {
		f.Add(inner(g.packet))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Add(tcp4())
	f.Add(ipv4Fragment(0x2000))
	f.Add(ipv4Frame(17, ip4A, ip4B, 1, 2, 0x01, 0x01, 0x01, 0x00))
	f.Add(tagged(tcp4(), 0x88a8, 0x8100))
	f.Add(tagged(tcp4(), 0x9100, 0x8100))
	f.Add(tagged(tcp6(), 0x9100, 0x8100, 0x8100))
	f.Add(tcp6())
	f.Add(ipv6Frame(0, ip6A, ip6B, 1, 2, hopByHop...))
	f.Add(ipv6Frame(44, ip6A, ip6B, 1, 2, ipv6FragmentHeader(3)...))

	f.Fuzz(func(t *testing.T, frame []byte) {
		frame = frame[:len(frame):len(frame)] // a read past len must panic
		h := encap.FlowHash(frame)
		if again := encap.FlowHash(frame); again != h {
			t.Fatalf("FlowHash(% x) = %#08x then %#08x", frame, h, again)
		}
		// Only the contents count, not where they sit in memory.
		shifted := make([]byte, len(frame)+3)
		copy(shifted[3:], frame)
		if moved := encap.FlowHash(shifted[3:]); moved != h {
			t.Fatalf("FlowHash(% x) = %#08x at one address, %#08x at another", frame, h, moved)
		}
	})
}

func FuzzSourcePort(f *testing.F) {
	f.Add(uint32(0), uint16(portLo), uint16(portHi))
	f.Add(uint32(math.MaxUint32), uint16(0), uint16(65535))
	f.Add(uint32(0xdeadbeef), uint16(4789), uint16(4789))
	f.Fuzz(func(t *testing.T, hash uint32, lo, hi uint16) {
		if lo > hi {
			lo, hi = hi, lo
		}
		p := encap.SourcePort(hash, lo, hi)
		if p < lo || p > hi {
			t.Fatalf("SourcePort(%#08x, %d, %d) = %d, out of range", hash, lo, hi, p)
		}
		// Monotonic in the hash, so the range is covered in order.
		if hash < math.MaxUint32 {
			if next := encap.SourcePort(hash+1, lo, hi); next < p {
				t.Fatalf("SourcePort(%#08x) = %d but SourcePort(%#08x) = %d", hash, p, hash+1, next)
			}
		}
	})
}
