package companion

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// pfe20Companion is a Companion in test mode with the built-in rules and
// no content filter, its state in dir, its action lines to out.
func pfe20Companion(dir, backup string, out *strings.Builder) *Companion {
	return New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever}, nil, maillog.New(out), nil)
}

// TestPfe20UnsavedAfterACopy: the follower saves the state at once after
// an encapsulated copy (sent again after a crash, the recipient would get
// two); a ban alone waits for the next save (fail2ban bans an address
// once).
func TestPfe20UnsavedAfterACopy(t *testing.T) {
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	os.WriteFile(backup, []byte("From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 1000)\n\tid 4A0003ABC3; Sun, 22 Nov 2026 10:00:01 +0000\nMessage-ID: <l-1@x>\n\nlocal\n\n"), 0o600)
	var out strings.Builder
	c := pfe20Companion(dir, backup, &out)
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
	c := pfe20Companion(dir, "", &out)
	log := message("4A0001ABC1", "203.0.113.7", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))
	log = strings.Replace(log, " postfix/smtp[105]: ", " relay-zombig-name/smtp[105]: ", 1)
	for l := range strings.Lines(log) {
		c.Line(strings.TrimSuffix(l, "\n"))
	}
	if !strings.Contains(out.String(), "would-ban client=203.0.113.7 ") {
		t.Errorf("actions:\n%s\nwant the client banned for the refusal logged by relay-zombig-name/smtp", out.String())
	}
}

// TestPfe20ManyActionsRemembered: each refusal looked for what was done
// about its message among all the actions remembered (10 days of them, up
// to 100 000): 54 ms a refusal with 100 000, so that in a spam wave the
// enforcer fell behind the log by minutes, banning late. A refusal now
// looks only at its own queue id's. The same 200 refusals are read by a
// companion remembering nothing and by one remembering 100 000 actions,
// one after the other: the second may not take many times as long (it
// took about 250 times as long). A ratio, not a time, so that a loaded
// machine or -race slows both alike.
func TestPfe20ManyActionsRemembered(t *testing.T) {
	var log strings.Builder
	for i := range 200 {
		log.WriteString(message(fmt.Sprintf("%X", 0x40000000+i), fmt.Sprintf("203.0.113.%d", i%250+1), "a@spam.example",
			"u1@gmail.test", fmt.Sprintf("s-%d@x", i), fmt.Sprintf(unsolicited, "s1")))
	}
	read := func(c *Companion, out *strings.Builder) time.Duration {
		start := time.Now()
		for l := range strings.Lines(log.String()) {
			c.Line(strings.TrimSuffix(l, "\n"))
		}
		if n := strings.Count(out.String(), "would-ban"); n != 200 {
			t.Errorf("%d bans for 200 refusals; want 200", n)
		}
		return time.Since(start)
	}
	var emptyOut strings.Builder
	empty := read(pfe20Companion(t.TempDir(), "", &emptyOut), &emptyOut)

	var out strings.Builder
	c := pfe20Companion(t.TempDir(), "", &out)
	acted := map[string]time.Time{}
	now := time.Now()
	for i := range 100000 {
		acted[fmt.Sprintf("%X ban u%d@gmail.test 550 5.7.1 unsolicited", 0x50000000+i, i)] = now
	}
	b, _ := json.Marshal(map[string]any{"acted": acted})
	if err := c.Restore(b); err != nil {
		t.Fatal(err)
	}
	if full := read(c, &out); full > 10*empty+100*time.Millisecond {
		t.Errorf("200 refusals took %v with 100 000 actions remembered, %v with none; want about as long", full, empty)
	}
	st, err := c.Checkpoint()
	var saved struct{ Acted map[string]time.Time }
	if err != nil || json.Unmarshal(st, &saved) != nil || len(saved.Acted) != 100000 {
		t.Errorf("checkpoint holds %d actions (%v); want the 100 000 most recent", len(saved.Acted), err)
	}
}
