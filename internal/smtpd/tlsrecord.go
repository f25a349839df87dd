package smtpd

import "net"

// recordConn is the client's connection as the TLS layer reads it, for
// the look-ahead (pipelining.go). crypto/tls reads the socket with a
// buffer as large as it can fill, and keeps what it read past the record
// it wanted: a record sent behind the one being read (message text
// written after DATA, in a record of its own) then waits inside the TLS
// layer, where neither the read buffer nor the socket (FIONREAD) shows
// it. recordConn reads the socket as a whole, but hands the TLS layer at
// most the rest of one record per read; what it holds beyond that is
// input waiting (buffered), as it would be in the kernel for Postfix,
// whose TLS library reads a record at a time.
type recordConn struct {
	net.Conn
	space []byte // the read buffer
	buf   []byte // read from the socket, not yet handed on
	err   error  // the socket's error with the last data, returned after it
	hdr   [5]byte
	hn    int // octets of the current record's header handed on
	body  int // octets of the current record's body still to hand on
}

func newRecordConn(nc net.Conn) *recordConn {
	return &recordConn{Conn: nc, space: make([]byte, 16<<10)}
}

// Read hands on buffered input up to the end of the current record, and
// reads the socket when there is none.
func (r *recordConn) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if err := r.err; err != nil {
			r.err = nil
			return 0, err
		}
		n, err := r.Conn.Read(r.space)
		r.buf, r.err = r.space[:n], err
		if n == 0 {
			r.err = nil
			return 0, err
		}
	}
	n := r.span(min(len(p), len(r.buf)))
	copy(p, r.buf[:n])
	r.buf = r.buf[n:]
	return n, nil
}

// span is how many of the next max buffered octets go in one read: up to
// the end of the record they belong to.
func (r *recordConn) span(max int) int {
	n := 0
	for n < max {
		if r.hn < len(r.hdr) {
			r.hdr[r.hn] = r.buf[n]
			r.hn++
			n++
			if r.hn == len(r.hdr) {
				r.body = int(r.hdr[3])<<8 | int(r.hdr[4])
				if r.body == 0 {
					r.hn = 0
					return n
				}
			}
			continue
		}
		k := min(r.body, max-n)
		n += k
		r.body -= k
		if r.body == 0 {
			r.hn = 0
			return n
		}
	}
	return n
}

// buffered is how many octets were read from the socket and not yet
// handed to the TLS layer: records the client sent behind the last one.
func (r *recordConn) buffered() int {
	if r == nil {
		return 0
	}
	return len(r.buf)
}
