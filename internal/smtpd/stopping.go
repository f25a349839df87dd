package smtpd

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Shutting down (RFC 5321 section 3.8): a server closes a connection only
// after QUIT, or with a 421 when it shuts down. Shutdown marks the server
// stopping and wakes every session waiting for a command line; each one,
// at its next command, says "421 4.3.2" and ends. A session in the middle
// of message text is not woken: it reads the text to the final dot within
// the grace, answers it, and says 421 at the next command. Without this,
// an idle client waited the whole grace and was cut without a word, and
// one that began a transaction in the grace lost it when it was cut.

// stopWatch is a session's part of it: whether go-smtp waits for a
// command line (readLine), and whether Shutdown cut that wait short.
type stopWatch struct {
	mu      sync.Mutex
	waiting bool
	poked   bool
}

// errStopping is readLine's error for a command line not read because the
// server is stopping.
var errStopping = errors.New("smtpd: shutting down")

// track registers c with the server for Shutdown to wake; untrack at
// Close.
func (s *Server) track(c *commandConn) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.conns == nil {
		s.conns = map[*commandConn]struct{}{}
	}
	s.conns[c] = struct{}{}
}

func (s *Server) untrack(c *commandConn) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	delete(s.conns, c)
}

// serving registers a listener Serve is about to accept on, for wakeIdle
// to close; false if the server is stopping already. go-smtp's Serve
// called after its Shutdown adds the listener to a list nobody closes any
// more, and accepts on it forever: a SIGTERM just after start, before the
// goroutine running Serve had begun, left the daemon waiting for it, never
// to stop.
func (s *Server) serving(l net.Listener) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.listeners = append(s.listeners, l)
	return true
}

// wakeIdle marks the server stopping, closes its listeners, and cuts short
// the wait of every session waiting for a command line.
func (s *Server) wakeIdle() {
	s.stopping.Store(true)
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stop.mu.Lock()
		if c.stop.waiting {
			c.stop.poked = true
			c.Conn.SetReadDeadline(time.Now())
		}
		c.stop.mu.Unlock()
	}
}

// awaitCommand is called before a command line is read: false if the
// server is stopping, and the line is not to be read.
func (c *commandConn) awaitCommand() bool {
	c.stop.mu.Lock()
	defer c.stop.mu.Unlock()
	if c.srv.stopping.Load() {
		return false
	}
	c.stop.waiting = true
	return true
}

// commandRead is called after the read of a command line. A deadline that
// Shutdown set and the read did not meet is taken away, so that it cannot
// cut the message text that follows.
func (c *commandConn) commandRead() {
	c.stop.mu.Lock()
	defer c.stop.mu.Unlock()
	c.stop.waiting = false
	if c.stop.poked {
		c.stop.poked = false
		c.Conn.SetReadDeadline(time.Time{})
	}
}

// stopped answers a command read that failed, or was not made, because
// the server is stopping: the client hears 421 and the session ends. It
// returns false for any other failure.
func (c *commandConn) stopped(err error) bool {
	var ne net.Error
	if !c.srv.stopping.Load() || !errors.Is(err, errStopping) && !(errors.As(err, &ne) && ne.Timeout()) {
		return false
	}
	c.reply("421 4.3.2 " + c.srv.opts.Domain + " Error: service shutting down")
	c.closed = true
	return true
}

// At the end of the grace, a session still under way (a client in the
// middle of its message text, one waiting for a policy service) is cut:
// its reads fail at once, so that go-smtp's goroutine gives up the
// transaction (its content file goes) and ends; the client hears
// "421 4.3.2" (textFailed, or stopped at a command), and the relay stops
// only once every session's goroutine has ended. Without this, the
// sessions ran on while the relay exited under them: the client, still
// sending, was reset without a word, the transaction's content file stayed
// in the spool, and the mail log missed its disconnect line.

// cutLinger bounds how long a cut session reads on, and throws away, what
// its client still sends after the 421 (closeSaying): a connection closed
// with unread input is reset, and a client reset while it writes never
// reads the 421.
const cutLinger = 2 * time.Second

// cutWait bounds the wait for the goroutines of the sessions cut; what
// they wait for (a policy service, an upstream, a filter) is cancelled at
// the cut, so they end within cutLinger and a moment.
const cutWait = cutLinger + 3*time.Second

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// cutSessions cuts every session still open and returns how many.
func (s *Server) cutSessions() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for c := range s.conns {
		if tc, ok := c.Conn.(*trackedConn); ok {
			tc.cutShort()
		}
	}
	return len(s.conns)
}

// cutShort makes every read of the connection fail from now on, a read
// under way too, whatever deadline the session sets later.
func (c *trackedConn) cutShort() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.cut = true
	c.Conn.SetReadDeadline(aLongTimeAgo)
}

func (c *trackedConn) wasCut() bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.cut
}

// SetReadDeadline sets the connection's read deadline, unless the session
// was cut.
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.cut {
		return c.Conn.SetReadDeadline(aLongTimeAgo)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines; the read one as SetReadDeadline.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// linger ends the output of a session cut (after its 421) and reads what
// the client still sends until it closes, or for cutLinger at most, so
// that the connection is closed without a reset.
func (c *trackedConn) linger() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		return
	}
	c.dmu.Lock()
	c.Conn.SetReadDeadline(time.Now().Add(cutLinger))
	c.dmu.Unlock()
	io.Copy(io.Discard, c.Conn)
}

// shutdownText is the reply of a session cut by a shutdown, else "".
func (c *commandConn) shutdownText() string {
	if tc, ok := c.Conn.(*trackedConn); ok && c.srv.stopping.Load() && tc.wasCut() {
		return "421 4.3.2 " + c.srv.opts.Domain + " Error: service shutting down"
	}
	return ""
}
