package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevBB3PipeliningTLSShortText: a short message text sent over TLS
// with DATA, in a TLS record of its own, before the 354, is improper
// pipelining, under STARTTLS and under implicit TLS alike, as the docs
// say ("message text written after DATA in a record of its own is seen as
// well"). Both records arrive in one TCP write; the TLS layer used to read
// both off the socket at once and keep the second where neither the read
// buffer nor the socket showed it, so a spam bot's short text went
// unnoticed unless it was longer than the TLS layer's read.
func TestRevBB3PipeliningTLSShortText(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining"]
`)
	for _, implicit := range []bool{false, true} {
		args := []string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
			"--server-tls", "--server-tls-certificate", pem, "--config", cfg}
		if implicit {
			args = append(args, "--server-tls-connection")
		}
		r := startRelay(t, "127.0.0.1", args...)
		// open makes a TLS session with the relay, up to its greeting
		// or its 220 to STARTTLS.
		open := func(from string) (*smtpClient, *heldConn) {
			if !implicit {
				c := mustDial(t, r.addr(), from)
				mustCmd(t, c, "250", "EHLO client.test")
				mustCmd(t, c, "220", "STARTTLS")
				return c, heldTLS(t, c)
			}
			nc, err := dialPlain(r.addr(), from)
			if err != nil {
				t.Fatal(err)
			}
			c := &smtpClient{conn: nc}
			t.Cleanup(func() { c.Close() })
			held := heldTLS(t, c)
			if g, err := c.read(); err != nil || g.code() != 220 {
				t.Fatalf("implicit TLS greeting %q, %v", g, err)
			}
			return c, held
		}
		for _, short := range []bool{true, false} {
			c, held := open("127.0.0.2")
			mustCmd(t, c, "250", "EHLO client.test")
			mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
			mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
			text := "Subject: t\r\n\r\nbody\r\n.\r\n"
			if !short {
				text = "Subject: t\r\n\r\n" + strings.Repeat("body line\r\n", 2000) + ".\r\n"
			}
			held.hold = true
			c.conn.Write([]byte("DATA\r\n"))
			c.conn.Write([]byte(text))
			if err := held.release(); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.read(); !strings.HasPrefix(got.String(), "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining") {
				t.Errorf("implicit TLS %v, short text %v: DATA with the text behind it = %q; want 503", implicit, short, got)
			}
			c.Close()
		}
		// A client that waits for the 354 is served.
		c, _ := open("127.0.0.3")
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: t\r\n\r\nbody\r\n.")
	}
}

// TestRevBB3PostfixTLSClientHardened: Postfix's smtp client, over TLS
// (smtp_tls_security_level = encrypt) and pipelining MAIL, RCPT and DATA
// as it does, relays through the proxy with everything the intake added
// on at once: reject_unauth_pipelining and reject_multi_recipient_bounce
// in data_restrictions, the three rate limits (Postfix's address is not
// exempt), canonical maps of the envelope and of the header for every
// client. Every message reaches the upstream, mapped (Sender included,
// which Postfix's cleanup passes on as "Sender: ..."), with its header
// intact, and Postfix is never taken for improper pipelining.
func TestRevBB3PostfixTLSClientHardened(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	canon := writeFile(t, dir, "canonical", "@host.local  @example.com\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
mynetworks = ["127.0.0.9/32"]
relay_domains = ["example.net"]
data_restrictions = ["reject_unauth_pipelining", "reject_multi_recipient_bounce"]
client_connection_rate_limit = 100
client_message_rate_limit = 100
client_recipient_rate_limit = 100

[rewrite]
canonical_maps = ["hash:%s"]
local_header_rewrite_clients = ["static:all"]
`, canon))
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--server-tls", "--server-tls-certificate", pem, "--config", cfg)
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(r.addr()), SMTPTLSSecurityLevel: "encrypt"})
	const n = 3
	for i := range n {
		out, code := harness.Swaks(t, "--server", pf.Addr(), "--from", "cron@host.local", "--to", "bob@example.net,carol@example.net",
			"--header", fmt.Sprintf("Subject: hardened %d", i), "--add-header", "Sender : cron@host.local")
		if code != 0 {
			t.Fatalf("swaks to Postfix: exit %d\n%s", code, out)
		}
	}
	txs := up.WaitTransactions(t, n, 60*time.Second)
	for _, tx := range txs {
		head, _, _ := strings.Cut(string(tx.Data), "\r\n\r\n")
		head += "\r\n"
		if tx.MailFrom != "cron@example.com" || !strings.Contains(head, "\r\nFrom: cron@example.com\r\n") ||
			!strings.Contains(head, "\r\nSender: cron@example.com\r\n") || !strings.Contains(head, "\r\nSubject: hardened ") {
			t.Errorf("upstream got MAIL FROM %q and header:\n%s", tx.MailFrom, head)
		}
		if len(tx.Rcpts) != 2 {
			t.Errorf("upstream got %d recipients; want 2", len(tx.Rcpts))
		}
	}
	if log := r.stderr(); strings.Contains(log, "improper command pipelining") {
		t.Errorf("Postfix's smtp client was taken for improper pipelining:\n%s", log)
	}
}
