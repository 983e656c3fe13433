package neigh_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vtepd/vtepd/ether"
	"github.com/vtepd/vtepd/neigh"
)

// parseErrors are all the errors Parse may return.
var parseErrors = []error{
	neigh.ErrNotNeigh, neigh.ErrTruncated, neigh.ErrBadARP, neigh.ErrBadND, neigh.ErrBadOption, neigh.ErrChecksum,
}

// fuzzMAC turns a fuzzer's number into a unicast, non-zero MAC.
func fuzzMAC(seed uint64) [ether.AddrLen]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	m := [ether.AddrLen]byte(b[2:])
	m[0] = m[0]&^0x01 | 0x02 // unicast, locally administered: never zero
	return m
}

// FuzzParse: whatever the frame, Parse does not panic or change it,
// refuses it with ErrNotNeigh if Candidate does, and either refuses it with one of its errors and a zero Packet, or accepts
// it and then:
//   - the frame parses the same again, cut at Packet.End, and with more
//     bytes after it (Ethernet padding);
//   - Snoop agrees with Packet.Binding, and a binding is a unicast MAC;
//   - Reply answers exactly the requests, within MaxReplyLen, writing
//     nothing past its length, and what it writes parses back as the
//     answer: an ARP reply or an advertisement with the right addresses,
//     flags and tags.
//
// A frame refused only for its ICMPv6 checksum is checked a second time
// with the checksum made right, or the fuzzer would seldom get a mutated
// solicitation past it.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases(f) {
		f.Add(tc.frame, uint64(0x0242c613000b))
	}
	for _, tc := range requests(f) {
		f.Add(tc.frame, uint64(0x0242c613000a)) // the requester's own MAC: ErrOwnMAC
	}
	f.Add([]byte{}, uint64(0))
	f.Add(arpRequest(f, []tag{{0x88a8, 1}, {0x8100, 2}, {0x8100, 3}}), uint64(1))
	f.Add(mutateND(f, nsFrame(f, nil), false, func(ip []byte) []byte { ip[42] ^= 1; return ip }), uint64(2))
	f.Add(mutateND(f, nsFrame(f, nil), true, func(ip []byte) []byte {
		binary.BigEndian.PutUint16(ip[4:], 40)
		return append(ip, 14, 1, 0, 0, 0, 0, 0, 0)
	}), uint64(3))

	f.Fuzz(func(t *testing.T, frame []byte, seed uint64) {
		frame = frame[:len(frame):len(frame)] // a read past len must panic
		if _, err := neigh.Parse(frame); errors.Is(err, neigh.ErrChecksum) {
			// Random changes rarely keep a checksum right: check the
			// message with its checksum made right too, so that the
			// fuzzer reaches the replies to what it mutates.
			g := bytes.Clone(frame)
			off, _, _ := ether.L3(g)
			ip := g[off : off+40]
			msg := g[off+40 : off+40+int(binary.BigEndian.Uint16(ip[4:]))]
			msg[2], msg[3] = 0, 0
			binary.BigEndian.PutUint16(msg[2:], refChecksum(ip[8:24], ip[24:40], msg))
			checkParse(t, g, seed)
		}
		checkParse(t, frame, seed)
	})
}

// checkParse checks what FuzzParse says of one frame.
func checkParse(t *testing.T, frame []byte, seed uint64) {
	t.Helper()
	orig := bytes.Clone(frame)
	p, err := neigh.Parse(frame)
	if !bytes.Equal(frame, orig) {
		t.Fatal("Parse changed the frame")
	}
	if !neigh.Candidate(frame) && !errors.Is(err, neigh.ErrNotNeigh) {
		t.Fatalf("Candidate rejects a frame Parse answers %v", err)
	}
	if err != nil {
		known := false
		for _, e := range parseErrors {
			known = known || errors.Is(err, e)
		}
		if !known {
			t.Fatalf("Parse: unknown error %v", err)
		}
		if p != (neigh.Packet{}) {
			t.Fatalf("Parse returned %+v with %v", p, err)
		}
		if b, ok := neigh.Snoop(frame); ok {
			t.Fatalf("Snoop of a refused frame = %v", b)
		}
		return
	}
	if !p.Kind.IsARP() && !p.Kind.IsND() {
		t.Fatalf("Kind %d", p.Kind)
	}
	if p.L3 != ether.HeaderLen+p.Tags.Len()*ether.TagLen || p.End <= p.L3 || p.End > len(frame) {
		t.Fatalf("L3 %d, End %d, %d tags, frame of %d bytes", p.L3, p.End, p.Tags.Len(), len(frame))
	}

	// The same again, alone, and padded.
	cut := bytes.Clone(frame[:p.End])
	padded := append(bytes.Clone(frame[:p.End]), 0, 0xff, 0x01, 0x02)
	for name, g := range map[string][]byte{"again": frame, "cut at End": cut[:len(cut):len(cut)], "padded": padded} {
		if q, err := neigh.Parse(g); err != nil || q != p {
			t.Fatalf("%s: Parse = %+v, %v; first %+v", name, q, err, p)
		}
	}

	b, ok := p.Binding()
	if sb, sok := neigh.Snoop(frame); sb != b || sok != ok {
		t.Fatalf("Snoop = %v, %t; Binding %v, %t", sb, sok, b, ok)
	}
	if ok && (b.MAC[0]&0x01 != 0 || b.MAC == [ether.AddrLen]byte{} || !b.IP.IsValid() || b.IP.IsMulticast() || b.IP.IsUnspecified()) {
		t.Fatalf("Binding %v", b)
	}

	mac := fuzzMAC(seed)
	const guard = 16
	buf := bytes.Repeat([]byte{0xa5}, neigh.MaxReplyLen+guard)
	n, err := p.Reply(buf[:neigh.MaxReplyLen], mac)
	if !bytes.Equal(buf[neigh.MaxReplyLen:], bytes.Repeat([]byte{0xa5}, guard)) {
		t.Fatal("Reply wrote past MaxReplyLen")
	}
	to := p.Requester()
	request := p.Kind == neigh.ARPRequest || p.Kind == neigh.ARPProbe ||
		p.Kind == neigh.NeighborSolicitation || p.Kind == neigh.DADSolicitation
	switch {
	case !request:
		if !errors.Is(err, neigh.ErrNotRequest) {
			t.Fatalf("Reply to a %v: %v, want ErrNotRequest", p.Kind, err)
		}
		return
	case to[0]&0x01 != 0 || to == [ether.AddrLen]byte{}:
		if !errors.Is(err, neigh.ErrBadMAC) {
			t.Fatalf("Reply to %x: %v, want ErrBadMAC", to, err)
		}
		return
	case to == mac:
		if !errors.Is(err, neigh.ErrOwnMAC) {
			t.Fatalf("Reply with the requester's MAC: %v, want ErrOwnMAC", err)
		}
		return
	case err != nil:
		t.Fatalf("Reply to a %v: %v", p.Kind, err)
	}
	if n > neigh.MaxReplyLen || n < neigh.MinFrameLen || !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xa5}, len(buf)-n)) {
		t.Fatalf("Reply length %d, or it wrote past it", n)
	}

	r, err := neigh.Parse(buf[:n:n])
	if err != nil {
		t.Fatalf("Parse(Reply) = %v; reply % x", err, buf[:n])
	}
	if r.EthDst != to || r.EthSrc != mac || r.Tags != p.Tags || r.L3 != p.L3 {
		t.Fatalf("reply Ethernet %x -> %x, %d tags; want %x -> %x, %d tags", r.EthSrc, r.EthDst, r.Tags.Len(), mac, to, p.Tags.Len())
	}
	if p.Kind.IsARP() {
		if r.Kind != neigh.ARPReply || r.SrcMAC != mac || r.SrcIP != p.TargetIP || r.TargetMAC != to || r.TargetIP != p.SrcIP || n != neigh.MinFrameLen {
			t.Fatalf("reply to %+v parses as %+v", p, r)
		}
		return
	}
	wantDst, wantFlags := p.SrcIP, neigh.FlagSolicited|neigh.FlagOverride
	if p.Kind == neigh.DADSolicitation {
		wantDst, wantFlags = allNodes, neigh.FlagOverride
	}
	if r.Kind != neigh.NeighborAdvertisement || r.TargetIP != p.TargetIP || !r.HasTargetMAC || r.TargetMAC != mac ||
		r.SrcIP != p.TargetIP || r.DstIP != wantDst || r.Flags != wantFlags || r.TrafficClass != p.TrafficClass&0xf0 {
		t.Fatalf("reply to %+v parses as %+v", p, r)
	}
}
