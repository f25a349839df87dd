// Package pop3 serves the spool over POP3 (RFC 1939, with CAPA from RFC
// 2449, STLS from RFC 2595 and AUTH PLAIN from RFC 5034), as E-MailRelay's
// --pop does: a client logs in and downloads, and perhaps deletes, the
// messages waiting in the spool (or, with ByName, in SPOOL/USER/).
//
// # Invariants and failure behaviour
//
// A maildrop is a spool directory; its messages are the envelopes in state
// Ready (ID.envelope) with their ID.content. A session holds an flock(2) on
// a lock file in that directory from login to the end, so one maildrop has
// at most one session, in this process or another. DELE only marks a
// message; the spool changes only when the client says QUIT (RFC 1939's
// UPDATE state), and then each message is removed through the spool's own
// lock (spool.Lock, then Delete), so a message a forwarder is delivering is
// never removed under it: it is left, logged, and QUIT answers -ERR. A
// session that ends any other way (the connection drops, the idle timeout,
// Shutdown) removes nothing. With NoDelete nothing is ever removed.
//
// With ByName no user name reaches a path outside its own directory under
// the spool: names with '/', '\', "..", a leading '.' or control characters
// are refused, and the directory, links resolved, must lie inside the spool.
package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/connlimit"
)

// Throttle limits failed logins per client address, across connections
// and across services: the relay gives POP3 the SMTP server's
// *auth.Throttle, so that guesses over parallel connections, or over SMTP
// AUTH and POP3 in turn, count together.
type Throttle interface {
	Allow(ip netip.Addr) bool
	// Fail and Succeed name the user tried: a success forgets that
	// user's own failures only.
	Fail(ip netip.Addr, user string)
	Succeed(ip netip.Addr, user string)
	// Serialize waits for ip's turn to check a password, and returns
	// the function that ends it.
	Serialize(ip netip.Addr) (done func())
}

// Authenticator checks a user's password; *auth.Secrets is one.
type Authenticator interface {
	Verify(user, pass string) bool
}

// APOPSecrets gives the passwords APOP digests are made from;
// *auth.Secrets is one.
type APOPSecrets interface {
	// APOPSecret returns user's password, or false if APOP cannot
	// log user in.
	APOPSecret(user string) (secret string, ok bool)
}

// MailLog is the mail log's side of POP3: *maillog.Logger implements it.
type MailLog interface {
	// PopDelete records a message a client removed (DELE, then QUIT).
	PopDelete(id, client, user string)
	// Reject records a failed login, or one refused for too many
	// failures (stage "auth"), as SMTP AUTH's are: fail2ban's
	// relaykeeper-auth filter reads these lines.
	Reject(client, stage, reply string, kv ...string)
}

// Options configure a Server. Only SpoolDir and Auth are required; the zero
// value of every other field is a working default.
type Options struct {
	// SpoolDir is the spool.
	SpoolDir string
	// ByName serves SPOOL/USER/ (created if missing) to USER instead of
	// the spool itself (E-MailRelay's --pop-by-name).
	ByName bool
	// NoDelete makes DELE report success and delete nothing
	// (--pop-no-delete), so that POP clients cannot take mail that is
	// also queued for forwarding.
	NoDelete bool
	// Auth checks USER/PASS and AUTH PLAIN logins.
	Auth Authenticator
	// APOP, if set, enables APOP with the users' passwords.
	APOP APOPSecrets
	// TLSConfig, if set, offers STLS. RequireTLS refuses USER, PASS, APOP
	// and AUTH until STLS has been done.
	TLSConfig  *tls.Config
	RequireTLS bool
	// IdleTimeout ends a session that sends nothing for this long, without
	// deleting anything; 10 minutes if zero (RFC 1939 section 3's minimum).
	IdleTimeout time.Duration
	// Domain ends the APOP timestamp in the greeting, <PID.TIME@Domain>;
	// "localhost" if empty.
	Domain string
	// MaxLineLength bounds a command line, CRLF included; 4096 if zero,
	// well above RFC 2449's 255 octets, for AUTH PLAIN's long lines.
	MaxLineLength int
	// MaxErrors -ERR replies end a session; 10 if zero.
	MaxErrors int
	// MaxAuthFailures failed logins end a session; 3 if zero.
	MaxAuthFailures int
	// FailDelay is the pause before a failed login's reply; 2s if zero,
	// none if negative.
	FailDelay time.Duration
	// Throttle, if set, refuses every login, right password or not, from
	// an address with too many recent failures.
	Throttle Throttle
	// MaxConnections and MaxConnectionsPerIP bound the sessions open at
	// a time, in all and from one address; a client over either hears
	// "-ERR [SYS/TEMP] too many connections" and is disconnected. 0 is no
	// limit.
	MaxConnections      int
	MaxConnectionsPerIP int
	// RemoteClients allows clients beyond loopback and private networks;
	// others are told so and disconnected, as E-MailRelay does without
	// --remote-clients.
	RemoteClients bool
	// MailLog, if set, is told of every message a client removed and
	// of every failed login.
	MailLog MailLog
	// Log receives diagnostics, failed logins included; discarded if nil.
	Log *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Server serves POP3 on any number of listeners.
type Server struct {
	opts    Options
	log     *slog.Logger
	closing atomic.Bool
	lastTS  atomic.Int64 // the last APOP timestamp's time, kept unique
	limit   connlimit.Limiter
	sizes   sizes // the messages' sizes as RETR sends them

	mu        sync.Mutex // guards listeners and sessions
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup // one per session
}

// New returns a Server; Serve starts it on a listener.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.MaxLineLength <= 0 {
		opts.MaxLineLength = 4096
	}
	opts.MaxLineLength = max(opts.MaxLineLength, 256)
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = 10
	}
	if opts.MaxAuthFailures <= 0 {
		opts.MaxAuthFailures = 3
	}
	if opts.FailDelay == 0 {
		opts.FailDelay = 2 * time.Second
	}
	return &Server{
		opts:      opts,
		log:       opts.Log,
		limit:     connlimit.Limiter{Max: opts.MaxConnections, PerIP: opts.MaxConnectionsPerIP},
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
	}
}

// Serve accepts connections on l until Shutdown or Close, after which it
// returns nil. Each connection is served by its own goroutine, which ends
// when the client quits or disconnects, at the idle timeout, or at
// Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	l = connlimit.Listener(l, &s.limit, func(why string) string {
		s.log.Warn("pop3: client refused: " + why)
		return "-ERR [SYS/TEMP] " + why + "; try again later\r\n"
	})

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("pop3: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("pop3: accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.opts.RemoteClients && !localClient(c.RemoteAddr()) {
			s.log.Warn("pop3: remote client refused (--remote-clients)", "client", c.RemoteAddr().String())
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "-ERR remote clients are not allowed\r\n")
			c.Close()
			continue
		}
		sess := newSession(s, c)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.sessions, sess)
				s.mu.Unlock()
			}()
			sess.serve()
		}()
	}
}

// localClient reports whether a client is on loopback, a private network or
// link-local: the clients E-MailRelay serves without --remote-clients, the
// same rule as the SMTP listener's.
func localClient(a net.Addr) bool {
	ip := clientIP(a)
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

func clientIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// temporary reports accept errors worth retrying: too many open files, a
// connection aborted before it was accepted, timeouts.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}

// Shutdown stops accepting, ends the sessions that are waiting for a
// command (they hear "-ERR [SYS/TEMP]" and delete nothing), lets the others
// finish the command they are running (a RETR, the deletions of a QUIT),
// and waits for them until ctx ends; then it closes whatever is left and
// returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once. Sessions
// delete nothing unless they were already in QUIT's UPDATE state.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.closeConn()
	}
	s.mu.Unlock()
	return nil
}

// timestamp returns a fresh APOP timestamp, <PID.TIME@DOMAIN> (RFC 1939
// section 7), with TIME in nanoseconds and made unique within the process.
func (s *Server) timestamp() string {
	now := s.opts.Now().UnixNano()
	for {
		last := s.lastTS.Load()
		t := max(now, last+1)
		if s.lastTS.CompareAndSwap(last, t) {
			return fmt.Sprintf("<%d.%d@%s>", os.Getpid(), t, s.opts.Domain)
		}
	}
}
