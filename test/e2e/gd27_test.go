package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// gd27Welcomelist is the --welcomelist file of a relay startEnforcer
// started.
func gd27Welcomelist(t *testing.T, r *relay) string {
	t.Helper()
	if wl := flagValue(r.args, "--welcomelist"); wl != "" {
		return wl
	}
	t.Fatal("no --welcomelist in the relay's arguments")
	return ""
}

// TestGd27BanBeforeWelcomelist: Gmail refuses a client's message as spam
// and the relay bans it, and blocks a second client's sender domain; then
// the administrator welcomelists both. The ban (ignored, not lifted: the
// ban file may be shared with relays whose welcomelist differs) no longer
// refuses the client nor holds its mail, `bans list` says the ban is not
// applied, and the second client may send as the blocked domain.
func TestGd27BanBeforeWelcomelist(t *testing.T) {
	t.Parallel()
	spam := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", 66)
	domain := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked.", 66)
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, spam)
	gmail.answer("dom@gmail.test", stData, domain)
	dir := t.TempDir()
	bansFile := filepath.Join(dir, "bans")
	cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + bansFile + "\"\nsender_access = \"" + filepath.Join(dir, "sender_access") + "\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	const banned, blocked = "127.0.27.1", "127.0.27.2"
	for _, m := range [][3]string{{banned, "s@spam27.example", "spam@gmail.test"}, {blocked, "d@dom27.example", "dom@gmail.test"}} {
		if tx, err := sendFrom(r.addr(), m[0], m[1], []string{m[2]}, gmailMessage(m[1], "gd27 "+m[0])); err != nil || tx.Final.code() != 250 {
			t.Fatalf("%s: %v %v", m[0], tx.Final, err)
		}
	}
	r.waitEvent("ban", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == banned })
	r.waitEvent("block", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("domain") == "dom27.example" })
	greet := func() int {
		c, g, err := dialFrom(r.addr(), banned)
		if err == nil {
			c.Close()
		}
		return g.code()
	}
	if code := greet(); code != 554 {
		t.Fatalf("banned client greeted %d; want 554", code)
	}

	wl := gd27Welcomelist(t, r)
	if err := os.WriteFile(wl, []byte("192.0.2.1\n"+banned+"\n"+blocked+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFor(15*time.Second, func() bool { return greet() == 220 }) {
		t.Fatalf("welcomelisted %s still greeted %d; want 220", banned, greet())
	}
	tx, err := sendFrom(r.addr(), banned, "s@spam27.example", []string{"ok1@gmail.test"}, gmailMessage("s@spam27.example", "gd27 after"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("welcomelisted %s: %v %v; want 250", banned, tx.Final, err)
	}
	tx, err = sendFrom(r.addr(), blocked, "d@dom27.example", []string{"ok2@gmail.test"}, gmailMessage("d@dom27.example", "gd27 after"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("welcomelisted %s as the blocked domain: MAIL %v, end %v (%v); want 250", blocked, tx.Mail, tx.Final, err)
	}
	for _, rcpt := range []string{"ok1@gmail.test", "ok2@gmail.test"} {
		if !waitFor(20*time.Second, func() bool {
			for _, tx := range gmail.Transactions() {
				if tx.Accepted() && strings.Join(tx.To(), ",") == rcpt {
					return true
				}
			}
			return false
		}) {
			t.Errorf("the welcomelisted client's message to %s was not delivered; holds: %v", rcpt, r.events("hold"))
		}
	}
	// Ignored, not lifted: the file keeps it, the list says so.
	if b, _ := os.ReadFile(bansFile); !strings.Contains(string(b), banned+" until=") {
		t.Errorf("ban file:\n%s\nwant the ban kept (ignored, not lifted)", b)
	}
	code, out, errOut := runCLI(t, "bans", "list", "--bans", bansFile, "--welcomelist", wl)
	if code != 0 || !strings.Contains(out, banned) || !strings.Contains(out, "not applied: welcomelisted") {
		t.Errorf("bans list: exit %d\n%s%s\nwant %s marked \"not applied: welcomelisted\"", code, out, errOut, banned)
	}
	// --config finds the ban file its [enforce] bans names.
	code, out, errOut = runCLI(t, "bans", "list", "--json", "--config", flagValue(r.args, "--config"), "--welcomelist", wl)
	if code != 0 || !strings.Contains(out, `"not_applied": "welcomelisted"`) {
		t.Errorf("bans list --json --config: exit %d\n%s%s\nwant %s with \"not_applied\"", code, out, errOut, banned)
	}
	if len(r.events("unban")) != 0 {
		t.Errorf("unban lines %v; want none (the ban is ignored, not lifted)", r.events("unban"))
	}
}
