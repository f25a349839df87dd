package smtpd

import (
	"strings"
	"testing"
)

// TestTLS25AUTHExtraArgument: AUTH takes a mechanism and at most an
// initial response (RFC 4954 section 4); a word more is a syntax error
// (501 5.5.4, as Postfix answers), not a login attempt. The relay logged
// "AUTH PLAIN <response> extra" in, ignoring the extra word.
func TestTLS25AUTHExtraArgument(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Auth = nullAuth{}; o.AllowInsecureAuth = true })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	for _, line := range []string{"AUTH PLAIN AGFAYgBj extra", "AUTH PLAIN = x", "AUTH LOGIN YQ== YQ=="} {
		if r := s.cmd(line); !strings.HasPrefix(r, "501 5.5.4 ") {
			t.Errorf("%s: %q; want 501 5.5.4", line, r)
		}
	}
	if r := s.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("NOOP: %q", r)
	}
}

// TestTLS25AUTHBeforeTLSWhereRequired: where TLS is required
// (--server-tls-required, the submission role), AUTH before STARTTLS hears
// what every other command hears, RFC 3207 section 4's "530 5.7.0 Must
// issue a STARTTLS command first", as from Postfix at
// smtpd_tls_security_level = encrypt; it heard go-smtp's "523 5.7.10 TLS
// is required". Where TLS is only offered, that 523 stays.
func TestTLS25AUTHBeforeTLSWhereRequired(t *testing.T) {
	for _, tc := range []struct {
		require bool
		want    string
	}{{true, "530 5.7.0 Must issue a STARTTLS command first"}, {false, "523 5.7.10 TLS is required"}} {
		ts := startServer(t, func(o *Options) { o.TLSConfig, o.RequireTLS, o.Auth = selfSigned(t), tc.require, nullAuth{} })
		s := rawDial(t, ts.addr)
		s.cmd("EHLO client.test")
		for _, line := range []string{"AUTH PLAIN AGFAYgBj", "AUTH LOGIN", "AUTH PLAIN !!", "AUTH FOO abc"} {
			if r := s.cmd(line); strings.TrimSpace(r) != tc.want {
				t.Errorf("require TLS %v: %s before STARTTLS: %q; want %q", tc.require, line, r, tc.want)
			}
		}
	}
}

// TestTLS25AUTHUnknownMechanismFirst: a mechanism the server does not
// offer is refused with 504 (RFC 4954 section 4) whatever its initial
// response; "AUTH FOO abc" heard 501 "cannot decode response", as if the
// mechanism had been known. A known mechanism with a response that is not
// base64 still hears 501.
func TestTLS25AUTHUnknownMechanismFirst(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Auth = nullAuth{}; o.AllowInsecureAuth = true })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	for line, want := range map[string]string{"AUTH FOO abc": "504 5.7.4 ", "AUTH XOAUTH2 !!": "504 5.7.4 ", "AUTH PLAIN abc": "501 5.5.2 "} {
		if r := s.cmd(line); !strings.HasPrefix(r, want) {
			t.Errorf("%s: %q; want %s", line, r, want)
		}
	}
}
