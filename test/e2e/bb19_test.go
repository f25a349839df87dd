package e2e

import (
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
// execute the chunk.
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
	for _, arg := range []string{"-1", "0x10", "abc LAST"} {
		t.Run(arg, func(t *testing.T) {
			c := open(t)
			write(t, c, "BDAT "+arg+"\r\nQUIT\r\n")
			rep, err := c.read()
			if err != nil || (rep.code() != 421 && rep.code() != 521) {
				t.Fatalf("BDAT %s = %q, %v; want 421 or 521 and the connection closed", arg, rep, err)
			}
			if rep, err := c.read(); err == nil {
				t.Fatalf("after BDAT %s: %q; want the connection closed, its chunk never read as commands", arg, rep)
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
