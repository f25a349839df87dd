package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestS23RulesFileReloads: an edit of the relay's enforcement rules file
// ([enforce] rules) is in force without a restart, as an edit of the
// welcomelist or a table is; a version with a bad line is refused with
// FILE:LINE and the rules in force stay. The rules were read once at start:
// an administrator who turned a ban rule into a report (or back) kept the
// old rule until a restart, and SIGHUP, which re-reads every other file,
// changed nothing.
func TestS23RulesFileReloads(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	rules := filepath.Join(t.TempDir(), "rules.conf")
	write := func(text string) {
		t.Helper()
		// A new inode each time, as an editor saves.
		if err := os.WriteFile(rules+".new", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(rules+".new", rules); err != nil {
			t.Fatal(err)
		}
	}
	write("rule every-refusal\n    action report\n")
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: "[enforce]\nban_delay = \"0s\"\nrules = \"" + rules + "\"\n"})
	refused := func(ip string) string {
		t.Helper()
		if _, err := sendFrom(r.addr(), ip, "someone@spam.test", []string{"spam@gmail.test"}, gmailMessage("someone@spam.test", "offer "+ip)); err != nil {
			t.Fatal(err)
		}
		var got string
		waitFor(20*time.Second, func() bool { got = actionOf(enforceEvents(r, ip)); return got != "none" })
		return got
	}
	if got := refused("127.0.0.21"); got != "report" {
		t.Fatalf("first rules (report): action %q; want report\n%s", got, r.stderr())
	}

	write("rule every-refusal\n    action explode\n")
	r.current().Signal(syscall.SIGHUP)
	want := rules + ":2: "
	if !waitFor(15*time.Second, func() bool { return strings.Contains(r.stderr(), want) }) {
		t.Fatalf("a rules file with a bad line 2 and SIGHUP: the log does not name %q:\n%s", want, r.stderr())
	}
	if got := refused("127.0.0.22"); got != "report" {
		t.Errorf("after a bad edit: action %q; want the rules in force (report)", got)
	}

	// The next edit is read as it changes, SIGHUP or not.
	write("rule every-refusal\n    action ban\n")
	if !waitFor(15*time.Second, func() bool { return strings.Contains(r.stderr(), "enforcement rules re-read") }) {
		t.Fatalf("the edited rules file was not re-read:\n%s", r.stderr())
	}
	if got := refused("127.0.0.23"); got != "ban" {
		t.Errorf("after the edit to ban: action %q; want ban\n%s", got, r.stderr())
	}
}

// TestS23PostfixEnforcerSighup: postfix-enforcer took SIGHUP's default, the
// end of the process, so a unit's ExecReload (kill -HUP, as relaykeeper's
// own unit has it) or the shell that started it in the background closing
// stopped the enforcement. SIGHUP now re-reads the rules file and the
// welcomelist, and a rule edited meanwhile decides the next refusal.
func TestS23PostfixEnforcerSighup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.conf", "rule every-refusal\n    action report\n", 0o644)
	logFile := writeFile(t, dir, "mail.log", "", 0o644)
	wl := writeFile(t, dir, "welcomelist", "# nobody is exempt\n", 0o644)
	bans := filepath.Join(dir, "bans.log")
	args := append(enforcerArgs(logFile, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl, bans, "127.0.0.1:9"),
		"--rules", rules)
	p := harness.Start(t, harness.Binary(t), append([]string{"postfix-enforcer"}, args...)...)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(p.Stderr(), "postfix-enforcer started") }) {
		t.Fatalf("not started:\n%s", p.Stderr())
	}
	if err := os.WriteFile(rules, []byte("rule every-refusal\n    action ban\n    code 5xx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(p.Stderr(), "enforcement rules re-read") }) {
		t.Fatalf("after SIGHUP the rules were not re-read:\n%s", p.Stderr())
	}
	if code, err := p.Wait(time.Second); err == nil {
		t.Fatalf("postfix-enforcer exited %d on SIGHUP:\n%s", code, p.Stderr())
	}
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(seeds22RefusedLog())
	f.Close()
	if !waitFor(20*time.Second, func() bool { return strings.Contains(p.Stdout(), "ban client=203.0.113.7") }) {
		t.Errorf("a refusal after the edited rules (ban) was not a ban:\nstdout:\n%s\nstderr:\n%s", p.Stdout(), p.Stderr())
	}
}
