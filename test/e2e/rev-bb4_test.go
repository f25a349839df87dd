package e2e

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
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

// TestRevBB4OvershootPerTransaction: recipients past max_recipients (452
// 4.5.3) are free up to 1,000 in each transaction, as Postfix's
// smtpd_recipient_overshoot_limit is (rcpt_reset clears it with the
// transaction). Counted over the session, a client that sends several
// messages of 1,400 recipients on one connection (400 of them refused
// each time, and sent again in another transaction) heard 421 "too many
// errors" in its third message.
func TestRevBB4OvershootPerTransaction(t *testing.T) {
	t.Parallel()
	c := storeOnlySession(t)
	const n = 1400
	for m := range 4 {
		var b strings.Builder
		b.WriteString("MAIL FROM:<a@example.org>\r\n")
		for i := range n {
			fmt.Fprintf(&b, "RCPT TO:<u%d@example.net>\r\n", i)
		}
		errc := make(chan error, 1)
		go func() { _, err := io.WriteString(c.conn, b.String()); errc <- err }()
		for i := range n + 1 {
			want := "250 "
			if i > 1000 {
				want = "452 4.5.3 "
			}
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), want) {
				t.Fatalf("message %d, reply %d: %q, %v; want %q", m+1, i+1, rep, err, want)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: many\r\n\r\nbody\r\n.")
	}
}

// TestRevBB4TLSCloseNotify: after its 221 to QUIT under TLS the relay ends
// the TLS connection with a close_notify alert, as Postfix does, so that the
// client can tell the end from a truncation. It used to close the TCP
// connection under TLS: `openssl s_client -starttls smtp` printed
// "unexpected eof while reading" after every session.
func TestRevBB4TLSCloseNotify(t *testing.T) {
	t.Parallel()
	openssl := harness.Need(t, "openssl")
	_, _, pem := certFiles(t, t.TempDir())
	r := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", pem,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-starttls", "smtp", "-connect", r.addr(), "-quiet", "-ign_eof")
	cmd.Stdin = strings.NewReader("EHLO client.e2e.test\r\nQUIT\r\n")
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "221 ") {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "unexpected eof") {
		t.Errorf("the relay closed the TLS connection without a close_notify:\n%s", out)
	}
}

// TestRevBB4SMTPUTF8TakesNoValue: SMTPUTF8 is a keyword without a value
// (RFC 6531 section 3.4); "SMTPUTF8=no" is refused with 555, as Postfix
// does, not taken for SMTPUTF8.
func TestRevBB4SMTPUTF8TakesNoValue(t *testing.T) {
	t.Parallel()
	c := storeOnlySession(t)
	for _, p := range []string{"SMTPUTF8=no", "SMTPUTF8=", "smtputf8=yes"} {
		mustCmd(t, c, "555 5.5.4 Unsupported option: "+p, "MAIL FROM:<a@example.org> %s", p)
	}
	mustCmd(t, c, "250", "MAIL FROM:<a@example.org> smtputf8")
}

// storeOnlySession starts a store-only relay and returns a client past
// EHLO, closed at the end of the test.
func storeOnlySession(t *testing.T) *smtpClient {
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	t.Cleanup(func() { c.Close() })
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	return c
}
