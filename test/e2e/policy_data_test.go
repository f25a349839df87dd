package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestDataRestrictions: Postfix's smtpd_data_restrictions with its two
// common items. reject_unauth_pipelining refuses DATA from a client that
// sent commands ahead where RFC 2920 does not allow it (message text
// before the 354, or anything pipelined without EHLO), with Postfix's
// reply and its log line; a client that pipelines properly, and
// smtp-source, get through. reject_multi_recipient_bounce refuses a null
// sender with two recipients.
func TestDataRestrictions(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining", "reject_multi_recipient_bounce"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	const improper = "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining"

	write := func(c *smtpClient, s string) {
		t.Helper()
		if _, err := c.conn.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	replies := func(c *smtpClient, n int) []string {
		t.Helper()
		var out []string
		for range n {
			rep, err := c.read()
			if err != nil {
				t.Fatalf("after %q: %v", out, err)
			}
			out = append(out, rep[0])
		}
		return out
	}

	// Proper pipelining: MAIL, RCPT and DATA in one packet, DATA last.
	c := mustDial(t, r.addr(), "127.0.0.2")
	mustCmd(t, c, "250", "EHLO client.test")
	write(c, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
	if got := replies(c, 3); !strings.HasPrefix(got[2], "354") {
		t.Errorf("proper pipelining: %q; want 354 last", got)
	}
	write(c, "Subject: t\r\n\r\nbody\r\n.\r\n")
	if got := replies(c, 1); !strings.HasPrefix(got[0], "250") {
		t.Errorf("proper pipelining, final dot: %q", got)
	}
	c.Close()

	// The text sent with DATA, without waiting for 354: a spam bot's way.
	c = mustDial(t, r.addr(), "127.0.0.3")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	write(c, "DATA\r\nSubject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	if got := replies(c, 1); got[0] != improper {
		t.Errorf("text before 354: DATA = %q; want %q", got[0], improper)
	}
	c.Close()

	// HELO, then MAIL and RCPT in one packet: no pipelining without EHLO.
	c = mustDial(t, r.addr(), "127.0.0.4")
	mustCmd(t, c, "250", "HELO client.test")
	write(c, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n")
	replies(c, 2)
	if got := mustCmd(t, c, "503", "DATA"); got[0] != improper {
		t.Errorf("HELO client that pipelined: DATA = %q", got[0])
	}
	c.Close()

	// A bounce to two recipients; to one it is fine.
	c = mustDial(t, r.addr(), "127.0.0.5")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "250", "RCPT TO:<c@example.net>")
	if got := mustCmd(t, c, "550", "DATA"); got[0] != "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce" {
		t.Errorf("multi-recipient bounce: %q", got[0])
	}
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "354", "DATA")
	c.Close()

	// A real client that waits for every reply.
	out, err := harness.Source(t, harness.SourceOptions{Addr: r.addr(), Messages: 3, Reuse: true, Helo: "client.test", Timeout: 20 * time.Second})
	if err != nil {
		t.Errorf("smtp-source: %v\n%s", err, out)
	}

	log := r.stderr()
	if !strings.Contains(log, `msg="improper command pipelining" after=DATA client=127.0.0.3:`) ||
		!strings.Contains(log, `msg="improper command pipelining" after=HELO client=127.0.0.4:`) && !strings.Contains(log, `after=MAIL client=127.0.0.4:`) {
		t.Errorf("the improper pipelining is not logged as expected:\n%s", log)
	}
	if n := strings.Count(log, "improper command pipelining"); n != 2 {
		t.Errorf("%d improper pipelining lines; want 2 (127.0.0.3 and 127.0.0.4):\n%s", n, log)
	}
	if es := r.events("reject"); len(es) == 0 {
		t.Error("no reject line in the mail log")
	}
}

// TestClientRateLimits: Postfix's anvil limits. From a client outside
// mynetworks, the third connection in a minute hears 421, the third MAIL
// and the fourth RCPT 450 4.7.1, in Postfix's words, and each is logged;
// a client in mynetworks is exempt.
func TestClientRateLimits(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `[policy]
mynetworks = ["127.0.0.9/32"]
relay_domains = ["relay.example"]
client_connection_rate_limit = 2
client_message_rate_limit = 2
client_recipient_rate_limit = 3
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)

	c := mustDial(t, r.addr(), "127.0.0.2")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
	for i := range 3 {
		mustCmd(t, c, "250", "RCPT TO:<u%d@relay.example>", i)
	}
	if got := mustCmd(t, c, "450", "RCPT TO:<u3@relay.example>"); got[0] != "450 4.7.1 Error: too many recipients from 127.0.0.2" {
		t.Errorf("fourth recipient: %q", got[0])
	}
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
	mustCmd(t, c, "250", "RSET")
	if got := mustCmd(t, c, "450", "MAIL FROM:<a@x.example>"); got[0] != "450 4.7.1 Error: too much mail from 127.0.0.2" {
		t.Errorf("third message: %q", got[0])
	}
	c.Close()
	c = mustDial(t, r.addr(), "127.0.0.2") // the second connection
	c.Close()
	c3, greet, _ := dialFrom(r.addr(), "127.0.0.2")
	if c3 != nil {
		c3.Close()
	}
	if !strings.HasPrefix(greet.String(), "421 4.7.0 ") || !strings.HasSuffix(greet.String(), "Error: too many connections from 127.0.0.2") {
		t.Errorf("third connection: %q", greet)
	}
	// mynetworks: exempt from all three.
	for range 4 {
		c := mustDial(t, r.addr(), "127.0.0.9")
		mustCmd(t, c, "250", "EHLO client.test")
		for range 3 {
			mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
			for i := range 4 {
				mustCmd(t, c, "250", "RCPT TO:<u%d@relay.example>", i)
			}
			mustCmd(t, c, "250", "RSET")
		}
		c.Close()
	}
	log := r.stderr()
	for _, w := range []string{"Recipient address rate limit exceeded", "Message delivery request rate limit exceeded", "Connection rate limit exceeded"} {
		if !strings.Contains(log, w) {
			t.Errorf("%q is not logged", w)
		}
	}
}
