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
