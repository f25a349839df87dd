package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/companion"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

const postfixEnforcerUsage = `usage: relaykeeper postfix-enforcer [switches]

Follows Postfix's mail log and acts on the upstream's (Gmail's) refusals of
relayed mail, as relay-enforcer does: bans the client that submitted the
message (a "bannable" line for fail2ban), blocks the sender's domain in
sender_access, or sends the message on encapsulated, by the rules. See
docs/postfix-enforcer.md.

relay-enforcer's switches:
  -v              verbose: a dot per log line read, the time every hour
  -q              quiet: no line per action (errors are still shown)
  -t              test mode: say what would be done, change nothing
  -d              debug: every line understood and every verdict; implies -v
  -f BACKUP       the mbox that keeps a copy of every relayed message
                  (always_bcc); needed to encapsulate
  -m ADDRESS      mail ADDRESS a report of each action and unknown refusal
  -a | -n         force | forbid following amavis's re-injection
  -r              replace a running instance (stop it, then run)
  -s              stop a running instance and exit

relaykeeper's:
  --log FILE            Postfix's mail log (default /var/log/mail.log)
  --state FILE          how far the log was read, and what was done
                        (default /var/lib/relaykeeper/postfix-enforcer.state)
  --sender-access FILE  the access table to block domains in
                        (default /etc/postfix/sender_access; postmap'ed)
  --welcomelist FILE    clients never banned (default
                        /etc/relaykeeper/welcomelist; created if missing)
  --rules FILE          the rules (default: the built-in Gmail rules)
  --smtp HOST:PORT      where encapsulated copies and reports are sent
                        (default 127.0.0.1:25)
  --sender ADDRESS      their sender (default postmaster@HOSTNAME)
  --ban-log FILE        append ban lines there instead of to syslog
  --ban-delay DURATION  wait before a ban line (default 10s, as relay-enforcer)
  --upstream REGEXP     act on refusals from relays ("host[ip]:port") that
                        match, instead of on replies ending in "gsmtp"
  --srs-secret FILE     postsrsd's secret: an SRS sender is read back only if
                        it verifies
  --srs-domain DOMAIN   postsrsd's SRS_DOMAIN (default: --sender's domain)
  --once                read what the log holds now, then exit
  --from-end            with no state yet, start at the log's end
`

// runPostfixEnforcer is "relaykeeper postfix-enforcer": it parses the
// switches and wires internal/companion to the log follower. It returns the
// exit status.
func runPostfixEnforcer(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o companion.Config
	var verbose, quiet, debug, amavis, noAmavis, restart, stop bool
	var upstream string
	fs := flag.NewFlagSet("relaykeeper postfix-enforcer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, b := range []struct {
		p    *bool
		name string
	}{{&verbose, "v"}, {&quiet, "q"}, {&o.Test, "t"}, {&debug, "d"}, {&amavis, "a"}, {&noAmavis, "n"},
		{&restart, "r"}, {&stop, "s"}, {&o.Once, "once"}, {&o.FromEnd, "from-end"}} {
		fs.BoolVar(b.p, b.name, false, "")
	}
	for _, s := range []struct {
		p          *string
		name, dflt string
	}{{&o.Backup, "f", ""}, {&o.MailTo, "m", ""}, {&o.Log, "log", "/var/log/mail.log"}, {&o.State, "state", ""},
		{&o.SenderAccess, "sender-access", "/etc/postfix/sender_access"},
		{&o.Welcomelist, "welcomelist", "/etc/relaykeeper/welcomelist"}, {&o.Rules, "rules", ""},
		{&o.SMTP, "smtp", "127.0.0.1:25"}, {&o.Sender, "sender", ""}, {&o.BanLog, "ban-log", ""}, {&upstream, "upstream", ""},
		{&o.SRSSecret, "srs-secret", ""}, {&o.SRSDomain, "srs-domain", ""}} {
		fs.StringVar(s.p, s.name, s.dflt, "")
	}
	fs.DurationVar(&o.BanDelay, "ban-delay", enforce.DefaultBanDelay, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v (see relaykeeper postfix-enforcer --help)\n", err)
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, postfixEnforcerUsage)
		return exitOK
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if amavis && noAmavis {
		problems = append(problems, "-a and -n exclude each other")
	}
	if quiet && (verbose || debug) {
		problems = append(problems, "-q excludes -v and -d")
	}
	if o.BanDelay < 0 {
		problems = append(problems, "--ban-delay must not be negative")
	}
	if upstream != "" {
		re, err := regexp.Compile(upstream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--upstream: %v", err))
		}
		o.Upstream = re
	}
	if _, _, err := net.SplitHostPort(o.SMTP); err != nil {
		problems = append(problems, fmt.Sprintf("--smtp %q: %v", o.SMTP, err))
	}
	if _, err := mail.ParseAddress(o.MailTo); o.MailTo != "" && err != nil {
		problems = append(problems, fmt.Sprintf("-m %q: %v", o.MailTo, err))
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %s\n", p)
	}
	if len(problems) > 0 {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v\n", err)
		return exitFailure
	}
	o.Reinjection = map[bool]postfixlog.Reinjection{true: postfixlog.ReinjectAlways}[amavis]
	if noAmavis {
		o.Reinjection = postfixlog.ReinjectNever
	}
	if o.Host, _ = os.Hostname(); o.Host == "" {
		o.Host = "localhost"
	}
	if o.Sender == "" {
		o.Sender = "postmaster@" + o.Host
	}
	if o.State == "" {
		o.State = defaultStatePath(o.Log)
	}
	if stop || restart {
		if err := companion.StopOther(o.State+".pid", stderr); err != nil {
			return fail(err)
		}
		if stop {
			return exitOK
		}
	}
	// The lock is taken first and released last, after the pending ban
	// lines are written: -r and -s wait for it.
	if !o.Test {
		unlock, err := companion.LockInstance(o.State + ".pid")
		if err != nil {
			return fail(err)
		}
		defer unlock()
	}
	prog := &companion.Progress{Now: time.Now}
	if verbose || debug {
		prog.W = stdout
	}
	level := map[bool]slog.Level{true: slog.LevelDebug, false: slog.LevelInfo}[debug]
	if quiet {
		level = slog.LevelWarn
	}
	diag := slog.New(slog.NewTextHandler(&companion.LineBreaker{P: prog, W: stderr}, &slog.HandlerOptions{Level: level}))
	actions := map[bool]io.Writer{false: &companion.LineBreaker{P: prog, W: stdout}, true: io.Discard}[quiet]
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	if err := companion.Run(ctx, o, actions, stderr, prog, diag); err != nil {
		return fail(err)
	}
	return exitOK
}

// defaultStatePath is /var/lib/relaykeeper/postfix-enforcer.state, or, if
// that directory cannot be made, a hidden file next to the log.
func defaultStatePath(logPath string) string {
	const dir = "/var/lib/relaykeeper"
	if err := os.MkdirAll(dir, 0o750); err == nil {
		return filepath.Join(dir, "postfix-enforcer.state")
	}
	return filepath.Join(filepath.Dir(logPath), ".postfix-enforcer.state")
}
