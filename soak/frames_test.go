package main

import (
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"testing"

	"github.com/vtepd/vtepd/encap"
)

func TestFlowRoundTrip(t *testing.T) {
	buf := make([]byte, flowMaxPayload)
	sizes := map[int]bool{}
	for seq := uint64(0); seq < 3*uint64(len(flowSizes)); seq++ {
		b := putFlow(buf, 2, seq)
		if len(b) != flowSize(seq) {
			t.Fatalf("seq %d: %d bytes, want %d", seq, len(b), flowSize(seq))
		}
		sizes[len(b)] = true
		from, got, ok := parseFlow(b)
		if !ok || from != 2 || got != seq {
			t.Errorf("parseFlow(putFlow(2, %d)) = %d, %d, %v", seq, from, got, ok)
		}
	}
	if len(sizes) != len(flowSizes) {
		t.Errorf("payload sizes used: %v, want all of %v", sizes, flowSizes)
	}
	if slices.Max(flowSizes[:]) > flowMaxPayload || slices.Min(flowSizes[:]) < flowHeaderLen {
		t.Errorf("flowSizes %v outside %d..%d", flowSizes, flowHeaderLen, flowMaxPayload)
	}

	good := putFlow(buf, 1, 7)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:flowHeaderLen-1]},
		{"truncated", good[:len(good)-1]},
		{"bad magic", append([]byte("XSOK"), good[4:]...)},
	} {
		if _, _, ok := parseFlow(tc.b); ok {
			t.Errorf("%s: parseFlow accepted it", tc.name)
		}
	}
}

func TestPlanEpoch(t *testing.T) {
	const hosts, perEpoch, moveEvery = 3, 50, 5
	for epoch := uint32(0); epoch < 6; epoch++ {
		appeared := map[string]int{} // MAC -> the process that sent it
		moved := map[string]int{}
		for i := range hosts {
			p := planEpoch(1, epoch, i, hosts, perEpoch, moveEvery)
			for _, m := range p.Appear {
				if _, dup := appeared[m.String()]; dup {
					t.Errorf("epoch %d: %v appears twice", epoch, m)
				}
				appeared[m.String()] = i
			}
			for _, m := range p.Move {
				if _, dup := moved[m.String()]; dup {
					t.Errorf("epoch %d: %v moves twice", epoch, m)
				}
				moved[m.String()] = i
			}
		}
		if len(appeared) != perEpoch {
			t.Errorf("epoch %d: %d MACs appeared, want %d", epoch, len(appeared), perEpoch)
		}
		for s := range perEpoch {
			if _, ok := appeared[churnMAC(1, epoch, s).String()]; !ok {
				t.Errorf("epoch %d: slot %d did not appear", epoch, s)
			}
		}
		if epoch == 0 {
			if len(moved) != 0 {
				t.Errorf("epoch 0: %d moves, want none", len(moved))
			}
			continue
		}
		if want := (perEpoch + moveEvery - 1) / moveEvery; len(moved) != want {
			t.Errorf("epoch %d: %d moves, want %d", epoch, len(moved), want)
		}
		// Each mover is a MAC of the epoch before, now behind another host.
		prev := map[string]int{}
		for i := range hosts {
			for _, m := range planEpoch(1, epoch-1, i, hosts, perEpoch, moveEvery).Appear {
				prev[m.String()] = i
			}
		}
		for m, to := range moved {
			from, ok := prev[m]
			if !ok {
				t.Errorf("epoch %d: %s moved but did not appear in epoch %d", epoch, m, epoch-1)
			} else if from == to {
				t.Errorf("epoch %d: %s 'moved' to the host it was behind", epoch, m)
			}
		}
	}
}

func TestMACClasses(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		a := attackerMAC(r)
		c := churnMAC(uint8(r.Uint32()), r.Uint32(), int(r.Uint32N(256)))
		for _, m := range []net.HardwareAddr{a, c} {
			if m[0]&1 != 0 || m[0]&2 == 0 {
				t.Errorf("%v is not a locally administered unicast MAC", m)
			}
		}
		if !isAttackerMAC(a) || isChurnMAC(a) || !isChurnMAC(c) || isAttackerMAC(c) {
			t.Errorf("classes of %v and %v mixed up", a, c)
		}
	}
}

// TestHostileKinds checks every hostile kind against vtepd's own parser:
// each must fail (or pass) encap.Decap the way that leads to the drop
// counter the soak expects it in (vtep's rxPipeline and countDecapError).
func TestHostileKinds(t *testing.T) {
	const vni = 200
	r := rand.New(rand.NewPCG(3, 4))
	dst := net.HardwareAddr{0x02, 0x42, 0xc6, 0x13, 0, 1}
	for _, k := range hostileKinds {
		t.Run(k.Reason, func(t *testing.T) {
			for range 2000 {
				src := attackerMAC(r)
				d := k.build(r, vni, src, dst)
				got, err := classify(d, vni)
				if got != k.Reason {
					t.Fatalf("% x: classified %q (%v), want %q", d, got, err, k.Reason)
				}
				if k.Reason == "source" {
					_, inner, _ := encap.Decap(d)
					if !isAttackerMAC(inner[6:12]) || net.HardwareAddr(inner[0:6]).String() != dst.String() {
						t.Fatalf("inner frame % x: want %v -> %v", inner[:12], src, dst)
					}
				}
			}
		})
	}
}

// classify mirrors vtepd's receive checks for a datagram from outside
// accept_from, for VTEPs that carry only vni.
func classify(d []byte, vni uint32) (string, error) {
	got, _, err := encap.Decap(d)
	switch {
	case errors.Is(err, encap.ErrTooShort):
		return "too_short", err
	case errors.Is(err, encap.ErrBadFlags):
		return "bad_flags", err
	case errors.Is(err, encap.ErrInnerTooShort):
		if encap.Header(d).VNI() == vni {
			return "inner_too_short", err
		}
		return "unknown_vni", err
	case err != nil:
		return "", err
	case got != vni:
		return "unknown_vni", nil
	}
	return "source", nil
}
