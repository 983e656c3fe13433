package neigh_test

import (
	"testing"

	"github.com/vtepd/vtepd/neigh"
)

// Sinks keep the compiler from discarding results.
var (
	sinkPacket  neigh.Packet
	sinkKind    neigh.Kind
	sinkBinding neigh.Binding
	sinkBool    bool
	sinkInt     int
	sinkErr     error
)

// hotFrames are the frames of the benchmarks and of the allocation test.
func hotFrames(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"ARP request":        arpRequest(t, nil),
		"ARP request 802.1Q": arpRequest(t, dot1q),
		"NS":                 nsFrame(t, nil),
		"NS 802.1ad+802.1Q":  nsFrame(t, qinq),
		"NA":                 buildND(t, advert(nil)),
		"DAD":                buildND(t, dad(nil)),
		"NS bad checksum":    mutateND(t, nsFrame(t, nil), false, func(ip []byte) []byte { ip[42] ^= 1; return ip }),
		"IPv4":               append(append(append([]byte{}, macB[:]...), macA[:]...), 0x08, 0x00, 0x45, 0, 0, 20),
		"IPv6 TCP":           mutateND(t, nsFrame(t, nil), false, func(ip []byte) []byte { ip[6] = 6; return ip }),
	}
}

// TestZeroAllocs: the TX pipeline calls Parse, Snoop and Reply for frames
// of a batch; none of them may allocate, on success or on error.
func TestZeroAllocs(t *testing.T) {
	buf := make([]byte, neigh.MaxReplyLen)
	for name, f := range hotFrames(t) {
		p, _ := neigh.Parse(f)
		for what, fn := range map[string]func(){
			"Candidate":  func() { sinkBool = neigh.Candidate(f) },
			"Parse":      func() { sinkPacket, sinkErr = neigh.Parse(f) },
			"Snoop":      func() { sinkBinding, sinkBool = neigh.Snoop(f) },
			"Binding":    func() { sinkBinding, sinkBool = p.Binding() },
			"Answerable": func() { sinkBool = p.Answerable() },
			"Reply":      func() { sinkInt, sinkErr = p.Reply(buf, macB) },
			"Reply, own": func() { sinkInt, sinkErr = p.Reply(buf, macA) },
		} {
			// AllocsPerRun rounds down: any allocation in 1000 runs
			// shows.
			if a := testing.AllocsPerRun(1000, fn); a != 0 {
				t.Errorf("%s of %s: %.3f allocations, want 0", what, name, a)
			}
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for name, f := range hotFrames(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(f)))
			for b.Loop() {
				// Into a local, as the pipeline does: a global of a
				// type with pointers would cost write barriers.
				p, err := neigh.Parse(f)
				sinkKind, sinkErr = p.Kind, err
			}
		})
	}
}

func BenchmarkCandidate(b *testing.B) {
	for name, f := range hotFrames(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = neigh.Candidate(f)
			}
		})
	}
}

func BenchmarkSnoop(b *testing.B) {
	for _, name := range []string{"ARP request", "NS", "NA", "IPv4"} {
		f := hotFrames(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBinding, sinkBool = neigh.Snoop(f)
			}
		})
	}
}

// BenchmarkReply measures Reply alone, and Parse then Reply: what
// answering a request costs the pipeline once its table lookup is done.
func BenchmarkReply(b *testing.B) {
	buf := make([]byte, neigh.MaxReplyLen)
	for _, name := range []string{"ARP request", "ARP request 802.1Q", "NS", "NS 802.1ad+802.1Q", "DAD"} {
		f := hotFrames(b)[name]
		p, err := neigh.Parse(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkInt, sinkErr = p.Reply(buf, macB)
			}
		})
		b.Run(name+"/parse+reply", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				q, _ := neigh.Parse(f)
				sinkInt, sinkErr = q.Reply(buf, macB)
			}
		})
	}
}
