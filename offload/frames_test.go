package offload

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vtepd/vtepd/ether"
)

// tcpSpec describes one TCP frame for the tests to build with gopacket.
type tcpSpec struct {
	ipv6    bool
	vlan    bool // one 802.1Q tag
	src     byte // last byte of the source MAC and IP address: a flow
	sport   uint16
	seq     uint32
	ack     uint32
	flags   uint8 // tcpFIN... as on the wire
	id      uint16
	tos     uint8
	window  uint16
	tsval   uint32 // with timestamp options when not zero
	payload []byte
}

// flow returns a spec for a bulk segment of the default flow.
func flow(seq uint32, payload []byte) tcpSpec {
	return tcpSpec{src: 1, sport: 40000, seq: seq, ack: 77, flags: tcpACK, id: 100, window: 502, tsval: 1000, payload: payload}
}

// buildTCP serializes s with every length and checksum right.
func buildTCP(t testing.TB, s tcpSpec) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, s.src},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 0xee},
		EthernetType: layers.EthernetTypeIPv4,
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.sport), DstPort: 5201,
		Seq: s.seq, Ack: s.ack, Window: s.window,
		FIN: s.flags&tcpFIN != 0, SYN: s.flags&tcpSYN != 0, RST: s.flags&tcpRST != 0,
		PSH: s.flags&tcpPSH != 0, ACK: s.flags&tcpACK != 0, URG: s.flags&tcpURG != 0,
		ECE: s.flags&tcpECE != 0, CWR: s.flags&tcpCWR != 0,
	}
	if s.tsval != 0 {
		ts := make([]byte, 8)
		binary.BigEndian.PutUint32(ts, s.tsval)
		binary.BigEndian.PutUint32(ts[4:], 4242)
		tcp.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
		}
	}
	var net3 gopacket.SerializableLayer
	if s.ipv6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{
			Version: 6, TrafficClass: s.tos, FlowLabel: 0x12345, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::ee"),
		}
		ip.SrcIP[15] = s.src
		tcp.SetNetworkLayerForChecksum(ip)
		net3 = ip
	} else {
		ip := &layers.IPv4{
			Version: 4, TOS: s.tos, Id: s.id, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IPv4(198, 19, 0, s.src).To4(), DstIP: net.IPv4(198, 19, 0, 0xee).To4(),
		}
		tcp.SetNetworkLayerForChecksum(ip)
		net3 = ip
	}
	ls := []gopacket.SerializableLayer{eth}
	if s.vlan {
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 42, Type: eth.EthernetType})
		eth.EthernetType = layers.EthernetTypeDot1Q
	}
	ls = append(ls, net3, tcp, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// partial turns the TCP checksum of a frame built by buildTCP into the
// pseudo-header sum only, as the kernel leaves it with CHECKSUM_PARTIAL,
// and returns the TCP header offset.
func partial(t testing.TB, f []byte) int {
	t.Helper()
	l3, _, _ := ether.L3(f)
	ipv6 := f[l3]>>4 == 6
	l4 := l3 + int(f[l3]&0x0f)*4
	if ipv6 {
		l4 = l3 + ipv6HeaderLen
	}
	binary.BigEndian.PutUint16(f[l4+TCPChecksumOffset:], Fold(tcpSum(f[l3:l4], ipv6, len(f)-l4)))
	return l4
}

// payload returns n bytes counting from start.
func payload(start, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i*7)
	}
	return b
}

// decode parses an Ethernet frame with gopacket and fails on any error.
func decode(t testing.TB, f []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	return p
}

// checksumsGood recomputes the IPv4 header and TCP checksums of f.
func checksumsGood(f []byte) bool {
	l3, et, ok := ether.L3(f)
	if !ok {
		return false
	}
	if et == ether.TypeIPv4 && Checksum(f[l3:l3+int(f[l3]&0x0f)*4], 0) != 0 {
		return false
	}
	return CheckL4(f).State == L4Good
}

// udpFrame builds an IPv4 UDP frame with its checksum computed.
func udpFrame(t testing.TB, pl []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(198, 19, 0, 1).To4(), DstIP: net.IPv4(198, 19, 0, 2).To4()}
	udp := &layers.UDP{SrcPort: 1234, DstPort: 9000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(pl))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
