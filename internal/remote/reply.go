// Package remote is relaykeeper's outbound SMTP client: it connects to a
// smarthost or MX, says EHLO, STARTTLS and AUTH as configured, and carries
// messages with PIPELINING (RFC 2920) where the server offers it, reporting
// a reply per recipient.
//
// It is not built on go-smtp's client because that client neither pipelines
// nor exposes its connection, and because the proxy and the enforcer need
// every upstream reply exactly as it was sent, line by line.
package remote

import (
	"fmt"
	"strconv"
	"strings"
)

// Reply is one SMTP reply as the server sent it.
type Reply struct {
	Code int
	// Enhanced is the RFC 3463 status code of the first line ("5.7.1"),
	// or empty if the server sent none.
	Enhanced string
	// Lines are the texts after the code and separator, one per line, each
	// with its enhanced code (if any) still in front.
	Lines []string
}

// Temporary reports a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx reply.
func (r Reply) Permanent() bool { return r.Code >= 500 }

// OK reports a 2xx or 3xx reply.
func (r Reply) OK() bool { return r.Code >= 200 && r.Code < 400 }

// String is the reply on one line, as Postfix logs it: every line keeps its
// "550-5.7.1" prefix, joined by spaces, so that a rule can see where lines
// were broken.
func (r Reply) String() string {
	if r.Code == 0 {
		return strings.Join(r.Lines, " ")
	}
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteByte(' ')
		}
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%03d%s%s", r.Code, sep, l)
	}
	if len(r.Lines) == 0 {
		fmt.Fprintf(&b, "%03d", r.Code)
	}
	return b.String()
}

// Text is the reply's text without codes, lines joined by spaces.
func (r Reply) Text() string {
	var parts []string
	for _, l := range r.Lines {
		if r.Enhanced != "" {
			l = strings.TrimSpace(strings.TrimPrefix(l, r.Enhanced))
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

// parseEnhanced returns the RFC 3463 code at the start of s, if any.
func parseEnhanced(s string) string {
	f, _, _ := strings.Cut(s, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 || len(p) > 3 {
			return ""
		}
	}
	return f
}

// Error is a failure to talk to the server at all, or a reply that ended the
// attempt. Temporary tells a caller whether to try again later.
type Error struct {
	// Stage is what was being done: "connect", "greeting", "ehlo",
	// "starttls", "auth", "mail", "rcpt", "data", "end of data".
	Stage string
	// Reply is the server's reply, if it gave one.
	Reply Reply
	Err   error
	// Perm marks a permanent failure; everything else is temporary.
	Perm bool
}

func (e *Error) Error() string {
	if e.Reply.Code != 0 {
		return fmt.Sprintf("remote: %s: %s", e.Stage, e.Reply)
	}
	return fmt.Sprintf("remote: %s: %v", e.Stage, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool { return !e.Perm }

// AsReply turns the error into the reply a client should hear: the
// server's own reply if there was one, else a local 4xx.
func (e *Error) AsReply() Reply {
	if e.Reply.Code != 0 && !e.Perm && e.Reply.Permanent() {
		// A permanent reply that must not fail the message (the
		// upstream refused our login): say so with a temporary code.
		return Reply{Code: 454, Enhanced: "4.7.0", Lines: []string{"4.7.0 upstream " + e.Stage + " failed: " + e.Reply.String()}}
	}
	if e.Reply.Code != 0 {
		return e.Reply
	}
	return Reply{Code: 451, Enhanced: "4.4.1", Lines: []string{"4.4.1 upstream " + e.Stage + " failed: " + shortErr(e.Err)}}
}

func shortErr(err error) string {
	if err == nil {
		return "no reply"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial tcp") {
		s = s[i+2:]
	}
	return s
}
