package vtep

import "net/netip"

// Datagram is one VXLAN datagram of a batch. For a send, Buf holds exactly
// the UDP header, the VXLAN header and the inner frame, and Addr is the
// remote VTEP. For a receive, Buf is the buffer to fill; the socket sets N
// to the UDP payload's length and Addr to the sender.
type Datagram struct {
	Buf  []byte
	N    int
	Addr netip.Addr
}

// BatchConn is the underlay: datagrams to and from remote VTEPs, moved in
// batches. ReadBatch has a single caller; each sending goroutine gets its
// own BatchWriter, so no scratch space is shared between them.
type BatchConn interface {
	// ReadBatch blocks until at least one datagram arrives, then returns
	// up to len(d) of them without blocking again.
	ReadBatch(d []Datagram) (int, error)
	// NewWriter returns a writer that sends up to size datagrams a call.
	NewWriter(size int) BatchWriter
	// Close unblocks ReadBatch and WriteBatch with an error that satisfies
	// errors.Is(err, net.ErrClosed) or errors.Is(err, os.ErrClosed).
	Close() error
}

// BatchWriter sends datagrams in batches.
type BatchWriter interface {
	// WriteBatch sends the datagrams of d in order. It returns how many
	// were sent; if that is fewer than len(d), err says why d[n] was not.
	WriteBatch(d []Datagram) (n int, err error)
}
