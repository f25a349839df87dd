package harness

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// SourceOptions configure one run of smtp-source(1).
type SourceOptions struct {
	// Addr is the server, as "127.0.0.1:PORT". Required.
	Addr string
	// Messages is the number of messages to send (-m); default 1.
	Messages int
	// Sessions is the number of parallel sessions (-s); default 1.
	Sessions int
	// Size is the message payload in bytes, headers excluded (-l).
	Size int
	// Recipients is the number of recipients per message (-r); smtp-source
	// makes them distinct by prepending a number to To.
	Recipients int
	// From and To are the envelope sender and recipient (-f, -t).
	From, To string
	// Helo is the HELO name and the domain of the default addresses (-M);
	// default "localhost", so that nothing depends on the machine's name.
	Helo string
	// Subject adds a Subject header (-S).
	Subject string
	// File sends this pre-formatted message instead (-F).
	File string
	// Reuse sends all of a session's messages over one connection (-d).
	Reuse bool
	// KeepGoing goes on after an unexpected reply instead of aborting (-A).
	KeepGoing bool
	// Timeout bounds the whole run; default 30s.
	Timeout time.Duration
	// Args are added to the command line as they are.
	Args []string
}

// Source runs smtp-source and returns its combined output when it finishes.
// The error is non-nil if it failed or did not finish within the timeout.
// The test is skipped if smtp-source is not installed.
func Source(t testing.TB, opts SourceOptions) (output string, err error) {
	t.Helper()
	bin := need(t, "smtp-source")
	if opts.Addr == "" {
		t.Fatalf("harness: Source: no Addr")
	}
	helo := opts.Helo
	if helo == "" {
		helo = "localhost"
	}
	args := []string{"-4", "-M", helo}
	num := func(f string, n int) {
		if n > 0 {
			args = append(args, f, strconv.Itoa(n))
		}
	}
	str := func(f, v string) {
		if v != "" {
			args = append(args, f, v)
		}
	}
	num("-m", opts.Messages)
	num("-s", opts.Sessions)
	num("-l", opts.Size)
	num("-r", opts.Recipients)
	str("-f", opts.From)
	str("-t", opts.To)
	str("-S", opts.Subject)
	str("-F", opts.File)
	if opts.Reuse {
		args = append(args, "-d")
	}
	if opts.KeepGoing {
		args = append(args, "-A")
	}
	args = append(args, opts.Args...)
	args = append(args, "inet:"+opts.Addr)
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	out, _, err := runTimeout(timeout, nil, bin, args...)
	if err != nil {
		return out, fmt.Errorf("harness: smtp-source %v: %w", args, err)
	}
	return out, nil
}

// Swaks runs swaks(1) with args, bounded by 30 seconds, and returns its
// combined output and exit code (-1 if it did not exit by itself: killed by
// a signal, or by the timeout). The test is
// skipped if swaks is not installed. For example:
//
//	out, code := harness.Swaks(t, "--server", addr, "--from", "a@example.org", "--to", "b@example.net")
func Swaks(t testing.TB, args ...string) (output string, exitCode int) {
	t.Helper()
	bin := need(t, "swaks")
	out, code, err := runTimeout(30*time.Second, nil, bin, args...)
	if errors.Is(err, errTimeout) {
		t.Logf("harness: swaks: %v", err)
	}
	return out, code
}
