// Package config turns the configuration file and the command line into
// plain structs, with defaults in one literal and validation that reports
// every problem with its file and line.
//
// Only cmd/relaykeeper reads this package; every other package takes its own
// small options struct, so that the wiring stays explicit in main.
package config

import (
	"maps"
	"time"
)

// DefaultPOPAuth is the POP3 accounts file when --pop is given without
// --pop-auth.
const DefaultPOPAuth = "/etc/relaykeeper.auth"

// Mode is what the process does with mail.
type Mode string

const (
	// ModeServer stores accepted mail in the spool and forwards it when a
	// trigger says so (--poll, --forward-on-disconnect, admin), or never.
	ModeServer Mode = "server"
	// ModeProxy forwards each message while it is being received: the
	// client's reply to its final dot is the upstream's reply.
	ModeProxy Mode = "proxy"
	// ModeClient forwards everything spooled, then exits.
	ModeClient Mode = "client"
)

// Config is the whole configuration after the file and the switches have
// been merged. Durations are time.Duration; sizes are bytes.
type Config struct {
	Mode Mode `toml:"mode"`

	// Domain is the name used in the greeting, the Received header and the
	// EHLO sent upstream. Defaults to the host name.
	Domain string `toml:"domain"`

	// RecipientDelimiter is Postfix's recipient_delimiter: each character
	// separates a localpart from its extension, so that access and
	// transport tables find user@domain for user+foo@domain. Empty (the
	// default, as Postfix's own) turns extensions off.
	RecipientDelimiter string `toml:"recipient_delimiter"`

	SMTP     SMTP     `toml:"smtp"`
	Spool    Spool    `toml:"spool"`
	Forward  Forward  `toml:"forward"`
	Log      Log      `toml:"log"`
	Process  Process  `toml:"process"`
	Delivery Delivery `toml:"delivery"`
	TLS      TLS      `toml:"tls"`
	Auth     Auth     `toml:"auth"`
	Policy   Policy   `toml:"policy"`
	Enforce  Enforce  `toml:"enforce"`
	Routing  Routing  `toml:"routing"`
	Rewrite  Rewrite  `toml:"rewrite"`
	Filter   Filter   `toml:"filter"`
	POP      POP      `toml:"pop"`
	Milter   Milter   `toml:"milter"`
	DKIM     DKIM     `toml:"dkim"`
	SRS      SRS      `toml:"srs"`
	Admin    Admin    `toml:"admin"`
	// Transports are named outbound transports ([transports.NAME]), as
	// Postfix's master.cf smtp entries with their -o overrides.
	Transports map[string]Transport `toml:"transports"`

	// OtherInterfaces keeps the --interface entries that name another
	// listener with E-MailRelay's prefixes ("pop=ADDR", "admin=ADDR"),
	// keyed by the prefix, so that the POP3 and admin front ends can take
	// them up once they exist. Not read from the file yet.
	OtherInterfaces map[string][]string `toml:"-"`

	// Check is --check: build everything as a start would, then exit.
	Check bool `toml:"-"`

	// Origin records where each setting came from. It is not a setting:
	// Load and the command-line parser fill it so that Validate can point
	// at the line or the switch to fix instead of at a Go field name.
	Origin Origin `toml:"-"`
}

// Origin says where settings came from. Keys are TOML keys ("smtp.port").
// The zero value means "everything is a default".
type Origin struct {
	// File is the configuration file that was loaded, empty if none.
	File string
	// Lines maps a key to its line in File.
	Lines map[string]int
	// Switches maps a key to the command-line switch that last set it
	// ("--port"); a switch overrides the file, so it wins here too.
	Switches map[string]string
}

// SMTP configures the listeners and the server side of the protocol.
type SMTP struct {
	// Disabled is --no-smtp: no SMTP listener at all.
	Disabled bool `toml:"disabled"`
	// Port is used for every Interface given without a port.
	Port int `toml:"port"`
	// Interfaces are listen addresses ("127.0.0.1", "0.0.0.0:2525", "::").
	// Empty means all addresses on Port.
	Interfaces []string `toml:"interfaces"`
	// RemoteClients allows clients outside loopback and private networks.
	RemoteClients bool `toml:"remote_clients"`
	// MaxMessageSize is --size; 0 means unlimited.
	MaxMessageSize int64 `toml:"max_message_size"`
	// MaxRecipients per message.
	MaxRecipients int `toml:"max_recipients"`
	// IdleTimeout is how long the server waits for the client's next command.
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// TransactionTimeout bounds one MAIL..final-dot transaction; text
	// still arriving at 500 octets a second or faster earns it more time.
	TransactionTimeout time.Duration `toml:"transaction_timeout"`
	// ShutdownGrace is how long sessions may run on after SIGTERM.
	ShutdownGrace time.Duration `toml:"shutdown_grace"`
	// ClientNames looks up each client's forward-confirmed host name
	// (Postfix's smtpd_peername_lookup), for the Received header, the
	// mail log and the welcomelist's and the policy's name patterns.
	ClientNames bool `toml:"client_names"`
	// DNSServer is the resolver for client names ("ip:port"); the
	// system's by default.
	DNSServer string `toml:"dns_server"`
	// Banner is Postfix's smtpd_banner, the greeting's text after 220:
	// $myhostname is domain, $mail_name "relaykeeper". Empty: "DOMAIN
	// ESMTP Service Ready".
	Banner string `toml:"banner"`
}

// Spool configures the durable queue on disk.
type Spool struct {
	Dir string `toml:"dir"`
}

// Forward configures the upstream (smarthost) and when to forward to it.
type Forward struct {
	// To is the smarthost, "host:port"; "host:smtp" is port 25. Empty,
	// with no [routing], forwarding sends each recipient's mail to its
	// domain's MX hosts, as Postfix does with no relayhost.
	To string `toml:"to"`
	// AtStartup is --forward: forward the spool once when starting.
	AtStartup bool `toml:"at_startup"`
	// Poll is the forwarding period; zero means no polling. PollSet tells
	// "--poll 0" (forward on disconnect) from no --poll at all.
	Poll    time.Duration `toml:"poll"`
	PollSet bool          `toml:"-"`
	// OnDisconnect forwards whenever an SMTP client disconnects.
	OnDisconnect bool `toml:"on_disconnect"`
	// Immediate forwards each message during DATA (what --as-proxy does).
	Immediate bool `toml:"immediate"`
	// ConnectionTimeout bounds connecting, and the greeting unless
	// PromptTimeout is set.
	ConnectionTimeout time.Duration `toml:"connection_timeout"`
	// PromptTimeout is E-MailRelay's --prompt-timeout: how long to wait
	// for the upstream's greeting once connected before saying EHLO
	// without it; zero leaves the greeting to ConnectionTimeout, which
	// fails the attempt when it passes.
	PromptTimeout time.Duration `toml:"prompt_timeout"`
	// ResponseTimeout bounds the wait for each upstream reply but the one
	// to the final dot, which gets 10 minutes (Postfix's
	// smtp_data_done_timeout), in proxy mode too.
	ResponseTimeout time.Duration `toml:"response_timeout"`
	// ClientInterface is --client-interface: the local IP address
	// connections to upstreams leave from (a transport's bind_address
	// wins); empty lets the system choose.
	ClientInterface string `toml:"client_interface"`
}

// Delivery configures the outbound scheduler.
type Delivery struct {
	// Connections is how many upstream connections run in parallel.
	// Postfix allows 20 per destination; 10 keeps delivery up with 100
	// clients sending at once without crowding a smarthost.
	Connections int `toml:"connections"`
	// MessagesPerConnection is how many messages one connection carries
	// before it is closed and a new one opened.
	MessagesPerConnection int `toml:"messages_per_connection"`
	// MinBackoff and MaxBackoff bound the retry delay after a temporary
	// failure, doubled per attempt with jitter (Postfix's
	// minimal_backoff_time and maximal_backoff_time; relaykeeper's first
	// retry comes after 60s, not Postfix's 300s).
	MinBackoff time.Duration `toml:"minimal_backoff_time"`
	MaxBackoff time.Duration `toml:"maximal_backoff_time"`
	// PaceSuspend is how long no new session goes to a destination after
	// it said the relay sends too fast (421 4.7.28 "unusual rate"); each
	// further signal doubles it.
	PaceSuspend time.Duration `toml:"pace_suspend"`
	// PaceMaxSuspend bounds the doubled suspension.
	PaceMaxSuspend time.Duration `toml:"pace_max_suspend"`
	// PaceDelay is the pause between deliveries when a paced destination
	// resumes, one session at a time; each further signal doubles it, each
	// delivery takes a quarter off, and under a tenth of PaceDelay the
	// destination is back to its normal limits.
	PaceDelay time.Duration `toml:"pace_delay"`
	// PaceMaxDelay bounds the doubled delay.
	PaceMaxDelay time.Duration `toml:"pace_max_delay"`
	// QuotaWindow is how long everything for a smarthost waits after it
	// said the account's sending quota is used up (550 5.4.5): Gmail's
	// daily limit is a rolling 24 hours.
	QuotaWindow time.Duration `toml:"quota_window"`
	// DoubleBounceRecipient gets a notice that could not be delivered
	// (Postfix's 2bounce_notice_recipient); without an @, the relay's
	// domain is added.
	DoubleBounceRecipient string `toml:"double_bounce_recipient"`
	// MaxQueueLifetime and BounceQueueLifetime are how long a recipient
	// may stay deferred before it fails (Postfix: maximal_queue_lifetime
	// and bounce_queue_lifetime, 5 days); the second is for messages from
	// the null sender. 0, as in Postfix, tries delivery only once.
	MaxQueueLifetime    time.Duration `toml:"max_queue_lifetime"`
	BounceQueueLifetime time.Duration `toml:"bounce_queue_lifetime"`
	// DelayWarning, if positive, sends the sender one notice when a
	// message has waited this long (Postfix: delay_warning_time).
	DelayWarning time.Duration `toml:"delay_warning"`
	// BounceSizeLimit is the largest original, in bytes, that a failure
	// notice returns whole; a larger one comes back as its header only
	// (Postfix: bounce_size_limit).
	BounceSizeLimit int64 `toml:"bounce_size_limit"`
	// Bounces sends delivery status notifications (RFC 3464) to the
	// sender. Off, a failed message is only marked failed, as
	// E-MailRelay does (--no-bounces).
	Bounces bool `toml:"bounces"`
	// Skip5xxGreeting defers the mail when a host greets with 5xx and no
	// other host is left (Postfix's smtp_skip_5xx_greeting, on by
	// default); off, the mail fails at once.
	Skip5xxGreeting bool `toml:"smtp_skip_5xx_greeting"`
}

// Log configures the diagnostic log and the mail log.
type Log struct {
	// Enabled is --log: informational messages, not only warnings.
	Enabled bool `toml:"enabled"`
	// Verbose is --verbose: debug detail, and a trace of every SMTP
	// conversation without the message text.
	Verbose bool `toml:"verbose"`
	// File is --log-file; empty means standard error. It is reopened on
	// SIGHUP, as the mail log is, so that logrotate needs no copytruncate.
	File string `toml:"file"`
	// Format is --log-format: "text" (key=value, the default) or "json",
	// one JSON object per line, for the diagnostic log.
	Format string `toml:"format"`
	// MailLog is where the mail log goes; empty means the same place as
	// the diagnostic log.
	MailLog string `toml:"mail_log"`
	// Syslog is E-MailRelay's --syslog[=FACILITY]: the log also goes to
	// the system log under this facility; NoSyslog is --no-syslog.
	Syslog   string `toml:"-"`
	NoSyslog bool   `toml:"-"`
	// CloseStderr is E-MailRelay's --close-stderr: standard error is
	// closed once the relay has started (see SyslogFacility).
	CloseStderr bool `toml:"-"`
	// DebugPeers are Postfix's debug_peer_list: clients (IPs, networks)
	// and upstreams (host names, domains, IPs, networks) whose whole SMTP
	// conversation goes to the diagnostic log. An absolute path names a
	// file of such entries (Postfix's /file/name form).
	DebugPeers []string `toml:"debug_peers"`
}

// Process configures the process itself.
type Process struct {
	PidFile string `toml:"pid_file"`
	// MemoryLimit is the soft memory limit of the Go runtime, in bytes,
	// with no SMTP session open: the runtime collects garbage earlier
	// rather than grow past it. Each open session raises it by
	// MemoryPerSession, and it is never below one and a half times the
	// heap in use plus 4 MiB, so it never makes the runtime collect
	// without pause; while it is on, GOGC is 400, not 100. 0 sets no
	// limit; GOMEMLIMIT in the environment overrides both keys, GOGC 400.
	MemoryLimit int64 `toml:"memory_limit"`
	// MemoryPerSession is what each open SMTP session adds to
	// MemoryLimit, in bytes.
	MemoryPerSession int64 `toml:"memory_per_session"`
}

// TLS configures TLS on both sides. The switch names are E-MailRelay's.
type TLS struct {
	// Server is --server-tls: offer STARTTLS (needs Certificate).
	Server bool `toml:"server"`
	// Certificate and Key are PEM files; Certificate may hold both
	// (--server-tls-certificate, given once or twice: key, then certificate).
	Certificate string `toml:"certificate"`
	Key         string `toml:"key"`
	// ServerConnection is --server-tls-connection: TLS from the first byte
	// on every SMTP listener (port 465 style).
	ServerConnection bool `toml:"server_connection"`
	// ServerRequired is --server-tls-required: no AUTH or MAIL before TLS.
	ServerRequired bool `toml:"server_required"`
	// AskClientCert is Postfix's smtpd_tls_ask_ccert: ask clients for a
	// certificate (permit_tls_clientcerts, check_ccert_access); ClientCA
	// is smtpd_tls_CAfile, the CAs that permit_tls_all_clientcerts trusts.
	AskClientCert bool   `toml:"ask_client_cert"`
	ClientCA      string `toml:"client_ca"`
	// RequireClientCert is Postfix's smtpd_tls_req_ccert, and with
	// ClientCA E-MailRelay's --server-tls-verify: a TLS handshake (SMTP,
	// POP3) without a client certificate that ClientCA's CAs signed fails.
	RequireClientCert bool `toml:"require_client_cert"`

	// Client is --client-tls: use STARTTLS with the smarthost when offered.
	Client bool `toml:"client"`
	// ClientConnection is --client-tls-connection: TLS from the first byte.
	ClientConnection bool `toml:"client_connection"`
	// ClientRequired is --client-tls-required: never send without TLS.
	ClientRequired bool `toml:"client_required"`
	// ClientVerify is --client-tls-verify: "" verifies the smarthost's
	// certificate against the system's roots when the relay sends it
	// credentials (--client-auth), and otherwise does not (Postfix's "may"
	// and "encrypt"); "<default>" always verifies against the system's
	// roots; "<none>" never verifies, even with credentials (the
	// administrator's explicit opt-out; credentials still go only over
	// TLS); anything else is a CA file to verify against. Verifying
	// includes the server name.
	ClientVerify string `toml:"client_verify"`
	// ClientServerName is the name to send (SNI) and verify; the
	// smarthost's host name by default.
	ClientServerName string `toml:"client_server_name"`
	// ClientVerifyName is --client-tls-verify-name: the name the
	// smarthost's certificate must be valid for, when that is not the
	// name sent (SNI); needs client_verify.
	ClientVerifyName string `toml:"client_verify_name"`
	// ClientCertificate is --client-tls-certificate: the relay's own PEM
	// certificate (and key, unless ClientKey names their file) toward
	// upstreams that ask for one.
	ClientCertificate string `toml:"client_certificate"`
	// ClientKey is the key of ClientCertificate, if in a file of its own.
	ClientKey string `toml:"client_key"`
}

// Auth configures SMTP AUTH on both sides.
type Auth struct {
	// ServerSecrets is --server-auth: E-MailRelay's secrets file, whose
	// "server" lines are the accounts clients may log in with.
	ServerSecrets string `toml:"server_secrets"`
	// ClientSecrets is --client-auth: the "client" line used with the
	// smarthost.
	ClientSecrets string `toml:"client_secrets"`
	// AllowInsecure offers AUTH before TLS (never do this on a network).
	AllowInsecure bool `toml:"allow_insecure"`
	// AuthenticatedHeader is Postfix's smtpd_sasl_authenticated_header:
	// the login is named in the Received header.
	AuthenticatedHeader bool `toml:"authenticated_header"`
	// FailureLimit failed logins from one IP within FailureWindow make
	// further attempts from it refused until the window passes.
	FailureLimit  int           `toml:"failure_limit"`
	FailureWindow time.Duration `toml:"failure_window"`
	// SenderLoginMaps is a Postfix smtpd_sender_login_maps file, or as
	// main.cf names it, "hash:FILE" (the text file is read); with
	// RejectSenderLoginMismatch an authenticated client may only use the
	// sender addresses its login owns.
	SenderLoginMaps           string `toml:"sender_login_maps"`
	RejectSenderLoginMismatch bool   `toml:"reject_sender_login_mismatch"`
	// PasswordMaps are the relay's own logins upstream, in Postfix's
	// sasl_passwd tables ("[smtp.example.com]:587 user:password"), found
	// by next hop or its host name. An entry found wins over
	// client_secrets and a transport's auth. Logins only go to a server
	// whose certificate verifies. Not for the proxy or --as-client.
	PasswordMaps []string `toml:"smtp_sasl_password_maps"`
	// SenderDependentAuth looks the password maps up by the envelope
	// sender first ("alice@example.com", "@example.com"); senders with
	// different logins never share a session.
	SenderDependentAuth bool `toml:"smtp_sender_dependent_authentication"`
}

// Policy is who may relay what, in Postfix's vocabulary. Restriction lists
// are evaluated at RCPT time in Postfix's order (client, helo, sender, relay,
// recipient), as with Postfix's smtpd_delay_reject = yes.
type Policy struct {
	// MyNetworks are the trusted clients (permit_mynetworks): CIDRs,
	// files of them ("/etc/postfix/mynetworks", several a line) and tables
	// ("cidr:/path"); "!" before any, in a file too, excludes it, the first
	// match deciding. Files are read again on SIGHUP and when they change.
	// The whole Internet (0.0.0.0/0, ::/0, or a table that holds every
	// address) is refused: an open relay.
	MyNetworks []string `toml:"mynetworks"`
	// RelayDomains are the domains this relay takes mail for from anyone
	// (reject_unauth_destination lets them through): names, files of names
	// and tables, "!" ones too, as in Postfix.
	RelayDomains []string `toml:"relay_domains"`
	// RelayRecipientMaps are Postfix's relay_recipient_maps: when set,
	// recipients in RelayDomains must be listed ("user@domain" or
	// "@domain"), or RCPT is refused with 550 5.1.1.
	RelayRecipientMaps []string `toml:"relay_recipient_maps"`
	// RelayClientCerts is Postfix's relay_clientcerts: tables of client
	// certificate fingerprints for permit_tls_clientcerts.
	RelayClientCerts []string `toml:"relay_clientcerts"`

	ClientRestrictions    []string `toml:"client_restrictions"`
	HeloRestrictions      []string `toml:"helo_restrictions"`
	SenderRestrictions    []string `toml:"sender_restrictions"`
	RelayRestrictions     []string `toml:"relay_restrictions"`
	RecipientRestrictions []string `toml:"recipient_restrictions"`
	// DataRestrictions are Postfix's smtpd_data_restrictions, checked
	// at DATA (reject_unauth_pipelining, reject_multi_recipient_bounce).
	DataRestrictions []string `toml:"data_restrictions"`
	// EndOfDataRestrictions are Postfix's smtpd_end_of_data_restrictions,
	// checked when the message has come, before it is accepted, with its
	// size (check_policy_service quotas by size).
	EndOfDataRestrictions []string `toml:"end_of_data_restrictions"`
	// RestrictionClasses are Postfix's smtpd_restriction_classes, each a
	// named restriction list that access table results may name
	// ([policy.restriction_classes] insiders_only = [...]).
	RestrictionClasses map[string][]string `toml:"restriction_classes"`

	// HeaderChecks and BodyChecks are Postfix header_checks(5) and
	// body_checks tables ("pcre:/etc/postfix/header_checks").
	HeaderChecks string `toml:"header_checks"`
	BodyChecks   string `toml:"body_checks"`

	// DNSBL is E-MailRelay's --dnsbl SERVERS,THRESHOLD,TIMEOUT,DNS-SERVER;
	// trusted networks and clients that logged in are never checked.
	DNSBL string `toml:"dnsbl"`
	// DNSServer is the resolver for DNSBL lookups and the unknown-domain
	// checks ("ip:port"); the first nameserver of /etc/resolv.conf by
	// default.
	DNSServer string `toml:"dns_server"`
	// AddressVerifier is --address-verifier: a program (or net:host:port)
	// asked about every recipient, with E-MailRelay's protocol.
	AddressVerifier string `toml:"address_verifier"`
	// VerifierTimeout bounds each question to the verifier; E-MailRelay's
	// --filter-timeout sets it together with the filters' timeout.
	VerifierTimeout time.Duration `toml:"verifier_timeout"`

	// MaxConnections and MaxConnectionsPerIP bound concurrent clients
	// (Postfix: smtpd_client_connection_count_limit); mynetworks are
	// exempt from the second, as Postfix exempts them. They bound the
	// POP3 server's sessions too, counted apart, without the exemption.
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// The rates Postfix's anvil bounds, per client and AnvilRateTimeUnit
	// (smtpd_client_connection_rate_limit and friends); 0 is no limit,
	// and mynetworks are exempt, as in Postfix.
	ClientConnectionRateLimit int           `toml:"client_connection_rate_limit"`
	ClientMessageRateLimit    int           `toml:"client_message_rate_limit"`
	ClientRecipientRateLimit  int           `toml:"client_recipient_rate_limit"`
	AnvilRateTimeUnit         time.Duration `toml:"anvil_rate_time_unit"`
	// HardErrorLimit rejected commands end a session (Postfix:
	// smtpd_hard_error_limit).
	HardErrorLimit int `toml:"hard_error_limit"`
}

// Milter configures milters (OpenDKIM, OpenDMARC, rspamd) run on every
// message before the client hears the reply to its final dot, after the
// --filter programs, as Postfix's smtpd_milters.
type Milter struct {
	// Server are milter addresses: "inet:8891@127.0.0.1", "unix:/path".
	Server []string `toml:"server"`
	// DefaultAction is Postfix's milter_default_action when a milter
	// cannot be reached: tempfail, accept, reject or quarantine.
	DefaultAction string `toml:"default_action"`
	// ConnectTimeout, CommandTimeout and ContentTimeout are Postfix's
	// milter_connect_timeout, milter_command_timeout and
	// milter_content_timeout.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	CommandTimeout time.Duration `toml:"command_timeout"`
	ContentTimeout time.Duration `toml:"content_timeout"`
	// Macros are sent to the milters with the connect step (Postfix's
	// milter_*_macros): j, daemon_name, or any other.
	Macros map[string]string `toml:"macros"`
}

// MacroValues are the macros for the milters: j is host, the relay's name,
// unless Macros says otherwise.
func (m Milter) MacroValues(host string) map[string]string {
	out := map[string]string{"j": host}
	maps.Copy(out, m.Macros)
	return out
}

// DKIM configures built-in DKIM signing of outgoing mail whose From is in
// Domain: the relay's own notices and encapsulated copies at least.
type DKIM struct {
	Domain   string `toml:"domain"`
	Selector string `toml:"selector"`
	// Key is a PEM private key file (RSA or Ed25519).
	Key string `toml:"key"`
}

// SRS turns on the Sender Rewriting Scheme (postsrsd's format) for mail the
// relay forwards: a sender whose domain is not Domain goes out as an SRS0
// address of Domain, and the relay's SMTP server reads its SRS addresses
// back (bounces) after verifying them. Off while SecretFile is empty.
type SRS struct {
	// SecretFile holds the secrets, one per line, the first signing
	// (postsrsd's secret file works as is): --srs-secret.
	SecretFile string `toml:"secret_file"`
	// Domain is the domain of the SRS addresses; the relay's domain if
	// empty.
	Domain string `toml:"domain"`
}

// POP configures the POP3 server over the spool (E-MailRelay's --pop).
type POP struct {
	// Enabled is --pop.
	Enabled bool `toml:"enabled"`
	// Port is --pop-port; the pop= entries of --interface give addresses.
	Port int `toml:"port"`
	// Auth is --pop-auth: a secrets file whose "server" lines are the
	// POP accounts. Empty: /etc/relaykeeper.auth, else E-MailRelay's
	// /etc/emailrelay.auth.
	Auth string `toml:"auth"`
	// ByName is --pop-by-name: each user reads SPOOL/USER/.
	ByName bool `toml:"by_name"`
	// NoDelete is --pop-no-delete: DELE deletes nothing.
	NoDelete bool `toml:"no_delete"`
}

// Admin configures the administration interfaces.
type Admin struct {
	// Port is --admin: E-MailRelay's text protocol on loopback (or on
	// the admin= entries of --interface); 0 means off.
	Port int `toml:"port"`
	// HTTP is the address of the HTTP listener ("127.0.0.1:8025"): the
	// JSON API, the dashboard at / and Prometheus metrics at /metrics;
	// empty means off.
	HTTP string `toml:"http"`
	// PasswordFile holds the password, on its first line, that both
	// admin front ends then ask for on every request, on loopback too;
	// required to listen off loopback.
	PasswordFile string `toml:"password_file"`
	// Terminate is --admin-terminate: allow the terminate command.
	Terminate bool `toml:"terminate"`
}

// Filter configures E-MailRelay's content filters: programs or built-ins
// (spam:, spam-edit:, net:, pipe:, exit:, msgid:) run on each message.
type Filter struct {
	// Server is --filter: run after a message is stored, before the
	// client hears the reply to its final dot. Several chain.
	Server []string `toml:"server"`
	// Client is --client-filter: run before each message is forwarded.
	Client []string `toml:"client"`
	// Timeout is --filter-timeout.
	Timeout time.Duration `toml:"timeout"`
}

// Rewrite is Postfix's canonical(5) address mapping, applied as mail is
// received: to the envelope, and, for the clients that
// local_header_rewrite_clients names, to the addresses in the header, in
// the classes canonical_classes names (docs/rewrite.md).
type Rewrite struct {
	// CanonicalMaps are Postfix's canonical_maps: tables of
	// "user@domain new@address" or "@domain @new.domain" lines, for
	// senders and recipients both, after the two below.
	CanonicalMaps []string `toml:"canonical_maps"`
	// SenderCanonicalMaps are Postfix's sender_canonical_maps: the same,
	// for the envelope sender and the header's sender fields.
	SenderCanonicalMaps []string `toml:"sender_canonical_maps"`
	// RecipientCanonicalMaps are Postfix's recipient_canonical_maps: the
	// same, for the envelope recipients and the header's recipient fields.
	RecipientCanonicalMaps []string `toml:"recipient_canonical_maps"`
	// LocalHeaderRewriteClients is Postfix's local_header_rewrite_clients:
	// permit_inet_interfaces (the relay's own host, Postfix's default),
	// permit_mynetworks, permit_sasl_authenticated, static:all.
	LocalHeaderRewriteClients []string `toml:"local_header_rewrite_clients"`
	// Myorigin is Postfix's myorigin with append_at_myorigin: the domain
	// an unqualified sender (MAIL FROM:<root>, from a printer or a
	// script) gets. Empty refuses such a sender over SMTP, as
	// reject_non_fqdn_sender would (504 5.5.2). sendmail and submit give a
	// bare sender or recipient this domain, else domain's.
	Myorigin string `toml:"myorigin"`
	// MasqueradeDomains strip the host from addresses, after the maps:
	// "example.com" makes user@host.example.com leave as
	// user@example.com; "!sub.example.com" first keeps that subdomain.
	MasqueradeDomains []string `toml:"masquerade_domains"`
	// MasqueradeExceptions are local parts never masqueraded ("root").
	MasqueradeExceptions []string `toml:"masquerade_exceptions"`
	// MasqueradeClasses say what is masqueraded: envelope_sender,
	// envelope_recipient, header_sender, header_recipient; all but
	// envelope_recipient when empty, as in Postfix.
	MasqueradeClasses []string `toml:"masquerade_classes"`
	// CanonicalClasses, SenderCanonicalClasses and
	// RecipientCanonicalClasses are Postfix's canonical_classes and its
	// two forms: which of envelope_sender, envelope_recipient,
	// header_sender and header_recipient each kind of canonical table
	// maps; every class it can map when empty, as in Postfix.
	CanonicalClasses          []string `toml:"canonical_classes"`
	SenderCanonicalClasses    []string `toml:"sender_canonical_classes"`
	RecipientCanonicalClasses []string `toml:"recipient_canonical_classes"`
	// AlwaysBCC is Postfix's always_bcc: an address that gets a blind
	// copy of every message received (not of notices the relay makes,
	// nor of mail back from a content filter), with NOTIFY=NEVER.
	AlwaysBCC string `toml:"always_bcc"`
	// SenderBCCMaps and RecipientBCCMaps are sender_bcc_maps and
	// recipient_bcc_maps: tables of "user@domain archive@example.com" or
	// "@domain archive@example.com", looked up by the mapped envelope
	// sender and each mapped recipient; one address per entry.
	SenderBCCMaps    []string `toml:"sender_bcc_maps"`
	RecipientBCCMaps []string `toml:"recipient_bcc_maps"`
	// VirtualAliasMaps are Postfix's virtual_alias_maps: tables of
	// "ops@example.com alice@example.net, bob@example.org" or "@old.example
	// @new.example" lines that replace a recipient by one or more
	// addresses, each looked up again (up to Postfix's limits), after the
	// canonical maps; the client's address goes along as ORCPT.
	VirtualAliasMaps []string `toml:"virtual_alias_maps"`
	// GenericMaps are Postfix's smtp_generic_maps: tables of
	// "root@host.localdomain alerts@example.com" or "@host.localdomain
	// @example.com" lines that make the addresses of mail leaving the
	// relay ones the internet accepts; applied last, to the envelope and
	// to the header of every message.
	GenericMaps []string `toml:"smtp_generic_maps"`
}

// Routing chooses where each recipient goes, as Postfix's transport_maps,
// sender_dependent_default_transport_maps, default_transport and relayhost.
// Without any of it, everything goes to forward.to.
type Routing struct {
	// TransportMaps are transport(5) tables ("hash:/etc/postfix/transport"),
	// looked up in order by recipient.
	TransportMaps []string `toml:"transport_maps"`
	// SenderDependentMaps ("@example.com zombig_name") choose the default
	// transport by sender.
	SenderDependentMaps []string `toml:"sender_dependent_default_transport_maps"`
	// SenderRelayHostMaps ("@example.com [smtp.example.com]:587") replace
	// forward.to, the relayhost, for the senders they list; "DUNNO" keeps
	// it. A transport_maps transport or a transport's own next hop wins.
	SenderRelayHostMaps []string `toml:"sender_dependent_relayhost_maps"`
	// FallbackRelay are next hops
	// ("[backup.example.net]:587") tried in order when a destination's
	// own hosts cannot be reached or found, or put the mail off; not for
	// the relay transport.
	FallbackRelay []string `toml:"smtp_fallback_relay"`
	// DefaultTransport names the transport for everything else; empty
	// means forward.to when set, else direct delivery by MX ("smtp").
	DefaultTransport string `toml:"default_transport"`
	// DNSServer is the resolver for MX lookups ("ip:port"); the first
	// nameserver of /etc/resolv.conf by default.
	DNSServer string `toml:"dns_server"`
	// ContentFilter is Postfix's after-queue content_filter, "host:port"
	// or as Postfix writes it, "transport:host:port" ("scan:localhost:10025",
	// the transport name is ignored): every message goes there first and
	// comes back on a reinject= listener (--interface reinject=127.0.0.1:10026).
	ContentFilter string `toml:"content_filter"`
	// Destination defaults, Postfix's default_destination_* and
	// initial_destination_concurrency; a transport's own settings win.
	ConcurrencyLimit   int           `toml:"destination_concurrency_limit"`
	RecipientLimit     int           `toml:"destination_recipient_limit"`
	RateDelay          time.Duration `toml:"destination_rate_delay"`
	InitialConcurrency int           `toml:"initial_destination_concurrency"`
}

// Transport is one named outbound transport.
type Transport struct {
	// NextHop is "[host]:port" (no MX lookup), "host[:port]" (MX lookup of
	// host), or empty for the recipient's domain by MX.
	NextHop string `toml:"nexthop"`
	// BindAddress is Postfix's smtp_bind_address: the local address
	// connections leave from.
	BindAddress string `toml:"bind_address"`
	// HeloName is Postfix's smtp_helo_name: the name sent in EHLO
	// instead of the domain.
	HeloName string `toml:"helo_name"`
	// TLS is Postfix's smtp_tls_security_level (none, may, encrypt,
	// verify, secure) or "wrapper" for TLS from the first byte.
	TLS string `toml:"tls"`
	// Auth is a client secrets file for this transport.
	Auth string `toml:"auth"`
	// LogName is Postfix's syslog_name: how the mail log names this
	// transport.
	LogName string `toml:"log_name"`
	// Per-destination pacing, Postfix's meanings; zero takes the default.
	ConcurrencyLimit   int           `toml:"destination_concurrency_limit"`
	InitialConcurrency int           `toml:"initial_destination_concurrency"`
	RecipientLimit     int           `toml:"destination_recipient_limit"`
	RateDelay          time.Duration `toml:"destination_rate_delay"`
}

// Enforce configures reputation enforcement: acting on the upstream's
// refusals of relayed mail. It is on whenever the relay forwards. Paths left
// empty live in the spool directory.
type Enforce struct {
	// Disabled is --no-enforce.
	Disabled bool `toml:"disabled"`
	// Rules is --enforce-rules FILE; empty means the built-in Gmail rules.
	Rules string `toml:"rules"`
	// ReplyFilter is a Postfix smtp_reply_filter-style file deciding what
	// the original client hears, named as a file or as Postfix names it
	// ("pcre:FILE", "regexp:FILE"); empty means the built-in one.
	ReplyFilter string `toml:"reply_filter"`
	// Welcomelist is --welcomelist FILE: clients never banned. Created
	// with loopback, private networks and this host's own addresses if
	// missing. Empty:
	// SPOOL/.enforce/welcomelist (not the installed
	// /etc/relaykeeper/welcomelist, postfix-enforcer's default).
	Welcomelist string `toml:"welcomelist"`
	// SenderAccess is the Postfix sender_access table of blocked sender
	// domains; the relay checks it at MAIL FROM. Empty:
	// SPOOL/.enforce/sender_access.
	SenderAccess string `toml:"sender_access"`
	// Bans is the ban list file. Empty: SPOOL/.enforce/bans.
	Bans string `toml:"bans"`
	// BanTime is how long a ban lasts (relay-enforcer's jail: 4 hours);
	// BanDelay how long after the refusal it takes effect, so that the
	// reply to the original client still goes out; the mail the client
	// sends meanwhile is held (a proxy refuses its MAIL).
	BanTime  time.Duration `toml:"ban_time"`
	BanDelay time.Duration `toml:"ban_delay"`
	// BanIPv4PrefixLength and BanIPv6PrefixLength are how wide a ban of
	// a client is: 32, the IPv4 address alone, and 64, an IPv6 client's
	// /64 (any IPv6 customer has one, and moves between its addresses at
	// will; Gmail rates IPv6 senders per /64). A network holding a
	// welcomelisted or trusted address is not banned: the client alone is.
	BanIPv4PrefixLength int `toml:"ban_ipv4_prefix_length"`
	BanIPv6PrefixLength int `toml:"ban_ipv6_prefix_length"`
	// BanLog, if set, gets a fail2ban line per ban, in relay-enforcer's
	// words ("bannable REASON IP").
	BanLog string `toml:"ban_log"`
	// Mail is --mail ADDRESS (relay-enforcer's -m): a report per action
	// and per refusal no rule knows.
	Mail string `toml:"mail"`
	// RelayAddress sends encapsulated copies and reports (postmaster@domain by default).
	RelayAddress         string `toml:"relay_address"`
	EncapsulateRateLimit int    `toml:"encapsulate_rate_limit"` // copies an hour per client (docs/enforce.md); 0: none
	// NeverBlock are domains never blocked, nor any domain under one: a
	// forged sender must not cut off a whole freemail provider. Such
	// refusals are reported. The relay's own domains are never blocked
	// either.
	NeverBlock []string `toml:"never_block"`
	// TrustedUpstreams are upstream hosts (names or addresses, exact)
	// whose refusals may ban a client or block a domain, besides Google's
	// mail servers, forward.to and the transports' next hops; any other
	// upstream's refusal is only reported.
	TrustedUpstreams []string `toml:"trusted_upstreams"`
	// AlertRejectionRate and AlertMinReplies: an alert when the upstream
	// refuses more than this share of at least that many replies to one
	// client's mail, or to the whole relay's, in an hour (2% of 20).
	AlertRejectionRate float64 `toml:"alert_rejection_rate"`
	AlertMinReplies    int     `toml:"alert_min_replies"`
}

// DefaultNeverBlock are the freemail domains no refusal blocks.
var DefaultNeverBlock = []string{"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
	"yahoo.com", "icloud.com", "me.com", "aol.com", "gmx.com", "gmx.de", "web.de", "proton.me", "protonmail.com"}

// DefaultMyNetworks are the clients trusted when mynetworks is not set:
// loopback and private networks, the same clients E-MailRelay accepts
// without --remote-clients.
var DefaultMyNetworks = []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "169.254.0.0/16", "fe80::/10"}

// DefaultRelayRestrictions is what a careful administrator chooses: trusted
// networks and authenticated users relay; nobody else sends to a domain
// outside relay_domains.
var DefaultRelayRestrictions = []string{"permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"}

// Default returns the configuration that applies when neither the file nor
// the switches say otherwise.
func Default() Config {
	return Config{
		Mode:    ModeServer,
		Process: Process{MemoryLimit: 16 << 20, MemoryPerSession: 100 << 10},
		SMTP: SMTP{
			Port:               25,
			MaxMessageSize:     10240000, // Postfix's message_size_limit
			MaxRecipients:      1000,     // Postfix's smtpd_recipient_limit
			IdleTimeout:        60 * time.Second,
			TransactionTimeout: 10 * time.Minute,
			ShutdownGrace:      10 * time.Second,
		},
		Spool: Spool{Dir: "/var/spool/relaykeeper"},
		Log:   Log{Format: "text"},
		Forward: Forward{
			ConnectionTimeout: 40 * time.Second,
			ResponseTimeout:   60 * time.Second,
		},
		Delivery: Delivery{
			Connections:           10,
			MessagesPerConnection: 100,
			MinBackoff:            60 * time.Second,
			MaxBackoff:            4000 * time.Second,
			PaceSuspend:           time.Minute,
			PaceMaxSuspend:        time.Hour,
			PaceDelay:             5 * time.Second,
			PaceMaxDelay:          5 * time.Minute,
			QuotaWindow:           24 * time.Hour,
			DoubleBounceRecipient: "postmaster",
			MaxQueueLifetime:      5 * 24 * time.Hour,
			BounceQueueLifetime:   5 * 24 * time.Hour,
			BounceSizeLimit:       50000, // Postfix's bounce_size_limit
			Bounces:               true,
			Skip5xxGreeting:       true,
		},
		Auth: Auth{FailureLimit: 5, FailureWindow: 10 * time.Minute},
		Enforce: Enforce{BanTime: 4 * time.Hour, BanDelay: 10 * time.Second, BanIPv4PrefixLength: 32, BanIPv6PrefixLength: 64, NeverBlock: DefaultNeverBlock,
			AlertRejectionRate: 0.02, AlertMinReplies: 20, EncapsulateRateLimit: 20},
		Routing: Routing{ConcurrencyLimit: 20, RecipientLimit: 50},
		Rewrite: Rewrite{LocalHeaderRewriteClients: []string{"permit_inet_interfaces"}},
		Filter:  Filter{Timeout: 60 * time.Second},
		POP:     POP{Port: 110},
		Milter: Milter{DefaultAction: "tempfail", ConnectTimeout: 30 * time.Second, CommandTimeout: 30 * time.Second,
			ContentTimeout: 300 * time.Second},
		Policy: Policy{
			MyNetworks:          DefaultMyNetworks,
			RelayRestrictions:   DefaultRelayRestrictions,
			VerifierTimeout:     60 * time.Second,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			HardErrorLimit:      20,
			AnvilRateTimeUnit:   time.Minute,
		},
	}
}
