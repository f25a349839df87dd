// Package idleconn tells whether a kept-open connection to a line-based
// daemon (a net: filter, a net: verifier) is still fit for another request.
package idleconn

import (
	"bufio"
	"errors"
	"net"
	"time"
)

// Stale reports whether the idle connection c, read through r, has
// something to read: a line the daemon wrote after its answer, which
// would be taken as the answer to the next request and put every later one
// out of step, or its close. It waits a millisecond at most (a deadline
// already past would not read at all), and leaves c without a deadline.
func Stale(c net.Conn, r *bufio.Reader) bool {
	if r.Buffered() > 0 {
		return true
	}
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := r.Peek(1)
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
