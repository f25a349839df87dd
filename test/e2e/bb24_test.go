package e2e

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box check of the SMTP side (bb24), over raw TCP to the built
// binary: each case here failed before the fix named in its comment.

// TestBB24RcptAfterBDAT: a RCPT between the chunks of a BDAT transaction
// is a bad sequence (RFC 3030 section 3; RFC 5321 section 4.3.2 lists 503
// among RCPT's replies, never 502). It heard go-smtp's own "502 5.5.1 RCPT
// not allowed during message transfer". The recipient is not added, and
// the BDAT transaction goes on, in both modes.
func TestBB24RcptAfterBDAT(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	server := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for i, mode := range []struct {
		name string
		r    *relay
	}{{"store and forward", server}, {"proxy", proxy}} {
		t.Run(mode.name, func(t *testing.T) {
			c := mustDial(t, mode.r.addr(), "127.0.0.1")
			text := "Subject: bb24\r\n\r\nx\r\n"
			// Pipelined in one write, as a CHUNKING client sends them.
			lines := []string{"EHLO client.e2e.test", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>",
				"BDAT " + strconv.Itoa(len(text)) + "\r\n" + text[:len(text)-2], "RCPT TO:<carol@example.net>", "BDAT 0 LAST", "QUIT"}
			want := []string{"250", "250 2.1.0", "250 2.1.5", "250", "503 5.5.1 ", "250", "221"}
			c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c.conn, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
				t.Fatal(err)
			}
			for j, l := range lines {
				if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), want[j]) {
					t.Errorf("%.40q = %q, %v; want %q...", l, rep, err, want[j])
				}
			}
			var got []harness.Transaction
			for _, tx := range up.WaitTransactions(t, i+1, 10*time.Second) {
				if tx.Accepted() {
					got = append(got, tx)
				}
			}
			if len(got) != i+1 {
				t.Fatalf("upstream accepted %d messages; want %d", len(got), i+1)
			}
			if to := got[i].To(); len(to) != 1 || to[0] != "bob@example.net" {
				t.Errorf("upstream recipients = %q; want only bob@example.net", to)
			}
		})
	}
}

// TestBB24ProxyUpstream354ToMailOrRcpt: an upstream that answers MAIL or
// RCPT with a 3xx (RFC 5321 section 4.3.2 allows none; one that says 354
// may be reading what follows as message text) is a failed upstream: the
// proxy's client hears 451 4.4.1, never the 354 that was passed on as the
// reply to its MAIL or RCPT, and the session is not used again.
func TestBB24ProxyUpstream354ToMailOrRcpt(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"MAIL", "RCPT"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			script := harness.Script{}
			if stage == "MAIL" {
				script.Mail = harness.Response{Reply: "354 go ahead"}
			} else {
				script.Rcpt = harness.Response{Reply: "354 go ahead"}
			}
			up := harness.NewFakeSMTP(t, script)
			r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			rep, err := c.cmd("MAIL FROM:<alice@example.org>")
			if stage == "RCPT" {
				if err != nil || rep.code() != 250 {
					t.Fatalf("MAIL = %q, %v; want 250", rep, err)
				}
				rep, err = c.cmd("RCPT TO:<bob@example.net>")
			}
			if err != nil || !strings.HasPrefix(rep.String(), "451 4.4.1 ") {
				t.Errorf("%s = %q, %v; want 451 4.4.1 ...", stage, rep, err)
			}
			mustCmd(t, c, "250", "RSET")
		})
	}
}

// TestBB24BinaryMIMEIs555: BODY=BINARYMIME (RFC 3030), which the relay
// does not offer, is a MAIL parameter not implemented: 555 (RFC 5321
// sections 4.1.1.11 and 4.3.2 list no 504 among MAIL's replies), as
// Postfix answers it. It heard go-smtp's "504 5.5.4 BINARYMIME is not
// implemented".
func TestBB24BinaryMIMEIs555(t *testing.T) {
	t.Parallel()
	c := bb24Session(t)
	mustCmd(t, c, "555 5.5.4 Unsupported option: BODY=BINARYMIME", "MAIL FROM:<alice@example.org> BODY=BINARYMIME")
	mustCmd(t, c, "555 5.5.4 Unsupported option: body=binarymime", "MAIL FROM:<alice@example.org> body=binarymime")
	mustCmd(t, c, "503", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> BODY=8BITMIME")
}

// TestBB24NumericDomainRefused: an address whose domain is an IP address
// without the brackets of an address literal (a@1.2.3.4; RFC 5321 section
// 4.1.3 writes it a@[1.2.3.4]), or another all-numeric name (b@123), is
// bad syntax, as Postfix refuses it (resolve_numeric_domain = no): it was
// accepted, and then looked up as a domain name, which no DNS has.
func TestBB24NumericDomainRefused(t *testing.T) {
	t.Parallel()
	c := bb24Session(t)
	mustCmd(t, c, "501 5.1.7 Bad sender address syntax", "MAIL FROM:<alice@192.0.2.1>")
	mustCmd(t, c, "250", "MAIL FROM:<alice@[192.0.2.1]>")
	mustCmd(t, c, "501 5.1.3 Bad recipient address syntax", "RCPT TO:<bob@192.0.2.7>")
	mustCmd(t, c, "501 5.1.3 Bad recipient address syntax", "RCPT TO:bob@192.0.2.7")
	mustCmd(t, c, "250", "RCPT TO:<bob@[192.0.2.7]>")
	mustCmd(t, c, "250", "RCPT TO:<bob@192.0.2.7.example>")
	mustCmd(t, c, "501 5.1.3 Bad recipient address syntax", "RCPT TO:<bob@123>")
}

// bb24Session is a session with a store-and-forward relay of its own,
// after EHLO.
func bb24Session(t *testing.T) *smtpClient {
	t.Helper()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	return c
}
