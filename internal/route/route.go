package route

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Transport is a named outbound transport, as a master.cf smtp entry with
// its -o overrides. Zero fields take the defaults of whoever uses them: the
// remote client (bind address, HELO name, TLS) and the scheduler (limits).
type Transport struct {
	Name string
	// NextHop is the transport's default next hop: "[host]:port" (no MX
	// lookup), "host:port" or "host" (MX lookup of host), "" for the
	// recipient's domain by MX (or Options.RelayHost when the transport is
	// the default one). An explicit next hop in a map result wins.
	NextHop     string
	BindAddress string // smtp_bind_address: an IP address of this host
	HeloName    string // smtp_helo_name
	// TLS is Postfix's smtp_tls_security_level, none, may, encrypt, verify
	// or secure, or "wrapper" for implicit TLS (smtp_tls_wrappermode).
	TLS     string
	Auth    string // client secrets file (E-MailRelay format) for this transport
	LogName string // syslog_name-like tag for the mail log

	// Per-destination limits, as Postfix's transport_destination_*
	// parameters; 0 means the scheduler's default. A destination is a
	// Route.Key. The scheduler starts at min(InitialConcurrency,
	// ConcurrencyLimit).
	ConcurrencyLimit   int           // transport_destination_concurrency_limit
	InitialConcurrency int           // transport_initial_destination_concurrency
	RecipientLimit     int           // transport_destination_recipient_limit
	RateDelay          time.Duration // transport_destination_rate_delay
}

// Names of the built-in transports. They cannot be configured.
const (
	Error   = "error"   // error:TEXT fails the recipient (5.X.X)
	Retry   = "retry"   // retry:TEXT defers the recipient (4.X.X)
	Discard = "discard" // discard:TEXT drops the recipient as delivered
)

// DefaultTransportName is the default transport when Options names none,
// as Postfix's default_transport.
const DefaultTransportName = "smtp"

// stockTransports are made up, with no settings, when Options.Transports
// lacks them, as Postfix's stock master.cf has them: smtp and relay.
var stockTransports = []string{DefaultTransportName, "relay"}

// Options configure a Router. The zero Options route every recipient by MX
// through a plain "smtp" transport.
type Options struct {
	// Transports are the configured transports by name; each Name must be
	// empty or equal to its key.
	Transports map[string]*Transport
	// DefaultTransport is Postfix's default_transport, "transport" or
	// "transport:nexthop"; "smtp" when empty.
	DefaultTransport string
	// TransportMaps are table specs for transport_maps, searched in order.
	TransportMaps []string
	// SenderDependentMaps are table specs for
	// sender_dependent_default_transport_maps.
	SenderDependentMaps []string
	// RelayHost is Postfix's relayhost: the next hop of the default
	// transport (also when a sender-dependent map chose it), unless that
	// transport or a map result names one.
	RelayHost string
	// SenderRelayHostMaps are table specs for
	// sender_dependent_relayhost_maps: a next hop that replaces RelayHost
	// for the sender ("DUNNO" keeps RelayHost).
	SenderRelayHostMaps []string
	// RecipientDelimiter is Postfix's recipient_delimiter: each character
	// separates a localpart from its extension ("+" makes user+tag@domain
	// also look up user@domain). Empty turns extensions off.
	RecipientDelimiter string
}

// Router decides routes. It is safe for concurrent use.
type Router struct {
	transports map[string]*Transport // never modified after New
	defName    string                // default transport name
	defHop     string                // its explicit next hop, if any
	relayHost  string
	delim      string
	tmaps      []mapTable
	smaps      []mapTable
	rmaps      []mapTable // sender_dependent_relayhost_maps
}

// mapTable is one table of a list, and whether it is a pattern table
// (regexp, pcre, cidr), which Postfix asks only for whole keys.
type mapTable struct {
	t       *table.Table
	pattern bool
}

// builtin are the transports that need no configuration.
var builtin = map[string]*Transport{
	Error:   {Name: Error},
	Retry:   {Name: Retry},
	Discard: {Name: Discard},
}

// TLS security levels accepted in Transport.TLS.
var tlsLevels = map[string]bool{"": true, "none": true, "may": true, "encrypt": true,
	"verify": true, "secure": true, "wrapper": true}

// New checks opts, opens the tables and returns a Router. It reports every
// problem it finds, joined with errors.Join: bad transports, a default
// transport or relayhost that does not parse, tables that do not open, and
// entries of hash-like, static and inline tables that name a transport
// that does not exist or a next hop that does not parse (as FILE:LINE:).
// Results that only exist at lookup time (regexp and pcre substitutions)
// are checked by Route.
func New(opts Options) (*Router, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("route: "+format, args...)) }

	r := &Router{transports: make(map[string]*Transport), delim: opts.RecipientDelimiter}
	for _, name := range slices.Sorted(maps.Keys(opts.Transports)) {
		t := opts.Transports[name]
		if t == nil {
			bad("transport %q: missing settings", name)
			continue
		}
		c := *t
		if c.Name == "" {
			c.Name = name
		}
		for _, err := range checkTransport(name, &c) {
			bad("transport %q: %v", name, err)
		}
		r.transports[name] = &c
	}

	def := strings.TrimSpace(opts.DefaultTransport)
	if def == "" {
		def = DefaultTransportName
	}
	r.defName, r.defHop = SplitResult(def)
	for _, name := range stockTransports {
		if _, ok := r.transports[name]; !ok {
			r.transports[name] = &Transport{Name: name}
		}
	}
	if err := r.checkResult(def, false); err != nil {
		bad("default transport: %v", err)
	}
	if r.relayHost = strings.TrimSpace(opts.RelayHost); r.relayHost != "" {
		if _, err := ParseNextHop(r.relayHost); err != nil {
			bad("relayhost: %v", err)
		}
	}

	r.tmaps, errs = r.openMaps("transport_maps", opts.TransportMaps, true, errs)
	r.smaps, errs = r.openMaps("sender_dependent_default_transport_maps", opts.SenderDependentMaps, false, errs)
	r.rmaps, errs = r.openHopMaps("sender_dependent_relayhost_maps", opts.SenderRelayHostMaps, errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// checkTransport checks one transport's settings.
func checkTransport(key string, t *Transport) []error {
	var errs []error
	switch {
	case t.Name != key:
		errs = append(errs, fmt.Errorf("name %q differs from its key", t.Name))
	case builtin[key] != nil:
		errs = append(errs, fmt.Errorf("%q is a built-in transport", key))
	case key == "" || strings.ContainsAny(key, ": \t\r\n"):
		errs = append(errs, errors.New("a transport name must be non-empty, without ':' or whitespace"))
	}
	if t.NextHop != "" {
		if _, err := ParseNextHop(t.NextHop); err != nil {
			errs = append(errs, err)
		}
	}
	if t.BindAddress != "" {
		if a, err := netip.ParseAddr(t.BindAddress); err != nil || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("bind address %q is not an IP address", t.BindAddress))
		}
	}
	if strings.ContainsFunc(t.HeloName, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		errs = append(errs, fmt.Errorf("HELO name %q contains whitespace or control characters", t.HeloName))
	}
	if !tlsLevels[t.TLS] {
		errs = append(errs, fmt.Errorf("TLS level %q; want none, may, encrypt, verify, secure or wrapper", t.TLS))
	}
	if t.ConcurrencyLimit < 0 || t.InitialConcurrency < 0 || t.RecipientLimit < 0 || t.RateDelay < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	return errs
}

// checkResult checks a map result or default transport. In a
// transport_maps result (inTransportMaps) the transport may be empty.
func (r *Router) checkResult(res string, inTransportMaps bool) error {
	name, hop := SplitResult(res)
	if name == "" && !inTransportMaps {
		return fmt.Errorf("%q: missing transport name", res)
	}
	if name == "" {
		name = r.defName
	}
	if name == Error || name == Retry || name == Discard {
		return nil
	}
	if r.transports[name] == nil {
		return fmt.Errorf("%q: unknown transport %q", res, name)
	}
	if hop != "" {
		if _, err := ParseNextHop(hop); err != nil {
			return fmt.Errorf("%q: %w", res, err)
		}
	}
	return nil
}

// openMaps opens a list of tables and checks the entries it can read in
// advance.
func (r *Router) openMaps(param string, specs []string, inTransportMaps bool, errs []error) ([]mapTable, []error) {
	return openTables(param, specs, func(v string) error {
		if !inTransportMaps && strings.EqualFold(v, "DUNNO") {
			return nil
		}
		return r.checkResult(v, inTransportMaps)
	}, errs)
}

// openHopMaps opens tables whose results are next hops
// (sender_dependent_relayhost_maps) and checks the entries it can read in
// advance.
func (r *Router) openHopMaps(param string, specs []string, errs []error) ([]mapTable, []error) {
	return openTables(param, specs, func(v string) error {
		if strings.EqualFold(v, "DUNNO") {
			return nil
		}
		_, err := ParseNextHop(v)
		return err
	}, errs)
}

// ParamError is a problem with the tables of a Postfix parameter
// ("transport_maps"), so that the relay can name the line that set it.
type ParamError struct {
	Param string
	Err   error
}

func (e *ParamError) Error() string { return "route: " + e.Param + ": " + e.Err.Error() }

func (e *ParamError) Unwrap() error { return e.Err }

// openTables opens the tables of param, and checks each value it can read
// in advance; a problem is reported with the file and line.
func openTables(param string, specs []string, check func(value string) error, errs []error) ([]mapTable, []error) {
	var out []mapTable
	for _, spec := range specs {
		t, err := table.Open(spec)
		if err != nil {
			errs = append(errs, &ParamError{param, err})
			continue
		}
		out = append(out, mapTable{t: t, pattern: isPatternSpec(spec)})
		for _, e := range staticEntries(t) {
			if err := check(e.value); err != nil {
				errs = append(errs, &ParamError{param, fmt.Errorf("%s: %w", e.where, err)})
			}
		}
	}
	return out, errs
}

// senderRelayHost is the next hop that replaces the default transport's
// domain for sender: sender_dependent_relayhost_maps' answer (unless
// DUNNO), else relayhost, else "".
func (r *Router) senderRelayHost(sender string) string {
	if v, ok := r.lookupSender(r.rmaps, sender); ok && !strings.EqualFold(v, "DUNNO") {
		return v
	}
	return r.relayHost
}

// Route is where one recipient goes. Its Transport is shared with the
// Router and must not be modified.
type Route struct {
	// Transport is the configured transport, or a built-in one (error,
	// retry, discard) with no settings.
	Transport *Transport
	// NextHop is the next hop decided, in ParseNextHop's canonical form:
	// "[host]:port" or "[192.0.2.1]" (no MX lookup), "host:port" or
	// "domain" (MX lookup). For the built-in transports it is their text,
	// as in Postfix.
	NextHop string
	Host    string // NextHop's host: a name or an IP address, no brackets, no port
	MX      bool   // look up MX records for Host
	// RecipientDomain: the next hop is the recipient's own domain, not
	// one that the configuration names: the upstream reached is known by
	// its MX host's name (see Dialer.Dial).
	RecipientDomain bool
	Port            int // DefaultPort unless the next hop gives one
	// Key is the destination for per-destination limits and grouping,
	// Postfix's per-destination queue: transport name + "/" + NextHop.
	Key string
	// login is the smtp_sasl_password_maps key of the sender's login,
	// when logins depend on the sender (Dialer.Route sets it).
	login string
	// fallback says the route goes to a fallback relay (smtp_fallback_relay),
	// which never gets the transport's own login.
	fallback bool
	// relayHost says the next hop is the relayhost (or the sender's, from
	// sender_dependent_relayhost_maps): a name of it that does not
	// resolve is a configuration problem, which defers the mail.
	relayHost bool
	// Error, when set, is how the recipient fails: an RFC 3463 code, a
	// space and text ("5.1.1 no such user"). A 4.X.X code defers it
	// (retry: and an unknown transport), 5.X.X bounces it (error:).
	Error string
}

// Discarded reports a recipient that the discard transport drops.
func (rt Route) Discarded() bool { return rt.Transport != nil && rt.Transport.Name == Discard }

// Temporary reports whether Error only defers the recipient.
func (rt Route) Temporary() bool { return strings.HasPrefix(rt.Error, "4.") }

// Route decides the route of rcpt in a message from sender ("" or "<>" for
// the null sender). See the package documentation for the rules. Problems
// are reported in the Route's Error, never as a panic: a map result that
// names an unknown transport or a bad next hop defers the recipient (4.3.5,
// as Postfix does for a configuration error); a recipient domain that is
// not a usable destination bounces it (5.1.2).
func (r *Router) Route(sender, rcpt string) Route {
	sender, rcpt = trimAngle(sender), trimAngle(rcpt)
	_, domain := splitAddr(rcpt)

	// The default transport and next hop (resolve.c), possibly replaced
	// for this sender.
	name, hop := r.defName, r.defHop
	if v, ok := r.lookupSender(r.smaps, sender); ok && !strings.EqualFold(v, "DUNNO") {
		if name, hop = SplitResult(v); name == "" {
			return failed(Retry, fmt.Sprintf("4.3.5 mail system configuration error: sender-dependent transport %q has no transport name", v))
		}
	}
	useRelayHost := true

	// transport_maps overrides both (transport.c, update_entry).
	if v, ok := r.lookupTransport(rcpt, domain); ok {
		switch t, h := SplitResult(v); {
		case t == "" && h != "":
			hop = h // keep the transport
		case t != "":
			name, hop, useRelayHost = t, h, false
		}
	}

	switch name {
	case Error, Retry:
		text := hop
		if text == "" {
			text = "Address is undeliverable"
		}
		class := "5"
		if name == Retry {
			class = "4"
		}
		return failed(name, withCode(class, text))
	case Discard:
		if hop == "" {
			hop = domain
		}
		return Route{Transport: builtin[Discard], NextHop: hop, Key: Discard + "/" + hop}
	}
	t := r.transports[name]
	if t == nil {
		return failed(Retry, fmt.Sprintf("4.3.5 mail transport unavailable: unknown transport %q", name))
	}
	fromDomain, viaRelayHost := false, false
	relayHost := ""
	if useRelayHost && hop == "" && t.NextHop == "" {
		// sender_dependent_relayhost_maps, then relayhost (resolve.c).
		relayHost = r.senderRelayHost(sender)
	}
	switch {
	case hop != "":
	case t.NextHop != "":
		hop = t.NextHop
	case relayHost != "":
		hop, viaRelayHost = relayHost, true
	case domain == "":
		return failed(Error, "5.1.3 bad recipient address syntax: no domain")
	default:
		hop, fromDomain = domain, true
	}
	n, err := ParseNextHop(hop)
	switch {
	case err != nil && fromDomain:
		return failed(Error, fmt.Sprintf("5.1.2 bad destination domain %q", domain))
	case err != nil:
		return failed(Retry, fmt.Sprintf("4.3.5 mail system configuration error: transport %q: bad next hop %q", name, hop))
	}
	port := n.Port
	if port == 0 {
		port = DefaultPort
	}
	return Route{Transport: t, NextHop: n.String(), Host: n.Host, MX: n.MX, RecipientDomain: fromDomain, Port: port,
		Key: t.Name + "/" + n.String(), relayHost: viaRelayHost}
}

// failed is a route through the built-in error or retry transport.
func failed(name, text string) Route {
	return Route{Transport: builtin[name], NextHop: text, Key: name + "/" + text, Error: text}
}

// withCode gives text an RFC 3463 code of the given class: its own code
// with the class replaced (error: always bounces, retry: always defers, as
// Postfix's error(8) and retry), or class.0.0.
func withCode(class, text string) string {
	if n := codeLen(text); n > 0 {
		return class + text[1:]
	}
	return class + ".0.0 " + text
}

// codeLen returns the length of the RFC 3463 code that starts text
// (class.subject.detail, followed by a space or the end), or 0.
func codeLen(text string) int {
	if len(text) < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.' {
		return 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		j := i
		for j < len(text) && j-i < 3 && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j == i || (j < len(text) && text[j] >= '0' && text[j] <= '9') {
			return 0
		}
		i = j
		if part == 0 {
			if i >= len(text) || text[i] != '.' {
				return 0
			}
			i++
		}
	}
	if i < len(text) && text[i] != ' ' {
		return 0
	}
	return i
}

func trimAngle(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	return s
}
