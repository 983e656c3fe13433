package main

// The small-frame generator and counter: hidden subcommands of the harness
// binary, which re-executes itself inside the container namespaces.
//
// Design notes. iperf3 makes one syscall per datagram and tops out far
// below what a 64-byte path can carry, so the generator writes prebuilt
// Ethernet frames to an AF_PACKET socket on the container's eth0
// (harness.PacketSender), a batch per sendmmsg. The socket is opened with protocol 0, so it is never hooked
// into the receive path, and with PACKET_QDISC_BYPASS, so frames go straight
// to the veth. What it reports as "offered" is what eth0 accepted; veth
// may still drop some of that on the way into the host's backlog.
//
// The counter is a plain UDP socket read with recvmmsg: it sees what the
// remote container's stack delivers, the figure a user of the overlay
// would get. Beside it, it reports eth0's rx_packets over the same window,
// so a counter that cannot keep up shows as a gap between the two.
//
// Both measure over a window that starts after a warm-up (bridges and
// FDBs learned, queues filled, CPU frequency settled) and read the clock
// once per batch; see window.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/internal/harness"
)

const (
	// mmsgBatch is the number of frames per sendmmsg/recvmmsg.
	mmsgBatch = 256
	// sinkBufSize is the receive buffer per datagram: the payload is
	// small, and a longer datagram would still count (truncated).
	sinkBufSize = 256
	// socketBuffer is asked of SO_{SND,RCV}BUFFORCE.
	socketBuffer = 8 << 20
	// sinkPoll bounds each blocking recvmmsg (SO_RCVTIMEO), so the counter
	// checks its clock even when nothing arrives.
	sinkPoll = 100 * time.Millisecond
)

// genResult is the generator's report, one JSON line on stdout.
type genResult struct {
	Sent          uint64  `json:"sent"`           // frames eth0 accepted, whole run
	Failed        uint64  `json:"failed"`         // sendmmsg calls that failed transiently (ENOBUFS)
	WindowSent    uint64  `json:"window_sent"`    // frames accepted within the window
	WindowSeconds float64 `json:"window_seconds"` // its actual length
}

// sinkResult is the counter's report, one JSON line on stdout.
type sinkResult struct {
	Received       uint64  `json:"received"`        // datagrams, whole run
	WindowReceived uint64  `json:"window_received"` // datagrams within the window
	WindowSeconds  float64 `json:"window_seconds"`
	IfRxPackets    int64   `json:"if_rx_packets"` // eth0 rx_packets within the window; -1 if unreadable
}

// mmsghdr is struct mmsghdr. Go pads the struct to the alignment of
// Msghdr, which gives the C layout on 32- and 64-bit platforms alike.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// newMmsgs points one mmsghdr with one iovec at each buffer.
func newMmsgs(bufs [][]byte) []mmsghdr {
	iovs := make([]unix.Iovec, len(bufs))
	msgs := make([]mmsghdr, len(bufs))
	for i, b := range bufs {
		iovs[i].Base = &b[0]
		iovs[i].SetLen(len(b))
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.SetIovlen(1)
	}
	return msgs
}

// mmsg calls sendmmsg or recvmmsg (trap) on a blocking descriptor.
func mmsg(trap uintptr, fd int, msgs []mmsghdr, flags int) (int, error) {
	n, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// setRecvBuffer asks for size with SO_RCVBUFFORCE, falling back to
// SO_RCVBUF, capped by net.core.rmem_max.
func setRecvBuffer(fd, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
}

// runPktgen is the generator: `_pktgen -src-mac M -dst-mac M -src A -dst A
// [...]`. It sends for warmup+duration+tail and measures over the middle.
func runPktgen(args []string) error {
	fs := flag.NewFlagSet(cmdPktgen, flag.ContinueOnError)
	dev := fs.String("dev", "eth0", "interface to send on")
	srcMAC := fs.String("src-mac", "", "source MAC (the interface's)")
	dstMAC := fs.String("dst-mac", "", "destination MAC (the remote container's)")
	src := fs.String("src", "", "source IPv4 address")
	dst := fs.String("dst", "", "destination IPv4 address")
	sport := fs.Int("sport", 10000, "UDP source port of the first flow")
	dport := fs.Int("dport", 9000, "UDP destination port")
	flows := fs.Int("flows", 64, "number of flows (consecutive source ports)")
	payload := fs.Int("payload", 64, "UDP payload bytes")
	warmup := fs.Duration("warmup", time.Second, "sending before the window")
	duration := fs.Duration("duration", 5*time.Second, "measurement window")
	tailTime := fs.Duration("tail", 500*time.Millisecond, "sending after the window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec := flowSpec{Flows: *flows, Payload: *payload}
	var err error
	if spec.SrcMAC, err = net.ParseMAC(*srcMAC); err != nil {
		return fmt.Errorf("-src-mac: %w", err)
	}
	if spec.DstMAC, err = net.ParseMAC(*dstMAC); err != nil {
		return fmt.Errorf("-dst-mac: %w", err)
	}
	if spec.Src, err = netip.ParseAddr(*src); err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	if spec.Dst, err = netip.ParseAddr(*dst); err != nil {
		return fmt.Errorf("-dst: %w", err)
	}
	if *sport < 1 || *sport > 65535 || *dport < 1 || *dport > 65535 {
		return fmt.Errorf("ports out of range: -sport %d -dport %d", *sport, *dport)
	}
	spec.SrcPort, spec.DstPort = uint16(*sport), uint16(*dport)
	frames, err := buildFrames(spec)
	if err != nil {
		return err
	}

	ps, err := harness.OpenPacketSender(*dev)
	if err != nil {
		return err
	}
	defer ps.Close()
	if err := ps.BypassQdisc(); err != nil {
		return err
	}
	ps.SetSendBuffer(socketBuffer)

	// One batch cycles through the flows; the same bytes go out every time.
	batch := make([][]byte, mmsgBatch)
	for i := range batch {
		batch[i] = frames[i%len(frames)]
	}
	msgs := newMmsgs(batch)

	var r genResult
	start := time.Now()
	w := window{from: start.Add(*warmup), to: start.Add(*warmup + *duration)}
	end := w.to.Add(*tailTime)
	for {
		n, err := mmsg(unix.SYS_SENDMMSG, ps.Fd(), msgs, 0)
		switch {
		case err == nil:
			r.Sent += uint64(n)
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			r.Failed++
		default:
			return os.NewSyscallError("sendmmsg", err)
		}
		now := time.Now()
		w.observe(now, r.Sent)
		if now.After(end) {
			break
		}
	}
	r.WindowSent, r.WindowSeconds = w.count(), w.seconds()
	if r.WindowSent == 0 {
		return fmt.Errorf("sent nothing within the window (%d sent in all, %d failed calls)", r.Sent, r.Failed)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// runPktsink is the counter: `_pktsink -listen ADDR:PORT [...]`. It prints
// harness.ReadyLine once bound, opens its window warmup after the first datagram,
// and fails if none arrives within -first-timeout.
func runPktsink(args []string) error {
	fs := flag.NewFlagSet(cmdPktsink, flag.ContinueOnError)
	listen := fs.String("listen", "", "UDP address to count datagrams on")
	dev := fs.String("dev", "eth0", "interface whose rx_packets to read beside")
	warmup := fs.Duration("warmup", time.Second, "time from the first datagram to the window")
	duration := fs.Duration("duration", 5*time.Second, "measurement window")
	firstTimeout := fs.Duration("first-timeout", 5*time.Second, "fail if no datagram arrives within this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fd, err := listenSink(*listen)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	bufs := make([][]byte, mmsgBatch)
	for i := range bufs {
		bufs[i] = make([]byte, sinkBufSize)
	}
	msgs := newMmsgs(bufs)
	rxPath := "/sys/class/net/" + *dev + "/statistics/rx_packets"
	fmt.Println(harness.ReadyLine)

	var (
		r       sinkResult
		w       window
		started bool
		rx0     int64
	)
	r.IfRxPackets = -1
	firstDeadline := time.Now().Add(*firstTimeout)
	for {
		n, err := mmsg(unix.SYS_RECVMMSG, fd, msgs, unix.MSG_WAITFORONE)
		switch {
		case err == nil:
			r.Received += uint64(n)
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return os.NewSyscallError("recvmmsg", err)
		}
		now := time.Now()
		if !started {
			if r.Received == 0 {
				if now.After(firstDeadline) {
					return fmt.Errorf("no datagram on %v within %v", *listen, *firstTimeout)
				}
				continue
			}
			started = true
			w = window{from: now.Add(*warmup), to: now.Add(*warmup + *duration)}
		}
		state, changed := w.observe(now, r.Received)
		if !changed {
			continue
		}
		rx, rxErr := readCounter(rxPath)
		if state == windowOpen {
			rx0 = rx
			if rxErr != nil {
				rx0 = -1
			}
			continue
		}
		if rxErr == nil && rx0 >= 0 {
			r.IfRxPackets = rx - rx0
		}
		break
	}
	r.WindowReceived, r.WindowSeconds = w.count(), w.seconds()
	// Stay bound until the generator's tail has passed (a quiet poll), so
	// that its last frames do not bounce as ICMP port unreachables.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err := mmsg(unix.SYS_RECVMMSG, fd, msgs, unix.MSG_WAITFORONE); err != nil {
			break
		}
	}
	if r.WindowReceived == 0 {
		return fmt.Errorf("no datagram within the window (%d before it)", r.Received)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// readCounter reads one decimal counter from sysfs.
func readCounter(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// listenSink opens the receivers' UDP socket, bound to listen (IPv4:port),
// with a large receive buffer and reads that time out every sinkPoll, so
// that a receiver sees the time pass and its signals while nothing comes.
func listenSink(listen string) (int, error) {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("-listen %q: want IPv4:port", listen)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	setRecvBuffer(fd, socketBuffer)
	tv := unix.NsecToTimeval(sinkPoll.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}
