package main

// The rate search's sender and receiver: hidden subcommands of the harness
// binary, which re-executes itself inside the container namespaces, as the
// small-frame generator and counter (pktgen_linux.go) are.
//
// Design notes. Both are what an application does, not a generator: the
// sender writes to connected UDP sockets with sendmmsg, a socket and a
// thread per flow (source ports sport, sport+1, ...), so that the flows
// reach the path through the whole socket layer as an application's do
// and each data path spreads them as it spreads real ones; the receiver is
// one UDP socket read with recvmmsg by one thread. The sender paces
// itself (pacer) and runs for one trial; the receiver stays up for a
// whole data path and counts each trial apart by the tag at the front of
// every payload. It reports its counts when sent SIGUSR1, so the harness
// asks for them after a trial's last datagrams had time to arrive, with
// no clock shared between the two.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/internal/harness"
)

const (
	// rateBatch is the most datagrams the sender hands to one sendmmsg.
	rateBatch = 64
	// rateTick is about how often a paced sender thread wakes up.
	rateTick = 200 * time.Microsecond
	// maxTrials bounds the trial numbers the receiver counts.
	maxTrials = 1 << 12
	// snmpPath holds the namespace's UDP counters.
	snmpPath = "/proc/net/snmp"
)

// udpGenResult is the sender's report, one JSON line on stdout.
type udpGenResult struct {
	Sent       uint64   `json:"sent"`        // datagrams sendmmsg accepted, all flows
	Seconds    float64  `json:"seconds"`     // from the common start to the last flow's end
	SendErrors uint64   `json:"send_errors"` // calls that failed transiently
	Skipped    uint64   `json:"skipped"`     // datagrams the pacers gave up on
	FlowSent   []uint64 `json:"flow_sent"`
}

// udpSinkReport is the receiver's report, one JSON line on stdout per
// SIGUSR1.
type udpSinkReport struct {
	Seq      int               `json:"seq"`      // 1 for the first report, and so on
	Counts   map[uint32]uint64 `json:"counts"`   // datagrams received per trial
	Untagged uint64            `json:"untagged"` // datagrams without a tag
	// RcvbufErrors is Udp RcvbufErrors of the namespace; -1 if unreadable.
	RcvbufErrors int64 `json:"rcvbuf_errors"`
}

// runUDPGen is the sender: `_udpgen -src A -dst A:P -rate PPS -duration D
// -trial N [-flows N] [-sport P] [-payload B]`. Every flow starts at the
// same instant and sends rate/flows datagrams a second (as fast as it can
// with -rate 0) for the duration.
func runUDPGen(args []string) error {
	fs := flag.NewFlagSet(cmdUDPGen, flag.ContinueOnError)
	src := fs.String("src", "", "source IPv4 address")
	dst := fs.String("dst", "", "destination IPv4:port")
	sport := fs.Int("sport", 10000, "UDP source port of the first flow")
	flows := fs.Int("flows", 1, "flows: sockets and threads, on consecutive source ports")
	rate := fs.Float64("rate", 0, "datagrams per second, all flows together; 0: as fast as possible")
	duration := fs.Duration("duration", time.Second, "how long to send")
	trialN := fs.Uint("trial", 0, "trial number, tagged into every payload")
	payload := fs.Int("payload", 64, "UDP payload bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	from, err := netip.ParseAddr(*src)
	if err != nil || !from.Is4() {
		return fmt.Errorf("-src %q: want an IPv4 address", *src)
	}
	to, err := netip.ParseAddrPort(*dst)
	if err != nil || !to.Addr().Is4() {
		return fmt.Errorf("-dst %q: want IPv4:port", *dst)
	}
	switch {
	case *flows < 1 || *sport < 1 || *sport+*flows-1 > 65535:
		return fmt.Errorf("-flows %d from -sport %d do not fit in the port range", *flows, *sport)
	case *payload < tagLen || *payload > 1400:
		return fmt.Errorf("-payload %d out of range %d..1400", *payload, tagLen)
	case *trialN >= maxTrials || *rate < 0 || *duration <= 0:
		return fmt.Errorf("need -trial below %d, -rate >= 0, -duration > 0", maxTrials)
	}

	buf := make([]byte, *payload)
	for i := range buf {
		buf[i] = byte(i)
	}
	putTag(buf, uint32(*trialN))
	fds := make([]int, *flows)
	for i := range fds {
		if fds[i], err = dialUDP(from, *sport+i, to); err != nil {
			return err
		}
		defer unix.Close(fds[i])
	}

	// A thread per flow, each on a P of its own when it returns from a
	// syscall.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), *flows+1))
	start := time.Now().Add(20 * time.Millisecond)
	res := udpGenResult{FlowSent: make([]uint64, *flows)}
	ends := make([]time.Time, *flows)
	errs := make([]error, *flows)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, fd := range fds {
		wg.Go(func() {
			r, end, err := sendFlow(fd, buf, newPacer(*rate/float64(*flows), rateBatch, rateTick), start, *duration)
			mu.Lock()
			defer mu.Unlock()
			res.FlowSent[i], ends[i], errs[i] = r.Sent, end, err
			res.Sent += r.Sent
			res.SendErrors += r.SendErrors
			res.Skipped += r.Skipped
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, end := range ends {
		res.Seconds = max(res.Seconds, end.Sub(start).Seconds())
	}
	if res.Sent == 0 {
		return fmt.Errorf("sent nothing (%d failed calls)", res.SendErrors)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// dialUDP opens a blocking UDP socket bound to from:port and connected to
// to, as a client application's.
func dialUDP(from netip.Addr, port int, to netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: from.As4(), Port: port}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// sendFlow is one flow's thread: from start until d later it sends buf on
// fd as the pacer says, and returns its counts and when it stopped.
func sendFlow(fd int, buf []byte, p *pacer, start time.Time, d time.Duration) (udpGenResult, time.Time, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A sleep ends when asked rather than up to 50 µs later.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	bufs := make([][]byte, rateBatch)
	for i := range bufs {
		bufs[i] = buf
	}
	msgs := newMmsgs(bufs)
	var r udpGenResult
	sleep(time.Until(start))
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			return r, start.Add(elapsed), nil
		}
		n, wait := p.next(elapsed, r.Sent)
		if n == 0 {
			sleep(min(wait, d-elapsed))
			continue
		}
		sent, err := mmsg(unix.SYS_SENDMMSG, fd, msgs[:n], 0)
		switch {
		case err == nil:
			r.Sent += uint64(sent)
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR),
			errors.Is(err, unix.ECONNREFUSED): // an ICMP error from before the receiver was up
			r.SendErrors++
		default:
			return r, time.Now(), os.NewSyscallError("sendmmsg", err)
		}
		r.Skipped = p.skipped
	}
}

// sleep blocks the calling thread for d with nanosleep, which keeps to
// the timer's precision where the Go runtime's timers may not.
func sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil) // EINTR: the caller's loop asks again
}

// runUDPSink is the receiver: `_udpsink -listen ADDR:PORT`. It prints
// harness.ReadyLine once bound, then counts datagrams by their trial tag
// until SIGTERM, printing a udpSinkReport on every SIGUSR1.
func runUDPSink(args []string) error {
	fs := flag.NewFlagSet(cmdUDPSink, flag.ContinueOnError)
	listen := fs.String("listen", "", "UDP address to receive on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fd, err := listenSink(*listen)
	if err != nil {
		return err
	}
	defer unix.Close(fd)

	var counts [maxTrials]atomic.Uint64
	var untagged atomic.Uint64
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	go func() {
		enc := json.NewEncoder(os.Stdout)
		for seq := 1; ; seq++ {
			if <-sigs == syscall.SIGTERM {
				os.Exit(0)
			}
			rep := udpSinkReport{Seq: seq, Counts: map[uint32]uint64{}, Untagged: untagged.Load(), RcvbufErrors: -1}
			for i := range counts {
				if n := counts[i].Load(); n > 0 {
					rep.Counts[uint32(i)] = n
				}
			}
			if b, err := os.ReadFile(snmpPath); err == nil {
				if v, err := parseUDPRcvbufErrors(b); err == nil {
					rep.RcvbufErrors = int64(v)
				}
			}
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintf(os.Stderr, "%s: report: %v\n", cmdUDPSink, err)
				os.Exit(1)
			}
		}
	}()

	bufs := make([][]byte, mmsgBatch)
	for i := range bufs {
		bufs[i] = make([]byte, sinkBufSize)
	}
	msgs := newMmsgs(bufs)
	fmt.Println(harness.ReadyLine)
	for {
		n, err := mmsg(unix.SYS_RECVMMSG, fd, msgs, unix.MSG_WAITFORONE)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		default:
			return os.NewSyscallError("recvmmsg", err)
		}
		// Count runs of one trial locally: one atomic add a run, not a datagram.
		var run uint64
		cur := uint32(maxTrials)
		for i := range n {
			id, ok := tagOf(bufs[i][:min(int(msgs[i].n), len(bufs[i]))])
			if !ok || id >= maxTrials {
				untagged.Add(1)
				continue
			}
			if id != cur {
				if run > 0 {
					counts[cur].Add(run)
				}
				cur, run = id, 0
			}
			run++
		}
		if run > 0 {
			counts[cur].Add(run)
		}
	}
}
