package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box SMTP conformance review of the relay in its three modes:
// the message as it leaves, DSN end to end, and session semantics. Each
// case here failed before the fix named in its comment.

// TestBB6ProxyRelayedNotice: RFC 3461 section 5.2.2.2: a DSN-capable
// relay that passes a message to a server without DSN sends a "relayed"
// notice for each recipient whose NOTIFY asked for SUCCESS, since no one
// further on will. Store and forward did; in proxy mode the relay offers
// DSN and took NOTIFY=SUCCESS, and then, toward an upstream without DSN,
// dropped the parameters and sent nothing, with or without --no-enforce:
// the sender, who asked to hear of success, heard nothing. Toward an
// upstream that offers DSN the parameters go on and no notice is made;
// --no-bounces makes none either.
func TestBB6ProxyRelayedNotice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		caps   []string
		extra  []string
		notice bool
	}{
		{"no DSN", []string{"PIPELINING", "8BITMIME"}, nil, true},
		{"no DSN, --no-enforce", []string{"PIPELINING", "8BITMIME"}, []string{"--no-enforce"}, true},
		{"no DSN, --no-bounces", []string{"PIPELINING", "8BITMIME"}, []string{"--no-bounces"}, false},
		{"DSN", []string{"PIPELINING", "8BITMIME", "DSN"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{Capabilities: tc.caps})
			r := startRelay(t, "127.0.0.1", append([]string{"--as-proxy", up.Addr(), "--interface", "127.0.0.1",
				"--spool-dir", t.TempDir(), "--domain", "relay.e2e.test"}, tc.extra...)...)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> ENVID=QQ+2B1")
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.net")
			mustCmd(t, c, "250", "RCPT TO:<carol@example.net>")
			mustCmd(t, c, "354", "DATA")
			mustCmd(t, c, "250", "Subject: relayed\r\n\r\nthe text\r\n.")
			mustCmd(t, c, "221", "QUIT")
			if !tc.notice {
				time.Sleep(2 * time.Second)
				if txs := up.Transactions(); len(txs) != 1 {
					t.Fatalf("upstream got %d transactions; want only the message, no notice", len(txs))
				}
				return
			}
			txs := up.WaitTransactions(t, 2, 15*time.Second)
			n := txs[1]
			if n.MailFrom != "" || strings.Join(n.To(), ",") != "alice@example.org" {
				t.Fatalf("second transaction from <%s> to %v; want the notice from <> to alice@example.org", n.MailFrom, n.To())
			}
			dsn := parseNotice(t, string(n.Data))
			if got := dsnField(dsn.PerMessage, "Original-Envelope-Id"); got != "QQ+1" {
				t.Errorf("Original-Envelope-Id %q; want QQ+1 (the ENVID decoded)", got)
			}
			if len(dsn.PerRecipient) != 1 {
				t.Fatalf("notice reports %d recipients; want bob only (carol asked for no success notice):\n%s", len(dsn.PerRecipient), n.Data)
			}
			pr := dsn.PerRecipient[0]
			for field, want := range map[string]string{"Final-Recipient": "rfc822; bob@example.net", "Action": "relayed",
				"Status": "2.0.0", "Original-Recipient": "rfc822;bob+x@example.net"} {
				if got := dsnField(pr, field); !strings.EqualFold(got, want) {
					t.Errorf("%s: %q; want %q", field, got, want)
				}
			}
			if got := dsnField(pr, "Diagnostic-Code"); !strings.HasPrefix(got, "smtp; 250") {
				t.Errorf("Diagnostic-Code %q; want the upstream's 250", got)
			}
		})
	}
}

// TestBB6HopcountReceivedOnly: Postfix's hopcount_limit counts Received:
// header fields only (cleanup counts HDR_RECEIVED; Delivered-To is
// local(8)'s own loop check, per recipient). The relay, which says it
// applies hopcount_limit, counted Delivered-To: fields as hops too, so a
// message that Postfix 3.7 takes (60 Delivered-To:, or 25 of each) heard
// "554 5.4.0 Error: too many hops". 49 Received: fields and the relay's
// own still make 50 hops, refused as Postfix refuses them.
func TestBB6HopcountReceivedOnly(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const delivered = "Delivered-To: bob@example.net\r\n"
	const received = "Received: from a.example by b.example; Sat, 5 Dec 2026 00:00:00 +0000\r\n"
	for _, tc := range []struct{ name, head, want string }{
		{"60 Delivered-To", strings.Repeat(delivered, 60), "250 "},
		{"25 Received and 25 Delivered-To", strings.Repeat(received, 25) + strings.Repeat(delivered, 25), "250 "},
		{"49 Received", strings.Repeat(received, 49), "554 5.4.0 Error: too many hops"},
	} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
		mustCmd(t, c, "354", "DATA")
		if rep, err := c.cmd("%sSubject: hops\r\n\r\ntext\r\n.", tc.head); err != nil || !strings.HasPrefix(rep.String(), tc.want) {
			t.Errorf("%s: final reply %q, %v; want %q", tc.name, rep, err, tc.want)
		}
		c.Close()
	}
}

// TestBB6DowngradeKeepsTraceOnTop: toward an upstream without 8BITMIME an
// 8-bit message goes quoted-printable, its Content-Transfer-Encoding
// changed. That field used to go to the very top of the message, above
// the relay's own Received: field, so the upstream got a message whose
// content did not begin with the trace field RFC 5321 section 4.4 says
// the relay inserts "at the beginning of the message content", and whose
// trace block, once the upstream prepended its own, had a content field
// in the middle. Postfix changes the field where it stands, or adds it
// at the end of the header. Both modes.
func TestBB6DowngradeKeepsTraceOnTop(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"proxy", "store and forward"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING"}})
			args := []string{"--as-proxy", up.Addr()}
			if mode != "proxy" {
				args = []string{"--as-server", "--forward-to", up.Addr(), "--poll", "1"}
			}
			r := startRelay(t, "127.0.0.1", append(args, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())...)
			for _, msg := range []string{
				"Subject: none\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Last: 1\r\n\r\ncaf\xc3\xa9\r\n",
				"Subject: in place\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n",
			} {
				c := mustDial(t, r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> BODY=8BITMIME")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				mustCmd(t, c, "354", "DATA")
				mustCmd(t, c, "250", "%s.", msg)
				c.Close()
			}
			txs := up.WaitTransactions(t, 2, 15*time.Second)
			for _, tx := range txs {
				data := string(tx.Data)
				head, _, _ := strings.Cut(data, "\r\n\r\n")
				subject := header(tx.Data, "Subject")
				if !strings.HasPrefix(data, "Received: ") || !strings.Contains(data, "caf=C3=A9") {
					t.Errorf("%s: the upstream got a message that does not begin with the relay's Received: field, or is not converted:\n%s", subject, data)
				}
				// Added after the last field, or changed where it was.
				want := "\r\nContent-Transfer-Encoding: quoted-printable"
				ok := strings.HasSuffix(head, want)
				if subject == "in place" {
					want = "\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: "
					ok = strings.Contains(head, want)
				}
				if n := strings.Count(head, "Content-Transfer-Encoding:"); n != 1 || !ok {
					t.Errorf("%s: header has %d Content-Transfer-Encoding fields; want one, as in %q:\n%s", subject, n, want, head)
				}
			}
		})
	}
}

// TestBB6ReceivedWithUTF8SMTP: RFC 6531 section 3.7.3: "The protocol
// value of the 'WITH' clause when this extension is used is one of the
// SMTPUTF8 values" (UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA, section
// 4.3). The relay's Received: field said "with ESMTP" for a transaction
// whose MAIL carried SMTPUTF8. Without SMTPUTF8 it stays ESMTP.
func TestBB6ReceivedWithUTF8SMTP(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME", "SMTPUTF8"}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	for _, param := range []string{" SMTPUTF8", ""} {
		mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>%s", param)
		mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: with%s\r\n\r\ntext\r\n.", param)
	}
	txs := up.WaitTransactions(t, 2, 15*time.Second)
	for i, want := range []string{"with UTF8SMTP id ", "with ESMTP id "} {
		if !strings.Contains(string(txs[i].Data), want) {
			t.Errorf("transaction %d: Received: field lacks %q:\n%.300s", i+1, want, txs[i].Data)
		}
	}
}
