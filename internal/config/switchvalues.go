package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/syslogtee"
)

// This file holds how the switch table's values are read: one small
// parser per kind of value, each returning the switch's effect on the
// configuration.

// switchValue adapts an option to flag.Value under one of its names.
type switchValue struct {
	p    *switchParser
	opt  *Switch
	name string // as E-MailRelay spells it: "--port" or "-p"
}

func (v *switchValue) String() string   { return "" }
func (v *switchValue) IsBoolFlag() bool { return v.opt.Arg == "" }

func (v *switchValue) Set(val string) error {
	name := v.name
	if v.p.sets < len(v.p.from) { // a line of E-MailRelay's configuration file
		name = v.p.from[v.p.sets] + ": " + name
	}
	v.p.sets++
	apply, err := v.opt.parse(val)
	if err != nil {
		switch {
		case v.opt.Arg != "":
			v.p.err = fmt.Errorf("%s %q: %w", name, val, err)
		case val == "true":
			v.p.err = fmt.Errorf("%s: %w", name, err)
		default:
			v.p.err = fmt.Errorf("%s=%s: %w", name, val, err)
		}
		return err
	}
	if apply == nil {
		return nil
	}
	keys := v.opt.Keys
	v.p.actions = append(v.p.actions, func(c *Config) {
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

// FlagError rewrites the flag package's messages, which spell every
// switch with one dash, to name the switch as E-MailRelay does.
func FlagError(err error) error {
	if err == nil {
		return nil
	}
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
	// `invalid boolean value "yes" for -json: parse error`
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if val, name, ok := strings.Cut(rest, " for -"); ok {
			name, _, _ = strings.Cut(name, ":")
			if v, err := strconv.Unquote(val); err == nil {
				return fmt.Errorf("%s=%s: want true or false", dashed(name), v)
			}
		}
	}
	// `invalid value "x" for flag -ban-delay: REASON`
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if val, rest, ok := strings.Cut(rest, " for flag -"); ok {
			if name, why, ok := strings.Cut(rest, ": "); ok {
				if why == "parse error" {
					why = "not a valid value"
				}
				return fmt.Errorf("%s %s: %s", dashed(name), val, why)
			}
		}
	}
	return err
}

// durationFlag is a switch's duration read as ParseDuration reads it:
// seconds ("10") or a duration ("10s", "4h"), as the relay's own switches.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 90s or 4h, or seconds")
	}
	*f.d = d
	return nil
}

// DurationVar defines a duration switch of a command on fs, its value
// read as ParseDuration reads it (flag's own wants a unit: "10" failed).
func DurationVar(fs *flag.FlagSet, d *time.Duration, name string, def time.Duration) {
	*d = def
	fs.Var(durationFlag{d}, name, "")
}

// Duration is DurationVar returning where the value goes.
func Duration(fs *flag.FlagSet, name string, def time.Duration) *time.Duration {
	d := new(time.Duration)
	DurationVar(fs, d, name, def)
	return d
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// onOff is an on/off switch; "--log=false" turns off what the file turned on.
func onOff(set func(c *Config, on bool)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		on, err := strconv.ParseBool(val)
		if err != nil {
			return nil, errors.New("want true or false")
		}
		return func(c *Config) { set(c, on) }, nil
	}
}

// ignored accepts E-MailRelay's switches about forking and syslog, which
// have no meaning for a process that always runs in the foreground.
func ignored(val string) (func(*Config), error) {
	if _, err := strconv.ParseBool(val); err != nil {
		return nil, errors.New("want true or false")
	}
	return nil, nil
}

// tlsConfig reads E-MailRelay's --tls-config keywords. Those that ask for
// what relaykeeper always does are taken: a library's name (Go's own TLS
// is the only one), tlsv1.2, the minimum version, and -tlsv1.3, the
// maximum ("-" sets the highest version in E-MailRelay). Any other keyword
// would change what relaykeeper negotiates, so it is refused, saying why.
func tlsConfig(val string) (func(*Config), error) {
	for _, k := range strings.Split(val, ",") {
		switch k = strings.ToLower(strings.TrimSpace(k)); k {
		case "openssl", "mbedtls", "tlsv1.2", "-tlsv1.3":
		case "sslv3", "tlsv1.0", "tlsv1.1":
			return nil, fmt.Errorf("%q: relaykeeper never negotiates below TLS 1.2", k)
		case "tlsv1.3", "-tlsv1.2":
			return nil, fmt.Errorf("%q: relaykeeper always offers TLS 1.2 and 1.3; a narrower range cannot be set", k)
		default:
			return nil, fmt.Errorf("%q: want openssl, mbedtls, tlsv1.2 or -tlsv1.3 (TLS 1.2 to 1.3, with Go's own TLS library, is always used)", k)
		}
	}
	return nil, nil
}

// syslogFacility reads E-MailRelay's --syslog[=FACILITY]: a facility's
// name, or on (mail) or off.
func syslogFacility(val string) (func(*Config), error) {
	if syslogtee.Facility(val) {
		return func(c *Config) { c.Log.Syslog = val }, nil
	}
	on, err := strconv.ParseBool(val)
	if err != nil {
		return nil, errors.New("want a syslog facility (mail, daemon, local0 ...), true or false")
	}
	return func(c *Config) { c.Log.Syslog, c.Log.NoSyslog = map[bool]string{true: "mail"}[on], !on }, nil
}

// anonymousScopes reads E-MailRelay's --anonymous=SCOPE,...: vrfy, server
// and client ask for what relaykeeper always does; content (no Received
// header), and a bare --anonymous, which means every scope, cannot be
// had, and are refused rather than ignored.
func anonymousScopes(val string) (func(*Config), error) {
	if on, err := strconv.ParseBool(val); err == nil {
		if !on {
			return nil, nil
		}
		return nil, errors.New("E-MailRelay's switch is not supported: a bare --anonymous (every scope) leaves the Received header out, which relaykeeper cannot; --anonymous=vrfy,server,client is what relaykeeper always does")
	}
	for _, scope := range strings.Split(val, ",") {
		switch strings.TrimSpace(scope) {
		case "vrfy", "server", "client":
		case "content":
			return nil, errors.New("E-MailRelay's switch is not supported with content: the Received header cannot be left out; --anonymous=vrfy,server,client is what relaykeeper always does")
		default:
			return nil, fmt.Errorf("unknown scope %q: want vrfy, server or client, separated by commas", scope)
		}
	}
	return nil, nil
}

// flag is an on/off switch that is not a setting (--help, --version).
func (p *switchParser) flag(dst *bool) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
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
func (p *switchParser) claimMode(name string) error {
	if p.mode != "" && p.mode != name {
		return fmt.Errorf("conflicts with %s; give one mode", p.mode)
	}
	if p.forwardTo && namesSmarthost(name) {
		return errors.New("conflicts with --forward-to: it names the smarthost itself; give one of them")
	}
	p.mode = name
	return nil
}

// namesSmarthost says whether a mode switch names the smarthost, so that
// --forward-to beside it would quietly drop one of the two addresses
// (E-MailRelay refuses the pair).
func namesSmarthost(mode string) bool { return mode == "--as-client" || mode == "--as-proxy" }

// forwardToSwitch is --forward-to, refused beside --as-client or --as-proxy.
func (p *switchParser) forwardToSwitch(set func(*Config, string)) func(string) (func(*Config), error) {
	parse := hostPort(set)
	return func(val string) (func(*Config), error) {
		if namesSmarthost(p.mode) {
			return nil, fmt.Errorf("conflicts with %s, which names the smarthost itself; give one of them", p.mode)
		}
		p.forwardTo = true
		return parse(val)
	}
}

func (p *switchParser) modeSwitch(name string, set func(*Config)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		if val != "true" {
			return nil, errors.New("takes no value")
		}
		if err := p.claimMode(name); err != nil {
			return nil, err
		}
		return set, nil
	}
}

func (p *switchParser) modeHost(name string, set func(*Config, string)) func(string) (func(*Config), error) {
	parse := hostPort(set)
	return func(val string) (func(*Config), error) {
		if err := p.claimMode(name); err != nil {
			return nil, err
		}
		return parse(val)
	}
}

func hostPort(set func(*Config, string)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		to, err := ResolveHostPort(val)
		if err != nil {
			return nil, err
		}
		return func(c *Config) { set(c, to) }, nil
	}
}

func text(set func(*Config, string)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		if strings.TrimSpace(val) == "" {
			return nil, errors.New("empty value")
		}
		return func(c *Config) { set(c, val) }, nil
	}
}

// seconds reads a timeout: a bare number is seconds, as in E-MailRelay,
// and a Go duration ("90s") also works.
func seconds(set func(*Config, time.Duration)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		d, err := ParseDuration(val)
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, errors.New("want a positive number of seconds")
		}
		return func(c *Config) { set(c, d) }, nil
	}
}

func (p *switchParser) poll(val string) (func(*Config), error) {
	d, err := ParseDuration(val)
	if err != nil {
		return nil, err
	}
	if d < 0 {
		return nil, errors.New("want 0 or more seconds")
	}
	return func(c *Config) {
		c.Forward.Poll = d
		c.Forward.PollSet = true
		if d == 0 {
			// E-MailRelay's "--poll 0" means forward on disconnect.
			c.Forward.OnDisconnect = true
		}
	}, nil
}

func port(set func(*Config, int)) func(string) (func(*Config), error) {
	return func(val string) (func(*Config), error) {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New("want a port number from 1 to 65535")
		}
		return func(c *Config) { set(c, n) }, nil
	}
}

func size(val string) (func(*Config), error) {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 {
		return nil, errors.New("want a number of bytes, 0 for no limit")
	}
	return func(c *Config) { c.SMTP.MaxMessageSize = n }, nil
}

// iface reads one --interface: a comma-separated list of addresses, each
// maybe with E-MailRelay's listener prefix. The first --interface replaces
// the file's list; later ones add to it.
func (p *switchParser) iface(val string) (func(*Config), error) {
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
		if !strings.Contains(entry, "=") {
			// No prefix: E-MailRelay's other servers listen there too.
			other[Unqualified] = append(other[Unqualified], addr)
		}
	}
	return func(c *Config) {
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
		if _, ok := c.OtherInterfaces[Unqualified]; !ok {
			// Present, if empty: the SMTP addresses came from
			// --interface, and its smtp= entries are SMTP's alone
			// (FrontendAddrs).
			if c.OtherInterfaces == nil {
				c.OtherInterfaces = make(map[string][]string)
			}
			c.OtherInterfaces[Unqualified] = []string{}
		}
	}, nil
}

// dnsbl reads one --dnsbl. E-MailRelay joins repeated ones with commas
// (its configuration file's repeated lines too), so that a second names
// more blocklists instead of replacing the first; the first replaces the
// file's.
func (p *switchParser) dnsbl(val string) (func(*Config), error) {
	if strings.TrimSpace(val) == "" {
		return nil, errors.New("empty value")
	}
	return func(c *Config) {
		if p.dnsbls {
			c.Policy.DNSBL += "," + val
			return
		}
		p.dnsbls = true
		c.Policy.DNSBL = val
	}, nil
}

// serverCert is --server-tls-certificate: E-MailRelay takes it twice for
// separate files, the key first, then the certificate; once for a PEM file
// that holds both.
func (p *switchParser) serverCert(val string) (func(*Config), error) {
	return certFiles(&p.certs, val, func(c *Config, cert, key string) { c.TLS.Certificate, c.TLS.Key = cert, key })
}

// clientCert is --client-tls-certificate, the relay's own certificate
// toward upstreams, taken as E-MailRelay takes it, as serverCert.
func (p *switchParser) clientCert(val string) (func(*Config), error) {
	return certFiles(&p.clientCerts, val, func(c *Config, cert, key string) { c.TLS.ClientCertificate, c.TLS.ClientKey = cert, key })
}

// certFiles takes the next of at most two files of a certificate switch:
// one PEM file with both, or the key file and then the certificate file.
func certFiles(seen *[]string, val string, set func(c *Config, cert, key string)) (func(*Config), error) {
	if val == "" {
		return nil, errors.New("empty file name")
	}
	*seen = append(*seen, val)
	switch len(*seen) {
	case 1:
		return func(c *Config) { set(c, val, "") }, nil
	case 2:
		key := (*seen)[0]
		return func(c *Config) { set(c, val, key) }, nil
	}
	return nil, errors.New("given more than twice (the key file, then the certificate file)")
}

// filterSpec is --filter or --client-filter: repeatable; the first one
// given replaces what the file says, later ones chain after it.
func (p *switchParser) filterSpec(list func(*Config) *[]string) func(string) (func(*Config), error) {
	replaced := false
	return func(val string) (func(*Config), error) {
		if strings.TrimSpace(val) == "" {
			return nil, errors.New("empty filter")
		}
		return func(c *Config) {
			l := list(c)
			if !replaced {
				replaced = true
				*l = nil
			}
			*l = append(*l, val)
		}, nil
	}
}

// ParseInterleaved parses a subcommand's switches wherever they are among
// its arguments ("queue show ID --body"), and returns the other arguments
// in order; errors are FlagError's. After "--" everything is an argument.
func ParseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, FlagErrorIn(fs, err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// LetterSets writes sets of one-letter switches one by one, as getopt
// reads them: "-lv" is "-l -v" (E-MailRelay's, and relay-enforcer's
// getopts). Each letter must be an on/off switch of fs; an argument that
// is one of fs's names ("-port", Go's form) or the value of the switch
// before it is left as it is.
func LetterSets(fs *flag.FlagSet, args []string) ([]string, error) {
	isBool := func(f *flag.Flag) bool {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return ok && b.IsBoolFlag()
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, eq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if a == "--" || !strings.HasPrefix(a, "-") {
			return append(out, args[i:]...), nil // the rest are arguments
		}
		if f := fs.Lookup(name); f != nil || strings.HasPrefix(a, "--") || len(a) < 3 {
			out = append(out, a)
			if f != nil && !isBool(f) && !eq && i+1 < len(args) {
				i++
				// Its value, whatever it looks like, but for another
				// switch: "--as-proxy --check" lacks the value, and
				// taking "--check" as the host would start the relay.
				if next, _, _ := strings.Cut(args[i], "="); strings.HasPrefix(next, "--") && fs.Lookup(next[2:]) != nil {
					return nil, fmt.Errorf("%s needs a value, not the switch %s", a, next)
				}
				out = append(out, args[i])
			}
			continue
		}
		for _, c := range []byte(a[1:]) {
			f := fs.Lookup(string(c))
			switch {
			case f == nil:
				return nil, fmt.Errorf("unknown switch -%c in %q", c, a)
			case !isBool(f):
				return nil, fmt.Errorf("-%c in %q takes a value: give it on its own", c, a)
			}
			out = append(out, "-"+string(c))
		}
	}
	return out, nil
}

// notTaken are E-MailRelay's switches that relaykeeper refuses, by long
// name and letter, with what to do instead.
var notTaken = []struct{ long, short, instead string }{
	{"user", "u", "relaykeeper never changes user: start it as the user it should run as (etc/relaykeeper.service has User=relaykeeper)"},
	{"dont-serve", "x", "use --as-client, or --no-smtp with --forward"},
	{"delivery-dir", "", "relaykeeper delivers nothing to local mailboxes: use --pop with --pop-by-name and the copy: filter"},
	{"forward-to-all", "", "relaykeeper cannot fail a message's other recipients because one was refused: each recipient has its own status"},
	{"localedir", "", "relaykeeper's messages are in English only"},
	{"server-auth-config", "", "leave it out: PLAIN, LOGIN and CRAM-MD5 are offered, only after STARTTLS unless [auth] allow_insecure = true"},
	{"client-auth-config", "", "leave it out: of the upstream's mechanisms CRAM-MD5 is chosen first, then PLAIN, then LOGIN (XOAUTH2 for an oauth line)"},
	{"client-smtp-config", "c", "leave it out: the upstream's PIPELINING is used where offered, and 8-bit and SMTPUTF8 mail is passed on as it came"},
	{"server-smtp-config", "Z", "leave it out: PIPELINING, CHUNKING, 8BITMIME and SMTPUTF8 are always offered"},
	{"hidden", "H", "it is E-MailRelay's for Windows; relaykeeper runs in the foreground under a supervisor"},
	{"show", "", "it is E-MailRelay's for Windows; relaykeeper runs in the foreground under a supervisor"},
}

// unknownSwitch is the error for a switch relaykeeper does not know, as
// typed ("--user", "-u"): E-MailRelay's that it refuses say what to do
// instead, and so do E-MailRelay's named instances ("--in-spool-dir").
func unknownSwitch(typed string) error {
	name := strings.TrimLeft(typed, "-")
	for _, n := range notTaken {
		if name == n.long || name == n.short {
			return fmt.Errorf("%s: E-MailRelay's switch is not supported: %s", typed, n.instead)
		}
	}
	// A named instance's prefix is a word of the operator's ("in", "out"),
	// not one that starts relaykeeper's own switches ("--server-port" is a
	// typo, not an instance named "server").
	if prefix, rest, ok := strings.Cut(name, "-"); ok && len(name) > 1 && !slices.ContainsFunc(Switches(), func(s Switch) bool {
		return strings.HasPrefix(s.Long, prefix+"-") || s.Long == prefix
	}) {
		for _, s := range Switches() {
			if rest == s.Long {
				return fmt.Errorf("%s: E-MailRelay's switch is not supported: relaykeeper has no named instances (--NAME-%s): run one relaykeeper for each", typed, rest)
			}
		}
	}
	return fmt.Errorf("unknown switch %s%s", typed, DidYouMean(typed, longSwitches()))
}
