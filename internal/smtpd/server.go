// Package smtpd is relaykeeper's SMTP listener: it decides who may connect,
// reads each client's commands under RFC 5321's limits (command.go) and runs
// the good ones on go-smtp, writes accepted messages to the spool (or,
// as a proxy, relays each transaction to the upstream as it happens), and
// turns every decision into the exact SMTP reply the client hears.
//
// A message is acknowledged with 250 only after spool.Writer.Commit has
// returned; in proxy mode, only after the upstream said 250, with the
// upstream's own reply. The client hears exactly one reply to its message,
// after the final dot, whatever went wrong while it was read; a storage
// failure is 452 4.3.1 for a full disk, 451 4.3.0 for any other
// (storageReply), and nothing of the message is kept.
package smtpd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/anvil"
	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/rdns"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Options configure a Server.
type Options struct {
	// Context, if set, is the parent of the context of every call a
	// session makes on a client's behalf (policy and its DNSBL and
	// verifier lookups, the proxy's dial, filters, the enforcer): ending
	// it cancels them. Shutdown cancels them too when its grace is over.
	Context context.Context
	// Domain is our name in the greeting and in Received headers.
	Domain string
	// Myorigin, if set, is the domain an unqualified sender
	// (MAIL FROM:<root>) gets, as Postfix's append_at_myorigin gives it;
	// unset, such a sender is refused (504 5.5.2).
	Myorigin string
	// ClientCAs, if set, are the CAs a client certificate is verified
	// against for permit_tls_all_clientcerts (smtpd_tls_CAfile).
	ClientCAs *x509.CertPool
	// Banner is the greeting's text (Postfix's smtpd_banner, with
	// $myhostname and $mail_name); empty for go-smtp's.
	Banner         string
	MaxMessageSize int64
	MaxRecipients  int
	// IdleTimeout is how long to wait for the client's next command.
	IdleTimeout time.Duration
	// TransactionTimeout bounds MAIL to the final reply.
	TransactionTimeout time.Duration
	// RemoteClients allows clients beyond loopback and private networks.
	RemoteClients bool
	Spool         *spool.Spool
	// Proxy, if set, makes every transaction go to the upstream as it
	// happens instead of being stored.
	Proxy *Proxy
	// KickOnDisconnect, if set, is kicked when a client's connection
	// ends (--forward-on-disconnect).
	KickOnDisconnect Kicker
	Log              *slog.Logger
	MailLog          *maillog.Logger
	// Now is the clock for Received headers; time.Now if nil.
	Now func() time.Time

	// TLSConfig, if set, offers STARTTLS; with ImplicitTLS every
	// connection speaks TLS from the first byte instead.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// RequireTLS refuses AUTH, MAIL and the commands of tlsFirst before TLS.
	RequireTLS bool
	// Auth, if set, offers SMTP AUTH; RequireAuth refuses MAIL without it
	// (submission).
	Auth              Authenticator
	RequireAuth       bool
	AllowInsecureAuth bool
	Throttle          AuthThrottle
	// AuthenticatedHeader names the login in the Received header
	// (Postfix's smtpd_sasl_authenticated_header).
	AuthenticatedHeader bool
	// Policy decides about senders and recipients; nil permits all (the
	// E-MailRelay default, with only local clients let in).
	Policy Checker
	// MaxConnections and MaxConnectionsPerIP bound concurrent clients;
	// zero means no bound.
	MaxConnections      int
	MaxConnectionsPerIP int
	// HardErrorLimit refused commands end a session; zero means 20
	// (Postfix's smtpd_hard_error_limit).
	HardErrorLimit int
	// JunkCommandLimit NOOP, VRFY and RSET commands are free; each one
	// beyond counts as an error. Zero means 100 (Postfix's
	// smtpd_junk_command_limit).
	JunkCommandLimit int
	// Rates, if set, bounds each client's connection, message and
	// recipient rates (Postfix's anvil); LimitExempt are exempt.
	Rates *anvil.Anvil
	// LimitExempt, if set, exempts clients from MaxConnectionsPerIP:
	// trusted networks, as Postfix's smtpd_client_event_limit_exceptions.
	LimitExempt TrustedNetworks
	// Bans, if set, refuses banned clients at connect time.
	Bans Bans
	// Enforcer, if set, sees every upstream refusal in proxy mode.
	Enforcer Enforcer
	// Pacer, if set, hears every upstream refusal in proxy mode and
	// says when the upstream asked the relay to slow down: no client's
	// transaction opens a session with it until then.
	Pacer Pacer
	// Notices, if set, queues in proxy mode the "relayed" notices owed
	// for a message the upstream took without offering DSN (RFC 3461
	// section 5.2.2.2), since no one further on will send them.
	Notices Notices
	// Filter, if set, runs on every message after it is written and
	// before the client hears the reply to its final dot (--filter).
	// KickOnRescan is kicked when a filter asks for the spool to be
	// forwarded now (E-MailRelay's exit 103).
	Filter       filter.Filter
	KickOnRescan Kicker
	// Reinject makes this the after-queue content filter's return path
	// (Postfix's 10026): messages are marked filtered, their original
	// client is read back from the X-Relaykeeper-Original-Client header
	// the relay added, and only loopback clients are served.
	Reinject bool
	// DebugPeer, if set, says which clients get their whole SMTP
	// conversation in the diagnostic log (Postfix's debug_peer_list).
	DebugPeer DebugPeers
	// Names, if set, looks up each client's forward-confirmed host name
	// when it connects, for the Received header, the mail log's connect
	// line, the policy's and the enforcer's welcomelist's name patterns.
	Names ClientNamer
	// SRS, if set, reads the relay's own SRS recipients (bounces to the
	// senders it rewrote) back to the addresses they stand for, after the
	// policy has accepted them.
	SRS SRSReverser
	// HeaderChecks, if set, applies Postfix header_checks and body_checks
	// to every message as it is received.
	HeaderChecks *headercheck.Checks
	// Canonical, if set, maps the envelope's addresses (Postfix's
	// canonical_maps) after the policy has accepted them, and the
	// header's for the clients HeaderRewriteClients names
	// (local_header_rewrite_clients).
	Canonical            *rewrite.Canonical
	HeaderRewriteClients []string
	// Memory, if set, is told of every session that opens and closes
	// (*memlimit.Budget: the runtime's memory limit follows the load).
	Memory SessionBudget
}

// SessionBudget counts open sessions, across all of a process's servers.
type SessionBudget interface {
	SessionOpened()
	SessionClosed()
}

// ClientNamer finds a client's forward-confirmed host name, "" if it has
// none, its first PTR name and whether DNS failed (internal/rdns.Resolver).
type ClientNamer interface {
	Lookup(ctx context.Context, ip netip.Addr) rdns.Names
}

// SRSReverser reads an SRS address back (internal/srs.Rewriter): mine is
// false for an address that is not one of the relay's, err is set for one
// that is but does not verify.
type SRSReverser interface {
	Reverse(addr string) (orig string, mine bool, err error)
}

// Enforcer acts on an upstream's refusal of a proxied transaction and may
// change what the client hears (relay-enforcer's reply rewriting).
type Enforcer interface {
	ProxyRefusal(ctx context.Context, r *ProxyRefusal) reply.Reply
}

// Notices queues delivery status notifications (deliver.Scheduler).
type Notices interface {
	Notify(k bounce.Kind, env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) error
}

// ProxyRefusal is an upstream refusal seen while proxying.
type ProxyRefusal struct {
	// ID is the message's id, as on its proxy line; "" for a refusal
	// at MAIL or RCPT, before there is a message.
	ID         string
	Client     netip.Addr
	ClientAddr string
	// ClientName is the client's confirmed host name; "" if unknown or
	// not looked up.
	ClientName string
	Helo       string
	AuthID     string
	From       string
	// To are the recipients concerned: the one refused at RCPT, or all
	// accepted ones at end of data.
	To []string
	// Stage is "mail", "rcpt" or "data".
	Stage string
	Reply reply.Reply
	// ContentPath is the message's content, for a refusal at end of data.
	ContentPath string
	Relay       string
}

// Kicker starts a delivery pass over the spool now; *deliver.Scheduler
// is one. force is false here: messages waiting for a retry keep waiting.
type Kicker interface {
	Kick(force bool)
}

// TrustedNetworks says which clients are trusted (mynetworks);
// *policy.Engine is one.
type TrustedNetworks interface {
	Trusted(ip netip.Addr) bool
}

// Pacer is a proxy's pace with its upstream; *deliver.ProxyPace is one.
// Signal hears an upstream's refusal (stage as ProxyRefusal's); Paused
// says until when no session may go to the upstream, and why.
type Pacer interface {
	Signal(stage string, rep reply.Reply) bool
	Paused() (until time.Time, why string, paused bool)
}

// Bans are the enforcer's banned clients, refused at connect time;
// *enforce.Bans is one. name is the client's verified host name, ""
// when not known: the welcomelist may name the client by it, and no ban
// holds a welcomelisted client.
type Bans interface {
	BannedClient(ip netip.Addr, name string) (enforce.BanEntry, bool)
	// DueClient also reports a ban yet to take effect: the mail a
	// client submits between its ban and the ban's start is held.
	DueClient(ip netip.Addr, name string) (enforce.BanEntry, bool)
	// NamesSpare reports whether a name may spare a banned client: it
	// is then refused at its greeting, once its name is known, rather
	// than at once.
	NamesSpare() bool
}

// DebugPeers says which clients have their conversation traced
// (Postfix's debug_peer_list); *debugpeer.List is one.
type DebugPeers interface {
	Client(ip netip.Addr) bool
	// Content says whether the message content of a traced client is
	// traced too (not for clients traced only by --verbose).
	Content(ip netip.Addr) bool
}

// Authenticator is the password store, as the server needs it.
type Authenticator interface {
	// Mechanisms lists the SASL mechanisms to offer.
	Mechanisms(tlsActive bool) []string
	// Server starts a SASL exchange; onSuccess gets the identity.
	Server(mech string, onSuccess func(identity string)) (sasl.Server, error)
}

// AuthThrottle limits failed logins per client IP; *auth.Throttle is one.
type AuthThrottle interface {
	Allow(ip netip.Addr) bool
	// Fail and Succeed name the user tried ("" if unknown): a success
	// forgets that user's own failures only.
	Fail(ip netip.Addr, user string)
	Succeed(ip netip.Addr, user string)
	// Serialize waits for ip's turn to check a password, and returns
	// the function that ends it.
	Serialize(ip netip.Addr) (done func())
}

// Checker applies the relay policy.
type Checker interface {
	Check(ctx context.Context, stage policy.Stage, req *policy.Request) policy.Decision
}

// Proxy is the upstream of a proxying server.
type Proxy struct {
	// Addr is "host:port", for logs.
	Addr   string
	Dialer UpstreamDialer
	// MaxIdle bounds the upstream sessions kept open between
	// transactions, and IdleTimeout how long each waits for the next
	// one (upstream.go); zero means 100 and 2 seconds.
	MaxIdle     int
	IdleTimeout time.Duration
}

// UpstreamDialer opens a session with the proxy's upstream;
// *remote.Dialer is one.
type UpstreamDialer interface {
	Dial(ctx context.Context, addr string) (*remote.Conn, error)
}

// Server accepts SMTP on any number of listeners.
type Server struct {
	opts   Options
	log    *slog.Logger
	srv    *smtp.Server
	active atomic.Int64 // open connections
	// started and transactions make each transaction's name for policy
	// services (Postfix's instance attribute).
	started      time.Time
	transactions atomic.Uint64
	// ctx is the context of sessions' calls (Options.Context); cancel
	// ends it at the end of Shutdown or Close.
	ctx    context.Context
	cancel context.CancelFunc
	// upstreams keeps idle upstream sessions (proxy mode only).
	upstreams *upstreamPool

	mu    sync.Mutex // guards perIP
	perIP map[netip.Addr]int
	// stopping is set by Shutdown; conns are the sessions it wakes
	// (stopping.go).
	stopping atomic.Bool
	connsMu  sync.Mutex
	conns    map[*commandConn]struct{}
	// listeners are those given to Serve, closed by Shutdown; guarded
	// by connsMu (stopping.go).
	listeners []net.Listener
	// disabled refuses new sessions (the admin's "smtp disable").
	disabled atomic.Bool
	// proxyBufs holds the proxy's message chunks between messages.
	proxyBufs sync.Pool
	// readers holds client read buffers (*bufio.Reader) between
	// connections (command.go).
	readers sync.Pool
	// copyBufs holds Data's copy buffers (*[copySize]byte) between
	// messages, rather than one new buffer for every message.
	copyBufs sync.Pool
	// credAlertAt is when the proxy last logged an alert line for the
	// relay's own credentials (credentialsAlertDue).
	credAlertMu sync.Mutex
	credAlertAt time.Time
}

// credentialsAlertDue reports whether the proxy may log an alert about the
// relay's own login credentials now (a failed OAuth 2 token refresh): at
// most one a minute, since each client's MAIL meets the same failure, as
// the enforcer limits its session alerts.
func (s *Server) credentialsAlertDue() bool {
	s.credAlertMu.Lock()
	defer s.credAlertMu.Unlock()
	now := time.Now()
	if !s.credAlertAt.IsZero() && now.Sub(s.credAlertAt) < time.Minute {
		return false
	}
	s.credAlertAt = now
	return true
}

const copySize = 32 << 10

// SetEnabled turns the acceptance of new sessions on or off; sessions
// under way go on. E-MailRelay's admin "smtp disable" drains a relay this
// way before maintenance.
func (s *Server) SetEnabled(on bool) { s.disabled.Store(!on) }

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
	opts.Banner = strings.NewReplacer("${myhostname}", opts.Domain, "$myhostname", opts.Domain,
		"${mail_name}", "relaykeeper", "$mail_name", "relaykeeper").Replace(opts.Banner)
	if opts.HardErrorLimit <= 0 {
		opts.HardErrorLimit = 20
	}
	if opts.JunkCommandLimit <= 0 {
		opts.JunkCommandLimit = defaultJunkLimit
	}
	s := &Server{opts: opts, log: opts.Log, perIP: map[netip.Addr]int{}, started: time.Now()}
	parent := opts.Context
	if parent == nil {
		parent = context.Background()
	}
	s.ctx, s.cancel = context.WithCancel(parent)
	if opts.Proxy != nil {
		s.upstreams = newUpstreamPool(opts.Proxy)
	}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = opts.Domain
	// go-smtp refuses a message of exactly MaxMessageBytes octets (its
	// data reader fails when the count reaches the limit, before it sees
	// the final dot) and lets BDAT reach it; so go-smtp has no limit, and
	// the relay applies its own: the command layer advertises it and
	// checks SIZE= (RFC 1870), the session counts the message text
	// (sizeLimit), and a message of exactly the limit is accepted, as by
	// Postfix's message_size_limit.
	srv.MaxRecipients = opts.MaxRecipients
	// go-smtp's line limit applies to message text as well as commands;
	// the command layer (command.go) limits command lines instead, and
	// message text has no line limit, only the size limit.
	srv.MaxLineLength = 0
	srv.ReadTimeout = opts.IdleTimeout
	srv.WriteTimeout = opts.IdleTimeout
	srv.EnableSMTPUTF8 = true
	// DSN parameters are kept in the envelope, honoured in bounces and
	// passed upstream.
	srv.EnableDSN = true
	// TLS is the command layer's, below go-smtp, which sees none: AUTH
	// over plain text is refused by the session instead.
	srv.AllowInsecureAuth = true
	srv.ErrorLog = slogAdapter{opts.Log}
	s.srv = srv
	return s
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.l.Debug("smtp", "msg", sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.l.Debug("smtp", "msg", sprint(v...)) }

// Serve accepts connections on l until Shutdown; a Serve that comes after Shutdown returns at once.
func (s *Server) Serve(l net.Listener) error {
	if !s.serving(l) {
		l.Close()
		return nil // Shutdown came first (stopping.go)
	}
	err := s.srv.Serve(&policyListener{Listener: l, srv: s})
	if errors.Is(err, smtp.ErrServerClosed) || err != nil && s.stopping.Load() {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets sessions finish until ctx ends, then
// cuts whatever is left (stopping.go), and returns once every session's
// goroutine has ended. A transaction cut short was never acknowledged, so
// nothing it carried is lost: the client sends it again.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.cancel()
	if s.upstreams != nil {
		defer s.upstreams.close()
	}
	s.wakeIdle()
	// go-smtp's Shutdown returns when its last session goroutine has.
	wait, stopWaiting := context.WithCancel(context.Background())
	defer stopWaiting()
	done := make(chan error, 1)
	go func() { done <- s.srv.Shutdown(wait) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Grace is over: cancel what sessions wait for (a DNSBL lookup,
		// an upstream), then cut them. The pool closes first, so that
		// the upstream sessions of the sessions cut are ended, not kept.
		s.cancel()
		if s.upstreams != nil {
			s.upstreams.close()
		}
		if n := s.cutSessions(); n > 0 {
			s.log.Warn("shutdown grace over: sessions cut, their clients told 421", "sessions", n)
		}
		select {
		case err = <-done:
		case <-time.After(cutWait):
			stopWaiting()
			<-done
			return fmt.Errorf("sessions still running %v after they were cut", cutWait)
		}
	}
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil // net.ErrClosed: wakeIdle closed the listeners first
	}
	return err
}

// Active is the number of open client connections.
func (s *Server) Active() int64 { return s.active.Load() }

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	cc, _ := c.Conn().(*commandConn)
	ss := &session{s: b.s, conn: c, cc: cc}
	if cc != nil {
		ss.tc, _ = cc.Conn.(*trackedConn)
		cc.sess = ss
	}
	return ss, nil
}
