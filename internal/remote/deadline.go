package remote

import "time"

// deadline sets the connection's deadline with set (its SetReadDeadline,
// SetWriteDeadline or SetDeadline) to t, the zero time for none, unless
// the context of the Dial or SendAhead under way has ended. That end set
// a deadline in the past (context.AfterFunc), which a deadline set after
// it would replace: a shutdown's "stop now" (deliver's Hurry, the end of
// the grace) that came while the message text went out was lost, and the
// delivery waited out the upstream's reply timeout. Looked at after the
// set, the end is never lost: one that comes later sets its own deadline
// after this one.
func (c *Conn) deadline(set func(time.Time) error, t time.Time) {
	set(t)
	if c.ctx != nil && c.ctx.Err() != nil {
		c.nc.SetDeadline(time.Now())
	}
}
