package main

// The workload's own processes: hidden subcommands of the soak binary,
// which re-executes itself inside the lab's namespaces.
//
//	_flow     in each container: sequence-numbered UDP to every other
//	          container at a fixed rate, and an exact count of what
//	          arrived from each
//	_churn    in each container: Ethernet frames from MACs that appear,
//	          move to another container and fall silent (see planEpoch)
//	_hostile  in the attacker's host: malformed and unauthorised VXLAN
//	          datagrams to every VTEP (see hostileKinds)
//
// Each waits for a shared start time (-start, Unix nanoseconds), runs for
// -duration, and prints one JSON line with what it did. A subcommand prints
// harness.ReadyLine once its sockets are open, so the harness knows that the start
// time will find everyone listening.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/internal/harness"
)

// Hidden subcommands.
const (
	cmdFlow    = "_flow"
	cmdChurn   = "_churn"
	cmdHostile = "_hostile"
)

const (
	// pace is how often the senders catch up with their schedule.
	pace = 5 * time.Millisecond
	// maxBacklog is how far behind its schedule a sender may fall before
	// it gives the rest up: a sender the machine did not run for a while
	// resumes at its rate rather than making up for the pause in one
	// burst, which would test the paths' response to bursts that only a
	// busy machine makes, and the kernel phase may never have seen.
	// Given-up datagrams are not sent and not counted as attempted.
	maxBacklog = 100 * time.Millisecond
	// flowSocketBuffer is asked of SO_RCVBUFFORCE for the flow sockets, so
	// that a receiver descheduled for a while loses nothing.
	flowSocketBuffer = 4 << 20
)

// subcommands are the hidden subcommands, for harness.RunHidden.
var subcommands = map[string]func([]string) error{
	cmdFlow:    runFlow,
	cmdChurn:   runChurn,
	cmdHostile: runHostile,
}

// schedule is the common timing of the workload processes.
type schedule struct {
	start    time.Time
	duration time.Duration
}

func (s *schedule) flags(fs *flag.FlagSet) *int64 {
	fs.DurationVar(&s.duration, "duration", 10*time.Second, "how long to send")
	return fs.Int64("start", 0, "when to start, Unix nanoseconds; 0: at once")
}

func (s *schedule) resolve(startNanos int64) {
	s.start = time.Now()
	if startNanos != 0 {
		s.start = time.Unix(0, startNanos)
	}
}

// due is how many events a rate (per second) has due at now: the
// schedule's whole budget once it is over.
func (s *schedule) due(now time.Time, rate int) uint64 {
	el := min(now.Sub(s.start), s.duration)
	if el <= 0 {
		return 0
	}
	return uint64(el.Seconds() * float64(rate))
}

func (s *schedule) end() time.Time { return s.start.Add(s.duration) }

// catchUp moves *next, the schedule position of a sender at rate, to
// within maxBacklog of due, and returns how many events that skipped.
func catchUp(next *uint64, due uint64, rate int) uint64 {
	backlog := max(uint64(maxBacklog.Seconds()*float64(rate)), 1)
	if due <= *next+backlog {
		return 0
	}
	skipped := due - backlog - *next
	*next += skipped
	return skipped
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// flowResult is _flow's report.
type flowResult struct {
	Index int `json:"index"`
	// Attempted, SendErrors and Received are indexed by peer: datagrams
	// this process tried to send to peer i, how many of those sends
	// failed, and how many distinct ones it received from peer i.
	// Sequence numbers given up while the sender was not run (see
	// maxBacklog) are in Skipped and in none of these.
	Attempted    []uint64 `json:"attempted"`
	Skipped      uint64   `json:"skipped"`
	SendErrors   []uint64 `json:"send_errors"`
	Received     []uint64 `json:"received"`
	Duplicates   uint64   `json:"duplicates"`
	Foreign      uint64   `json:"foreign"` // datagrams that were not a peer's flow payload
	RcvbufErrors uint64   `json:"rcvbuf_errors"`
	// MaxStall is the longest time, in seconds, the sender went without
	// running beyond its pacing interval: how long the machine left it
	// descheduled, which delays everything else as well.
	MaxStall float64 `json:"max_stall_seconds"`
}

// runFlow: `_flow -index I -addrs A0,A1,A2 [-port P] [-rate R] -start T
// -duration D [-linger L]`. It listens on addrs[index]:port, sends rate
// datagrams a second to every other address, and counts per sender.
func runFlow(args []string) error {
	fs := flag.NewFlagSet(cmdFlow, flag.ContinueOnError)
	var sch schedule
	startNanos := sch.flags(fs)
	index := fs.Int("index", 0, "this container's index in -addrs")
	addrList := fs.String("addrs", "", "comma-separated IPv4 addresses of every container")
	port := fs.Int("port", 9000, "UDP port of every flow socket")
	rate := fs.Int("rate", 200, "datagrams per second to each peer")
	linger := fs.Duration("linger", 2*time.Second, "how long to keep counting after sending stops")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sch.resolve(*startNanos)
	var addrs []netip.Addr
	for _, s := range strings.Split(*addrList, ",") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return fmt.Errorf("-addrs: %q is not an IPv4 address", s)
		}
		addrs = append(addrs, a)
	}
	n := len(addrs)
	if *index < 0 || *index >= n || n > 255 || *rate < 1 || *port < 1 || *port > 65535 {
		return fmt.Errorf("bad -index %d, -rate %d or -port %d for %d addresses", *index, *rate, *port, n)
	}

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrs[*index], uint16(*port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := forceBuffer(conn, unix.SO_RCVBUFFORCE, flowSocketBuffer); err != nil {
		return err
	}
	snmp0, err := udpSNMP()
	if err != nil {
		return err
	}
	fmt.Println(harness.ReadyLine)

	res := flowResult{
		Index:      *index,
		Attempted:  make([]uint64, n),
		SendErrors: make([]uint64, n),
		Received:   make([]uint64, n),
	}
	// The receiver owns seen, Received, Duplicates and Foreign until it
	// returns. Sequence numbers beyond what the run can send are foreign.
	maxSeq := uint64(float64(*rate)*sch.duration.Seconds()) + 1
	seen := make([][]uint64, n)
	for i := range seen {
		seen[i] = make([]uint64, maxSeq/64+1)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var recvErr error
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
				recvErr = err
				return
			}
			m, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				recvErr = err
				return
			}
			from, seq, ok := parseFlow(buf[:m])
			if !ok || int(from) >= n || int(from) == *index || seq >= maxSeq {
				res.Foreign++
				continue
			}
			w, bit := &seen[from][seq/64], uint64(1)<<(seq%64)
			if *w&bit != 0 {
				res.Duplicates++
				continue
			}
			*w |= bit
			res.Received[from]++
		}
	})

	sleepUntil(sch.start)
	payload := make([]byte, flowMaxPayload)
	next := make([]uint64, n) // the next sequence number to each peer
	tick := time.NewTicker(pace)
	defer tick.Stop()
	prev := time.Now()
	for {
		now := time.Now()
		res.MaxStall = max(res.MaxStall, (now.Sub(prev) - pace).Seconds())
		prev = now
		due := sch.due(now, *rate)
		for p := range n {
			if p == *index {
				continue
			}
			res.Skipped += catchUp(&next[p], due, *rate)
			dst := netip.AddrPortFrom(addrs[p], uint16(*port))
			for ; next[p] < due; next[p]++ {
				b := putFlow(payload, uint8(*index), next[p])
				res.Attempted[p]++
				if _, err := conn.WriteToUDPAddrPort(b, dst); err != nil {
					res.SendErrors[p]++
				}
			}
		}
		if !now.Before(sch.end()) {
			break
		}
		<-tick.C
	}
	time.Sleep(*linger)
	close(stop)
	wg.Wait()
	if recvErr != nil {
		return fmt.Errorf("receive: %w", recvErr)
	}
	snmp1, err := udpSNMP()
	if err != nil {
		return err
	}
	res.RcvbufErrors = snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"]
	return json.NewEncoder(os.Stdout).Encode(res)
}

// udpSNMP reads the Udp counters of this process's network namespace.
func udpSNMP() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return nil, err
	}
	return parseSNMP(b, "Udp")
}

// forceBuffer sets a socket buffer with the privileged option, beyond
// net.core.rmem_max.
func forceBuffer(c syscall.Conn, opt, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}

// churnResult is _churn's report.
type churnResult struct {
	Appeared      uint64 `json:"appeared"`
	Moved         uint64 `json:"moved"`
	Errors        uint64 `json:"send_errors"`
	SkippedEpochs uint64 `json:"skipped_epochs"` // not run in time, see runChurn
}

// runChurn: `_churn -index I -hosts N -phase P [-per-epoch M]
// [-move-every K] [-epoch E] -start T -duration D`. It sends one broadcast
// frame from each MAC of its plan for each epoch (planEpoch), spread over
// the epoch, on eth0 through an AF_PACKET socket.
func runChurn(args []string) error {
	fs := flag.NewFlagSet(cmdChurn, flag.ContinueOnError)
	var sch schedule
	startNanos := sch.flags(fs)
	dev := fs.String("dev", "eth0", "interface to send on")
	index := fs.Int("index", 0, "this container's index")
	hosts := fs.Int("hosts", 3, "number of churn processes")
	phase := fs.Int("phase", 0, "phase number, part of every MAC")
	perEpoch := fs.Int("per-epoch", 50, "MACs that appear per epoch, across all processes")
	moveEvery := fs.Int("move-every", 5, "every k-th MAC moves in the next epoch; 0: none")
	epoch := fs.Duration("epoch", time.Second, "epoch length")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sch.resolve(*startNanos)
	if *hosts < 1 || *index < 0 || *index >= *hosts || *perEpoch < 1 || *perEpoch > 256 ||
		*moveEvery < 0 || *phase < 0 || *phase > 255 || *epoch < 10*time.Millisecond {
		return errors.New("bad -index, -hosts, -per-epoch (1..256), -move-every, -phase or -epoch")
	}
	ps, err := harness.OpenPacketSender(*dev)
	if err != nil {
		return err
	}
	defer ps.Close()
	fmt.Println(harness.ReadyLine)

	var res churnResult
	epochs := int(sch.duration / *epoch)
	for e := range epochs {
		e0 := sch.start.Add(time.Duration(e) * *epoch)
		if time.Since(e0) > *epoch {
			// Not run for a whole epoch: give it up rather than let its
			// MACs appear all at once with the next one's.
			res.SkippedEpochs++
			continue
		}
		plan := planEpoch(uint8(*phase), uint32(e), *index, *hosts, *perEpoch, *moveEvery)
		macs := append(append([]net.HardwareAddr(nil), plan.Appear...), plan.Move...)
		for k, mac := range macs {
			sleepUntil(e0.Add(time.Duration(k) * *epoch / time.Duration(len(macs))))
			if err := ps.Send(ethernetFrame(broadcastMAC, mac)); err != nil {
				res.Errors++
				continue
			}
			if k < len(plan.Appear) {
				res.Appeared++
			} else {
				res.Moved++
			}
		}
	}
	sleepUntil(sch.end())
	return json.NewEncoder(os.Stdout).Encode(res)
}

// hostileResult is _hostile's report: per target address, per kind, the
// datagrams the kernel accepted for sending.
type hostileResult struct {
	Sent    map[string]map[string]uint64 `json:"sent"`
	Errors  uint64                       `json:"send_errors"`
	Skipped uint64                       `json:"skipped"` // given up, see maxBacklog
}

// runHostile: `_hostile -src A -targets A1,A2 [-dst-macs M1,M2] [-port P]
// [-vni V] [-rate R] [-seed S] -start T -duration D`. To each target it
// sends rate datagrams a second from src, cycling through hostileKinds.
// dst-macs, one per target, are the inner destinations of the "source"
// kind: the frames the attacker would like delivered.
func runHostile(args []string) error {
	fs := flag.NewFlagSet(cmdHostile, flag.ContinueOnError)
	var sch schedule
	startNanos := sch.flags(fs)
	src := fs.String("src", "", "IPv4 address to send from")
	targetList := fs.String("targets", "", "comma-separated VTEP addresses")
	macList := fs.String("dst-macs", "", "comma-separated inner destination MACs, one per target")
	port := fs.Int("port", 4789, "VXLAN UDP port")
	vni := fs.Uint("vni", 200, "the VTEPs' VNI")
	rate := fs.Int("rate", 100, "datagrams per second to each target, all kinds together")
	seed := fs.Uint64("seed", 1, "random seed of the datagrams' contents")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sch.resolve(*startNanos)
	srcAddr, err := netip.ParseAddr(*src)
	if err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	var targets []netip.AddrPort
	for _, s := range strings.Split(*targetList, ",") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("-targets: %w", err)
		}
		targets = append(targets, netip.AddrPortFrom(a, uint16(*port)))
	}
	dstMACs := make([]net.HardwareAddr, len(targets))
	for i := range dstMACs {
		dstMACs[i] = broadcastMAC
	}
	if *macList != "" {
		for i, s := range strings.Split(*macList, ",") {
			if i >= len(dstMACs) {
				return errors.New("-dst-macs: more MACs than targets")
			}
			if dstMACs[i], err = net.ParseMAC(s); err != nil {
				return fmt.Errorf("-dst-macs: %w", err)
			}
		}
	}
	if *rate < 1 || *vni > 1<<24-1 {
		return errors.New("bad -rate or -vni")
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(srcAddr, 0)))
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Println(harness.ReadyLine)

	rng := rand.New(rand.NewPCG(*seed, 0x50a4))
	res := hostileResult{Sent: map[string]map[string]uint64{}}
	for _, t := range targets {
		res.Sent[t.Addr().String()] = map[string]uint64{}
	}
	next := make([]uint64, len(targets))
	sleepUntil(sch.start)
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		now := time.Now()
		due := sch.due(now, *rate)
		for i, t := range targets {
			res.Skipped += catchUp(&next[i], due, *rate)
			for ; next[i] < due; next[i]++ {
				kind := hostileKinds[next[i]%uint64(len(hostileKinds))]
				b := kind.build(rng, uint32(*vni), attackerMAC(rng), dstMACs[i])
				if _, err := conn.WriteToUDPAddrPort(b, t); err != nil {
					res.Errors++
					continue
				}
				res.Sent[t.Addr().String()][kind.Reason]++
			}
		}
		if !now.Before(sch.end()) {
			break
		}
		<-tick.C
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
