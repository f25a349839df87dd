package route

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// Destination is a recipient's route as the scheduler needs it: where its
// sessions go and the limits that apply there.
type Destination struct {
	// Key groups recipients that share transactions, sessions and limits:
	// Postfix's per-destination queue (transport and next hop).
	Key string
	// Upstream is the "host:port" sessions go to when the next hop names
	// its host (the relayhost, a transport's [host]:port); empty when the
	// next hop's hosts are found by MX, or there is no session.
	Upstream string
	// Error, when its Code is set, is how the recipient fails without a
	// session: Postfix's error: (5xx) and retry: (4xx) transports.
	Error reply.Reply
	// Discard claims delivery and drops the recipient (discard:), logged
	// with DiscardText (the table's text, else the recipient domain).
	Discard     bool
	DiscardText string
	// ConcurrencyLimit bounds parallel sessions to the destination
	// (destination_concurrency_limit); zero means the scheduler's default.
	ConcurrencyLimit int
	// RecipientLimit bounds recipients per transaction
	// (destination_recipient_limit); zero means the scheduler's default.
	RecipientLimit int
	// RateDelay is the pause between deliveries to the destination
	// (destination_rate_delay).
	RateDelay time.Duration
	// InitialConcurrency is Postfix's initial_destination_concurrency:
	// a destination starts with this many sessions and gains one per
	// successful delivery up to its limit, and loses one per failure to
	// connect; zero means no slow start.
	InitialConcurrency int
}

// OtherAccount reports whether the destination's sessions log in with an
// account other than the relay's own: a client account selector
// (WithAccount) or a sender's own login (sender_dependent_authentication).
// Such an account has a sending quota of its own.
func (dst Destination) OtherAccount() bool {
	return strings.Contains(dst.Key, accountMark) || strings.Contains(dst.Key, loginMark)
}

// accountMark joins a destination's key and the client account selector of
// the messages that go there under that account's login.
const accountMark = " account="

// WithAccount is dst for the messages whose envelope names the client
// account selector sel (E-MailRelay's ClientAccountSelector): a
// destination of its own, so that they share sessions only with each
// other, each logged in with sel's account. An empty sel is dst.
func (dst Destination) WithAccount(sel string) Destination {
	if sel != "" {
		dst.Key += accountMark + sel
	}
	return dst
}

// Account is the client account selector that WithAccount put in the
// destination's key, and the key without it.
func (dst Destination) Account() (key, sel string) {
	if i := strings.LastIndex(dst.Key, accountMark); i >= 0 {
		return dst.Key[:i], dst.Key[i+len(accountMark):]
	}
	return dst.Key, ""
}

// DialerOptions configure a Dialer.
type DialerOptions struct {
	// Routes are the routing settings; Reload opens their tables again.
	Routes Options
	// Session is the relay's own session settings (HELO name, timeouts,
	// TLS and AUTH toward forward.to); a transport overrides its fields.
	Session remote.Options
	// Resolver finds the hosts of a next hop.
	Resolver *Resolver
	// ConcurrencyLimit, RecipientLimit, RateDelay and InitialConcurrency
	// are the defaults of every destination ([routing]
	// destination_concurrency_limit, destination_recipient_limit,
	// destination_rate_delay, initial_destination_concurrency); a
	// transport's own settings win.
	ConcurrencyLimit, RecipientLimit int
	RateDelay                        time.Duration
	InitialConcurrency               int
	// Debug, if set, picks the upstreams whose whole conversation goes to
	// Log (Postfix's debug_peer_list): a host by its address, its name,
	// or the next hop it was found for.
	Debug remote.Peers
	// InsecureAuth lets a transport that sends credentials skip
	// certificate verification at the TLS levels that do not verify
	// (may, encrypt, wrapper): the administrator's explicit opt-out.
	// TLS.VerifyOff() sets it too.
	InsecureAuth bool
	// TLS are the relay's TLS switches, which Session applies to
	// forward.to. A next hop other than forward.to gets them without
	// forward.to's credentials (Session.Auth), the verification those
	// call for, and --client-tls-server-name.
	TLS remote.TLSSettings
	// Log, if set, hears a transport's OAuth2 token refresh failures,
	// which are alerts, and the warnings of the tables (duplicate keys,
	// FILE:LINE: message) that NewDialer and every Reload open.
	Log *slog.Logger
	// PasswordMaps are Postfix's smtp_sasl_password_maps: logins
	// ("username:password") by next hop, host name, or with
	// SenderDependentAuth (smtp_sender_dependent_authentication) first by
	// sender. An entry found wins over a transport's auth file and
	// Session.Auth.
	PasswordMaps        []string
	SenderDependentAuth bool
	// FallbackRelays are Postfix's smtp_fallback_relay: next hops tried,
	// in order, when none of a destination's hosts could be reached or
	// found, or all put the mail off with a 4xx. Not for the relay
	// transport (Postfix's stock master.cf turns it off there: a backup
	// MX would loop), nor after a null MX or a loop back to the relay.
	FallbackRelays []string
}

// Dialer routes recipients to destinations and opens sessions there: the
// destination's hosts are tried in MX order with the transport's own HELO
// name, bind address, TLS level and AUTH. Its tables are swapped whole by
// Reload. It is safe for concurrent use.
type Dialer struct {
	opts DialerOptions

	mu       sync.Mutex // guards the fields below
	router   *Router
	pw       *passwords                   // smtp_sasl_password_maps, nil if none
	fallback []NextHop                    // smtp_fallback_relay, parsed
	seen     map[string]Route             // destination key -> route, for Dial
	auths    map[string]*auth.ClientLogin // transport name -> its AUTH, read once
	versions map[string]fileVersion       // the tables' files as read
}

// NewDialer opens the routing tables; the error reports every problem.
func NewDialer(opts DialerOptions) (*Dialer, error) {
	rt, err := New(opts.Routes)
	if err != nil {
		return nil, err
	}
	if opts.Resolver == nil {
		opts.Resolver = &Resolver{}
	}
	if opts.TLS.VerifyOff() {
		opts.InsecureAuth = true
	}
	pw, err := openPasswords(opts.PasswordMaps, opts.SenderDependentAuth, opts.Routes.RecipientDelimiter)
	if err != nil {
		return nil, err
	}
	var fallback []NextHop
	for _, f := range opts.FallbackRelays {
		n, err := ParseNextHop(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("route: smtp_fallback_relay: %w", err)
		}
		fallback = append(fallback, n)
	}
	d := &Dialer{opts: opts, router: rt, pw: pw, fallback: fallback, seen: map[string]Route{}, auths: map[string]*auth.ClientLogin{},
		versions: tableVersions(rt, pw)}
	d.warn(rt, pw)
	return d, nil
}

// warn logs the warnings of the tables of rt and pw to opts.Log.
func (d *Dialer) warn(rt *Router, pw *passwords) {
	if d.opts.Log == nil {
		return
	}
	lists := [][]mapTable{rt.tmaps, rt.smaps, rt.rmaps}
	if pw != nil {
		lists = append(lists, pw.maps)
	}
	for _, l := range lists {
		for _, m := range l {
			for _, w := range m.t.Warnings() {
				d.opts.Log.Warn("lookup table: " + w)
			}
		}
	}
}

// Reload reads the routing tables and the transports' secrets files again.
// A reload that fails keeps the old tables in force and says why; it never
// leaves routing half changed.
func (d *Dialer) Reload() error {
	rt, err := New(d.opts.Routes)
	if err != nil {
		return err
	}
	pw, err := openPasswords(d.opts.PasswordMaps, d.opts.SenderDependentAuth, d.opts.Routes.RecipientDelimiter)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.router, d.pw = rt, pw
	d.auths = map[string]*auth.ClientLogin{}
	d.versions = tableVersions(rt, pw)
	d.mu.Unlock()
	d.warn(rt, pw)
	return nil
}

// ReloadChanged reloads as Reload does when a routing table's file has
// changed since it was read (another inode, size or modification time).
func (d *Dialer) ReloadChanged() (bool, error) {
	d.mu.Lock()
	old := d.versions
	d.mu.Unlock()
	for path, v := range old {
		if version(path) != v {
			return true, d.Reload()
		}
	}
	return false, nil
}

// ReloadTables reloads the routing tables and the transports' secrets:
// all of them when asked to (SIGHUP), else only if a table's file
// changed. It logs the outcome to log: a failed reload keeps the old
// tables.
func (d *Dialer) ReloadTables(all bool, log *slog.Logger) {
	var err error
	changed := all
	if all {
		err = d.Reload()
	} else {
		changed, err = d.ReloadChanged()
	}
	if log == nil {
		return
	}
	switch {
	case err != nil:
		log.Error("routing tables not reloaded; the old ones stay in force", "err", err)
	case changed:
		log.Info("routing tables reloaded")
	}
}

// fileVersion tells one version of a file from another.
type fileVersion struct {
	size, ino uint64
	mtime     int64
}

func version(path string) fileVersion {
	fi, err := os.Stat(path)
	if err != nil {
		return fileVersion{}
	}
	v := fileVersion{size: uint64(fi.Size()), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.ino = st.Ino
	}
	return v
}

// tableVersions are the versions of the files of r's tables.
func tableVersions(r *Router, pw *passwords) map[string]fileVersion {
	out := map[string]fileVersion{}
	if r == nil {
		return out
	}
	all := slices.Concat(r.tmaps, r.smaps, r.rmaps)
	if pw != nil {
		all = append(all, pw.maps...)
	}
	for _, m := range all {
		if p := m.t.Path(); p != "" {
			out[p] = version(p)
		}
	}
	return out
}

// Route decides the destination of one recipient.
func (d *Dialer) Route(sender, rcpt string) Destination {
	d.mu.Lock()
	router, pw := d.router, d.pw
	d.mu.Unlock()
	rt := router.Route(sender, rcpt)
	dst := Destination{Key: rt.Key, ConcurrencyLimit: d.opts.ConcurrencyLimit, RecipientLimit: d.opts.RecipientLimit,
		RateDelay: d.opts.RateDelay, InitialConcurrency: d.opts.InitialConcurrency}
	switch {
	case rt.Error != "" && rt.Temporary():
		dst.Error = reply.New(450, rt.Error)
	case rt.Error != "":
		dst.Error = reply.New(550, rt.Error)
	case rt.Discarded():
		dst.Discard, dst.DiscardText = true, rt.NextHop
	default:
		// Not to a recipient domain's own MX hosts: a sender's login is
		// for the hosts the configuration names (the relayhost, a
		// sender's or a transport's next hop), and an MX host's
		// certificate is never for the domain its login would be
		// verified against; the mail would wait for good.
		if !rt.RecipientDomain {
			rt.login = pw.senderKey(sender)
		}
		if rt.login != "" {
			dst.Key += loginMark + escapeLoginKey(rt.login)
		}
		if !rt.MX {
			dst.Upstream = net.JoinHostPort(rt.Host, strconv.Itoa(rt.Port))
		}
	}
	if t := rt.Transport; t != nil {
		if t.ConcurrencyLimit > 0 {
			dst.ConcurrencyLimit = t.ConcurrencyLimit
		}
		if t.RecipientLimit > 0 {
			dst.RecipientLimit = t.RecipientLimit
		}
		if t.RateDelay > 0 {
			dst.RateDelay = t.RateDelay
		}
		if t.InitialConcurrency > 0 {
			dst.InitialConcurrency = t.InitialConcurrency
		}
	}
	d.mu.Lock()
	d.seen[dst.Key] = rt
	d.mu.Unlock()
	return dst
}

// Dial tries the destination's hosts in order until one answers; relay
// names the host reached (or the destination, if none was), for the logs.
func (d *Dialer) Dial(ctx context.Context, dst Destination) (conn *remote.Conn, relay string, err error) {
	conn, relay, _, err = d.dial(ctx, dst, beyondAddressLimit, nil)
	return conn, relay, err
}

// PassedHost is a host a dial passed over: it could not be reached, or it
// refused the session (its greeting, EHLO, STARTTLS, or it is the relay
// itself). Postfix logs each such host ("connect to ...", "host ...
// refused to talk to me").
type PassedHost struct {
	Addr  string // as dialled, "ip:port"
	Relay string // "name[ip:port]"
	Err   error
}

// DialHosts is Dial, and for a destination found by MX says which hosts
// it passed over before the one reached (all of them, if none was). Only
// the first MXAddressLimit addresses are tried, as by DialNext.
func (d *Dialer) DialHosts(ctx context.Context, dst Destination) (conn *remote.Conn, relay string, passed []PassedHost, err error) {
	conn, relay, passed, err = d.dial(ctx, dst, beyondAddressLimit, nil)
	d.mu.Lock()
	key, _ := dst.Account()
	mx := d.seen[key].MX
	d.mu.Unlock()
	if !mx {
		passed = nil // one next hop, as before: the smarthost
	}
	return conn, relay, passed, err
}

// MXAddressLimit is how many addresses of a destination's MX hosts a
// delivery tries at most, and MXSessionLimit how many SMTP sessions
// (a greeting and EHLO accepted) it may have with them: Postfix's
// smtp_mx_address_limit and smtp_mx_session_limit, at their defaults.
const (
	MXAddressLimit = 5
	MXSessionLimit = 2
)

// beyondAddressLimit skips the addresses after the first MXAddressLimit
// of a destination, as Postfix's smtp client stops at
// smtp_mx_address_limit.
func beyondAddressLimit(i int, _ string) bool { return i >= MXAddressLimit }

// ErrNoNextHost is DialNext's error when the destination has no host left
// to try: it is not found by MX, or every address was tried.
var ErrNoNextHost = errors.New("route: no other mail exchanger to try")

// DialNext opens a session with the next of the destination's MX hosts
// that is none of tried (addresses, "ip:port", as remote.Conn.Addr gives
// them), for the recipients one of them put off with a 4xx: Postfix tries
// the next MX host in the same delivery. Only the first MXAddressLimit
// addresses count. passed are the hosts it tried that did not answer; it
// fails with ErrNoNextHost when no host was left to try. A next hop that
// is not looked up by MX (the smarthost, a bracketed transport next hop)
// has no next host of its own. After the destination's own hosts come the
// fallback relays (smtp_fallback_relay), if any.
func (d *Dialer) DialNext(ctx context.Context, dst Destination, tried []string) (conn *remote.Conn, relay string, passed []PassedHost, err error) {
	key, _ := dst.Account()
	d.mu.Lock()
	rt, ok := d.seen[key]
	d.mu.Unlock()
	if !ok || (!rt.MX && len(d.fallback) == 0) {
		return nil, "", nil, ErrNoNextHost
	}
	skip := func(i int, addr string) bool { return beyondAddressLimit(i, addr) || slices.Contains(tried, addr) }
	if !rt.MX {
		skip = func(int, string) bool { return true } // the smarthost had its turn
	}
	return d.dial(ctx, dst, skip, tried)
}

// dial tries the destination's hosts in order, all but those skip says
// to pass over (by position and address), until one answers, then the
// fallback relays' hosts but those in tried; passed are the hosts tried
// that did not.
func (d *Dialer) dial(ctx context.Context, dst Destination, skip func(i int, addr string) bool, tried []string) (conn *remote.Conn, relay string, passed []PassedHost, err error) {
	key, sel := dst.Account()
	ctx = remote.WithAccount(ctx, sel)
	d.mu.Lock()
	rt, ok := d.seen[key]
	d.mu.Unlock()
	if !ok {
		return nil, "", nil, fmt.Errorf("route: no route for %s", dst.Key)
	}
	conn, relay, passed, err = d.dialRoute(ctx, rt, skip)
	if conn != nil || !d.fallsBack(rt, err, passed) {
		return conn, relay, passed, err
	}
	done := slices.Clone(tried)
	for _, h := range passed {
		done = append(done, h.Addr)
	}
	for _, n := range d.fallback {
		c, r, p, e := d.dialRoute(ctx, fallbackRoute(rt, n), func(_ int, addr string) bool { return slices.Contains(done, addr) })
		passed = append(passed, p...)
		for _, h := range p {
			done = append(done, h.Addr)
		}
		if c != nil {
			return c, r, passed, nil
		}
		if !errors.Is(e, ErrNoNextHost) || err == nil {
			relay, err = r, e
		}
	}
	return nil, relay, passed, err
}

// fallbackRoute is rt sent to the fallback relay n: the same transport,
// destination and sender's login, but not the transport's own login.
func fallbackRoute(rt Route, n NextHop) Route {
	return Route{Transport: rt.Transport, NextHop: n.String(), Host: n.Host, MX: n.MX, Port: cmp.Or(n.Port, DefaultPort),
		Key: rt.Key, login: rt.login, fallback: true}
}

// fallsBack reports whether the fallback relays may take what rt's own
// hosts did not: not for the relay transport, nor after a null MX (the
// domain takes no mail) or a loop back to the relay, nor when a host
// answered and refused the session: its reply (a rate limit, a block)
// is the destination's word on the relay, for the enforcer to read and
// not for the relay to send around.
func (d *Dialer) fallsBack(rt Route, err error, passed []PassedHost) bool {
	if len(d.fallback) == 0 || rt.Transport == nil || rt.Transport.Name == "relay" || rt.Error != "" {
		return false
	}
	var re *remote.Error
	if errors.As(err, &re) && (re.Reply.Enhanced == "5.1.10" || re.Reply.Enhanced == "5.4.6") {
		return false
	}
	for _, h := range passed {
		if errors.As(h.Err, &re) && re.Reply.Code != 0 || errors.Is(h.Err, remote.ErrLoop) {
			// (The relay among the hosts: as a backup MX whose better
			// hosts failed, the mail waits for them; a fallback relay
			// would send it back to its backup MX, the relay.)
			return false
		}
	}
	return true
}

// dialRoute tries one route's hosts in order, all but those skip says to
// pass over, until one answers.
func (d *Dialer) dialRoute(ctx context.Context, rt Route, skip func(i int, addr string) bool) (conn *remote.Conn, relay string, passed []PassedHost, err error) {
	hosts, err := d.opts.Resolver.targets(ctx, rt)
	if err != nil {
		var de *DNSError
		if errors.As(err, &de) && !de.Temporary() && (rt.relayHost || rt.fallback) {
			return nil, rt.Host, nil, d.configProblem(rt, err)
		}
		if errors.As(err, &de) && !de.Temporary() {
			// No such domain, a null MX, no address: no retry will help.
			code := de.Code
			if code == "" {
				code = "5.1.2"
			}
			return nil, rt.Host, nil, &remote.Error{Stage: "dns", Perm: true,
				Reply: reply.Reply{Code: 550, Enhanced: code, Lines: []string{code + " " + err.Error()}, Local: true}}
		}
		return nil, rt.Host, nil, &remote.Error{Stage: "dns", Err: err}
	}
	opts, err := d.session(rt)
	if err != nil {
		return nil, rt.Host, nil, &remote.Error{Stage: "connect", Err: err}
	}
	if rt.MX {
		// An MX host that is the relay itself (its EHLO reply names us)
		// ends the walk: as the best MX the mail loops back to us,
		// which Postfix bounces (5.4.6) rather than send the message
		// round until its hop count runs out. "Us" is the name the
		// relay's own SMTP server answers with (Postfix's
		// myhostname), not a transport's helo_name.
		opts.Myself = cmp.Or(d.opts.Session.Helo, opts.Helo)
	}
	var last error
	looped := false
	relay = rt.Host
	for i, h := range hosts {
		if skip != nil && skip(i, h.addr) {
			continue
		}
		// The recipient's own domain is delivered to its MX hosts, named
		// as Postfix names them (relay=NAME[IP]), so that the enforcer
		// knows a Google Workspace domain's upstream for Google's. A next
		// hop that the configuration names keeps that name, the one
		// trusted_upstreams and the transports list.
		name := rt.Host
		if rt.RecipientDomain {
			name = h.name
		}
		hopts := opts
		if p := d.opts.Debug; p != nil && (p.Upstream(h.addr) || p.Upstream(h.name) || p.Upstream(rt.Host)) {
			hopts.Trace = remote.TraceTo(d.opts.Log, name+"["+h.addr+"]")
		}
		c, err := remote.Dial(ctx, h.addr, hopts)
		if err == nil {
			return c, name + "[" + h.addr + "]", passed, nil
		}
		passed = append(passed, PassedHost{Addr: h.addr, Relay: name + "[" + h.addr + "]", Err: err})
		if errors.Is(err, remote.ErrLoop) {
			// The relay is an MX host of this domain. As Postfix
			// truncates the list at its own preference, no host
			// worse than the relay is tried: a backup MX would send
			// the mail back to the best one.
			if slices.ContainsFunc(hosts[:i], func(b target) bool { return b.pref < h.pref }) {
				// A backup MX whose better hosts failed: that is the
				// outcome (a deferral while the primary is down).
				if last == nil {
					return nil, relay, passed, ErrNoNextHost // tried by an earlier dial
				}
				return nil, relay, passed, last
			}
			looped = true // the best MX: the mail loops back
			break
		}
		last, relay = err, rt.Host
		if re := (*remote.Error)(nil); errors.As(err, &re) && re.Reply.Code != 0 {
			// The host answered (a refusing greeting): the reply, which
			// the enforcer may act on, is that host's.
			relay = name + "[" + h.addr + "]"
		}
		// A host that refuses, even for good (a 554 greeting): Postfix
		// tries the next MX too.
	}
	if len(passed) == 0 {
		return nil, relay, nil, ErrNoNextHost
	}
	if looped {
		return nil, relay, passed, &remote.Error{Stage: "ehlo", Perm: true, Reply: reply.Reply{Code: 554, Enhanced: "5.4.6",
			Lines: []string{"5.4.6 mail for " + rt.NextHop + " loops back to myself"}, Local: true}}
	}
	return nil, relay, passed, last
}

// configProblem is the deferral of mail for a relayhost or fallback relay
// whose name does not resolve: as Postfix's smtp client says "relayhost
// configuration problem" and defers (4.3.5), a typo in the configuration
// or a name gone for a moment from DNS keeps the mail queued instead of
// bouncing all of it.
func (d *Dialer) configProblem(rt Route, err error) error {
	what := "relayhost"
	if rt.fallback {
		what = "smtp_fallback_relay"
	}
	if d.opts.Log != nil {
		d.opts.Log.Warn(what+" configuration problem", "next_hop", rt.NextHop, "err", err)
	}
	return &remote.Error{Stage: "dns", Err: err, Reply: reply.Reply{Code: 451, Enhanced: "4.3.5",
		Lines: []string{"4.3.5 " + what + " configuration problem: " + err.Error()}, Local: true}}
}

// session is the session settings for a route's transport.
func (d *Dialer) session(rt Route) (remote.Options, error) {
	opts := d.opts.Session
	t := rt.Transport
	if t == nil {
		return opts, nil
	}
	if !d.toRelayHost(rt) {
		// forward.to's credentials are for forward.to alone, as Postfix
		// looks smtp_sasl_password_maps up by next hop.
		s := d.opts.TLS
		s.ServerName, s.VerifyName = "", "" // the smarthost's
		var err error
		if opts.TLS, opts.TLSConfig, err = s.Config(net.JoinHostPort(rt.Host, strconv.Itoa(rt.Port)), false); err != nil {
			return opts, err
		}
		opts.Auth = nil
	}
	if t.HeloName != "" {
		opts.Helo = t.HeloName
	}
	if t.BindAddress != "" {
		ip := net.ParseIP(strings.Trim(t.BindAddress, "[]"))
		if ip == nil {
			return opts, fmt.Errorf("transport %s: bind_address %q is not an IP address", t.Name, t.BindAddress)
		}
		opts.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if t.Auth != "" && !rt.fallback {
		// The transport's login is for its own next hops, never another
		// operator's fallback relay. The secrets file is read when the
		// transport is first used, and again after a reload.
		d.mu.Lock()
		a, ok := d.auths[t.Name]
		d.mu.Unlock()
		if !ok {
			s, err := auth.LoadSecrets(t.Auth)
			if err != nil {
				return opts, fmt.Errorf("transport %s: %w", t.Name, err)
			}
			if d.opts.Log != nil {
				s.SetLog(d.opts.Log) // OAuth2 refresh failures are alerts
			}
			a, _ = s.ClientAuth("")
			d.mu.Lock()
			d.auths[t.Name] = a
			d.mu.Unlock()
		}
		opts.Auth = nil // "client plain = =": no AUTH
		if a != nil {
			opts.Auth = a
		}
	}
	d.mu.Lock()
	pw := d.pw
	d.mu.Unlock()
	mapped := pw.login(rt, rt.login)
	if mapped != nil {
		opts.Auth = mapped
	}
	credentials := opts.Auth != nil && !d.opts.InsecureAuth
	// The administrator's CAs (--client-tls-verify) verify every next hop,
	// at whatever level a transport or a login asks for.
	var roots *x509.CertPool
	if opts.TLSConfig != nil {
		roots = opts.TLSConfig.RootCAs
	}
	switch {
	case t.TLS == "" && t.Auth == "" && mapped == nil && d.toRelayHost(rt):
		// forward.to with its own credentials: TLSSettings.Config has
		// already chosen its mode for them (a smarthost on this host,
		// with no TLS switch, gets them without TLS).
	case t.TLS != "":
		level := Level(t.TLS)
		if credentials {
			// Credentials never go to a host whose certificate is not
			// checked: the levels that only encrypt verify too.
			level = level.forCredentials()
		} else if opts.Auth != nil && (level == LevelNone || level == LevelMay) {
			// InsecureAuth: any certificate, but never a password in
			// plain text to a server whose STARTTLS was stripped.
			level = LevelEncrypt
		}
		opts.TLS, opts.TLSConfig = level.Session(rt.Host)
		if opts.TLSConfig != nil {
			opts.TLSConfig.RootCAs = roots
		}
	case credentials && (opts.TLS == remote.TLSNone || opts.TLS == remote.TLSOpportunistic):
		// No level of its own, and the relay's would send the
		// transport's password in the clear or unverified.
		opts.TLS, opts.TLSConfig = remote.TLSRequired, verifying(opts.TLSConfig, rt.Host)
	case credentials:
		opts.TLSConfig = verifying(opts.TLSConfig, rt.Host)
	case opts.Auth != nil && (opts.TLS == remote.TLSNone || opts.TLS == remote.TLSOpportunistic):
		// InsecureAuth (--client-tls-verify <none>) turns off the
		// certificate check, not the encryption: Postfix's default
		// smtp_sasl_security_options = noplaintext.
		opts.TLS, opts.TLSConfig = LevelEncrypt.Session(rt.Host)
	}
	return opts, nil
}

// verifying is tc made to verify the server's certificate, for a session
// that sends credentials to host; the rest of tc (the smarthost's server
// name, its --client-tls-verify-name check, the relay's client
// certificate, the CAs) stays as it is.
func verifying(tc *tls.Config, host string) *tls.Config {
	if tc == nil {
		_, tc = LevelVerify.Session(host)
		return tc
	}
	if !tc.InsecureSkipVerify || tc.VerifyConnection != nil {
		return tc // verified already, by Go or by VerifyConnection
	}
	tc = tc.Clone()
	tc.InsecureSkipVerify = false
	tc.ServerName = cmp.Or(tc.ServerName, host)
	return tc
}

// toRelayHost reports whether rt goes to the relayhost (forward.to).
func (d *Dialer) toRelayHost(rt Route) bool {
	n, err := ParseNextHop(d.opts.Routes.RelayHost)
	if err != nil || d.opts.Routes.RelayHost == "" {
		return false
	}
	port := n.Port
	if port == 0 {
		port = DefaultPort
	}
	return rt.Host == n.Host && rt.MX == n.MX && rt.Port == port
}

// Level is a TLS security level, Postfix's smtp_tls_security_level plus
// "wrapper" for TLS from the first byte. See docs/tls.md.
type Level string

// The levels.
const (
	// LevelNone never uses TLS.
	LevelNone Level = "none"
	// LevelMay uses STARTTLS when offered and accepts any certificate:
	// safe against a passive eavesdropper only.
	LevelMay Level = "may"
	// LevelEncrypt requires STARTTLS and accepts any certificate: a
	// server without TLS gets nothing, an active attacker can still read.
	LevelEncrypt Level = "encrypt"
	// LevelVerify requires STARTTLS and a certificate valid for the next
	// hop's name under the system roots. LevelSecure is the same here:
	// the name checked is always the next hop's, never an MX host's from
	// DNS, which is what "secure" adds in Postfix.
	LevelVerify Level = "verify"
	LevelSecure Level = "secure"
	// LevelWrapper speaks TLS from the first byte (port 465) and accepts
	// any certificate; LevelWrapperVerify also verifies it, as a wrapper
	// transport that sends credentials does.
	LevelWrapper       Level = "wrapper"
	LevelWrapperVerify Level = "wrapper+verify"
)

// forCredentials is the level used when the session sends credentials.
func (l Level) forCredentials() Level {
	switch l {
	case LevelNone, LevelMay, LevelEncrypt:
		return LevelVerify
	case LevelWrapper:
		return LevelWrapperVerify
	}
	return l
}

// Session is the client's TLS mode and configuration at this level for a
// next hop named host.
func (l Level) Session(host string) (remote.TLSMode, *tls.Config) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	switch l {
	case LevelNone:
		return remote.TLSNone, nil
	case LevelMay:
		tc.InsecureSkipVerify = true
		return remote.TLSOpportunistic, tc
	case LevelEncrypt:
		tc.InsecureSkipVerify = true
		return remote.TLSRequired, tc
	case LevelVerify, LevelSecure:
		return remote.TLSRequired, tc
	case LevelWrapper:
		tc.InsecureSkipVerify = true
		return remote.TLSImplicit, tc
	case LevelWrapperVerify:
		return remote.TLSImplicit, tc
	}
	return remote.TLSNone, nil
}
