package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/pickup"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// submitEnv is what submit takes from the system, replaceable in tests.
type submitEnv struct {
	now      func() time.Time
	hostname func() (string, error)
	username func() string
	uid      int
}

// runSubmit is "relaykeeper submit": it spools one message read from stdin
// and returns the exit status.
func runSubmit(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return submit(args, stdin, stdout, stderr, submitEnv{
		now:      time.Now,
		hostname: os.Hostname,
		username: pickup.LoginName,
		uid:      os.Getuid(),
	})
}

func submit(args []string, stdin io.Reader, stdout, stderr io.Writer, sys submitEnv) int {
	fs := flag.NewFlagSet("relaykeeper submit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var fl pickup.Flags
	fl.Register(fs)

	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper submit: %s (see relaykeeper submit --help)\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	failure := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper submit: %s\n", fmt.Sprintf(format, a...))
		return exitFailure
	}
	pos, err := config.ParseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if fl.Help {
		io.WriteString(stdout, config.SubmitUsage)
		return exitOK
	}
	fromSet := false
	fs.Visit(func(f *flag.Flag) { fromSet = fromSet || f.Name == "f" || f.Name == "from" })
	cfg := config.Default()
	if fl.ConfigFile != "" {
		if cfg, err = config.Load(fl.ConfigFile); err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper submit", err))
			return exitUsage
		}
	}
	dir := cfg.Spool.Dir
	if fl.SpoolDir != "" {
		dir = fl.SpoolDir
	}
	host := cfg.Domain
	if host == "" {
		if host, err = sys.hostname(); err != nil || host == "" {
			host = "localhost"
		}
	}
	// An address without a domain gets myorigin's, else the host's, as
	// Postfix's sendmail gives cron's "sendmail root" $myorigin.
	req, warning, err := pickup.ParseRequest(pos, fl.From, fromSet, fl.FromHeaders, fl.Notify, fl.Ret, fl.EnvID, cfg.MailOrigin(host))
	if warning != "" {
		fmt.Fprintf(stderr, "relaykeeper submit: warning: %s\n", warning)
	}
	if err != nil {
		return usage("%s", strings.TrimPrefix(err.Error(), "pickup: "))
	}

	raw, err := fl.Input(stdin, pos)
	if err != nil {
		return failure("%v", err)
	}
	msg := pickup.Parse(raw)
	sub, err := req.Submission(msg, sys.username(), host, sys.uid, sys.now())
	if err != nil { // the input's fault (-t without recipients): 64, as Postfix's sendmail
		return usage("%s", strings.TrimPrefix(err.Error(), "pickup: "))
	}

	if sub.Canonical, err = openCanonical(&table.Set{}, &cfg, nil); err != nil {
		return usage("%v", err)
	}
	if err := spool.CheckDir(dir); err != nil {
		return failure("%v", err)
	}
	sp, err := spool.Open(dir, nil)
	if err != nil {
		return failure("%v", err)
	}
	id, err := pickup.Submit(sp, msg, sub)
	if err != nil {
		return failure("%v", strings.TrimPrefix(err.Error(), "pickup: "))
	}
	fmt.Fprintln(stdout, fl.Printed(dir, id))

	if _, err := queue.Notify(sp); err != nil && !errors.Is(err, queue.ErrNoRelay) {
		fmt.Fprintf(stderr, "relaykeeper submit: warning: relay not notified (the message goes at its next scan): %v\n", err)
	}
	return exitOK
}
