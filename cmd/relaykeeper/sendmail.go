package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/sendmail"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
)

// sendmail's exit statuses (sysexits.h), which its callers know.
const (
	exUsage    = 64
	exTempFail = 75
)

// runSendmail is relaykeeper invoked as sendmail, mailq or newaliases.
func runSendmail(argv0 string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	inv, err := sendmail.Parse(argv0, args)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exUsage
	}
	var common []string
	origin := "" // what -F's From field gives an address without a domain
	if cfgFile := inv.Config(); cfgFile != "" {
		common = []string{"--config", cfgFile}
		if cfg, err := config.Load(cfgFile); err == nil { // else submit says why
			origin = cfg.MailOrigin("")
		}
	}
	switch inv.Mode {
	case sendmail.ListQueue:
		return runQueue(append([]string{"list"}, common...), stdin, stdout, stderr)
	case sendmail.RunQueue:
		return runQueue(append([]string{"flush"}, common...), stdin, io.Discard, stderr)
	case sendmail.Newaliases:
		fmt.Fprintln(stderr, "newaliases: relaykeeper has no aliases database; nothing to do")
		return exitOK
	case sendmail.SMTP:
		return serveStdio(common, stdin, stdout, stderr)
	case sendmail.HandBack:
		return sendmail.HandBackMessage(stdin, stdout, stderr)
	}

	msg, err := inv.Message(stdin, origin)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: reading the message: %v\n", err)
		return exTempFail
	}
	// sendmail prints nothing when all is well: cron mails what it prints.
	switch runSubmit(append(common, inv.SubmitArgs()...), msg, io.Discard, stderr) {
	case exitOK:
		return exitOK
	case exitUsage:
		return exUsage
	}
	return exTempFail
}

// serveStdio is -bs: one SMTP session on the standard input and output,
// through the relay's own SMTP server with its policy, checks and filters,
// for a local user (the session comes from 127.0.0.1). Without a log file
// configured, the relay's logs are dropped: the session's replies say
// what happened.
func serveStdio(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cl, err := config.ParseSwitches(args)
	if err == nil {
		var cfg config.Config
		if cfg, err = cl.Config(); err == nil {
			var logs io.Writer = io.Discard
			if cfg.Log.File != "" || cfg.Log.MailLog != "" {
				logs = stderr
			}
			var r *relay
			if r, err = newRelay(cfg, stdout, logs); err == nil {
				defer r.close()
				return r.serveStdio(stdin, stdout, stderr)
			}
		}
	}
	fmt.Fprintf(stderr, "sendmail: %v\n", err)
	return exUsage
}

func (r *relay) serveStdio(stdin io.Reader, stdout, stderr io.Writer) int {
	opts := r.smtpOptions(context.Background())
	opts.TLSConfig = nil // no TLS over a pipe
	if err := smtpd.New(opts).Serve(sendmail.NewStdioListener(stdin, stdout)); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exTempFail
	}
	if _, err := queue.Notify(r.spool); err != nil && !errors.Is(err, queue.ErrNoRelay) {
		fmt.Fprintf(stderr, "sendmail: warning: relay not notified (the message goes at its next scan): %v\n", err)
	}
	return exitOK
}
