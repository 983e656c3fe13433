package encap_test

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/encap"
)

// Golden packets: complete UDP datagrams as vtepd hands them to its raw
// socket (the kernel adds the outer IP header). Both carry VNI 200 to port
// 4789 and were checked against gopacket's decoder (TestGoldenGopacket).

// goldenARP carries a broadcast ARP request, "who has 10.0.0.2? tell
// 10.0.0.1", from 02:00:00:00:00:01, unpadded (42 bytes) as a TAP delivers
// locally generated frames.
//
//	0000  c0 de 12 b5 00 3a 00 00  08 00 00 00 00 00 c8 00  UDP | VXLAN
//	0010  ff ff ff ff ff ff 02 00  00 00 00 01 08 06 00 01  Ethernet | ARP
//	0020  08 00 06 04 00 01 02 00  00 00 00 01 0a 00 00 01  ARP
//	0030  00 00 00 00 00 00 0a 00  00 02                    ARP
var goldenARP = []byte{
	// UDP: source port 49374, destination port 4789, length 58, checksum 0.
	0xc0, 0xde, 0x12, 0xb5, 0x00, 0x3a, 0x00, 0x00,
	// VXLAN: flags I, reserved, VNI 200, reserved.
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x00,
	// Ethernet: to ff:ff:ff:ff:ff:ff, from 02:00:00:00:00:01, type ARP.
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x06,
	// ARP: Ethernet/IPv4, request.
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
	// Sender 02:00:00:00:00:01 10.0.0.1.
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01,
	// Target 00:00:00:00:00:00 10.0.0.2.
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
}

// goldenICMP carries an ICMP echo request from 10.0.0.1
// (02:00:00:00:00:01) to 10.0.0.2 (02:00:00:00:00:02), id 1, sequence 1,
// payload "vtepd golden ping!"; both checksums are valid.
//
//	0000  d0 0d 12 b5 00 4c 00 00  08 00 00 00 00 00 c8 00  UDP | VXLAN
//	0010  02 00 00 00 00 02 02 00  00 00 00 01 08 00 45 00  Ethernet | IPv4
//	0020  00 2e 1c 46 40 00 40 01  0a 87 0a 00 00 01 0a 00  IPv4
//	0030  00 02 08 00 8d b6 00 01  00 01 76 74 65 70 64 20  IPv4 | ICMP | data
//	0040  67 6f 6c 64 65 6e 20 70  69 6e 67 21              data
var goldenICMP = []byte{
	// UDP: source port 53261, destination port 4789, length 76, checksum 0.
	0xd0, 0x0d, 0x12, 0xb5, 0x00, 0x4c, 0x00, 0x00,
	// VXLAN: flags I, reserved, VNI 200, reserved.
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x00,
	// Ethernet: to 02:00:00:00:00:02, from 02:00:00:00:00:01, type IPv4.
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00,
	// IPv4: IHL 5, length 46, id 0x1c46, DF, TTL 64, ICMP, checksum 0x0a87,
	// 10.0.0.1 -> 10.0.0.2.
	0x45, 0x00, 0x00, 0x2e, 0x1c, 0x46, 0x40, 0x00,
	0x40, 0x01, 0x0a, 0x87, 0x0a, 0x00, 0x00, 0x01,
	0x0a, 0x00, 0x00, 0x02,
	// ICMP: echo request, checksum 0x8db6, id 1, sequence 1.
	0x08, 0x00, 0x8d, 0xb6, 0x00, 0x01, 0x00, 0x01,
	// "vtepd golden ping!"
	0x76, 0x74, 0x65, 0x70, 0x64, 0x20, 0x67, 0x6f,
	0x6c, 0x64, 0x65, 0x6e, 0x20, 0x70, 0x69, 0x6e,
	0x67, 0x21,
}

const goldenVNI = 200

var goldens = []struct {
	name    string
	packet  []byte
	srcPort uint16
}{
	{"ARP", goldenARP, 0xc0de},
	{"ICMP", goldenICMP, 0xd00d},
}

// inner returns the inner Ethernet frame of a golden packet.
func inner(packet []byte) []byte { return packet[encap.Headroom:] }

// encapFresh copies frame into a new buffer behind encap.Headroom bytes of
// garbage (so stale bytes would show) and encapsulates it.
func encapFresh(frame []byte, vni uint32, src, dst uint16) []byte {
	b := make([]byte, encap.Headroom+len(frame)+32)
	for i := range b {
		b[i] = 0xa5
	}
	copy(b[encap.Headroom:], frame)
	return encap.Encap(b, vni, src, dst, len(frame))
}

func TestEncapGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			got := encapFresh(inner(g.packet), goldenVNI, g.srcPort, encap.Port)
			if diff := cmp.Diff(g.packet, got); diff != "" {
				t.Errorf("Encap mismatch (-want +got):\n%s", diff)
			}

			vni, in, err := encap.Decap(got[encap.UDPHeaderLen:])
			if err != nil {
				t.Fatalf("Decap: %v", err)
			}
			if vni != goldenVNI {
				t.Errorf("Decap VNI = %d, want %d", vni, goldenVNI)
			}
			if diff := cmp.Diff(inner(g.packet), in); diff != "" {
				t.Errorf("Decap inner frame mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenGopacket decodes the golden packets with gopacket, an
// independent VXLAN codec, so that a mistake made both in our encoder and in
// the golden bytes would still show.
func TestGoldenGopacket(t *testing.T) {
	mac1 := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	mac2 := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ip1 := net.IP{10, 0, 0, 1}
	ip2 := net.IP{10, 0, 0, 2}

	tests := []struct {
		name      string
		packet    []byte
		srcPort   uint16
		dstMAC    net.HardwareAddr
		etherType layers.EthernetType
		// check inspects the inner network layer.
		check func(t *testing.T, p gopacket.Packet)
	}{
		{
			name: "ARP", packet: goldenARP, srcPort: 0xc0de,
			dstMAC: broadcast, etherType: layers.EthernetTypeARP,
			check: func(t *testing.T, p gopacket.Packet) {
				arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
				if !ok {
					t.Fatalf("no ARP layer in %v", p)
				}
				if arp.Operation != layers.ARPRequest {
					t.Errorf("ARP operation = %d, want request", arp.Operation)
				}
				if got := net.IP(arp.SourceProtAddress); !got.Equal(ip1) {
					t.Errorf("ARP sender IP = %v, want %v", got, ip1)
				}
				if got := net.IP(arp.DstProtAddress); !got.Equal(ip2) {
					t.Errorf("ARP target IP = %v, want %v", got, ip2)
				}
			},
		},
		{
			name: "ICMP", packet: goldenICMP, srcPort: 0xd00d,
			dstMAC: mac2, etherType: layers.EthernetTypeIPv4,
			check: func(t *testing.T, p gopacket.Packet) {
				ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if !ok {
					t.Fatalf("no IPv4 layer in %v", p)
				}
				if !ip.SrcIP.Equal(ip1) || !ip.DstIP.Equal(ip2) {
					t.Errorf("IPv4 %v -> %v, want %v -> %v", ip.SrcIP, ip.DstIP, ip1, ip2)
				}
				if sum := internetChecksum(ip.Contents); sum != 0 {
					t.Errorf("IPv4 header checksum does not verify (folds to %#04x)", sum)
				}
				icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if !ok {
					t.Fatalf("no ICMPv4 layer in %v", p)
				}
				if icmp.TypeCode.Type() != layers.ICMPv4TypeEchoRequest || icmp.Id != 1 || icmp.Seq != 1 {
					t.Errorf("ICMP = %v id %d seq %d, want echo request id 1 seq 1", icmp.TypeCode, icmp.Id, icmp.Seq)
				}
				if sum := internetChecksum(ip.Payload); sum != 0 {
					t.Errorf("ICMP checksum does not verify (folds to %#04x)", sum)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gopacket.NewPacket(tt.packet, layers.LayerTypeUDP, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("gopacket decode error: %v", el.Error())
			}

			udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if !ok {
				t.Fatalf("no UDP layer in %v", p)
			}
			if udp.SrcPort != layers.UDPPort(tt.srcPort) || udp.DstPort != encap.Port {
				t.Errorf("UDP ports %d -> %d, want %d -> %d", udp.SrcPort, udp.DstPort, tt.srcPort, encap.Port)
			}
			if int(udp.Length) != len(tt.packet) || udp.Checksum != 0 {
				t.Errorf("UDP length %d checksum %#04x, want %d and 0", udp.Length, udp.Checksum, len(tt.packet))
			}

			vx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
			if !ok {
				t.Fatalf("no VXLAN layer in %v", p)
			}
			if !vx.ValidIDFlag || vx.VNI != goldenVNI {
				t.Errorf("VXLAN ValidIDFlag %t VNI %d, want true and %d", vx.ValidIDFlag, vx.VNI, goldenVNI)
			}
			if vx.GBPExtension || vx.GBPDontLearn || vx.GBPApplied || vx.GBPGroupPolicyID != 0 {
				t.Errorf("VXLAN reserved bits set: %+v", vx)
			}

			eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !ok {
				t.Fatalf("no inner Ethernet layer in %v", p)
			}
			if eth.SrcMAC.String() != mac1.String() || eth.DstMAC.String() != tt.dstMAC.String() {
				t.Errorf("inner Ethernet %v -> %v, want %v -> %v", eth.SrcMAC, eth.DstMAC, mac1, tt.dstMAC)
			}
			if eth.EthernetType != tt.etherType {
				t.Errorf("inner EtherType = %v, want %v", eth.EthernetType, tt.etherType)
			}
			tt.check(t, p)
		})
	}
}

// TestEncapMatchesGopacketSerialize builds the same outer headers with
// gopacket's serializer and compares them with ours.
func TestEncapMatchesGopacketSerialize(t *testing.T) {
	for _, g := range goldens {
		for _, vni := range []uint32{0, 1, goldenVNI, 0x123456, encap.MaxVNI} {
			buf := gopacket.NewSerializeBuffer()
			err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
				&layers.UDP{SrcPort: layers.UDPPort(g.srcPort), DstPort: encap.Port},
				&layers.VXLAN{ValidIDFlag: true, VNI: vni},
				gopacket.Payload(inner(g.packet)),
			)
			if err != nil {
				t.Fatalf("gopacket serialize: %v", err)
			}
			got := encapFresh(inner(g.packet), vni, g.srcPort, encap.Port)
			if diff := cmp.Diff(buf.Bytes(), got); diff != "" {
				t.Errorf("%s VNI %d: Encap differs from gopacket (-gopacket +Encap):\n%s", g.name, vni, diff)
			}
		}
	}
}

// TestRoundTripGopacket builds inner frames with gopacket, encapsulates,
// decapsulates and decodes them again.
func TestRoundTripGopacket(t *testing.T) {
	srcMAC := net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}
	dstMAC := net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x03}
	tests := []struct {
		name   string
		layers []gopacket.SerializableLayer
		// want lists the layers gopacket should decode from the datagram.
		want []gopacket.LayerType
	}{
		{
			name: "UDPv4",
			layers: func() []gopacket.SerializableLayer {
				ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
					SrcIP: net.IP{172, 17, 0, 2}, DstIP: net.IP{172, 17, 0, 3}}
				udp := &layers.UDP{SrcPort: 40000, DstPort: 7000}
				_ = udp.SetNetworkLayerForChecksum(ip)
				return []gopacket.SerializableLayer{
					&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
					ip, udp, gopacket.Payload("inner payload"),
				}
			}(),
			want: []gopacket.LayerType{layers.LayerTypeUDP, layers.LayerTypeVXLAN,
				layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeUDP, gopacket.LayerTypePayload},
		},
		{
			name: "TCPv6-VLAN",
			layers: func() []gopacket.SerializableLayer {
				ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
					SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
				tcp := &layers.TCP{SrcPort: 51000, DstPort: 443, Seq: 1, SYN: true, Window: 65535}
				_ = tcp.SetNetworkLayerForChecksum(ip)
				return []gopacket.SerializableLayer{
					&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeDot1Q},
					&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv6},
					ip, tcp,
				}
			}(),
			want: []gopacket.LayerType{layers.LayerTypeUDP, layers.LayerTypeVXLAN,
				layers.LayerTypeEthernet, layers.LayerTypeDot1Q, layers.LayerTypeIPv6, layers.LayerTypeTCP},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := gopacket.NewSerializeBuffer()
			opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
			if err := gopacket.SerializeLayers(sb, opts, tt.layers...); err != nil {
				t.Fatalf("serialize inner frame: %v", err)
			}
			frame := sb.Bytes()

			const vni = 4242
			srcPort := encap.SourcePort(encap.FlowHash(frame), 49152, 65535)
			datagram := encapFresh(frame, vni, srcPort, encap.Port)
			if got, want := encap.UDP(datagram).Length(), len(frame)+encap.Headroom; int(got) != want {
				t.Errorf("UDP length = %d, want %d", got, want)
			}

			gotVNI, gotFrame, err := encap.Decap(datagram[encap.UDPHeaderLen:])
			if err != nil {
				t.Fatalf("Decap: %v", err)
			}
			if gotVNI != vni {
				t.Errorf("VNI = %d, want %d", gotVNI, vni)
			}
			if diff := cmp.Diff(frame, gotFrame); diff != "" {
				t.Errorf("inner frame changed (-sent +received):\n%s", diff)
			}

			// The whole datagram decodes with gopacket down to the inner
			// transport layer.
			p := gopacket.NewPacket(datagram, layers.LayerTypeUDP, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("gopacket decode error: %v", el.Error())
			}
			if vx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN); !ok || vx.VNI != vni {
				t.Errorf("gopacket VXLAN layer = %v, want VNI %d", p.Layer(layers.LayerTypeVXLAN), vni)
			}
			var got []gopacket.LayerType
			for _, l := range p.Layers() {
				got = append(got, l.LayerType())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("gopacket layers (-want +got):\n%s", diff)
			}
		})
	}
}

// internetChecksum folds the RFC 1071 one's complement sum of b; a header
// that includes a correct checksum folds to zero.
func internetChecksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
