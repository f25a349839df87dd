package e2e

import (
	"io"
	"strings"
	"testing"
	"time"
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
