package underlay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
)

// Datagram is one VXLAN datagram of a batch. For a send, Buf holds exactly
// the UDP header, the VXLAN header and the inner frame, and Addr is the
// remote VTEP. For a receive, Buf is the buffer to fill; the socket sets N
// to the UDP payload's length and Addr to the sender.
//
// A receive may also bring a train (UDP GRO): several datagrams of one
// sender laid end to end in Buf[:N], each of Seg bytes but the last, which
// may be shorter. Seg is 0 for a single datagram. Seg comes from the
// kernel and is only a hint to check: see Datagram.Next.
type Datagram struct {
	Buf  []byte
	N    int
	Addr netip.Addr
	Seg  int
}

// Next returns the extent [off, end) of the datagram of d that starts at
// off, for off < d.N: the rest of Buf[:N] for a single datagram, or Seg
// bytes of a train. A Seg that cannot be right (not positive, or not
// shorter than N) makes the message one datagram.
func (d *Datagram) Next(off int) int {
	if d.Seg <= 0 || d.Seg >= d.N {
		return d.N
	}
	return min(off+d.Seg, d.N)
}

// Train reports whether d holds more than one datagram.
func (d *Datagram) Train() bool { return d.Seg > 0 && d.Seg < d.N }

// Conn is the underlay: datagrams to and from remote VTEPs, moved in
// batches. Its reads share one scratch space, so they are made under one
// lock (the receive pipeline's); each sending goroutine gets its own
// Writer, so no scratch space is shared between them.
type Conn interface {
	// ReadBatchLocked blocks until at least one datagram arrives, then
	// returns up to len(d) of them without blocking again. Every attempt
	// to read holds mu, and mu is still held when it returns datagrams
	// (not on error): the caller unlocks it once they are dealt with.
	ReadBatchLocked(d []Datagram, mu sync.Locker) (int, error)
	// TryReadBatch returns the datagrams queued now, 0 if none, never
	// waiting; the caller holds the mu of ReadBatchLocked.
	TryReadBatch(d []Datagram) (int, error)
	// NewWriter returns a writer that sends up to size datagrams a call.
	NewWriter(size int) Writer
	// Close unblocks ReadBatchLocked and WriteBatch with an error that satisfies
	// errors.Is(err, net.ErrClosed) or errors.Is(err, os.ErrClosed).
	Close() error
}

// Writer sends datagrams in batches.
type Writer interface {
	// WriteBatch sends the datagrams of d in order. It returns how many
	// were sent; if that is fewer than len(d), err says why d[n] was not.
	WriteBatch(d []Datagram) (n int, err error)
}

// IsClosed reports whether err comes from a socket closed under the call:
// shutdown, not a failure.
func IsClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}
