package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Session 28's black-box checks from outside, over real sockets. Each
// failed before its fix, or held when it was written; the tests keep it so.

// bb28Smuggle is text that ends a line with a bare CR before a lone dot,
// then looks like a second transaction: "<CR>.<CR><LF>" is one of the
// SMTP smuggling end-of-data sequences (SEC Consult, 2023), which a
// server downstream that takes a bare CR as a line end reads as the end
// of the message.
const bb28Smuggle = "added\r.\r\nMAIL FROM:<evil@example.org>\r\nlast\r\n"

// bb28BareCR reports the offset of the first CR in b that no LF follows,
// or -1.
func bb28BareCR(b []byte) int {
	for i := range b {
		if b[i] == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return i
		}
	}
	return -1
}

// TestBb28FilterBareCRNotForwarded: a content filter that edits the
// content file in place, as E-MailRelay's filters do, writes a bare CR
// before a lone dot. Whatever the filter wrote, the upstream never gets a
// CR that no LF follows (it would read "<CR>.<CR><LF>" as the end of the
// text and the rest as commands), stored or proxied.
func TestBb28FilterBareCRNotForwarded(t *testing.T) {
	t.Parallel()
	filter := script(t, "crfilter", `printf 'added\r.\r\nMAIL FROM:<evil@example.org>\r\nlast\r\n' >> "$1"`+"\n")
	for _, mode := range []string{"stored", "proxied"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{})
			args := []string{"--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect"}
			if mode == "proxied" {
				args = []string{"--as-proxy", up.Addr()}
			}
			args = append(args, "--filter", filter, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			r := startRelay(t, "127.0.0.1", args...)
			mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("bare CR"))
			tx := up.WaitTransactions(t, 1, 10*time.Second)[0]
			if i := bb28BareCR(tx.Data); i >= 0 {
				t.Errorf("the upstream got a bare CR at %d: %q", i, tx.Data[max(0, i-10):])
			}
			// Data is as the upstream read it, after dot-unstuffing: the
			// lone dot was sent stuffed, within the one message.
			if !bytes.HasSuffix(tx.Data, []byte("added\r\n.\r\nMAIL FROM:<evil@example.org>\r\nlast\r\n")) {
				t.Errorf("the upstream got %q; want the filter's text with its bare CR a line end", tx.Data)
			}
		})
	}
}

// TestBb28SpoolBareCRNotForwarded: a message put into the spool by hand
// (or by E-MailRelay, whose spool relaykeeper takes over) whose content
// has a bare CR before a lone dot reaches the upstream with that CR made
// a line end.
func TestBb28SpoolBareCRNotForwarded(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	bb28SpoolMessage(t, dir, "emailrelay.1.1700000000.1", "", "Subject: hand\r\n\r\n"+bb28Smuggle)
	startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward", "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", dir)
	tx := up.WaitTransactions(t, 1, 10*time.Second)[0]
	if i := bb28BareCR(tx.Data); i >= 0 {
		t.Errorf("the upstream got a bare CR at %d: %q", i, tx.Data[max(0, i-10):])
	}
}

// bb28SpoolMessage puts a message into the spool dir as E-MailRelay 2.6
// writes one, with trailer after its End line.
func bb28SpoolMessage(t *testing.T, dir, id, trailer, content string) {
	t.Helper()
	envelope := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
		"X-MailRelay-From: alice@example.org\r\nX-MailRelay-ToCount: 1\r\n" +
		"X-MailRelay-To-Remote: bob@example.net\r\nX-MailRelay-Client: 192.0.2.1\r\nX-MailRelay-End: 1\r\n" + trailer
	base := filepath.Join(dir, id)
	if err := os.WriteFile(base+".content", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".envelope", []byte(envelope), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBb28EnvelopeFreeFormTrailer: E-MailRelay reads an envelope up to
// its End line and allows free-form lines after it (a script's note, a
// line without a colon). Such a message is forwarded, not quarantined as
// torn, and its trailer stays in the envelope.
func TestBb28EnvelopeFreeFormTrailer(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	bb28SpoolMessage(t, dir, "emailrelay.2.1700000000.1", "resubmitted by hand on Monday\r\n", "Subject: trailer\r\n\r\nbody\r\n")
	startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward", "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", dir)
	tx := up.WaitTransactions(t, 1, 10*time.Second)[0]
	if !bytes.Contains(tx.Data, []byte("Subject: trailer\r\n")) {
		t.Errorf("the upstream got %q; want the hand-spooled message", tx.Data)
	}
}
