package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/logfile"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/sendmail"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// sendmail's exit statuses (sysexits.h), which its callers know.
const (
	exUsage    = 64
	exTempFail = 75
)

// defaultConfigFile is read by the sendmail names when -C does not name
// another and it exists, since sendmail's callers cannot pass --config.
const defaultConfigFile = "/etc/relaykeeper/relaykeeper.toml"

// runSendmail is relaykeeper invoked as sendmail, mailq or newaliases.
func runSendmail(argv0 string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	inv, err := sendmail.Parse(argv0, args)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exUsage
	}
	var common []string
	cfgFile := inv.ConfigFile
	if cfgFile == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			cfgFile = defaultConfigFile
		}
	}
	if cfgFile != "" {
		common = []string{"--config", cfgFile}
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
		return serveStdio(cfgFile, stdin, stdout, stderr)
	}

	msg, err := inv.Message(stdin)
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
// stored in the spool as the relay's listener would store it, for a local
// user (the session comes from 127.0.0.1).
func serveStdio(cfgFile string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := config.Default()
	if cfgFile != "" {
		var err error
		if cfg, err = config.Load(cfgFile); err != nil {
			fmt.Fprintf(stderr, "sendmail: %v\n", err)
			return exUsage
		}
	}
	if cfg.Domain == "" {
		cfg.Domain, _ = os.Hostname()
	}
	sp, err := spool.Open(cfg.Spool.Dir, nil)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: spool: %v\n", err)
		return exTempFail
	}
	mailOut := io.Discard
	if cfg.Log.MailLog != "" {
		f, err := logfile.Open(cfg.Log.MailLog)
		if err == nil {
			defer f.Close()
			mailOut = f
		}
	}
	srv := smtpd.New(smtpd.Options{
		Domain:             cfg.Domain,
		MaxMessageSize:     cfg.SMTP.MaxMessageSize,
		MaxRecipients:      cfg.SMTP.MaxRecipients,
		IdleTimeout:        cfg.SMTP.IdleTimeout,
		TransactionTimeout: cfg.SMTP.TransactionTimeout,
		Spool:              sp,
		Log:                slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MailLog:            maillog.New(mailOut),
	})
	l := sendmail.NewStdioListener(stdin, stdout)
	if err := srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exTempFail
	}
	if _, err := queue.Notify(sp); err != nil && !errors.Is(err, queue.ErrNoRelay) {
		fmt.Fprintf(stderr, "sendmail: warning: relay not notified (the message goes at its next scan): %v\n", err)
	}
	return exitOK
}
