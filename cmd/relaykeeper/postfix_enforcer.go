package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/companion"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// runPostfixEnforcer is "relaykeeper postfix-enforcer": it parses the
// switches and wires internal/companion to the log follower. It returns the
// exit status.
func runPostfixEnforcer(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := companion.Config{NeverBlock: config.DefaultNeverBlock}
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
		{&o.Welcomelist, "welcomelist", ""}, {&o.Rules, "rules", ""},
		{&o.SMTP, "smtp", "127.0.0.1:25"}, {&o.Sender, "sender", ""}, {&o.BanLog, "ban-log", ""}, {&upstream, "upstream", ""}, {&o.FilterUsers, "filter-user", ""},
		{&o.SRSSecret, "srs-secret", ""}, {&o.SRSDomain, "srs-domain", ""}, {new(string), "w", ""}} { // -w: the help's width
		fs.StringVar(s.p, s.name, s.dflt, "")
	}
	fs.Func("trusted-upstream", "", func(v string) error {
		if strings.TrimSpace(v) == "" {
			return errors.New("empty host")
		}
		o.TrustedUpstreams = append(o.TrustedUpstreams, v)
		return nil
	})
	config.DurationVar(fs, &o.BanDelay, "ban-delay", enforce.DefaultBanDelay)
	fs.IntVar(&o.BanWidth.IPv4, "ban-ipv4-prefix-length", enforce.DefaultBanIPv4Prefix, "")
	fs.IntVar(&o.BanWidth.IPv6, "ban-ipv6-prefix-length", enforce.DefaultBanIPv6Prefix, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	args, err := config.LetterSets(fs, args) // getopts: -rv
	if err == nil {
		err = config.FlagErrorIn(fs, fs.Parse(args))
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %v (see relaykeeper postfix-enforcer --help)\n", err)
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, config.PostfixEnforcerUsage)
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
	if upstream != "" {
		re, err := regexp.Compile(upstream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--upstream: %v", err))
		}
		o.Upstream = re
	}
	problems = append(problems, o.Problems()...)
	for _, p := range problems {
		fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: %s\n", p)
	}
	if len(problems) > 0 {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper postfix-enforcer", err))
		return exitFailure
	}
	o.Reinjection = map[bool]postfixlog.Reinjection{true: postfixlog.ReinjectAlways}[amavis]
	if noAmavis {
		o.Reinjection = postfixlog.ReinjectNever
	}
	o.FillDefaults()
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
