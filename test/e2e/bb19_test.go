package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestBb19BdatBadArgumentSmuggling: a BDAT whose size is a number but
// whose second argument is not LAST ("BDAT 6 FOO") was refused with 501,
// and the six octets of its chunk, which the client sends behind the
// command whatever the reply, were then read as SMTP commands: message
// text executed as commands, the smuggling route the relay closes for
// an out-of-range size. The chunk must be read and dropped, and the
// session go on with the next real command. A BDAT whose size is no
// number at all ("BDAT -1", "BDAT 0x10") leaves its chunk uncountable;
// Postfix answers 521 and closes, and so must the relay rather than
// execute the chunk; so must it for a BDAT line refused before its size
// is read (a NUL or bare CR in it, or a line too long).
func TestBb19BdatBadArgumentSmuggling(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	open := func(t *testing.T) *smtpClient {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
		return c
	}
	write := func(t *testing.T, c *smtpClient, s string) {
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, arg := range []string{"6 FOO", "6 LAST LAST", "6 LASTX"} {
		t.Run(arg, func(t *testing.T) {
			c := open(t)
			// The chunk is "QUIT\r\n": executed, it would end the session.
			write(t, c, "BDAT "+arg+"\r\nQUIT\r\nNOOP\r\n")
			if rep, err := c.read(); err != nil || rep.code() != 501 {
				t.Fatalf("BDAT %s = %q, %v; want 501", arg, rep, err)
			}
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), "250 2.0.0") {
				t.Fatalf("reply after the refused BDAT's chunk = %q, %v; want the NOOP's 250 (the chunk was read as a command)", rep, err)
			}
			mustCmd(t, c, "250", "BDAT 3 LAST\r\nx")
		})
	}
	// A BDAT line refused before its arguments are read (a NUL, a bare
	// CR, a line too long) leaves its chunk as uncountable.
	for _, arg := range []string{"-1", "0x10", "abc LAST", "6\x00", "6\rLAST", "6 " + strings.Repeat(" ", 600) + "LAST"} {
		t.Run(fmt.Sprintf("%.12q", arg), func(t *testing.T) {
			c := open(t)
			write(t, c, "BDAT "+arg+"\r\nQUIT\r\n")
			rep, err := c.read()
			if err != nil || (rep.code() != 421 && rep.code() != 521) {
				t.Fatalf("BDAT %.20q = %q, %v; want 421 or 521 and the connection closed", arg, rep, err)
			}
			if rep, err := c.read(); err == nil {
				t.Fatalf("after BDAT %.20q: %q; want the connection closed, its chunk never read as commands", arg, rep)
			}
		})
	}
}

// TestBb19ProxyUTF8HeadersNoSMTPUTF8Upstream: RFC 6531 section 3.2 and
// RFC 6532: a message sent with SMTPUTF8 whose header fields hold UTF-8
// cannot go to an upstream that does not offer SMTPUTF8 (relaykeeper
// does not downgrade headers, RFC 6857). Store and forward bounces it
// with 5.6.7, as Postfix does; proxy mode dropped the SMTPUTF8 parameter
// and passed the raw UTF-8 header fields on in a plain transaction, and
// the client heard the upstream's 250. The client must hear 554 5.6.7
// after its final dot and the upstream get no message. An ASCII header
// section still goes on (without SMTPUTF8), and so does a message that
// never asked for SMTPUTF8 (legacy 8-bit, as Postfix passes it).
func TestBb19ProxyUTF8HeadersNoSMTPUTF8Upstream(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for _, tc := range []struct {
		name, from, mail, subject, want string
	}{
		{"UTF-8 header", "utf8@example.org", " SMTPUTF8", "Subject: caf\u00e9 \u00fcber\r\n", "554 5.6.7"},
		{"ASCII header", "ascii@example.org", " SMTPUTF8", "Subject: cafe\r\n", "250 "},
		{"8-bit header without SMTPUTF8", "legacy@example.org", " BODY=8BITMIME", "Subject: caf\u00e9\r\n", "250 "},
	} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<%s>%s", tc.from, tc.mail)
		mustCmd(t, c, "250", "RCPT TO:<carol@example.net>")
		mustCmd(t, c, "354", "DATA")
		rep, err := c.cmd("%s\r\nbody caf\u00e9\r\n.", tc.subject)
		if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
			t.Errorf("%s: reply to the final dot %q, %v; want %q", tc.name, rep, err, tc.want)
		}
		mustCmd(t, c, "250", "NOOP")
		mustCmd(t, c, "221", "QUIT")
	}
	time.Sleep(time.Second)
	got := map[string]bool{}
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			got[tx.MailFrom] = true
		}
	}
	if got["utf8@example.org"] {
		t.Errorf("the upstream without SMTPUTF8 accepted the message with UTF-8 header fields")
	}
	if !got["ascii@example.org"] || !got["legacy@example.org"] {
		t.Errorf("upstream accepted mail from %v; want ascii@ and legacy@ too", got)
	}
}

// TestBb19SmugglingToPostfix: SMTP smuggling end to end. Each message
// text below hides a second transaction behind an end-of-data look-alike
// that some server reads as the end: bare LF or bare CR around the dot,
// CRLF "." LF, LF "." CRLF, a NUL after the dot, CR CR LF, in DATA and in
// a BDAT chunk. Both modes relay to a real Postfix (a private instance)
// that passes everything on to a fake smarthost. The client hears one
// reply per message; Postfix takes exactly one message for each, never
// one from the hidden sender, and no message reaches the smarthost with
// the hidden header as a header. This held; the test keeps it so.
func TestBb19SmugglingToPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(sink.Addr()),
		MainCF: []string{"relay_domains = example.net"}})
	const hidden = "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nhidden\r\n.\r\n"
	looks := map[string]string{
		"LF.LF": "\n.\n", "CRLF.LF": "\r\n.\n", "LF.CRLF": "\n.\r\n", "CR.CR": "\r.\r", "CRLF.CR": "\r\n.\r",
		"CR.CRLF": "\r.\r\n", "CRLF.NUL": "\r\n.\x00\r\n", "CRCRLF.CRCRLF": "\r\r\n.\r\r\n", "CRLF.SP": "\r\n. \r\n",
	}
	server := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", pf.Addr(), "--poll", "1",
		"--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", pf.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	sent := 0
	for _, r := range []*relay{server, proxy} {
		for name, look := range looks {
			for _, bdat := range []bool{false, true} {
				c := mustDial(t, r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				text := "Subject: look-alike " + name + "\r\n\r\nfirst" + look + hidden
				if bdat {
					text = fmt.Sprintf("BDAT %d LAST\r\n%s", len(text), text)
				} else {
					mustCmd(t, c, "354", "DATA")
				}
				c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c.conn, text+"NOOP\r\n"); err != nil {
					t.Fatal(err)
				}
				if rep, err := c.read(); err != nil || rep.code() != 250 {
					t.Fatalf("%s (BDAT %v) to %s: reply %q, %v; want 250", name, bdat, r.addr(), rep, err)
				}
				if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), "250 2.0.0") {
					t.Fatalf("%s (BDAT %v): reply after the message %q, %v; want the NOOP's 250 alone", name, bdat, rep, err)
				}
				c.Close()
				sent++
			}
		}
	}
	sink.WaitTransactions(t, sent, 90*time.Second)
	time.Sleep(2 * time.Second) // for any message more than one per text
	txs := sink.Transactions()
	if len(txs) != sent {
		t.Errorf("the smarthost behind Postfix got %d messages; want %d, one for each sent", len(txs), sent)
	}
	for _, tx := range txs {
		head, _, _ := strings.Cut(string(tx.Data), "\r\n\r\n")
		if tx.MailFrom != "alice@example.org" || strings.Contains(head, "Subject: smuggled") {
			t.Errorf("a smuggled message came through: from <%s>, header:\n%s", tx.MailFrom, head)
		}
	}
}
