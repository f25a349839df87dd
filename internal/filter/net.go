package filter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/hostport"
	"github.com/relaykeeper/relaykeeper/internal/idleconn"
)

// maxNetReply bounds a network filter's reply line.
const maxNetReply = 10000

// maxIdleConns is how many idle connections a net: filter keeps for reuse.
const maxIdleConns = 4

// splitAddress turns the address part of a net:, spam: or spam-edit:
// specification into a network and an address: an absolute path is a unix
// socket, anything else host:port over TCP.
func splitAddress(spec, addr string) (network, address string, err error) {
	addr = strings.TrimSpace(addr)
	if strings.HasPrefix(addr, "/") {
		return "unix", addr, nil
	}
	if err := hostport.Check(addr); err != nil {
		return "", "", fmt.Errorf("filter: %q: want HOST:PORT or a unix socket path: %w", spec, err)
	}
	return "tcp", addr, nil
}

// netFilter speaks E-MailRelay's network filter protocol: for each message
// it sends the content file's path and a newline, and reads one line back,
// "ok" or "[CODE ]TEXT[<TAB>REASON]" (parseNetReply). Connections are kept
// open between messages, as in E-MailRelay, and several messages may be
// filtered at once over separate connections.
type netFilter struct {
	spec             string
	network, address string
	timeout          time.Duration

	mu     sync.Mutex
	idle   []*netConn // guarded by mu
	closed bool       // guarded by mu
}

type netConn struct {
	c net.Conn
	r *bufio.Reader
}

func newNet(spec, addr string, timeout time.Duration) (*netFilter, error) {
	network, address, err := splitAddress(spec, addr)
	if err != nil {
		return nil, err
	}
	return &netFilter{spec: spec, network: network, address: address, timeout: timeout}, nil
}

func (n *netFilter) String() string { return n.spec }

// Close closes the idle connections; a Run after Close dials afresh and
// does not keep its connection.
func (n *netFilter) Close() error {
	n.mu.Lock()
	idle := n.idle
	n.idle, n.closed = nil, true
	n.mu.Unlock()
	for _, nc := range idle {
		nc.c.Close()
	}
	return nil
}

func (n *netFilter) Run(ctx context.Context, contentPath, _ string) Result {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req := absPath(contentPath)
	// A kept connection may have been closed by the daemon since; if it
	// fails before any reply, try once more on a new one. Sending a path
	// twice is harmless: the protocol has no other state.
	nc, reused := n.take()
	line, err := n.exchange(ctx, nc, req)
	var retry *notAnswered
	if reused && errors.As(err, &retry) && ctx.Err() == nil {
		line, err = n.exchange(ctx, nil, req)
	}
	if err != nil {
		return tempFail("net filter %s: %v", n.address, err)
	}
	return parseNetReply(line)
}

// notAnswered marks an exchange that failed before a byte of reply came.
type notAnswered struct{ err error }

func (e *notAnswered) Error() string { return e.err.Error() }
func (e *notAnswered) Unwrap() error { return e.err }

// exchange sends req over nc (or a new connection if nc is nil), reads the
// reply line and puts the connection back for reuse if all went well.
func (n *netFilter) exchange(ctx context.Context, nc *netConn, req string) (string, error) {
	if nc == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, n.network, n.address)
		if err != nil {
			return "", err
		}
		nc = &netConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	}
	// The deadline covers the whole exchange; ctx ending interrupts it too.
	deadline, _ := ctx.Deadline()
	nc.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.c.SetDeadline(time.Unix(1, 0)) })
	line, err := readReply(nc, req)
	stopped := stop()
	if err != nil {
		nc.c.Close()
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %v", ctx.Err(), err)
		}
		return "", err
	}
	if !stopped {
		// ctx ended just as the reply came: the answer stands, but the
		// connection's deadline is spoilt.
		nc.c.Close()
		return line, nil
	}
	nc.c.SetDeadline(time.Time{})
	n.put(nc)
	return line, nil
}

func readReply(nc *netConn, req string) (string, error) {
	if _, err := io.WriteString(nc.c, req+"\n"); err != nil {
		return "", &notAnswered{err}
	}
	var b []byte
	for {
		chunk, err := nc.r.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxNetReply {
			return "", fmt.Errorf("reply longer than %d bytes", maxNetReply)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(b) == 0 {
			return "", &notAnswered{err}
		}
		return "", fmt.Errorf("incomplete reply %q: %w", oneLine(string(b)), err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (n *netFilter) take() (*netConn, bool) {
	for {
		n.mu.Lock()
		if len(n.idle) == 0 {
			n.mu.Unlock()
			return nil, false
		}
		nc := n.idle[len(n.idle)-1]
		n.idle = n.idle[:len(n.idle)-1]
		n.mu.Unlock()
		if !idleconn.Stale(nc.c, nc.r) {
			return nc, true
		}
		nc.c.Close()
	}
}

func (n *netFilter) put(nc *netConn) {
	n.mu.Lock()
	// A connection with more bytes waiting is out of step with us (the
	// daemon sent more than one line) and must not be used again.
	if n.closed || len(n.idle) >= maxIdleConns || nc.r.Buffered() > 0 {
		n.mu.Unlock()
		nc.c.Close()
		return
	}
	n.idle = append(n.idle, nc)
	n.mu.Unlock()
}
