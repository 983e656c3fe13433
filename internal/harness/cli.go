package harness

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Seconds is a time.Duration flag that also takes a plain number of
// seconds, so that `-duration 3` (or `-duration $(SOAK_SECONDS)`) means
// what it says. A plain number must lie in [0, Max]; Example is the
// duration named in the error for a value that is neither.
type Seconds struct {
	D       *time.Duration
	Max     time.Duration
	Example string
}

// SecondsFlag is a Seconds that sets *d.
func SecondsFlag(d *time.Duration, max time.Duration, example string) *Seconds {
	return &Seconds{D: d, Max: max, Example: example}
}

// String is *s.D, formatted as a duration. The flag package calls it on a
// zero Seconds too, to tell a default worth printing.
func (s *Seconds) String() string {
	if s == nil || s.D == nil {
		return time.Duration(0).String()
	}
	return s.D.String()
}

// Set takes a Go duration (5s, 1m) or a number of seconds (5, 2.5).
func (s *Seconds) Set(v string) error {
	if d, err := time.ParseDuration(v); err == nil {
		*s.D = d
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > s.Max.Seconds() {
		return fmt.Errorf("want a duration such as %s, or seconds", s.Example)
	}
	*s.D = time.Duration(f * float64(time.Second))
	return nil
}

// ReadyLine is the line a hidden subcommand prints on stdout once its
// sockets are open, so that the harness knows it is listening (WaitReady).
const ReadyLine = "ready"

// RunHidden runs the hidden subcommand args[0], if cmds has it, with the
// rest of args, and exits: with status 0, or with status 1 after printing
// "name: error" to stderr. It returns only if args name no subcommand of
// cmds (a nil cmds has none).
//
// The harnesses re-execute their own binary inside the lab's namespaces
// (a container's, the attacker's) as the processes of their workloads;
// main, and TestMain of a test binary that is re-executed, call this
// first.
func RunHidden(args []string, cmds map[string]func([]string) error) {
	if len(args) == 0 {
		return
	}
	run, ok := cmds[args[0]]
	if !ok {
		return
	}
	if err := run(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
	os.Exit(0)
}

// WatchInterrupt notes SIGINT and SIGTERM from now on, and returns a
// function that says whether one has arrived. internal/topo closes the lab
// on either and re-raises the signal; a workload cut short by that must
// not read as a failure of the path it measured, so a harness asks this
// before reporting its error.
func WatchInterrupt() (interrupted func() bool) {
	var got atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		got.Store(true)
	}()
	return got.Load
}

// ParseFlags parses the command line into the flags defined so far, with a
// usage that names prog and says what it measures (about). It exits with
// status 2: after the usage if arguments are left over, or after
// "prog: error" if check refuses the flags.
func ParseFlags(prog, about string, check func() error) {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] (as root)\n\n%s\n\n", prog, about)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := check(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(2)
	}
}

// ExitIfFailed returns if err is nil. Otherwise it exits: with status 130
// after "prog: interrupted; lab removed" if interrupted (from
// WatchInterrupt) says a signal cut the run short, else with status 1
// after "prog: failed: err".
func ExitIfFailed(prog, failed string, err error, interrupted func() bool) {
	if err == nil {
		return
	}
	if interrupted() {
		fmt.Fprintf(os.Stderr, "%s: interrupted; lab removed\n", prog)
		os.Exit(130)
	}
	fmt.Fprintf(os.Stderr, "%s: %s: %v\n", prog, failed, err)
	os.Exit(1)
}
