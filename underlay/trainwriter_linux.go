package underlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vtepd/vtepd/encap"
)

// TrainWriter sends trains for one pipeline: the scratch space of its
// sendmsg, and the buffers a refused train is cut into.
type TrainWriter struct {
	trains *Trains
	dport  uint16 // destination port
	msg    unix.Msghdr
	iovs   [MaxTrainParts]unix.Iovec
	name   unix.RawSockaddrInet6
	cmsg   [unix.SizeofCmsghdr + 8]byte
	errno  unix.Errno
	fn     func(fd uintptr) bool

	// A train the kernel refuses leaves through fallback as datagrams,
	// built in slab.
	fallback Writer
	slab     []byte
	dgs      []Datagram
}

// NewWriter returns a writer of trains to destination port dport. A train
// the kernel refuses goes out through fallback, a writer of whole
// datagrams (UDP header included), one per segment.
func (s *Trains) NewWriter(dport uint16, fallback Writer) *TrainWriter {
	w := &TrainWriter{
		trains:   s,
		dport:    dport,
		fallback: fallback,
		slab:     make([]byte, MaxTrainBytes+MaxTrainSegments*encap.UDPHeaderLen),
		dgs:      make([]Datagram, 0, MaxTrainSegments),
	}
	w.msg.Name = (*byte)(unsafe.Pointer(&w.name))
	w.msg.Iov = &w.iovs[0]
	w.msg.Control = &w.cmsg[0]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&w.cmsg[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	w.msg.SetControllen(unix.CmsgSpace(2))
	w.fn = w.sendmsg
	return w
}

func (w *TrainWriter) sendmsg(fd uintptr) bool {
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&w.msg)), 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.errno = errno
		return true
	}
}

// errGSORefused is a train the kernel will never take from this socket;
// errPortClosed a port socket closed under the send (poll's "use of
// closed file", which is not os.ErrClosed). Neither is wrapped on the
// way: a train that fails must not allocate.
var (
	errGSORefused = errors.New("UDP GSO refused")
	errPortClosed = fmt.Errorf("underlay: port socket closed: %w", os.ErrClosed)
)

// errTrainTooLong is a train beyond MaxTrainSegments, MaxTrainParts or
// MaxTrainBytes: a bug of the caller's.
var errTrainTooLong = errors.New("underlay: train too long")

// WriteTrain sends a train from port p to the VTEP at to: the datagram
// payloads laid end to end in parts, segSize bytes each but the last,
// which may be shorter. The parts need not fall on datagram boundaries
// (a pipeline passes each datagram's headers, then its payload where the
// TAP read it: the kernel copies it once, from there). It returns how
// many datagrams went out; if fewer than the train holds, err says why
// one did not.
//
// A train the kernel refuses goes out datagram by datagram through the
// fallback writer, so the caller never sees the difference; if the kernel
// never will take one (no checksum offload on the way), trains are given
// up for good and Trains.Port returns nil from then on.
func (w *TrainWriter) WriteTrain(p *Port, to netip.Addr, parts [][]byte, segSize int) (int, error) {
	size := 0
	for _, b := range parts {
		size += len(b)
	}
	if len(parts) > MaxTrainParts || size > MaxTrainBytes || segSize <= 0 || (size+segSize-1)/segSize > MaxTrainSegments {
		return 0, errTrainTooLong
	}
	err := w.send(p, parts, segSize, to)
	if err == nil {
		return (size + segSize - 1) / segSize, nil
	}
	if errors.Is(err, errGSORefused) && w.trains.failed.CompareAndSwap(false, true) && w.trains.log != nil {
		w.trains.log.Warn("UDP GSO refused by the underlay; sending datagram by datagram", "err", w.errno)
	}
	return w.datagrams(p.port, to, parts, segSize)
}

// send hands the train to the kernel in one sendmsg with UDP_SEGMENT.
func (w *TrainWriter) send(p *Port, parts [][]byte, segSize int, to netip.Addr) error {
	for i, b := range parts {
		w.iovs[i].Base = unsafe.SliceData(b)
		w.iovs[i].SetLen(len(b))
	}
	w.msg.SetIovlen(len(parts))
	binary.NativeEndian.PutUint16(w.cmsg[unix.CmsgLen(0):], uint16(segSize))
	w.msg.Namelen = putSockaddr(&w.name, to, w.dport)
	w.errno = 0
	err := p.rc.Write(w.fn)
	clear(w.iovs[:len(parts)]) // hold no buffer past the train
	if err != nil {
		return errPortClosed // the only way Write fails
	}
	switch w.errno {
	case 0:
		return nil
	case unix.EIO, unix.EINVAL, unix.ENOPROTOOPT:
		return errGSORefused
	}
	return w.errno
}

// datagrams cuts the train into datagrams of its own, UDP header first,
// and sends them through the fallback writer. A datagram the kernel
// refuses is skipped; a closed socket ends the train.
func (w *TrainWriter) datagrams(sport uint16, to netip.Addr, parts [][]byte, segSize int) (sent int, err error) {
	start, fill := 0, 0 // the datagram being built: slab[start:], fill payload bytes so far
	end := func() {
		dg := w.slab[start : start+encap.UDPHeaderLen+fill]
		encap.UDP(dg).Encode(sport, w.dport, len(dg))
		w.dgs = append(w.dgs, Datagram{Buf: dg, Addr: to})
		start += len(dg)
		fill = 0
	}
	for _, b := range parts {
		for len(b) > 0 {
			n := copy(w.slab[start+encap.UDPHeaderLen+fill:start+encap.UDPHeaderLen+segSize], b)
			b = b[n:]
			if fill += n; fill == segSize {
				end()
			}
		}
	}
	if fill > 0 {
		end()
	}
	q := w.dgs
	for len(q) > 0 {
		n, werr := w.fallback.WriteBatch(q)
		sent += n
		q = q[n:]
		if werr == nil {
			continue
		}
		err = werr
		if IsClosed(werr) {
			break
		}
		q = q[1:]
	}
	clear(w.dgs)
	w.dgs = w.dgs[:0]
	return sent, err
}

// putSockaddr writes a:port as a socket address.
func putSockaddr(sa *unix.RawSockaddrInet6, a netip.Addr, port uint16) uint32 {
	var p uint16 // the port in network byte order, as the kernel reads it
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&p))[:], port)
	if a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = p
		sa4.Addr = a.As4()
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: p, Addr: a.As16()}
	return unix.SizeofSockaddrInet6
}
