package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vtepd/vtepd/admin"
	"github.com/vtepd/vtepd/fdb"
)

const usage = `usage:
  vtepctl [-s SOCKET] [-j] fdb show [vni N [mac MAC]]
  vtepctl [-s SOCKET] fdb add MAC dst ADDR vni N
  vtepctl [-s SOCKET] fdb del MAC vni N
  vtepctl [-s SOCKET] [-j] stats
  vtepctl [-s SOCKET] [-j] peers
  vtepctl [-s SOCKET] reload
  vtepctl [-s SOCKET] [-j] control
  vtepctl [-s SOCKET] [-j] neigh show [vni N]
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks mistakes in the command line itself.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vtepctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	socket := fs.String("s", admin.DefaultSocket, "vtepd's admin socket")
	asJSON := fs.Bool("j", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req, err := parse(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "vtepctl: %v\n", err)
		if errors.As(err, new(errUsage)) {
			fmt.Fprint(stderr, usage)
		}
		return 2
	}
	resp, err := admin.Call(*socket, req)
	if err != nil {
		fmt.Fprintf(stderr, "vtepctl: %s: %v\n", *socket, err)
		return 1
	}
	if resp.Error != "" {
		fmt.Fprintf(stderr, "vtepctl: %s\n", resp.Error)
		if resp.Message != "" {
			fmt.Fprintf(stderr, "vtepctl: %s\n", resp.Message)
		}
		return 1
	}
	if err := print(stdout, req.Cmd, resp, *asJSON); err != nil {
		fmt.Fprintf(stderr, "vtepctl: %v\n", err)
		return 1
	}
	return 0
}

// parse turns the words after the flags into a request, checking what can
// be checked here: MAC and address syntax, VNI range.
func parse(words []string) (admin.Request, error) {
	var req admin.Request
	if len(words) == 0 {
		return req, usagef("no command")
	}
	switch words[0] {
	case "stats", "peers", "reload", "control":
		if len(words) > 1 {
			return req, usagef("%s takes no arguments", words[0])
		}
		req.Cmd = words[0]
		return req, nil
	case "neigh":
		if len(words) < 2 || words[1] != "show" {
			return req, usagef("neigh: show?")
		}
		req.Cmd = admin.CmdNeigh
		return req, keywords(words[2:], map[string]func(string) error{"vni": vniArg(&req)})
	case "fdb":
	default:
		return req, usagef("unknown command %q", words[0])
	}
	if len(words) < 2 {
		return req, usagef("fdb: show, add or del?")
	}
	rest := words[2:]
	switch words[1] {
	case "show":
		req.Cmd = admin.CmdFDBShow
		err := keywords(rest, map[string]func(string) error{"vni": vniArg(&req), "mac": func(s string) error {
			mac, err := fdb.ParseMAC(s)
			if err != nil {
				return fmt.Errorf("%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", s)
			}
			req.MAC = mac.String()
			return nil
		}})
		if err == nil && req.MAC != "" && req.VNI == nil {
			err = usagef("fdb show: mac needs vni N")
		}
		return req, err
	case "add", "del":
		if len(rest) == 0 {
			return req, usagef("fdb %s: MAC missing", words[1])
		}
		mac, err := fdb.ParseMAC(rest[0])
		if err != nil {
			return req, fmt.Errorf("%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", rest[0])
		}
		req.MAC = mac.String()
		kw := map[string]func(string) error{"vni": vniArg(&req)}
		if words[1] == "add" {
			req.Cmd = admin.CmdFDBAdd
			if !mac.IsUnicast() || mac.IsZero() {
				return req, fmt.Errorf("%s is not a unicast MAC address", mac)
			}
			kw["dst"] = func(s string) error {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return fmt.Errorf("dst %q is not an IP address", s)
				}
				req.Remote = a.String()
				return nil
			}
		} else {
			req.Cmd = admin.CmdFDBDel
		}
		if err := keywords(rest[1:], kw); err != nil {
			return req, err
		}
		if req.VNI == nil {
			return req, usagef("fdb %s: vni N is required", words[1])
		}
		if words[1] == "add" && req.Remote == "" {
			return req, usagef("fdb add: dst ADDR is required")
		}
		return req, nil
	}
	return req, usagef("fdb: unknown subcommand %q", words[1])
}

// keywords parses "key value" pairs, each key at most once.
func keywords(words []string, set map[string]func(string) error) error {
	seen := map[string]bool{}
	for i := 0; i < len(words); i += 2 {
		key := words[i]
		f, ok := set[key]
		if !ok {
			return usagef("unexpected %q", key)
		}
		if seen[key] {
			return usagef("%s given twice", key)
		}
		seen[key] = true
		if i+1 == len(words) {
			return usagef("%s: value missing", key)
		}
		if err := f(words[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func vniArg(req *admin.Request) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil || v > 1<<24-1 {
			return fmt.Errorf("vni %q is not a number in 0..16777215", s)
		}
		vni := uint32(v)
		req.VNI = &vni
		return nil
	}
}

func print(w io.Writer, cmd string, resp admin.Response, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		switch cmd {
		case admin.CmdFDBShow:
			return enc.Encode(nonNil(resp.FDB))
		case admin.CmdStats:
			return enc.Encode(nonNil(resp.Stats))
		case admin.CmdPeers:
			return enc.Encode(nonNil(resp.Peers))
		case admin.CmdControl:
			return enc.Encode(resp.Control)
		case admin.CmdNeigh:
			return enc.Encode(nonNil(resp.Neigh))
		}
		return enc.Encode(map[string]string{"message": resp.Message})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch cmd {
	case admin.CmdFDBShow:
		// The shape of `bridge fdb show`: MAC, then its attributes.
		for _, e := range resp.FDB {
			age := ""
			if e.Type == "learned" {
				age = fmt.Sprintf("age %s", (time.Duration(e.AgeSeconds * 1e9)).Round(time.Second))
			}
			fmt.Fprintf(tw, "%s\tdst %s\tvni %d\t%s\t%s\n", e.MAC, e.Remote, e.VNI, e.Type, age)
		}
	case admin.CmdStats:
		fmt.Fprintln(tw, "VNI\tNAME\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tFLOOD\tFDB L/S\tMOVES\tDROPS")
		for _, s := range resp.Stats {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%s\n", s.VNI, s.Name, s.RxPackets, s.RxBytes,
				s.TxPackets, s.TxBytes, s.FloodPackets, s.FDBLearned, s.FDBStatic, s.FDBMoves, drops(s.Drops))
		}
	case admin.CmdPeers:
		fmt.Fprintln(tw, "PEER\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tLAST SEEN")
		for _, p := range resp.Peers {
			seen := "never"
			if p.LastSeen >= 0 {
				seen = fmt.Sprintf("%s ago", time.Duration(p.LastSeen*1e9).Round(time.Millisecond))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", p.Addr, p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes, seen)
		}
	case admin.CmdControl:
		printControl(tw, resp.Control)
	case admin.CmdNeigh:
		// The shape of `ip neigh show`: address, then its attributes.
		for _, n := range resp.Neigh {
			fmt.Fprintf(tw, "%s\tlladdr %s\tvni %d\t%s\n", n.IP, n.MAC, n.VNI, n.Type)
		}
	default:
		fmt.Fprintln(tw, resp.Message)
	}
	return nil
}

func printControl(w io.Writer, c *admin.ControlStatus) {
	if c == nil || c.Backend == "" {
		fmt.Fprintln(w, "no control plane: flood and learn only (set [control] backend)")
		return
	}
	state := "no"
	if c.Connected {
		state = "yes"
	}
	if !c.Since.IsZero() {
		state += fmt.Sprintf(" (since %s, %s ago)", c.Since.Format(time.RFC3339), time.Since(c.Since).Round(time.Second))
	}
	lease := "none"
	if c.LeaseID != 0 {
		lease = fmt.Sprintf("%x", c.LeaseID)
	}
	fmt.Fprintf(w, "backend\t%s\n", c.Backend)
	if c.Backend == "evpn" {
		fmt.Fprintf(w, "neighbors\t%s\n", strings.Join(c.Endpoints, ","))
	} else {
		fmt.Fprintf(w, "endpoints\t%s\n", strings.Join(c.Endpoints, ","))
	}
	fmt.Fprintf(w, "local\t%s\n", c.Local)
	fmt.Fprintf(w, "connected\t%s\n", state)
	if c.Backend == "etcd" {
		fmt.Fprintf(w, "revision\t%d\n", c.Revision)
		fmt.Fprintf(w, "lease\t%s (ttl %s)\n", lease, time.Duration(c.LeaseTTL*1e9))
	}
	fmt.Fprintf(w, "pending\t%d\n", c.Pending)
	fmt.Fprintf(w, "errors\t%s\n", drops(c.Errors))
	if c.Backend == "evpn" {
		fmt.Fprintf(w, "routes received\ttype-2 %d, type-3 %d\n", c.RoutesReceived["2"], c.RoutesReceived["3"])
		fmt.Fprintf(w, "routes advertised\ttype-2 %d, type-3 %d\n", c.RoutesAdvertised["2"], c.RoutesAdvertised["3"])
		fmt.Fprintln(w)
		fmt.Fprintln(w, "NEIGHBOR\tASN\tSTATE\tSINCE\tTYPE-2\tTYPE-3\tDROPS\tRETRY")
		for _, s := range c.Sessions {
			since := "-"
			if !s.Since.IsZero() {
				since = time.Since(s.Since).Round(time.Second).String()
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Neighbor, s.ASN, s.State, since, s.Received["2"], s.Received["3"], s.Drops,
				time.Duration(s.ConnectRetry*float64(time.Second)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "VNI\tREMOTE VTEPS\tREMOTE MACS\tREMOTE IPS\tLOCAL MACS\tLOCAL IPS")
	for _, e := range c.Entries {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\n", e.VNI, e.RemoteVTEPs, e.RemoteMACs, e.RemoteIPs, e.LocalMACs, e.LocalIPs)
	}
}

func drops(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
