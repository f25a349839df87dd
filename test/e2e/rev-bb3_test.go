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
	cfg := hardenedConfig(t, dir)
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

// TestRevBB3IntakeMatrix: the core's framing, in store-and-forward and
// proxy mode, with the default configuration and with every intake
// addition on (reject_unauth_pipelining, reject_multi_recipient_bounce,
// rate limits for a client outside mynetworks, canonical maps of the
// envelope and the header). Two BDAT transactions and a RSET pipelined in
// one write are served (RFC 3030 allows pipelining BDAT: not improper);
// bare LF, bare CR and CR CR LF variants of the end of data are message
// text, never its end, so nothing smuggled becomes a transaction of its
// own; a 10,000-octet line passes in DATA and in BDAT; each message is
// answered once, after its end. The upstream gets exactly the messages
// that heard 250.
func TestRevBB3IntakeMatrix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hardened := hardenedConfig(t, dir)
	smuggled := "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\n"
	ends := []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r.\r\n", "\r\r\n.\r\r\n"}
	long := strings.Repeat("L", 10000)
	for _, proxy := range []bool{false, true} {
		for _, cfg := range []string{"", hardened} {
			name := fmt.Sprintf("proxy=%v hardened=%v", proxy, cfg != "")
			up := harness.NewFakeSMTP(t, harness.Script{})
			args := []string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
				"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1"}
			if proxy {
				args = []string{"--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir()}
			}
			if cfg != "" {
				args = append(args, "--config", cfg)
			}
			r := startRelay(t, "127.0.0.1", args...)
			c := mustDial(t, r.addr(), "127.0.0.2")
			mustCmd(t, c, "250", "EHLO client.test")
			body := "From: cron@host.local\r\nSubject: bdat\r\n\r\n" + long + "\r\n"
			tx := fmt.Sprintf("MAIL FROM:<cron@host.local>\r\nRCPT TO:<b@example.net>\r\nBDAT %d LAST\r\n%s", len(body), body)
			c.conn.Write([]byte(tx + "RSET\r\n" + tx))
			for i := range 7 {
				rep, err := c.read()
				if err != nil || rep.code() != 250 {
					t.Fatalf("%s: pipelined BDAT, reply %d: %q, %v", name, i+1, rep, err)
				}
			}
			sent := 2
			for _, end := range ends {
				mustCmd(t, c, "250", "MAIL FROM:<cron@host.local>")
				mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
				mustCmd(t, c, "354", "DATA")
				c.conn.Write([]byte("Subject: " + fmt.Sprintf("%q", end) + "\r\n\r\n" + long + end + smuggled))
				if rep := mustCmd(t, c, "250", "."); !strings.Contains(rep.String(), "queued as") {
					t.Errorf("%s: end %q: %q", name, end, rep)
				}
				sent++
				if got := c.peekReply(); got != "" {
					t.Errorf("%s: end %q: a second reply %q", name, end, got)
				}
			}
			mustCmd(t, c, "221", "QUIT")
			c.Close()
			txs := up.WaitTransactions(t, sent, 20*time.Second)
			time.Sleep(200 * time.Millisecond)
			if n := len(up.Transactions()); n != sent {
				t.Errorf("%s: upstream has %d transactions; want %d", name, n, sent)
			}
			for _, x := range txs {
				wantFrom := "cron@host.local"
				if cfg != "" {
					wantFrom = "cron@example.com"
				}
				if x.MailFrom != wantFrom || !strings.Contains(string(x.Data), long+"\r\n") {
					t.Errorf("%s: upstream got MAIL FROM %q, %d octets", name, x.MailFrom, len(x.Data))
				}
			}
		}
	}
}

// hardenedConfig writes, in dir, a configuration with every intake
// addition on: reject_unauth_pipelining and reject_multi_recipient_bounce
// in data_restrictions, the three rate limits for clients outside
// 127.0.0.9 (relaying to example.net), and canonical maps (@host.local
// to @example.com) of the envelope and, for every client, the header.
func hardenedConfig(t *testing.T, dir string) string {
	canon := writeFile(t, dir, "canonical", "@host.local  @example.com\n", 0o644)
	return writeConfig(t, fmt.Sprintf(`[policy]
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
}
