package config

import (
	"cmp"
	"log/slog"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/policy"
)

// What the relay does with the mail it receives, as the configuration
// says: the answers main builds its parts by.

// Proxies says whether each message goes upstream during its own SMTP
// session (--as-proxy, --immediate).
func (c *Config) Proxies() bool {
	return c.Mode == ModeProxy || c.Forward.Immediate
}

// Forwards says whether the relay, storing mail, has somewhere to
// forward it (a smarthost, routing, MX or a content filter), and whether
// anything triggers forwarding (--forward, --poll,
// --forward-on-disconnect). Forwarding without a trigger only stores.
func (c *Config) Forwards() (forwarding, triggered bool) {
	f := &c.Forward
	forwarding = c.Mode == ModeServer && !f.Immediate &&
		(f.To != "" || c.Routed() || c.DeliversByMX() || c.Routing.ContentFilter != "")
	return forwarding, forwarding && (f.Poll > 0 || f.OnDisconnect || f.AtStartup)
}

// WritesSpool reports whether the relay writes in its spool: always but
// for POP3 alone (--no-smtp) with --pop-no-delete and nothing forwarded,
// which only reads a spool that something else fills.
func (c *Config) WritesSpool() bool {
	fwd, _ := c.Forwards()
	return !c.SMTP.Disabled || !c.POP.NoDelete || fwd || c.Mode == ModeClient
}

// ForwardsOnDisconnect says whether a client's disconnection starts
// forwarding: --forward-on-disconnect, or --poll 0.
func (c *Config) ForwardsOnDisconnect() bool {
	return c.Forward.OnDisconnect || (c.Forward.PollSet && c.Forward.Poll == 0)
}

// Describe says in words what the relay does, for the start-up log line:
// upstream is the smarthost's resolved address, scheduling whether a
// delivery scheduler runs.
func (c *Config) Describe(upstream string, scheduling bool) string {
	switch {
	case c.Proxies():
		return "proxy to " + upstream
	case !scheduling:
		return "store"
	case c.DeliversByMX():
		return "store and forward to each recipient's domain by MX"
	case c.Routed():
		return "store and forward by routing"
	}
	return "store and forward to " + upstream
}

// SyslogFacility is the facility under which the log also goes to the
// system log, or "" for none: --syslog's; with --close-stderr and no
// --log-file, mail, as E-MailRelay logs there once stderr is closed;
// none with --no-syslog.
func (l Log) SyslogFacility() string {
	switch {
	case l.NoSyslog:
		return ""
	case l.Syslog != "":
		return l.Syslog
	case l.CloseStderr && l.File == "":
		return "mail"
	}
	return ""
}

// Level is the diagnostic log's level: warnings; information with --log
// or --as-client; debug detail with --verbose.
func (c *Config) Level() slog.Level {
	switch {
	case c.Log.Verbose:
		return slog.LevelDebug
	case c.Log.Enabled || c.Mode == ModeClient:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// Given says whether the operator set key ("policy.mynetworks"), in the
// file or by a switch, rather than leaving its default.
func (o Origin) Given(key string) bool {
	_, inFile := o.Lines[key]
	_, bySwitch := o.Switches[key]
	return inFile || bySwitch
}

// TrustsSecretsFile says whether the relay's own networks are the secrets
// file's "server none" addresses: with --server-auth and no
// policy.mynetworks of the operator's, as E-MailRelay has it.
func (c *Config) TrustsSecretsFile() bool {
	return c.Auth.ServerSecrets != "" && !c.Origin.Given("policy.mynetworks")
}

// serverTLS says whether an SMTP listener speaks TLS from the first byte
// (--server-tls-connection, smtps=) and whether one is a submission=
// listener, which requires STARTTLS (docs/policy.md).
func (c *Config) serverTLS() (implicit, submission bool) {
	implicit = c.TLS.ServerConnection
	for _, entry := range c.SMTP.Interfaces {
		switch role, _ := SplitRole(entry); role {
		case RoleSMTPS:
			implicit = true
		case RoleSubmission:
			submission = true
		}
	}
	return implicit, submission
}

// AuthNeverOffered returns a warning for the start-up log when the server
// secrets have accounts (hasAccounts) but no SMTP listener can offer AUTH:
// it is offered only over TLS unless auth.allow_insecure, and no listener
// has TLS. E-MailRelay offers AUTH in plain text, so its --server-auth
// set-ups without TLS come here. "" when AUTH can be offered.
func (c *Config) AuthNeverOffered(hasAccounts bool) string {
	implicit, submission := c.serverTLS()
	if !hasAccounts || c.Auth.AllowInsecure || c.TLS.Server || implicit || submission {
		return ""
	}
	return "--server-auth: AUTH is never offered, since it needs TLS and no listener has any: nobody can log in" +
		" (add --server-tls with --server-tls-certificate, or set [auth] allow_insecure = true to offer it in plain text)"
}

// MailRestrictions are checked at MAIL FROM: the enforcer's blocked sender
// domains, "enforced at MAIL FROM from then on".
func (c *Config) MailRestrictions() []string {
	if c.Enforce.SenderAccess == "" || c.Enforce.Disabled {
		return nil
	}
	return []string{"check_sender_access texthash:" + c.Enforce.SenderAccess}
}

// Enforcing says whether the relay acts on upstream refusals: when it
// forwards, to a smarthost, by routing, or by MX with no routing at all
// (DeliversByMX: README's first command, the shipped unit), and
// enforcement is not turned off. A client run (--as-client) only delivers.
func (c *Config) Enforcing() bool {
	return !c.Enforce.Disabled && c.Mode != ModeClient && (c.Forward.To != "" || c.Routed() || c.DeliversByMX())
}

// MailOrigin is the domain an address without one gets, as Postfix's
// $myorigin: [rewrite] myorigin, else domain, else host.
func (c *Config) MailOrigin(host string) string {
	return cmp.Or(c.Rewrite.Myorigin, c.Domain, host)
}

// NeverBlock are the domains no refusal blocks: [enforce] never_block and
// the relay's own, which Gmail may name as the domain at fault: --domain,
// the relay domains, the SRS domain forwarded senders are rewritten into,
// and the domains its copies and reports come from (relay_address) and are
// signed as ([dkim] domain), and the one unqualified senders get
// ([rewrite] myorigin).
func (c *Config) NeverBlock() []string {
	own := append(slices.Clone(c.Enforce.NeverBlock), c.Domain)
	// Postfix's forms: several names an item, files of them, "!".
	own = append(own, policy.RelayDomainNames(c.Policy.RelayDomains)...)
	if c.SRS.SecretFile != "" && c.SRS.Domain != "" {
		own = append(own, c.SRS.Domain)
	}
	if a := c.Enforce.RelayAddress; strings.Contains(a, "@") {
		own = append(own, strings.TrimRight(a[strings.LastIndexByte(a, '@')+1:], "> "))
	}
	if c.DKIM.Domain != "" {
		own = append(own, c.DKIM.Domain)
	}
	if c.Rewrite.Myorigin != "" {
		own = append(own, c.Rewrite.Myorigin) // the relay's own clients' senders
	}
	return own
}

// TrustedUpstreams are the upstreams whose refusals may sanction a client
// or a domain besides Google's: [enforce] trusted_upstreams, the smarthost
// (forward.to) and every named transport's next hop.
func (c *Config) TrustedUpstreams() []string {
	t := slices.Clone(c.Enforce.TrustedUpstreams)
	if c.Forward.To != "" {
		t = append(t, c.Forward.To)
	}
	for _, tr := range c.Transports {
		if tr.NextHop != "" {
			t = append(t, tr.NextHop)
		}
	}
	return t
}

// TransportLogNames maps each transport that has a log_name to it, for the
// mail log's delivery lines (Postfix's -o syslog_name).
func (c *Config) TransportLogNames() map[string]string {
	names := map[string]string{}
	for name, t := range c.Transports {
		if t.LogName != "" {
			names[name] = t.LogName
		}
	}
	return names
}

// Upstream is the smarthost's host:port, the port filled in.
func (c *Config) Upstream() string {
	addr, err := ResolveHostPort(c.Forward.To)
	if err != nil {
		return c.Forward.To // Validate has already refused what cannot resolve
	}
	return addr
}
