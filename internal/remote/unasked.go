package remote

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unsolicited reports octets from the server that nothing has read: in the
// read buffer, or waiting in the socket (for TLS, a record of any kind),
// or held by TLS (tlsHolds), or the server's end of the connection.
func (c *Conn) unsolicited() bool {
	if c.r.Buffered() > 0 {
		return true
	}
	nc := c.nc
	tc, isTLS := nc.(*tls.Conn)
	if isTLS {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		pending = n > 0 || (n == 0 && err == nil) // octets, or the end
		return true                               // never wait
	})
	return pending || isTLS && c.tlsHolds()
}

// tlsHolds reports whether TLS holds a record it has read from the socket
// but not yet opened: crypto/tls reads all the socket has, so a second
// reply to the final dot that came in the same read as the first waits
// there, in neither the read buffer nor the socket, and would be read as
// the reply to the next command. A read through TLS with a deadline
// already past opens such a record and reads nothing from the socket; with
// none, it times out, which leaves the session as it was. A session ticket
// is opened and taken, and is no reply.
func (c *Conn) tlsHolds() bool {
	c.deadline(c.nc.SetReadDeadline, time.Unix(1, 0))
	_, err := c.r.Peek(1)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// tlsPeekWait bounds replyWaiting's read of TLS records already waiting.
const tlsPeekWait = 100 * time.Millisecond

// replyWaiting reports whether the octets unsolicited found waiting are a
// reply, or the end of the connection. Over plain SMTP they are. Over TLS
// they are records that may hold no reply at all (a session ticket): they
// are read through TLS for at most tlsPeekWait (a read timeout leaves a
// TLS session as it was). Without this, an upstream reached over TLS that
// said 250 in the middle of the text had its 250 read as its reply to the
// final dot, whatever it then answered to the dot.
func (c *Conn) replyWaiting() bool {
	if !c.tls {
		return true
	}
	c.deadline(c.nc.SetReadDeadline, time.Now().Add(tlsPeekWait))
	_, err := c.r.Peek(1)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
