package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/hostport"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Validate checks every setting and returns all problems as Problems, or
// nil. Each problem names the switch that set the value, or else the file
// and line from Origin, or else the key (a default, or a Config built in
// code). A problem between two settings is pinned on the one the operator
// set, since that is the one they will want to change.
func (c *Config) Validate() error {
	v := &validator{c: c}

	switch c.Mode {
	case ModeServer, ModeProxy, ModeClient:
	default:
		v.bad("want \"server\", \"proxy\" or \"client\", got %q", c.Mode)("mode")
	}
	if strings.IndexFunc(c.Domain, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		v.bad("%q contains spaces or control characters", clipValue(c.Domain))("domain")
	} else if len(c.Domain) > 255 {
		// It names the relay in the greeting, EHLO and Received: a name
		// longer than DNS allows (RFC 1035 section 2.3.4) is a mistake,
		// and a megabyte of it would be a megabyte-long 220 line.
		v.bad("%q is %d bytes long; a domain name has at most 255", clipValue(c.Domain), len(c.Domain))("domain")
	}
	if strings.IndexFunc(c.RecipientDelimiter, func(r rune) bool {
		return r > 0x7e || r <= ' ' || r == '@' || r == '"' || r == '\\' || unicode.IsLetter(r) || unicode.IsDigit(r)
	}) >= 0 {
		v.bad("%q: the delimiters must be ASCII punctuation other than @, \" and \\ (Postfix's usual is \"+\")", c.RecipientDelimiter)("recipient_delimiter")
	}

	s := &c.SMTP
	v.port(s.Port, "smtp.port")
	for _, entry := range s.Interfaces {
		role, addr := SplitRole(entry)
		if role == "" {
			v.bad("%q: unknown listener role; want smtp=, submission= or smtps=", entry)("smtp.interfaces")
			continue
		}
		if err := checkListenAddr(addr); err != nil {
			v.bad("%q: %v", addr, err)("smtp.interfaces")
		}
	}
	roles := map[string]string{} // address -> its first role
	for _, l := range c.SMTPListens() {
		if r, ok := roles[l.Addr]; ok && r != l.Role {
			v.bad("%s is given for both %s and %s", l.Addr, r, l.Role)("smtp.interfaces")
		} else if !ok {
			roles[l.Addr] = l.Role
		}
	}
	if s.MaxMessageSize < 0 {
		v.bad("%d is negative; 0 means unlimited", s.MaxMessageSize)("smtp.max_message_size")
	}
	if s.MaxRecipients < 1 {
		v.bad("%d is less than 1", s.MaxRecipients)("smtp.max_recipients")
	}
	v.positive(s.IdleTimeout, "smtp.idle_timeout")
	v.positive(s.TransactionTimeout, "smtp.transaction_timeout")
	if s.ShutdownGrace < 0 {
		v.bad("%v is negative", s.ShutdownGrace)("smtp.shutdown_grace")
	}
	if c.Mode == ModeProxy && s.Disabled {
		v.bad("a proxy needs its SMTP listener")("smtp.disabled", "mode")
	}

	switch c.Log.Format {
	case "", "text", "json":
	default:
		why := ""
		if emailRelayLogFields(c.Log.Format) { // E-MailRelay 2.6's --log-format=time,address
			why = ": E-MailRelay's list of fields is not supported; the mail log has the time and the client on every line"
		}
		v.bad("want \"text\" or \"json\", got %q%s", c.Log.Format, why)("log.format")
	}

	if c.Spool.Dir == "" {
		v.bad("is empty")("spool.dir")
	}

	f := &c.Forward
	if f.To != "" {
		if _, err := ResolveHostPort(f.To); err != nil {
			v.bad("%v", err)("forward.to")
		}
	} else {
		switch {
		case c.Routed() && c.Mode != ModeProxy:
			// Routing decides where mail goes (transports, MX): no
			// smarthost needed.
		case c.Mode == ModeProxy || c.Mode == ModeClient:
			v.bad("%s mode needs a smarthost: set forward.to or --forward-to", c.Mode)("mode")
		case f.Immediate:
			v.bad("forwarding while receiving needs a smarthost: set forward.to or --forward-to")("forward.immediate")
		}
		// A stored message with no smarthost and no routing goes to
		// its recipients' domains by MX (DeliversByMX).
	}
	if c.Routed() && c.Mode == ModeProxy {
		// Silently ignored before: the proxy streams every message to
		// its smarthost as it arrives, with no queue to route from.
		v.bad("the proxy hands every message to forward.to as it arrives; routing (transport_maps, transports and the rest) is for queued mail")("routing")
	}
	if rw := &c.Rewrite; c.Mode == ModeProxy {
		for _, k := range []struct {
			key string
			set bool
		}{{"rewrite.always_bcc", rw.AlwaysBCC != ""}, {"rewrite.sender_bcc_maps", len(rw.SenderBCCMaps) > 0},
			{"rewrite.recipient_bcc_maps", len(rw.RecipientBCCMaps) > 0}, {"rewrite.virtual_alias_maps", len(rw.VirtualAliasMaps) > 0}} {
			if k.set {
				v.bad("the proxy passes each recipient to forward.to as it arrives and adds none; automatic BCC and virtual aliases are for stored mail")(k.key)
			}
		}
	}
	if len(c.Auth.PasswordMaps) > 0 && (c.Mode == ModeProxy || c.Mode == ModeClient) {
		v.bad("the %s logs in to its smarthost with client_secrets (--client-auth), not password maps",
			map[Mode]string{ModeProxy: "proxy", ModeClient: "client mode (--as-client)"}[c.Mode])("auth.smtp_sasl_password_maps")
	}
	if f.Poll < 0 {
		v.bad("%v is negative", f.Poll)("forward.poll")
	}
	if a := f.ClientInterface; a != "" && net.ParseIP(a) == nil {
		v.bad("%q is not an IP address of this host", a)("forward.client_interface")
	}
	v.positive(f.ConnectionTimeout, "forward.connection_timeout")
	v.positive(f.ResponseTimeout, "forward.response_timeout")
	if f.PromptTimeout < 0 {
		v.bad("%v is negative", f.PromptTimeout)("forward.prompt_timeout")
	}

	d := &c.Delivery
	if d.Connections < 1 {
		v.bad("%d is less than 1", d.Connections)("delivery.connections")
	}
	if d.MessagesPerConnection < 1 {
		v.bad("%d is less than 1", d.MessagesPerConnection)("delivery.messages_per_connection")
	}
	minOK := v.positive(d.MinBackoff, "delivery.minimal_backoff_time")
	maxOK := v.positive(d.MaxBackoff, "delivery.maximal_backoff_time")
	if minOK && maxOK && d.MinBackoff > d.MaxBackoff {
		if key := v.pick("delivery.minimal_backoff_time", "delivery.maximal_backoff_time"); key == "delivery.maximal_backoff_time" {
			v.bad("%v is shorter than delivery.minimal_backoff_time (%v)", d.MaxBackoff, d.MinBackoff)(key)
		} else {
			v.bad("%v is longer than delivery.maximal_backoff_time (%v)", d.MinBackoff, d.MaxBackoff)(key)
		}
	}

	v.positive(d.PaceSuspend, "delivery.pace_suspend")
	v.positive(d.PaceMaxSuspend, "delivery.pace_max_suspend")
	v.positive(d.PaceDelay, "delivery.pace_delay")
	v.positive(d.PaceMaxDelay, "delivery.pace_max_delay")
	v.positive(d.QuotaWindow, "delivery.quota_window")
	// 0 is Postfix's "try only once" (deliver.Lifetime).
	for i, life := range []time.Duration{d.MaxQueueLifetime, d.BounceQueueLifetime} {
		if life < 0 {
			v.bad("%v is negative (0 tries delivery only once)", life)(
				[]string{"delivery.max_queue_lifetime", "delivery.bounce_queue_lifetime"}[i])
		}
	}
	if d.DelayWarning < 0 {
		v.bad("%v is negative", d.DelayWarning)("delivery.delay_warning")
	}
	if d.BounceSizeLimit <= 0 {
		v.bad("%d is not positive", d.BounceSizeLimit)("delivery.bounce_size_limit")
	}

	t := &c.TLS
	implicit, submission := c.serverTLS()
	if (t.Server || implicit || submission) && t.Certificate == "" {
		v.bad("TLS for clients needs a certificate: set tls.certificate or --server-tls-certificate")("tls.server", "tls.server_connection", "smtp.interfaces")
	}
	if t.ServerRequired && !t.Server && !implicit {
		v.bad("requiring TLS needs TLS: set tls.server (--server-tls) too")("tls.server_required")
	}
	if c.TLS.RequireClientCert && c.TLS.ClientCA == "" {
		v.bad("needs tls.client_ca (--server-tls-verify), the CAs that sign the clients' certificates")("tls.require_client_cert")
	}
	if (c.TLS.AskClientCert || c.TLS.ClientCA != "" || c.TLS.RequireClientCert) && c.TLS.Certificate == "" {
		v.bad("client certificates need TLS: set tls.certificate")("tls.ask_client_cert", "tls.client_ca")
	}

	if t.ClientVerifyName != "" && (t.ClientVerify == "" || remote.TLSSettings{Verify: t.ClientVerify}.VerifyOff()) {
		v.bad("a name to verify needs verification: set tls.client_verify (--client-tls-verify) to a CA file or <default>")("tls.client_verify_name")
	}
	if t.Client && t.ClientConnection {
		v.bad("STARTTLS and TLS from the first byte exclude each other")("tls.client", "tls.client_connection")
	}

	a := &c.Auth
	if a.FailureLimit < 1 {
		v.bad("%d is less than 1", a.FailureLimit)("auth.failure_limit")
	}
	v.positive(a.FailureWindow, "auth.failure_window")
	if a.RejectSenderLoginMismatch && a.SenderLoginMaps == "" {
		v.bad("needs auth.sender_login_maps")("auth.reject_sender_login_mismatch")
	}

	for name, tr := range c.Transports {
		k := "transports." + name
		switch tr.TLS {
		case "", "none", "may", "encrypt", "verify", "secure", "wrapper":
		default:
			v.bad("%q: want none, may, encrypt, verify, secure or wrapper", tr.TLS)(k + ".tls")
		}
		if tr.RateDelay < 0 {
			v.bad("%v is negative", tr.RateDelay)(k + ".destination_rate_delay")
		}
		v.nextHop(tr.NextHop, k+".nexthop")
		if a, err := netip.ParseAddr(tr.BindAddress); tr.BindAddress != "" && (err != nil || a.Zone() != "") {
			v.bad("%q is not an IP address", tr.BindAddress)(k + ".bind_address")
		}
	}
	for _, hop := range c.Routing.FallbackRelay {
		v.nextHop(hop, "routing.smtp_fallback_relay")
	}
	// The resolvers are asked at each lookup, not at start: a bad one
	// would fail every message (and a bare IP is no DNS server's port).
	if cf := c.Routing.ContentFilter; cf != "" {
		if err := table.CheckFilter(cf); strings.Contains(cf, ":") && err != nil {
			v.bad("%v", err)("routing.content_filter")
		} else if err := hostport.Check(hostport.FilterAddr(cf)); err != nil {
			v.bad("%q: want [TRANSPORT:]HOST[:PORT], as scan:[127.0.0.1]:10025: %v", cf, err)("routing.content_filter")
		}
	}
	for _, d := range []struct{ key, addr string }{{"smtp.dns_server", c.SMTP.DNSServer}, {"policy.dns_server", c.Policy.DNSServer}, {"routing.dns_server", c.Routing.DNSServer}} {
		if err := hostport.Check(d.addr); d.addr != "" && err != nil {
			v.bad("%q: want the DNS server's IP:PORT, as 127.0.0.1:53: %v", d.addr, err)(d.key)
		}
	}
	// default_transport is TRANSPORT[:NEXTHOP] ("smtp:[smtp.example.com]:587",
	// "error:TEXT"), as in Postfix.
	switch name, hop := route.SplitResult(c.Routing.DefaultTransport); name {
	case "", "smtp", "relay":
		v.nextHop(hop, "routing.default_transport")
	case route.Error, route.Retry, route.Discard: // their text is no next hop
	default:
		if _, ok := c.Transports[name]; !ok {
			v.bad("%q is not a transport: define [transports.%s]", c.Routing.DefaultTransport, name)("routing.default_transport")
		} else {
			v.nextHop(hop, "routing.default_transport")
		}
	}
	if c.Routing.ConcurrencyLimit < 1 {
		v.bad("%d is less than 1", c.Routing.ConcurrencyLimit)("routing.destination_concurrency_limit")
	}
	if c.Routing.RecipientLimit < 1 {
		v.bad("%d is less than 1", c.Routing.RecipientLimit)("routing.destination_recipient_limit")
	}
	if c.Routing.RateDelay < 0 {
		v.bad("%v is negative", c.Routing.RateDelay)("routing.destination_rate_delay")
	}
	if c.Routing.InitialConcurrency < 0 {
		v.bad("%d is negative", c.Routing.InitialConcurrency)("routing.initial_destination_concurrency")
	}

	v.positive(c.Filter.Timeout, "filter.timeout")
	v.port(c.POP.Port, "pop.port")
	v.positive(c.Milter.ConnectTimeout, "milter.connect_timeout")
	v.positive(c.Milter.CommandTimeout, "milter.command_timeout")
	v.positive(c.Milter.ContentTimeout, "milter.content_timeout")
	for key, n := range map[string]int{"policy.client_connection_rate_limit": c.Policy.ClientConnectionRateLimit,
		"policy.client_message_rate_limit": c.Policy.ClientMessageRateLimit, "policy.client_recipient_rate_limit": c.Policy.ClientRecipientRateLimit} {
		if n < 0 {
			v.bad("%d is negative; 0 sets no limit", n)(key)
		}
	}
	v.positive(c.Policy.AnvilRateTimeUnit, "policy.anvil_rate_time_unit")
	if strings.ContainsFunc(c.SMTP.Banner, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v.bad("%q has control characters", c.SMTP.Banner)("smtp.banner")
	}
	if rest := strings.NewReplacer("${myhostname}", "", "$myhostname", "", "${mail_name}", "", "$mail_name", "").Replace(c.SMTP.Banner); strings.Contains(rest, "$") {
		// Postfix expands any parameter; a $mail_version carried over
		// would otherwise be greeted with as it is written.
		v.bad("%q: only $myhostname and $mail_name are expanded", c.SMTP.Banner)("smtp.banner")
	}
	if o := c.Rewrite.Myorigin; strings.Contains(o, "$") {
		v.bad("%q: write the domain itself ($myhostname and the like are Postfix's variables)", o)("rewrite.myorigin")
	} else if a, err := envelope.Parse("postmaster@" + o); o != "" && (err != nil || a.IsLiteral()) {
		v.bad("%q is not a domain", o)("rewrite.myorigin")
	}
	for _, w := range c.Rewrite.LocalHeaderRewriteClients {
		switch w {
		case "permit_inet_interfaces", "permit_mynetworks", "permit_sasl_authenticated", "static:all":
		default:
			v.bad("%q: want permit_inet_interfaces, permit_mynetworks, permit_sasl_authenticated or static:all", w)("rewrite.local_header_rewrite_clients")
		}
	}
	switch c.Milter.DefaultAction {
	case "tempfail", "accept", "reject", "quarantine":
	default:
		v.bad("%q: want tempfail, accept, reject or quarantine", c.Milter.DefaultAction)("milter.default_action")
	}
	if k := c.DKIM; (k.Domain != "" || k.Selector != "" || k.Key != "") && (k.Domain == "" || k.Selector == "" || k.Key == "") {
		v.bad("DKIM signing needs domain, selector and key")("dkim.domain", "dkim.selector", "dkim.key")
	} else if k.Domain != "" {
		// Each at its own line: the signer, which checks them too,
		// is built after validation and knows only the key's.
		if d := strings.TrimSuffix(strings.TrimSpace(k.Domain), "."); !dkim.ValidName(d) {
			v.bad("%q is not a domain name", k.Domain)("dkim.domain")
		}
		if !dkim.ValidName(strings.TrimSpace(k.Selector)) {
			v.bad("%q is not a selector: letters, digits, hyphens and underscores, in dot-separated labels", k.Selector)("dkim.selector")
		}
	}
	if c.SRS.Domain != "" && c.SRS.SecretFile == "" {
		v.bad("an SRS domain without a secret file")("srs.domain", "srs.secret_file")
	}
	if strings.ContainsAny(c.SRS.Domain, "@<>= ") {
		v.bad("%q is not a domain", c.SRS.Domain)("srs.domain")
	}
	if c.Admin.Port != 0 {
		v.port(c.Admin.Port, "admin.port")
	}
	if c.Admin.HTTP != "" {
		// The port is a number or a service name: "unix:/path" splits too,
		// and would otherwise fail only at listen time, with a resolver's error.
		_, port, err := net.SplitHostPort(c.Admin.HTTP)
		if err == nil {
			_, err = hostport.Port(port)
		}
		if err != nil {
			v.bad("%q: want HOST:PORT, e.g. 127.0.0.1:8025", c.Admin.HTTP)("admin.http")
		}
	}
	if c.Admin.PasswordFile == "" {
		// The start refuses these (admin.CheckListener); so does --check.
		const need = "%s: a password is required to listen on a non-loopback address: set --admin-password-file ([admin] password_file), or listen on 127.0.0.1"
		if h, _, err := net.SplitHostPort(c.Admin.HTTP); err == nil && offLoopback(h) {
			v.bad(need, c.Admin.HTTP)("admin.http")
		}
		for _, a := range c.FrontendAddrs("admin", "127.0.0.1", c.Admin.Port) {
			if h, _, err := net.SplitHostPort(a); c.Admin.Port != 0 && err == nil && offLoopback(h) {
				v.bad(need, a)("admin.port")
				break
			}
		}
	}

	v.listenerClashes()

	en := &c.Enforce
	v.positive(en.BanTime, "enforce.ban_time")
	if en.BanDelay < 0 {
		v.bad("%v is negative", en.BanDelay)("enforce.ban_delay")
	}
	// A ban never covers more than an IPv4 /16 or an IPv6 /32
	// (enforce.MinBanIPv4Prefix, MinBanIPv6Prefix).
	if n := en.BanIPv4PrefixLength; n < 16 || n > 32 {
		v.bad("%d: want a prefix length from 16 to 32 (32: the address alone)", n)("enforce.ban_ipv4_prefix_length")
	}
	if n := en.BanIPv6PrefixLength; n < 32 || n > 128 {
		v.bad("%d: want a prefix length from 32 to 128 (64: the client's /64; 128: the address alone)", n)("enforce.ban_ipv6_prefix_length")
	}
	if en.AlertRejectionRate <= 0 || en.AlertRejectionRate >= 1 {
		v.bad("%v: want a share between 0 and 1, such as 0.02 for 2%%", en.AlertRejectionRate)("enforce.alert_rejection_rate")
	}
	if en.AlertMinReplies < 1 {
		v.bad("%d is less than 1", en.AlertMinReplies)("enforce.alert_min_replies")
	}
	if en.EncapsulateRateLimit < 0 {
		v.bad("%d is negative (0: no limit)", en.EncapsulateRateLimit)("enforce.encapsulate_rate_limit")
	}
	v.addresses(c)
	v.checkNamedPeers(c)
	// The reports' recipient goes into an envelope: "Name <addr>" is addr;
	// a bare user has no mailbox here (nothing is delivered locally).
	if a, err := mail.ParseAddress(en.Mail); en.Mail != "" && err != nil {
		v.bad("%q: %s; want an address such as admin@example.org (relaykeeper has no local mailboxes)", en.Mail, strings.TrimPrefix(err.Error(), "mail: "))("enforce.mail")
	} else if err == nil {
		en.Mail = a.Address
	}

	if c.Process.MemoryLimit < 0 {
		v.bad("%d is negative; 0 sets no limit", c.Process.MemoryLimit)("process.memory_limit")
	}
	if c.Process.MemoryPerSession < 0 {
		v.bad("%d is negative", c.Process.MemoryPerSession)("process.memory_per_session")
	}

	p := &c.Policy
	v.positive(p.VerifierTimeout, "policy.verifier_timeout")
	if p.MaxConnections < 1 {
		v.bad("%d is less than 1", p.MaxConnections)("policy.max_connections")
	}
	if p.MaxConnectionsPerIP < 1 {
		v.bad("%d is less than 1", p.MaxConnectionsPerIP)("policy.max_connections_per_ip")
	}
	if p.HardErrorLimit < 1 {
		v.bad("%d is less than 1", p.HardErrorLimit)("policy.hard_error_limit")
	}
	relayLists := map[string][]string{"policy.relay_restrictions": p.RelayRestrictions, "policy.recipient_restrictions": p.RecipientRestrictions}
	pasted := false
	for _, key := range []string{"policy.relay_restrictions", "policy.recipient_restrictions"} {
		if item, want, ok := pastedLine(relayLists[key]); ok && !pasted {
			pasted = true
			v.bad("%q: write one restriction per list item, not main.cf's line: [%s]", item, tomlStrings(want))(key)
		}
	}
	if !pasted && !s.Disabled && c.Mode != ModeClient && !refusesRelay(p.RelayRestrictions, p.RestrictionClasses) &&
		!refusesRelay(p.RecipientRestrictions, p.RestrictionClasses) {
		// Postfix refuses to start like this too.
		v.bad("neither it nor policy.recipient_restrictions has reject_unauth_destination, "+
			"reject or defer: anyone could relay anywhere")("policy.relay_restrictions", "policy.recipient_restrictions")
	}
	if c.TLS.ClientCA == "<default>" && c.namesRestriction("permit_tls_all_clientcerts") {
		v.bad("\"<default>\", the system's public CAs, with permit_tls_all_clientcerts lets anyone with a certificate " +
			"from a public CA relay anywhere (an open relay): give the file of the CA that signs your clients' certificates")("tls.client_ca")
	}

	if len(v.probs) == 0 {
		return nil
	}
	return v.probs
}

// Listener roles, written as a prefix of a listen address
// ("submission=0.0.0.0:587"); a bare address is RoleSMTP.
const (
	// RoleSMTP is plain SMTP (port 25): STARTTLS offered when configured.
	RoleSMTP = "smtp"
	// RoleSubmission is message submission (port 587, RFC 6409): TLS and
	// AUTH are required before MAIL.
	RoleSubmission = "submission"
	// RoleSMTPS is submission over TLS from the first byte (port 465,
	// RFC 8314): AUTH is required before MAIL.
	RoleSMTPS = "smtps"
	// RoleReinject is the after-queue content filter's return path
	// (Postfix's 127.0.0.1:10026): no policy, no filters, loopback only.
	RoleReinject = "reinject"
)

// SplitRole splits a listen address into its role and address. The role is
// "" for an unknown prefix.
func SplitRole(entry string) (role, addr string) {
	prefix, rest, ok := strings.Cut(entry, "=")
	if !ok {
		return RoleSMTP, entry
	}
	switch prefix {
	case RoleSMTP, RoleSubmission, RoleSMTPS, RoleReinject:
		return prefix, rest
	}
	return "", rest
}

type validator struct {
	c     *Config
	probs Problems
}

// bad formats a problem and returns a function that files it under the
// first of keys the operator set (see pick).
// clipValue shortens a value quoted in a problem to at most 100 bytes.
func clipValue(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func (v *validator) bad(format string, args ...any) func(keys ...string) {
	return func(keys ...string) {
		v.probs = append(v.probs, v.c.Origin.problem(v.pick(keys...), fmt.Sprintf(format, args...)))
	}
}

// pick returns the first key set by a switch, else the first set in the
// file, else the first key.
func (v *validator) pick(keys ...string) string {
	for _, k := range keys {
		if v.c.Origin.Switches[k] != "" {
			return k
		}
	}
	for _, k := range keys {
		if v.c.Origin.Lines[k] > 0 {
			return k
		}
	}
	return keys[0]
}

// nextHop checks a Postfix next hop ("[host]:port", "host"), if any.
func (v *validator) nextHop(hop, key string) {
	if _, err := route.ParseNextHop(strings.TrimSpace(hop)); hop != "" && err != nil {
		v.bad("%q: %v", hop, errors.Unwrap(err))(key) // without "route: next hop ..."
	}
}

func (v *validator) port(p int, key string) {
	if p < 1 || p > 65535 {
		v.bad("%d is out of range 1-65535", p)(key)
	}
}

func (v *validator) positive(d time.Duration, key string) bool {
	if d <= 0 {
		v.bad("%v is not positive", d)(key)
		return false
	}
	return true
}

// problem places msg about key where the operator set it.
func (o Origin) problem(key, msg string) Problem {
	if sw := o.Switches[key]; sw != "" {
		return Problem{Switch: sw, Key: key, Msg: msg}
	}
	if line := o.Lines[key]; line > 0 {
		return Problem{File: o.File, Line: line, Key: key, Msg: msg}
	}
	return Problem{Key: key, Msg: msg}
}

// ResolveHostPort turns a smarthost as E-MailRelay spells it into the
// "host:port" that net.Dial wants: a service name becomes its number
// ("smarthost:smtp" is "smarthost:25"), a bare host gets port 25, and an
// IPv6 address must be in brackets ("[::1]:25", "[::1]") because in
// "::1:25" nobody can tell where the address ends.
//
// Service names are resolved once, here, so that a typo fails at start-up
// and not at the first delivery.
func ResolveHostPort(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty smarthost; want host:port")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		switch {
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			host, port = s[1:len(s)-1], "25"
		case !strings.Contains(s, ":"):
			host, port = s, "25"
		case net.ParseIP(s) != nil:
			return "", fmt.Errorf("%q: put an IPv6 address in brackets, as in [%s]:25", s, s)
		default:
			return "", fmt.Errorf("%q: want host:port", s)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q: missing host", s)
	}
	if strings.IndexFunc(host, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune("/@[]", r)
	}) >= 0 {
		return "", fmt.Errorf("%q: %q is not a host name or address", s, host)
	}
	if (strings.HasPrefix(s, "[") || strings.Contains(host, ":")) &&
		(net.ParseIP(host) == nil || !strings.Contains(host, ":")) {
		// Postfix's relayhost = [host]:port, or [IPv6:addr]: the brackets
		// there only say "no MX lookup", which a smarthost never has.
		bare := host
		if len(bare) > 5 && strings.EqualFold(bare[:5], "ipv6:") && net.ParseIP(bare[5:]) != nil {
			bare = "[" + bare[5:] + "]"
		}
		if strings.HasPrefix(s, "[") && bare != "" && !strings.Contains(bare, ":") || strings.HasPrefix(bare, "[") {
			return "", fmt.Errorf("%q: write the smarthost without Postfix's brackets, as %s:%s (it is never looked up by MX)", s, bare, port)
		}
		return "", fmt.Errorf("%q: %q is not an IPv6 address", s, host)
	}
	n, err := hostport.Port(port)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// checkListenAddr accepts what smtp.interfaces may hold: an address
// ("127.0.0.1", "::1", "[::1]"), an address or host with a port
// ("0.0.0.0:2525", "[::]:2525", ":2525"), or a name ("localhost", or an
// interface name, as E-MailRelay allows); the SMTP server decides what a
// name means.
func checkListenAddr(s string) error {
	if s == "" {
		return errors.New("empty address")
	}
	// An IPv6 address may have its zone ("fe80::1%eth0"), as E-MailRelay's
	// link-local examples do.
	isIP := func(s string) bool { _, err := netip.ParseAddr(s); return err == nil }
	if isIP(s) {
		return nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if !isIP(s[1 : len(s)-1]) {
			return errors.New("not an IPv6 address")
		}
		return nil
	}
	host := s
	if strings.Contains(s, ":") {
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			return errors.New("want an address, address:port or name")
		}
		if _, err := hostport.Port(port); err != nil {
			return err
		}
		if (strings.HasPrefix(s, "[") || strings.Contains(h, ":")) &&
			(!isIP(h) || !strings.Contains(h, ":")) {
			return errors.New("not an IPv6 address")
		}
		host = h
	}
	if strings.HasPrefix(host, "fd#") {
		return errors.New("inherited file descriptors (E-MailRelay's fd#N) are not supported; give an address")
	}
	if strings.HasPrefix(host, "/") {
		return errors.New("unix sockets (E-MailRelay's /path) are not supported; give an address")
	}
	if strings.IndexFunc(host, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune("/@[]=,", r)
	}) >= 0 {
		return fmt.Errorf("%q is not an address or name", host)
	}
	return nil
}

// Routed says whether Postfix-style routing is configured: transport maps,
// sender-dependent maps, a default transport or named transports.
func (c *Config) Routed() bool {
	r := &c.Routing
	return len(r.TransportMaps) > 0 || len(r.SenderDependentMaps) > 0 || len(r.SenderRelayHostMaps) > 0 ||
		len(r.FallbackRelay) > 0 || r.DefaultTransport != "" || len(c.Transports) > 0
}

// Dials says whether queued mail goes out through the routing dialer
// (internal/route): with routing, delivery by MX, or a Postfix client
// setting that only the dialer applies (smtp_sasl_password_maps, the
// [routing] rate delay and slow start), also to forward.to.
func (c *Config) Dials() bool {
	dialerOnly := len(c.Auth.PasswordMaps) > 0 || c.Routing.RateDelay > 0 || c.Routing.InitialConcurrency > 0
	return c.Routed() || c.DeliversByMX() || (c.Mode == ModeServer && dialerOnly)
}

// DeliversByMX says whether the relay, storing mail, forwards it with no
// smarthost and no routing configured: then each recipient's domain is
// looked up by MX, as Postfix does with no relayhost. Forwarding must have
// been asked for (--forward, --poll, --forward-on-disconnect); a relay
// given none of those only stores, as E-MailRelay's --as-server does.
func (c *Config) DeliversByMX() bool {
	f := &c.Forward
	return c.Mode == ModeServer && f.To == "" && !c.Routed() &&
		(f.AtStartup || f.Poll > 0 || f.PollSet || f.OnDisconnect)
}

// keyed is an error about one setting, which it names by its TOML key
// ("policy.client_restrictions"); the packages that check a setting's
// contents (restriction lists, networks) return such errors.
type keyed interface {
	error
	ConfigKey() string
}

// SettingError is a file or program a setting names that could not be
// used when the relay started (a certificate, a secrets file, a filter):
// Place names where the setting was made, as Validate's problems do.
type SettingError struct {
	Key string // "tls.certificate"
	Err error
}

func (e *SettingError) Error() string     { return e.Key + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error     { return e.Err }
func (e *SettingError) ConfigKey() string { return e.Key }

// Setting returns err, if any, as a problem with the setting key.
func Setting(key string, err error) error {
	if err == nil {
		return nil
	}
	return &SettingError{Key: key, Err: err}
}

// settingError is a SettingError, or another package's error about the
// file or program a setting names (remote's TLS files).
type settingError interface {
	keyed
	Unwrap() error
}

// Place puts the file and line where each setting named by an error in
// err was set (errors.Join's included) in front of it, as Validate's
// problems have them, so that a restriction list item or a network that
// does not parse is found at its line; a SettingError (or one like it)
// made by a switch names the switch instead of the key. Other errors are
// left as they are.
func (o Origin) Place(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, o.Place(e))
		}
		return errors.Join(out...)
	}
	if s, ok := err.(settingError); ok && !o.Given(s.ConfigKey()) {
		for _, sw := range Switches() { // a default: name the switch too
			if slices.Contains(sw.Keys, s.ConfigKey()) {
				return fmt.Errorf("%s (--%s): %w", s.ConfigKey(), sw.Long, s.Unwrap())
			}
		}
	}
	if s, ok := err.(settingError); ok && o.Switches[s.ConfigKey()] != "" {
		return fmt.Errorf("%s: %w", o.Switches[s.ConfigKey()], s.Unwrap())
	}
	var pe *route.ParamError // routing's tables, and auth's smtp_sasl_password_maps
	if errors.As(err, &pe) {
		for _, k := range []string{"routing." + pe.Param, "auth." + pe.Param} {
			if o.Lines[k] > 0 && o.Switches[k] == "" {
				return fmt.Errorf("%s:%d: %s: %w", o.File, o.Lines[k], k, pe.Err)
			}
		}
	}
	var k keyed
	if errors.As(err, &k) && o.Switches[k.ConfigKey()] == "" && o.Lines[k.ConfigKey()] > 0 {
		return fmt.Errorf("%s:%d: %w", o.File, o.Lines[k.ConfigKey()], err)
	}
	return err
}

// emailRelayLogFields says whether s is E-MailRelay's --log-format, a
// list of the fields its log lines start with.
func emailRelayLogFields(s string) bool {
	for f := range strings.SplitSeq(s, ",") {
		if !slices.Contains([]string{"time", "unit", "address", "port", "msgid"}, f) {
			return false
		}
	}
	return true
}

// ClientSettings is the outbound client's part of the TLS configuration.
func (t *TLS) ClientSettings() remote.TLSSettings {
	return remote.TLSSettings{Opportunistic: t.Client, Required: t.ClientRequired, Implicit: t.ClientConnection,
		Verify: t.ClientVerify, ServerName: t.ClientServerName, VerifyName: t.ClientVerifyName, Certificate: t.ClientCertificate, Key: t.ClientKey}
}

// offLoopback says whether a listening address's host is certainly off
// loopback: empty (every address) or an IP address other than 127.0.0.0/8
// and ::1. A name is left to the start, which resolves it.
func offLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "" || err == nil && !ip.IsLoopback()
}

// listenerClashes finds two of the relay's own listeners (SMTP, POP3, the
// admin interface, the admin HTTP API) given the same address, which the
// start cannot bind twice: --check says so, as the start would fail.
func (v *validator) listenerClashes() {
	c := v.c
	if c.Mode == ModeClient {
		return // no listener
	}
	seen := map[string]string{} // address -> the listener given it first
	if !c.SMTP.Disabled {
		for _, l := range c.SMTPListens() {
			seen[l.Addr] = l.Role
		}
	}
	type own struct{ addr, what, key string }
	var others []own
	if c.POP.Enabled {
		for _, a := range c.FrontendAddrs("pop", "", c.POP.Port) {
			others = append(others, own{a, "pop", "pop.port"})
		}
	}
	if c.Admin.Port != 0 {
		for _, a := range c.FrontendAddrs("admin", "127.0.0.1", c.Admin.Port) {
			others = append(others, own{a, "admin", "admin.port"})
		}
	}
	if c.Admin.HTTP != "" {
		others = append(others, own{c.Admin.HTTP, "admin-http", "admin.http"})
	}
	for _, o := range others {
		if w, ok := seen[o.addr]; ok {
			v.bad("%s is given for both %s and %s", o.addr, w, o.what)(o.key)
		} else {
			seen[o.addr] = o.what
		}
	}
}
