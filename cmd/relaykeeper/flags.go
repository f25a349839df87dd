package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
)

// version is the release, set when building:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/relaykeeper
var version = "dev"

// Command is a subcommand ("queue", "stats", ...) with its arguments,
// handed over unparsed because each subcommand has its own switches.
type Command struct {
	Name string
	Args []string
}

// exitUsage is the status for a wrong command line or configuration.
// Restarting cannot fix either, so a systemd unit can say
// RestartPreventExitStatus=2.
const exitUsage = 2

// exitError is what parseArgs returns when the process should end: the
// status to exit with and what to tell the operator. After --help and
// --version the text has been printed, err is nil and the status is 0.
type exitError struct {
	status int
	err    error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.status)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// reportArgsError tells the operator about an error from parseArgs, one
// "relaykeeper: " line per problem, and returns the status to exit with.
// main does:
//
//	cfg, cmd, err := parseArgs(os.Args[1:], os.Stdout)
//	if err != nil {
//		os.Exit(reportArgsError(os.Stderr, err))
//	}
func reportArgsError(stderr io.Writer, err error) int {
	status := 1
	var ee *exitError
	if errors.As(err, &ee) {
		status = ee.status
		if ee.err == nil {
			return status
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "relaykeeper: %s\n", line)
	}
	return status
}

// parseArgs reads the command line: either a subcommand, returned as a
// Command with its arguments untouched, or E-MailRelay's switches, merged
// over the --config file (when given) over config.Default(). Only switches
// actually given override the file, in the order given. The result has
// passed Validate.
//
// --help and --version print to stdout. Every error is an *exitError (see
// reportArgsError): status 2 for a wrong switch, a missing or bad value, a
// bad file or a configuration that fails Validate; status 0 after --help
// and --version.
func parseArgs(args []string, stdout io.Writer) (config.Config, *Command, error) {
	if len(args) > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-") {
		return config.Config{}, &Command{Name: args[0], Args: args[1:]}, nil
	}

	p := &argParser{}
	opts := p.options()
	fs := flag.NewFlagSet("relaykeeper", flag.ContinueOnError)
	// The flag package's own messages and usage are replaced by ours.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for i := range opts {
		o := &opts[i]
		fs.Var(&switchValue{p: p, opt: o, name: "--" + o.long}, o.long, o.help)
		if o.short != "" {
			fs.Var(&switchValue{p: p, opt: o, name: "-" + o.short}, o.short, o.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if p.err != nil {
			err = p.err
		} else {
			err = flagError(err)
		}
		return config.Config{}, nil, usageError(err)
	}
	if fs.NArg() > 0 {
		return config.Config{}, nil, usageError(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if p.help {
		writeUsage(stdout, opts)
		return config.Config{}, nil, &exitError{status: 0}
	}
	if p.version {
		fmt.Fprintf(stdout, "relaykeeper %s\n", version)
		return config.Config{}, nil, &exitError{status: 0}
	}

	cfg := config.Default()
	if p.configFile != "" {
		var err error
		if cfg, err = config.Load(p.configFile); err != nil {
			return config.Config{}, nil, &exitError{status: exitUsage, err: err}
		}
	}
	for _, apply := range p.actions {
		apply(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, nil, &exitError{status: exitUsage, err: err}
	}
	return cfg, nil, nil
}

// usageError is a one-line command-line error with the way out.
func usageError(err error) error {
	return &exitError{status: exitUsage, err: fmt.Errorf("%w (see relaykeeper --help)", err)}
}

// flagError rewrites the flag package's messages, which spell every
// switch with one dash, to name the switch as E-MailRelay does.
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown switch %s", dashed(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("%s needs a value", dashed(name))
	}
	if arg, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return fmt.Errorf("bad switch %q", arg)
	}
	return err
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// argParser collects what the switches say while the flag package parses
// them; nothing is applied until the file has been loaded.
type argParser struct {
	actions    []func(*config.Config)
	configFile string
	help       bool
	version    bool
	mode       string // the mode switch given, as typed, to refuse a second
	ifaces     bool   // set once the first --interface has replaced the file's
	certs      []string
	err        error // why the last Set failed, naming the switch
}

// option is one switch, with E-MailRelay's long name and letter.
type option struct {
	long, short string
	arg         string // the value's name in --help; "" for an on/off switch
	group       string
	help        string
	// keys are the configuration keys the switch sets, so that a problem
	// Validate finds with them names the switch.
	keys []string
	// parse reads the value and returns its effect on the configuration,
	// or nil for none.
	parse func(val string) (func(*config.Config), error)
}

// switchValue adapts an option to flag.Value under one of its names.
type switchValue struct {
	p    *argParser
	opt  *option
	name string // as E-MailRelay spells it: "--port" or "-p"
}

func (v *switchValue) String() string   { return "" }
func (v *switchValue) IsBoolFlag() bool { return v.opt.arg == "" }

func (v *switchValue) Set(val string) error {
	apply, err := v.opt.parse(val)
	if err != nil {
		switch {
		case v.opt.arg != "":
			v.p.err = fmt.Errorf("%s %q: %w", v.name, val, err)
		case val == "true":
			v.p.err = fmt.Errorf("%s: %w", v.name, err)
		default:
			v.p.err = fmt.Errorf("%s=%s: %w", v.name, val, err)
		}
		return err
	}
	if apply == nil {
		return nil
	}
	name, keys := v.name, v.opt.keys
	v.p.actions = append(v.p.actions, func(c *config.Config) {
		apply(c)
		if c.Origin.Switches == nil {
			c.Origin.Switches = make(map[string]string)
		}
		for _, k := range keys {
			c.Origin.Switches[k] = name
		}
	})
	return nil
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
	groupCompat  = "Accepted for compatibility with E-MailRelay, and ignored because\nrelaykeeper never forks and leaves syslog and timestamps to its supervisor"
)

var groups = []string{groupModes, groupForward, groupListen, groupTLS, groupPolicy, groupSpool, groupLog, groupProcess, groupCompat}

func (p *argParser) options() []option {
	return []option{
		{long: "as-server", short: "d", group: groupModes,
			help: "store mail in the spool; forward it only when told to (--poll, --forward-on-disconnect); implies --log",
			keys: []string{"mode", "log.enabled"},
			parse: p.modeSwitch("--as-server", func(c *config.Config) {
				c.Mode = config.ModeServer
				c.Log.Enabled = true
			})},
		{long: "as-proxy", short: "y", arg: "HOST:PORT", group: groupModes,
			help: "forward each message to HOST:PORT while receiving it; implies --immediate --log",
			keys: []string{"mode", "forward.to", "forward.immediate", "log.enabled"},
			parse: p.modeHost("--as-proxy", func(c *config.Config, to string) {
				c.Mode = config.ModeProxy
				c.Forward.To = to
				c.Forward.Immediate = true
				c.Log.Enabled = true
			})},
		{long: "as-client", short: "q", arg: "HOST:PORT", group: groupModes,
			help: "forward the spool to HOST:PORT, then exit; no SMTP listener",
			keys: []string{"mode", "forward.to", "smtp.disabled", "forward.at_startup"},
			parse: p.modeHost("--as-client", func(c *config.Config, to string) {
				c.Mode = config.ModeClient
				c.Forward.To = to
				c.SMTP.Disabled = true
				c.Forward.AtStartup = true
			})},

		{long: "forward", short: "f", group: groupForward,
			help:  "forward the spool once at start-up",
			keys:  []string{"forward.at_startup"},
			parse: onOff(func(c *config.Config, on bool) { c.Forward.AtStartup = on })},
		{long: "forward-to", short: "o", arg: "HOST:PORT", group: groupForward,
			help:  "the smarthost; PORT may be a service name (smtp); a bare HOST means port 25",
			keys:  []string{"forward.to"},
			parse: hostPort(func(c *config.Config, to string) { c.Forward.To = to })},
		{long: "forward-on-disconnect", short: "1", group: groupForward,
			help:  "forward the spool whenever an SMTP client disconnects",
			keys:  []string{"forward.on_disconnect"},
			parse: onOff(func(c *config.Config, on bool) { c.Forward.OnDisconnect = on })},
		{long: "poll", short: "O", arg: "SECONDS", group: groupForward,
			help:  "forward the spool every SECONDS (or a duration such as 1h); 0 means on disconnect",
			keys:  []string{"forward.poll"},
			parse: p.poll},
		{long: "immediate", short: "m", group: groupForward,
			help:  "forward each message while receiving it",
			keys:  []string{"forward.immediate"},
			parse: onOff(func(c *config.Config, on bool) { c.Forward.Immediate = on })},
		{long: "connection-timeout", short: "U", arg: "SECONDS", group: groupForward,
			help: "give up connecting to the smarthost after SECONDS",
			keys: []string{"forward.connection_timeout"},
			parse: seconds(func(c *config.Config, d time.Duration) {
				c.Forward.ConnectionTimeout = d
			})},
		{long: "response-timeout", short: "T", arg: "SECONDS", group: groupForward,
			help:  "give up waiting for each smarthost reply after SECONDS",
			keys:  []string{"forward.response_timeout"},
			parse: seconds(func(c *config.Config, d time.Duration) { c.Forward.ResponseTimeout = d })},

		{long: "port", short: "p", arg: "N", group: groupListen,
			help:  "listen on port N (default 25)",
			keys:  []string{"smtp.port"},
			parse: port},
		{long: "interface", short: "I", arg: "ADDR", group: groupListen,
			help:  "listen on ADDR only; repeat it or give a comma-separated list; smtp=ADDR is the same, pop= and admin= are kept for later",
			keys:  []string{"smtp.interfaces"},
			parse: p.iface},
		{long: "remote-clients", short: "r", group: groupListen,
			help:  "accept clients from outside loopback and private networks",
			keys:  []string{"smtp.remote_clients"},
			parse: onOff(func(c *config.Config, on bool) { c.SMTP.RemoteClients = on })},
		{long: "no-smtp", short: "X", group: groupListen,
			help:  "run no SMTP listener",
			keys:  []string{"smtp.disabled"},
			parse: onOff(func(c *config.Config, on bool) { c.SMTP.Disabled = on })},
		{long: "idle-timeout", arg: "SECONDS", group: groupListen,
			help:  "drop an SMTP client silent for SECONDS",
			keys:  []string{"smtp.idle_timeout"},
			parse: seconds(func(c *config.Config, d time.Duration) { c.SMTP.IdleTimeout = d })},
		{long: "size", short: "M", arg: "BYTES", group: groupListen,
			help:  "refuse messages larger than BYTES; 0 means no limit",
			keys:  []string{"smtp.max_message_size"},
			parse: size},
		{long: "domain", short: "D", arg: "NAME", group: groupListen,
			help:  "the name in the greeting, Received headers and EHLO (default: the host name)",
			keys:  []string{"domain"},
			parse: text(func(c *config.Config, s string) { c.Domain = s })},

		{long: "no-bounces", group: groupForward,
			help:  "send no delivery status notifications: a failed message is only marked failed, as E-MailRelay does",
			keys:  []string{"delivery.bounces"},
			parse: onOff(func(c *config.Config, on bool) { c.Delivery.Bounces = !on })},
		{long: "server-tls", short: "K", group: groupTLS,
			help:  "offer STARTTLS to clients (needs --server-tls-certificate)",
			keys:  []string{"tls.server"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.Server = on })},
		{long: "server-tls-certificate", arg: "FILE", group: groupTLS,
			help:  "PEM certificate and key; give it twice for separate files (the key, then the certificate)",
			keys:  []string{"tls.certificate", "tls.key"},
			parse: p.serverCert},
		{long: "server-tls-connection", group: groupTLS,
			help:  "speak TLS from the first byte on the SMTP listeners (port 465)",
			keys:  []string{"tls.server_connection"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.ServerConnection = on })},
		{long: "server-tls-required", group: groupTLS,
			help:  "refuse AUTH and MAIL before STARTTLS",
			keys:  []string{"tls.server_required"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.ServerRequired = on })},
		{long: "server-auth", short: "S", arg: "FILE", group: groupTLS,
			help:  "offer SMTP AUTH with the \"server\" accounts of the secrets FILE (E-MailRelay's format)",
			keys:  []string{"auth.server_secrets"},
			parse: text(func(c *config.Config, s string) { c.Auth.ServerSecrets = s })},
		{long: "client-tls", short: "j", group: groupTLS,
			help:  "use STARTTLS with the smarthost when it offers it",
			keys:  []string{"tls.client"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.Client = on })},
		{long: "client-tls-connection", short: "b", group: groupTLS,
			help:  "speak TLS from the first byte with the smarthost (port 465)",
			keys:  []string{"tls.client_connection"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.ClientConnection = on })},
		{long: "client-tls-required", group: groupTLS,
			help:  "never send to the smarthost without TLS",
			keys:  []string{"tls.client_required"},
			parse: onOff(func(c *config.Config, on bool) { c.TLS.ClientRequired = on })},
		{long: "client-tls-verify", arg: "CAFILE", group: groupTLS,
			help:  "verify the smarthost's certificate and name against CAFILE, or <default> for the system's roots (the default with --client-auth); <none> never verifies",
			keys:  []string{"tls.client_verify"},
			parse: text(func(c *config.Config, s string) { c.TLS.ClientVerify = s })},
		{long: "client-tls-server-name", arg: "NAME", group: groupTLS,
			help:  "the name to ask for and verify (SNI); the smarthost's host name by default",
			keys:  []string{"tls.client_server_name"},
			parse: text(func(c *config.Config, s string) { c.TLS.ClientServerName = s })},
		{long: "client-auth", short: "C", arg: "FILE", group: groupTLS,
			help:  "log in to the smarthost with the \"client\" line of the secrets FILE",
			keys:  []string{"auth.client_secrets"},
			parse: text(func(c *config.Config, s string) { c.Auth.ClientSecrets = s })},

		{long: "dnsbl", arg: "SERVERS,THRESHOLD,TIMEOUT,DNS-SERVER", group: groupPolicy,
			help:  "refuse clients listed by THRESHOLD of the DNS blocklists SERVERS (E-MailRelay's form); trusted networks are never checked",
			keys:  []string{"policy.dnsbl"},
			parse: text(func(c *config.Config, s string) { c.Policy.DNSBL = s })},
		{long: "address-verifier", arg: "PROGRAM", group: groupPolicy,
			help:  "ask PROGRAM (or net:HOST:PORT) about every recipient, with E-MailRelay's verifier protocol",
			keys:  []string{"policy.address_verifier"},
			parse: text(func(c *config.Config, s string) { c.Policy.AddressVerifier = s })},

		{long: "pop", short: "B", group: groupListen,
			help:  "serve the spool over POP3 (needs --pop-auth)",
			keys:  []string{"pop.enabled"},
			parse: onOff(func(c *config.Config, on bool) { c.POP.Enabled = on })},
		{long: "pop-port", short: "E", arg: "N", group: groupListen,
			help: "POP3 on port N (default 110)",
			keys: []string{"pop.port"},
			parse: func(val string) (func(*config.Config), error) {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 || n > 65535 {
					return nil, errors.New("want a port number from 1 to 65535")
				}
				return func(c *config.Config) { c.POP.Port = n }, nil
			}},
		{long: "pop-auth", short: "F", arg: "FILE", group: groupListen,
			help:  "POP3 accounts: the \"server\" lines of the secrets FILE",
			keys:  []string{"pop.auth"},
			parse: text(func(c *config.Config, s string) { c.POP.Auth = s })},
		{long: "pop-by-name", short: "J", group: groupListen,
			help:  "each POP3 user reads SPOOL/USER/ instead of the whole spool",
			keys:  []string{"pop.by_name"},
			parse: onOff(func(c *config.Config, on bool) { c.POP.ByName = on })},
		{long: "pop-no-delete", short: "G", group: groupListen,
			help:  "POP3 DELE deletes nothing (the mail is still forwarded)",
			keys:  []string{"pop.no_delete"},
			parse: onOff(func(c *config.Config, on bool) { c.POP.NoDelete = on })},
		{long: "admin", short: "a", arg: "PORT", group: groupListen,
			help: "E-MailRelay's admin interface on PORT (loopback unless --interface admin=ADDR)",
			keys: []string{"admin.port"},
			parse: func(val string) (func(*config.Config), error) {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 || n > 65535 {
					return nil, errors.New("want a port number from 1 to 65535")
				}
				return func(c *config.Config) { c.Admin.Port = n }, nil
			}},
		{long: "admin-terminate", short: "Q", group: groupListen,
			help:  "allow the admin interface's terminate command",
			keys:  []string{"admin.terminate"},
			parse: onOff(func(c *config.Config, on bool) { c.Admin.Terminate = on })},
		{long: "filter", short: "z", arg: "PROGRAM", group: groupPolicy,
			help:  "run PROGRAM (or spam:HOST:PORT, net:HOST:PORT, pipe:PROGRAM, exit:N, msgid:) on each message before answering its final dot; repeat to chain",
			keys:  []string{"filter.server"},
			parse: p.filterSpec(func(c *config.Config) *[]string { return &c.Filter.Server })},
		{long: "client-filter", short: "Y", arg: "PROGRAM", group: groupPolicy,
			help:  "run PROGRAM on each message before forwarding it; repeat to chain",
			keys:  []string{"filter.client"},
			parse: p.filterSpec(func(c *config.Config) *[]string { return &c.Filter.Client })},
		{long: "filter-timeout", short: "W", arg: "SECONDS", group: groupPolicy,
			help:  "give a filter SECONDS before it counts as failed (default 60)",
			keys:  []string{"filter.timeout"},
			parse: seconds(func(c *config.Config, d time.Duration) { c.Filter.Timeout = d })},
		{long: "no-enforce", group: groupPolicy,
			help:  "do not act on the upstream's refusals (no bans, no domain blocks, no encapsulated forwarding)",
			keys:  []string{"enforce.disabled"},
			parse: onOff(func(c *config.Config, on bool) { c.Enforce.Disabled = on })},
		{long: "srs-secret", arg: "FILE", group: groupPolicy,
			help:  "rewrite the senders of forwarded mail with SRS (postsrsd's format) signed with the secret in FILE, and route SRS bounces back",
			keys:  []string{"srs.secret_file"},
			parse: text(func(c *config.Config, s string) { c.SRS.SecretFile = s })},
		{long: "enforce-rules", arg: "FILE", group: groupPolicy,
			help:  "classify the upstream's refusals with the rules in FILE instead of the built-in Gmail rules",
			keys:  []string{"enforce.rules"},
			parse: text(func(c *config.Config, s string) { c.Enforce.Rules = s })},
		{long: "welcomelist", arg: "FILE", group: groupPolicy,
			help:  "clients in FILE are never banned: their refused mail is forwarded encapsulated",
			keys:  []string{"enforce.welcomelist"},
			parse: text(func(c *config.Config, s string) { c.Enforce.Welcomelist = s })},
		{long: "mail", arg: "ADDRESS", group: groupPolicy,
			help:  "mail ADDRESS a report of every enforcement action and every refusal no rule knows",
			keys:  []string{"enforce.mail"},
			parse: text(func(c *config.Config, s string) { c.Enforce.Mail = s })},

		{long: "spool-dir", short: "s", arg: "DIR", group: groupSpool,
			help:  "keep the spool in DIR (default /var/spool/relaykeeper)",
			keys:  []string{"spool.dir"},
			parse: text(func(c *config.Config, s string) { c.Spool.Dir = s })},

		{long: "log", short: "l", group: groupLog,
			help:  "log informational messages, not only warnings and errors",
			keys:  []string{"log.enabled"},
			parse: onOff(func(c *config.Config, on bool) { c.Log.Enabled = on })},
		{long: "verbose", short: "v", group: groupLog,
			help:  "log debugging detail",
			keys:  []string{"log.verbose"},
			parse: onOff(func(c *config.Config, on bool) { c.Log.Verbose = on })},
		{long: "log-file", short: "N", arg: "FILE", group: groupLog,
			help:  "log to FILE instead of standard error",
			keys:  []string{"log.file"},
			parse: text(func(c *config.Config, s string) { c.Log.File = s })},

		{long: "config", arg: "FILE", group: groupProcess,
			help: "read settings from the TOML FILE first; switches override it",
			parse: func(val string) (func(*config.Config), error) {
				if val == "" {
					return nil, errors.New("empty file name")
				}
				p.configFile = val
				return nil, nil
			}},
		{long: "pid-file", short: "i", arg: "FILE", group: groupProcess,
			help:  "write the process id to FILE",
			keys:  []string{"process.pid_file"},
			parse: text(func(c *config.Config, s string) { c.Process.PidFile = s })},
		{long: "help", short: "h", group: groupProcess,
			help:  "print this page and exit",
			parse: p.flag(&p.help)},
		{long: "version", short: "V", group: groupProcess,
			help:  "print the version and exit",
			parse: p.flag(&p.version)},

		{long: "no-daemon", short: "t", group: groupCompat, parse: ignored},
		{long: "close-stderr", short: "e", group: groupCompat, parse: ignored},
		{long: "no-syslog", short: "n", group: groupCompat, parse: ignored},
		{long: "syslog", short: "k", group: groupCompat, parse: ignored},
		{long: "log-time", short: "L", group: groupCompat, parse: ignored},
	}
}

// onOff is an on/off switch; "--log=false" turns off what the file turned on.
func onOff(set func(c *config.Config, on bool)) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		on, err := strconv.ParseBool(val)
		if err != nil {
			return nil, errors.New("want true or false")
		}
		return func(c *config.Config) { set(c, on) }, nil
	}
}

// ignored accepts E-MailRelay's switches about forking and syslog, which
// have no meaning for a process that always runs in the foreground.
func ignored(val string) (func(*config.Config), error) {
	if _, err := strconv.ParseBool(val); err != nil {
		return nil, errors.New("want true or false")
	}
	return nil, nil
}

// flag is an on/off switch that is not a setting (--help, --version).
func (p *argParser) flag(dst *bool) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		on, err := strconv.ParseBool(val)
		if err != nil {
			return nil, errors.New("want true or false")
		}
		*dst = on
		return nil, nil
	}
}

// claimMode refuses a second, different mode switch: "--as-server
// --as-proxy" has no sensible meaning.
func (p *argParser) claimMode(name string) error {
	if p.mode != "" && p.mode != name {
		return fmt.Errorf("conflicts with %s; give one mode", p.mode)
	}
	p.mode = name
	return nil
}

func (p *argParser) modeSwitch(name string, set func(*config.Config)) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		if val != "true" {
			return nil, errors.New("takes no value")
		}
		if err := p.claimMode(name); err != nil {
			return nil, err
		}
		return set, nil
	}
}

func (p *argParser) modeHost(name string, set func(*config.Config, string)) func(string) (func(*config.Config), error) {
	parse := hostPort(set)
	return func(val string) (func(*config.Config), error) {
		if err := p.claimMode(name); err != nil {
			return nil, err
		}
		return parse(val)
	}
}

func hostPort(set func(*config.Config, string)) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		to, err := config.ResolveHostPort(val)
		if err != nil {
			return nil, err
		}
		return func(c *config.Config) { set(c, to) }, nil
	}
}

func text(set func(*config.Config, string)) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		if strings.TrimSpace(val) == "" {
			return nil, errors.New("empty value")
		}
		return func(c *config.Config) { set(c, val) }, nil
	}
}

// seconds reads a timeout: a bare number is seconds, as in E-MailRelay,
// and a Go duration ("90s") also works.
func seconds(set func(*config.Config, time.Duration)) func(string) (func(*config.Config), error) {
	return func(val string) (func(*config.Config), error) {
		d, err := config.ParseDuration(val)
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, errors.New("want a positive number of seconds")
		}
		return func(c *config.Config) { set(c, d) }, nil
	}
}

func (p *argParser) poll(val string) (func(*config.Config), error) {
	d, err := config.ParseDuration(val)
	if err != nil {
		return nil, err
	}
	if d < 0 {
		return nil, errors.New("want 0 or more seconds")
	}
	return func(c *config.Config) {
		c.Forward.Poll = d
		c.Forward.PollSet = true
		if d == 0 {
			// E-MailRelay's "--poll 0" means forward on disconnect.
			c.Forward.OnDisconnect = true
		}
	}, nil
}

func port(val string) (func(*config.Config), error) {
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 || n > 65535 {
		return nil, errors.New("want a port number from 1 to 65535")
	}
	return func(c *config.Config) { c.SMTP.Port = n }, nil
}

func size(val string) (func(*config.Config), error) {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 {
		return nil, errors.New("want a number of bytes, 0 for no limit")
	}
	return func(c *config.Config) { c.SMTP.MaxMessageSize = n }, nil
}

// iface reads one --interface: a comma-separated list of addresses, each
// maybe with E-MailRelay's listener prefix. The first --interface replaces
// the file's list; later ones add to it.
func (p *argParser) iface(val string) (func(*config.Config), error) {
	var smtp []string
	other := make(map[string][]string)
	for _, entry := range strings.Split(val, ",") {
		entry = strings.TrimSpace(entry)
		addr := entry
		if prefix, rest, ok := strings.Cut(entry, "="); ok {
			addr = rest
			switch prefix {
			case "smtp":
			case "submission", "smtps", "reinject":
				// Kept whole: the role travels with the address.
				addr = entry
			case "pop", "admin":
				if addr == "" {
					return nil, fmt.Errorf("empty address in %q", entry)
				}
				other[prefix] = append(other[prefix], addr)
				continue
			default:
				return nil, fmt.Errorf("unknown listener %q; want smtp=, submission=, smtps=, reinject=, pop= or admin=", prefix)
			}
		}
		if addr == "" {
			return nil, errors.New("empty address")
		}
		smtp = append(smtp, addr)
	}
	return func(c *config.Config) {
		if !p.ifaces {
			p.ifaces = true
			c.SMTP.Interfaces = nil
		}
		c.SMTP.Interfaces = append(c.SMTP.Interfaces, smtp...)
		for prefix, addrs := range other {
			if c.OtherInterfaces == nil {
				c.OtherInterfaces = make(map[string][]string)
			}
			c.OtherInterfaces[prefix] = append(c.OtherInterfaces[prefix], addrs...)
		}
	}, nil
}

// subcommands are listed in --help; main dispatches them.
var subcommands = []struct{ name, help string }{
	{"queue", "list and manage the messages in the spool"},
	{"stats", "show delivery statistics"},
	{"passwd", "make an entry for a secrets file"},
	{"bans", "list and lift bans"},
	{"submit", "put a message read from standard input into the spool"},
	{"enforce", "apply the rules about upstream replies"},
	{"postfix-enforcer", "follow Postfix's mail log and apply the same rules"},
}

// wrap breaks text into lines of at most width columns, all but the first
// indented by indent spaces; the result ends with a newline.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\n")
	return b.String()
}

// writeUsage prints --help, grouped like E-MailRelay's.
func writeUsage(w io.Writer, opts []option) {
	var b strings.Builder
	b.WriteString(`Usage: relaykeeper [SWITCHES]
       relaykeeper COMMAND [ARGS]

relaykeeper is an SMTP store-and-forward relay and proxy that takes
E-MailRelay's switches. It never forks into the background: it runs in the
foreground, logs to standard error unless told otherwise, and expects
systemd or a container supervisor to start it, stop it and restart it.
Timeouts are seconds, or durations such as 90s or 5m. A switch may be
written --name VALUE or --name=VALUE.
`)
	const indent = 34
	for _, group := range groups {
		fmt.Fprintf(&b, "\n%s:\n", group)
		for _, o := range opts {
			if o.group != group {
				continue
			}
			left := "      --" + o.long
			if o.short != "" {
				left = "  -" + o.short + ", --" + o.long
			}
			if o.arg != "" {
				left += " " + o.arg
			}
			b.WriteString(left)
			if o.help == "" {
				b.WriteString("\n")
				continue
			}
			if len(left) >= indent-1 {
				b.WriteString("\n")
				left = ""
			}
			b.WriteString(strings.Repeat(" ", indent-len(left)))
			b.WriteString(wrap(o.help, indent, 79))
		}
	}
	b.WriteString("\nCommands (run relaykeeper COMMAND --help for theirs):\n")
	for _, c := range subcommands {
		fmt.Fprintf(&b, "  %-18s %s\n", c.name, c.help)
	}
	b.WriteString(`
Examples:
  relaykeeper --as-server --port 10025 --spool-dir /tmp/spool
      store mail received on port 10025
  relaykeeper --as-client smarthost:smtp --spool-dir /tmp/spool
      forward what is stored to the smarthost, then exit
  relaykeeper --as-server --poll 3600 --forward-to smarthost:smtp
      store mail and forward it to the smarthost every hour
  relaykeeper --as-proxy smarthost:smtp
      pass each message to the smarthost as it arrives
`)
	io.WriteString(w, b.String())
}

// serverCert is --server-tls-certificate: E-MailRelay takes it twice for
// separate files, the key first, then the certificate; once for a PEM file
// that holds both.
func (p *argParser) serverCert(val string) (func(*config.Config), error) {
	if val == "" {
		return nil, errors.New("empty file name")
	}
	p.certs = append(p.certs, val)
	switch len(p.certs) {
	case 1:
		return func(c *config.Config) { c.TLS.Certificate, c.TLS.Key = val, "" }, nil
	case 2:
		key := p.certs[0]
		return func(c *config.Config) { c.TLS.Key, c.TLS.Certificate = key, val }, nil
	}
	return nil, errors.New("given more than twice (the key file, then the certificate file)")
}

// filterSpec is --filter or --client-filter: repeatable; the first one
// given replaces what the file says, later ones chain after it.
func (p *argParser) filterSpec(list func(*config.Config) *[]string) func(string) (func(*config.Config), error) {
	replaced := false
	return func(val string) (func(*config.Config), error) {
		if strings.TrimSpace(val) == "" {
			return nil, errors.New("empty filter")
		}
		return func(c *config.Config) {
			l := list(c)
			if !replaced {
				replaced = true
				*l = nil
			}
			*l = append(*l, val)
		}, nil
	}
}
