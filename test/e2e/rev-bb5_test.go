package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box review of the SMTP listener from outside (raw sockets,
// swaks, openssl s_client, smtp-source); each case here failed before the
// fix named in its comment.

// TestRevBB5SASLResponseCodes: RFC 4954 section 4 says a server that
// cannot base64-decode a client's response MUST refuse the AUTH command
// with 501 and the enhanced code 5.5.2, and section 6 gives 500 5.5.6 to a
// response longer than the server takes. The relay said so to an initial
// response only; a response to its 334 that was not base64, or was past
// 12,288 octets, heard "501 5.0.0 Negotiation cancelled", the reply to a
// client that cancels with "*". A cancel still hears that. A login that
// succeeds hears 235 2.7.0 (section 6; Postfix's "235 2.7.0 Authentication
// successful"), not go-smtp's 2.0.0.
func TestRevBB5SASLResponseCodes(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nallow_insecure = true\n")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	for _, tc := range []struct{ mech, resp, want string }{
		{"PLAIN", "!!!not base64", "501 5.5.2 "},
		{"LOGIN", "Ym9i=x", "501 5.5.2 "},
		{"PLAIN", strings.Repeat("QUFB", 4000), "500 5.5.6 "},
		{"PLAIN", "*", "501 "},
		{"LOGIN", "*", "501 "},
	} {
		mustCmd(t, c, "334", "AUTH %s", tc.mech)
		rep, err := c.cmd("%s", tc.resp)
		if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
			t.Errorf("AUTH %s, response %.20q: %q, %v; want %q", tc.mech, tc.resp, rep, err, tc.want)
		}
	}
	// The session goes on: a good login still works.
	mustCmd(t, c, "235 2.7.0 Authentication successful", "AUTH PLAIN %s", authPlain("bob", "bobpw"))
}

// TestRevBB5TransactionTimeout421: a transaction that outlasts
// smtp.transaction_timeout ends with "421 4.4.2", as docs/policy.md says
// and as the mail log recorded, and then the connection closes (RFC 5321
// section 3.8). The connection used to close without a word, at the
// command prompt and in the middle of the message text alike, while the
// mail log said the client had heard 421.
func TestRevBB5TransactionTimeout421(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "[smtp]\ntransaction_timeout = \"2s\"\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--config", cfg, "--domain", "relay.e2e.test")
	for _, inText := range []bool{false, true} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
		if inText {
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
			mustCmd(t, c, "354", "DATA")
			c.conn.Write([]byte("Subject: slow\r\n\r\nthe first line\r\n"))
		}
		rep, err := c.read()
		if err != nil || !strings.HasPrefix(rep.String(), "421 4.4.2 relay.e2e.test ") {
			t.Errorf("in the message text %v: past the transaction timeout: %q, %v; want 421 4.4.2 relay.e2e.test ...", inText, rep, err)
		}
		if _, err := c.read(); err == nil {
			t.Errorf("in the message text %v: the connection is still open after the 421", inText)
		}
		c.Close()
	}
	if log := r.stderr(); !strings.Contains(log, `stage=timeout reply="421 4.4.2 relay.e2e.test Error: transaction took too long"`) {
		t.Errorf("mail log lacks the 421 the client heard:\n%s", log)
	}
}

// TestRevBB5ProxySlowClientUpstreamIdle: in proxy mode the relay says MAIL
// and RCPT to the upstream as the client does, and DATA once the client's
// text has all come. An upstream closes a session that is silent for its
// idle timeout (Postfix's smtpd_timeout, 300 s) while a client still
// sends a big message over a slow link; the client's final dot then heard
// that session's end ("421 4.4.2 ... timeout exceeded", or 451 for a plain
// close), and its retries failed the same way, every time. Now the relay
// opens a fresh session and says the transaction again (MAIL and the
// recipients the upstream accepted) before DATA.
func TestRevBB5ProxySlowClientUpstreamIdle(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{IdleTimeout: time.Second,
		Capabilities: []string{"PIPELINING", "8BITMIME", "DSN", "SIZE 52428800"}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> RET=HDRS")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net> NOTIFY=NEVER")
	mustCmd(t, c, "250", "RCPT TO:<carol@example.net>")
	mustCmd(t, c, "354", "DATA")
	fmt.Fprintf(c.conn, "Subject: slow\r\n\r\n")
	for i := range 5 {
		fmt.Fprintf(c.conn, "line %d\r\n", i)
		time.Sleep(500 * time.Millisecond)
	}
	mustCmd(t, c, "250", ".")
	// The first transaction is the one the upstream ended.
	txs := up.WaitTransactions(t, 2, 15*time.Second)
	if len(txs[0].Data) != 0 {
		t.Fatalf("the upstream's first session got %d octets of text", len(txs[0].Data))
	}
	tx := txs[1]
	if len(tx.Rcpts) != 2 || tx.Rcpts[0].Addr != "bob@example.net" || tx.Rcpts[0].Params != "NOTIFY=NEVER" ||
		tx.Rcpts[1].Addr != "carol@example.net" || !strings.Contains(tx.MailParams, "RET=HDRS") {
		t.Errorf("upstream got MAIL FROM %q %q, recipients %+v", tx.MailFrom, tx.MailParams, tx.Rcpts)
	}
	if !strings.Contains(string(tx.Data), "line 4\r\n") {
		t.Errorf("upstream got the text %q", tx.Data)
	}
	// The session goes on, for the next message.
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: next\r\n\r\nbody\r\n.")
}
