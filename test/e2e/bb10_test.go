package e2e

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestBb10StrayCRBeforeFinalDot: a message whose last line ends with a
// stray CR before its CRLF ("last line" CR CR LF), then the final dot. The
// octets CRLF "." CRLF are there, and Postfix ends the message at them.
// The relay's end-of-data scanner, a copy of go-smtp's, forgot the CRLF
// it was in the middle of when a second CR came, so it read the final
// dot and every command after it as message text: the client heard
// nothing until the idle timeout (421), the message was never accepted,
// and a retry met the same fate (text files converted to CRLF twice end
// their lines so). Both modes; the upstream gets the message once,
// without the commands behind it.
func TestBb10StrayCRBeforeFinalDot(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	server := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.Addr(), "--poll", "1",
		"--idle-timeout", "5", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--idle-timeout", "5", "--spool-dir", t.TempDir())
	for _, mode := range []struct {
		name string
		r    *relay
	}{{"store and forward", server}, {"proxy", proxy}} {
		t.Run(mode.name, func(t *testing.T) {
			c := mustDial(t, mode.r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
			mustCmd(t, c, "354", "DATA")
			// The final dot and a NOOP in one write, as a pipelining
			// client may send them.
			c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c.conn, "Subject: stray CR ("+mode.name+")\r\n\r\nfirst line\r\nlast line\r\r\n.\r\nNOOP\r\n"); err != nil {
				t.Fatal(err)
			}
			if rep, err := c.read(); err != nil || rep.code() != 250 || !strings.Contains(rep.String(), "queued") {
				t.Fatalf("reply to the final dot after CR CR LF = %q, %v; want 250 ... queued", rep, err)
			}
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), "250 2.0.0") {
				t.Fatalf("reply to the NOOP after the final dot = %q, %v; want 250", rep, err)
			}
			mustCmd(t, c, "221", "QUIT")
		})
	}
	up.WaitTransactions(t, 2, 30*time.Second)
	time.Sleep(time.Second)
	txs := up.Transactions()
	if len(txs) != 2 {
		t.Errorf("upstream saw %d transactions; want 2", len(txs))
	}
	for _, tx := range txs {
		d := string(tx.Data)
		if !strings.Contains(d, "\r\nlast line\r\n") || strings.Contains(d, "NOOP") {
			t.Errorf("upstream content = %q; want the message up to its last line, without the NOOP behind it", d)
		}
	}
}

// TestBb10PostfixParity: the relay and a private Postfix 3.7 (the
// reference) answer the same raw SMTP sessions with the same reply codes
// and enhanced status codes, where relaykeeper's docs/limits.md does not
// say it answers otherwise. Each case runs on a fresh connection after
// EHLO; each step is written as it is and answered by one reply. The
// last cases are message texts that Postfix accepts: long lines, and a
// last line that ends CR CR LF before the final dot.
func TestBb10PostfixParity(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(up.Addr()),
		MainCF: []string{"relay_domains = example.net"}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const tx = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
	hops := strings.Repeat("Received: from h.test by x.test; Sun, 6 Dec 2026 10:00:00 +0000\r\n", 49)
	cases := []struct {
		name  string
		steps []string
	}{
		{"sequence", []string{"MAIL FROM:<a@example.org>\r\n", "MAIL FROM:<a@example.org>\r\n", "RSET\r\n", "RCPT TO:<b@example.net>\r\n", "DATA\r\n"}},
		{"arguments", []string{"RSET x\r\n", "VRFY\r\n", "NOOP a b c\r\n", "NOOP\n"}},
		{"case and blanks", []string{"mail from:<A@Example.ORG>\t\r\n", "rcpt to:<B@EXAMPLE.NET>  \r\n", "RCPT TO: <c@example.net>\r\n", "rcpt to:<postmaster>\r\n"}},
		{"sender syntax", []string{"MAIL FROM:<a@example.org\r\n", "MAIL FROM:<a@-bad.test>\r\n", "MAIL FROM:<a@bad..test>\r\n", "MAIL FROM:<>\r\n", "RCPT TO:<>\r\n", "RCPT TO:<\"a b\"@example.net>\r\n", "RCPT TO:<@x.test:c@example.net>\r\n"}},
		{"mail parameters", []string{"MAIL FROM:<a@example.org> SIZE=abc\r\n", "MAIL FROM:<a@example.org> RET=FOO\r\n", "MAIL FROM:<a@example.org> ENVID=a+2\r\n", "MAIL FROM:<a@example.org> FOO\r\n", "MAIL FROM:<a@example.org> SIZE=10 BODY=8BITMIME RET=HDRS ENVID=x AUTH=<>\r\n"}},
		{"rcpt parameters", []string{"MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.net> SIZE=1\r\n", "RCPT TO:<b@example.net> NOTIFY=\r\n", "RCPT TO:<b@example.net> NOTIFY=never,success\r\n", "RCPT TO:<b@example.net> ORCPT=rfc822;b+ZZ\r\n", "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net\r\n"}},
		{"error limit", slices.Repeat([]string{"FOO\r\n"}, 21)},
		{"too many hops", []string{tx, hops + "Subject: hops\r\n\r\nx\r\n.\r\n", "NOOP\r\n"}},
		{"long lines", []string{tx, "Subject: long\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n" + strings.Repeat("y", 100000) + "\r\n.\r\n", "NOOP\r\n"}},
		{"CR CR LF before the final dot", []string{tx, "Subject: stray CR\r\n\r\nlast\r\r\n.\r\n", "NOOP\r\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := parityRun(t, pf.Addr(), tc.steps)
			got := parityRun(t, r.addr(), tc.steps)
			for i := range tc.steps {
				if got[i] != want[i] {
					t.Errorf("step %d %.60q: relaykeeper %q, Postfix %q", i+1, tc.steps[i], got[i], want[i])
				}
			}
		})
	}
}

// parityRun writes each step on a fresh connection after EHLO and returns,
// for each, the code and enhanced status code of the reply (a DATA group
// of three commands gets the last reply, 354), or the read error.
func parityRun(t *testing.T, addr string, steps []string) []string {
	t.Helper()
	c := mustDial(t, addr, "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var out []string
	for _, s := range steps {
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, s); err != nil {
			out = append(out, "write: "+err.Error())
			continue
		}
		n := 1 // replies to read: one, or three for MAIL, RCPT, DATA
		if strings.HasPrefix(s, "MAIL") && strings.HasSuffix(s, "\r\nDATA\r\n") {
			n = 3
		}
		var rep reply
		var err error
		for range n {
			if rep, err = c.read(); err != nil {
				break
			}
		}
		if err != nil {
			out = append(out, "read: "+err.Error())
			continue
		}
		f := strings.Fields(rep[len(rep)-1])
		key := f[0]
		if len(f) > 1 && strings.Count(f[1], ".") == 2 {
			key += " " + f[1]
		}
		out = append(out, key)
	}
	return out
}
