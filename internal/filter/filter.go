// Package filter runs content filters on spooled messages: external programs
// and the built-in filters of E-MailRelay's --filter and --client-filter.
//
// A filter sees a message as two files in the spool, its content and its
// envelope, and may edit either in place (docs/spool.md). It answers with a
// Result, a decision value that the SMTP edge (server side) or the forwarder
// (client side) turns into a reply or a change of state; a filter never
// answers with a Go error.
//
// # Failure behaviour
//
// A filter that cannot give an answer (a program that cannot start, is
// killed by a signal or runs past its timeout; a filter daemon that cannot be
// reached, hangs or answers garbage) gives TempFail, never OK and never
// Reject: on the server side the client hears a 4xx reply and keeps the
// message, on the client side the message stays queued. A message is lost
// to a filter only when the filter said so (Reject, Abandon).
//
// Built-in filters that rewrite the content (msgid:, spam-edit:, pipe:)
// write a temporary file beside it, fsync it, rename it over the content
// file and fsync the directory, so a crash leaves either the old content or
// the new one. The rename gives the content file a new inode: a caller that
// holds a lock on the content file (internal/spool does) must take it again
// on the new file after a filter ran, as it must after any external filter
// that replaces the file (E-MailRelay's own example does "mv $1.tmp $1").
//
// Filters are safe for concurrent use by several messages at once.
package filter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is how long a filter may take when Parse is given no
// timeout; it is E-MailRelay's --filter-timeout default.
const DefaultTimeout = 60 * time.Second

// Side says where a filter runs.
type Side int

const (
	// Server filters (--filter) run after a message has been stored and
	// before the reply to DATA, so that a rejection reaches the client.
	Server Side = iota
	// Client filters (--client-filter) run just before a message is
	// forwarded.
	Client
)

func (s Side) String() string {
	switch s {
	case Server:
		return "server"
	case Client:
		return "client"
	}
	return "Side(" + strconv.Itoa(int(s)) + ")"
}

// Outcome is what a filter decided.
type Outcome int

const (
	// OK lets the message go on.
	OK Outcome = iota
	// Reject refuses the message for good. Server side: the client hears
	// Code, Enhanced and Text (always 5xx) and the message is discarded.
	// Client side: the message fails (E-MailRelay's .bad).
	Reject
	// Abandon drops the message quietly. Server side: the client hears 250
	// but the message is not kept (a filter that abandons usually moved or
	// deleted the files itself). Client side: this message is skipped and
	// left where it is.
	Abandon
	// TempFail is a 4xx: the filter failed (crashed, hung, answered
	// garbage) or asked for a temporary refusal. The message is never lost:
	// server side the client hears Code (451 unless the filter gave another
	// 4xx) and keeps the message; client side the message stays queued.
	TempFail
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Reject:
		return "reject"
	case Abandon:
		return "abandon"
	case TempFail:
		return "tempfail"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result is a filter's answer.
type Result struct {
	Outcome Outcome
	// Code, Enhanced and Text are the SMTP reply for Reject (5xx) and
	// TempFail (4xx); Text is printable ASCII on one line, without the
	// codes. They are empty for OK and Abandon.
	Code     int
	Enhanced string
	Text     string
	// Reason is for the logs and the envelope's X-MailRelay-Reason line;
	// it may say more than Text, which the client sees.
	Reason string
	// Rescan asks for a rescan of the spool: forward now (E-MailRelay's
	// exit codes 102 to 104 on the server side).
	Rescan bool
	// StopScanning asks the forwarder to end this forwarding run after
	// this message (exit codes 102, 104 and 105 on the client side).
	StopScanning bool
	// Hold asks for the message to be accepted but kept held until an
	// administrator releases it (a milter's quarantine).
	Hold bool
}

// String formats r for logs: "reject 550 5.7.1 rejected (reason)".
func (r Result) String() string {
	var b strings.Builder
	b.WriteString(r.Outcome.String())
	if r.Code != 0 {
		fmt.Fprintf(&b, " %d", r.Code)
	}
	if r.Enhanced != "" {
		b.WriteString(" " + r.Enhanced)
	}
	if r.Text != "" {
		b.WriteString(" " + r.Text)
	}
	if r.Reason != "" && r.Reason != r.Text {
		b.WriteString(" (" + r.Reason + ")")
	}
	if r.Rescan {
		b.WriteString(" +rescan")
	}
	if r.StopScanning {
		b.WriteString(" +stop")
	}
	return b.String()
}

// Filter is one filter, or a chain of them.
type Filter interface {
	// Run filters the message whose files are contentPath and
	// envelopePath. It returns when the filter has finished, its timeout
	// has passed, or ctx has ended (which gives TempFail).
	Run(ctx context.Context, contentPath, envelopePath string) Result
	// String is the filter's specification, for logs.
	String() string
}

// Parse makes a filter from a specification as given to --filter or
// --client-filter:
//
//	/usr/local/bin/addsig                 a program (split like E-MailRelay,
//	"/usr/bin/spamassassin --exit-code"   no shell), run with the content and
//	file:PROGRAM                          envelope paths as arguments
//	exit:N                                as if a program exited with N
//	msgid:[DOMAIN]                        add a Message-ID header if missing
//	spam:HOST:PORT                        ask spamd; reject spam
//	spam-edit:HOST:PORT                   let spamd rewrite the message
//	net:HOST:PORT                         E-MailRelay's network filter protocol
//	pipe:PROGRAM                          Postfix simple content filter
//
// A network address may also be the path of a unix socket. timeout bounds a
// program's run or a network exchange; zero means DefaultTimeout.
func Parse(spec string, side Side, timeout time.Duration) (Filter, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if side != Server && side != Client {
		return nil, fmt.Errorf("filter: bad side %d", side)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("filter: empty filter specification")
	}
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok || strings.ContainsAny(kind, "/\\ \t") {
		kind, arg = "file", spec
	}
	switch kind {
	case "file":
		return newProgram(spec, arg, side, timeout)
	case "exit":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 || n > 255 {
			return nil, fmt.Errorf("filter: %q: exit code must be 0 to 255", spec)
		}
		return &exitFilter{spec: spec, side: side, code: n}, nil
	case "msgid":
		return newMsgID(spec, arg)
	case "spam", "spam-edit":
		return newSpamd(spec, arg, kind == "spam-edit", timeout)
	case "net":
		return newNet(spec, arg, timeout)
	case "pipe":
		return newPipe(spec, arg, timeout)
	case "copy":
		return newCopy(spec, arg)
	case "deliver", "split", "mx":
		return nil, fmt.Errorf("filter: %q: the %s: filter is not supported (routing does split and mx)", spec, kind)
	}
	// Not a known prefix: a program whose name happens to contain a colon.
	return newProgram(spec, spec, side, timeout)
}

// ParseChain parses a chain of filter specifications: --filter given
// several times, each one a single specification or, as E-MailRelay's
// FilterFactory reads it, a comma-separated list of them
// ("--filter=msgid:,/usr/local/bin/addsig"); nil for none.
func ParseChain(specs []string, side Side, timeout time.Duration) (Filter, error) {
	var fs []Filter
	for _, list := range specs {
		pieces := splitChain(list)
		if len(pieces) == 0 {
			pieces = []string{list} // Parse says why it is empty
		}
		for _, sp := range pieces {
			f, err := Parse(sp, side, timeout)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
	}
	return Join(fs...), nil
}

// splitChain cuts a --filter value at its commas, as E-MailRelay does,
// except inside double quotes (a program's quoted word) and after a
// backslash; empty pieces are dropped. A piece that is only copy: options
// stays with the copy: before it, so that copy:nodelete,hardlink (the form
// relaykeeper documented before it read chains) is still one filter; and a
// pipe: (relaykeeper's own, whose words are Postfix-style arguments that
// may hold commas) takes the rest of the value.
func splitChain(list string) []string {
	var pieces []string
	add := func(p string) {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case len(pieces) > 0 && isCopySpec(pieces[len(pieces)-1]) && copyOptions(p):
			pieces[len(pieces)-1] += "," + p
		default:
			pieces = append(pieces, p)
		}
	}
	start, quoted := 0, false
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			piece := strings.TrimSpace(list[start:i])
			if !quoted && !strings.HasPrefix(piece, "pipe:") && !(hasArguments(piece) && !startsFilter(list[i+1:])) {
				add(list[start:i])
				start = i + 1
			}
		}
	}
	add(list[start:])
	return pieces
}

// hasArguments says whether piece is a program given with arguments,
// whose words may hold commas of their own (spamc -d host1,host2).
func hasArguments(piece string) bool {
	kind, _, ok := strings.Cut(piece, ":")
	return strings.ContainsAny(piece, " \t") && (!ok || strings.ContainsAny(kind, "/\\ \t") || kind == "file")
}

// startsFilter says whether rest, the text after a comma, begins a filter
// specification of its own: one of the schemes, or a program's path.
func startsFilter(rest string) bool {
	rest = strings.TrimSpace(rest)
	kind, _, ok := strings.Cut(rest, ":")
	switch {
	case rest == "" || strings.ContainsAny(rest[:1], "/\\.\"~"):
		return true
	case len(kind) == 1 && ok && len(rest) > 2 && (rest[2] == '\\' || rest[2] == '/'):
		return true // a Windows drive letter
	case ok && !strings.ContainsAny(kind, "/\\ \t="):
		return slices.Contains([]string{"file", "exit", "msgid", "spam", "spam-edit", "net", "pipe", "copy", "deliver", "split", "mx"}, kind)
	}
	return false
}

// Join runs the filters that are not nil in order: nil for none, the one
// itself for one, else their Chain.
func Join(filters ...Filter) Filter {
	var fs []Filter
	for _, f := range filters {
		if f != nil {
			fs = append(fs, f)
		}
	}
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return Chain(fs...)
}

// MayStop reports whether f may end a forwarding run (exit 102, 104 or
// 105 of a client filter): a filter that never does (a signer) says so
// with a NeverStops method, and the scheduler then need not start a run
// with one message to find out.
func MayStop(f Filter) bool {
	switch f := f.(type) {
	case nil:
		return false
	case interface{ NeverStops() }:
		return false
	case *chain:
		for _, g := range f.filters {
			if MayStop(g) {
				return true
			}
		}
		return false
	}
	return true
}

// Chain runs filters in order and stops at the first result that is not OK,
// which it returns. Rescan and StopScanning accumulate over the filters that
// ran. A chain of no filters passes everything.
func Chain(filters ...Filter) Filter {
	return &chain{filters: filters}
}

type chain struct {
	filters []Filter
}

func (c *chain) Run(ctx context.Context, contentPath, envelopePath string) Result {
	var rescan, stop, hold bool
	var reason string
	for _, f := range c.filters {
		r := f.Run(ctx, contentPath, envelopePath)
		rescan = rescan || r.Rescan
		stop = stop || r.StopScanning
		if r.Hold {
			hold, reason = true, r.Reason
		}
		if r.Outcome != OK {
			r.Rescan, r.StopScanning, r.Hold = rescan, stop, hold
			return r
		}
	}
	return Result{Outcome: OK, Rescan: rescan, StopScanning: stop, Hold: hold, Reason: reason}
}

func (c *chain) String() string {
	s := make([]string, len(c.filters))
	for i, f := range c.filters {
		s[i] = f.String()
	}
	return strings.Join(s, ", ")
}

// Close closes the filters in the chain that hold resources (the idle
// connections of net: filters).
func (c *chain) Close() error {
	var errs []error
	for _, f := range c.filters {
		if cl, ok := f.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}

// Proxied adapts a client filter (Side Client) to proxy mode, where a
// message goes upstream during its own SMTP session and there is no queue to
// leave it in: it runs with the server's filters, an abandon ("not now") is
// a temporary refusal the sending client hears, and a request to stop the
// forwarding run means nothing. Proxied(nil) is nil.
func Proxied(f Filter) Filter {
	if f == nil {
		return nil
	}
	return proxied{f}
}

type proxied struct{ Filter }

func (p proxied) Run(ctx context.Context, contentPath, envelopePath string) Result {
	r := p.Filter.Run(ctx, contentPath, envelopePath)
	r.StopScanning = false
	if r.Outcome == Abandon {
		return Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "message not forwarded now, try again later",
			Reason: "client filter abandoned the message"}
	}
	return r
}

// Results that several filters give.

func okResult() Result { return Result{Outcome: OK} }

// tempFail is a filter failure: the client sees a generic text, the logs
// the reason.
func tempFail(format string, args ...any) Result {
	return Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0",
		Text: "filter failed, try again later", Reason: oneLine(fmt.Sprintf(format, args...))}
}

// BrokenEnvelope is the result for a filter that passed a message but left
// an envelope that does not parse (err): a filter failure, on either side,
// so that nothing that cannot be forwarded is accepted or sent.
func BrokenEnvelope(err error) Result {
	return tempFail("the filter left an envelope that does not parse: %v", err)
}

// EmptyContent is the result for a filter that passed a message but left
// its content file empty: a filter failure, since an empty content file
// is never sent (a torn message to the spool).
func EmptyContent() Result {
	return tempFail("the filter left the content file empty")
}
