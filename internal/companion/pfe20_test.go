package companion

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestPfe20UnsavedAfterACopy: the follower saves the state at once after
// an encapsulated copy (sent again after a crash, the recipient would get
// two); a ban alone waits for the next save (fail2ban bans an address
// once).
func TestPfe20UnsavedAfterACopy(t *testing.T) {
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	os.WriteFile(backup, []byte("From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 1000)\n\tid 4A0003ABC3; Sun, 22 Nov 2026 10:00:01 +0000\nMessage-ID: <l-1@x>\n\nlocal\n\n"), 0o600)
	var out strings.Builder
	c := New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever}, nil, maillog.New(&out), nil)
	feed := func(log string) {
		for l := range strings.Lines(log) {
			c.Line(strings.TrimSuffix(l, "\n"))
		}
	}
	feed(message("4A0001ABC1", "203.0.113.7", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1")))
	if !strings.Contains(out.String(), "would-ban") || c.Unsaved() {
		t.Fatalf("after a ban: Unsaved = %v, lines:\n%s; want a ban, not saved at once", c.Unsaved(), out.String())
	}
	feed(message("4A0003ABC3", "", "b@local.example", "u3@gmail.test", "l-1@x", fmt.Sprintf(unsolicited, "s3")))
	if !strings.Contains(out.String(), "would-encapsulate") || !c.Unsaved() {
		t.Fatalf("after a copy: Unsaved = %v, lines:\n%s; want it saved at once", c.Unsaved(), out.String())
	}
	if _, err := c.Checkpoint(); err != nil || c.Unsaved() {
		t.Errorf("after Checkpoint: Unsaved = %v (%v); want false", c.Unsaved(), err)
	}
}

// TestPfe20SyslogNameOfTheSeed: the relay of shared/seeds (002) sends all
// its mail through master.cf transports with "-o syslog_name=relay-zombig-name",
// so its smtp(8) lines are tagged relay-zombig-name/smtp. postfix-enforcer
// read only tags starting with "postfix" and skipped every refusal: no
// spammer was ever banned, and no warning said why (the other daemons'
// lines were read).
func TestPfe20SyslogNameOfTheSeed(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	c := New(Options{Test: true, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever}, nil, maillog.New(&out), nil)
	log := message("4A0001ABC1", "203.0.113.7", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))
	log = strings.Replace(log, " postfix/smtp[105]: ", " relay-zombig-name/smtp[105]: ", 1)
	for l := range strings.Lines(log) {
		c.Line(strings.TrimSuffix(l, "\n"))
	}
	if !strings.Contains(out.String(), "would-ban client=203.0.113.7 ") {
		t.Errorf("actions:\n%s\nwant the client banned for the refusal logged by relay-zombig-name/smtp", out.String())
	}
}
