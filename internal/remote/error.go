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
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// Error is a failure to talk to the server at all, or a reply that ended the
// attempt. Temporary tells a caller whether to try again later.
type Error struct {
	// Stage is what was being done: "connect", "greeting", "ehlo",
	// "starttls", "auth", "mail", "rcpt", "data", "end of data".
	Stage string
	// Reply is the server's reply, if it gave one.
	Reply reply.Reply
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

// CredentialsError is a failure to obtain the relay's own credentials for
// its login before saying AUTH: an OAuth 2 token endpoint that refuses the
// refresh token or cannot be reached. No server refused anything; the
// relay's set-up is at fault, as when a smarthost refuses its login, so
// the mail waits and the administrator is alerted.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// OwnCredentials reports whether err is, or wraps, a CredentialsError.
func OwnCredentials(err error) bool {
	var ce *CredentialsError
	return errors.As(err, &ce)
}

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool { return !e.Perm }

// AsReply turns the error into the reply a client should hear: the
// server's own reply if there was one, else a local 4xx (Local).
func (e *Error) AsReply() reply.Reply {
	if e.Reply.Code != 0 && !e.Perm && e.Reply.Permanent() {
		// A permanent reply that must not fail the message (the
		// upstream refused our login): say so with a temporary code.
		return reply.Reply{Code: 454, Enhanced: "4.7.0", Lines: []string{"4.7.0 upstream " + e.Stage + " failed: " + e.Reply.String()}}
	}
	if e.Reply.Code != 0 {
		return e.Reply
	}
	return reply.Reply{Code: 451, Enhanced: "4.4.1", Lines: []string{"4.4.1 upstream " + e.Stage + " failed: " + e.shortErr()},
		Local: true} // no server said it
}

// shortErr is the cause of a failure without Go's wrapping. A system
// error is in strerror's words and a connect timeout is "Connection timed
// out", as Postfix logs them, so that what administrators grep mailq's
// output for ("Connection refused") finds the same messages here.
func (e *Error) shortErr() string {
	err := e.Err
	if err == nil {
		return "no reply"
	}
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &errno) && errno.Error() != "":
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	case e.Stage == "connect" && errors.As(err, &ne) && ne.Timeout():
		return "Connection timed out"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial tcp") {
		s = s[i+2:]
	}
	return s
}
