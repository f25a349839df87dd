package smtpd

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// Upstream session reuse in proxy mode.
//
// Dialling the upstream for every client session (connect, greeting, EHLO,
// perhaps STARTTLS and AUTH, and QUIT at the end) cost more than the
// transaction itself. So a proxying server keeps the sessions its clients
// have finished with, idle, for the next transaction, as Postfix's smtp
// client caches sessions (smtp_connection_cache_time_limit,
// smtp_connection_reuse_time_limit).
//
// Invariants:
//   - A pooled session carries only the relay's own session state: its EHLO
//     name, TLS, its own AUTH login, all the same for every session the
//     Dialer opens. The proxy sends nothing of a client's identity at
//     session level (no XCLIENT, no XFORWARD, no AUTH on the client's
//     behalf); a proxy that did would have to keep such sessions out of the
//     pool or key it by that identity.
//   - A session goes back idle only between transactions: one still in a
//     transaction (the client left after MAIL, RCPT or an upstream refusal
//     of DATA) is sent RSET first and closed if RSET fails.
//   - A session that broke (a network error, a timeout, a malformed reply,
//     a 421) is closed, never pooled.
//   - A session idle for idleTimeout, or older than maxAge, is ended with
//     QUIT; at most maxIdle wait at a time.
//
// A pooled session the upstream has closed while it was idle, or on which
// it sent something unasked (a second reply to the final dot), is found
// by a peek at its socket when it is taken (remote.Conn.Broken) and
// closed. One closed since shows itself at MAIL; the session then dials a fresh one and says MAIL again, once,
// before the client hears anything (session.upstreamMail).

// The pool's defaults: Postfix's smtp_connection_cache_time_limit (2s) and
// smtp_connection_reuse_time_limit (300s); maxIdle bounds the idle
// sessions, and their buffers, to what 100 busy clients need.
const (
	defaultUpstreamIdle   = 2 * time.Second
	defaultUpstreamMaxAge = 300 * time.Second
	defaultUpstreamMax    = 100
)

// upstreamConn is one session with the upstream, as a client session holds
// it.
type upstreamConn struct {
	*remote.Conn
	born time.Time
	// reused is true for a session taken from the pool, which the
	// upstream may have closed meanwhile.
	reused bool
	// inTx is true from the upstream's 2xx to MAIL until its reply to
	// the final dot or RSET: such a session needs RSET before reuse.
	inTx bool
}

// upstreamPool keeps idle upstream sessions. Its methods are safe for
// concurrent use.
type upstreamPool struct {
	dial    UpstreamDialer
	addr    string
	maxIdle int
	idle    time.Duration
	maxAge  time.Duration

	mu     sync.Mutex // guards the fields below
	conns  []idleUpstream
	timer  *time.Timer // the reaper, while any session is idle
	closed bool
}

type idleUpstream struct {
	c     *upstreamConn
	since time.Time
}

func newUpstreamPool(p *Proxy) *upstreamPool {
	u := &upstreamPool{dial: p.Dialer, addr: p.Addr, maxIdle: p.MaxIdle, idle: p.IdleTimeout, maxAge: defaultUpstreamMaxAge}
	if u.maxIdle == 0 {
		u.maxIdle = defaultUpstreamMax
	}
	if u.idle == 0 {
		u.idle = defaultUpstreamIdle
	}
	return u
}

// get returns an idle session, the one used last, or a new one.
func (u *upstreamPool) get(ctx context.Context) (*upstreamConn, error) {
	now := time.Now()
	u.mu.Lock()
	for len(u.conns) > 0 {
		ic := u.conns[len(u.conns)-1]
		u.conns[len(u.conns)-1] = idleUpstream{}
		u.conns = u.conns[:len(u.conns)-1]
		if now.Sub(ic.since) < u.idle && now.Sub(ic.c.born) < u.maxAge {
			u.mu.Unlock()
			if ic.c.Broken() {
				// The upstream closed it, or sent what no
				// command asked for, while it was idle.
				ic.c.Close()
				u.mu.Lock()
				continue
			}
			ic.c.reused = true
			return ic.c, nil
		}
		// Expired: the reaper has not come round yet.
		u.mu.Unlock()
		ic.c.Quit()
		u.mu.Lock()
	}
	u.mu.Unlock()
	return u.dialFresh(ctx)
}

// dialFresh opens a new session.
func (u *upstreamPool) dialFresh(ctx context.Context) (*upstreamConn, error) {
	c, err := u.dial.Dial(ctx, u.addr)
	if err != nil {
		return nil, err
	}
	return &upstreamConn{Conn: c, born: time.Now()}, nil
}

// put takes a session back from a client session that has no more use for
// it: it waits, idle, for the next transaction, or is ended.
func (u *upstreamPool) put(c *upstreamConn) {
	// Failed, not Broken: Broken's look at the socket would be kept as its
	// answer until the next read or write, and get's look, after the idle
	// time, is the one that can find the upstream's end.
	if c.Failed() {
		c.Close()
		return
	}
	if c.inTx {
		if err := c.Reset(); err != nil || c.Failed() {
			c.Close()
			return
		}
		c.inTx = false
	}
	now := time.Now()
	u.mu.Lock()
	if u.closed || len(u.conns) >= u.maxIdle || now.Sub(c.born) >= u.maxAge {
		u.mu.Unlock()
		c.Quit()
		return
	}
	u.conns = append(u.conns, idleUpstream{c: c, since: now})
	if u.timer == nil {
		u.timer = time.AfterFunc(u.idle, u.reap)
	}
	u.mu.Unlock()
}

// reap ends the sessions idle for too long. It runs on the timer's
// goroutine, which ends with it; it sets the timer again while any session
// is idle.
func (u *upstreamPool) reap() {
	now := time.Now()
	u.mu.Lock()
	// The oldest are first.
	n := 0
	for n < len(u.conns) && now.Sub(u.conns[n].since) >= u.idle {
		n++
	}
	expired := make([]*upstreamConn, n)
	for i := range n {
		expired[i] = u.conns[i].c
	}
	rest := copy(u.conns, u.conns[n:])
	clear(u.conns[rest:])
	u.conns = u.conns[:rest]
	u.timer = nil
	if len(u.conns) > 0 && !u.closed {
		u.timer = time.AfterFunc(u.idle-now.Sub(u.conns[0].since), u.reap)
	}
	u.mu.Unlock()
	for _, c := range expired {
		c.Quit()
	}
}

// close ends every idle session; sessions put back later are ended too.
func (u *upstreamPool) close() {
	u.mu.Lock()
	u.closed = true
	conns := u.conns
	u.conns = nil
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	u.mu.Unlock()
	for _, ic := range conns {
		ic.c.Quit()
	}
}

// idleCount is the number of idle sessions, for tests.
func (u *upstreamPool) idleCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

// dataStage is the stage of the upstream's refusal of a message: "data"
// at the final dot, "data command" when DATA itself was refused, before
// the content went (enforce.BeforeContent).
func (u *upstreamConn) dataStage() string {
	if u.DataRefused() {
		return "data command"
	}
	return "data"
}

// cuttable runs call, an exchange with the upstream on up, and closes up if
// the server's context ends first (a shutdown's cut, stopping.go): a
// session waiting for an upstream that does not answer ends then, its
// client told 451, and does not keep the relay from stopping.
func (s *Server) cuttable(up *upstreamConn, call func() (reply.Reply, error)) (reply.Reply, error) {
	stop := context.AfterFunc(s.ctx, func() { up.Close() })
	rep, err := call()
	if !stop() && err != nil {
		err = errCut // not "use of closed network connection"
	}
	return rep, err
}

var errCut = errors.New("the relay is shutting down")

// paused is the refusal a proxy's client hears while the upstream's
// request to slow down holds (Options.Pacer): a session for this client
// would be one more of the storm the upstream refuses. nil otherwise.
func (ss *session) paused() *smtp.SMTPError {
	if ss.s.opts.Pacer == nil {
		return nil
	}
	until, why, paused := ss.s.opts.Pacer.Paused()
	if !paused {
		return nil
	}
	ss.s.log.Debug("upstream paced; client refused", "client", ss.client(), "until", until, "reply", why)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5},
		Message: "The upstream asked this relay to slow down; try again after " + until.UTC().Format(time.RFC3339)}
}
