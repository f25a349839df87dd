package smtpd

import (
	"errors"
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
