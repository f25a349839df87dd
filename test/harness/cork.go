package harness

import (
	"net"
	"sync"
)

// CorkConn holds what is written while corked and sends it in one write
// when uncorked: TLS records written apart reach the peer's socket
// together, as replies do from a server that answers twice at once.
type CorkConn struct {
	net.Conn
	mu    sync.Mutex
	held  []byte
	corks bool
}

func (c *CorkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corks {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Cork starts holding writes (on) or sends what is held in one write.
func (c *CorkConn) Cork(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corks = on
	if !on && len(c.held) > 0 {
		c.Conn.Write(c.held)
		c.held = nil
	}
}
