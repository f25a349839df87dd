// Package connlimit bounds the clients a listener serves at a time, in all
// and from one address, so that a client that opens connections and sends
// nothing cannot take the process's memory and file descriptors (and with
// them the SMTP listener's) for as long as the idle timeout lasts.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limiter counts the connections a listener holds. Max and PerIP of 0 mean
// no limit.
type Limiter struct {
	Max, PerIP int

	mu    sync.Mutex // guards n and perIP
	n     int
	perIP map[netip.Addr]int
}

// Acquire counts a new connection from ip; ok is false, and nothing is
// counted, when the limit or ip's limit is reached (perIP tells which).
func (l *Limiter) Acquire(ip netip.Addr) (ok, perIP bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Max > 0 && l.n >= l.Max {
		return false, false
	}
	if l.PerIP > 0 && l.perIP[ip] >= l.PerIP {
		return false, true
	}
	if l.perIP == nil {
		l.perIP = map[netip.Addr]int{}
	}
	l.n++
	l.perIP[ip]++
	return true, false
}

// Release uncounts a connection Acquire counted.
func (l *Limiter) Release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.perIP[ip] <= 1 {
		delete(l.perIP, ip)
	} else {
		l.perIP[ip]--
	}
}

// Refusal is what a listener writes to a client it turns away, given why
// ("too many connections" or "too many connections from IP"), before it
// closes the connection.
type Refusal func(why string) string

// Listener wraps l: a connection over the limiter's limits hears refuse's
// text and is closed at once, and each connection it returns releases its
// count when closed.
func Listener(l net.Listener, lim *Limiter, refuse Refusal) net.Listener {
	return &listener{Listener: l, lim: lim, refuse: refuse}
}

type listener struct {
	net.Listener
	lim    *Limiter
	refuse Refusal
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		ok, perIP := l.lim.Acquire(ip)
		if ok {
			return &conn{Conn: c, release: sync.OnceFunc(func() { l.lim.Release(ip) })}, nil
		}
		why := "too many connections"
		if perIP {
			why += " from " + ip.String()
		}
		// A few bytes into a new connection's empty send buffer: the
		// deadline only guards against the impossible.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(l.refuse(why)))
		c.Close()
	}
}

type conn struct {
	net.Conn
	release func()
}

// CloseWrite half-closes a TCP connection, for a lingering close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// addrIP is a TCP client's address, IPv4-mapped addresses unmapped; the
// zero Addr for other kinds of address, which then share one count.
func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
