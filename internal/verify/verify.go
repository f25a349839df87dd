// Package verify asks an address verifier, E-MailRelay's
// --address-verifier, what to do with each recipient (RCPT TO and VRFY).
//
// A verifier is an external program or, with a "net:" specification, a
// daemon spoken to over a socket. Either way it answers with an exit code
// and up to two lines, which Verify turns into a Result: a valid local or
// remote recipient, a rejection (550), a temporary failure (450), or
// "drop the connection".
//
// Failure behaviour: a verifier that cannot be started, crashes, times
// out, disconnects or answers nonsense never accepts a recipient; Verify
// returns TempFail with a generic text and logs what went wrong. The zero
// Result is a TempFail too, so a forgotten result cannot accept mail.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/command"
	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/hostport"
)

// DefaultTimeout is the verifier timeout when New is given zero; it is the
// default of E-MailRelay's --filter-timeout.
const DefaultTimeout = 60 * time.Second

// Default reply texts, with their RFC 3463 enhanced status codes, used when
// the verifier gives no text of its own.
const (
	// RejectEnhancedCode and RejectText answer exit code 2 (and 4–99,
	// 101+): X.1.1, bad destination mailbox address.
	RejectEnhancedCode = "5.1.1"
	RejectText         = "recipient rejected"
	// TempFailEnhancedCode and TempFailText answer exit code 3: X.3.0,
	// other mail system status, since the cause is the verifier's.
	TempFailEnhancedCode = "4.3.0"
	TempFailText         = "recipient cannot be verified now; try again later"
	// UnavailableText answers for a verifier that failed (could not start,
	// timed out, crashed, disconnected, answered nonsense).
	UnavailableText = "address verifier unavailable; try again later"
)

// Kind is what a verifier decided about a recipient.
type Kind int

const (
	// TempFail: refuse the recipient for now, 450 (exit code 3, or a
	// verifier failure). It is the zero Kind on purpose.
	TempFail Kind = iota
	// Local: a valid local recipient (exit code 0); deliver to Mailbox.
	Local
	// Remote: a valid remote recipient (exit code 1); forward to Address.
	Remote
	// Reject: an invalid recipient, 550 (exit code 2, 4–99, 101 and above).
	Reject
	// Drop: close the client's connection at once (exit code 100).
	Drop
)

func (k Kind) String() string {
	switch k {
	case TempFail:
		return "tempfail"
	case Local:
		return "local"
	case Remote:
		return "remote"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Request is one question to the verifier; its fields are the verifier's six
// arguments, in order.
type Request struct {
	Recipient string // the RCPT TO or VRFY address as given
	Sender    string // the MAIL FROM address; empty for VRFY
	// ClientAddr is the client's ip:port.
	ClientAddr string
	// Domain is the local domain (--domain).
	Domain string
	// AuthMechanism is the client's SASL mechanism (sent lower-cased),
	// "none" for a client trusted by address, or empty.
	AuthMechanism string
	// AuthID is the authenticated identity, or for a trusted client the
	// fourth field of its "server none" secrets line.
	AuthID string
}

func (r Request) args() []string {
	return []string{r.Recipient, r.Sender, r.ClientAddr, r.Domain, strings.ToLower(r.AuthMechanism), r.AuthID}
}

// Result is the verifier's decision about one recipient.
type Result struct {
	Kind Kind
	// FullName (Local: line 1) is used in the VRFY reply.
	FullName string
	// Mailbox (Local: line 2) is the local mailbox, E-MailRelay's To-Local;
	// without line 2 it is the recipient's local part.
	Mailbox string
	// Address (Remote: line 2) is the address to forward to, possibly
	// rewritten, E-MailRelay's To-Remote; without line 2 it is the
	// recipient as given.
	Address string
	// Code, EnhancedCode and Text make the SMTP reply for Reject (550) and
	// TempFail (450). Text is line 1, or a default; if line 1 starts with an
	// enhanced status code, that code is moved to EnhancedCode (its class
	// digit corrected to match Code).
	Code         int
	EnhancedCode string
	Text         string
	// Reason is for the log only: line 2 of a Reject or TempFail, or what
	// went wrong with the verifier.
	Reason string
}

// Verifier runs an address verifier. It is safe for concurrent use.
type Verifier struct {
	// Logger receives verifier failures; nil discards them. Set it before
	// the first Verify.
	Logger *slog.Logger

	spec    string
	timeout time.Duration
	argv    []string // an executable verifier
	network string   // a net: verifier: "tcp" or "unix"
	addr    string

	mu     sync.Mutex
	idle   []*netConn // guarded by mu: open connections not in use
	closed bool       // guarded by mu
}

// New returns a Verifier for spec, which is either a program with its
// arguments (split with command.Split) or "net:HOST:PORT" (or
// "net:/path/to/socket") for a network verifier. timeout bounds each
// verification; zero means DefaultTimeout.
func New(spec string, timeout time.Duration) (*Verifier, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	v := &Verifier{spec: spec, timeout: timeout}
	if rest, ok := strings.CutPrefix(spec, "net:"); ok {
		switch {
		case strings.HasPrefix(rest, "/"):
			v.network, v.addr = "unix", rest
		default:
			if err := hostport.Check(rest); err != nil {
				return nil, fmt.Errorf("verify: bad network verifier address %q: %w", rest, err)
			}
			v.network, v.addr = "tcp", rest
		}
		return v, nil
	}
	if strings.HasPrefix(spec, "account:") {
		return nil, errors.New(`verify: the built-in "account:" verifier is not supported`)
	}
	argv, err := command.Split(spec)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if err := command.CheckExecutable(argv[0]); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v.argv = argv
	return v, nil
}

// String returns the verifier's specification.
func (v *Verifier) String() string { return v.spec }

// Verify asks the verifier about req.Recipient. It always returns a Result;
// failures of the verifier itself come back as TempFail and are logged.
func (v *Verifier) Verify(ctx context.Context, req Request) Result {
	args := req.args()
	for _, a := range args {
		// A line break would end a net: request early, and NUL cannot be
		// passed to a program; neither occurs in a valid SMTP command.
		if strings.ContainsAny(a, "\x00\r\n") {
			return Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.3", Text: "invalid character in address",
				Reason: "request has a line break or NUL"}
		}
	}
	var (
		exit  int
		lines []string
		err   error
	)
	if v.network != "" {
		exit, lines, err = v.askNet(ctx, args)
	} else {
		exit, lines, err = v.run(ctx, args)
	}
	if err != nil {
		v.log().Warn("address verifier failed", "verifier", v.spec, "recipient", req.Recipient,
			"client", req.ClientAddr, "err", err)
		return Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText, Reason: err.Error()}
	}
	return interpret(req.Recipient, exit, lines)
}

// Close closes the idle connections of a network verifier. Verify may still
// be called afterwards; it then connects for each request.
func (v *Verifier) Close() error {
	v.mu.Lock()
	idle := v.idle
	v.idle = nil
	v.closed = true
	v.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return nil
}

func (v *Verifier) log() *slog.Logger {
	if v.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return v.Logger
}

// run runs the verifier program and returns its exit code and output lines.
func (v *Verifier) run(ctx context.Context, args []string) (int, []string, error) {
	argv := append(append([]string(nil), v.argv...), args...)
	res, err := command.Run(ctx, argv, command.Options{Timeout: v.timeout})
	switch {
	case err != nil:
		return 0, nil, err
	case res.TimedOut:
		return 0, nil, fmt.Errorf("verify: %q timed out after %v", v.argv[0], v.timeout)
	case res.Signaled:
		return 0, nil, fmt.Errorf("verify: %q killed by a signal; stderr: %q", v.argv[0], res.Stderr)
	}
	return res.ExitCode, outputLines(res.Stdout), nil
}

// outputLines splits a program's output into trimmed lines, as E-MailRelay
// does (CR LF and CR count as line ends).
func outputLines(out string) []string {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = strings.ReplaceAll(out, "\r", "")
	out = strings.TrimRight(out, " \t\n")
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return lines
}

// interpret turns an exit code and output lines into a Result, following
// E-MailRelay's table: 0 local, 1 remote, 3 tempfail, 100 drop, anything
// else reject. A valid recipient needs its second line, the mailbox (0) or
// the address (1): without it the verifier did not give its answer, and
// the exit code is more likely a crash (a Python verifier's uncaught
// exception and a failing "set -e" script exit 1 with nothing on standard
// output), so it is a verifier failure, never an accept. E-MailRelay
// refuses such a recipient (550).
func interpret(recipient string, exit int, lines []string) Result {
	line := func(i int) string {
		if i < len(lines) {
			return printable(lines[i])
		}
		return ""
	}
	if (exit == 0 || exit == 1) && strings.TrimSpace(line(1)) == "" {
		return Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
			Reason: fmt.Sprintf("the verifier exited %d without its second line (%s)", exit, map[int]string{0: "the mailbox", 1: "the address"}[exit])}
	}
	switch exit {
	case 0:
		return Result{Kind: Local, FullName: line(0), Mailbox: line(1)}
	case 1:
		addr, err := remoteAddress(lines[1])
		if err != nil {
			// Forwarded, it would be a broken RCPT upstream: the
			// verifier failed.
			return Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
				Reason: clip(printable("the verifier's address " + err.Error()))}
		}
		return Result{Kind: Remote, Address: addr}
	case 3:
		return reply(TempFail, 450, TempFailEnhancedCode, TempFailText, line(0), line(1))
	case 100:
		return Result{Kind: Drop, Reason: line(0)}
	}
	return reply(Reject, 550, RejectEnhancedCode, RejectText, line(0), line(1))
}

// maxText bounds the verifier's text in a reply: an SMTP reply line is at
// most 512 octets with its codes and CRLF (RFC 5321 4.5.3.1.5).
const maxText = 400

// clip cuts s to maxText bytes, at a character boundary.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// reply builds a Reject or TempFail Result from the verifier's text.
func reply(kind Kind, code int, defEnhanced, defText, text, reason string) Result {
	r := Result{Kind: kind, Code: code, EnhancedCode: defEnhanced, Text: clip(text), Reason: clip(reason)}
	if ec, rest, ok := splitEnhancedCode(text); ok {
		// RFC 3463: the class digit must match the reply code's.
		r.EnhancedCode = strconv.Itoa(code/100) + ec[1:]
		r.Text = clip(rest)
	}
	if r.Text == "" {
		r.Text = defText
	}
	return r
}

// splitEnhancedCode splits "5.1.1 text" into "5.1.1" and "text".
func splitEnhancedCode(s string) (code, rest string, ok bool) {
	code, rest, _ = strings.Cut(s, " ")
	parts := strings.Split(code, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return "", "", false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return "", "", false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", "", false
			}
		}
	}
	return code, strings.TrimSpace(rest), true
}

// remoteAddress checks the address a verifier gives for a remote recipient
// (line 2 after exit 1), with or without angle brackets, and returns it as
// an SMTP server receives one: without the brackets, the local part
// unquoted.
func remoteAddress(s string) (string, error) {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	a, err := envelope.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if a.Quoted {
		return a.Local + "@" + a.Domain, nil
	}
	return s, nil
}
