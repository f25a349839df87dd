package sendmail

import (
	"io"
	"net"
	"sync"
	"time"
)

// StdioListener is a net.Listener whose one connection is the standard
// input and output, for -bs: Accept returns it once, then blocks until it
// is closed and returns net.ErrClosed, so that a server's Serve ends with
// the session.
type StdioListener struct {
	conn   *stdioConn
	once   sync.Once
	closed chan struct{}
}

// NewStdioListener makes the listener over r and w; the connection says
// it comes from 127.0.0.1, a local user.
func NewStdioListener(r io.Reader, w io.Writer) *StdioListener {
	l := &StdioListener{closed: make(chan struct{})}
	l.conn = &stdioConn{r: r, w: w, l: l}
	return l
}

// Accept returns the connection once.
func (l *StdioListener) Accept() (net.Conn, error) {
	first := false
	l.once.Do(func() { first = true })
	if first {
		return l.conn, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

// Close ends Accept.
func (l *StdioListener) Close() error {
	l.conn.Close()
	return nil
}

// Addr is the local end.
func (l *StdioListener) Addr() net.Addr { return stdioAddr }

var stdioAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// Done is closed when the session's connection has been closed.
func (l *StdioListener) Done() <-chan struct{} { return l.closed }

type stdioConn struct {
	r       io.Reader
	w       io.Writer
	l       *StdioListener
	closeMu sync.Once
}

func (c *stdioConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *stdioConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *stdioConn) Close() error {
	c.closeMu.Do(func() { close(c.l.closed) })
	return nil
}
func (c *stdioConn) LocalAddr() net.Addr              { return stdioAddr }
func (c *stdioConn) RemoteAddr() net.Addr             { return stdioAddr }
func (c *stdioConn) SetDeadline(time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }
