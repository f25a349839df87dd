package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/anvil"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// Listen opens a TCP listener for a Server whose IdleTimeout is idle. With
// an idle timeout, TCP keep-alives are off: the timeout already ends a
// session whose client has vanished, and Go's keep-alive settings cost four
// setsockopt calls on every connection accepted (a client that sends one
// message per connection pays them for every message). Without one,
// keep-alives stay Go's default.
func Listen(ctx context.Context, addr string, idle time.Duration) (net.Listener, error) {
	var lc net.ListenConfig
	if idle > 0 {
		lc.KeepAlive = -1
	}
	return lc.Listen(ctx, "tcp", addr)
}

// trackedConn is an accepted connection with the bookkeeping the mail log
// needs at disconnect.
type trackedConn struct {
	net.Conn
	srv      *Server
	listener string
	once     sync.Once
	messages atomic.Int32
	// name is the client's confirmed host name, "unknown" without one,
	// and "" when names are not looked up; set before named is closed
	// (nil when names are not looked up).
	name  string
	named chan struct{}
	// reverse and nameTemp are the rest of the lookup (rdns.Names), set
	// with name.
	reverse  string
	nameTemp bool
	// banned: the client was banned at connect, and its name, looked
	// up meanwhile, may welcomelist it; it hears its refusal in place
	// of the greeting unless it does (greetBanned).
	banned bool
	// dmu guards cut, which Shutdown sets at the end of the grace
	// (stopping.go), against the session's own read deadlines.
	dmu sync.Mutex
	cut bool
}

// lookupName finds the client's confirmed name, then logs the connection
// with it. It runs in its own goroutine, which ends with the lookup (its
// resolver's timeout bounds it).
func (c *trackedConn) lookupName(names ClientNamer) {
	n := names.Lookup(context.Background(), addrIP(c.RemoteAddr()))
	c.name, c.reverse, c.nameTemp = n.Name, n.Reverse, n.TempFail
	if c.name == "" {
		c.name = "unknown"
	}
	c.srv.opts.MailLog.Connect(c.RemoteAddr().String(), c.name, c.listener)
	close(c.named)
}

// clientName waits for the client's name: "unknown" without a confirmed
// one, "" when names are not looked up.
func (c *trackedConn) clientName() string {
	if c == nil || c.named == nil {
		return ""
	}
	<-c.named
	return c.name
}

// reverseName waits for the lookup and returns the client's first PTR
// name ("" if none, or if names are not looked up) and whether DNS
// failed temporarily.
func (c *trackedConn) reverseName() (string, bool) {
	if c.clientName() == "" {
		return "", false
	}
	return c.reverse, c.nameTemp
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.clientName() // the connect line first
		c.srv.opts.MailLog.Disconnect(c.RemoteAddr().String(), int(c.messages.Load()))
		c.srv.release(addrIP(c.RemoteAddr()))
		if k := c.srv.opts.KickOnDisconnect; k != nil {
			k.Kick(false)
		}
	})
	return err
}

// policyListener decides at connect time, before the greeting, whether a
// client may talk to us at all; go-smtp only consults the backend at HELO.
type policyListener struct {
	net.Listener
	srv *Server
}

func (l *policyListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := nc.RemoteAddr().String()
		reply, banned, ok := l.srv.allowConnect(nc.RemoteAddr())
		if !ok {
			l.srv.opts.MailLog.Reject(client, "connect", reply)
			l.srv.log.Info("connection refused", "client", client, "reply", reply)
			go l.srv.refuseConn(nc, reply)
			continue
		}
		if dp := l.srv.opts.DebugPeer; dp != nil && dp.Client(addrIP(nc.RemoteAddr())) {
			nc = &traceConn{Conn: nc, log: l.srv.log.With("debug_peer", client), hide: !dp.Content(addrIP(nc.RemoteAddr()))}
		}
		tc := &trackedConn{Conn: nc, srv: l.srv, listener: l.Addr().String(), banned: banned}
		if names := l.srv.opts.Names; names != nil {
			tc.named = make(chan struct{})
			go tc.lookupName(names)
		} else {
			l.srv.opts.MailLog.Connect(client, "", tc.listener)
		}
		return newCommandConn(l.srv, tc), nil
	}
}

// tlsRefusals bounds the TLS handshakes of refused connections at once: a
// flood of connections past the limits must not buy a handshake each.
var tlsRefusals = make(chan struct{}, 32)

// refuseConn writes a refused client its reply and closes the connection,
// off the accept loop: a client that does not read must not stall everyone
// else. On an implicit-TLS port the reply goes over TLS, as Postfix's
// wrapper mode sends it: written in place of the handshake, a banned client
// would hear nothing but a broken handshake.
func (s *Server) refuseConn(nc net.Conn, reply string) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	w := nc
	if s.opts.ImplicitTLS && s.opts.TLSConfig != nil {
		select {
		case tlsRefusals <- struct{}{}:
			defer func() { <-tlsRefusals }()
		default:
			return // a flood of refused clients: no handshake for each
		}
		tc := tls.Server(nc, s.opts.TLSConfig)
		if tc.Handshake() != nil {
			return
		}
		w = tc
	}
	w.Write([]byte(reply + "\r\n"))
}

// allowConnect applies the connect-time policy and returns the reply for a
// refused client. A banned client whose verified host name may put it on
// the welcomelist (Bans.NamesSpare) is let in as banned: its name is
// looked up, as any client's is when the list has a host-name pattern,
// and decides at its greeting (greetBanned). The lookup is never made
// here, where a slow DNS answer would hold up every client behind it.
func (s *Server) allowConnect(a net.Addr) (reply string, banned, ok bool) {
	ip := addrIP(a)
	if s.disabled.Load() {
		return "421 4.3.2 " + s.opts.Domain + ": service not available, closing transmission channel", false, false
	}
	if s.opts.Reinject && !ip.IsLoopback() {
		return "554 5.7.1 " + s.opts.Domain + ": the content filter's return path serves loopback only", false, false
	}
	if !s.opts.RemoteClients && !IsLocal(ip) {
		return "554 5.7.1 " + s.opts.Domain + ": connections from " + ip.String() +
			" are not accepted: this relay serves local and private-network clients only", false, false
	}
	if s.opts.Bans != nil && !s.opts.Reinject {
		// The content filter's return path: its peer is the filter,
		// not the client, whose ban holds its mail at the final dot.
		if b, isBanned := s.opts.Bans.BannedClient(ip, ""); isBanned {
			if s.opts.Names == nil || !s.opts.Bans.NamesSpare() {
				return "554 5.7.1 " + s.bannedText(ip, b), false, false
			}
			banned = true
		}
	}
	// Counted here and released when the connection closes.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxConnections > 0 && s.active.Load() >= int64(s.opts.MaxConnections) {
		return "421 4.7.0 " + s.opts.Domain + ": too many connections; try again later", false, false
	}
	if s.opts.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnectionsPerIP &&
		(s.opts.LimitExempt == nil || !s.opts.LimitExempt.Trusted(ip)) {
		return "421 4.7.0 " + s.opts.Domain + ": too many connections from " + ip.String() + "; try again later", false, false
	}
	if !s.withinRate(ip, anvil.Connect) {
		return "421 4.7.0 " + s.opts.Domain + " Error: too many connections from " + ip.String(), false, false
	}
	s.perIP[ip]++
	s.active.Add(1)
	if s.opts.Memory != nil {
		s.opts.Memory.SessionOpened()
	}
	return "", banned, true
}

// greetBanned waits for the name of a client allowConnect let in as
// banned, and returns the refusal it hears in place of the greeting, ""
// if its name puts it on the welcomelist (or its ban has gone). The
// client waits for its greeting at most the lookup's timeout, as any
// client waits for its name to be known before MAIL.
func (c *trackedConn) greetBanned() string {
	if c == nil || !c.banned {
		return ""
	}
	ip := addrIP(c.RemoteAddr())
	name := c.clientName()
	if name == "unknown" {
		name = ""
	}
	b, banned := c.srv.opts.Bans.BannedClient(ip, name)
	if !banned {
		return ""
	}
	return "554 5.7.1 " + c.srv.bannedText(ip, b)
}

// bannedText is what a banned client hears, after "554 5.7.1 ".
func (s *Server) bannedText(ip netip.Addr, b enforce.BanEntry) string {
	who := ip.String()
	if n := b.Network(); !n.IsSingleIP() {
		who += " (in banned network " + n.String() + ")" // an IPv6 client's /64
	}
	return s.opts.Domain + ": " + who + " is banned until " + b.Until.UTC().Format(time.RFC3339) + ": " + b.Reason
}

// withinRate counts a client's event for the rate limits (Postfix's
// anvil), and reports whether it is within them; trusted clients
// (smtpd_client_event_limit_exceptions, mynetworks) always are. Each
// event past a limit is logged, in Postfix's words, for fail2ban.
func (s *Server) withinRate(ip netip.Addr, ev anvil.Event) bool {
	if s.opts.Rates == nil || s.opts.LimitExempt != nil && s.opts.LimitExempt.Trusted(ip) {
		return true
	}
	if s.opts.Rates.Allow(ip, ev) {
		return true
	}
	what := [...]string{"Connection rate", "Message delivery request rate", "Recipient address rate"}[ev]
	s.log.Warn(what+" limit exceeded", "client", ip.String())
	return false
}

func (s *Server) release(ip netip.Addr) {
	if s.opts.Memory != nil {
		s.opts.Memory.SessionClosed()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active.Add(-1)
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
	} else {
		s.perIP[ip]--
	}
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// IsLocal reports whether ip is loopback, private (RFC 1918, RFC 4193) or
// link-local: the clients E-MailRelay accepts without --remote-clients.
func IsLocal(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// ListenAll opens one TCP listener per address (POP3, admin), or closes what it opened and
// reports the first failure.
func ListenAll(addrs []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen on %s: %w", a, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// refusedBanned decides, when go-smtp writes the greeting p, on a client
// let in banned (allowConnect): once its name is known, either it is
// welcomelisted and greeted, or it hears its ban in place of the
// greeting, logged as a refusal at connect, and the session ends.
func (c *commandConn) refusedBanned(p []byte) bool {
	tc, ok := c.Conn.(*trackedConn)
	if !ok || !tc.banned || c.verb != "" || !bytes.HasPrefix(p, []byte("220 ")) {
		return false
	}
	reply := tc.greetBanned()
	tc.banned = false
	if reply == "" {
		return false
	}
	client := c.RemoteAddr().String()
	c.srv.opts.MailLog.Reject(client, "connect", reply)
	c.srv.log.Info("connection refused", "client", client, "reply", reply)
	c.closed = true
	if c.queue([]byte(reply+"\r\n")) == nil && c.handshake {
		c.handshake = false
		c.flush() // over implicit TLS, as refuseConn answers
	}
	return true
}
