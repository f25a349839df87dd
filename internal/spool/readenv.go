package spool

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// firstRead is what the first read of an envelope asks for.
const firstRead = 4096

var firstReads = sync.Pool{New: func() any { return new([firstRead]byte) }}

// The delivery side reads every queued envelope twice: when the scheduler
// lists the spool (to learn where the message goes) and when a worker
// claims it. Keeping the parsed envelopes from one to the other would cost
// a kilobyte or so per queued message, 100 MiB for a spool of 100,000, so
// both reads stay; what is cut here is what each read costs.

// ReadListed returns the envelope of a message as a listing (List) saw
// it, in the state the listing gave, without looking for it under other
// names: ErrNotFound if it has moved on since. Like Read, it is for
// scheduling and showing; the envelope may change under the caller, and a
// claim reads it again.
func (s *Spool) ReadListed(e Entry) (*Envelope, error) {
	if !ValidID(e.ID) {
		return nil, ErrNotFound
	}
	if env, st, ok, err := s.readServed(e.ID); ok {
		if err == nil && st != e.State {
			return nil, ErrNotFound // moved on since the listing
		}
		return env, err
	}
	return s.readEnvelope(e.ID, e.State)
}

// readEnvelopeFile reads an envelope file whole, through a bare
// descriptor: open, read, close. An *os.File would add an fcntl, an
// allocation and a finalizer. The first read asks for more than an
// envelope usually has (a few hundred octets): a read(2) of a regular
// file that returns less than it was asked for has met the end (POSIX
// allows a short read only at the end or after a signal, and Linux's page
// cache reads stop early only for a fatal one), so a usual envelope costs
// one read and no fstat(2) for its size. A larger one is read on until a
// read returns nothing.
func readEnvelopeFile(name string) ([]byte, error) {
	var fd int
	var err error
	for {
		// O_NONBLOCK changes nothing for a regular file; a named pipe
		// in an envelope's place opens at once and reads as empty,
		// instead of waiting for a writer for good.
		// O_NOFOLLOW: a symbolic link is never read (readEnvelope).
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	// The first read goes into a pooled buffer, and only what it read
	// is kept: a fresh 4 KiB for every read of a 400-octet envelope, two
	// per delivered message, fed the collector more than the saved
	// fstat(2) saved.
	first := firstReads.Get().(*[firstRead]byte)
	defer firstReads.Put(first)
	b := first[:]
	n := 0
	for {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		n += m
		switch {
		case n < firstRead && n < len(b):
			// Short of the first read's buffer: the end.
			return append([]byte(nil), b[:n]...), nil
		case m == 0:
			return b[:n], nil
		case n == len(b):
			if len(b) > maxEnvelope {
				// Never readable: torn, as far as anyone can tell.
				return nil, fmt.Errorf("%s: %w", name, &ParseError{1, "more than an envelope may have"})
			}
			if n == firstRead {
				b = append(make([]byte, 0, 2*firstRead), b...)
			}
			b = append(b, make([]byte, len(b))...)
		}
	}
}
