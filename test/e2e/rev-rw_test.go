package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevRWReinjectNotRateLimited: the content filter's reinjection
// listener hands back every message the relay sent it; it is not a client
// to be rate limited. With mynetworks not covering the filter's address
// (here 127.0.0.9/32 only), the client rate limits counted the filter's
// messages and recipients, and refused them with 450 past the limit, so
// every filtered message stalled.
func TestRevRWReinjectNotRateLimited(t *testing.T) {
	t.Parallel()
	reinject := harness.FreePort(t)
	cfg := writeConfig(t, `[policy]
mynetworks = ["127.0.0.9/32"]
client_message_rate_limit = 1
client_recipient_rate_limit = 1
`)
	startRelay(t, "127.0.0.1", "--as-server", "--spool-dir", t.TempDir(), "--config", cfg,
		"--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject))
	c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", reinject), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO filter.test")
	for i := range 3 {
		mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
		mustCmd(t, c, "250", "RCPT TO:<u%d@y.example>", i)
		mustCmd(t, c, "250", "RCPT TO:<v%d@y.example>", i)
		mustCmd(t, c, "250", "RSET")
	}
}

// TestRevRWRestrictionsSeeClientSender: canonical maps apply after the
// policy (Postfix's cleanup maps after smtpd's restrictions), so every
// restriction sees the sender the client gave, at RCPT and DATA as at
// MAIL. A check_sender_access in recipient_restrictions (Postfix's
// usual place, with smtpd_delay_reject) or data_restrictions saw the
// mapped sender instead: an entry for the client's address never
// matched, one for the mapped address did, and the mail log's reject
// lines named an address the client never sent.
func TestRevRWRestrictionsSeeClientSender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := writeFile(t, dir, "sender_canonical", "root@host.local  alerts@example.com\ncron@host.local  alerts@example.com\n", 0o644)
	rcptAccess := writeFile(t, dir, "rcpt_access", "root@host.local  REJECT client sender\nalerts@example.com  REJECT mapped sender\n", 0o644)
	dataAccess := writeFile(t, dir, "data_access", "cron@host.local  REJECT client sender at DATA\nalerts@example.com  REJECT mapped sender\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
recipient_restrictions = ["check_sender_access hash:%[2]s", "permit_mynetworks", "reject_unauth_destination"]
data_restrictions = ["check_sender_access hash:%[3]s"]
[rewrite]
sender_canonical_maps = ["hash:%[1]s"]
`, sender, rcptAccess, dataAccess))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO host.local")
	mustCmd(t, c, "250", "MAIL FROM:<root@host.local>")
	if got := mustCmd(t, c, "554", "RCPT TO:<u@y.example>"); !strings.Contains(got[0], "client sender") {
		t.Errorf("RCPT: %q; want the client's sender's entry", got[0])
	}
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<cron@host.local>")
	mustCmd(t, c, "250", "RCPT TO:<u@y.example>")
	if got := mustCmd(t, c, "554", "DATA"); !strings.Contains(got[0], "client sender at DATA") {
		t.Errorf("DATA: %q; want the client's sender's entry", got[0])
	}
	for _, stage := range []string{"rcpt", "data"} {
		e := r.waitEvent("reject", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("stage") == stage })
		if from := e.Get("from"); from != "<root@host.local>" && from != "<cron@host.local>" {
			t.Errorf("%s reject line: from=%s; want the client's sender", stage, from)
		}
	}
}

// TestRevRWCanonicalTrailingDot: a client that writes its sender with a
// trailing dot (root@host.local.) gets it mapped as Postfix does, instead
// of passing on the unmapped address for the provider to refuse.
func TestRevRWCanonicalTrailingDot(t *testing.T) {
	t.Parallel()
	sender := writeFile(t, t.TempDir(), "sender_canonical", "root@host.local  alerts@example.com\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[rewrite]\nsender_canonical_maps = [\"hash:%s\"]\n", sender))
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO host.local")
	if _, err := c.send("root@host.local.", []string{"ops@y.example"}, "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if tx := up.WaitTransactions(t, 1, 15*time.Second)[0]; tx.MailFrom != "alerts@example.com" {
		t.Errorf("upstream MAIL FROM %q; want alerts@example.com", tx.MailFrom)
	}
}

// TestRevRWHeaderRewriteBDAT: the header's addresses are mapped when the
// header comes in BDAT chunks cut inside an address, with a bare LF, with
// and without header_checks (which takes the content through another
// path); the body is left alone.
func TestRevRWHeaderRewriteBDAT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := writeFile(t, dir, "sender_canonical", "root@host.local  alerts@example.com\n", 0o644)
	checks := writeFile(t, dir, "header_checks", "/^Subject: warn/ WARN seen\n", 0o644)
	for _, hc := range []string{"", fmt.Sprintf("[policy]\nheader_checks = \"regexp:%s\"\n", checks)} {
		up := harness.NewFakeSMTP(t, harness.Script{})
		cfg := writeConfig(t, fmt.Sprintf("%s[rewrite]\nsender_canonical_maps = [\"hash:%s\"]\n", hc, sender))
		r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO host.local")
		mustCmd(t, c, "250", "MAIL FROM:<root@host.local>")
		mustCmd(t, c, "250", "RCPT TO:<ops@y.example>")
		one, two := "Subject: warn\r\nFrom: Cron <root@ho", "st.local>\nReply-To: root@host.local\r\n\r\nFrom: root@host.local\r\n"
		if _, err := fmt.Fprintf(c.conn, "BDAT %d\r\n%sBDAT %d LAST\r\n%s", len(one), one, len(two), two); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), "250") {
				t.Fatalf("BDAT: %q, %v", rep, err)
			}
		}
		c.Close()
		data := string(up.WaitTransactions(t, 1, 15*time.Second)[0].Data)
		head, body, _ := strings.Cut(data, "\r\n\r\n")
		if !strings.Contains(head, "\r\nFrom: Cron <alerts@example.com>\r\nReply-To: alerts@example.com\r\n") ||
			body != "From: root@host.local\r\n" {
			t.Errorf("header_checks %v: upstream got\n%s", hc != "", data)
		}
	}
}

// TestRevRWMappedRecipientKeepsOriginal: a recipient that
// recipient_canonical_maps rewrote goes on with ORCPT=rfc822;ADDRESS-GIVEN
// (when the client gave no ORCPT), as Postfix's smtp client sends the
// address cleanup rewrote: a notice about it then names the address the
// sender wrote, not only one the sender never saw. A recipient that was
// not mapped, or that came with its own ORCPT, keeps what it had.
func TestRevRWMappedRecipientKeepsOriginal(t *testing.T) {
	t.Parallel()
	rcpt := writeFile(t, t.TempDir(), "recipient_canonical", "bob@old.example  robert@new.example\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[rewrite]\nrecipient_canonical_maps = [\"hash:%s\"]\n", rcpt))
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING", "DSN"}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO host.local")
	mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
	mustCmd(t, c, "250", "RCPT TO:<bob@old.example> NOTIFY=FAILURE")
	mustCmd(t, c, "250", "RCPT TO:<carol@old.example>")
	mustCmd(t, c, "250", "RCPT TO:<bob@old.example> ORCPT=rfc822;list@x.example")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: x\r\n\r\nx\r\n.")
	tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
	var got []string
	for _, r := range tx.Rcpts {
		got = append(got, r.Addr+" "+r.Params)
	}
	want := []string{"robert@new.example NOTIFY=FAILURE ORCPT=rfc822;bob@old.example", "carol@old.example ",
		"robert@new.example ORCPT=RFC822;list@x.example"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("upstream recipients %q; want %q", got, want)
	}
}
