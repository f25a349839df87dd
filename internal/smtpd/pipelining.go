package smtpd

import (
	"net"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// lastInGroup are the commands RFC 2920 section 3.1 allows only last in
// a pipelined group (with HELO, which has no PIPELINING at all): the
// client must wait for their reply before it sends more. Postfix's
// SMTPD_CMD_FLAG_LAST.
var lastInGroup = map[string]bool{"EHLO": true, "HELO": true, "DATA": true, "NOOP": true, "VRFY": true, "EXPN": true, "TURN": true}

// lookAhead is Postfix's test for improper pipelining, made when a
// command is read: more input is already waiting, although the command
// must be the last of its group, or the session has not said EHLO (a
// client that said HELO, or nothing, may not pipeline at all). The
// first time it says so, it logs the input waiting, as Postfix's
// "improper command pipelining after DATA from ...", and marks the
// session for reject_unauth_pipelining.
func (c *commandConn) lookAhead(verb string) {
	if !c.watchPipe || c.illPipelining {
		return
	}
	esmtp := c.greeted && !c.saidHelo
	if esmtp && !lastInGroup[verb] {
		return
	}
	n := c.br.Buffered()
	if n == 0 {
		// Not yet read from the socket: ask the kernel (Postfix's
		// peekfd). Under TLS too, as Postfix asks the socket under
		// its TLS stream: what waits there after the client's last
		// record is more of its records, sent before the reply (a
		// client that waits sends nothing; TLS sends nothing of
		// its own after the handshake), so message text written
		// after DATA in a record of its own is seen as well, and
		// so are the records read from the socket with it and
		// not yet decrypted (recordConn).
		n = pendingInput(c.Conn) + c.rec.buffered()
	}
	if n == 0 {
		return
	}
	c.illPipelining = true
	peek, _ := c.br.Peek(min(c.br.Buffered(), 100))
	c.srv.log.Info("improper command pipelining", "after", verb, "client", c.RemoteAddr().String(),
		"input", strings.Trim(strconv.Quote(string(peek)), `"`))
}

// underTLS is the connection the TLS layer is to read: with the
// look-ahead on, through a recordConn, so that records read ahead are
// seen.
func (c *commandConn) underTLS() net.Conn {
	if !c.watchPipe {
		return c.Conn
	}
	c.rec = newRecordConn(c.Conn)
	return c.rec
}

// pendingInput is how many octets the kernel holds for nc, unread.
func pendingInput(nc net.Conn) int {
	if tc, ok := nc.(*trackedConn); ok {
		nc = tc.Conn
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n
}

// watchesPipelining reports a restriction that needs lookAhead.
func (s *Server) watchesPipelining() bool {
	w, ok := s.opts.Policy.(interface{ WatchesPipelining() bool })
	return ok && w.WatchesPipelining()
}
