// Package admin is relaykeeper's administration interface: E-MailRelay's
// line protocol on one listener (ServeText) and a JSON API over HTTP on
// another (ServeAPI), both over the running relay and its spool.
//
// # Security
//
// Both front ends can delete mail and stop the relay, so a listener that is
// not on a loopback address (or a Unix socket) is refused unless
// Options.Password is set; with a password, every text session must send
// "password SECRET" first and every HTTP request must carry it as a Bearer
// token, compared in constant time. Without a password the HTTP API also
// refuses requests whose Host is not a loopback name (DNS rebinding) and
// cross-origin browser requests (CSRF), and the text protocol hangs up on
// anything that looks like an HTTP request, so that a web page cannot drive
// either through the administrator's browser.
//
// # Concurrency
//
// A Server serves any number of listeners of either kind. Every text session
// runs in its own goroutine, which ends when the client quits, the
// connection fails or times out, or Shutdown closes it; a session in notify
// mode has a second goroutine that writes events and ends with the session.
// One flush runs at a time, server-wide: a second one is told "still
// working" instead of starting a parallel forwarding run.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/connlimit"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// Relay is what the admin interface needs from the running relay. Its
// methods are called from many goroutines at once.
//
// A Relay may also implement SMTPSwitch, DNSBLSwitch and Terminator; the
// commands that need them answer "not supported" when it does not.
type Relay interface {
	// Forward asks the relay to re-read the spool (envelopes changed by
	// other processes included) and start forwarding everything due, as a
	// poll tick does, without waiting. It returns an error only when the
	// relay cannot forward at all (no upstream configured).
	Forward() error
	// Flush tries every ready message once now, whatever its back-off
	// says, and returns when all the attempts have ended: nil, or an
	// error whose text is shown to the administrator. It gives up when
	// ctx ends, leaving the remaining messages in the spool.
	Flush(ctx context.Context) error
	// Status returns the relay's counters. It must not block.
	Status() Status
}

// SMTPSwitch is implemented by a Relay whose SMTP listeners can be paused:
// E-MailRelay's "smtp disable", which gives new sessions 421 while sessions
// under way finish.
type SMTPSwitch interface {
	SetSMTP(enabled bool)
}

// DNSBLSwitch is implemented by a Relay whose DNSBL checks can be turned
// off and on again. SetDNSBL fails, changing nothing, when the relay has
// no DNSBL check to turn (no --dnsbl).
type DNSBLSwitch interface {
	SetDNSBL(enabled bool) error
}

// Terminator is implemented by a Relay that can be stopped from the admin
// interface. Terminate must not block: it starts the relay's ordinary
// shutdown, which in turn calls Server.Shutdown.
type Terminator interface {
	Terminate()
}

// Throttle limits wrong passwords per client address, across connections
// and across both front ends (*auth.Throttle, one of the admin password's
// own). A right password does not clear the count: behind a TLS proxy or
// an SSH tunnel every client has the proxy's address, and the dashboard's
// refresh would give a guesser there a fresh count every few seconds.
type Throttle interface {
	Allow(ip netip.Addr) bool
	Fail(ip netip.Addr, user string) // user: "" (the admin password has none)
	// Serialize waits for ip's turn to check a password, and returns
	// the function that ends it.
	Serialize(ip netip.Addr) (done func())
}

// Subscriber hands out event streams for the "notify" command. Events
// implements it.
type Subscriber interface {
	// Subscribe returns a channel of event lines (no line endings) and a
	// function that ends the subscription and closes the channel.
	Subscribe() (events <-chan string, cancel func())
}

// Status is a snapshot of the relay's counters. Zero values mean "not
// known" or "none"; the queue's sizes come from the spool, not from here.
type Status struct {
	// Started is when the relay started; uptime is counted from it.
	Started time.Time
	// Listeners are the addresses the relay listens on, as "role=addr"
	// or a bare address for SMTP.
	Listeners []string
	// SMTPEnabled is false while "smtp disable" is in force.
	SMTPEnabled bool
	// DNSBLEnabled is true while DNSBL checks run.
	DNSBLEnabled bool
	// Sessions is the number of SMTP sessions open now; Connections is
	// the number accepted since the start.
	Sessions    int
	Connections uint64
	// Messages accepted since the start (into the spool, or relayed by
	// the proxy), and recipients forwarded and failed for good.
	Accepted, Forwarded, Failed uint64
}

// Options configures a Server. Spool is required; the rest may be left zero.
type Options struct {
	// Relay is the running relay. Nil makes forward and flush fail.
	Relay Relay
	// Spool is the relay's spool, which list, failures, unfail-all and
	// the queue endpoints read and change through package queue.
	Spool *spool.Spool
	// Events feeds the "notify" command, usually an *Events that the mail
	// log also writes to. Nil makes notify fail.
	Events Subscriber
	// AllowTerminate allows the "terminate" command (E-MailRelay's
	// --admin-terminate); Relay must also implement Terminator.
	AllowTerminate bool
	// Password, when set, must be given by every client. It is required
	// to serve on a listener that is not on a loopback address.
	Password string
	// RemoteClients allows clients beyond loopback and private networks
	// (E-MailRelay's --remote-clients); others are disconnected (text) or
	// refused with 403 (HTTP), password or not.
	RemoteClients bool
	// Throttle, if set, refuses every password, right or not, from an
	// address with too many wrong ones lately, and counts the wrong ones.
	Throttle Throttle
	// Version is the relay's release, which "info version" shows.
	Version string
	// Prompt is written after every reply of the text protocol.
	// Defaults to DefaultPrompt, which scripts written for E-MailRelay
	// wait for.
	Prompt string
	// ErrorLimit is how many unknown or refused commands a text session
	// may send before it is closed. Defaults to DefaultErrorLimit.
	ErrorLimit int
	// IdleTimeout closes a text session that sends nothing for this long,
	// except in notify mode. Defaults to DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxConnections and MaxConnectionsPerIP bound the connections each
	// front end (the text protocol, the HTTP API) holds at a time, in all
	// and from one address; a client over either is told so and
	// disconnected. Default to DefaultMaxConnections and
	// DefaultMaxConnectionsPerIP; negative is no limit.
	MaxConnections      int
	MaxConnectionsPerIP int
	// Metrics, if set, is served at GET /metrics on the HTTP API, behind
	// the same password as the rest.
	Metrics http.Handler
	// Bans and Blocks, if set, are listed and changed by the dashboard and
	// /api/bans, /api/blocks.
	Bans   BanStore
	Blocks BlockStore
	// Welcome, if set, is the welcomelist: a ban of an address on it is
	// listed "not applied: welcomelisted", as bans list does, since the
	// relay ignores it while the address is listed.
	Welcome Welcomer
	// Live and Traffic feed the dashboard's actions, alerts, rates and
	// plot; Pacer its destinations' paces. Each may be nil.
	Live    Live
	Traffic Traffic
	Pacer   Pacer
	// Threshold is the rejection-rate alert threshold the dashboard
	// shows; zero means stats.DefaultThreshold.
	Threshold stats.Threshold
	// Log receives diagnostics: sessions, commands that change anything,
	// refused passwords. Defaults to discarding them.
	Log *slog.Logger
	// Now is the clock for uptime; defaults to time.Now.
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultPrompt      = "E-MailRelay> "
	DefaultErrorLimit  = 30 // as E-MailRelay 2.5
	DefaultIdleTimeout = 10 * time.Minute

	DefaultMaxConnections      = 200
	DefaultMaxConnectionsPerIP = 50
)

// Errors returned by the Serve methods.
var (
	// ErrServerClosed is returned by ServeText and ServeAPI after
	// Shutdown or Close.
	ErrServerClosed = errors.New("admin: server closed")
	// ErrPasswordRequired is returned when asked to serve on a listener
	// that is not on a loopback address without a password.
	ErrPasswordRequired = errors.New("admin: a password is required to listen on a non-loopback address")
)

// Server serves the admin interface. Create it with New.
type Server struct {
	opts     Options
	relay    Relay
	log      *slog.Logger
	handler  http.Handler
	flushing atomic.Bool // a flush is under way, from any session or request
	// csrfToken is the dashboard's token for requests that change
	// something; made at New, never changed.
	csrfToken string

	// ctx ends on Shutdown or Close; flushes and notify streams run
	// under it, so that shutting down does not wait for them.
	ctx    context.Context
	cancel context.CancelFunc

	// afterFunc runs f after d, for "dnsbl stop N"; tests replace it.
	afterFunc func(d time.Duration, f func()) (stop func() bool)

	// textLimit and httpLimit count each front end's connections.
	textLimit, httpLimit connlimit.Limiter

	mu         sync.Mutex // guards the fields below
	closing    bool
	listeners  map[net.Listener]struct{}
	sessions   map[*session]struct{}
	httpSrvs   map[*http.Server]struct{}
	dnsblTimer func() bool // stops the pending re-enable, if any
	dnsblGen   uint64      // bumped by every dnsbl command

	wg sync.WaitGroup // text sessions
}

// New returns a Server. It panics if opts.Spool is nil.
func New(opts Options) *Server {
	if opts.Spool == nil {
		panic("admin: Options.Spool is nil")
	}
	if opts.Prompt == "" {
		opts.Prompt = DefaultPrompt
	}
	if opts.ErrorLimit <= 0 {
		opts.ErrorLimit = DefaultErrorLimit
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxConnectionsPerIP == 0 {
		opts.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	s := &Server{
		opts:      opts,
		relay:     opts.Relay,
		log:       opts.Log,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		httpSrvs:  map[*http.Server]struct{}{},
		afterFunc: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
	}
	for _, l := range []*connlimit.Limiter{&s.textLimit, &s.httpLimit} {
		l.Max, l.PerIP = max(opts.MaxConnections, 0), max(opts.MaxConnectionsPerIP, 0)
	}
	if s.relay == nil {
		s.relay = noRelay{}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.csrfToken = newCSRFToken()
	s.handler = s.newHandler()
	return s
}

// ErrForwardOnce is what Relay.Forward returns when the relay has an
// upstream but runs no forwarding of its own (no --poll, no
// --forward-on-disconnect): "forward" is then the trigger, as in
// E-MailRelay, and the admin interface flushes the spool once, in the
// background. Other callers of Forward (after unfail-all) forward nothing.
var ErrForwardOnce = errors.New("the relay forwards only when told to")

// noRelay stands in for a missing Relay.
type noRelay struct{}

var errNoRelay = errors.New("no relay is attached to the admin interface")

func (noRelay) Forward() error              { return errNoRelay }
func (noRelay) Flush(context.Context) error { return errNoRelay }
func (noRelay) Status() Status              { return Status{} }

// requirePassword reports whether clients must give the password.
func (s *Server) requirePassword() bool { return s.opts.Password != "" }

// terminator returns the Relay's Terminator if terminate is allowed.
func (s *Server) terminator() (Terminator, bool) {
	t, ok := s.relay.(Terminator)
	return t, ok && s.opts.AllowTerminate
}

// CheckListener returns ErrPasswordRequired for a listener that is not on
// a loopback address when no password is set, as ServeText and ServeAPI
// do; main calls it to refuse such a configuration before starting.
func (s *Server) CheckListener(l net.Listener) error {
	if s.opts.Password == "" && !isLoopback(l.Addr()) {
		return fmt.Errorf("%w (%s): set --admin-password-file, or listen on 127.0.0.1", ErrPasswordRequired, l.Addr())
	}
	return nil
}

// tryPassword checks a password from addr with check, in addr's turn
// (Throttle.Serialize) and only while the throttle lets addr try one:
// allowed is false, and check not run, when it does not.
func (s *Server) tryPassword(addr netip.Addr, check func() bool) (allowed, ok bool) {
	t := s.opts.Throttle
	if t == nil {
		return true, check()
	}
	defer t.Serialize(addr)()
	if !t.Allow(addr) {
		return false, false
	}
	if ok = check(); !ok {
		t.Fail(addr, "") // kept until the window passes, right passwords or not (Throttle)
	}
	return true, ok
}

// addrIP is the IP of a client address ("ip:port"); the zero Addr for
// another kind (a Unix socket).
func addrIP(a string) netip.Addr {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// clientAllowed applies the remote-clients rule to a client's address.
func (s *Server) clientAllowed(a net.Addr) bool {
	if s.opts.RemoteClients {
		return true
	}
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	case *net.UnixAddr:
		return true
	}
	return false
}

// isLoopback reports whether a is a loopback TCP address or a Unix socket,
// which file permissions protect. An unspecified address (0.0.0.0, ::)
// listens on every interface and is not loopback.
// DialAddr is where a browser on this host reaches a listener at a: the
// address itself, or loopback for a wildcard one (0.0.0.0, [::]), whose
// own name no browser can open.
func DialAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port))
	}
	return a.String()
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// track registers l so that Shutdown closes it; false when shutting down.
func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

// textAddrs lists the text protocol's listeners, "admin=ADDR", sorted.
func (s *Server) textAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for l := range s.listeners {
		out = append(out, "admin="+l.Addr().String())
	}
	slices.Sort(out)
	return out
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops the server: it closes the listeners, ends flushes and
// notify streams under way, closes text sessions as soon as they wait for a
// command (a command being carried out still gets its reply) and shuts the
// HTTP servers down. It waits for all that until ctx ends, then closes what
// is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	return errors.Join(s.shutdown(ctx)...)
}

// Close stops the server at once: Shutdown without waiting for anything.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errs []error
	for _, err := range s.shutdown(ctx) {
		if !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) shutdown(ctx context.Context) []error {
	s.mu.Lock()
	s.closing = true
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	// A deadline in the past makes the read a session is blocked in, or
	// its next one, fail; its writes still go through.
	for ss := range s.sessions {
		ss.conn.SetReadDeadline(time.Unix(1, 0))
	}
	srvs := make([]*http.Server, 0, len(s.httpSrvs))
	for h := range s.httpSrvs {
		srvs = append(srvs, h)
	}
	if s.dnsblTimer != nil {
		s.dnsblTimer()
		s.dnsblTimer = nil
	}
	s.mu.Unlock()
	s.cancel()

	for _, h := range srvs {
		if err := h.Shutdown(ctx); err != nil {
			h.Close()
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for ss := range s.sessions {
			ss.conn.Close()
		}
		s.mu.Unlock()
		<-done
		errs = append(errs, ctx.Err())
	}
	return errs
}
