package e2e

import (
	"io"
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
