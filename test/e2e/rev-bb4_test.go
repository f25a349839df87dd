package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestRevBB4ErrorsForgivenAfterMessage: as in Postfix's smtpd, a message
// accepted with 250 forgives the session's errors and junk commands
// (state->error_count and state->junk_cmds go back to 0). A client that
// says RSET and NOOP before each message on one connection (PHPMailer's
// SMTPKeepAlive, bulk senders) used to hear 421 "too many errors" at its
// 60th message, and one with a refused recipient in each message at its
// 20th. Errors that no accepted message follows still end the session.
func TestRevBB4ErrorsForgivenAfterMessage(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `[policy]
mynetworks = ["127.0.0.9/32"]
relay_domains = ["example.net"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct {
		name    string
		n       int
		before  []string // commands, with their reply, before each message
		lastErr bool     // no message is sent: the session must end with 421
	}{
		{"RSET and NOOP before each", 70, []string{"250 RSET", "250 NOOP"}, false},
		{"a refused recipient in each", 30, []string{"250 MAIL FROM:<a@example.org>", "554 RCPT TO:<v@evil.test>", "250 RSET"}, false},
		{"refused recipients, no message", 21, []string{"250 MAIL FROM:<a@example.org>", "554 RCPT TO:<v@evil.test>", "250 RSET"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, r.addr(), "127.0.0.2")
			defer c.Close()
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			for i := range tc.n {
				for _, step := range tc.before {
					want, cmd := step[:3], step[4:]
					rep, err := c.cmd("%s", cmd)
					if tc.lastErr && rep.code() == 421 {
						return
					}
					if err != nil || !strings.HasPrefix(rep.String(), want) {
						t.Fatalf("message %d: %s: %q, %v; want %s", i+1, cmd, rep, err, want)
					}
				}
				if tc.lastErr {
					continue
				}
				if _, err := c.send("a@example.org", []string{fmt.Sprintf("u%d@example.net", i)}, "Subject: keep-alive\n\nbody\n"); err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
			}
			if tc.lastErr {
				t.Fatalf("%d refused recipients and no message: the session goes on; want 421", tc.n)
			}
		})
	}
}
