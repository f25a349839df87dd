package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// CommandLine is what E-MailRelay's switches said: the configuration file
// to read, whether --help or --version was asked for, and the settings to
// lay over the file, in the order given.
type CommandLine struct {
	// ConfigFile is --config, empty if not given.
	ConfigFile string
	// Help and Version are --help and --version.
	Help, Version bool

	actions []func(*Config)
}

// Switches returns the switch table, in --help's order within each group.
func Switches() []Switch { return (&switchParser{}).switches() }

// ParseSwitches reads E-MailRelay's switches. An error names the switch
// and what is wrong with it; nothing is loaded or validated yet (see
// CommandLine.Config).
func ParseSwitches(args []string) (*CommandLine, error) { return parseSwitches(args, nil) }

// parseSwitches is ParseSwitches with the places in E-MailRelay's
// configuration file ("FILE:LINE") of the first len(from) arguments, one
// switch each, so that a later problem with what one set names its line.
func parseSwitches(args, from []string) (*CommandLine, error) {
	p := &switchParser{from: from}
	sw := p.switches()
	fs := flag.NewFlagSet("relaykeeper", flag.ContinueOnError)
	// The flag package's own messages and usage are replaced by ours.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for i := range sw {
		s := &sw[i]
		fs.Var(&switchValue{p: p, opt: s, name: "--" + s.Long}, s.Long, s.Help)
		if s.Short != "" {
			fs.Var(&switchValue{p: p, opt: s, name: "-" + s.Short}, s.Short, s.Help)
		}
	}
	args, err := LetterSets(fs, args)
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		if p.err != nil {
			return nil, p.err
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			return nil, unknownSwitch(dashed(name)) // perhaps E-MailRelay's
		}
		return nil, FlagError(err)
	}
	if fs.NArg() > 0 {
		if _, err := os.Stat(fs.Arg(0)); err != nil && !strings.ContainsAny(fs.Arg(0), "/.") {
			// "--log false": a word that names no file is a mistake,
			// not E-MailRelay's configuration file.
			return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		// E-MailRelay's configuration file: its switches come first,
		// so that the command line's, before or after it, override them.
		file, from, err := switchFileArgs(fs.Arg(0))
		if err != nil {
			return nil, err
		}
		before := args[:len(args)-fs.NArg()]
		return parseSwitches(append(append(file, before...), fs.Args()[1:]...), from)
	}
	return &CommandLine{ConfigFile: p.configFile, Help: p.help, Version: p.version, actions: p.actions}, nil
}

// Config merges the switches over the configuration file (when --config
// was given) over Default, and validates the result. Only switches
// actually given override the file, in the order given; a problem with a
// setting a switch made names the switch.
func (cl *CommandLine) Config() (Config, error) {
	cfg := Default()
	if cl.ConfigFile != "" {
		var err error
		if cfg, err = Load(cl.ConfigFile); err != nil {
			return Config{}, err
		}
	}
	for _, apply := range cl.actions {
		apply(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// switchParser collects what the switches say while the flag package
// parses them; nothing is applied until the file has been loaded.
type switchParser struct {
	actions     []func(*Config)
	configFile  string
	help        bool
	version     bool
	mode        string // the mode switch given, as typed, to refuse a second
	forwardTo   bool   // --forward-to was given, refused with --as-client or --as-proxy
	ifaces      bool   // set once the first --interface has replaced the file's
	dnsbls      bool   // set once the first --dnsbl has replaced the file's
	certs       []string
	clientCerts []string
	err         error    // why the last Set failed, naming the switch
	from        []string // where the first switches were set (parseSwitches)
	sets        int      // the switches read so far
}

// Switch is one command-line switch, with E-MailRelay's long name and
// letter. The table of them (Switches) is the one source for parsing,
// --help, the man page and shell completion.
type Switch struct {
	Long, Short string
	Arg         string // the value's name in --help; "" for an on/off switch
	// OptArg names the value an on/off switch may take after "=" (E-MailRelay's
	// --syslog=FACILITY), and in a configuration file after the name.
	OptArg string
	Group  string
	Help   string // empty for a switch accepted only for compatibility
	// Keys are the configuration keys the switch sets, so that a problem
	// Validate finds with them names the switch.
	Keys []string
	// parse reads the value and returns its effect on the configuration,
	// or nil for none.
	parse func(val string) (func(*Config), error)
}

// The groups of --help, in E-MailRelay's order.
const (
	groupModes   = "Modes"
	groupForward = "Forwarding"
	groupListen  = "Listening"
	groupSpool   = "Spool"
	groupLog     = "Logging"
	groupProcess = "Process"
	groupTLS     = "TLS and authentication"
	groupPolicy  = "Policy"
	groupCompat  = "Accepted for compatibility with E-MailRelay, and ignored because\nrelaykeeper never forks, puts the time on every log line, names the\nclient on every line of its mail log, and always forwards to the\nrecipients the upstream accepts (--forward-to-some)"
)

// SwitchGroups returns the groups of --help in their order.
func SwitchGroups() []string {
	return []string{groupModes, groupForward, groupListen, groupTLS, groupPolicy, groupSpool, groupLog, groupProcess, groupCompat}
}

func (p *switchParser) switches() []Switch {
	return []Switch{
		{Long: "as-server", Short: "d", Group: groupModes,
			Help: "store mail in the spool; forward it only when told to (--poll, --forward-on-disconnect); implies --log",
			Keys: []string{"mode", "log.enabled"},
			parse: p.modeSwitch("--as-server", func(c *Config) {
				c.Mode = ModeServer
				c.Log.Enabled = true
			})},
		{Long: "as-proxy", Short: "y", Arg: "HOST:PORT", Group: groupModes,
			Help: "forward each message to HOST:PORT while receiving it; implies --immediate --log",
			Keys: []string{"mode", "forward.to", "forward.immediate", "log.enabled"},
			parse: p.modeHost("--as-proxy", func(c *Config, to string) {
				c.Mode = ModeProxy
				c.Forward.To = to
				c.Forward.Immediate = true
				c.Log.Enabled = true
			})},
		{Long: "as-client", Short: "q", Arg: "HOST:PORT", Group: groupModes,
			Help: "forward the spool to HOST:PORT, then exit; no SMTP listener",
			Keys: []string{"mode", "forward.to", "smtp.disabled", "forward.at_startup"},
			parse: p.modeHost("--as-client", func(c *Config, to string) {
				c.Mode = ModeClient
				c.Forward.To = to
				c.SMTP.Disabled = true
				c.Forward.AtStartup = true
			})},

		{Long: "forward", Short: "f", Group: groupForward,
			Help:  "forward the spool once at start-up",
			Keys:  []string{"forward.at_startup"},
			parse: onOff(func(c *Config, on bool) { c.Forward.AtStartup = on })},
		{Long: "forward-to", Short: "o", Arg: "HOST:PORT", Group: groupForward,
			Help:  "the smarthost; PORT may be a service name (smtp); a bare HOST means port 25",
			Keys:  []string{"forward.to"},
			parse: p.forwardToSwitch(func(c *Config, to string) { c.Forward.To = to })},
		{Long: "forward-on-disconnect", Short: "1", Group: groupForward,
			Help:  "forward the spool whenever an SMTP client disconnects",
			Keys:  []string{"forward.on_disconnect"},
			parse: onOff(func(c *Config, on bool) { c.Forward.OnDisconnect = on })},
		{Long: "poll", Short: "O", Arg: "SECONDS", Group: groupForward,
			Help:  "forward the spool every SECONDS (or a duration such as 1h); 0 means on disconnect",
			Keys:  []string{"forward.poll"},
			parse: p.poll},
		{Long: "immediate", Short: "m", Group: groupForward,
			Help:  "forward each message while receiving it",
			Keys:  []string{"forward.immediate"},
			parse: onOff(func(c *Config, on bool) { c.Forward.Immediate = on })},
		{Long: "connection-timeout", Short: "U", Arg: "SECONDS", Group: groupForward,
			Help: "give up connecting to the smarthost after SECONDS",
			Keys: []string{"forward.connection_timeout"},
			parse: seconds(func(c *Config, d time.Duration) {
				c.Forward.ConnectionTimeout = d
			})},
		{Long: "prompt-timeout", Short: "w", Arg: "SECONDS", Group: groupForward,
			Help:  "wait SECONDS for the smarthost's greeting once connected, then go on without it (EHLO), as E-MailRelay does; without it, a greeting that does not come within --connection-timeout fails the attempt",
			Keys:  []string{"forward.prompt_timeout"},
			parse: seconds(func(c *Config, d time.Duration) { c.Forward.PromptTimeout = d })},
		{Long: "response-timeout", Short: "T", Arg: "SECONDS", Group: groupForward,
			Help:  "give up waiting for each smarthost reply, or for a write of the message text to make progress, after SECONDS; the reply to the final dot gets 10 minutes (Postfix's smtp_data_done_timeout), since giving up on it may send the message twice",
			Keys:  []string{"forward.response_timeout"},
			parse: seconds(func(c *Config, d time.Duration) { c.Forward.ResponseTimeout = d })},
		{Long: "client-interface", Short: "6", Arg: "ADDRESS", Group: groupForward,
			Help:  "connect to upstreams from this local IP address",
			Keys:  []string{"forward.client_interface"},
			parse: text(func(c *Config, s string) { c.Forward.ClientInterface = s })},

		{Long: "port", Short: "p", Arg: "N", Group: groupListen,
			Help:  "listen on port N (default 25)",
			Keys:  []string{"smtp.port"},
			parse: port(func(c *Config, n int) { c.SMTP.Port = n })},
		{Long: "interface", Short: "I", Arg: "ADDR", Group: groupListen,
			Help:  "listen on ADDR only (an address, or a network interface's name for all its addresses: eth0, eth0-ipv4, eth0-ipv6); repeat it or give a comma-separated list; an entry without a prefix is where --pop and --admin listen too, smtp=ADDR is SMTP's alone, pop=ADDR is where --pop listens besides, admin=ADDR where --admin listens instead",
			Keys:  []string{"smtp.interfaces"},
			parse: p.iface},
		{Long: "remote-clients", Short: "r", Group: groupListen,
			Help:  "accept clients from outside loopback and private networks",
			Keys:  []string{"smtp.remote_clients"},
			parse: onOff(func(c *Config, on bool) { c.SMTP.RemoteClients = on })},
		{Long: "client-names", Group: groupListen,
			Help:  "look up each client's forward-confirmed host name (PTR, then A/AAAA) for the Received header, the mail log and the welcomelist",
			Keys:  []string{"smtp.client_names"},
			parse: onOff(func(c *Config, on bool) { c.SMTP.ClientNames = on })},
		{Long: "client-names-server", Arg: "ADDR", Group: groupListen,
			Help:  "ask the DNS server at ADDR (ip:port) for client names instead of the system's",
			Keys:  []string{"smtp.dns_server"},
			parse: text(func(c *Config, s string) { c.SMTP.DNSServer = s })}, // checked by Validate
		{Long: "no-smtp", Short: "X", Group: groupListen,
			Help:  "run no SMTP listener",
			Keys:  []string{"smtp.disabled"},
			parse: onOff(func(c *Config, on bool) { c.SMTP.Disabled = on })},
		{Long: "idle-timeout", Arg: "SECONDS", Group: groupListen,
			Help:  "drop an SMTP client that takes SECONDS over one command line or one read of text",
			Keys:  []string{"smtp.idle_timeout"},
			parse: seconds(func(c *Config, d time.Duration) { c.SMTP.IdleTimeout = d })},
		{Long: "size", Short: "M", Arg: "BYTES", Group: groupListen,
			Help:  "refuse messages larger than BYTES; 0 means no limit",
			Keys:  []string{"smtp.max_message_size"},
			parse: size},
		{Long: "domain", Short: "D", Arg: "NAME", Group: groupListen,
			Help:  "the name in the greeting, Received headers and EHLO (default: the host name)",
			Keys:  []string{"domain"},
			parse: text(func(c *Config, s string) { c.Domain = s })},

		{Long: "no-bounces", Group: groupForward,
			Help:  "send no delivery status notifications: a failed message is only marked failed, as E-MailRelay does",
			Keys:  []string{"delivery.bounces"},
			parse: onOff(func(c *Config, on bool) { c.Delivery.Bounces = !on })},
		{Long: "server-tls", Short: "K", Group: groupTLS,
			Help:  "offer STARTTLS to clients (needs --server-tls-certificate)",
			Keys:  []string{"tls.server"},
			parse: onOff(func(c *Config, on bool) { c.TLS.Server = on })},
		{Long: "server-tls-certificate", Arg: "FILE", Group: groupTLS,
			Help:  "PEM certificate and key; give it twice for separate files (the key, then the certificate)",
			Keys:  []string{"tls.certificate", "tls.key"},
			parse: p.serverCert},
		{Long: "server-tls-connection", Group: groupTLS,
			Help:  "speak TLS from the first byte on the SMTP listeners (port 465)",
			Keys:  []string{"tls.server_connection"},
			parse: onOff(func(c *Config, on bool) { c.TLS.ServerConnection = on })},
		{Long: "server-tls-required", Group: groupTLS,
			Help:  "refuse AUTH, MAIL and every other command but EHLO, HELO, NOOP and QUIT before STARTTLS (530, RFC 3207)",
			Keys:  []string{"tls.server_required"},
			parse: onOff(func(c *Config, on bool) { c.TLS.ServerRequired = on })},
		{Long: "server-tls-verify", Arg: "CAFILE", Group: groupTLS,
			Help:  "require clients using TLS to present a certificate that CAFILE's CAs signed (<default>: the system's CAs)",
			Keys:  []string{"tls.client_ca", "tls.require_client_cert"},
			parse: text(func(c *Config, s string) { c.TLS.ClientCA, c.TLS.RequireClientCert = s, true })},
		{Long: "server-auth", Short: "S", Arg: "FILE", Group: groupTLS,
			Help:  "offer SMTP AUTH with the \"server\" accounts of the secrets FILE (E-MailRelay's format)",
			Keys:  []string{"auth.server_secrets"},
			parse: text(func(c *Config, s string) { c.Auth.ServerSecrets = s })},
		{Long: "client-tls", Short: "j", Group: groupTLS,
			Help:  "use STARTTLS with the smarthost when it offers it",
			Keys:  []string{"tls.client"},
			parse: onOff(func(c *Config, on bool) { c.TLS.Client = on })},
		{Long: "client-tls-connection", Short: "b", Group: groupTLS,
			Help:  "speak TLS from the first byte with the smarthost (port 465)",
			Keys:  []string{"tls.client_connection"},
			parse: onOff(func(c *Config, on bool) { c.TLS.ClientConnection = on })},
		{Long: "tls-config", Short: "9", Arg: "KEYWORDS", Group: groupTLS,
			Help:  "E-MailRelay's TLS keywords, taken where they ask for what relaykeeper does: openssl or mbedtls (the library: Go's own is used), tlsv1.2 (the minimum, always), -tlsv1.3 (the maximum, always); others are refused",
			parse: tlsConfig},
		{Long: "client-tls-required", Group: groupTLS,
			Help:  "never send to the smarthost without TLS",
			Keys:  []string{"tls.client_required"},
			parse: onOff(func(c *Config, on bool) { c.TLS.ClientRequired = on })},
		{Long: "client-tls-verify", Arg: "CAFILE", Group: groupTLS,
			Help:  "verify the smarthost's certificate and name against CAFILE, or <default> for the system's roots (the default with --client-auth); <none> never verifies",
			Keys:  []string{"tls.client_verify"},
			parse: text(func(c *Config, s string) { c.TLS.ClientVerify = s })},
		{Long: "client-tls-server-name", Arg: "NAME", Group: groupTLS,
			Help:  "the name to ask for and verify (SNI); the smarthost's host name by default",
			Keys:  []string{"tls.client_server_name"},
			parse: text(func(c *Config, s string) { c.TLS.ClientServerName = s })},
		{Long: "client-tls-verify-name", Arg: "NAME", Group: groupTLS,
			Help:  "the name the smarthost's certificate must be valid for, when not the name sent (needs --client-tls-verify)",
			Keys:  []string{"tls.client_verify_name"},
			parse: text(func(c *Config, s string) { c.TLS.ClientVerifyName = s })},
		{Long: "client-tls-certificate", Arg: "FILE", Group: groupTLS,
			Help:  "the relay's own PEM certificate and key toward upstreams; give it twice for separate files (the key, then the certificate)",
			Keys:  []string{"tls.client_certificate", "tls.client_key"},
			parse: p.clientCert},
		{Long: "client-auth", Short: "C", Arg: "FILE", Group: groupTLS,
			Help:  "log in to the smarthost with the \"client\" line of the secrets FILE",
			Keys:  []string{"auth.client_secrets"},
			parse: text(func(c *Config, s string) { c.Auth.ClientSecrets = s })},

		{Long: "dnsbl", Arg: "SERVERS,THRESHOLD,TIMEOUT,DNS-SERVER", Group: groupPolicy,
			Help:  "refuse clients listed by THRESHOLD of the DNS blocklists SERVERS, asked of DNS-SERVER within TIMEOUT milliseconds (or \"5s\"; negative: a timeout hears 450), E-MailRelay's form; trusted networks and clients that logged in are never checked",
			Keys:  []string{"policy.dnsbl"},
			parse: p.dnsbl},
		{Long: "address-verifier", Arg: "PROGRAM", Group: groupPolicy,
			Help:  "ask PROGRAM (or net:HOST:PORT) about every recipient, with E-MailRelay's verifier protocol",
			Keys:  []string{"policy.address_verifier"},
			parse: text(func(c *Config, s string) { c.Policy.AddressVerifier = s })},
		{Long: "verifier", Arg: "PROGRAM", Group: groupPolicy,
			Help:  "E-MailRelay 1.x's name for --address-verifier, as its user guide writes it",
			Keys:  []string{"policy.address_verifier"},
			parse: text(func(c *Config, s string) { c.Policy.AddressVerifier = s })},

		{Long: "pop", Short: "B", Group: groupListen,
			Help:  "serve the spool over POP3 (accounts from --pop-auth)",
			Keys:  []string{"pop.enabled"},
			parse: onOff(func(c *Config, on bool) { c.POP.Enabled = on })},
		{Long: "pop-port", Short: "E", Arg: "N", Group: groupListen,
			Help:  "POP3 on port N (default 110)",
			Keys:  []string{"pop.port"},
			parse: port(func(c *Config, n int) { c.POP.Port = n })},
		{Long: "pop-auth", Short: "F", Arg: "FILE", Group: groupListen,
			Help:  "POP3 accounts: the \"server\" lines of the secrets FILE (default /etc/relaykeeper.auth, else E-MailRelay's /etc/emailrelay.auth)",
			Keys:  []string{"pop.auth"},
			parse: text(func(c *Config, s string) { c.POP.Auth = s })},
		{Long: "pop-by-name", Short: "J", Group: groupListen,
			Help:  "each POP3 user reads SPOOL/USER/ instead of the whole spool",
			Keys:  []string{"pop.by_name"},
			parse: onOff(func(c *Config, on bool) { c.POP.ByName = on })},
		{Long: "pop-no-delete", Short: "G", Group: groupListen,
			Help:  "POP3 DELE deletes nothing (the mail is still forwarded)",
			Keys:  []string{"pop.no_delete"},
			parse: onOff(func(c *Config, on bool) { c.POP.NoDelete = on })},
		{Long: "admin", Short: "a", Arg: "PORT", Group: groupListen,
			Help:  "E-MailRelay's admin interface on PORT (loopback unless --interface admin=ADDR)",
			Keys:  []string{"admin.port"},
			parse: port(func(c *Config, n int) { c.Admin.Port = n })},
		{Long: "admin-http", Arg: "ADDR", Group: groupListen,
			Help:  "the admin HTTP API, dashboard and /metrics on ADDR, e.g. 127.0.0.1:8025 (a password is required off loopback)",
			Keys:  []string{"admin.http"},
			parse: text(func(c *Config, s string) { c.Admin.HTTP = s })},
		{Long: "admin-password-file", Arg: "FILE", Group: groupListen,
			Help:  "the password both admin front ends ask for: the first line of FILE",
			Keys:  []string{"admin.password_file"},
			parse: text(func(c *Config, s string) { c.Admin.PasswordFile = s })},
		{Long: "admin-terminate", Short: "Q", Group: groupListen,
			Help:  "allow the admin interface's terminate command",
			Keys:  []string{"admin.terminate"},
			parse: onOff(func(c *Config, on bool) { c.Admin.Terminate = on })},
		{Long: "filter", Short: "z", Arg: "PROGRAM", Group: groupPolicy,
			Help:  "run PROGRAM (or spam:HOST:PORT, net:HOST:PORT, pipe:PROGRAM, exit:N, msgid:) on each message before answering its final dot; repeat, or separate with commas, to chain",
			Keys:  []string{"filter.server"},
			parse: p.filterSpec(func(c *Config) *[]string { return &c.Filter.Server })},
		{Long: "client-filter", Short: "Y", Arg: "PROGRAM", Group: groupPolicy,
			Help:  "run PROGRAM on each message before forwarding it; repeat, or separate with commas, to chain",
			Keys:  []string{"filter.client"},
			parse: p.filterSpec(func(c *Config) *[]string { return &c.Filter.Client })},
		{Long: "filter-timeout", Short: "W", Arg: "SECONDS", Group: groupPolicy,
			Help:  "give a filter, and the address verifier, SECONDS before it counts as failed (default 60), as in E-MailRelay",
			Keys:  []string{"filter.timeout", "policy.verifier_timeout"},
			parse: seconds(func(c *Config, d time.Duration) { c.Filter.Timeout, c.Policy.VerifierTimeout = d, d })},
		{Long: "no-enforce", Group: groupPolicy,
			Help:  "do not act on the upstream's refusals (no bans, no domain blocks, no encapsulated forwarding)",
			Keys:  []string{"enforce.disabled"},
			parse: onOff(func(c *Config, on bool) { c.Enforce.Disabled = on })},
		{Long: "srs-secret", Arg: "FILE", Group: groupPolicy,
			Help:  "rewrite the senders of forwarded mail with SRS (postsrsd's format) signed with the secret in FILE, and route SRS bounces back",
			Keys:  []string{"srs.secret_file"},
			parse: text(func(c *Config, s string) { c.SRS.SecretFile = s })},
		{Long: "enforce-rules", Arg: "FILE", Group: groupPolicy,
			Help:  "classify the upstream's refusals with the rules in FILE instead of the built-in Gmail rules",
			Keys:  []string{"enforce.rules"},
			parse: text(func(c *Config, s string) { c.Enforce.Rules = s })},
		{Long: "welcomelist", Arg: "FILE", Group: groupPolicy,
			Help:  "clients in FILE are never banned: their refused mail is forwarded encapsulated",
			Keys:  []string{"enforce.welcomelist"},
			parse: text(func(c *Config, s string) { c.Enforce.Welcomelist = s })},
		{Long: "mail", Arg: "ADDRESS", Group: groupPolicy,
			Help:  "mail ADDRESS a report of every enforcement action and every refusal no rule knows",
			Keys:  []string{"enforce.mail"},
			parse: text(func(c *Config, s string) { c.Enforce.Mail = s })},

		{Long: "spool-dir", Short: "s", Arg: "DIR", Group: groupSpool,
			Help:  "keep the spool in DIR (default /var/spool/relaykeeper)",
			Keys:  []string{"spool.dir"},
			parse: text(func(c *Config, s string) { c.Spool.Dir = s })},

		{Long: "log", Short: "l", Group: groupLog,
			Help:  "log informational messages, not only warnings and errors",
			Keys:  []string{"log.enabled"},
			parse: onOff(func(c *Config, on bool) { c.Log.Enabled = on })},
		{Long: "verbose", Short: "v", Group: groupLog,
			Help:  "log debugging detail, and every SMTP conversation with clients and upstreams, commands and replies (the message text left out; [log] debug_peers includes it)",
			Keys:  []string{"log.verbose"},
			parse: onOff(func(c *Config, on bool) { c.Log.Verbose = on })},
		{Long: "debug", Short: "g", Group: groupLog,
			Help:  "E-MailRelay's name for --verbose",
			Keys:  []string{"log.verbose"},
			parse: onOff(func(c *Config, on bool) { c.Log.Verbose = on })},
		{Long: "syslog", Short: "k", OptArg: "FACILITY", Group: groupLog,
			Help:  "send the log to the system log (/dev/log) as well, under mail, or the facility --syslog=FACILITY names (local0 ...), as E-MailRelay's --log does",
			parse: syslogFacility},
		{Long: "no-syslog", Short: "n", Group: groupLog,
			Help:  "send nothing to the system log (the default, but for --close-stderr without --log-file)",
			parse: onOff(func(c *Config, on bool) { c.Log.NoSyslog = on })},
		{Long: "close-stderr", Short: "e", Group: groupLog,
			Help:  "close standard error once started; the log goes to --log-file, or else to the system log (mail)",
			parse: onOff(func(c *Config, on bool) { c.Log.CloseStderr = on })},
		{Long: "log-format", Arg: "FORMAT", Group: groupLog,
			Help:  "text (key=value, the default) or json (one object per line) for the diagnostic log",
			Keys:  []string{"log.format"},
			parse: text(func(c *Config, s string) { c.Log.Format = s })},
		{Long: "log-file", Short: "N", Arg: "FILE", Group: groupLog,
			Help:  "log to FILE instead of standard error; reopened on SIGHUP, for logrotate; %d in the name is the date (YYYYMMDD) and %h the hour (HH), for a new file a day or an hour, as in E-MailRelay",
			Keys:  []string{"log.file"},
			parse: text(func(c *Config, s string) { c.Log.File = s })},

		{Long: "config", Arg: "FILE", Group: groupProcess,
			Help: "read settings from the TOML FILE first; switches override it",
			parse: func(val string) (func(*Config), error) {
				if val == "" {
					return nil, errors.New("empty file name")
				}
				p.configFile = val
				return nil, nil
			}},
		{Long: "pid-file", Short: "i", Arg: "FILE", Group: groupProcess,
			Help:  "write the process id to FILE, making its directory if missing; a FILE that cannot be written stops the start",
			Keys:  []string{"process.pid_file"},
			parse: text(func(c *Config, s string) { c.Process.PidFile = s })},
		{Long: "help", Short: "h", Group: groupProcess,
			Help:  "print this page and exit",
			parse: p.flag(&p.help)},
		{Long: "check", Group: groupProcess,
			Help:  "check the configuration as a start would: open every file it names (tables, certificates, secrets, filters, the spool, the logs), say what is wrong, with FILE:LINE, and exit 0 if the relay would start, 2 if not; nothing is listened on or forwarded",
			parse: onOff(func(c *Config, on bool) { c.Check = on })},
		{Long: "version", Short: "V", Group: groupProcess,
			Help:  "print the version and exit",
			parse: p.flag(&p.version)},

		{Long: "anonymous", Short: "A", OptArg: "SCOPES", Group: groupPolicy,
			Help:  "E-MailRelay's --anonymous=vrfy,server,client, which is what relaykeeper always does (VRFY answers 252, the greeting names no software, outbound MAIL carries no AUTH=); content, and a bare --anonymous, which leave the Received header out, are refused",
			parse: anonymousScopes},
		{Long: "no-daemon", Short: "t", Group: groupCompat, parse: ignored},
		// E-MailRelay's --forward-to-some is what relaykeeper always does:
		// the recipients the upstream accepted are sent, and only the
		// refused ones fail.
		{Long: "forward-to-some", Group: groupCompat, parse: ignored},
		{Long: "log-time", Short: "L", Group: groupCompat, parse: ignored},
		{Long: "log-address", Group: groupCompat, parse: ignored},
	}
}
