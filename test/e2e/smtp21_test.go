package e2e

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSmtp21BDATTailsGoUpstreamIntact: a BDAT text need not end with a line
// ending, and its last line may be a lone dot, a dot and a CR, or begin
// with dots. Forwarded with DATA, such a tail must be dot-stuffed and given
// a line ending; sent as it came, "x" CRLF "." would be read upstream as a
// final dot after "x" (a smuggling-shaped cut) and the next command as
// text. Both modes are checked against what the upstream unstuffs.
func TestSmtp21BDATTailsGoUpstreamIntact(t *testing.T) {
	t.Parallel()
	tails := []struct{ tail, want string }{
		{"x\r\n.", "x\r\n.\r\n"},
		{"x\r\n.\r", "x\r\n.\r\n"},
		{".", ".\r\n"},
		{"x\r\n..", "x\r\n..\r\n"},
		{"\r\n.\r\n", "\r\n.\r\n"},
	}
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{})
			r := smtp21Relay(t, mode, up)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			for i, tc := range tails {
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				text := fmt.Sprintf("Subject: tail %d\r\n\r\n%s", i, tc.tail)
				c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c.conn, fmt.Sprintf("BDAT %d LAST\r\n%s", len(text), text)); err != nil {
					t.Fatal(err)
				}
				if rep, err := c.read(); err != nil || rep.code() != 250 {
					t.Fatalf("tail %q: BDAT LAST = %q, %v; want 250", tc.tail, rep, err)
				}
			}
			mustCmd(t, c, "221", "QUIT")
			txs := up.WaitTransactions(t, len(tails), 20*time.Second)
			if len(txs) != len(tails) {
				t.Fatalf("upstream got %d transactions; want %d: %+v", len(txs), len(tails), txs)
			}
			for _, tx := range txs {
				if !tx.Accepted() {
					t.Errorf("upstream transaction not accepted (a cut text?): %+v", tx)
					continue
				}
				_, body, _ := bytes.Cut(tx.Data, []byte("\r\n\r\n"))
				var i int
				if _, err := fmt.Sscanf(string(tx.Data[bytes.Index(tx.Data, []byte("Subject: tail ")):]), "Subject: tail %d", &i); err != nil || i >= len(tails) {
					t.Errorf("upstream text without its Subject: %q", tx.Data)
					continue
				}
				if string(body) != tails[i].want {
					t.Errorf("tail %q: upstream body = %q; want %q", tails[i].tail, body, tails[i].want)
				}
			}
		})
	}
}

// TestSmtp21FirstLineContinuation: a text whose first line begins with a
// blank (" leading space") has no header field for that line to continue.
// It was taken as a continuation anyway, and so became part of the relay's
// own Received: header, which the relay writes just before the client's
// text: its trace field then ended in client text after the date, and the
// client's header fields stayed a header. Postfix's cleanup takes such a
// line as the first body line (after its own added header fields and an
// empty line); so does the relay now, in both modes.
func TestSmtp21FirstLineContinuation(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{})
			r := smtp21Relay(t, mode, up)
			text := " leading space\r\nSubject: not a header here\r\n\r\nbody\r\n.\r\n"
			if rep := sendText(t, r.addr(), "alice@example.org", []string{text}, 0); rep.code() != 250 {
				t.Fatalf("final reply %q; want 250", rep)
			}
			tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
			header, body, _ := bytes.Cut(tx.Data, []byte("\r\n\r\n"))
			if bytes.Contains(header, []byte("leading space")) {
				t.Errorf("the client's first line went into the header (our Received: continued):\n%s", header)
			}
			if want := " leading space\r\nSubject: not a header here\r\n\r\nbody\r\n"; string(body) != want {
				t.Errorf("upstream body = %q; want %q (the client's text from its first line on, as Postfix gives it)", body, want)
			}
			if !bytes.HasPrefix(header, []byte("Received: ")) {
				t.Errorf("upstream header does not begin with our Received:\n%s", header)
			}
		})
	}
}

// smtp21Relay starts the relay in mode (--as-server, forwarding on each
// disconnect, or --as-proxy) with up as its upstream.
func smtp21Relay(t *testing.T, mode string, up *harness.FakeSMTP) *relay {
	t.Helper()
	args := []string{mode, up.Addr()}
	if mode == "--as-server" {
		args = []string{mode, "--forward-to", up.Addr(), "--forward-on-disconnect"}
	}
	return startRelay(t, "127.0.0.1", append(args, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())...)
}
