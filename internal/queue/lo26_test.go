package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestLo26ShowsEmailRelayAttemptsAndLocal: a message E-MailRelay failed
// twice (two X-MailRelay-Reason lines, which its resubmit script counts)
// was shown with "attempts: 0", and its To-Local mailbox, kept for
// E-MailRelay's local delivery, not at all. queue show and list now count
// the Reason lines and show the To-Local lines.
func TestLo26ShowsEmailRelayAttemptsAndLocal(t *testing.T) {
	dir := t.TempDir()
	const id = "emailrelay.100.1765000000.1"
	env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
		"X-MailRelay-From: alice@example.org\r\nX-MailRelay-ToCount: 2\r\n" +
		"X-MailRelay-To-Local: carol\r\nX-MailRelay-To-Remote: bob@example.net\r\n" +
		"X-MailRelay-Authentication: \r\nX-MailRelay-Client: 127.0.0.1:4000\r\n" +
		"X-MailRelay-End: 1\r\n" +
		"X-MailRelay-Reason: 452 mailbox full\r\nX-MailRelay-ReasonCode: 452\r\n" +
		"X-MailRelay-Reason: 452 mailbox still full\r\nX-MailRelay-ReasonCode: 452\r\n"
	if err := os.WriteFile(filepath.Join(dir, id+".envelope.bad"), []byte(env), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+".content"), []byte("Subject: t\r\n\r\nbody\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := Show(s, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Attempts != 2 || len(sh.Local) != 1 || sh.Local[0] != "carol" {
		t.Errorf("Show: attempts %d, local %q; want 2, [carol]", sh.Attempts, sh.Local)
	}
	var b strings.Builder
	sh.WriteText(&b)
	if !strings.Contains(b.String(), "attempts:     2\n") || !strings.Contains(b.String(), "to-local:     carol") {
		t.Errorf("queue show:\n%s\nwant attempts 2 and the To-Local line", b.String())
	}
}
